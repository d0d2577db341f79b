package openbao

import "fmt"

// KeyCase is a key the tests move between keyraft and Vault's backup
// format: its type, how many versions it gets, and its settings.
type KeyCase struct {
	Type     string
	Versions int
	Derived  bool
	MinDec   int // min_decryption_version after the rotations (0: 1)
	Trim     int // min_available_version (0: no trim)
}

// KeyCases cover every type keyraft can back up for Vault or OpenBao,
// with several versions, derivation, a raised min_decryption_version and
// a trimmed key.
var KeyCases = []KeyCase{
	{Type: "aes128-gcm96", Versions: 2},
	{Type: "aes256-gcm96", Versions: 3, MinDec: 2},
	{Type: "aes256-gcm96", Versions: 3, MinDec: 2, Trim: 2},
	{Type: "aes256-gcm96", Versions: 2, Derived: true},
	{Type: "chacha20-poly1305", Versions: 2},
	{Type: "xchacha20-poly1305", Versions: 2},
	{Type: "ed25519", Versions: 2},
	{Type: "ecdsa-p256", Versions: 2},
	{Type: "ecdsa-p384", Versions: 1},
	{Type: "ecdsa-p521", Versions: 1},
	{Type: "rsa-2048", Versions: 2},
	{Type: "rsa-3072", Versions: 1},
	{Type: "rsa-4096", Versions: 1},
	{Type: "hmac", Versions: 2},
}

// Name is a key name that says what the case is.
func (c KeyCase) Name() string {
	n := c.Type
	if c.Derived {
		n += "-derived"
	}
	if c.MinDec > 1 {
		n += fmt.Sprintf("-mindec%d", c.MinDec)
	}
	if c.Trim > 0 {
		n += fmt.Sprintf("-trim%d", c.Trim)
	}
	return n
}

// FirstOpen is the first version that still decrypts after the move.
func (c KeyCase) FirstOpen() int { return max(c.MinDec, 1) }
