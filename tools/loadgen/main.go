// Command loadgen drives load against keyraft's (Vault-compatible) transit
// API and reports throughput, errors by HTTP status and latency
// percentiles. It produces the benchmark figures quoted in issue notes.
//
//	go run ./tools/loadgen -addrs http://127.0.0.1:8200,http://127.0.0.1:8210 \
//	    -token TOKEN -op encrypt -key bench -size 32 -conns 64 -duration 10s [-warmup 2s] [-json]
//
// Each of the -conns workers sends one request at a time, in a loop; worker
// i talks to addrs[i % len(addrs)], so the same run can target one node or
// spread over several. Requests that complete during the warmup are not
// counted, nor are those still in flight when the measured period ends
// (they are left to finish, for up to drainGrace, so that the server does
// not log a burst of cancelled requests; then they are cancelled). Throughput is the count of successful operations
// completed in the measured period divided by its length; latency
// percentiles are over the successful requests (one batch request is one
// latency sample). Every non-2xx answer and every transport failure is an
// error, counted by status ("500", "429", ...) or as "network".
//
// The -op create-key mode creates a new key per request
// (KEY-<run id>-<worker>-<n>) and leaves those keys behind.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// drainGrace is how long requests in flight at the end of the measured
// period may take to finish (uncounted) before they are cancelled.
const drainGrace = 5 * time.Second

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usageText = `usage: go run ./tools/loadgen -addrs URL[,URL...] -token TOKEN [flags]

Sends transit requests from -conns workers (each one request at a time) for
-warmup plus -duration and reports ops/s, errors by status and latency
percentiles of the part after the warmup.

Operations (-op):
  encrypt        POST /v1/transit/encrypt/KEY, -size random bytes of plaintext
  decrypt        POST /v1/transit/decrypt/KEY (each worker encrypts once first)
  batch-encrypt  POST /v1/transit/encrypt/KEY with -batch items; ops/s counts items
  create-key     POST /v1/transit/keys/KEY-<unique suffix>: key creation through
                 Raft (the keys are left behind)
For encrypt, decrypt and batch-encrypt, KEY is created first (aes256-gcm96)
if it does not exist.

Flags:
`

// config is what the flags say.
type config struct {
	Addrs    []string
	Token    string
	Op       string
	Key      string
	Size     int
	Batch    int
	Conns    int
	Duration time.Duration
	Warmup   time.Duration
	JSON     bool
	CACert   string

	// Log receives diagnostics during the run (the first error body).
	Log io.Writer
}

var ops = []string{"encrypt", "decrypt", "batch-encrypt", "create-key"}

// keyName is keyraft's rule for key names.
var keyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// usageError is a bad command line: "error: msg", "hint: hint", exit 2.
type usageError struct{ msg, hint string }

func (e *usageError) Error() string { return e.msg }

// parseFlags reads the command line. -h gives flag.ErrHelp.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addrs := fs.String("addrs", "", "comma-separated API base `URLs`; workers are spread round-robin over them")
	fs.StringVar(&cfg.Token, "token", "", "`token` sent as X-Vault-Token (default: $KEYRAFT_TOKEN, then $VAULT_TOKEN)")
	fs.StringVar(&cfg.Op, "op", "encrypt", "operation: "+strings.Join(ops, ", "))
	fs.StringVar(&cfg.Key, "key", "bench", "transit key `name` (the prefix of new keys for create-key)")
	fs.IntVar(&cfg.Size, "size", 32, "plaintext size in `bytes`")
	fs.IntVar(&cfg.Batch, "batch", 16, "items per request for batch-encrypt")
	fs.IntVar(&cfg.Conns, "conns", 16, "concurrent workers (and at most that many connections per node)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured period")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "period before the measured one whose results are dropped")
	fs.BoolVar(&cfg.JSON, "json", false, "print the result as one JSON object")
	fs.StringVar(&cfg.CACert, "ca-cert", "", "PEM `file` of the CA to trust for https addresses")
	hint := "usage: go run ./tools/loadgen -addrs URL[,URL...] -token TOKEN [-op encrypt|decrypt|batch-encrypt|create-key] [flags] (see -h)"

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usageText)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return cfg, err
		}
		return cfg, &usageError{err.Error(), hint}
	}
	bad := func(format string, a ...any) (config, error) {
		return cfg, &usageError{fmt.Sprintf(format, a...), hint}
	}
	if fs.NArg() > 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	if *addrs == "" {
		return bad("missing -addrs")
	}
	for a := range strings.SplitSeq(*addrs, ",") {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		u, err := url.Parse(a)
		if a == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return cfg, &usageError{fmt.Sprintf("invalid address %q in -addrs", a), "give base URLs such as http://127.0.0.1:8200, separated by commas"}
		}
		cfg.Addrs = append(cfg.Addrs, a)
	}
	if cfg.Token == "" {
		cfg.Token = getenv("KEYRAFT_TOKEN")
	}
	if cfg.Token == "" {
		cfg.Token = getenv("VAULT_TOKEN")
	}
	if cfg.Token == "" {
		return cfg, &usageError{"missing -token", "pass -token or set KEYRAFT_TOKEN"}
	}
	if !slices.Contains(ops, cfg.Op) {
		return cfg, &usageError{fmt.Sprintf("unknown -op %q", cfg.Op), "use one of: " + strings.Join(ops, ", ")}
	}
	maxKey := 128
	if cfg.Op == "create-key" {
		maxKey = 80 // room for the suffix
	}
	if !keyName.MatchString(cfg.Key) || len(cfg.Key) > maxKey {
		return bad("invalid -key %q: use 1-%d letters, digits, '_', '-' or '.', starting with a letter or digit", cfg.Key, maxKey)
	}
	if cfg.Size < 1 || cfg.Size > 32<<20 {
		return bad("invalid -size %d: must be between 1 and %d bytes", cfg.Size, 32<<20)
	}
	if cfg.Batch < 1 || cfg.Batch > 100000 {
		return bad("invalid -batch %d: must be between 1 and 100000", cfg.Batch)
	}
	if cfg.Conns < 1 || cfg.Conns > 100000 {
		return bad("invalid -conns %d: must be between 1 and 100000", cfg.Conns)
	}
	if cfg.Duration <= 0 {
		return bad("invalid -duration %v: must be positive", cfg.Duration)
	}
	if cfg.Warmup < 0 {
		return bad("invalid -warmup %v: must not be negative", cfg.Warmup)
	}
	return cfg, nil
}

// Machine describes where the generator ran.
type Machine struct {
	NumCPU    int    `json:"num_cpu"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	CPUModel  string `json:"cpu_model,omitempty"`
	GoVersion string `json:"go_version"`
}

// Result is the outcome of a run, over the measured period only.
type Result struct {
	Addrs    []string `json:"addrs"`
	Op       string   `json:"op"`
	Key      string   `json:"key"`
	Size     int      `json:"size"`
	Batch    int      `json:"batch,omitempty"`
	Conns    int      `json:"conns"`
	Duration string   `json:"duration"`
	Warmup   string   `json:"warmup"`
	// ElapsedSec is the measured period as it happened: Duration, or less
	// when the run was interrupted.
	ElapsedSec float64 `json:"elapsed_sec"`

	// Requests = OKRequests + the sum of Errors.
	Requests   int64 `json:"requests"`
	OKRequests int64 `json:"ok_requests"`
	// Ops is the successful operations: OKRequests, or for batch-encrypt
	// OKRequests * Batch (items).
	Ops       int64            `json:"ops"`
	OpsPerSec float64          `json:"ops_per_sec"`
	Errors    map[string]int64 `json:"errors"`
	// FirstError is the first error seen (also during the warmup).
	FirstError string `json:"first_error,omitempty"`

	// Latency of successful requests, in milliseconds.
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`

	Machine Machine `json:"machine"`
}

// worker is one connection's loop state and tallies.
type worker struct {
	id      int
	addr    string
	payload []byte // request body (encrypt, decrypt, batch-encrypt)
	seq     int

	ok        int64
	errors    map[string]int64
	latencies []time.Duration
}

// runner holds what the workers share.
type runner struct {
	cfg       config
	client    *http.Client
	runID     string
	firstOnce sync.Once
	firstErr  string
}

// newClient builds the one client all workers share: HTTP/1.1, so that
// -conns workers means -conns connections, and idle-connection limits that
// keep every worker's connection alive between requests.
func newClient(cfg config) (*http.Client, error) {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        0, // no global limit
		MaxIdleConnsPerHost: cfg.Conns,
		MaxConnsPerHost:     cfg.Conns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("-ca-cert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca-cert %s: no PEM certificate in it", cfg.CACert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// httpError is a non-2xx answer.
type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// post sends one request and returns the body of a 2xx answer when keep
// is set (otherwise it is drained and dropped).
func (r *runner) post(ctx context.Context, method, u string, body []byte, keep bool) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", r.cfg.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		io.Copy(io.Discard, resp.Body)
		return nil, &httpError{resp.StatusCode, strings.TrimSpace(string(b))}
	}
	if keep {
		return io.ReadAll(resp.Body)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return nil, err
}

// noteError records the first error for the report and prints it once.
func (r *runner) noteError(w *worker, err error) {
	r.firstOnce.Do(func() {
		r.firstErr = fmt.Sprintf("%s (worker %d, %s)", oneLine(err.Error()), w.id, w.addr)
		if r.cfg.Log != nil {
			fmt.Fprintf(r.cfg.Log, "first error: %s\n", r.firstErr)
		}
	})
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// ensureKey creates the key for encrypt/decrypt/batch-encrypt, then waits
// (up to 10s) until every address can read it, so followers that have not
// applied the creation yet do not answer 404 in the measured period.
func (r *runner) ensureKey(ctx context.Context) error {
	keyPath := "/v1/transit/keys/" + r.cfg.Key
	_, err := r.post(ctx, http.MethodPost, r.cfg.Addrs[0]+keyPath, []byte(`{"type":"aes256-gcm96"}`), false)
	var he *httpError
	if err != nil && !(errors.As(err, &he) && strings.Contains(strings.ToLower(he.body), "exist")) {
		return fmt.Errorf("create key %q on %s: %w", r.cfg.Key, r.cfg.Addrs[0], err)
	}
	for _, a := range r.cfg.Addrs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := r.post(ctx, http.MethodGet, a+keyPath, nil, false)
			if err == nil {
				break
			}
			if errors.As(err, &he) && (he.status == http.StatusForbidden || he.status == http.StatusBadRequest) {
				return fmt.Errorf("read key %q on %s: %w", r.cfg.Key, a, err)
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				return fmt.Errorf("key %q not readable on %s: %w", r.cfg.Key, a, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func randomB64(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// setup prepares a worker's request body; for decrypt it encrypts once.
func (r *runner) setup(ctx context.Context, w *worker) error {
	var err error
	switch r.cfg.Op {
	case "encrypt", "decrypt":
		var pt string
		if pt, err = randomB64(r.cfg.Size); err != nil {
			return err
		}
		w.payload, err = json.Marshal(map[string]string{"plaintext": pt})
		if err != nil || r.cfg.Op == "encrypt" {
			return err
		}
		body, err := r.post(ctx, http.MethodPost, w.addr+"/v1/transit/encrypt/"+r.cfg.Key, w.payload, true)
		if err != nil {
			return fmt.Errorf("worker %d: encrypt on %s for the decrypt payload: %w", w.id, w.addr, err)
		}
		var out struct {
			Data struct {
				Ciphertext string `json:"ciphertext"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.Data.Ciphertext == "" {
			return fmt.Errorf("worker %d: encrypt on %s: no ciphertext in the answer: %s", w.id, w.addr, oneLine(string(body)))
		}
		w.payload, err = json.Marshal(map[string]string{"ciphertext": out.Data.Ciphertext})
	case "batch-encrypt":
		items := make([]map[string]string, r.cfg.Batch)
		for i := range items {
			pt, err := randomB64(r.cfg.Size)
			if err != nil {
				return err
			}
			items[i] = map[string]string{"plaintext": pt}
		}
		w.payload, err = json.Marshal(map[string]any{"batch_input": items})
	case "create-key":
		w.payload = []byte(`{}`)
	}
	return err
}

// request sends one operation.
func (r *runner) request(ctx context.Context, w *worker) error {
	var path string
	switch r.cfg.Op {
	case "encrypt", "batch-encrypt":
		path = "/v1/transit/encrypt/" + r.cfg.Key
	case "decrypt":
		path = "/v1/transit/decrypt/" + r.cfg.Key
	case "create-key":
		w.seq++
		path = fmt.Sprintf("/v1/transit/keys/%s-%s-%d-%d", r.cfg.Key, r.runID, w.id, w.seq)
	}
	_, err := r.post(ctx, http.MethodPost, w.addr+path, w.payload, false)
	return err
}

// loop runs a worker until the end of the measured period.
func (r *runner) loop(ctx context.Context, w *worker, warmEnd, end time.Time) {
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		err := r.request(ctx, w)
		t1 := time.Now()
		if err != nil && ctx.Err() != nil {
			return // cancelled after the end (or interrupted): not an answer
		}
		if err != nil {
			r.noteError(w, err)
		}
		if t1.Before(warmEnd) || !t1.Before(end) {
			continue
		}
		var he *httpError
		switch {
		case err == nil:
			w.ok++
			w.latencies = append(w.latencies, t1.Sub(t0))
		case errors.As(err, &he):
			w.errors[strconv.Itoa(he.status)]++
		default:
			w.errors["network"]++
		}
	}
}

// run drives the load described by cfg and returns what was measured.
func run(ctx context.Context, cfg config) (Result, error) {
	res := Result{
		Addrs: cfg.Addrs, Op: cfg.Op, Key: cfg.Key, Size: cfg.Size, Conns: cfg.Conns,
		Duration: cfg.Duration.String(), Warmup: cfg.Warmup.String(),
		Errors: map[string]int64{}, Machine: machine(),
	}
	if cfg.Op == "batch-encrypt" {
		res.Batch = cfg.Batch
	}
	if cfg.Op == "create-key" {
		res.Size = 0
	}
	client, err := newClient(cfg)
	if err != nil {
		return res, err
	}
	defer client.CloseIdleConnections()
	id := make([]byte, 4)
	rand.Read(id)
	r := &runner{cfg: cfg, client: client, runID: hex.EncodeToString(id)}

	if cfg.Op != "create-key" {
		if err := r.ensureKey(ctx); err != nil {
			return res, err
		}
	}
	workers := make([]*worker, cfg.Conns)
	setupErrs := make([]error, cfg.Conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{id: i, addr: cfg.Addrs[i%len(cfg.Addrs)], errors: map[string]int64{}}
		workers[i] = w
		wg.Go(func() { setupErrs[i] = r.setup(ctx, w) })
	}
	wg.Wait()
	var failed []error
	for _, err := range setupErrs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		if len(failed) > 1 {
			return res, fmt.Errorf("%w (and %d more workers failed)", failed[0], len(failed)-1)
		}
		return res, failed[0]
	}

	start := time.Now()
	warmEnd := start.Add(cfg.Warmup)
	end := warmEnd.Add(cfg.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end.Add(drainGrace))
	defer cancel()
	for _, w := range workers {
		wg.Go(func() { r.loop(runCtx, w, warmEnd, end) })
	}
	wg.Wait()
	stopped := time.Now()
	if ctx.Err() == nil || stopped.After(end) {
		stopped = end
	}
	if !stopped.After(warmEnd) {
		return res, fmt.Errorf("interrupted before the end of the warmup: %w", ctx.Err())
	}
	elapsed := stopped.Sub(warmEnd)

	var all []time.Duration
	for _, w := range workers {
		res.OKRequests += w.ok
		res.Requests += w.ok
		for k, n := range w.errors {
			res.Errors[k] += n
			res.Requests += n
		}
		all = append(all, w.latencies...)
	}
	res.Ops = res.OKRequests
	if cfg.Op == "batch-encrypt" {
		res.Ops *= int64(cfg.Batch)
	}
	res.ElapsedSec = elapsed.Seconds()
	res.OpsPerSec = float64(res.Ops) / elapsed.Seconds()
	res.FirstError = r.firstErr
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	res.P50Ms = ms(percentile(all, 50))
	res.P90Ms = ms(percentile(all, 90))
	res.P99Ms = ms(percentile(all, 99))
	if len(all) > 0 {
		res.MaxMs = ms(all[len(all)-1])
	}
	return res, nil
}

// percentile is the nearest-rank p-th percentile of sorted (0 when empty).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// rank = ceil(p/100 * n), computed in integers to avoid float rounding.
	n := len(sorted)
	rank := (int(p*1000)*n + 100*1000 - 1) / (100 * 1000)
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// machine describes this machine; the CPU model comes from /proc/cpuinfo
// when there is one.
func machine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name", "Model", "cpu model", "Hardware":
				if v = strings.TrimSpace(v); v != "" {
					m.CPUModel = v
					return m
				}
			}
		}
	}
	return m
}

// writeSummary prints the human-readable report.
func writeSummary(w io.Writer, res Result) {
	what := fmt.Sprintf("%s on key %q, %d-byte plaintext", res.Op, res.Key, res.Size)
	switch res.Op {
	case "batch-encrypt":
		what = fmt.Sprintf("batch-encrypt on key %q, %d items of %d bytes per request", res.Key, res.Batch, res.Size)
	case "create-key":
		what = fmt.Sprintf("create-key (%s-*)", res.Key)
	}
	fmt.Fprintf(w, "loadgen: %s\n", what)
	fmt.Fprintf(w, "  target      %d conns over %s\n", res.Conns, strings.Join(res.Addrs, ", "))
	fmt.Fprintf(w, "  period      %.2fs measured after %s warmup\n", res.ElapsedSec, res.Warmup)
	var errs int64
	for _, n := range res.Errors {
		errs += n
	}
	fmt.Fprintf(w, "  requests    %d (%d ok, %d errors)\n", res.Requests, res.OKRequests, errs)
	if res.Op == "batch-encrypt" {
		fmt.Fprintf(w, "  throughput  %.1f items/s (%.1f requests/s)\n", res.OpsPerSec, res.OpsPerSec/float64(res.Batch))
	} else {
		fmt.Fprintf(w, "  throughput  %.1f ops/s\n", res.OpsPerSec)
	}
	fmt.Fprintf(w, "  latency     p50 %.3fms  p90 %.3fms  p99 %.3fms  max %.3fms\n", res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs)
	if errs > 0 {
		keys := make([]string, 0, len(res.Errors))
		for k := range res.Errors {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s: %d", k, res.Errors[k])
		}
		fmt.Fprintf(w, "  errors      %s\n", strings.Join(parts, ", "))
	}
	if res.FirstError != "" {
		fmt.Fprintf(w, "  first error %s\n", res.FirstError)
	}
	cpu := res.Machine.CPUModel
	if cpu == "" {
		cpu = "unknown CPU model"
	}
	fmt.Fprintf(w, "  machine     %d CPUs, %s/%s, %s, %s\n", res.Machine.NumCPU, res.Machine.GOOS, res.Machine.GOARCH, cpu, res.Machine.GoVersion)
}

// realMain is main without the process: it returns the exit code.
func realMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "error: %s\nhint: %s\n", ue.msg, ue.hint)
		return exitUsage
	}
	cfg.Log = stderr
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "error: %s\n", oneLine(err.Error()))
		if hint := hintFor(err); hint != "" {
			fmt.Fprintf(stderr, "hint: %s\n", hint)
		}
		return exitError
	}
	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return exitError
		}
		return exitOK
	}
	writeSummary(stdout, res)
	return exitOK
}

// hintFor suggests a fix for a failed run.
func hintFor(err error) string {
	var he *httpError
	switch {
	case errors.As(err, &he) && he.status == http.StatusForbidden:
		return "check -token (or KEYRAFT_TOKEN)"
	case errors.As(err, &he) && he.status == http.StatusServiceUnavailable:
		return "is the server sealed or still starting?"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "is the server running at that address?"
	case errors.Is(err, context.Canceled):
		return "the run was interrupted"
	}
	return ""
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
