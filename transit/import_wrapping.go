package transit

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// The wrapping key is the cluster's RSA-4096 key for bring-your-own-key
// imports (Vault's transit/wrapping_key). There is one per cluster: the
// first node that needs it generates it and commits it on the condition
// that no other node did first, so concurrent first calls on several
// nodes end up with the same key (the losers read the winner's). The
// private key is stored like every record, under the barrier, and kept
// parsed in memory, keyed by the record's revision, until the node seals.

// wrappingKeyBits is the size of the wrapping key; Vault's import format
// fixes the RSA-OAEP part of a ciphertext at 512 bytes.
const wrappingKeyBits = 4096

// wrappedEphemeralKeyLen is the length of the RSA-OAEP part of an import
// ciphertext.
const wrappedEphemeralKeyLen = wrappingKeyBits / 8

// wrappingRecord is the stored form.
type wrappingRecord struct {
	// PKCS8 is the private key, PKCS#8 DER.
	PKCS8        []byte    `json:"pkcs8"`
	CreationTime time.Time `json:"creation_time"`
}

// wrappingCache holds the parsed wrapping key of one engine.
type wrappingCache struct {
	// gen serializes generation on this node: a burst of first calls
	// makes one key here, not one per request.
	gen sync.Mutex
	// key caches the one record (under the name ""); its Purge zeroes the
	// key. A key replaced by another (a snapshot restore brought another
	// cluster's) is not zeroed, as a request may still be using it.
	key store.Cache[*parsedWrappingKey]
}

// parsedWrappingKey is the wrapping key and its public half as PEM.
type parsedWrappingKey struct {
	key *rsa.PrivateKey
	pem string
}

func (w *parsedWrappingKey) zero() {
	if w != nil {
		zeroRSA(w.key)
	}
}

// purge drops and zeroes the cached key (the node sealed).
func (c *wrappingCache) purge() { c.key.Purge() }

// zeroRSA overwrites the private parts of k that Go lets us reach (the
// words of D, the primes and the CRT values). The standard library keeps
// its own precomputed copy that cannot be reached; it becomes garbage.
func zeroRSA(k *rsa.PrivateKey) {
	if k == nil {
		return
	}
	for _, n := range []*big.Int{k.D, k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv} {
		if n != nil {
			clear(n.Bits())
		}
	}
	for _, p := range k.Primes {
		if p != nil {
			clear(p.Bits())
		}
	}
}

// WrappingKey handles GET transit/wrapping_key: the public half of the
// cluster's wrapping key as a PEM "PUBLIC KEY" (PKIX), made on first use.
// Its errors are the store's (store.ErrSealed while sealed, a failed
// commit of a new key).
func (e *Engine) WrappingKey(ctx context.Context) (*Response, error) {
	_, pemKey, err := e.wrappingKey(ctx)
	if err != nil {
		return nil, err
	}
	return ok(map[string]any{"public_key": pemKey}), nil
}

// wrappingKey returns the wrapping key, generating and committing it when
// the cluster has none. The returned key is shared: callers must not
// modify it.
func (e *Engine) wrappingKey(ctx context.Context) (*rsa.PrivateKey, string, error) {
	c := &e.wrap
	for attempt := 0; attempt < 5; attempt++ {
		w, err := c.key.Get("", store.AppliedIndex(e.store),
			func() (uint64, error) { return e.store.Revision(fsm.RecordTransitWrappingKey) },
			func(uint64) (*parsedWrappingKey, uint64, error) { return e.loadWrappingKey() })
		if err != nil {
			return nil, "", err
		}
		if w != nil {
			return w.key, w.pem, nil
		}
		err = e.createWrappingKey(ctx)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return nil, "", err
		}
		// Made here, or by another node first: read it.
	}
	return nil, "", errors.New("transit: the wrapping key kept changing while it was read")
}

// loadWrappingKey reads and parses the stored wrapping key (nil when
// there is none).
func (e *Engine) loadWrappingKey() (*parsedWrappingKey, uint64, error) {
	raw, rev, err := e.store.Read(fsm.RecordTransitWrappingKey)
	if err != nil || raw == nil {
		return nil, 0, err
	}
	defer clear(raw)
	var rec wrappingRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, 0, fmt.Errorf("transit: decoding the wrapping key record: %w", err)
	}
	defer clear(rec.PKCS8)
	parsed, err := x509.ParsePKCS8PrivateKey(rec.PKCS8)
	k, isRSA := parsed.(*rsa.PrivateKey)
	if err != nil || !isRSA || k.N.BitLen() != wrappingKeyBits {
		return nil, 0, errors.New("transit: the stored wrapping key is not an RSA-4096 key")
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, 0, err
	}
	return &parsedWrappingKey{key: k, pem: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}, rev, nil
}

// createWrappingKey generates a wrapping key and commits it if the
// cluster still has none (store.ErrConflict otherwise).
func (e *Engine) createWrappingKey(ctx context.Context) error {
	c := &e.wrap
	c.gen.Lock()
	defer c.gen.Unlock()
	if rev, err := e.store.Revision(fsm.RecordTransitWrappingKey); err != nil || rev != 0 {
		return err // made meanwhile (by this node's other request, or another node)
	}
	k, err := rsa.GenerateKey(rand.Reader, wrappingKeyBits)
	if err != nil {
		return fmt.Errorf("transit: generating the wrapping key: %w", err)
	}
	defer zeroRSA(k)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	defer clear(der)
	b, err := json.Marshal(wrappingRecord{PKCS8: der, CreationTime: e.Now().UTC()})
	if err != nil {
		return err
	}
	defer clear(b)
	_, err = e.store.Commit(ctx, &store.Txn{
		Expect: []fsm.Cond{{Key: fsm.RecordTransitWrappingKey, Revision: 0}},
		Writes: []store.Write{{Key: fsm.RecordTransitWrappingKey, Value: b}},
	})
	if err == nil {
		e.log.Info("made the cluster's wrapping key for key imports")
	}
	return err
}
