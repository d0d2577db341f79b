package transport

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/access"
	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/internal/version"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/transit"
)

// Defaults for the limits Config leaves at zero.
const (
	DefaultMaxRequestSize             = 32 << 20
	DefaultMaxBatchItems              = 10000
	DefaultMaxTokenBatchItemsInFlight = 2 * DefaultMaxBatchItems
)

// Version is reported by seal-status and health: the build's version
// (internal/version, which the build sets with -ldflags), the one
// 'keyraft version' prints.
var Version = version.Version

// Config configures the HTTP API.
type Config struct {
	Node Node
	// Access is the node's access control (nil: Node.Access()).
	Access *access.Service
	// JoinHTTPClient is used to reach other nodes' APIs when this node
	// joins a cluster (nil: a default client).
	JoinHTTPClient *http.Client
	Transit        *transit.Engine
	// Plugins runs this node's crypto backends (nil: none; the catalog
	// API then shows no process state).
	Plugins *catalog.Manager
	// PluginDirectory is the node's plugin_directory, where registered
	// plugins must be.
	PluginDirectory string
	// Audit records every request before it is answered.
	Audit audit.Recorder
	// APIAddr is this node's advertised API address (for sys/leader).
	APIAddr string
	// ConfigDevices are the audit devices of the server config (shown by
	// GET sys/audit, not changeable through the API).
	ConfigDevices []audit.Device
	// AuditSinks reports the delivery of the devices running on this node.
	AuditSinks func() []audit.DeviceStatus
	// HygieneChecks add findings (tokens, policies) to the keys' own in
	// GET sys/report/hygiene.
	HygieneChecks []HygieneCheck
	// MaxRequestSize limits request bodies (bytes); 0 means 32 MiB.
	MaxRequestSize int64
	// MaxBatchItems limits the batch_input items of one request; 0 means
	// DefaultMaxBatchItems.
	MaxBatchItems int
	// MaxTokenBatchItemsInFlight limits the batch items (a request
	// without batch_input counts one) that requests of one token may
	// have in flight at once, so one caller cannot starve the others;
	// 0 means DefaultMaxTokenBatchItemsInFlight.
	MaxTokenBatchItemsInFlight int
	Logger                     hclog.Logger
}

// API is the HTTP API of one node: Vault's sys, token and transit paths.
type API struct {
	cfg Config
	log hclog.Logger
	// isLeader reports whether this node is the active one (for health);
	// tests replace it to see a standby's answers.
	isLeader func() bool
	metrics  *metrics
	auth     authState
	inflight inflight
}

// NewAPI returns the API handler.
func NewAPI(cfg Config) (*API, error) {
	if cfg.Node == nil || cfg.Transit == nil {
		return nil, errors.New("transport: node and transit engine are required")
	}
	if cfg.MaxRequestSize == 0 {
		cfg.MaxRequestSize = DefaultMaxRequestSize
	}
	if cfg.MaxBatchItems == 0 {
		cfg.MaxBatchItems = DefaultMaxBatchItems
	}
	if cfg.MaxTokenBatchItemsInFlight == 0 {
		cfg.MaxTokenBatchItemsInFlight = DefaultMaxTokenBatchItemsInFlight
	}
	if cfg.MaxRequestSize < 0 || cfg.MaxBatchItems < 0 || cfg.MaxTokenBatchItemsInFlight < 0 {
		return nil, errors.New("transport: request limits must not be negative")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Access == nil {
		cfg.Access = cfg.Node.Access()
	}
	if cfg.Audit == nil {
		// No default: a forgotten recorder must not mean unaudited answers.
		return nil, errors.New("transport: an audit recorder is required")
	}
	a := &API{cfg: cfg, log: cfg.Logger, isLeader: cfg.Node.IsLeader, metrics: newMetrics(cfg.Node, cfg.AuditSinks)}
	cfg.Node.OnSeal(cfg.Access.Purge)
	a.registerBreakGlassMetric()
	return a, nil
}

// request is one API call on its way through the pipeline.
type request struct {
	ctx    context.Context
	method string // GET, PUT, POST, DELETE or LIST
	path   string // after /v1/
	body   []byte
	query  url.Values
	token  string
	ev     *audit.Event
	// hmac computes an audit HMAC; ok is false while sealed.
	hmac func(value []byte) (string, bool)
	// peerCerts is the client certificate chain of a TLS connection
	// (leaf first), for cert auth login; nil without one.
	peerCerts []*x509.Certificate
	// ns is the request's namespace (X-Vault-Namespace; "" for root).
	ns string
	// f is the body decoded (see parsed), or fErr why it does not decode.
	f    *transit.Fields
	fErr *reply
	// maxItems bounds a batch_input (Config.MaxBatchItems).
	maxItems int
	// rt is the request's row of the table and params its path
	// parameters; te is the caller's token (nil on a public row).
	rt     *route
	params map[string]string
	te     *access.TokenEntry
	// http is the request as it arrived (streaming rows read its body or
	// hand it to the profiler).
	http *http.Request
	// w is the response, for a row that changes its deadlines (a
	// snapshot upload); handlers never write to it.
	w http.ResponseWriter
}

// reply is what a handler produces; the pipeline records it, then sends it.
type reply struct {
	status   int
	data     any // wrapped in Vault's envelope
	raw      any // sent as is (sys/* endpoints that Vault answers unwrapped)
	warnings []string
	// retryAfter is the Retry-After header of a 429 or 503 ("" for none).
	retryAfter string
	// topLevel copies data's keys to the top of the envelope too, as
	// Vault answers some sys/ paths (mounts, auth, capabilities,
	// ha-status, key-status): clients read them from either place.
	topLevel bool
	// stream, when set, writes the answer itself (a snapshot, the audit
	// stream, a profile): the pipeline records the request as allowed
	// (200) and then hands it the connection.
	stream func(w http.ResponseWriter)
}

// ServeHTTP runs the request pipeline: find the row → decode → serve
// (namespace, authenticate, authorize, act) → record → answer. Every
// path, streaming ones included, takes it; nothing is written to the
// client before the audit event is recorded.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ev := &audit.Event{
		Time:       time.Now().UTC(),
		Node:       a.cfg.Node.Config().NodeID,
		RequestID:  newRequestID(),
		RemoteAddr: remoteIP(r),
		Method:     r.Method,
		Path:       r.URL.Path,
		Operation:  operationOf(r.URL.Path),
	}
	rep := a.handleSafely(w, r, ev)
	if rep.stream != nil {
		rep.status = http.StatusOK
	}
	committedStatus := ev.Status
	ev.Status = rep.status
	if ev.Status == 0 {
		ev.Status = http.StatusOK
		if rep.data == nil && rep.raw == nil {
			ev.Status = http.StatusNoContent
		}
	}
	if ev.Status >= 400 {
		ev.Error = rep.errorText()
	}
	switch {
	case ev.Status >= 500:
		ev.Outcome = "error"
	case ev.Status == http.StatusForbidden:
		ev.Outcome = "denied"
	case ev.Status >= 400:
		ev.Outcome = "error"
	default:
		ev.Outcome = "allowed"
	}
	rec := ev
	if ev.Committed() != 0 && ev.Status != committedStatus {
		// The request's change committed with its event, but the answer
		// differs (it failed afterwards): record what was answered too,
		// as a second event of the same request.
		followUp := *ev
		followUp.MarkCommitted(0)
		followUp.StateChange = false
		rec = &followUp
	}
	if err := a.record(r, rec); err != nil {
		a.log.Error("audit record failed; refusing to answer", "request_id", ev.RequestID, "error", err)
		rep = errReply(http.StatusServiceUnavailable, "request could not be recorded in the audit log")
	}
	a.metrics.count(ev.Operation, rep.status)
	if rep.stream != nil {
		rep.stream(w)
		return
	}
	a.write(w, ev.RequestID, rep)
}

// handleSafely is handle with a panic turned into a 500, so that one bad
// request neither kills its connection without an answer nor escapes the
// audit record. The panic value and stack go to the log only: they can
// hold request data.
func (a *API) handleSafely(w http.ResponseWriter, r *http.Request, ev *audit.Event) (rep reply) {
	defer func() {
		if v := recover(); v != nil {
			a.log.Error("panic while handling a request", "request_id", ev.RequestID, "path", r.URL.Path, "stack", string(debug.Stack()))
			rep = errReply(http.StatusInternalServerError, "internal error")
		}
	}()
	return a.handle(w, r, ev)
}

func (a *API) handle(w http.ResponseWriter, r *http.Request, ev *audit.Event) reply {
	path, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		return errReply(http.StatusNotFound, "unsupported path: API paths start with /v1/")
	}
	method, miss := methodOf(r)
	if miss != nil {
		return *miss
	}
	path = strings.TrimSuffix(path, "/")
	rt, params, miss := apiTable.lookup(path, method)
	if method == http.MethodGet && r.URL.Query().Get("help") == "1" {
		rt, params, miss = helpRoute(path) // Vault's path help: GET …?help=1
	}
	if miss != nil {
		return *miss
	}
	ev.Operation = rt.operation
	req := &request{
		// A state change made for this request commits its audit event
		// in the same Raft entry (see cluster.Node.Apply).
		ctx:    audit.WithEvent(r.Context(), ev),
		method: method,
		path:   path,
		query:  r.URL.Query(),
		token:  tokenFrom(r),
		ev:     ev,
		hmac:   a.cfg.Node.AuditHMAC,
		// A batch beyond the limit is refused before its items are
		// decoded (transit.Fields.SetMaxItems).
		maxItems: a.cfg.MaxBatchItems,
		rt:       rt,
		params:   params,
		http:     r,
		w:        w,
		ns:       namespaceFrom(r),
	}
	if r.TLS != nil {
		req.peerCerts = r.TLS.PeerCertificates
	}
	if req.token != "" {
		if h, ok := a.cfg.Node.AuditHMAC([]byte(req.token)); ok {
			ev.HMACs = map[string]string{"client_token": h}
		}
	}
	if rt.rawBody {
		return a.serve(req)
	}
	release, miss := a.readRequestBody(req)
	if miss != nil {
		return *miss
	}
	defer release()
	return a.serve(req)
}

// methodOf is the request's method as the table knows it: GET (HEAD
// too), POST (PUT too), DELETE or LIST (also GET with ?list=true).
func methodOf(r *http.Request) (string, *reply) {
	refuse := func(status int, msg string) (string, *reply) {
		rep := errReply(status, msg)
		return "", &rep
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if v := r.URL.Query()["list"]; len(v) > 0 && v[0] != "" {
			list, err := strconv.ParseBool(v[0])
			if err != nil {
				return refuse(http.StatusBadRequest, fmt.Sprintf("bad value for list parameter: %q is not a boolean", transit.Truncate(v[0])))
			}
			if list {
				return "LIST", nil
			}
		}
		return http.MethodGet, nil
	case http.MethodPost, http.MethodPut:
		return http.MethodPost, nil
	case http.MethodDelete, "LIST":
		return r.Method, nil
	}
	return refuse(http.StatusMethodNotAllowed, fmt.Sprintf("unsupported method %s", transit.Truncate(r.Method)))
}

// readRequestBody reads the body into req within its limits. A caller
// without a valid token may send only a small body (enough for init,
// unseal, a join or a login); the limit is decided before the body is
// read. The bodies one token may have in memory at once are bounded too
// (maxTokenBodyBytes), so that many connections of one caller cannot
// hold many large bodies each; release gives the reservation back.
func (a *API) readRequestBody(req *request) (release func(), _ *reply) {
	r := req.http
	refuse := func(status int, msg string) (func(), *reply) {
		rep := errReply(status, msg)
		if status == http.StatusTooManyRequests {
			rep.retryAfter = "1"
		}
		return nil, &rep
	}
	te, terr := a.cfg.Access.Authenticate(req.token)
	valid := terr == nil && !te.Expired(a.now())
	limit := a.cfg.MaxRequestSize
	release = func() {}
	if !valid {
		limit = min(limit, MaxUnauthenticatedBody)
	} else {
		reserve := r.ContentLength
		if reserve < 0 || reserve > limit {
			reserve = limit // chunked: it may be as large as the limit
		}
		budget := a.maxTokenBodyBytes()
		if !a.inflight.acquire(bodyBudgetKey+te.Accessor, int(reserve), budget) {
			return refuse(http.StatusTooManyRequests, fmt.Sprintf(
				"too many request bytes in flight for this token: the limit is %d bytes (4 × max_request_size); retry when earlier requests have finished", budget))
		}
		release = func() { a.inflight.release(bodyBudgetKey+te.Accessor, int(reserve), budget) }
	}
	body, err := readBody(r, limit)
	if err != nil {
		release()
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig) && !valid && limit < a.cfg.MaxRequestSize:
			return refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large for a request without a valid token: the limit is %d bytes", limit))
		case errors.As(err, &tooBig):
			return refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: the limit is %d bytes", limit))
		}
		return refuse(http.StatusBadRequest, "failed to read request body")
	}
	req.body = body
	return release, nil
}

// MaxUnauthenticatedBody is the most a request without a valid token may
// send as its body.
const MaxUnauthenticatedBody = 64 << 10

// readBody reads at most limit bytes of the body. Memory is reserved as
// bytes arrive, never for what Content-Length only declares (a slow
// sender declaring 32 MiB pinned 32 MiB for as long as it kept the
// connection), and a declared length over the limit is refused before
// anything is read.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body := http.MaxBytesReader(nil, r.Body, limit)
	const step = 64 << 10
	declared := r.ContentLength // -1: not declared (chunked)
	want := int64(step)
	if declared >= 0 && declared < step {
		want = declared + 1 // room to see the end of the body without growing
	}
	buf := make([]byte, 0, want)
	for {
		if len(buf) == cap(buf) {
			// Double, but never past the declared length (+1 to see EOF).
			next := 2 * int64(cap(buf))
			if declared >= 0 {
				next = min(next, max(declared+1, int64(cap(buf))+1))
			}
			grown := make([]byte, len(buf), next) // exactly next: append would round up
			copy(grown, buf)
			buf = grown
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func tokenFrom(r *http.Request) string {
	if t := r.Header.Get("X-Vault-Token"); t != "" {
		return t
	}
	// The scheme name is case-insensitive (RFC 9110).
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// authenticate checks the token, authorizes the request with the token's
// policies, and refuses a sealed node. Every path but the seal and status
// ones goes through it.
func (a *API) authenticate(req *request) (*access.TokenEntry, *reply) {
	if a.cfg.Node.Sealed() {
		r := errReply(http.StatusServiceUnavailable, "keyraft is sealed")
		return nil, &r
	}
	if req.token == "" {
		r := errReply(http.StatusForbidden, "permission denied: missing client token (set X-Vault-Token)")
		return nil, &r
	}
	// Looked up again (the cache makes it cheap): the lookup before the
	// body was read only chose the body limit, and the token may have
	// been revoked while the body arrived.
	te, err := a.cfg.Access.Authenticate(req.token)
	if errors.Is(err, access.ErrPermissionDenied) {
		r := errReply(http.StatusForbidden, "permission denied: invalid token")
		return nil, &r
	}
	if err != nil {
		r := a.errorReply(err)
		return nil, &r
	}
	req.ev.Identity = te.Accessor
	// Authorization (transport/auth.go): expiry and bound_cidrs, then the
	// token's policies on this path; a use is spent only once allowed.
	if r := a.checkToken(req, te); r != nil {
		return nil, r
	}
	if req.rt.auth != anyToken { // path help: any valid token, whatever its policies
		if r := a.authorize(req, te); r != nil {
			return nil, r
		}
	}
	if te.NumUses > 0 { // a use-limited token spends one on help too, as in Vault
		if r := a.spendUse(req); r != nil {
			return nil, r
		}
	}
	return te, nil
}

// errReply is Vault's error envelope; an empty msg gives an empty list
// (Vault's 404 for an empty LIST).
func errReply(status int, msg string) reply {
	errs := []string{}
	if msg != "" {
		errs = append(errs, msg)
	}
	return reply{status: status, raw: map[string]any{"errors": errs}}
}

// errorText is the message of an error reply, for the audit event.
func (r reply) errorText() string {
	if m, ok := r.raw.(map[string]any); ok {
		if l, ok := m["errors"].([]string); ok && len(l) > 0 {
			return strings.Join(l, "; ")
		}
	}
	if r.status >= 400 {
		if d, ok := r.data.(map[string]any); ok && d["batch_results"] != nil {
			return "one or more batch items failed"
		}
	}
	return http.StatusText(r.status)
}

// errorReply maps an error from the layers below to a status and message.
func (a *API) errorReply(err error) reply {
	var te *transit.Error
	switch {
	case errors.As(err, &te):
		return errReply(te.Status, te.Msg)
	case errors.Is(err, cluster.ErrSealed):
		return errReply(http.StatusServiceUnavailable, "keyraft is sealed")
	case errors.Is(err, access.ErrPermissionDenied):
		return errReply(http.StatusForbidden, "permission denied")
	case errors.Is(err, cluster.ErrNotReady):
		return errReply(http.StatusServiceUnavailable, "keyraft is catching up with the Raft log after a restart; try again shortly")
	case errors.Is(err, cluster.ErrClosed):
		return errReply(http.StatusServiceUnavailable, "keyraft is shutting down")
	case errors.Is(err, cluster.ErrOutcomeUnknown):
		return errReply(http.StatusServiceUnavailable, "the leader was lost while this change was being committed, so it may or may not have been applied; read the affected key (or the audit log) to check before retrying, or simply retry an idempotent request")
	case errors.Is(err, cluster.ErrNotLeader), errors.Is(err, cluster.ErrNoLeader):
		return errReply(http.StatusServiceUnavailable, "no leader is available to accept writes; try again")
	case errors.Is(err, fsm.ErrConflict):
		return errReply(http.StatusServiceUnavailable, "the key changed concurrently too often; try again")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errReply(http.StatusServiceUnavailable, "request timed out")
	}
	a.log.Error("internal error", "error", err)
	return errReply(http.StatusInternalServerError, "internal error")
}

func (a *API) write(w http.ResponseWriter, requestID string, rep reply) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if rep.retryAfter != "" {
		h.Set("Retry-After", rep.retryAfter)
	}
	status := rep.status
	if status == 0 {
		status = http.StatusOK
	}
	if rep.data == nil && rep.raw == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	body := rep.raw
	if rep.data != nil {
		body = map[string]any{
			"request_id":     requestID,
			"lease_id":       "",
			"renewable":      false,
			"lease_duration": 0,
			"data":           rep.data,
			"wrap_info":      nil,
			"warnings":       rep.warnings,
			"auth":           nil,
		}
		if m, ok := rep.data.(map[string]any); ok && rep.topLevel {
			env := body.(map[string]any)
			for k, v := range m {
				if _, taken := env[k]; !taken {
					env[k] = v
				}
			}
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		a.log.Error("encoding response", "error", err)
		status, b = http.StatusInternalServerError, []byte(`{"errors":["internal error"]}`)
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// recordTimeout bounds how long an answer waits for its audit event.
const recordTimeout = 30 * time.Second

// record records ev for request r. The wait outlives the client's
// connection: a caller that hangs up (or that the server's read timeout
// cut off) is still recorded (promise 2), within recordTimeout.
func (a *API) record(r *http.Request, ev *audit.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), recordTimeout)
	defer cancel()
	return a.cfg.Audit.Record(ctx, ev)
}
