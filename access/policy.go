package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/keyraft/keyraft/acl"
	"github.com/keyraft/keyraft/store"
)

// ErrPolicyNotFound is returned for a policy that does not exist.
var ErrPolicyNotFound = errors.New("access: no such policy")

// ErrPolicyBuiltin is returned for a write or delete of a policy the
// cluster keeps itself: root never, default never deleted.
var ErrPolicyBuiltin = errors.New("access: built-in policy cannot be changed")

// DefaultPolicySource is the built-in "default" policy, attached to every
// token that is not a root token (as in Vault): a token may look itself
// up, renew and revoke itself and ask what it may do, and nothing else.
// An operator may replace it with PutPolicy; DeletePolicy refuses it.
const DefaultPolicySource = `# default: what every token may do to itself
path "auth/token/lookup-self" {
  capabilities = ["read", "update"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}

path "sys/capabilities-self" {
  capabilities = ["update"]
}
`

// PolicyRecord is the stored form of a policy: its name and HCL source as
// written (the source is what a read gives back).
type PolicyRecord struct {
	Name   string `json:"name"`
	Policy string `json:"policy"`
}

// PutPolicy parses src and stores it as the policy name through Raft. It
// returns the *acl.ParseError of a bad source (with line and column),
// ErrPolicyBuiltin for "root", ErrSealed or a commit error.
func (svc *Service) PutPolicy(ctx context.Context, name, src string) error {
	return svc.PutPolicyIn(ctx, "", name, src)
}

// PutPolicyIn is PutPolicy in namespace ns ("" for the root namespace).
func (svc *Service) PutPolicyIn(ctx context.Context, ns, name, src string) error {
	if strings.EqualFold(name, "root") {
		return ErrPolicyBuiltin
	}
	if !validPolicyName(name) {
		return fmt.Errorf("%w: a policy name is 1 to 128 printable ASCII characters without \"/\"", ErrInvalidRequest)
	}
	if _, err := acl.Parse(name, []byte(src)); err != nil {
		return err
	}
	v, _ := json.Marshal(PolicyRecord{Name: name, Policy: src})
	_, err := svc.st.Commit(ctx, &store.Txn{Writes: []store.Write{{Key: policyPrefix(ns) + name, Value: v}}})
	return err
}

// ReadPolicy returns the source of the policy name and the revision of
// its record (0 for a built-in policy nobody wrote). It returns
// ErrPolicyNotFound, ErrSealed or ErrNotReady.
func (svc *Service) ReadPolicy(name string) (src string, rev uint64, err error) {
	return svc.ReadPolicyIn("", name)
}

// ReadPolicyIn is ReadPolicy in namespace ns.
func (svc *Service) ReadPolicyIn(ns, name string) (src string, rev uint64, err error) {
	if name == "root" {
		return "", 0, nil
	}
	if !validPolicyName(name) {
		return "", 0, ErrPolicyNotFound
	}
	v, rev, err := svc.st.Read(policyPrefix(ns) + name)
	if err != nil {
		return "", 0, err
	}
	if v == nil {
		if name == "default" {
			return DefaultPolicySource, 0, nil
		}
		return "", 0, ErrPolicyNotFound
	}
	var rec PolicyRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return "", 0, fmt.Errorf("access: reading policy %s: %w", name, err)
	}
	return rec.Policy, rev, nil
}

// PolicyRevision returns the revision of the record of policy name (0
// when it has none), without decrypting it: callers validate a cache.
func (svc *Service) PolicyRevision(name string) (uint64, error) {
	return svc.PolicyRevisionIn("", name)
}

// PolicyRevisionIn is PolicyRevision in namespace ns.
func (svc *Service) PolicyRevisionIn(ns, name string) (uint64, error) {
	if !validPolicyName(name) {
		return 0, nil
	}
	return svc.st.Revision(policyPrefix(ns) + name)
}

// ListPolicies returns the names of every policy, built-in ones included,
// sorted.
func (svc *Service) ListPolicies() ([]string, error) {
	return svc.ListPoliciesIn("")
}

// ListPoliciesIn is ListPolicies in namespace ns.
func (svc *Service) ListPoliciesIn(ns string) ([]string, error) {
	keys, err := svc.st.List(policyPrefix(ns))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{"root": true, "default": true}
	out := []string{"default", "root"}
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// DeletePolicy removes the policy name. Deleting a policy that does not
// exist succeeds (as in Vault). It returns ErrPolicyBuiltin for root and
// default, ErrSealed or a commit error.
func (svc *Service) DeletePolicy(ctx context.Context, name string) error {
	return svc.DeletePolicyIn(ctx, "", name)
}

// DeletePolicyIn is DeletePolicy in namespace ns.
func (svc *Service) DeletePolicyIn(ctx context.Context, ns, name string) error {
	if name == "root" || name == "default" {
		return ErrPolicyBuiltin
	}
	if !validPolicyName(name) {
		return nil
	}
	_, err := svc.st.Commit(ctx, &store.Txn{Writes: []store.Write{{Key: policyPrefix(ns) + name, Delete: true}}})
	return err
}

// validPolicyName is what can name a record: acl.Parse decides what a
// policy may be called; this only keeps lookups of garbage cheap.
func validPolicyName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c == '/' || c >= 0x7f {
			return false
		}
	}
	return true
}
