package keys

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseCiphertext(t *testing.T) {
	good := []struct {
		in      string
		version int
		body    []byte
	}{
		{"vault:v1:AA==", 1, []byte{0}},
		{"vault:v1:AAE=", 1, []byte{0, 1}},
		{"vault:v1:AAEC", 1, []byte{0, 1, 2}},
		{"vault:v42:aGVsbG8=", 42, []byte("hello")},
		{"vault:v2147483647:+/8=", 2147483647, []byte{0xfb, 0xff}},
	}
	for _, c := range good {
		v, body, err := ParseCiphertext(c.in)
		if err != nil || v != c.version || !bytes.Equal(body, c.body) {
			t.Errorf("ParseCiphertext(%q) = %d, %x, %v", c.in, v, body, err)
			continue
		}
		if got := FormatCiphertext(v, body); got != c.in {
			t.Errorf("FormatCiphertext(%d, %x) = %q, want %q", v, body, got, c.in)
		}
	}

	bad := []struct{ in, msg string }{
		{"", "invalid ciphertext: missing vault: prefix"},
		{"AAAA", "invalid ciphertext: missing vault: prefix"},
		{"Vault:v1:AA==", "invalid ciphertext: missing vault: prefix"},
		{" vault:v1:AA==", "invalid ciphertext: missing vault: prefix"},
		{"vault:", "invalid ciphertext: invalid version"},
		{"vault:v1", "invalid ciphertext: invalid version"},
		{"vault:1:AA==", "invalid ciphertext: invalid version"},
		{"vault:v:AA==", "invalid ciphertext: invalid version"},
		{"vault:v0:AA==", "invalid ciphertext: invalid version"},
		{"vault:v01:AA==", "invalid ciphertext: invalid version"},
		{"vault:v-1:AA==", "invalid ciphertext: invalid version"},
		{"vault:v+1:AA==", "invalid ciphertext: invalid version"},
		{"vault:v1a:AA==", "invalid ciphertext: invalid version"},
		{"vault:v 1:AA==", "invalid ciphertext: invalid version"},
		{"vault:v2147483648:AA==", "invalid ciphertext: invalid version"},
		{"vault:v99999999999:AA==", "invalid ciphertext: invalid version"},
		{"vault:V1:AA==", "invalid ciphertext: invalid version"},
		{"vault:v1:", "invalid ciphertext: empty body"},
		{"vault:v1:AA", "invalid ciphertext: invalid base64"},   // missing padding
		{"vault:v1:AB==", "invalid ciphertext: invalid base64"}, // non-zero padding bits
		{"vault:v1:AA=", "invalid ciphertext: invalid base64"},
		{"vault:v1:A", "invalid ciphertext: invalid base64"},
		{"vault:v1:-_8=", "invalid ciphertext: invalid base64"}, // url alphabet
		{"vault:v1:AA==\n", "invalid ciphertext: invalid base64"},
		{"vault:v1:AA\r\n==", "invalid ciphertext: invalid base64"},
		{"vault:v1: AA==", "invalid ciphertext: invalid base64"},
		{"vault:v1:AA==:", "invalid ciphertext: invalid base64"},
		{"vault:v1:AA==AA==", "invalid ciphertext: invalid base64"},
	}
	for _, c := range bad {
		_, _, err := ParseCiphertext(c.in)
		if err == nil || !errors.Is(err, ErrInvalidCiphertext) || err.Error() != c.msg {
			t.Errorf("ParseCiphertext(%q) error = %v, want %q", c.in, err, c.msg)
		}
	}
}

func TestParseSignature(t *testing.T) {
	for _, c := range []struct {
		in   string
		body []byte
	}{
		{"vault:v3:+/8=", []byte{0xfb, 0xff}}, // standard
		{"vault:v3:-_8", []byte{0xfb, 0xff}},  // unpadded base64url (jws)
		{"vault:v3:AAEC", []byte{0, 1, 2}},    // valid in both
	} {
		v, body, err := ParseSignature(c.in)
		if err != nil || v != 3 || !bytes.Equal(body, c.body) {
			t.Errorf("ParseSignature(%q) = %d, %x, %v", c.in, v, body, err)
		}
	}
	for _, c := range []struct{ in, msg string }{
		{"sig", "invalid signature: missing vault: prefix"},
		{"vault:v0:AA==", "invalid signature: invalid version"},
		{"vault:v1:", "invalid signature: empty body"},
		{"vault:v1:-_8=", "invalid signature: invalid base64"}, // url alphabet with padding
		{"vault:v1:+/8", "invalid signature: invalid base64"},  // std alphabet without padding
		{"vault:v1:AB", "invalid signature: invalid base64"},   // non-zero trailing bits
		{"vault:v1:AA\n", "invalid signature: invalid base64"},
	} {
		_, _, err := ParseSignature(c.in)
		if err == nil || !errors.Is(err, ErrInvalidCiphertext) || err.Error() != c.msg {
			t.Errorf("ParseSignature(%q) error = %v, want %q", c.in, err, c.msg)
		}
	}
}

func FuzzParseCiphertext(f *testing.F) {
	for _, s := range []string{"vault:v1:AA==", "vault:v2147483647:aGVsbG8=", "vault:v01:AA==", "vault:v1:-_8", "vault:v1:AA\n==", "", "vault:v1:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, body, err := ParseCiphertext(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCiphertext) || v != 0 || body != nil {
				t.Fatalf("ParseCiphertext(%q): %d, %x, %v", s, v, body, err)
			}
		} else {
			if v < 1 || v > maxVersion || len(body) == 0 {
				t.Fatalf("ParseCiphertext(%q) accepted version %d, %d-byte body", s, v, len(body))
			}
			if got := FormatCiphertext(v, body); got != s {
				t.Fatalf("FormatCiphertext(ParseCiphertext(%q)) = %q", s, got)
			}
		}
		sv, sbody, serr := ParseSignature(s)
		if err == nil && (serr != nil || sv != v || !bytes.Equal(sbody, body)) {
			t.Fatalf("ParseSignature(%q) disagrees with ParseCiphertext", s)
		}
		if serr != nil {
			if !errors.Is(serr, ErrInvalidCiphertext) {
				t.Fatalf("ParseSignature(%q): %v", s, serr)
			}
			return
		}
		// Whatever ParseSignature accepts re-parses to the same body.
		v2, body2, err := ParseCiphertext(FormatCiphertext(sv, sbody))
		if err != nil || v2 != sv || !bytes.Equal(body2, sbody) {
			t.Fatalf("round trip of ParseSignature(%q) failed: %v", s, err)
		}
	})
}

// fuzzHandles are built once: FuzzDecrypt runs many inputs.
var fuzzSpecs = []Spec{
	{Type: AES128GCM96},
	{Type: AES256GCM96},
	{Type: ChaCha20Poly1305},
	{Type: XChaCha20Poly1305},
	{Type: AES256GCM96, Derived: true, Convergent: true},
	{Type: XChaCha20Poly1305, Derived: true},
	{Type: RSA2048},
}

func FuzzDecrypt(f *testing.F) {
	handles := make([]*Handle, len(fuzzSpecs))
	for i, spec := range fuzzSpecs {
		handles[i] = testHandle(f, spec, 1)
		ct, err := handles[i].Encrypt([]byte("seed plaintext"), EncryptOptions{Context: []byte("ctx")})
		if err != nil {
			f.Fatal(err)
		}
		_, body := mustParse(f, ct)
		f.Add(uint8(i), body, []byte(nil))
		body[len(body)/2] ^= 1
		f.Add(uint8(i), body, []byte("ad"))
	}
	f.Add(uint8(0), []byte{}, []byte(nil))
	f.Add(uint8(6), make([]byte, 256), []byte(nil))
	f.Fuzz(func(t *testing.T, which uint8, body, ad []byte) {
		h := handles[int(which)%len(handles)]
		if !h.spec.Type.IsAEAD() {
			ad = nil
		}
		pt, err := h.Decrypt(body, EncryptOptions{Context: []byte("ctx"), AssociatedData: ad})
		if err == nil {
			// Only a genuine ciphertext can decrypt; the seeds are the only ones.
			if string(pt) != "seed plaintext" {
				t.Fatalf("random body decrypted to %q", pt)
			}
			return
		}
		if !errors.Is(err, ErrInvalidCiphertext) {
			t.Fatalf("Decrypt error %v does not wrap ErrInvalidCiphertext", err)
		}
	})
}
