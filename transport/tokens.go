package transport

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/keyraft/keyraft/access"
)

// tokenRecordPrefix is where the cluster keeps token entries: at
// auth/token/<hex sha256(token)> (see access.TokenEntry).
const tokenRecordPrefix = "auth/token/"

// maxCachedTokens bounds the token cache; when full it starts over.
const maxCachedTokens = 4096

// tokenCache remembers the entries of tokens that authenticated, so the
// hot path does not decrypt and decode the token record on every request.
// An entry is used only while its record still has the revision it was
// read at: a changed or revoked token is looked up again. Only valid
// tokens are cached, by their hash; the cache is dropped on seal.
type tokenCache struct {
	mu sync.RWMutex
	m  map[string]cachedToken
}

type cachedToken struct {
	rev   uint64
	entry access.TokenEntry
	// validAt: a Raft applied index at which the record still had rev.
	validAt uint64
}

func (c *tokenCache) purge() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// lookupToken returns the entry of token, or access.ErrPermissionDenied,
// cluster.ErrSealed or a storage error.
func (a *API) lookupToken(token string) (*access.TokenEntry, error) {
	if token == "" {
		return nil, access.ErrPermissionDenied
	}
	sum := sha256.Sum256([]byte(token))
	id := hex.EncodeToString(sum[:])
	c := &a.tokens
	// Nothing applied since the entry was last checked: it is current.
	_, applied := a.cfg.Node.RaftIndexes()
	c.mu.RLock()
	ct, ok := c.m[id]
	c.mu.RUnlock()
	if ok && applied != 0 && ct.validAt == applied {
		return ct.copyEntry(), nil
	}
	rev, err := a.cfg.Node.Revision(tokenRecordPrefix + id)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		c.mu.Lock()
		delete(c.m, id)
		c.mu.Unlock()
		return nil, access.ErrPermissionDenied
	}
	if ok && ct.rev == rev {
		c.mu.Lock()
		if cur, still := c.m[id]; still && cur.rev == rev {
			cur.validAt = applied
			c.m[id] = cur
		}
		c.mu.Unlock()
		return ct.copyEntry(), nil
	}
	// The record read now is at least as new as rev; tagging it with rev
	// is safe: if the revision moves on, the next request reads it again.
	te, err := a.cfg.Access.LookupToken(token)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedTokens {
		c.m = map[string]cachedToken{}
	}
	ct = cachedToken{rev: rev, entry: *te}
	if rev <= applied {
		ct.validAt = applied
	}
	ct.entry.Policies = append([]string(nil), te.Policies...)
	c.m[id] = ct
	c.mu.Unlock()
	return te, nil
}

func (ct cachedToken) copyEntry() *access.TokenEntry {
	e := ct.entry
	e.Policies = append([]string(nil), ct.entry.Policies...)
	return &e
}
