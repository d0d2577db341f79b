package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrPermissionDenied is returned for a missing or unknown token.
var ErrPermissionDenied = errors.New("permission denied")

// TokenEntry is what the cluster knows about a token. The token itself is
// never stored: entries live at auth/token/<sha256(token)>.
type TokenEntry struct {
	Accessor     string    `json:"accessor"`
	Policies     []string  `json:"policies"`
	CreationTime time.Time `json:"creation_time"`
	DisplayName  string    `json:"display_name"`
}

// NewToken returns a fresh random token ("kr." + 32 random bytes).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "kr." + base64.RawURLEncoding.EncodeToString(b), nil
}

func newTokenEntry(token string, policies []string, now time.Time) (*TokenEntry, error) {
	acc := make([]byte, 16)
	if _, err := rand.Read(acc); err != nil {
		return nil, err
	}
	return &TokenEntry{
		Accessor:     base64.RawURLEncoding.EncodeToString(acc),
		Policies:     policies,
		CreationTime: now,
		DisplayName:  "root",
	}, nil
}

// LookupToken returns the entry of a token. The lookup is by SHA-256 of
// the token, so no token is compared byte by byte. It returns ErrSealed
// or ErrPermissionDenied.
func (n *Node) LookupToken(token string) (*TokenEntry, error) {
	if token == "" {
		return nil, ErrPermissionDenied
	}
	v, _, err := n.Read(prefixToken + hashToken(token))
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, ErrPermissionDenied
	}
	var e TokenEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, fmt.Errorf("cluster: reading token entry: %w", err)
	}
	return &e, nil
}
