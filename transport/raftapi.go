package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// joinChallenge answers POST sys/storage/raft/bootstrap/challenge on the
// leader: the joining node's first step. The proof is the answer, so it
// takes no token.
func (a *API) joinChallenge(req *request) reply {
	var body struct {
		ServerID string `json:"server_id"`
	}
	if r := decodeStrict(req.body, &body); r != nil {
		return *r
	}
	req.ev.Details = map[string]string{"server_id": body.ServerID}
	ch, err := a.cfg.Node.JoinChallenge(req.ctx, body.ServerID)
	if err != nil {
		return a.membershipError(err)
	}
	return reply{data: ch}
}

// admitNode answers POST sys/storage/raft/bootstrap/answer: a joining node
// that answers its challenge (with the unseal keys) is admitted.
func (a *API) admitNode(req *request) reply {
	var ans cluster.JoinAnswer
	if r := decodeStrict(req.body, &ans); r != nil {
		return *r
	}
	req.ev.Details = map[string]string{"server_id": ans.NodeID, "cluster_addr": ans.ClusterAddr}
	grant, err := a.cfg.Node.AdmitNode(req.ctx, ans)
	if err != nil {
		return a.membershipError(err)
	}
	return reply{data: grant}
}

func (a *API) removePeer(req *request) reply {
	var body struct {
		ServerID string `json:"server_id"`
	}
	if r := decodeStrict(req.body, &body); r != nil {
		return *r
	}
	if body.ServerID == "" {
		return errReply(http.StatusBadRequest, "server_id is required")
	}
	req.ev.Details = map[string]string{"server_id": body.ServerID}
	if err := a.cfg.Node.RemovePeer(req.ctx, body.ServerID); err != nil {
		return a.membershipError(err)
	}
	return reply{status: http.StatusNoContent}
}

func (a *API) membershipError(err error) reply {
	switch {
	case errors.Is(err, cluster.ErrInvalidRequest), errors.Is(err, cluster.ErrNodeExists),
		errors.Is(err, cluster.ErrAlreadyMember), errors.Is(err, cluster.ErrLastVoter),
		errors.Is(err, cluster.ErrJoinExpired), errors.Is(err, errNotKeyraft), errors.Is(err, errJoinRefused):
		return errReply(http.StatusBadRequest, trimPkg(err))
	case errors.Is(err, cluster.ErrJoinDenied):
		return errReply(http.StatusForbidden, trimPkg(err))
	case errors.Is(err, cluster.ErrUnknownPeer):
		return errReply(http.StatusNotFound, trimPkg(err))
	case errors.Is(err, cluster.ErrNotLeader):
		msg := "this node is not the leader"
		if l := a.cfg.Node.LeaderAPIAddr(); l != "" {
			msg += "; the leader's API is at " + l
		}
		return errReply(http.StatusServiceUnavailable, msg)
	}
	return a.errorReply(err)
}

// trimPkg drops the "cluster: " prefix of a sentinel for API messages.
func trimPkg(err error) string {
	msg := err.Error()
	for _, pkg := range []string{"cluster: ", "access: "} {
		msg = strings.TrimPrefix(msg, pkg)
	}
	return msg
}

// decodeStrict decodes a JSON body with exact keys (transit.Fields),
// refusing unknown fields.
func decodeStrict(body []byte, v any) *reply {
	bad := func(msg string) *reply {
		r := errReply(http.StatusBadRequest, msg)
		return &r
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return bad("a JSON body is required")
	}
	f, err := transit.ParseFields(body)
	if err == nil {
		err = f.Decode(v)
	}
	if err != nil {
		return bad("malformed JSON body: " + err.Error())
	}
	if u := f.Unused(); len(u) > 0 {
		return bad(fmt.Sprintf("malformed JSON body: unknown field %q", transit.Truncate(u[0])))
	}
	return nil
}

// raftJoin answers POST sys/storage/raft/join on a node that should join
// an existing cluster: it asks the leader for a challenge; the node then
// waits for its unseal keys (which answer the challenge).
func (a *API) raftJoin(req *request) reply {
	var body struct {
		LeaderAPIAddr string `json:"leader_api_addr"`
		Retry         bool   `json:"retry"`
	}
	if r := decodeStrict(req.body, &body); r != nil {
		return *r
	}
	req.ev.Details = map[string]string{"leader_api_addr": body.LeaderAPIAddr}
	if err := a.joiner().Join(req.ctx, body.LeaderAPIAddr); err != nil {
		return a.membershipError(err)
	}
	return reply{raw: map[string]any{"joined": true}}
}

func (a *API) joiner() *Joiner {
	j := &Joiner{Node: a.cfg.Node, Client: a.cfg.JoinHTTPClient}
	if a.log != nil {
		j.Log = a.log.Warn
	}
	return j
}

// errNotKeyraft: the address given as a leader does not answer like a
// keyraft node. The join's caller (anyone, on a node that is not yet a
// member) learns no more than that: not the remote status, body or
// connection error, so the join is no probe of other addresses. The
// details go to the node's log.
var errNotKeyraft = errors.New("not a keyraft node")

// errJoinRefused: a keyraft leader refused a step of the join for a
// reason the node logs (its answer is not passed on, see errNotKeyraft).
var errJoinRefused = errors.New("cluster: the leader refused the join; this node's log has its answer")

// Joiner brings a node into an existing cluster through a member's HTTP
// API: it finds the leader, fetches a challenge for the node and hands it
// to the node, which answers it when it is unsealed. It fetches only the
// /v1/sys/ join paths of a node's scheme://host, and follows no redirect.
type Joiner struct {
	Node   JoiningNode
	Client *http.Client // nil: a client with a 30 s timeout
	// Log, when set, receives what a failed join's caller is not told
	// (the remote status, errors, connection failures).
	Log func(msg string, args ...any)
}

// JoiningNode is what a Joiner needs of the node it brings in.
type JoiningNode interface {
	Config() cluster.Config
	IsMember() bool
	Joining() bool
	AutoSealed() bool
	PrepareJoin(ch *cluster.JoinChallenge, send func(context.Context, cluster.JoinAnswer) (*cluster.JoinGrant, error)) error
	CompleteAutoJoin(ctx context.Context) error
}

func (j *Joiner) logDetail(msg string, args ...any) {
	if j.Log != nil {
		j.Log(msg, args...)
	}
}

// joinBase is scheme://host of a node's API address: all of the address
// a join uses. An address with a path, user info, query or fragment is
// refused, so that the caller cannot point the join at anything but a
// node's /v1/sys/ join endpoints.
func joinBase(addr string) (string, bool) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || (u.Path != "" && u.Path != "/") ||
		strings.ContainsAny(u.Host, "/?#@\\") {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

// Join asks the cluster at apiAddr (any member) to admit the node; a new
// challenge replaces one the node was waiting with. It
// returns cluster.ErrAlreadyMember for a node with Raft state, an error
// wrapping errNotKeyraft when apiAddr is not a keyraft API, or the
// leader's refusal.
func (j *Joiner) Join(ctx context.Context, apiAddr string) error {
	if j.Node.IsMember() {
		return cluster.ErrAlreadyMember
	}
	base, ok := joinBase(apiAddr)
	if !ok {
		return fmt.Errorf("%w: leader_api_addr must be a node's API address, http(s)://host[:port], without a path, user, query or fragment", cluster.ErrInvalidRequest)
	}
	leader, err := j.findLeader(ctx, base)
	if err != nil {
		return err
	}
	var ch cluster.JoinChallenge
	if err := j.post(ctx, leader+"/v1/sys/storage/raft/bootstrap/challenge",
		map[string]string{"server_id": j.Node.Config().NodeID}, &ch); err != nil {
		return err
	}
	err = j.Node.PrepareJoin(&ch, func(ctx context.Context, a cluster.JoinAnswer) (*cluster.JoinGrant, error) {
		var g cluster.JoinGrant
		if err := j.post(ctx, leader+"/v1/sys/storage/raft/bootstrap/answer", a, &g); err != nil {
			return nil, err
		}
		return &g, nil
	})
	if err == nil && j.Node.AutoSealed() {
		// An auto-unseal node answers with its seal at once.
		err = j.Node.CompleteAutoJoin(ctx)
	}
	return err
}

// client is the configured client (or one with a 30 s timeout) that
// follows no redirect: a redirect answer is not a keyraft node's.
func (j *Joiner) client() *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if j.Client != nil {
		cp := *j.Client
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// findLeader asks apiAddr who leads and returns the leader's API address.
func (j *Joiner) findLeader(ctx context.Context, apiAddr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiAddr+"/v1/sys/leader", nil)
	if err != nil {
		return "", err
	}
	notKeyraft := fmt.Errorf("%w: no keyraft API answered GET %s/v1/sys/leader", errNotKeyraft, apiAddr)
	resp, err := j.client().Do(req)
	if err != nil {
		j.logDetail("join: contacting the member failed", "leader_api_addr", apiAddr, "error", err)
		return "", notKeyraft
	}
	defer resp.Body.Close()
	var st struct {
		HAEnabled     *bool  `json:"ha_enabled"`
		IsSelf        bool   `json:"is_self"`
		LeaderAddress string `json:"leader_address"`
		LeaderCluster string `json:"leader_cluster_address"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &st) != nil || st.HAEnabled == nil {
		j.logDetail("join: the member's answer is not a keyraft leader status", "leader_api_addr", apiAddr, "status", resp.StatusCode)
		return "", notKeyraft
	}
	switch {
	case st.IsSelf:
		return apiAddr, nil
	case st.LeaderAddress != "":
		// The member names the leader: held to the same rule as the
		// caller's address, so a fake member cannot aim the join at an
		// arbitrary URL either.
		leader, ok := joinBase(st.LeaderAddress)
		if !ok {
			j.logDetail("join: the member named a leader address that is not scheme://host", "leader_api_addr", apiAddr)
			return "", notKeyraft
		}
		return leader, nil
	}
	return "", fmt.Errorf("%w: %s knows no leader yet (is the cluster initialized and unsealed?)", cluster.ErrNoLeader, apiAddr)
}

// post sends a JSON request and decodes the data of a JSON answer,
// turning the server's error list into an error.
func (j *Joiner) post(ctx context.Context, url string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	notKeyraft := fmt.Errorf("%w: no keyraft API answered at the leader's address", errNotKeyraft)
	resp, err := j.client().Do(req)
	if err != nil {
		j.logDetail("join: contacting the leader failed", "url", url, "error", err)
		return notKeyraft
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []string        `json:"errors"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		j.logDetail("join: the leader's answer is not JSON", "url", url, "status", resp.StatusCode)
		return notKeyraft
	}
	if resp.StatusCode != http.StatusOK {
		// Only keyraft's own refusals are told apart, each by a fixed
		// text; the answer itself goes to the log.
		msg := strings.Join(env.Errors, "; ")
		j.logDetail("join: the leader refused", "url", url, "status", resp.StatusCode, "errors", transit.Truncate(msg))
		switch {
		case strings.Contains(msg, "challenge is wrong"):
			return fmt.Errorf("%w (from the leader)", cluster.ErrJoinDenied)
		case strings.Contains(msg, "no open challenge"):
			return fmt.Errorf("%w (from the leader)", cluster.ErrJoinExpired)
		case strings.Contains(msg, "already a member"):
			return fmt.Errorf("%w (from the leader)", cluster.ErrNodeExists)
		}
		return errJoinRefused
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		j.logDetail("join: the leader's answer does not parse", "url", url, "error", err)
		return notKeyraft
	}
	return nil
}

// RetryJoin keeps asking the given members to admit the node until it
// joined (or is initialized), trying each address in turn with backoff.
// It returns when ctx ends or the node belongs to a cluster.
func (j *Joiner) RetryJoin(ctx context.Context, addrs []string, log func(msg string, args ...any)) {
	if j.Log == nil {
		jj := *j
		jj.Log = log
		j = &jj
	}
	delay := 500 * time.Millisecond
	for i := 0; ; i++ {
		if j.Node.IsMember() {
			return
		}
		// A joining node waits for its unseal keys; if its challenge
		// expires meanwhile, the unseal fails, the node stops joining, and
		// the next round fetches a new challenge.
		if !j.Node.Joining() {
			addr := addrs[i%len(addrs)]
			err := j.Join(ctx, addr)
			switch {
			case err == nil:
				log("join challenge received; unseal this node with the cluster's keys to finish joining", "leader_api_addr", addr)
				delay = 500 * time.Millisecond
			case errors.Is(err, cluster.ErrAlreadyMember):
				return
			default:
				log("retry_join: not joined yet", "leader_api_addr", addr, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}
