package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyraft/keyraft/fsm"
)

// Namespaces separate environments (dev, test, prod) inside one cluster,
// as Vault's X-Vault-Namespace does: a namespace has its own policies,
// tokens and keys, and a token of one namespace reaches nothing of
// another's.
//
//	sys/namespace/<ns>               → {} (the namespace exists)
//	sys/ns/<ns>/policy/<name>        → PolicyRecord (its policies)
//
// Tokens carry their namespace in the entry; keys live in the transit
// engine under NamespaceKeyPrefix(ns) + name, a prefix that names in the
// root namespace may not use.
const (
	prefixNamespace = "sys/namespace/"
	prefixNSData    = "sys/ns/"
)

// ErrNamespaceNotFound is returned for a namespace that does not exist.
var ErrNamespaceNotFound = errors.New("cluster: no such namespace")

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

// CreateNamespace creates namespace name (no error when it exists).
func (n *Node) CreateNamespace(ctx context.Context, name string) error {
	if !ValidNamespace(name) {
		return fmt.Errorf("%w: a namespace name is 1 to 64 lower-case letters, digits, '_' or '-'", ErrInvalidRequest)
	}
	_, err := n.Commit(ctx, &Txn{Writes: []Write{{Key: prefixNamespace + name, Value: []byte(`{"created":"` + time.Now().UTC().Format(time.RFC3339) + `"}`)}}})
	return err
}

// NamespaceExists reports whether namespace name exists ("" always does).
func (n *Node) NamespaceExists(name string) (bool, error) {
	if name == "" {
		return true, nil
	}
	if !ValidNamespace(name) {
		return false, nil
	}
	rev, err := n.Revision(prefixNamespace + name)
	return rev != 0, err
}

// ListNamespaces returns the namespace names, sorted.
func (n *Node) ListNamespaces() ([]string, error) { return n.List(prefixNamespace) }

// DeleteNamespace removes a namespace and its policies. Its tokens stop
// working at once (their namespace is gone); its keys stay in the engine,
// unreachable, until the namespace is created again.
func (n *Node) DeleteNamespace(ctx context.Context, name string) error {
	if !ValidNamespace(name) {
		return ErrNamespaceNotFound
	}
	rev, err := n.Revision(prefixNamespace + name)
	if err != nil {
		return err
	}
	if rev == 0 {
		return ErrNamespaceNotFound
	}
	_, err = n.Commit(ctx, &Txn{Expect: []fsm.Cond{{Key: prefixNamespace + name, Revision: rev}}, Writes: []Write{
		{Key: prefixNamespace + name, Delete: true},
		{Key: prefixNSData + name + "/", Delete: true, Prefix: true},
	}})
	return err
}

// policyPrefix is where the policies of namespace ns live.
func policyPrefix(ns string) string {
	if ns == "" {
		return prefixPolicy
	}
	return prefixNSData + ns + "/policy/"
}
