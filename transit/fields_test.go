package transit

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func mustFields(t *testing.T, body string) *Fields {
	t.Helper()
	f, err := ParseFields([]byte(body))
	if err != nil {
		t.Fatalf("ParseFields(%q): %v", body, err)
	}
	return f
}

func is400(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusBadRequest && e.Msg != ""
}

func TestParseFields(t *testing.T) {
	for _, body := range []string{"", "  \n", "null", "{}", ` {"a":1} `, `{"a":{"b":[1,2]}}`} {
		if _, err := ParseFields([]byte(body)); err != nil {
			t.Errorf("ParseFields(%q): %v", body, err)
		}
	}
	for body, msg := range map[string]string{
		`[1]`:              "failed to parse JSON input: request body must be a JSON object",
		`"s"`:              "failed to parse JSON input: request body must be a JSON object",
		`true`:             "failed to parse JSON input: request body must be a JSON object",
		`{"a":1}{}`:        "failed to parse JSON input: data after the JSON object",
		`{"a":1} ]`:        "failed to parse JSON input: data after the JSON object",
		`{"a":1} }`:        "failed to parse JSON input: data after the JSON object",
		`{"a":1} x`:        "failed to parse JSON input: data after the JSON object",
		`{"a":`:            "failed to parse JSON input: unexpected EOF",
		`{"a":'x'}`:        "failed to parse JSON input: invalid character looking for beginning of value (at byte 6)",
		"{\"a\":\"\x01\"}": "failed to parse JSON input: invalid character in string literal (at byte 7)",
	} {
		_, err := ParseFields([]byte(body))
		if !is400(err) || err.Error() != msg {
			t.Errorf("ParseFields(%q) = %v, want 400 %q", body, err, msg)
		}
	}
}

func TestFieldGetters(t *testing.T) {
	f := mustFields(t, `{
		"n": 2, "ns": "3", "nsp": " 4 ", "nf": 2.5, "nbig": 99999999999, "nobj": {"x":1},
		"b": true, "bs": "true", "b1": 1, "bbad": "maybe",
		"d": 3600, "ds": "3600", "dh": "2h", "dd": "30d", "dneg": -5, "dbad": "soon", "dover": "99999999999999999999",
		"s": "a\"b", "u": "h\u00e9", "raw": "plain",
		"b64": "aGk=", "b64bad": "a*b",
		"batch": [{"x":1}, null], "batchbad": [1], "batchempty": [],
		"nul": null
	}`)
	if v, err := f.Int("n", 0); v != 2 || err != nil {
		t.Errorf("Int n: %v %v", v, err)
	}
	if v, err := f.Int("ns", 0); v != 3 || err != nil {
		t.Errorf("Int ns: %v %v", v, err)
	}
	if v, err := f.Int("nsp", 0); v != 4 || err != nil {
		t.Errorf("Int nsp: %v %v", v, err)
	}
	if v, err := f.Int("missing", 7); v != 7 || err != nil {
		t.Errorf("Int default: %v %v", v, err)
	}
	if v, err := f.Int("nul", 7); v != 7 || err != nil {
		t.Errorf("Int null: %v %v", v, err)
	}
	for _, name := range []string{"nf", "nbig", "s", "b"} {
		if _, err := f.Int(name, 0); !is400(err) || !strings.Contains(err.Error(), `field "`+name+`" must be an integer`) {
			t.Errorf("Int %s: %v", name, err)
		}
	}
	if _, err := f.Int("nobj", 0); !is400(err) || err.Error() != `field "nobj" must be a single value, not an object or array` {
		t.Errorf("Int nobj: %v", err)
	}
	for _, name := range []string{"b", "bs", "b1"} {
		if v, err := f.Bool(name, false); !v || err != nil {
			t.Errorf("Bool %s: %v %v", name, v, err)
		}
	}
	if _, err := f.Bool("bbad", false); !is400(err) || err.Error() != `field "bbad" must be a boolean, got "maybe"` {
		t.Errorf("Bool bbad: %v", err)
	}
	for name, want := range map[string]time.Duration{"d": time.Hour, "ds": time.Hour, "dh": 2 * time.Hour, "dd": 30 * 24 * time.Hour} {
		if v, set, err := f.Duration(name); v != want || !set || err != nil {
			t.Errorf("Duration %s: %v %v %v", name, v, set, err)
		}
	}
	if _, set, err := f.Duration("missing"); set || err != nil {
		t.Errorf("Duration missing: %v %v", set, err)
	}
	for _, name := range []string{"dneg", "dbad", "dover"} {
		if _, _, err := f.Duration(name); !is400(err) {
			t.Errorf("Duration %s: %v", name, err)
		}
	}
	if v, err := f.String("s", ""); v != `a"b` || err != nil {
		t.Errorf("String with escape: %q %v", v, err)
	}
	if v, err := f.String("u", ""); v != "hé" || err != nil {
		t.Errorf("String with unicode escape: %q %v", v, err)
	}
	if v, err := f.String("n", ""); v != "2" || err != nil {
		t.Errorf("String of a number: %q %v", v, err)
	}
	if v, err := f.Base64("b64"); string(v) != "hi" || err != nil {
		t.Errorf("Base64: %q %v", v, err)
	}
	if _, err := f.Base64("b64bad"); !is400(err) || !strings.HasPrefix(err.Error(), `field "b64bad" must be base64-encoded`) || strings.Contains(err.Error(), "a*b") {
		t.Errorf("Base64 bad: %v", err)
	}
	items, ok, err := f.Batch("batch")
	if !ok || err != nil || len(items) != 2 || !items[0].Has("x") || items[1].Has("x") {
		t.Errorf("Batch: %v %v %v", items, ok, err)
	}
	for _, name := range []string{"batchbad", "batchempty", "n"} {
		if _, _, err := f.Batch(name); !is400(err) {
			t.Errorf("Batch %s: %v", name, err)
		}
	}
	if _, ok, err := f.Batch("missing"); ok || err != nil {
		t.Errorf("Batch missing: %v %v", ok, err)
	}
	// Path parameters win over the body.
	f.Set("n", "5")
	if v, _ := f.Int("n", 0); v != 5 {
		t.Errorf("Set: %d", v)
	}
	if u := f.Unused(); strings.Join(u, ",") != "raw" {
		t.Errorf("Unused %v", u)
	}
}

func TestFieldEmpty(t *testing.T) {
	f := mustFields(t, `{"a":null,"b":"","c":0,"d":false,"e":[],"f":{},"g":0.0,"h":"0","i":"x","j":1,"k":[1],"l":{"x":1},"m":true}`)
	for name, want := range map[string]bool{
		"a": true, "b": true, "c": true, "d": true, "e": true, "f": true, "g": true, "absent": true,
		"h": true, "i": false, "j": false, "k": false, "l": false, "m": false,
	} {
		if got := f.Empty(name); got != want {
			t.Errorf("Empty(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTruncate(t *testing.T) {
	s := strings.Repeat("a", 39) + "é" + "tail"
	got := Truncate(s)
	if got != strings.Repeat("a", 39)+"…" {
		t.Errorf("truncate cut a rune: %q", got)
	}
	if Truncate("short") != "short" {
		t.Error("truncate changed a short string")
	}
}

// FuzzParseFields: decoding a request body and reading its fields never
// panics, and every error is an *Error with status 400.
func FuzzParseFields(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"plaintext":"aGk=","context":"Yw=="}`,
		`{"batch_input":[{"plaintext":"aGk=","reference":"r"},{}]}`,
		`{"key_version":"2","bits":512,"prehashed":"true","auto_rotate_period":"30d"}`,
		`{"a":1}{}`, `{"a":"\u00e9\n"}`, `{"n":1e999}`, `{"d":"-1h"}`, "{\"x\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	names := []string{"plaintext", "ciphertext", "context", "input", "key_version", "bits", "prehashed",
		"auto_rotate_period", "batch_input", "reference", "type", "a", "n", "d", "x"}
	f.Fuzz(func(t *testing.T, body []byte) {
		fs, err := ParseFields(body)
		if err != nil {
			if !is400(err) {
				t.Fatalf("ParseFields error %T %v is not a 400", err, err)
			}
			return
		}
		check := func(fs *Fields) {
			all := append([]string(nil), names...)
			for k := range fs.raw {
				all = append(all, k)
			}
			for _, n := range all {
				if _, err := fs.String(n, ""); err != nil && !is400(err) {
					t.Fatalf("String(%q): %v", n, err)
				}
				if _, err := fs.Int(n, 0); err != nil && !is400(err) {
					t.Fatalf("Int(%q): %v", n, err)
				}
				if _, err := fs.Bool(n, false); err != nil && !is400(err) {
					t.Fatalf("Bool(%q): %v", n, err)
				}
				if _, _, err := fs.Duration(n); err != nil && !is400(err) {
					t.Fatalf("Duration(%q): %v", n, err)
				}
				if _, err := fs.Base64(n); err != nil && !is400(err) {
					t.Fatalf("Base64(%q): %v", n, err)
				}
			}
		}
		check(fs)
		if items, ok, err := fs.Batch("batch_input"); err != nil && !is400(err) {
			t.Fatalf("Batch: %v", err)
		} else if ok {
			for _, it := range items {
				check(it)
			}
		}
		fs.Unused()
	})
}
