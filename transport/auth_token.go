package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// Limits of a token create body: hostile input stays cheap.
const (
	maxTokenPolicies = 64
	maxTokenCIDRs    = 64
	maxTokenMeta     = 64
	maxTokenMetaLen  = 512
)

// tokenCreate is a decoded auth/token/create body (Vault's fields).
type tokenCreate struct {
	Policies        []string
	HasPolicies     bool
	Meta            map[string]string
	TTL             time.Duration
	ExplicitMaxTTL  time.Duration
	Period          time.Duration
	NoParent        bool
	NoDefaultPolicy bool
	DisplayName     string
	NumUses         int
	Renewable       bool
	BoundCIDRs      []string
	Warnings        []string
}

// parseTokenCreate decodes a token create body the way Vault does: the
// scalars weakly typed (the vault CLI sends strings), policies and
// bound_cidrs as a list or a comma-separated string, meta as an object of
// strings. Fields keyraft does not support are refused when they ask for
// something; unknown fields give a warning. Errors are 400 messages.
func parseTokenCreate(f *transit.Fields) (*tokenCreate, error) {
	tc := &tokenCreate{Renewable: true}
	for _, parse := range []func(*transit.Fields) error{tc.parseLists, tc.parseMeta, tc.parseTTLs, tc.parseScalars, refuseUnsupported} {
		if err := parse(f); err != nil {
			return nil, err
		}
	}
	known := []string{"policies", "bound_cidrs", "token_bound_cidrs", "meta", "ttl", "lease", "explicit_max_ttl",
		"no_parent", "no_default_policy", "renewable", "display_name", "num_uses", "id", "period", "entity_alias", "type"}
	var unknown []string
	for _, k := range f.Names() {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		tc.Warnings = append(tc.Warnings, "Endpoint ignored these unrecognized parameters: ["+strings.Join(unknown, " ")+"]")
	}
	return tc, nil
}

// parseLists reads policies and bound_cidrs (token_bound_cidrs too).
func (tc *tokenCreate) parseLists(f *transit.Fields) error {
	var err error
	if tc.Policies, tc.HasPolicies, err = stringList(f, "policies", maxTokenPolicies); err != nil {
		return err
	}
	for _, p := range tc.Policies {
		if p == "" || len(p) > 128 || strings.ContainsAny(p, "/ \t\r\n") {
			return fmt.Errorf("policies: %q is not a policy name", transit.Truncate(p))
		}
	}
	cidrs, _, err := stringList(f, "bound_cidrs", maxTokenCIDRs)
	if err != nil {
		return err
	}
	more, _, err := stringList(f, "token_bound_cidrs", maxTokenCIDRs)
	if err != nil {
		return err
	}
	for _, c := range append(cidrs, more...) {
		if _, err := netip.ParsePrefix(c); err != nil {
			if _, err := netip.ParseAddr(c); err != nil {
				return fmt.Errorf("bound_cidrs: %q is not an address or CIDR", transit.Truncate(c))
			}
		}
		tc.BoundCIDRs = append(tc.BoundCIDRs, c)
	}
	if len(tc.BoundCIDRs) > maxTokenCIDRs {
		return fmt.Errorf("bound_cidrs: at most %d entries", maxTokenCIDRs)
	}
	return nil
}

func (tc *tokenCreate) parseMeta(f *transit.Fields) error {
	v, ok, err := f.Raw("meta")
	if err != nil || !ok {
		return err
	}
	if err := json.Unmarshal(v, &tc.Meta); err != nil {
		return errors.New(`meta must be an object of strings, as {"team": "payments"}`)
	}
	if len(tc.Meta) > maxTokenMeta {
		return fmt.Errorf("meta: at most %d entries", maxTokenMeta)
	}
	for k, v := range tc.Meta {
		if len(k)+len(v) > maxTokenMetaLen {
			return fmt.Errorf("meta: entry %q is longer than %d bytes", transit.Truncate(k), maxTokenMetaLen)
		}
	}
	return nil
}

func (tc *tokenCreate) parseTTLs(f *transit.Fields) error {
	var err error
	if tc.TTL, _, err = f.Duration("ttl"); err != nil {
		return err
	}
	if tc.TTL == 0 {
		if tc.TTL, _, err = f.Duration("lease"); err != nil { // Vault's old name of ttl
			return err
		}
	}
	if tc.ExplicitMaxTTL, _, err = f.Duration("explicit_max_ttl"); err != nil {
		return err
	}
	if tc.Period, _, err = f.Duration("period"); err != nil {
		return err
	}
	if tc.Period > access.MaxTokenTTL {
		tc.Warnings = append(tc.Warnings, fmt.Sprintf("period of %q exceeded the effective max_ttl of %q; period value is capped accordingly",
			tc.Period, access.MaxTokenTTL))
	}
	if tc.Period > 0 && tc.ExplicitMaxTTL > 0 && tc.Period > tc.ExplicitMaxTTL {
		tc.Warnings = append(tc.Warnings, fmt.Sprintf("period of %q exceeded the effective max_ttl of %q; period value is capped accordingly",
			tc.Period, tc.ExplicitMaxTTL))
	}
	if tc.TTL > access.MaxTokenTTL || tc.ExplicitMaxTTL > access.MaxTokenTTL {
		if tc.Period == 0 {
			return fmt.Errorf("ttl and explicit_max_ttl may be at most %s", access.MaxTokenTTL)
		}
		// A periodic token ignores ttl, and may have an explicit max
		// beyond the system's (as in Vault).
		tc.TTL = 0
	}
	return nil
}

func (tc *tokenCreate) parseScalars(f *transit.Fields) error {
	var err error
	if tc.NoParent, err = f.Bool("no_parent", false); err != nil {
		return err
	}
	if tc.NoDefaultPolicy, err = f.Bool("no_default_policy", false); err != nil {
		return err
	}
	if tc.Renewable, err = f.Bool("renewable", true); err != nil {
		return err
	}
	if tc.DisplayName, err = f.String("display_name", ""); err != nil {
		return err
	}
	if len(tc.DisplayName) > 256 {
		return errors.New("display_name is longer than 256 bytes")
	}
	if tc.NumUses, err = f.Int("num_uses", 0); err != nil {
		return err
	}
	if tc.NumUses < 0 {
		return errors.New("num_uses must not be negative")
	}
	return nil
}

// refuseUnsupported refuses the Vault fields keyraft does not support
// when they ask for something (the vault CLI sends them empty).
func refuseUnsupported(f *transit.Fields) error {
	for _, name := range []string{"id", "entity_alias"} {
		if s, _ := f.String(name, ""); !f.Empty(name) && s != "" && s != "0" {
			return fmt.Errorf("%s is not supported", name)
		}
	}
	if t, _ := f.String("type", ""); t != "" && t != "service" && t != "default" {
		return fmt.Errorf("type %q is not supported: keyraft has service tokens only", transit.Truncate(t))
	}
	return nil
}

// stringList reads a field that is a JSON list of strings or one
// comma-separated string.
func stringList(f *transit.Fields, name string, most int) ([]string, bool, error) {
	v, ok, err := f.Raw(name)
	if err != nil || !ok {
		return nil, false, err
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return nil, false, fmt.Errorf("%s must be a list of strings or a comma-separated string", name)
		}
		list = nil
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				list = append(list, part)
			}
		}
	}
	if len(list) > most {
		return nil, false, fmt.Errorf("%s: at most %d entries", name, most)
	}
	return list, true, nil
}

// tokenBody is the body of the auth/token/* operations that name a token.
type tokenBody struct {
	Token     string          `json:"token"`
	Accessor  string          `json:"accessor"`
	Increment json.RawMessage `json:"increment"`
}

// tokenOp serves auth/token/:op (the rows of tokenOps).
func (a *API) tokenOp(req *request) reply {
	op := req.path[strings.LastIndexByte(req.path, '/')+1:]
	if op == "create" || op == "create-orphan" {
		return a.createToken(req, req.te, op == "create-orphan")
	}
	var body tokenBody
	if r := req.decode(&body); r != nil {
		return *r
	}
	if body.Accessor != "" {
		req.detail("accessor", body.Accessor)
	}
	if r := a.otherTokenInNamespace(req, op, body.Token, body.Accessor); r != nil {
		return *r
	}
	switch {
	case op == "lookup-self":
		return reply{data: tokenData(req.te, req.token, a.now())}
	case strings.HasPrefix(op, "lookup"):
		return a.tokenLookup(req, op, body)
	case strings.HasPrefix(op, "renew"):
		return a.tokenRenew(req, op, body)
	}
	return a.tokenRevoke(req, op, body)
}

// tokenGone is the answer about a token that does not exist (or not for
// this caller).
func (a *API) tokenGone(err error) reply {
	if errors.Is(err, access.ErrPermissionDenied) {
		return errReply(http.StatusBadRequest, "bad token: no such token or it has expired")
	}
	if errors.Is(err, cluster.ErrInvalidRequest) {
		return errReply(http.StatusBadRequest, trimPkg(err))
	}
	return a.errorReply(err)
}

func missing(v, name string) *reply {
	if v == "" {
		r := errReply(http.StatusBadRequest, "missing "+name)
		return &r
	}
	return nil
}

// tokenLookup serves lookup (by token) and lookup-accessor.
func (a *API) tokenLookup(req *request, op string, body tokenBody) reply {
	now := a.now()
	var e *access.TokenEntry
	var err error
	if op == "lookup" {
		if r := missing(body.Token, "token"); r != nil {
			return *r
		}
		e, err = a.cfg.Access.LookupToken(body.Token)
	} else {
		if r := missing(body.Accessor, "accessor"); r != nil {
			return *r
		}
		e, err = a.cfg.Access.LookupAccessor(body.Accessor)
	}
	if err == nil && (e.Expired(now) || !req.sameNamespace(e)) {
		err = access.ErrPermissionDenied
	}
	if op == "lookup" && errors.Is(err, access.ErrPermissionDenied) {
		// Vault answers a lookup of a token that is gone with 403 (of an
		// accessor with 400).
		return errReply(http.StatusForbidden, "bad token: no such token or it has expired")
	}
	if err != nil {
		return a.tokenGone(err)
	}
	id := ""
	if op == "lookup" {
		id = body.Token
	}
	return reply{data: tokenData(e, id, now)}
}

// increment is a renewal's increment (0: the token's own period).
func (body tokenBody) increment() (time.Duration, *reply) {
	if len(body.Increment) == 0 || string(body.Increment) == "null" {
		return 0, nil
	}
	f, err := transit.ParseFields([]byte(`{"increment":` + string(body.Increment) + `}`))
	if err == nil {
		var d time.Duration
		if d, _, err = f.Duration("increment"); err == nil {
			return d, nil
		}
	}
	r := errReply(http.StatusBadRequest, "increment must be a duration such as \"1h\" or a number of seconds")
	return 0, &r
}

// tokenRenew serves renew, renew-self and renew-accessor.
func (a *API) tokenRenew(req *request, op string, body tokenBody) reply {
	inc, r := body.increment()
	if r != nil {
		return *r
	}
	n, now := a.cfg.Access, a.now()
	var e *access.TokenEntry
	var err error
	tok := ""
	switch op {
	case "renew-self":
		tok = req.token
		e, err = n.RenewToken(req.ctx, req.token, inc, now)
	case "renew":
		if r := missing(body.Token, "token"); r != nil {
			return *r
		}
		tok = body.Token
		e, err = n.RenewToken(req.ctx, body.Token, inc, now)
	default:
		if r := missing(body.Accessor, "accessor"); r != nil {
			return *r
		}
		e, err = n.RenewAccessor(req.ctx, body.Accessor, inc, now)
	}
	if err != nil {
		return a.tokenGone(err)
	}
	return authReply(req, e, tok, now, nil)
}

// tokenRevoke serves revoke, revoke-self, revoke-accessor and
// revoke-orphan. Vault answers 204 for a token that is already gone.
func (a *API) tokenRevoke(req *request, op string, body tokenBody) reply {
	n := a.cfg.Access
	var err error
	switch op {
	case "revoke-self":
		err = n.RevokeToken(req.ctx, req.token, false)
	case "revoke", "revoke-orphan":
		if r := missing(body.Token, "token"); r != nil {
			return *r
		}
		err = n.RevokeToken(req.ctx, body.Token, op == "revoke-orphan")
	default:
		if r := missing(body.Accessor, "accessor"); r != nil {
			return *r
		}
		err = n.RevokeAccessor(req.ctx, body.Accessor, false)
	}
	if errors.Is(err, access.ErrPermissionDenied) && op != "revoke-accessor" {
		err = nil // gone already (revoke-self: its last use was this request)
	}
	if err != nil {
		return a.tokenGone(err)
	}
	return reply{status: http.StatusNoContent}
}

// checkGrantablePolicies is the subset rule for handing out policies,
// to a token being created or through a certificate role being written:
// a caller without sudo on the request's path may give only policies it
// holds ("default" always). Inside a namespace sudo does not widen that
// (a namespace's operators give only the policies they hold), except for
// a root token. Root itself is the callers' own rule.
func checkGrantablePolicies(req *request, te *access.TokenEntry, policies []string, sudo bool) *reply {
	if sudo && (req.ns == "" || slices.Contains(te.Policies, "root")) {
		return nil
	}
	for _, p := range policies {
		if p != "default" && !slices.Contains(te.Policies, p) {
			r := errReply(http.StatusForbidden, "permission denied: without sudo on "+req.path+
				" only policies the token holds can be granted ("+p+" is not one of them)")
			return &r
		}
	}
	return nil
}

// createToken serves auth/token/create and create-orphan. A caller
// without sudo on the path may only hand out policies it holds, and only
// create-orphan (not no_parent) makes an orphan without sudo, as in Vault.
func (a *API) createToken(req *request, te *access.TokenEntry, orphanPath bool) reply {
	f, r := req.parsed()
	if r != nil {
		return *r
	}
	tc, err := parseTokenCreate(f)
	if err != nil {
		return errorFromTransit(err)
	}
	policies, r := a.childPolicies(req, te, tc, orphanPath)
	if r != nil {
		return *r
	}
	if tc.Period > 0 && !a.hasSudo(req, te) {
		return errReply(http.StatusBadRequest, "root or sudo privileges required to create periodic token")
	}
	parent, creator := req.token, ""
	if orphanPath || tc.NoParent {
		parent = ""
		if !slices.Contains(te.Policies, "root") {
			creator = te.Accessor // one identity with its maker (two-person rule)
		}
	}
	name := tc.DisplayName
	if name == "" {
		name = "token"
	} else if !strings.HasPrefix(name, "token-") {
		name = "token-" + name
	}
	req.detail("policies", strings.Join(policies, ","))
	token, e, err := a.cfg.Access.CreateToken(req.ctx, access.TokenRequest{
		Policies: policies, ParentToken: parent, Creator: creator, TTL: tc.TTL, ExplicitMaxTTL: tc.ExplicitMaxTTL,
		Period: tc.Period, NumUses: tc.NumUses, BoundCIDRs: tc.BoundCIDRs, DisplayName: name, Meta: tc.Meta,
		Renewable: tc.Renewable, Path: "auth/token/create", Now: a.now(), Namespace: req.ns,
	})
	if errors.Is(err, access.ErrPermissionDenied) {
		return errReply(http.StatusForbidden, "permission denied: the parent token is gone")
	}
	if errors.Is(err, cluster.ErrInvalidRequest) {
		return errReply(http.StatusBadRequest, trimPkg(err))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return authReply(req, e, token, a.now(), tc.Warnings)
}

// childPolicies decides the policies of a token te creates, and whether
// it may create it at all.
func (a *API) childPolicies(req *request, te *access.TokenEntry, tc *tokenCreate, orphanPath bool) ([]string, *reply) {
	refuse := func(status int, msg string) ([]string, *reply) {
		r := errReply(status, msg)
		return nil, &r
	}
	// A use-limited token makes no tokens, as in Vault: a child (or
	// orphan) with unlimited uses would escape the limit.
	if te.NumUses > 0 {
		return refuse(http.StatusBadRequest, "a use-limited token (num_uses) cannot create tokens; create them with a token without a use limit")
	}
	sudo := a.hasSudo(req, te)
	policies := tc.Policies
	if !tc.HasPolicies {
		policies = slices.Clone(te.Policies)
	}
	// Root is never handed out by sudo: only a root token makes another
	// (otherwise sudo on auth/token/* is a way to root), and a
	// namespace's token never carries it (root tokens act in every
	// namespace). Break-glass tokens never hold root, so they cannot mint it.
	if slices.Contains(policies, "root") {
		switch {
		case !slices.Contains(te.Policies, "root"):
			return refuse(http.StatusForbidden, "permission denied: only a root token can create a root token")
		case req.ns != "":
			return refuse(http.StatusBadRequest, "a namespace's token cannot have the root policy; create root tokens in the root namespace")
		}
	}
	if r := checkGrantablePolicies(req, te, policies, sudo); r != nil {
		return nil, r
	}
	if !sudo && tc.NoParent && !orphanPath {
		return refuse(http.StatusForbidden, "permission denied: no_parent needs a root token or sudo; use auth/token/create-orphan")
	}
	// A break-glass token's tokens die with its session: it may make
	// children (capped at its expiry), never orphans that would outlive it.
	if te.Path == "sys/break-glass" && (orphanPath || tc.NoParent) {
		return refuse(http.StatusForbidden, "permission denied: a break-glass token cannot create orphan tokens; its tokens end with the session")
	}
	if slices.Contains(policies, "root") {
		policies = []string{"root"}
	} else if !tc.NoDefaultPolicy && !slices.Contains(policies, "default") {
		policies = append([]string{"default"}, policies...)
	}
	if len(policies) == 0 {
		return refuse(http.StatusBadRequest, "a token needs at least one policy")
	}
	return policies, nil
}

// authReply is Vault's answer with an "auth" block (token create, renew,
// cert login).
func authReply(req *request, e *access.TokenEntry, token string, now time.Time, warnings []string) reply {
	var tokenPolicies []string
	for _, p := range e.Policies {
		tokenPolicies = append(tokenPolicies, p)
	}
	renewable := e.Renewable && !e.ExpireTime.IsZero()
	return reply{raw: map[string]any{
		"request_id":     req.ev.RequestID,
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": 0,
		"data":           nil,
		"wrap_info":      nil,
		"warnings":       warnings,
		"auth": map[string]any{
			"client_token":      token,
			"accessor":          e.Accessor,
			"policies":          e.Policies,
			"token_policies":    tokenPolicies,
			"identity_policies": nil,
			"metadata":          e.Meta,
			"lease_duration":    ttlSeconds(e, now),
			"renewable":         renewable,
			"entity_id":         "",
			"token_type":        "service",
			"orphan":            e.Orphan(),
			"mfa_requirement":   nil,
			"num_uses":          e.NumUses,
		},
	}}
}

func ttlSeconds(e *access.TokenEntry, now time.Time) int64 {
	if e.ExpireTime.IsZero() {
		return 0
	}
	s := int64(e.ExpireTime.Sub(now).Round(time.Second) / time.Second)
	return max(s, 0)
}

// tokenData is the data of a token lookup, in Vault's shape. id is the
// token when the caller gave it (lookup, lookup-self), "" by accessor.
func tokenData(e *access.TokenEntry, id string, now time.Time) map[string]any {
	var expire any
	if !e.ExpireTime.IsZero() {
		expire = e.ExpireTime.UTC().Format(time.RFC3339Nano)
	}
	path := e.Path
	if path == "" {
		path = "auth/token/root"
	}
	out := map[string]any{
		"accessor":         e.Accessor,
		"creation_time":    e.CreationTime.Unix(),
		"creation_ttl":     int64(e.TTL / time.Second),
		"display_name":     e.DisplayName,
		"entity_id":        "",
		"expire_time":      expire,
		"explicit_max_ttl": int64(e.ExplicitMaxTTL / time.Second),
		"id":               id,
		"issue_time":       e.CreationTime.Format(time.RFC3339Nano),
		"meta":             e.Meta,
		"num_uses":         e.NumUses,
		"orphan":           e.Orphan(),
		"path":             path,
		"policies":         e.Policies,
		"renewable":        e.Renewable && !e.ExpireTime.IsZero(),
		"ttl":              ttlSeconds(e, now),
		"type":             "service",
		"bound_cidrs":      e.BoundCIDRs,
	}
	// As in Vault, these appear only when they apply.
	if e.Period > 0 {
		out["period"] = int64(e.Period / time.Second)
	}
	if !e.LastRenewal.IsZero() {
		out["last_renewal_time"] = e.LastRenewal.Unix()
		out["last_renewal"] = e.LastRenewal.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// otherTokenInNamespace refuses renew and revoke of a token of another
// namespace (as if it did not exist), so a namespace's operators reach
// only their own tokens.
func (a *API) otherTokenInNamespace(req *request, op, token, accessor string) *reply {
	var e *access.TokenEntry
	var err error
	switch op {
	case "renew", "revoke", "revoke-orphan":
		if token == "" {
			return nil
		}
		e, err = a.cfg.Access.LookupToken(token)
	case "renew-accessor", "revoke-accessor":
		if accessor == "" {
			return nil
		}
		e, err = a.cfg.Access.LookupAccessor(accessor)
	default:
		return nil
	}
	if err != nil || req.sameNamespace(e) {
		return nil // a missing token is the operation's own answer
	}
	r := errReply(http.StatusBadRequest, "bad token: no such token or it has expired")
	return &r
}
