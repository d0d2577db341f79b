package access

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// ErrCertRoleNotFound is returned for a role that does not exist.
var ErrCertRoleNotFound = errors.New("access: no such certificate role")

// ErrCertNoMatch is returned by CertLogin when no role accepts the
// client certificate (none given, not signed by a role's CA, expired, or
// names not allowed).
var ErrCertNoMatch = errors.New("access: no certificate role matches the client certificate")

// CertRole maps client certificates to policies (Vault's cert auth
// "certs" entries): a certificate that chains to Certificate (PEM, one or
// more CAs) and whose names match gets a token with Policies for TTL.
type CertRole struct {
	Name string `json:"name"`
	// Certificate is the PEM of the CA(s) a client certificate must
	// chain to.
	Certificate string `json:"certificate"`
	// AllowedCommonNames and AllowedDNSSANs restrict the names; globs
	// ("*.example.com") as path.Match. Empty lists allow any.
	AllowedCommonNames []string      `json:"allowed_common_names,omitempty"`
	AllowedDNSSANs     []string      `json:"allowed_dns_sans,omitempty"`
	Policies           []string      `json:"token_policies"`
	TTL                time.Duration `json:"token_ttl,omitempty"`
	DisplayName        string        `json:"display_name,omitempty"`
}

// maxCertRoles bounds the roles a login without a name tries.
const maxCertRoles = 1000

// Validate checks a role before it is stored: the PEM holds at least one
// CA certificate, the globs are valid, there is a policy.
func (r *CertRole) Validate() error {
	if !validPolicyName(r.Name) {
		return fmt.Errorf("%w: a role name is 1 to 128 printable ASCII characters without \"/\"", ErrInvalidRequest)
	}
	if _, err := r.pool(); err != nil {
		return err
	}
	for _, g := range append(slices.Clone(r.AllowedCommonNames), r.AllowedDNSSANs...) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("%w: bad name pattern %q", ErrInvalidRequest, g)
		}
	}
	if len(r.Policies) == 0 {
		return fmt.Errorf("%w: token_policies is required", ErrInvalidRequest)
	}
	if slices.Contains(r.Policies, "root") {
		return fmt.Errorf("%w: a certificate role cannot grant the root policy", ErrInvalidRequest)
	}
	if r.TTL < 0 || r.TTL > MaxTokenTTL {
		return fmt.Errorf("%w: token_ttl must be between 0 and %s", ErrInvalidRequest, MaxTokenTTL)
	}
	return nil
}

func (r *CertRole) pool() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	rest, n := []byte(r.Certificate), 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrInvalidRequest, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: certificate must hold at least one PEM CERTIFICATE", ErrInvalidRequest)
	}
	return pool, nil
}

// matches reports whether the client chain (leaf first) is accepted.
func (r *CertRole) matches(chain []*x509.Certificate, now time.Time) bool {
	pool, err := r.pool()
	if err != nil || len(chain) == 0 {
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return false
	}
	if len(r.AllowedCommonNames) > 0 && !anyGlob(r.AllowedCommonNames, leaf.Subject.CommonName) {
		return false
	}
	if len(r.AllowedDNSSANs) > 0 {
		ok := false
		for _, san := range leaf.DNSNames {
			if anyGlob(r.AllowedDNSSANs, san) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func anyGlob(globs []string, s string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, s); ok {
			return true
		}
	}
	return false
}

// PutCertRole validates and stores a role through Raft.
func (svc *Service) PutCertRole(ctx context.Context, r CertRole) error {
	if err := r.Validate(); err != nil {
		return err
	}
	v, _ := json.Marshal(r)
	_, err := svc.st.Commit(ctx, &store.Txn{Writes: []store.Write{{Key: fsm.RecordCertRole + r.Name, Value: v}}})
	return err
}

// ReadCertRole returns a role, ErrCertRoleNotFound or ErrSealed.
func (svc *Service) ReadCertRole(name string) (*CertRole, error) {
	if !validPolicyName(name) {
		return nil, ErrCertRoleNotFound
	}
	v, _, err := svc.st.Read(fsm.RecordCertRole + name)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, ErrCertRoleNotFound
	}
	var r CertRole
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("access: reading certificate role: %w", err)
	}
	return &r, nil
}

// ListCertRoles returns the role names, sorted.
func (svc *Service) ListCertRoles() ([]string, error) { return svc.st.List(fsm.RecordCertRole) }

// DeleteCertRole removes a role (no error when absent). Tokens it issued
// live on until they expire or are revoked.
func (svc *Service) DeleteCertRole(ctx context.Context, name string) error {
	if !validPolicyName(name) {
		return nil
	}
	_, err := svc.st.Commit(ctx, &store.Txn{Writes: []store.Write{{Key: fsm.RecordCertRole + name, Delete: true}}})
	return err
}

// CertLogin finds the role (the named one, or the first in name order)
// that accepts the client chain at now and creates an orphan token with
// its policies, as Vault's cert auth login does. It returns the token, its
// entry and the role, ErrCertNoMatch, ErrCertRoleNotFound or a commit
// error.
func (svc *Service) CertLogin(ctx context.Context, chain []*x509.Certificate, role string, now time.Time) (string, *TokenEntry, *CertRole, error) {
	if len(chain) == 0 {
		return "", nil, nil, ErrCertNoMatch
	}
	var names []string
	if role != "" {
		names = []string{role}
	} else {
		var err error
		if names, err = svc.ListCertRoles(); err != nil {
			return "", nil, nil, err
		}
		if len(names) > maxCertRoles {
			names = names[:maxCertRoles]
		}
	}
	for _, name := range names {
		r, err := svc.ReadCertRole(name)
		if errors.Is(err, ErrCertRoleNotFound) && role == "" {
			continue
		}
		if err != nil {
			return "", nil, nil, err
		}
		if !r.matches(chain, now) {
			continue
		}
		display := r.DisplayName
		if display == "" {
			display = "cert-" + chain[0].Subject.CommonName
		}
		tok, e, err := svc.CreateToken(ctx, TokenRequest{
			Policies: append([]string{"default"}, r.Policies...), TTL: r.TTL, DisplayName: display,
			Meta: map[string]string{"cert_name": r.Name, "common_name": chain[0].Subject.CommonName,
				MetaCertFingerprint: certFingerprint(chain[0])},
			Renewable: true, Path: "auth/cert/login", Now: now,
		})
		return tok, e, r, err
	}
	return "", nil, nil, ErrCertNoMatch
}

// MetaCertFingerprint is the token metadata of a certificate login that
// names the client certificate (hex SHA-256 of its DER): the two-person
// rule treats tokens from one certificate as one identity.
const MetaCertFingerprint = "cert_sha256"

func certFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
