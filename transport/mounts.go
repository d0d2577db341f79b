package transport

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/keyraft/keyraft/access"
)

// keyraft's mounts are fixed: one secrets engine, transit, at transit/,
// and the token and cert auth methods. sys/mounts and sys/auth report
// them in Vault's shape, so that `vault secrets list`, `auth list` and
// the clients' ListMounts/ListAuth work; enabling, disabling and tuning
// refuse what keyraft cannot do, with the reason.

// mount is one fixed mount.
type mount struct {
	path, typ, description string
	accessorPrefix         string
	tokenType              string // auth mounts only
}

var secretMounts = []mount{
	{path: "sys/", typ: "system", description: "system endpoints used for control, policy and debugging", accessorPrefix: "system"},
	{path: "transit/", typ: "transit", description: "keyraft's key engine (transit)", accessorPrefix: "transit"},
}

var authMounts = []mount{
	{path: "token/", typ: "token", description: "token based credentials", accessorPrefix: "auth_token", tokenType: "default-service"},
	{path: "cert/", typ: "cert", description: "TLS client certificate credentials", accessorPrefix: "auth_cert", tokenType: "default-service"},
}

// info is a mount in Vault's MountOutput shape. Its accessor and uuid are
// derived from the cluster ID, so every node reports the same ones.
func (m mount) info(clusterID string) map[string]any {
	sum := sha256.Sum256([]byte("keyraft mount\x00" + clusterID + "\x00" + m.path))
	config := map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false}
	if m.tokenType != "" {
		config["token_type"] = m.tokenType
	}
	out := map[string]any{
		"type": m.typ, "description": m.description,
		"accessor": fmt.Sprintf("%s_%x", m.accessorPrefix, sum[:4]),
		"uuid":     fmt.Sprintf("%x-%x-%x-%x-%x", sum[4:8], sum[8:10], sum[10:12], sum[12:14], sum[14:20]),
		"config":   config, "options": nil, "local": false, "seal_wrap": m.typ == "system",
		"external_entropy_access": false, "plugin_version": "", "running_plugin_version": "v" + Version + "+builtin.keyraft",
		"running_sha256": "",
	}
	if m.typ == "transit" {
		out["deprecation_status"] = "supported"
	}
	return out
}

func (a *API) clusterID() string { return a.cfg.Node.SealStatus().ClusterID }

// mountTable answers GET sys/mounts and GET sys/auth.
func (a *API) mountTable(req *request) reply {
	mounts := secretMounts
	if strings.HasPrefix(req.path, "sys/auth") {
		mounts = authMounts
	}
	out := map[string]any{}
	for _, m := range mounts {
		out[m.path] = m.info(a.clusterID())
	}
	return reply{data: out, topLevel: true}
}

// findMount is the mount a path is under: the longest prefix for secrets
// engines (sys/mounts/transit/keys/k is transit/), the exact path for
// auth methods, as in Vault.
func findMount(mounts []mount, path string, exact bool) (mount, bool) {
	path = strings.Trim(path, "/") + "/"
	for _, m := range mounts {
		if path == m.path || !exact && strings.HasPrefix(path, m.path) {
			return m, true
		}
	}
	return mount{}, false
}

// mountOf is the mount named by the request's path parameter, or the 400
// Vault answers for none.
func (a *API) mountOf(req *request) (mount, *reply) {
	auth := strings.HasPrefix(req.path, "sys/auth/") || strings.HasPrefix(req.path, "sys/mounts/auth/") && strings.HasSuffix(req.path, "/tune")
	mounts, what := secretMounts, "secret engine mount"
	if auth {
		mounts, what = authMounts, "auth engine"
	}
	p := req.params["path"]
	if rest, ok := strings.CutPrefix(p, "auth/"); ok && !auth {
		// sys/mounts/auth/token is the token auth method (the vault
		// client's GetAuth asks so).
		mounts, what, p = authMounts, "auth engine", rest
	}
	m, ok := findMount(mounts, p, auth)
	if !ok {
		r := errReply(http.StatusBadRequest, fmt.Sprintf("No %s at %s/", what, strings.Trim(p, "/")))
		return m, &r
	}
	return m, nil
}

// readMount answers GET sys/mounts/:path and sys/auth/:path.
func (a *API) readMount(req *request) reply {
	m, r := a.mountOf(req)
	if r != nil {
		return *r
	}
	return reply{data: m.info(a.clusterID()), topLevel: true}
}

// enableMount answers POST sys/mounts/:path and sys/auth/:path: keyraft's
// mounts are fixed, so a mount at a path in use gets Vault's answer, any
// other the reason.
func (a *API) enableMount(req *request) reply {
	auth := strings.HasPrefix(req.path, "sys/auth/")
	mounts := secretMounts
	if auth {
		mounts = authMounts
	}
	p := strings.Trim(req.params["path"], "/") + "/"
	for _, m := range mounts {
		if strings.HasPrefix(p, m.path) || strings.HasPrefix(m.path, p) {
			return errReply(http.StatusBadRequest, "path is already in use at "+m.path)
		}
	}
	names := make([]string, 0, len(mounts))
	for _, m := range mounts {
		if m.typ != "system" {
			names = append(names, m.path)
		}
	}
	sort.Strings(names)
	what := "secrets engine"
	if auth {
		what = "auth methods"
	}
	return errReply(http.StatusBadRequest, fmt.Sprintf("cannot mount %q: keyraft's %s are fixed (%s)", p, what, strings.Join(names, ", ")))
}

// disableMount answers DELETE sys/mounts/:path and sys/auth/:path: a
// path with no mount is Vault's 204; keyraft's own cannot be disabled.
func (a *API) disableMount(req *request) reply {
	if m, r := a.mountOf(req); r == nil {
		return errReply(http.StatusBadRequest, "cannot disable "+m.path+": keyraft's mounts are fixed")
	}
	return reply{}
}

// mountTune answers GET sys/mounts/:path/tune and sys/auth/:path/tune:
// the effective lease TTLs (a token's default and maximum TTL; transit
// issues no leases).
func (a *API) mountTune(req *request) reply {
	m, r := a.mountOf(req)
	if r != nil {
		return *r
	}
	out := map[string]any{
		"default_lease_ttl": int(access.DefaultTokenTTL.Seconds()), "max_lease_ttl": int(access.MaxTokenTTL.Seconds()),
		"description": m.description, "force_no_cache": false,
	}
	if m.tokenType != "" {
		out["token_type"] = m.tokenType
	}
	return reply{data: out, topLevel: true}
}

// tuneMount answers POST sys/mounts/:path/tune and sys/auth/:path/tune.
// What the vault CLI sends by default (empty or zero values, the current
// description) changes nothing and is accepted; anything that would
// change a fixed mount is refused by name.
func (a *API) tuneMount(req *request) reply {
	m, r := a.mountOf(req)
	if r != nil {
		return *r
	}
	f, r := req.parsed()
	if r != nil {
		return *r
	}
	var refused []string
	for _, name := range f.Names() {
		switch name {
		case "default_lease_ttl", "max_lease_ttl":
			if s, err := f.String(name, ""); err == nil && (s == "" || s == "system") {
				continue
			}
			if d, _, err := f.Duration(name); err == nil && d == 0 {
				continue
			}
		case "force_no_cache":
			if v, err := f.Bool(name, false); err == nil && !v {
				continue
			}
		case "description":
			if s, err := f.String(name, ""); err == nil && s == m.description {
				continue
			}
		case "options", "audit_non_hmac_request_keys", "audit_non_hmac_response_keys",
			"passthrough_request_headers", "allowed_response_headers", "listing_visibility", "plugin_version", "token_type":
			if raw, _, _ := f.Raw(name); isEmptyJSON(raw) {
				continue
			}
		}
		refused = append(refused, name)
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return errReply(http.StatusBadRequest, fmt.Sprintf("cannot tune %s of %s: keyraft's mounts are fixed (transit issues no leases)",
			strings.Join(refused, ", "), m.path))
	}
	return reply{}
}

// isEmptyJSON is true for null, "", [], {} and false.
func isEmptyJSON(raw []byte) bool {
	switch strings.TrimSpace(string(raw)) {
	case "", "null", `""`, "[]", "{}", "false":
		return true
	}
	return false
}

// haStatus answers GET sys/ha-status in Vault's shape: every Raft member
// gossip knows, the leader as the active node. last_echo is null: keyraft
// has no echo heartbeat (Raft's own heartbeats decide leadership).
func (a *API) haStatus(*request) reply {
	var nodes []map[string]any
	for _, m := range a.cfg.Node.Members() {
		if !m.InRaft {
			continue
		}
		v := m.Version
		if v == "" {
			v = Version
		}
		nodes = append(nodes, map[string]any{
			"hostname": m.NodeID, "api_address": m.APIAddr, "cluster_address": m.ClusterAddr,
			"active_node": m.Leader, "last_echo": nil, "version": v,
		})
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i]["api_address"].(string) < nodes[j]["api_address"].(string) })
	return reply{data: map[string]any{"nodes": nodes}, topLevel: true}
}
