package access

import (
	"maps"
	"slices"
	"sync"

	"github.com/keyraft/keyraft/acl"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// maxCached bounds each of the Service's caches.
const maxCached = 4096

// caches are what every request reads: the entry of its token and the
// parsed policies it names, each kept only while its record keeps the
// revision it was read at (store.Cache), so the hot path neither decrypts
// nor parses them again. Both are dropped on seal (Purge).
type caches struct {
	tokens   store.Cache[*TokenEntry]
	policies store.Cache[*acl.Policy]
}

func (c *caches) init() {
	c.tokens.Max = maxCached
	c.policies.Max = maxCached
	// A name without a policy is cached too: nothing, or the built-in
	// default for "default".
	c.policies.KeepAbsent = true
}

// Purge drops the cached entries and policies (the node seals).
func (svc *Service) Purge() {
	svc.cache.tokens.Purge()
	svc.cache.policies.Purge()
}

// CachedTokens is how many token entries the cache holds (for tests and
// metrics).
func (svc *Service) CachedTokens() int { return svc.cache.tokens.Len() }

// Authenticate returns the entry of token, as LookupToken does, from the
// cache while its record is unchanged. The entry is the caller's to
// change. It returns ErrPermissionDenied for no such token, ErrSealed, or
// a storage error; expiry and the rest are the caller's to judge.
func (svc *Service) Authenticate(token string) (*TokenEntry, error) {
	if token == "" {
		return nil, ErrPermissionDenied
	}
	hash := hashToken(token)
	key := fsm.RecordToken + hash
	e, err := svc.cache.tokens.Get(key, store.AppliedIndex(svc.st),
		func() (uint64, error) { return svc.st.Revision(key) },
		func(uint64) (*TokenEntry, uint64, error) {
			e, rev, err := svc.readTokenEntry(hash)
			if err == ErrPermissionDenied {
				return nil, 0, nil // gone since its revision was read
			}
			return e, rev, err
		})
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, ErrPermissionDenied
	}
	// A deep copy: the caller may change it, the cached entry is shared.
	out := *e
	out.Policies = slices.Clone(e.Policies)
	out.BoundCIDRs = slices.Clone(e.BoundCIDRs)
	out.Meta = maps.Clone(e.Meta)
	return &out, nil
}

var (
	defaultPolicyOnce sync.Once
	defaultPolicy     *acl.Policy
)

// BuiltinDefault is the parsed built-in default policy.
func BuiltinDefault() *acl.Policy {
	defaultPolicyOnce.Do(func() {
		p, err := acl.Parse("default", []byte(DefaultPolicySource))
		if err != nil {
			panic("access: the built-in default policy does not parse: " + err.Error())
		}
		defaultPolicy = p
	})
	return defaultPolicy
}

// Policies returns the parsed policies of names in namespace ns, from the
// cache while their records are unchanged. A name without a policy
// (deleted since the token was made) grants nothing and is left out, as
// in Vault; "root" is acl.Root.
func (svc *Service) Policies(ns string, names []string) ([]*acl.Policy, error) {
	out := make([]*acl.Policy, 0, len(names))
	applied := store.AppliedIndex(svc.st)
	for _, name := range names {
		if name == "root" {
			out = append(out, acl.Root)
			continue
		}
		p, err := svc.cache.policies.Get(ns+"\x00"+name, applied,
			func() (uint64, error) { return svc.PolicyRevisionIn(ns, name) },
			func(rev uint64) (*acl.Policy, uint64, error) { return svc.loadPolicy(ns, name, rev) })
		if err != nil {
			return nil, err
		}
		if p != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// loadPolicy reads and parses the policy name (rev 0: none, which is the
// built-in default for "default" and nothing else).
func (svc *Service) loadPolicy(ns, name string, rev uint64) (*acl.Policy, uint64, error) {
	if rev == 0 {
		if name == "default" {
			return BuiltinDefault(), 0, nil
		}
		return nil, 0, nil
	}
	src, readRev, err := svc.ReadPolicyIn(ns, name)
	if err == ErrPolicyNotFound {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	p, err := acl.Parse(name, []byte(src))
	if err != nil {
		// Stored policies were parsed before they were written; one that
		// no longer parses (a newer, stricter keyraft) grants nothing
		// rather than something unintended.
		svc.log.Warn("stored policy does not parse; it grants nothing", "policy", name, "error", err)
		p = nil
	}
	return p, readRev, nil
}
