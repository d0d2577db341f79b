package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Parse parses the HCL configuration in src and validates it. filename
// appears in the positions of errors only.
func Parse(src []byte, filename string) (*Config, error) {
	if strings.HasSuffix(filename, ".json") {
		return nil, &configError{kind: ErrUnsupported, msg: filename + ": JSON configuration files are not supported; write the file in HCL"}
	}
	if len(src) > maxFileSize {
		return nil, &configError{kind: ErrInvalid, msg: filename + ": the file is larger than 1 MiB"}
	}
	if err := checkNesting(src, filename); err != nil {
		return nil, err
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diagError(filename, src, diags)
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok { // cannot happen with hclsyntax; refuse rather than panic
		return nil, &configError{kind: ErrInvalid, msg: filename + ": not an HCL file"}
	}
	p := &parser{file: filename, ranges: map[string]hcl.Range{}}
	c := new(Config)
	if err := p.decode(body, p.topSchema(c)); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, p.locate(err)
	}
	return c, nil
}

// Limits that keep hostile input away from the HCL parser, which recurses
// once per nesting level and would exhaust the stack on very deep input.
// A real configuration is a few KiB deep three levels at most.
const (
	maxFileSize = 1 << 20
	maxNesting  = 100
)

// checkNesting refuses input with more than maxNesting open brackets,
// braces or parentheses. It does not skip strings or comments, so it may
// overcount, never undercount: closers never take the depth below zero.
func checkNesting(src []byte, filename string) error {
	depth, line, col := 0, 1, 1
	for _, b := range src {
		switch b {
		case '(', '[', '{':
			depth++
			if depth > maxNesting {
				return &configError{kind: ErrInvalid, msg: fmt.Sprintf("%s:%d,%d: nested more than %d levels deep", filename, line, col, maxNesting)}
			}
		case ')', ']', '}':
			depth = max(depth-1, 0)
		}
		col++
		if b == '\n' {
			line, col = line+1, 1
		}
	}
	return nil
}

// parser turns an hclsyntax body into a Config. It walks the syntax tree
// itself rather than using gohcl, so that each mistake becomes one line
// that names the file, the position and the field.
type parser struct {
	file string
	// ranges maps a field name as used in configError ("listener[0].address")
	// to where the file sets it, so that errors found by Validate get a
	// position too.
	ranges map[string]hcl.Range
	// seals are the seal blocks seen so far, in file order.
	seals []sealBlock
}

// sealBlock is where a seal block starts and whether it is disabled.
type sealBlock struct {
	rng      hcl.Range
	disabled bool
}

// schema lists what a body may contain.
type schema struct {
	where  string // ` in listener "tcp"`; empty at the top level
	attrs  map[string]func(*hclsyntax.Attribute) error
	blocks map[string]func(*hclsyntax.Block) error
}

func (p *parser) topSchema(c *Config) schema {
	return schema{
		attrs: map[string]func(*hclsyntax.Attribute) error{
			"api_addr":               p.str(&c.APIAddr, "api_addr"),
			"cluster_addr":           p.str(&c.ClusterAddr, "cluster_addr"),
			"plugin_directory":       p.str(&c.PluginDirectory, "plugin_directory"),
			"default_crypto_backend": p.str(&c.DefaultCryptoBackend, "default_crypto_backend"),
			"plugins_in_process":     p.boolean(&c.PluginsInProcess, "plugins_in_process"),
			"disable_mlock":          p.boolean(&c.DisableMlock, "disable_mlock"),
			"log_level":              p.str(&c.LogLevel, "log_level"),
			"cluster_name":           p.str(&c.ClusterName, "cluster_name"),
			"ui":                     p.boolean(new(bool), "ui"), // accepted, no UI here
		},
		blocks: map[string]func(*hclsyntax.Block) error{
			"storage":  func(b *hclsyntax.Block) error { return p.storage(b, c) },
			"listener": func(b *hclsyntax.Block) error { return p.listener(b, c) },
			"seal":     func(b *hclsyntax.Block) error { return p.seal(b, c) },
			"audit":    func(b *hclsyntax.Block) error { return p.audit(b, c) },
		},
	}
}

func (p *parser) storage(b *hclsyntax.Block, c *Config) error {
	if first, ok := p.ranges["storage"]; ok {
		return p.errAt(b.DefRange(), ErrInvalid, "duplicate storage block; the first one is on line %d", first.Start.Line)
	}
	typ, err := p.label(b)
	if err != nil {
		return err
	}
	p.ranges["storage"] = b.DefRange()
	p.ranges["storage.type"] = b.LabelRanges[0]
	if err := checkStorageType(typ); err != nil {
		return p.locate(err)
	}
	s := &c.Storage
	s.Type = typ
	return p.decode(b.Body, schema{
		where: fmt.Sprintf(" in storage %q", typ),
		attrs: map[string]func(*hclsyntax.Attribute) error{
			"path":    p.str(&s.Path, "storage.path"),
			"node_id": p.str(&s.NodeID, "storage.node_id"),
			// Raft log entries between automatic snapshots (0: the default).
			"snapshot_threshold": p.size(&s.SnapshotThreshold, "storage.snapshot_threshold", "log entries"),
			"snapshot_interval":  p.str(&s.SnapshotInterval, "storage.snapshot_interval"),

			"gossip_address":           p.str(&s.GossipAddress, "storage.gossip_address"),
			"gossip_advertise_address": p.str(&s.GossipAdvertiseAddress, "storage.gossip_advertise_address"),
			"leader_contact_lease":     p.str(&s.LeaderContactLease, "storage.leader_contact_lease"),
			"cluster_tls_cert_file":    p.str(&s.ClusterTLSCertFile, "storage.cluster_tls_cert_file"),
			"cluster_tls_key_file":     p.str(&s.ClusterTLSKeyFile, "storage.cluster_tls_key_file"),
			"cluster_tls_ca_file":      p.str(&s.ClusterTLSCAFile, "storage.cluster_tls_ca_file"),
			"plugin":                   p.str(&s.Plugin, "storage.plugin"),
			"plugin_sha256":            p.str(&s.PluginSHA256, "storage.plugin_sha256"),
		},
		blocks: map[string]func(*hclsyntax.Block) error{
			"retry_join": func(b *hclsyntax.Block) error {
				if len(b.Labels) != 0 {
					return p.errAt(b.DefRange(), ErrInvalid, "retry_join block takes no labels")
				}
				field := fmt.Sprintf("storage.retry_join[%d]", len(s.RetryJoin))
				p.ranges[field] = b.DefRange()
				var j RetryJoin
				err := p.decode(b.Body, schema{
					where: fmt.Sprintf(" in storage %q retry_join", typ),
					attrs: map[string]func(*hclsyntax.Attribute) error{
						"leader_api_addr":         p.str(&j.LeaderAPIAddr, field+".leader_api_addr"),
						"leader_ca_cert_file":     p.str(&j.LeaderCACertFile, field+".leader_ca_cert_file"),
						"leader_client_cert_file": p.str(&j.LeaderClientCertFile, field+".leader_client_cert_file"),
						"leader_client_key_file":  p.str(&j.LeaderClientKeyFile, field+".leader_client_key_file"),
						"leader_tls_servername":   p.str(&j.LeaderTLSServerName, field+".leader_tls_servername"),
						// Vault's inline PEM forms: keyraft takes files.
						"leader_ca_cert":     p.fileInstead("leader_ca_cert_file"),
						"leader_client_cert": p.fileInstead("leader_client_cert_file"),
						"leader_client_key":  p.fileInstead("leader_client_key_file"),
					},
				})
				s.RetryJoin = append(s.RetryJoin, j)
				return err
			},
			"autopilot": func(b *hclsyntax.Block) error { return p.autopilot(b, s) },
		},
	})
}

// autopilot decodes the autopilot block of storage "raft"; there may be
// one.
func (p *parser) autopilot(b *hclsyntax.Block, s *Storage) error {
	const field = "storage.autopilot"
	if first, ok := p.ranges[field]; ok {
		return p.errAt(b.DefRange(), ErrInvalid, "duplicate autopilot block; the first one is on line %d", first.Start.Line)
	}
	if len(b.Labels) != 0 {
		return p.errAt(b.DefRange(), ErrInvalid, "autopilot block takes no labels")
	}
	p.ranges[field] = b.DefRange()
	a := new(Autopilot)
	s.Autopilot = a
	return p.decode(b.Body, schema{
		where: fmt.Sprintf(" in storage %q autopilot", s.Type),
		attrs: map[string]func(*hclsyntax.Attribute) error{
			"cleanup_dead_servers": func(attr *hclsyntax.Attribute) error {
				var v bool
				if err := p.boolean(&v, field+".cleanup_dead_servers")(attr); err != nil {
					return err
				}
				a.CleanupDeadServers = &v
				return nil
			},
			"dead_server_last_contact_threshold": p.str(&a.DeadServerLastContactThreshold, field+".dead_server_last_contact_threshold"),
			"server_stabilization_time":          p.str(&a.ServerStabilizationTime, field+".server_stabilization_time"),
			"min_quorum": func(attr *hclsyntax.Attribute) error {
				var n int64
				if err := p.size(&n, field+".min_quorum", "servers")(attr); err != nil {
					return err
				}
				if n < 1 || n > maxMinQuorum {
					return p.errAt(attr.Expr.Range(), ErrInvalid, "%s must be between 1 and %d, not %d", attr.Name, maxMinQuorum, n)
				}
				a.MinQuorum = int(n)
				return nil
			},
		},
	})
}

func (p *parser) listener(b *hclsyntax.Block, c *Config) error {
	typ, err := p.label(b)
	if err != nil {
		return err
	}
	field := fmt.Sprintf("listener[%d]", len(c.Listeners))
	p.ranges[field] = b.DefRange()
	p.ranges[field+".type"] = b.LabelRanges[0]
	if err := checkListenerType(field, typ); err != nil {
		return p.locate(err)
	}
	l := Listener{Type: typ}
	err = p.decode(b.Body, schema{
		where: fmt.Sprintf(" in listener %q", typ),
		attrs: map[string]func(*hclsyntax.Attribute) error{
			"address":                  p.str(&l.Address, field+".address"),
			"cluster_address":          p.str(&l.ClusterAddress, field+".cluster_address"),
			"tls_disable":              p.boolean(&l.TLSDisable, field+".tls_disable"),
			"tls_cert_file":            p.str(&l.TLSCertFile, field+".tls_cert_file"),
			"tls_key_file":             p.str(&l.TLSKeyFile, field+".tls_key_file"),
			"tls_disable_client_certs": p.boolean(&l.TLSDisableClientCerts, field+".tls_disable_client_certs"),
			"max_request_size":         p.size(&l.MaxRequestSize, field+".max_request_size", "bytes"),
			// Vault's listener timeouts.
			"http_read_header_timeout": p.duration(&l.HTTPReadHeaderTimeout, field+".http_read_header_timeout"),
			"http_read_timeout":        p.duration(&l.HTTPReadTimeout, field+".http_read_timeout"),
			"http_write_timeout":       p.duration(&l.HTTPWriteTimeout, field+".http_write_timeout"),
			"http_idle_timeout":        p.duration(&l.HTTPIdleTimeout, field+".http_idle_timeout"),
			// keyraft's batch limits.
			"max_batch_items":                 p.count(&l.MaxBatchItems, field+".max_batch_items", "items"),
			"max_token_batch_items_in_flight": p.count(&l.MaxTokenBatchItemsInFlight, field+".max_token_batch_items_in_flight", "items"),
		},
	})
	c.Listeners = append(c.Listeners, l)
	return err
}

// seal decodes a seal block. There may be two, as in Vault during a seal
// migration: the active seal and the old one, which says disabled = true.
func (p *parser) seal(b *hclsyntax.Block, c *Config) error {
	if len(p.seals) == 2 {
		return p.errAt(b.DefRange(), ErrInvalid, "a third seal block (the others are on lines %d and %d); there are two only during a seal migration: the new seal and the old one with disabled = true",
			p.seals[0].rng.Start.Line, p.seals[1].rng.Start.Line)
	}
	typ, err := p.label(b)
	if err != nil {
		return err
	}
	// The field names of the block ("seal" or "old_seal") depend on
	// disabled, which may come last: record positions under a name of
	// its own, then move them.
	field := fmt.Sprintf("seal[%d]", len(p.seals))
	p.ranges[field] = b.DefRange()
	p.ranges[field+".type"] = b.LabelRanges[0]
	if err := checkSealType(field, typ); err != nil {
		return p.locate(err)
	}
	s := Seal{Type: typ}
	var disabled bool
	attrs := map[string]func(*hclsyntax.Attribute) error{
		"disabled": p.boolean(&disabled, field+".disabled"),
	}
	if typ == "pkcs11" {
		k := new(PKCS11Seal)
		s.PKCS11 = k
		attrs["lib"] = p.str(&k.Lib, field+".lib")
		attrs["slot"] = p.slot(&k.Slot, field+".slot")
		attrs["token_label"] = p.str(&k.TokenLabel, field+".token_label")
		attrs["pin"] = p.pin(&k.PIN, field+".pin")
		attrs["pin_file"] = p.str(&k.PINFile, field+".pin_file")
		attrs["key_label"] = p.str(&k.KeyLabel, field+".key_label")
		attrs["mechanism"] = p.str(&k.Mechanism, field+".mechanism")
		attrs["generate_key"] = p.boolean(&k.GenerateKey, field+".generate_key")
	}
	if err := p.decode(b.Body, schema{where: fmt.Sprintf(" in seal %q", typ), attrs: attrs}); err != nil {
		return err
	}
	for _, other := range p.seals {
		switch {
		case other.disabled != disabled:
		case disabled:
			return p.errAt(b.DefRange(), ErrInvalid, "two disabled seal blocks; the other is on line %d, and only the old seal of a migration is disabled", other.rng.Start.Line)
		default:
			return p.errAt(b.DefRange(), ErrInvalid, "two active seal blocks; the other is on line %d: for a seal migration, set disabled = true in the old one", other.rng.Start.Line)
		}
	}
	p.seals = append(p.seals, sealBlock{rng: b.DefRange(), disabled: disabled})
	if disabled {
		c.OldSeal = &s
		p.moveRanges(field, "old_seal")
	} else {
		c.Seal = s
		p.moveRanges(field, "seal")
	}
	return nil
}

// moveRanges records the positions of field and its parts under the field
// name to instead.
func (p *parser) moveRanges(field, to string) {
	for _, k := range keys(p.ranges) {
		if rest, ok := strings.CutPrefix(k, field); ok && (rest == "" || rest[0] == '.') {
			p.ranges[to+rest] = p.ranges[k]
			delete(p.ranges, k)
		}
	}
}

func (p *parser) audit(b *hclsyntax.Block, c *Config) error {
	typ, err := p.label(b)
	if err != nil {
		return err
	}
	field := fmt.Sprintf("audit[%d]", len(c.Audit))
	p.ranges[field] = b.DefRange()
	p.ranges[field+".type"] = b.LabelRanges[0]
	a := AuditSink{Type: typ}
	err = p.decode(b.Body, schema{
		where: fmt.Sprintf(" in audit %q", typ),
		attrs: map[string]func(*hclsyntax.Attribute) error{
			"name":      p.str(&a.Name, field+".name"),
			"path":      p.str(&a.Path, field+".path"),
			"max_bytes": p.size(&a.MaxBytes, field+".max_bytes", "bytes"),
			"keep":      p.size(&a.Keep, field+".keep", "files"),
			"network":   p.str(&a.Network, field+".network"),
			"address":   p.str(&a.Address, field+".address"),
			"tag":       p.str(&a.Tag, field+".tag"),
			"framing":   p.str(&a.Framing, field+".framing"),
		},
	})
	c.Audit = append(c.Audit, a)
	return err
}

// blockSyntax shows how each block is written, for messages.
var blockSyntax = map[string]string{
	"storage":    `storage "raft"`,
	"listener":   `listener "tcp"`,
	"seal":       `seal "shamir"`,
	"audit":      `audit "file"`,
	"retry_join": "retry_join",
	"autopilot":  "autopilot",
}

// label returns the single label of b, its type.
func (p *parser) label(b *hclsyntax.Block) (string, error) {
	if len(b.Labels) != 1 {
		return "", p.errAt(b.DefRange(), ErrInvalid, "%s block needs one label, its type, as in %s { … }", b.Type, blockSyntax[b.Type])
	}
	return b.Labels[0], nil
}

// decode walks body in source order and hands each argument and block to
// its handler in s. The first problem ends the walk.
func (p *parser) decode(body *hclsyntax.Body, s schema) error {
	type item struct {
		pos   int
		attr  *hclsyntax.Attribute
		block *hclsyntax.Block
	}
	items := make([]item, 0, len(body.Attributes)+len(body.Blocks))
	for _, a := range body.Attributes {
		items = append(items, item{pos: a.SrcRange.Start.Byte, attr: a})
	}
	for _, b := range body.Blocks {
		items = append(items, item{pos: b.TypeRange.Start.Byte, block: b})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].pos < items[j].pos })

	for _, it := range items {
		if a := it.attr; a != nil {
			fn, ok := s.attrs[a.Name]
			switch {
			case ok:
				if err := fn(a); err != nil {
					return err
				}
			case s.blocks[a.Name] != nil:
				return p.errAt(a.NameRange, ErrInvalid, "%q%s is a block, not an argument: write %s { … }", a.Name, s.where, blockSyntax[a.Name])
			default:
				return p.errAt(a.NameRange, ErrInvalid, "unsupported argument %q%s%s", a.Name, s.where, s.suggest(a.Name))
			}
			continue
		}
		b := it.block
		fn, ok := s.blocks[b.Type]
		switch {
		case ok:
			if err := fn(b); err != nil {
				return err
			}
		case s.attrs[b.Type] != nil:
			return p.errAt(b.TypeRange, ErrInvalid, "%q%s is an argument, not a block: write %s = …", b.Type, s.where, b.Type)
		default:
			return p.errAt(b.TypeRange, ErrInvalid, "unsupported block type %q%s%s", b.Type, s.where, s.suggest(b.Type))
		}
	}
	return nil
}

// suggest returns `; did you mean "x"?` when name looks like a typo of a
// known name, or "".
func (s schema) suggest(name string) string {
	best, bestDist := "", 3
	for _, names := range [][]string{keys(s.attrs), keys(s.blocks)} {
		for _, n := range names {
			if d := editDistance(name, n); d < bestDist || (d == bestDist && n < best) {
				best, bestDist = n, d
			}
		}
	}
	if best == "" || bestDist > len(name)/2 {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// value evaluates the expression of a, which may not use variables or
// functions, and records where field is set.
func (p *parser) value(a *hclsyntax.Attribute, field string) (cty.Value, error) {
	p.ranges[field] = a.Expr.Range()
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		d := firstError(diags)
		rng := a.Expr.Range()
		if d.Subject != nil {
			rng = *d.Subject
		}
		return cty.NilVal, p.errAt(rng, ErrInvalid, "%s: %s", a.Name, describe(d))
	}
	if v.IsNull() || !v.IsWhollyKnown() {
		return cty.NilVal, p.errAt(a.Expr.Range(), ErrInvalid, "%s has no value", a.Name)
	}
	return v, nil
}

// str decodes a string argument. A number is taken as its decimal text
// (node_id = 1).
func (p *parser) str(dst *string, field string) func(*hclsyntax.Attribute) error {
	return func(a *hclsyntax.Attribute) error {
		v, err := p.value(a, field)
		if err != nil {
			return err
		}
		switch v.Type() {
		case cty.String:
			*dst = v.AsString()
		case cty.Number:
			*dst = v.AsBigFloat().Text('f', -1)
		default:
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must be a string, not %s", a.Name, v.Type().FriendlyName())
		}
		return nil
	}
}

// boolean decodes a boolean argument the way Vault's configs write them:
// true, false, 1, 0, "true", "false", "1", "0" (and the other spellings
// strconv.ParseBool accepts).
func (p *parser) boolean(dst *bool, field string) func(*hclsyntax.Attribute) error {
	return func(a *hclsyntax.Attribute) error {
		v, err := p.value(a, field)
		if err != nil {
			return err
		}
		bad := func(shown string) error {
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must be true or false (or 1 or 0), not %s", a.Name, shown)
		}
		switch v.Type() {
		case cty.Bool:
			*dst = v.True()
		case cty.Number:
			f := v.AsBigFloat()
			switch {
			case f.Cmp(big.NewFloat(0)) == 0:
				*dst = false
			case f.Cmp(big.NewFloat(1)) == 0:
				*dst = true
			default:
				return bad(shortNumber(f))
			}
		case cty.String:
			b, err := strconv.ParseBool(strings.TrimSpace(v.AsString()))
			if err != nil {
				return bad(strconv.Quote(shorten(v.AsString())))
			}
			*dst = b
		default:
			return bad("a " + v.Type().FriendlyName())
		}
		return nil
	}
}

// fileInstead refuses an argument of Vault's that holds a PEM inline,
// naming the argument that takes its file.
func (p *parser) fileInstead(file string) func(*hclsyntax.Attribute) error {
	return func(a *hclsyntax.Attribute) error {
		return p.errAt(a.NameRange, ErrInvalid, "%s (the PEM itself) is not supported; put the PEM in a file and write %s = \"/path/to/file.pem\"", a.Name, file)
	}
}

// slot decodes a PKCS#11 slot ID: a decimal number, usually written as a
// string as Vault does (slot = "0").
func (p *parser) slot(dst **uint, field string) func(*hclsyntax.Attribute) error {
	return func(a *hclsyntax.Attribute) error {
		var s string
		if err := p.str(&s, field)(a); err != nil {
			return err
		}
		n, err := strconv.ParseUint(s, 10, strconv.IntSize)
		if err != nil {
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must be a decimal slot number such as \"0\", not %s", a.Name, strconv.Quote(shorten(s)))
		}
		u := uint(n)
		*dst = &u
		return nil
	}
}

// pin decodes a PIN: a string only, since a number would lose its leading
// zeros. Messages never show the value.
func (p *parser) pin(dst *Secret, field string) func(*hclsyntax.Attribute) error {
	return func(a *hclsyntax.Attribute) error {
		v, err := p.value(a, field)
		if err != nil {
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must be a string in quotes, without variables, functions or templates (write $${ and %%%%{ for ${ and %%{)", a.Name)
		}
		if v.Type() != cty.String {
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must be a string in quotes, not %s", a.Name, v.Type().FriendlyName())
		}
		*dst = Secret(v.AsString())
		return nil
	}
}

// size decodes a whole number of bytes, written as a number or a string of
// digits.
func (p *parser) size(dst *int64, field, unit string) func(*hclsyntax.Attribute) error {
	return func(a *hclsyntax.Attribute) error {
		v, err := p.value(a, field)
		if err != nil {
			return err
		}
		bad := func(shown string) error {
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must be a whole number of %s, not %s", a.Name, unit, shown)
		}
		var n int64
		switch v.Type() {
		case cty.Number:
			f := v.AsBigFloat()
			i, acc := f.Int64()
			if !f.IsInt() || acc != big.Exact {
				return bad(shortNumber(f))
			}
			n = i
		case cty.String:
			i, err := strconv.ParseInt(strings.TrimSpace(v.AsString()), 10, 64)
			if err != nil {
				return bad(strconv.Quote(shorten(v.AsString())))
			}
			n = i
		default:
			return bad("a " + v.Type().FriendlyName())
		}
		if n < 0 {
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must not be negative", a.Name)
		}
		*dst = n
		return nil
	}
}

// count decodes a whole number that must fit an int, written as a number
// or a string of digits.
func (p *parser) count(dst *int, field, unit string) func(*hclsyntax.Attribute) error {
	return func(a *hclsyntax.Attribute) error {
		var n int64
		if err := p.size(&n, field, unit)(a); err != nil {
			return err
		}
		if n > math.MaxInt32 {
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must be at most %d, not %d", a.Name, math.MaxInt32, n)
		}
		*dst = int(n)
		return nil
	}
}

// maxDurationSeconds bounds a duration written in whole seconds, so that
// it fits a time.Duration.
const maxDurationSeconds = math.MaxInt64 / int64(time.Second)

// duration decodes a duration the way Vault's listener timeouts take
// them: a Go duration string ("30s", "1m30s") or a whole number of
// seconds, as a number (30) or a string of digits ("30").
func (p *parser) duration(dst *time.Duration, field string) func(*hclsyntax.Attribute) error {
	return func(a *hclsyntax.Attribute) error {
		v, err := p.value(a, field)
		if err != nil {
			return err
		}
		bad := func(shown string) error {
			return p.errAt(a.Expr.Range(), ErrInvalid, "%s must be a duration such as \"30s\" or a whole number of seconds, not %s", a.Name, shown)
		}
		seconds := func(n int64) error {
			if n < 0 {
				return p.errAt(a.Expr.Range(), ErrInvalid, "%s must not be negative", a.Name)
			}
			if n > maxDurationSeconds {
				return p.errAt(a.Expr.Range(), ErrInvalid, "%s is too long: at most %d seconds", a.Name, maxDurationSeconds)
			}
			*dst = time.Duration(n) * time.Second
			return nil
		}
		switch v.Type() {
		case cty.Number:
			f := v.AsBigFloat()
			i, acc := f.Int64()
			if !f.IsInt() || acc != big.Exact {
				return bad(shortNumber(f))
			}
			return seconds(i)
		case cty.String:
			s := strings.TrimSpace(v.AsString())
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return seconds(i)
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return bad(strconv.Quote(shorten(v.AsString())))
			}
			if d < 0 {
				return p.errAt(a.Expr.Range(), ErrInvalid, "%s must not be negative", a.Name)
			}
			*dst = d
			return nil
		default:
			return bad("a " + v.Type().FriendlyName())
		}
	}
}

// errAt builds an error positioned at rng.
func (p *parser) errAt(rng hcl.Range, kind error, format string, args ...any) error {
	return &configError{kind: kind, msg: rng.String() + ": " + fmt.Sprintf(format, args...)}
}

// locate puts the position of the field an error from Validate is about in
// front of its message: the field itself, else the nearest enclosing block,
// else the file name.
func (p *parser) locate(err error) error {
	var ce *configError
	if !errors.As(err, &ce) {
		return err
	}
	for f := ce.field; f != ""; f = parentField(f) {
		if r, ok := p.ranges[f]; ok {
			return &configError{kind: ce.kind, msg: r.String() + ": " + ce.msg}
		}
	}
	return &configError{kind: ce.kind, msg: p.file + ": " + ce.msg}
}

// parentField strips the last ".name" or "[i]" of a field name.
func parentField(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i < 0 {
		return ""
	}
	return f[:i]
}

// diagError turns HCL's diagnostics into one line: the position and the
// summary of the first error in the file, plus the first sentence of its
// detail when that names something (contains a quote) and is not on the
// line of a pin, since that would quote part of the PIN.
func diagError(filename string, src []byte, diags hcl.Diagnostics) error {
	d := firstError(diags)
	pos := filename
	if d.Subject != nil {
		pos = d.Subject.String()
		if pinLine.Match(lineOf(src, d.Subject.Start.Line)) {
			return &configError{kind: ErrInvalid, msg: pos + ": " + lowerFirst(oneLine(d.Summary)) + " in the value of pin"}
		}
	}
	return &configError{kind: ErrInvalid, msg: pos + ": " + describe(d)}
}

// pinLine matches a line that sets pin.
var pinLine = regexp.MustCompile(`^\s*pin\s*=`)

// lineOf returns line n (from 1) of src.
func lineOf(src []byte, n int) []byte {
	for ; n > 1; n-- {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			return nil
		}
		src = src[i+1:]
	}
	if i := bytes.IndexByte(src, '\n'); i >= 0 {
		src = src[:i]
	}
	return src
}

// firstError returns the error diagnostic that comes first in the file.
func firstError(diags hcl.Diagnostics) *hcl.Diagnostic {
	var first *hcl.Diagnostic
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if first == nil || (d.Subject != nil && (first.Subject == nil || d.Subject.Start.Byte < first.Subject.Start.Byte)) {
			first = d
		}
	}
	return first
}

// redefined matches HCL's detail for an argument set twice.
var redefined = regexp.MustCompile(`^The argument ("[^"]*") was already set at [^:]*:(\d+),`)

func describe(d *hcl.Diagnostic) string {
	if m := redefined.FindStringSubmatch(d.Detail); m != nil {
		return fmt.Sprintf("argument %s is set twice; the first one is on line %s", m[1], m[2])
	}
	msg := lowerFirst(oneLine(d.Summary))
	detail := oneLine(d.Detail)
	if i := strings.Index(detail, ". "); i >= 0 {
		detail = detail[:i]
	}
	detail = strings.TrimSuffix(detail, ".")
	if strings.Contains(detail, `"`) {
		msg += ": " + lowerFirst(detail)
	}
	return msg
}

// oneLine collapses every run of white space, newlines included, to one
// space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	if len(s) > 1 && s[1] >= 'A' && s[1] <= 'Z' { // an acronym: keep it
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}

// shorten keeps user values in messages short.
func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func shortNumber(f *big.Float) string { return shorten(f.Text('g', 10)) }
