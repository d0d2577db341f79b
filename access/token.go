package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/keyraft/keyraft/fsm"
)

// TokenLen is the length of a token made by NewToken.
const TokenLen = 46

// hashToken names a token's record: the token itself is never stored.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenRecord is the record key of token's entry.
func TokenRecord(token string) string { return fsm.RecordToken + hashToken(token) }

// TokenEntry is what the cluster knows about a token. The token itself is
// never stored: entries live at auth/token/<sha256(token)>, and an index
// auth/accessor/<accessor> leads from the accessor to that hash.
type TokenEntry struct {
	Accessor     string    `json:"accessor"`
	Policies     []string  `json:"policies"`
	CreationTime time.Time `json:"creation_time"`
	DisplayName  string    `json:"display_name"`

	// Parent is the accessor of the token that made this one; empty for
	// an orphan. Revoking the parent revokes this token.
	Parent string `json:"parent,omitempty"`
	// CreatedBy is the accessor of the non-root token that made this
	// orphan (create-orphan, no_parent) or whose revoke-orphan made it
	// one; empty otherwise. Revoking it does not revoke this token, but
	// the two-person rule treats both as one identity.
	CreatedBy string            `json:"created_by,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	// Path is how the token was made: auth/token/create,
	// auth/cert/login, sys/break-glass, auth/token/root.
	Path string `json:"path,omitempty"`
	// TTL is the lifetime asked for at creation (and by renewals without
	// an increment); 0 with a zero ExpireTime means no expiry (root).
	TTL            time.Duration `json:"ttl,omitempty"`
	ExplicitMaxTTL time.Duration `json:"explicit_max_ttl,omitempty"`
	// ExpireTime is when the token stops working; zero: never. It is
	// judged by the node's clock at request time, never in Apply.
	ExpireTime time.Time `json:"expire_time,omitzero"`
	// MaxExpireTime caps renewals (creation + explicit_max_ttl or the
	// system maximum); zero: no cap.
	MaxExpireTime time.Time `json:"max_expire_time,omitzero"`
	Renewable     bool      `json:"renewable,omitempty"`
	// Period makes a periodic token: each renewal sets its TTL back to
	// Period, with no cap but ExplicitMaxTTL (Vault's periodic tokens).
	Period time.Duration `json:"period,omitempty"`
	// RenewTTL is the TTL the last renewal granted (0: none yet); a
	// renewal without an increment grants it again, as in Vault.
	RenewTTL time.Duration `json:"renew_ttl,omitempty"`
	// LastRenewal is when the token was last renewed (zero: never).
	LastRenewal time.Time `json:"last_renewal,omitzero"`
	// NumUses is how many uses are left; 0 means unlimited. Each use is
	// spent through Raft before the request is served.
	NumUses    int      `json:"num_uses,omitempty"`
	BoundCIDRs []string `json:"bound_cidrs,omitempty"`
	// Namespace is the namespace the token belongs to ("" for the root
	// namespace); its policies are that namespace's.
	Namespace string `json:"namespace,omitempty"`
	// NamespaceID is the id of that namespace when the token was made
	// (see TokenNamespaceLive).
	NamespaceID string `json:"namespace_id,omitempty"`
}

// Expired reports whether the token no longer works at now.
func (e *TokenEntry) Expired(now time.Time) bool {
	return !e.ExpireTime.IsZero() && !now.Before(e.ExpireTime)
}

// AllowsAddr reports whether a request from ip may use the token: true
// when it has no bound_cidrs or ip is in one of them.
func (e *TokenEntry) AllowsAddr(ip net.IP) bool {
	if len(e.BoundCIDRs) == 0 {
		return true
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, s := range e.BoundCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(s); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

// Orphan reports whether the token has no parent.
func (e *TokenEntry) Orphan() bool { return e.Parent == "" }

// NewToken returns a fresh random token ("kr." + 32 random bytes).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "kr." + base64.RawURLEncoding.EncodeToString(b), nil
}

func newAccessor() (string, error) {
	acc := make([]byte, 16)
	if _, err := rand.Read(acc); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(acc), nil
}

// NewTokenEntry is the entry of a new token with policies, made at now,
// with a fresh accessor.
func NewTokenEntry(token string, policies []string, now time.Time) (*TokenEntry, error) {
	acc, err := newAccessor()
	if err != nil {
		return nil, err
	}
	return &TokenEntry{
		Accessor:     acc,
		Policies:     policies,
		CreationTime: now,
		DisplayName:  "root",
		Path:         "auth/token/root",
	}, nil
}

// LookupToken returns the entry of a token. The lookup is by SHA-256 of
// the token, so no token is compared byte by byte. It does not judge
// expiry (the caller does, with its clock). It returns ErrSealed or
// ErrPermissionDenied.
func (svc *Service) LookupToken(token string) (*TokenEntry, error) {
	if token == "" {
		return nil, ErrPermissionDenied
	}
	e, _, err := svc.readTokenEntry(hashToken(token))
	return e, err
}

// readTokenEntry reads the entry at a token hash with its revision.
func (svc *Service) readTokenEntry(hash string) (*TokenEntry, uint64, error) {
	v, rev, err := svc.st.Read(fsm.RecordToken + hash)
	if err != nil {
		return nil, 0, err
	}
	if v == nil {
		return nil, 0, ErrPermissionDenied
	}
	var e TokenEntry
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, 0, fmt.Errorf("access: reading token entry: %w", err)
	}
	return &e, rev, nil
}
