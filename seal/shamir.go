package seal

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Shamir secret sharing over GF(2^8) with the AES reduction polynomial.
//
// A share is the secret's length plus one byte: the polynomial values for
// each secret byte followed by the share's x coordinate (never zero). The
// field arithmetic below is branch-free and uses no lookup tables, so its
// timing does not depend on the secret.

// ErrInvalidShares is returned by Combine when the shares cannot belong together.
var ErrInvalidShares = errors.New("seal: invalid shares")

// gfMul multiplies a and b in GF(2^8) in constant time.
func gfMul(a, b byte) byte {
	var p byte
	for i := 0; i < 8; i++ {
		// mask is 0xff when the low bit of b is set.
		mask := -(b & 1)
		p ^= a & mask
		carry := -(a >> 7)
		a = (a << 1) ^ (0x1b & carry)
		b >>= 1
	}
	return p
}

// gfInv returns the multiplicative inverse of a (a^254); gfInv(0) is 0.
func gfInv(a byte) byte {
	// a^254 = a^(2+4+8+16+32+64+128)
	r := byte(1)
	sq := a
	for i := 0; i < 7; i++ {
		sq = gfMul(sq, sq) // a^(2^(i+1))
		r = gfMul(r, sq)
	}
	return r
}

// Split divides secret into parts shares, any threshold of which recover it.
// It requires 1 <= threshold <= parts <= 255 and a non-empty secret.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, errors.New("seal: cannot split an empty secret")
	case parts < 1 || parts > 255:
		return nil, fmt.Errorf("seal: shares must be between 1 and 255, got %d", parts)
	case threshold < 1 || threshold > parts:
		return nil, fmt.Errorf("seal: threshold must be between 1 and the number of shares (%d), got %d", parts, threshold)
	}
	xs, err := distinctXs(parts)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, parts)
	for i := range out {
		out[i] = make([]byte, len(secret)+1)
		out[i][len(secret)] = xs[i]
	}
	coeffs := make([]byte, threshold) // coeffs[0] is the secret byte
	defer clear(coeffs)
	for j, s := range secret {
		coeffs[0] = s
		if _, err := rand.Read(coeffs[1:]); err != nil {
			return nil, fmt.Errorf("seal: reading randomness: %w", err)
		}
		for i := range out {
			out[i][j] = evalPoly(coeffs, xs[i])
		}
	}
	return out, nil
}

// distinctXs returns n distinct random non-zero x coordinates.
func distinctXs(n int) ([]byte, error) {
	// A random permutation of 1..255 (Fisher-Yates driven by crypto/rand).
	all := make([]byte, 255)
	for i := range all {
		all[i] = byte(i + 1)
	}
	var b [2]byte
	for i := len(all) - 1; i > 0; i-- {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("seal: reading randomness: %w", err)
		}
		j := int(uint16(b[0])<<8|uint16(b[1])) % (i + 1)
		all[i], all[j] = all[j], all[i]
	}
	return all[:n], nil
}

// evalPoly evaluates the polynomial with the given coefficients at x (Horner).
func evalPoly(coeffs []byte, x byte) byte {
	var y byte
	for i := len(coeffs) - 1; i >= 0; i-- {
		y = gfMul(y, x) ^ coeffs[i]
	}
	return y
}

// Combine recovers the secret from shares made by Split. Given fewer shares
// than the threshold, or shares of different secrets, it returns a wrong
// secret rather than an error: callers detect that by failing to unwrap
// with it. It returns ErrInvalidShares for malformed input.
func Combine(shares [][]byte) ([]byte, error) {
	if len(shares) == 0 {
		return nil, fmt.Errorf("%w: no shares", ErrInvalidShares)
	}
	n := len(shares[0])
	if n < 2 {
		return nil, fmt.Errorf("%w: share too short", ErrInvalidShares)
	}
	xs := make([]byte, len(shares))
	for i, s := range shares {
		if len(s) != n {
			return nil, fmt.Errorf("%w: shares have different lengths", ErrInvalidShares)
		}
		x := s[n-1]
		if x == 0 {
			return nil, fmt.Errorf("%w: share has a zero x coordinate", ErrInvalidShares)
		}
		for _, prev := range xs[:i] {
			if subtle.ConstantTimeByteEq(prev, x) == 1 {
				return nil, fmt.Errorf("%w: duplicate share", ErrInvalidShares)
			}
		}
		xs[i] = x
	}
	// Lagrange basis at 0: l_i = prod_{j!=i} x_j / (x_j - x_i); subtraction is xor.
	basis := make([]byte, len(shares))
	for i := range shares {
		num, den := byte(1), byte(1)
		for j := range shares {
			if i == j {
				continue
			}
			num = gfMul(num, xs[j])
			den = gfMul(den, xs[j]^xs[i])
		}
		basis[i] = gfMul(num, gfInv(den))
	}
	secret := make([]byte, n-1)
	for k := range secret {
		var v byte
		for i, s := range shares {
			v ^= gfMul(s[k], basis[i])
		}
		secret[k] = v
	}
	return secret, nil
}
