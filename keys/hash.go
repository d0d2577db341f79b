package keys

import (
	"crypto"
	_ "crypto/sha1" // registers crypto.SHA1
	_ "crypto/sha256"
	_ "crypto/sha3"
	_ "crypto/sha512"
	"strings"
)

// hashAlgorithms maps the transit hash_algorithm names to hash functions.
// "none" maps to crypto.Hash(0) and is only meaningful for prehashed RSA
// PKCS#1 v1.5 signatures.
var hashAlgorithms = []struct {
	name string
	hash crypto.Hash
}{
	{"sha1", crypto.SHA1},
	{"sha2-224", crypto.SHA224},
	{"sha2-256", crypto.SHA256},
	{"sha2-384", crypto.SHA384},
	{"sha2-512", crypto.SHA512},
	{"sha3-224", crypto.SHA3_224},
	{"sha3-256", crypto.SHA3_256},
	{"sha3-384", crypto.SHA3_384},
	{"sha3-512", crypto.SHA3_512},
	{"none", 0},
}

const hashNone = "none"

func hashNames(includeSHA1, includeNone bool) string {
	var s []string
	for _, a := range hashAlgorithms {
		if (a.name == "sha1" && !includeSHA1) || (a.name == hashNone && !includeNone) {
			continue
		}
		s = append(s, a.name)
	}
	return strings.Join(s, ", ")
}

var (
	signHashNames = hashNames(true, true)
	hashHashNames = hashNames(true, false)
	hmacHashNames = hashNames(false, false)
)

// lookupHash resolves a hash_algorithm name ("" means sha2-256).
func lookupHash(name string) (crypto.Hash, bool) {
	if name == "" {
		return crypto.SHA256, true
	}
	for _, a := range hashAlgorithms {
		if a.name == name {
			return a.hash, true
		}
	}
	return 0, false
}

// signHash resolves SignOptions.HashAlgorithm; crypto.Hash(0) means "none".
func signHash(name string) (crypto.Hash, error) {
	h, ok := lookupHash(name)
	if !ok {
		return 0, invalidInput("invalid hash_algorithm %q: valid algorithms are %s", name, signHashNames)
	}
	return h, nil
}

// hmacHash resolves an HMAC algorithm name: sha2-* and sha3-* only.
func hmacHash(name string) (crypto.Hash, error) {
	h, ok := lookupHash(name)
	if !ok || h == 0 || h == crypto.SHA1 {
		return 0, invalidInput("invalid hmac algorithm %q: valid algorithms are %s", name, hmacHashNames)
	}
	return h, nil
}

// Hash returns the digest of input. algorithm uses the hash_algorithm names
// of SignOptions ("" means sha2-256); "none" is refused because it computes
// no digest.
func Hash(algorithm string, input []byte) ([]byte, error) {
	h, ok := lookupHash(algorithm)
	if !ok || h == 0 {
		return nil, invalidInput("invalid hash algorithm %q: valid algorithms are %s", algorithm, hashHashNames)
	}
	return digest(h, input), nil
}

func digest(h crypto.Hash, input []byte) []byte {
	hh := h.New()
	hh.Write(input)
	return hh.Sum(nil)
}
