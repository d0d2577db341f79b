package transit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Fields is a request's parameters, decoded the way Vault does: a field
// may arrive as its own JSON type or as a string ("2", "true", "1h"), as
// the vault CLI sends everything as strings. Each getter returns an
// *Error with status 400 that names the field when the value does not fit.
type Fields struct {
	raw  map[string]json.RawMessage
	used map[string]bool
}

// ParseFields decodes a JSON object body; an empty body is an empty object.
func ParseFields(body []byte) (*Fields, error) {
	f := &Fields{raw: map[string]json.RawMessage{}, used: map[string]bool{}}
	if len(bytes.TrimSpace(body)) == 0 {
		return f, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&f.raw); err != nil {
		return nil, badRequest("failed to parse JSON input: %s", jsonErrText(err))
	}
	// Anything but whitespace after the object is refused (dec.More alone
	// would let a stray ']' or '}' through).
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("failed to parse JSON input: data after the JSON object")
	}
	if f.raw == nil { // the body was JSON null
		f.raw = map[string]json.RawMessage{}
	}
	return f, nil
}

// badChar matches the quoted character in encoding/json's syntax errors.
var badChar = regexp.MustCompile(`^invalid character '(?:[^'\\]|\\.)+'`)

func jsonErrText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errorsAs(err, &se):
		// The offending character is left out: it may be a byte of a
		// plaintext, and the offset says where to look.
		return fmt.Sprintf("%s (at byte %d)", badChar.ReplaceAllString(se.Error(), "invalid character"), se.Offset)
	case errorsAs(err, &te):
		return "request body must be a JSON object"
	}
	return err.Error()
}

// decodeErrText describes an error of decoding a document that carries
// key material (a backup, a Vault backup) without any of its values:
// audit events keep error texts, and encoding/json's errors, or those of
// the types it decodes into (math/big, time, base64), quote the value.
// It names the field when encoding/json knows it.
func decodeErrText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errorsAs(err, &se):
		return fmt.Sprintf("invalid JSON (at byte %d)", se.Offset)
	case errorsAs(err, &te) && te.Field != "":
		return fmt.Sprintf("field %q holds a JSON value of the wrong type", Truncate(te.Field))
	case errorsAs(err, &te):
		return "a JSON value of the wrong type"
	}
	return "a value does not decode (a number, time or base64 field holds something else)"
}

// Set adds a parameter that came from the URL path; it wins over the body.
func (f *Fields) Set(name, value string) {
	b, _ := json.Marshal(value)
	f.raw[name] = b
}

// Has reports whether the field is present and not null.
func (f *Fields) Has(name string) bool {
	v, ok := f.raw[name]
	return ok && string(v) != "null"
}

// Empty reports whether the field is absent or holds its type's zero
// value: null, "", 0 (or "0"), false, [] or {}. Clients such as the vault Go client
// send every field of a request struct, so "given" often means "not zero".
func (f *Fields) Empty(name string) bool {
	v, ok := f.raw[name]
	if !ok {
		return true
	}
	f.used[name] = true
	switch s := string(bytes.TrimSpace(v)); s {
	case "null", `""`, "0", `"0"`, "false", "[]", "{}": // "0": the vault CLI's 0
		return true
	}
	var m any
	if json.Unmarshal(v, &m) == nil {
		switch x := m.(type) {
		case []any:
			return len(x) == 0
		case map[string]any:
			return len(x) == 0
		case json.Number:
			return x == "0"
		case float64:
			return x == 0
		}
	}
	return false
}

// Unused lists fields no getter asked for, for the response's warnings.
func (f *Fields) Unused() []string {
	var out []string
	for k := range f.raw {
		if !f.used[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// scalar returns the field as text, whether it was a JSON string, number
// or bool. ok is false when absent or null.
func (f *Fields) scalar(name string) (s string, ok bool, err error) {
	f.used[name] = true
	v, present := f.raw[name]
	if !present || string(v) == "null" {
		return "", false, nil
	}
	switch v[0] {
	case '"':
		// The decoder has validated v. Without escapes the text is the
		// bytes between the quotes: no second pass over a large value
		// such as a 4 KiB plaintext.
		if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return string(inner), true, nil
		}
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false, badRequest("field %q: %s", name, jsonErrText(err))
		}
		return s, true, nil
	case '{', '[':
		return "", false, badRequest("field %q must be a single value, not an object or array", name)
	}
	return string(v), true, nil
}

// String returns a text field, or def when absent.
func (f *Fields) String(name, def string) (string, error) {
	s, ok, err := f.scalar(name)
	if err != nil || !ok {
		return def, err
	}
	return s, nil
}

// Int returns an integer field, or def when absent.
func (f *Fields) Int(name string, def int) (int, error) {
	s, ok, err := f.scalar(name)
	if err != nil || !ok {
		return def, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, badRequest("field %q must be an integer, got %q", name, Truncate(s))
	}
	return int(n), nil
}

// Bool returns a boolean field, or def when absent.
func (f *Fields) Bool(name string, def bool) (bool, error) {
	s, ok, err := f.scalar(name)
	if err != nil || !ok {
		return def, err
	}
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, badRequest("field %q must be a boolean, got %q", name, Truncate(s))
	}
	return b, nil
}

// Duration returns a duration given as seconds (number or numeric string),
// as a Go duration string ("1h", "90m") or as whole days ("30d"); set is
// false when absent.
func (f *Fields) Duration(name string) (d time.Duration, set bool, err error) {
	s, ok, err := f.scalar(name)
	if err != nil || !ok {
		return 0, false, err
	}
	s = strings.TrimSpace(s)
	if secs, perr := strconv.ParseInt(s, 10, 64); perr == nil {
		if secs < 0 || secs > int64((1<<63-1)/time.Second) {
			return 0, false, badRequest("field %q: duration out of range", name)
		}
		return time.Duration(secs) * time.Second, true, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok { // "30d", as Vault accepts
		if n, perr := strconv.ParseInt(days, 10, 64); perr == nil && n >= 0 && n <= int64((1<<63-1)/(24*time.Hour)) {
			return time.Duration(n) * 24 * time.Hour, true, nil
		}
	}
	d, perr := time.ParseDuration(s)
	if perr != nil || d < 0 {
		return 0, false, badRequest("field %q must be a duration such as \"24h\" or a number of seconds, got %q", name, Truncate(s))
	}
	return d, true, nil
}

// Base64 returns a base64-encoded field decoded, or nil when absent.
func (f *Fields) Base64(name string) ([]byte, error) {
	s, ok, err := f.scalar(name)
	if err != nil || !ok {
		return nil, err
	}
	b, derr := base64.StdEncoding.DecodeString(s)
	if derr != nil {
		return nil, badRequest("field %q must be base64-encoded: %v", name, derr)
	}
	return b, nil
}

// Batch returns the items of an array-of-objects field; ok is false when
// the field is absent.
func (f *Fields) Batch(name string) (items []*Fields, ok bool, err error) {
	f.used[name] = true
	v, present := f.raw[name]
	if !present || string(v) == "null" {
		return nil, false, nil
	}
	var raw []map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, false, badRequest("field %q must be an array of objects", name)
	}
	if len(raw) == 0 {
		return nil, false, badRequest("field %q must have at least one item", name)
	}
	for _, r := range raw {
		if r == nil {
			r = map[string]json.RawMessage{}
		}
		items = append(items, &Fields{raw: r, used: map[string]bool{}})
	}
	return items, true, nil
}

// Truncate shortens a value quoted in an error message to 40 bytes,
// cutting at a rune boundary so the message stays valid UTF-8.
func Truncate(s string) string {
	if len(s) <= 40 {
		return s
	}
	n := 40
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// SensitiveFields are request fields whose values may only appear in the
// audit log as HMACs.
var SensitiveFields = []string{"plaintext", "ciphertext", "context", "associated_data", "input", "signature", "hmac", "nonce"}

// Sensitive calls fn with the name and raw text of every sensitive field
// present, at the top level and in batch_input items ("batch_input[3].plaintext"),
// without marking them used.
func (f *Fields) Sensitive(fn func(name, value string)) {
	each := func(prefix string, raw map[string]json.RawMessage) {
		for _, name := range SensitiveFields {
			v, ok := raw[name]
			if !ok || len(v) == 0 || v[0] != '"' {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) == nil {
				fn(prefix+name, s)
			}
		}
	}
	each("", f.raw)
	if b, ok := f.raw["batch_input"]; ok && len(b) > 0 && b[0] == '[' {
		var items []map[string]json.RawMessage
		if json.Unmarshal(b, &items) == nil {
			for i, it := range items {
				each(fmt.Sprintf("batch_input[%d].", i), it)
			}
		}
	}
}
