package transit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Fields is a request's parameters, decoded the way Vault does: a field
// may arrive as its own JSON type or as a string ("2", "true", "1h"), as
// the vault CLI sends everything as strings. Each getter returns an
// *Error with status 400 that names the field when the value does not fit.
//
// A body is decoded once, with exact keys: a key that appears twice in an
// object, or beside a case variant of itself ("context" and "Context"),
// is refused when the body is parsed, and a getter asked for a field that
// the body spells in another case ("Context" when asked for "context")
// refuses it rather than ignore it. So the policy check and the engine,
// reading the same Fields, cannot see different values (encoding/json
// matches struct fields case-insensitively and lets the last duplicate
// win, which let a decoy key satisfy a policy condition).
type Fields struct {
	raw  map[string]json.RawMessage
	used map[string]bool
	// variants maps the case-folded form of each key that is not already
	// in that form to the key as sent ("context" → "Context").
	variants map[string]string
	// maxItems bounds the items of a batch field (0: no bound).
	maxItems int
	// batch caches the decoded items of an array-of-objects field, so
	// that everyone who reads them reads the same items.
	batch *batchItems
}

type batchItems struct {
	name  string
	items []*Fields
	ok    bool
	err   error
}

// SetMaxItems bounds how many items Batch and Items decode from one field;
// more is a 400 that names the limit. 0 means no bound.
func (f *Fields) SetMaxItems(n int) { f.maxItems = n }

// ParseFields decodes a JSON object body; an empty body is an empty object.
func ParseFields(body []byte) (*Fields, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Fields{raw: map[string]json.RawMessage{}, used: map[string]bool{}}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	f, err := decodeObject(dec, "")
	if err != nil {
		if !json.Valid(body) {
			// The same words and offsets as a whole-body decode gives
			// (the streaming decoder counts from the value it was on).
			var m map[string]json.RawMessage
			if uerr := json.NewDecoder(bytes.NewReader(body)).Decode(&m); uerr != nil {
				return nil, badRequest("failed to parse JSON input: %s", jsonErrText(uerr))
			}
		}
		return nil, err
	}
	// Anything but whitespace after the object is refused (dec.More alone
	// would let a stray ']' or '}' through).
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("failed to parse JSON input: data after the JSON object")
	}
	return f, nil
}

// decodeObject reads one JSON object (or null, an empty object) from dec,
// refusing duplicate keys and case variants of a key in the same object.
// where names the object in errors ("" for the body, "batch_input[3]").
func decodeObject(dec *json.Decoder, where string) (*Fields, error) {
	in := ""
	if where != "" {
		in = " in " + where
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, badRequest("failed to parse JSON input: %s", jsonErrText(err))
	}
	f := &Fields{raw: map[string]json.RawMessage{}, used: map[string]bool{}}
	if tok == nil { // JSON null
		return f, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		if field, _, ok := strings.Cut(where, "["); ok {
			return nil, badRequest("field %q must be an array of objects", field)
		}
		return nil, badRequest("failed to parse JSON input: request body must be a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, badRequest("failed to parse JSON input: %s", jsonErrText(err))
		}
		key, _ := tok.(string) // inside an object the decoder yields only string keys
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, badRequest("failed to parse JSON input: %s", jsonErrText(err))
		}
		if _, dup := f.raw[key]; dup {
			return nil, badRequest("duplicate field %q%s: each field may appear once", Truncate(key), in)
		}
		if folded := foldName(key); folded != key {
			if other, dup := f.variants[folded]; dup {
				return nil, badRequest("fields %q and %q%s differ only in case: field names are case-sensitive", Truncate(other), Truncate(key), in)
			}
			if _, dup := f.raw[folded]; dup {
				return nil, badRequest("fields %q and %q%s differ only in case: field names are case-sensitive", Truncate(folded), Truncate(key), in)
			}
			if f.variants == nil {
				f.variants = map[string]string{}
			}
			f.variants[folded] = key
		} else if other, dup := f.variants[key]; dup {
			return nil, badRequest("fields %q and %q%s differ only in case: field names are case-sensitive", Truncate(other), Truncate(key), in)
		}
		f.raw[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, badRequest("failed to parse JSON input: %s", jsonErrText(err))
	}
	return f, nil
}

// foldName is name in one canonical case, so that two names that
// strings.EqualFold (and encoding/json's field matching) take for the same
// fold to the same string. The usual lower-case ASCII name is returned as
// is, without allocating.
func foldName(name string) string {
	plain := true
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 0x80 || ('A' <= c && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		// The smallest rune of r's simple-folding orbit stands for all.
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(unicode.ToLower(min))
	}
	return b.String()
}

// lookup returns the raw value of field name, refusing a body that spells
// it in another case.
func (f *Fields) lookup(name string) (json.RawMessage, bool, error) {
	if v, ok := f.raw[name]; ok {
		return v, string(v) != "null", nil
	}
	if f.variants != nil {
		if sent, ok := f.variants[foldName(name)]; ok {
			return nil, false, badRequest("unknown field %q: field names are case-sensitive (did you mean %q?)", Truncate(sent), name)
		}
	}
	return nil, false, nil
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

// Has reports whether the field is present and not null. A case variant
// of name counts as present, so that the getter a caller then uses
// refuses it instead of the variant being ignored.
func (f *Fields) Has(name string) bool {
	_, ok, err := f.lookup(name)
	return ok || err != nil
}

// Empty reports whether the field is absent or holds its type's zero
// value: null, "", 0 (or "0"), false, [] or {}. Clients such as the vault Go client
// send every field of a request struct, so "given" often means "not zero".
func (f *Fields) Empty(name string) bool {
	v, ok, err := f.lookup(name)
	if err != nil {
		return false // present, in another case: the getter refuses it
	}
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
	v, present, err := f.lookup(name)
	if err != nil || !present {
		return "", false, err
	}
	switch v[0] {
	case '"':
		if s, ok := plainString(v); ok {
			return s, true, nil
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
	if s == "" {
		return 0, false, nil // Vault's "unset", as the CLI sends it
	}
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
// the field is absent. Each item is decoded as strictly as the body, and
// the items are decoded once: every caller gets the same ones.
func (f *Fields) Batch(name string) (items []*Fields, ok bool, err error) {
	f.used[name] = true
	return f.Items(name)
}

// Items is Batch without marking the field used: for a check that reads
// the items before the endpoint does (the policy's required_context).
func (f *Fields) Items(name string) (items []*Fields, ok bool, err error) {
	if b := f.batch; b != nil && b.name == name {
		return b.items, b.ok, b.err
	}
	items, ok, err = f.decodeItems(name)
	f.batch = &batchItems{name: name, items: items, ok: ok, err: err}
	return items, ok, err
}

func (f *Fields) decodeItems(name string) (items []*Fields, ok bool, err error) {
	v, present, err := f.lookup(name)
	if err != nil || !present {
		return nil, false, err
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, false, badRequest("field %q must be an array of objects", name)
	}
	for i := 0; dec.More(); i++ {
		if f.maxItems > 0 && i == f.maxItems {
			return nil, false, badRequest("field %q has more than %d items: the limit is %d per request (max_batch_items)", name, f.maxItems, f.maxItems)
		}
		item, err := decodeObject(dec, fmt.Sprintf("%s[%d]", name, i))
		if err != nil {
			return nil, false, err
		}
		items = append(items, item)
	}
	if len(items) == 0 {
		return nil, false, badRequest("field %q must have at least one item", name)
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
	each := func(prefix string, g *Fields) {
		for _, name := range SensitiveFields {
			v, ok := g.raw[name]
			if !ok || len(v) == 0 || v[0] != '"' {
				continue
			}
			if s, ok := plainString(v); ok {
				fn(prefix+name, s)
				continue
			}
			var s string
			if json.Unmarshal(v, &s) == nil {
				fn(prefix+name, s)
			}
		}
	}
	each("", f)
	if items, ok, err := f.Items("batch_input"); err == nil && ok {
		for i, it := range items {
			each("batch_input["+strconv.Itoa(i)+"].", it)
		}
	}
}

// plainString reads a string value the decoder has validated as
// json.Unmarshal would, without a second pass: without escapes the text is
// the bytes between the quotes (a large base64 plaintext, a thousand batch
// items). ok is false when json.Unmarshal is needed.
func plainString(v json.RawMessage) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if inner := v[1 : len(v)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	return "", false
}

// Raw returns the JSON text of a field as sent, marking it used; ok is
// false when absent or null. For values of a shape no getter reads (a
// list, an object of strings).
func (f *Fields) Raw(name string) (v json.RawMessage, ok bool, err error) {
	f.used[name] = true
	return f.lookup(name)
}

// Decode fills the struct v points to from the fields its json tags
// name, with exact keys: a field spelled in another case is refused, as
// every getter refuses it, and one that v does not name is left for
// Unused. It is for endpoints whose body is a small fixed struct; the
// error is a 400 that names the field.
func (f *Fields) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("transit: Fields.Decode needs a pointer to a struct")
	}
	sv := rv.Elem()
	st := sv.Type()
	for i := 0; i < st.NumField(); i++ {
		sf := st.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		raw, ok, err := f.Raw(name)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, sv.Field(i).Addr().Interface()); err != nil {
			return badRequest("field %q: %s", name, decodeErrText(err))
		}
	}
	return nil
}

// PeekBase64 is Base64 without marking the field used: for a check that
// reads a field before the endpoint does (the policy's required_context),
// so that the endpoint's warnings still name what it ignored.
func (f *Fields) PeekBase64(name string) ([]byte, error) {
	was := f.used[name]
	b, err := f.Base64(name)
	if !was {
		delete(f.used, name)
	}
	return b, err
}

// Names lists the fields present, sorted.
func (f *Fields) Names() []string {
	out := make([]string, 0, len(f.raw))
	for k := range f.raw {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
