package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// Namespaces separate environments (dev, test, prod) inside one cluster,
// as Vault's X-Vault-Namespace does: a namespace has its own policies,
// tokens and keys, and a token of one namespace reaches nothing of
// another's.
//
//	sys/namespace/<ns>               → namespaceRecord (the namespace exists)
//	sys/ns/<ns>/policy/<name>        → PolicyRecord (its policies)
//
// Tokens carry their namespace in the entry, and the namespace's id: a
// namespace created again under the same name has another id, so a token
// of the old one can never act in the new one. Keys live in the transit
// engine under NamespaceKeyPrefix(ns) + name, a prefix that names in the
// root namespace may not use.

// namespaceRecord is a namespace. ID is random, made at creation;
// namespaces created before it existed have none.
type namespaceRecord struct {
	Created string `json:"created"`
	ID      string `json:"id,omitempty"`
}

// ErrNamespaceNotFound is returned for a namespace that does not exist.
var ErrNamespaceNotFound = errors.New("access: no such namespace")

// ErrNamespaceNotEmpty is returned by DeleteNamespace for a namespace
// that still holds transit keys.
var ErrNamespaceNotEmpty = errors.New("access: the namespace still holds keys")

// ValidNamespace reports whether name can name a namespace: 1 to 64
// lower-case letters, digits, '_' or '-', starting with a letter or digit
// (no '.', so that key names map back unambiguously).
func ValidNamespace(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// NamespaceKeyPrefix is the prefix of the transit key names of namespace
// ns ("" for the root namespace).
func NamespaceKeyPrefix(ns string) string {
	if ns == "" {
		return ""
	}
	return "ns." + ns + "."
}

// ReservedKeyPrefix is what no key name of the root namespace may start
// with: namespaced keys live there.
const ReservedKeyPrefix = "ns."

// CreateNamespace creates namespace name (no error, and no change, when
// it exists: its id, which its tokens carry, stays).
func (svc *Service) CreateNamespace(ctx context.Context, name string) error {
	if !ValidNamespace(name) {
		return fmt.Errorf("%w: a namespace name is 1 to 64 lower-case letters, digits, '_' or '-'", ErrInvalidRequest)
	}
	if _, rev, err := svc.namespace(name); err != nil || rev != 0 {
		return err
	}
	id, err := NewID()
	if err != nil {
		return err
	}
	v, _ := json.Marshal(namespaceRecord{Created: time.Now().UTC().Format(time.RFC3339), ID: id})
	_, err = svc.st.Commit(ctx, &store.Txn{Expect: []fsm.Cond{{Key: fsm.RecordNamespace + name}},
		Writes: []store.Write{{Key: fsm.RecordNamespace + name, Value: v}}})
	if errors.Is(err, fsm.ErrConflict) {
		return nil // created meanwhile
	}
	return err
}

// namespace reads namespace name's record and revision (0: it does not
// exist).
func (svc *Service) namespace(name string) (*namespaceRecord, uint64, error) {
	v, rev, err := svc.st.Read(fsm.RecordNamespace + name)
	if err != nil || v == nil {
		return nil, 0, err
	}
	var r namespaceRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, 0, fmt.Errorf("access: reading namespace %s: %w", name, err)
	}
	return &r, rev, nil
}

// TokenNamespaceLive reports whether the namespace a token belongs to is
// still the one it was made in: it exists and has the id the token
// carries. A root-namespace token always passes. A token that lost its
// namespace is refused by the API (and revoked by TidyTokens).
func (svc *Service) TokenNamespaceLive(e *TokenEntry) (bool, error) {
	if e.Namespace == "" {
		return true, nil
	}
	if !ValidNamespace(e.Namespace) {
		return false, nil
	}
	r, rev, err := svc.namespace(e.Namespace)
	if err != nil || rev == 0 {
		return false, err
	}
	return r.ID == e.NamespaceID, nil
}

// NamespaceExists reports whether namespace name exists ("" always does).
func (svc *Service) NamespaceExists(name string) (bool, error) {
	if name == "" {
		return true, nil
	}
	if !ValidNamespace(name) {
		return false, nil
	}
	rev, err := svc.st.Revision(fsm.RecordNamespace + name)
	return rev != 0, err
}

// ListNamespaces returns the namespace names, sorted.
func (svc *Service) ListNamespaces() ([]string, error) { return svc.st.List(fsm.RecordNamespace) }

// DeleteNamespace removes a namespace, its policies, and revokes every
// token of it (with the tokens made under them) and every grant those
// tokens hold, in one Raft entry: nothing of it works again, even if a
// namespace of the same name is created later (which gets a new id; a
// token made while the deletion was prepared carries the old id and is
// refused, then tidied). A namespace that still holds transit keys is
// refused with ErrNamespaceNotEmpty: its keys would otherwise be left to
// whoever creates the name next, and deleting key material is the key
// lifecycle's business (deletion_allowed, destroy), not a side effect.
// Certificate roles and grants are root-namespace objects (the API offers
// cert auth and grants only there), so a namespace has none of its own
// beyond its tokens' grants.
func (svc *Service) DeleteNamespace(ctx context.Context, name string) error {
	if !ValidNamespace(name) {
		return ErrNamespaceNotFound
	}
	for attempt := 0; ; attempt++ {
		err := svc.deleteNamespaceOnce(ctx, name)
		if errors.Is(err, fsm.ErrConflict) && attempt < maxTokenRetries {
			continue
		}
		return err
	}
}

func (svc *Service) deleteNamespaceOnce(ctx context.Context, name string) error {
	_, rev, err := svc.namespace(name)
	if err != nil {
		return err
	}
	if rev == 0 {
		return ErrNamespaceNotFound
	}
	keys, err := svc.st.List(fsm.RecordTransitKey + NamespaceKeyPrefix(name))
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		return fmt.Errorf("%w: namespace %s still holds %d transit key(s); delete them first (in the namespace: "+
			"transit/keys/:name/config deletion_allowed=true, then DELETE transit/keys/:name)", ErrNamespaceNotEmpty, name, len(keys))
	}
	txn, err := svc.revokeNamespaceTokensTxn(name)
	if err != nil {
		return err
	}
	txn.Expect = append(txn.Expect, fsm.Cond{Key: fsm.RecordNamespace + name, Revision: rev})
	txn.Writes = append(txn.Writes,
		store.Write{Key: fsm.RecordNamespace + name, Delete: true},
		store.Write{Key: fsm.RecordNamespaceData + name + "/", Delete: true, Prefix: true})
	_, err = svc.st.Commit(ctx, txn)
	return err
}

// policyPrefix is where the policies of namespace ns live.
func policyPrefix(ns string) string {
	if ns == "" {
		return fsm.RecordPolicy
	}
	return fsm.RecordNamespaceData + ns + "/" + fsm.RecordNamespacePolicy
}
