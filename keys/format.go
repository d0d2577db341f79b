package keys

import (
	"encoding/base64"
	"strconv"
	"strings"
)

const (
	vaultPrefix = "vault:"
	maxVersion  = 1<<31 - 1
)

var (
	strictStd    = base64.StdEncoding.Strict()
	strictRawURL = base64.RawURLEncoding.Strict()
)

// FormatCiphertext returns "vault:v<version>:<standard base64 of body>".
// It is used for ciphertexts, signatures and HMACs alike.
func FormatCiphertext(version int, body []byte) string {
	return formatWith(base64.StdEncoding, version, body)
}

func formatWith(enc *base64.Encoding, version int, body []byte) string {
	var num [20]byte
	v := strconv.AppendInt(num[:0], int64(version), 10)
	b := make([]byte, 0, len(vaultPrefix)+1+len(v)+1+enc.EncodedLen(len(body)))
	b = append(b, vaultPrefix...)
	b = append(b, 'v')
	b = append(b, v...)
	b = append(b, ':')
	b = enc.AppendEncode(b, body)
	return string(b)
}

// ParseCiphertext parses "vault:v<N>:<base64>" strictly: N is a decimal
// integer in 1..2^31-1 without sign or leading zeros, and the body is
// non-empty, canonical, padded standard base64 with no whitespace. For every
// string it accepts, FormatCiphertext(version, body) gives the string back.
// Errors wrap ErrInvalidCiphertext and say what is wrong.
func ParseCiphertext(s string) (version int, body []byte, err error) {
	version, rest, err := parseVersionPrefix(s, invalidCiphertext)
	if err != nil {
		return 0, nil, err
	}
	body, ok := decodeStrict(strictStd, rest)
	if !ok {
		return 0, nil, invalidCiphertext("invalid base64")
	}
	return version, body, nil
}

// ParseSignature parses a signature or HMAC string "vault:v<N>:<base64>".
// It is ParseCiphertext, except that the body may also be unpadded
// URL-safe base64 (the encoding of ecdsa signatures with marshaling
// algorithm jws). Errors wrap ErrInvalidCiphertext and start with
// "invalid signature:".
func ParseSignature(s string) (version int, body []byte, err error) {
	version, rest, err := parseVersionPrefix(s, invalidSignature)
	if err != nil {
		return 0, nil, err
	}
	if body, ok := decodeStrict(strictStd, rest); ok {
		return version, body, nil
	}
	if body, ok := decodeStrict(strictRawURL, rest); ok {
		return version, body, nil
	}
	return 0, nil, invalidSignature("invalid base64")
}

func parseVersionPrefix(s string, mkErr func(string) error) (int, string, error) {
	if !strings.HasPrefix(s, vaultPrefix) {
		return 0, "", mkErr("missing vault: prefix")
	}
	s = s[len(vaultPrefix):]
	num, rest, found := strings.Cut(s, ":")
	if !found || len(num) < 2 || num[0] != 'v' {
		return 0, "", mkErr("invalid version")
	}
	num = num[1:]
	// Digits only: strconv.Atoi alone would accept a sign.
	if num[0] == '0' || len(num) > 10 {
		return 0, "", mkErr("invalid version")
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, "", mkErr("invalid version")
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 1 || v > maxVersion {
		return 0, "", mkErr("invalid version")
	}
	if rest == "" {
		return 0, "", mkErr("empty body")
	}
	return int(v), rest, nil
}

// decodeStrict decodes canonical base64 only (enc must be a Strict
// encoding): no line breaks (which encoding/base64 would otherwise skip) and
// no non-zero padding bits.
func decodeStrict(enc *base64.Encoding, s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := enc.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return b, true
}
