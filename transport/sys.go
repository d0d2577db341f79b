package transport

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

func (a *API) initStatus(*request) reply {
	return reply{raw: map[string]any{"initialized": a.cfg.Node.Initialized()}}
}

func (a *API) sealStatusReply(*request) reply { return reply{raw: a.sealStatus()} }

func (a *API) sealNode(req *request) reply {
	a.cfg.Node.Seal()
	a.log.Info("sealed by request", "accessor", req.te.Accessor)
	return reply{status: http.StatusNoContent}
}

func (a *API) rotateKeyring(req *request) reply {
	term, err := a.cfg.Node.RotateKeyring(req.ctx)
	if err != nil {
		return a.errorReply(err)
	}
	return reply{data: map[string]any{"term": term}}
}

func (a *API) keyStatus(*request) reply {
	ks, err := a.cfg.Node.KeyStatus()
	if err != nil {
		return a.errorReply(err)
	}
	return reply{data: map[string]any{"term": ks.Term, "install_time": ks.InstallTime.UTC().Format(time.RFC3339Nano),
		"encryptions": ks.Encryptions}, topLevel: true}
}

func (a *API) rotationProgress(*request) reply {
	st, err := a.cfg.Node.RotationStatus()
	if err != nil {
		return a.errorReply(err)
	}
	return reply{data: rotationStatus(st)}
}

// rotationStatus is the answer of GET sys/rotate/progress.
func rotationStatus(st cluster.RotationStatus) map[string]any {
	out := map[string]any{"term": st.Term, "total": st.Total, "done": st.Done, "running": st.Running, "error": st.Error}
	for name, t := range map[string]time.Time{"started_at": st.Started, "finished_at": st.Finished} {
		if !t.IsZero() {
			out[name] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	return out
}

func hasPolicy(te *access.TokenEntry, name string) bool {
	for _, p := range te.Policies {
		if p == name {
			return true
		}
	}
	return false
}

func (a *API) sealStatus() map[string]any {
	st := a.cfg.Node.SealStatus()
	out := map[string]any{
		"type":          st.Type,
		"initialized":   st.Initialized,
		"sealed":        st.Sealed,
		"t":             st.Threshold,
		"n":             st.Shares,
		"progress":      st.Progress,
		"nonce":         "",
		"version":       Version,
		"build_date":    "",
		"migration":     st.Migration,
		"recovery_seal": st.RecoverySeal,
		"storage_type":  "raft",
	}
	if st.Initialized {
		out["cluster_name"] = st.ClusterName
		out["cluster_id"] = st.ClusterID
	}
	return out
}

func (a *API) sysInit(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	// The vault Go client sends every field of its InitRequest, unused
	// ones as null, "" or 0: only a value that asks for something counts.
	for _, unsupported := range []string{"pgp_keys", "root_token_pgp_key", "recovery_pgp_keys"} {
		if !f.Empty(unsupported) {
			return errReply(http.StatusBadRequest, unsupported+" is not supported")
		}
	}
	ints := map[string]int{}
	for _, name := range []string{"secret_shares", "secret_threshold", "recovery_shares", "recovery_threshold", "stored_shares"} {
		v, err := f.Int(name, 0)
		if err != nil {
			return errorFromTransit(err)
		}
		ints[name] = v
	}
	auto := a.cfg.Node.AutoSealed()
	if !auto {
		for _, recovery := range []string{"recovery_shares", "recovery_threshold", "stored_shares"} {
			if !f.Empty(recovery) {
				return errReply(http.StatusBadRequest, recovery+" is only valid with an auto-unseal seal; this node uses shamir")
			}
		}
		if !f.Has("secret_shares") || !f.Has("secret_threshold") {
			return errReply(http.StatusBadRequest, "secret_shares and secret_threshold are required")
		}
	}
	res, err := a.cfg.Node.Init(req.ctx, cluster.InitRequest{
		SecretShares: ints["secret_shares"], SecretThreshold: ints["secret_threshold"],
		RecoveryShares: ints["recovery_shares"], RecoveryThreshold: ints["recovery_threshold"],
	})
	switch {
	case errors.Is(err, cluster.ErrAlreadyInitialized):
		return errReply(http.StatusBadRequest, "keyraft is already initialized")
	case errors.Is(err, cluster.ErrInvalidRequest):
		return errReply(http.StatusBadRequest, strings.TrimPrefix(err.Error(), cluster.ErrInvalidRequest.Error()+": "))
	case err != nil:
		return a.errorReply(err)
	}
	encode := func(keys [][]byte) (hexKeys, b64Keys []string) {
		hexKeys, b64Keys = make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			hexKeys[i] = hex.EncodeToString(k)
			b64Keys[i] = base64.StdEncoding.EncodeToString(k)
		}
		return hexKeys, b64Keys
	}
	hexKeys, b64Keys := encode(res.Keys)
	out := map[string]any{"keys": hexKeys, "keys_base64": b64Keys, "root_token": res.RootToken}
	if auto {
		rh, rb := encode(res.RecoveryKeys)
		out["recovery_keys"], out["recovery_keys_base64"] = rh, rb
	}
	return reply{raw: out}
}

func (a *API) sysUnseal(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	reset, err := f.Bool("reset", false)
	if err != nil {
		return errorFromTransit(err)
	}
	if reset {
		a.cfg.Node.ResetUnseal()
		return reply{raw: a.sealStatus()}
	}
	key, err := f.String("key", "")
	if err != nil {
		return errorFromTransit(err)
	}
	if key == "" {
		return errReply(http.StatusBadRequest, "'key' must be given in the request body as JSON, or 'reset' set to true")
	}
	share, r := shareField(f)
	if r != nil {
		return *r
	}
	defer clear(share)
	migrate, err := f.Bool("migrate", false)
	if err != nil {
		return errorFromTransit(err)
	}
	if migrate {
		_, err = a.cfg.Node.UnsealMigrate(req.ctx, share)
	} else {
		_, err = a.cfg.Node.Unseal(req.ctx, share)
	}
	switch {
	case errors.Is(err, cluster.ErrNoMigration):
		return errReply(http.StatusBadRequest, "no seal migration is configured on this node: add the new seal block and mark the old one disabled = true, then restart it")
	case errors.Is(err, cluster.ErrNotInitialized):
		return errReply(http.StatusBadRequest, "keyraft is not initialized")
	case errors.Is(err, cluster.ErrInvalidUnsealKey):
		return errReply(http.StatusBadRequest, "unseal failed, invalid key: "+strings.TrimPrefix(err.Error(), cluster.ErrInvalidUnsealKey.Error()+": "))
	case errors.Is(err, cluster.ErrAutoSeal):
		return errReply(http.StatusBadRequest, "this node unseals itself with its "+a.cfg.Node.SealStatus().Type+" seal; unseal keys are not used (restart it to unseal after 'operator seal')")
	case err != nil:
		// A joining node's unseal also finishes its join: its refusals
		// (expired, denied, node ID taken) are the caller's to act on.
		return a.membershipError(err)
	}
	return reply{raw: a.sealStatus()}
}

// sysHealth answers as Vault does: 200 active, 429 standby, 501 not
// initialized, 503 sealed; each code can be overridden by a query flag.
func (a *API) sysHealth(req *request) reply {
	n := a.cfg.Node
	st := n.SealStatus()
	standby := !a.isLeader()
	codes, flags, r := healthQuery(req)
	if r != nil {
		return *r
	}
	status := codes["activecode"]
	switch {
	case !st.Initialized:
		status = codes["uninitcode"]
	case st.Sealed:
		status = codes["sealedcode"]
	case standby && !flags["standbyok"]:
		status = codes["standbycode"]
	}
	body := map[string]any{
		"initialized":                  st.Initialized,
		"sealed":                       st.Sealed,
		"standby":                      standby,
		"performance_standby":          false,
		"replication_performance_mode": "disabled",
		"replication_dr_mode":          "disabled",
		"server_time_utc":              time.Now().Unix(),
		"version":                      Version,
	}
	if st.Initialized {
		body["cluster_name"] = st.ClusterName
		body["cluster_id"] = st.ClusterID
	}
	// An auto-unseal node whose HSM stopped answering keeps serving with
	// the root key in memory; health says so.
	if ok, reason := n.SealHealth(); !ok && !st.Sealed {
		body["seal_degraded"] = true
		body["seal_error"] = reason
	}
	return reply{status: status, raw: body}
}

// healthQuery reads sys/health's query: the status code of each state,
// and the standbyok flags.
func healthQuery(req *request) (map[string]int, map[string]bool, *reply) {
	refuse := func(msg string) (map[string]int, map[string]bool, *reply) {
		r := errReply(http.StatusBadRequest, msg)
		return nil, nil, &r
	}
	codes := map[string]int{
		"activecode":  http.StatusOK,
		"standbycode": http.StatusTooManyRequests,
		"sealedcode":  http.StatusServiceUnavailable,
		"uninitcode":  http.StatusNotImplemented,
		// Accepted for Vault clients; this node is never one of these.
		"perfstandbycode":        http.StatusTooManyRequests,
		"drsecondarycode":        472,
		"performancestandbycode": http.StatusTooManyRequests,
	}
	for name := range codes {
		if v := req.query[name]; len(v) > 0 {
			c, err := strconv.Atoi(v[0])
			if err != nil || c < 100 || c > 599 {
				return refuse(fmt.Sprintf("bad value for %s parameter: %q is not an HTTP status code", name, transit.Truncate(v[0])))
			}
			codes[name] = c
		}
	}
	flags := map[string]bool{}
	for _, name := range []string{"standbyok", "perfstandbyok"} {
		if v := req.query[name]; len(v) > 0 {
			b := true // "?standbyok" alone means true
			if v[0] != "" {
				var err error
				if b, err = strconv.ParseBool(v[0]); err != nil {
					return refuse(fmt.Sprintf("bad value for %s parameter: %q is not a boolean", name, transit.Truncate(v[0])))
				}
			}
			flags[name] = b
		}
	}
	return codes, flags, nil
}

func (a *API) sysLeader(*request) reply {
	n := a.cfg.Node
	committed, applied := n.RaftIndexes()
	leaderCluster, _ := n.Leader()
	isSelf := a.isLeader()
	leaderAPI := n.LeaderAPIAddr()
	if isSelf {
		leaderAPI = a.cfg.APIAddr
	}
	return reply{raw: map[string]any{
		"ha_enabled":             true,
		"is_self":                isSelf,
		"leader_address":         leaderAPI,
		"leader_cluster_address": leaderCluster,
		"performance_standby":    false,
		"raft_committed_index":   committed,
		"raft_applied_index":     applied,
	}}
}

// raftConfiguration answers GET sys/storage/raft/configuration in Vault's
// shape: data.config.servers[] with node_id, address, leader, voter.
func (a *API) raftConfiguration(*request) reply {
	peers, err := a.cfg.Node.Peers()
	if err != nil {
		return a.errorReply(err)
	}
	servers := make([]map[string]any, 0, len(peers))
	for _, p := range peers {
		servers = append(servers, map[string]any{
			"node_id": p.ID, "address": p.Address, "leader": p.Leader, "voter": p.Voter, "protocol_version": "3",
		})
	}
	committed, _ := a.cfg.Node.RaftIndexes()
	return reply{data: map[string]any{"config": map[string]any{"servers": servers, "index": committed}}}
}

// sysMembers answers GET sys/members: every node gossip knows, with its
// health, seal state and Raft role.
func (a *API) sysMembers(*request) reply {
	list := a.cfg.Node.Members()
	out := make([]map[string]any, 0, len(list))
	for _, m := range list {
		e := map[string]any{
			"node_id": m.NodeID, "api_addr": m.APIAddr, "cluster_addr": m.ClusterAddr, "gossip_addr": m.GossipAddr,
			"status": m.Status, "sealed": m.Sealed, "version": m.Version,
			"raft_member": m.InRaft, "voter": m.Voter, "leader": m.Leader,
		}
		if !m.Since.IsZero() {
			e["status_since"] = m.Since.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, e)
	}
	return reply{data: map[string]any{"members": out}}
}

// Vault's rekey endpoints: sys/rekey/* for unseal keys,
// sys/rekey-recovery-key/* for an auto-unseal seal's recovery keys; both
// act on whatever the seal uses.

// rekeyStatus is the answer of a rekey step.
func rekeyStatus(st cluster.RekeyStatus) map[string]any {
	return map[string]any{"started": st.Started, "nonce": st.Nonce, "t": st.Threshold, "n": st.Shares,
		"progress": st.Progress, "required": st.Required}
}

// rekeyInit answers sys/rekey/init (and rekey-recovery-key/init): POST
// starts a rekey with secret_shares and secret_threshold, DELETE cancels.
func (a *API) rekeyInit(req *request) reply {
	n := a.cfg.Node
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	if req.method == http.MethodDelete {
		ceremonyEvent(req, "rekey", "cancel", "")
		if nonce := n.RekeyCancel(); nonce != "" {
			req.ev.Details["nonce"] = nonce
		}
		return reply{status: http.StatusNoContent}
	}
	ceremonyEvent(req, "rekey", "start", "")
	shares, err := f.Int("secret_shares", 0)
	if err != nil {
		return errorFromTransit(err)
	}
	threshold, err := f.Int("secret_threshold", 0)
	if err != nil {
		return errorFromTransit(err)
	}
	st, err := n.RekeyInit(shares, threshold)
	if err != nil {
		return a.rekeyError(err)
	}
	req.ev.Details["nonce"] = st.Nonce
	return reply{raw: rekeyStatus(st)}
}

// rekeyUpdate takes a current share with the nonce and, at the
// threshold, answers the new shares once.
func (a *API) rekeyUpdate(req *request) reply {
	nonce, share, r := shareUpdate(req)
	if r != nil {
		return *r
	}
	defer clear(share)
	st, res, err := a.cfg.Node.RekeyUpdate(req.ctx, nonce, share)
	if err != nil {
		return a.rekeyError(err)
	}
	out := rekeyStatus(st)
	out["complete"] = res != nil
	if res != nil {
		hexKeys, b64Keys := make([]string, len(res.Keys)), make([]string, len(res.Keys))
		for i, k := range res.Keys {
			hexKeys[i], b64Keys[i] = hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k)
		}
		out["keys"], out["keys_base64"] = hexKeys, b64Keys
		out["recovery_keys"] = res.Recovery
	}
	return reply{raw: out}
}

func (a *API) rekeyError(err error) reply {
	switch {
	case errors.Is(err, cluster.ErrRekeyNonce):
		return errReply(http.StatusBadRequest, "no rekey with this nonce is in progress on this node; start one with sys/rekey/init")
	case errors.Is(err, cluster.ErrInvalidUnsealKey), errors.Is(err, cluster.ErrInvalidRequest),
		errors.Is(err, cluster.ErrCeremonyInProgress):
		return errReply(http.StatusBadRequest, trimPkg(err))
	}
	return a.errorReply(err)
}

// ceremonyEvent names the step of a share ceremony (generate-root,
// break-glass, rekey) in the request's audit event: action is start or
// cancel, nonce the ceremony's. Who asked is the event's remote_addr
// (and identity, for the steps that take a token): since a start is
// refused while one is in progress and anyone may cancel, these events
// are how the share holders learn who ended or blocked a ceremony.
func ceremonyEvent(req *request, ceremony, action, nonce string) {
	req.ev.Details = map[string]string{"ceremony": ceremony, "action": action}
	if nonce != "" {
		req.ev.Details["nonce"] = nonce
	}
}

// sysGenerateRoot answers Vault's sys/generate-root: no token (this is how
// a lost root token is replaced); the current share holders authorize it.
// attempt: PUT starts (answers nonce and otp), DELETE cancels; update
// takes a share with the nonce and, at the threshold, answers
// encoded_token = base64(token XOR otp).
func (a *API) sysGenerateRoot(req *request) reply {
	path := strings.TrimPrefix(req.path, "sys/")
	n := a.cfg.Node
	if path == "generate-root/attempt" {
		switch req.method {
		case http.MethodGet:
			if n.Sealed() {
				return errReply(http.StatusServiceUnavailable, "keyraft is sealed")
			}
			out := map[string]any{"started": false, "nonce": "", "progress": 0, "required": n.SealStatus().Threshold,
				"complete": false, "encoded_token": ""}
			if nonce, progress, ok := n.GenerateRootProgress(); ok {
				out["started"], out["nonce"], out["progress"] = true, nonce, progress
			}
			return reply{raw: out}
		case http.MethodDelete:
			// No token, as in Vault: a ceremony whose starter vanished
			// must stay cancellable; the event records who cancelled.
			ceremonyEvent(req, "generate-root", "cancel", n.GenerateRootCancel())
			return reply{status: http.StatusNoContent}
		case http.MethodPut, http.MethodPost:
			ceremonyEvent(req, "generate-root", "start", "")
			nonce, otp, required, err := n.GenerateRootInit()
			if err != nil {
				return a.rekeyError(err)
			}
			req.ev.Details["nonce"] = nonce
			return reply{raw: map[string]any{"started": true, "nonce": nonce, "otp": otp, "otp_length": len(otp),
				"progress": 0, "required": required, "complete": false}}
		}
		return unsupportedOp()
	}
	if req.method != http.MethodPut && req.method != http.MethodPost {
		return unsupportedOp()
	}
	nonce, share, r := shareUpdate(req)
	if r != nil {
		return *r
	}
	defer clear(share)
	progress, required, encoded, err := n.GenerateRootUpdate(req.ctx, nonce, share)
	if err != nil {
		return a.rekeyError(err)
	}
	out := map[string]any{"started": true, "nonce": nonce, "progress": progress, "required": required, "complete": encoded != ""}
	if encoded != "" {
		out["encoded_token"] = encoded
	}
	return reply{raw: out}
}
