package main

// These tests run the generator's core against httptest servers that mimic
// keyraft's transit endpoints. The fake is deliberate and enough here: what
// is under test is the generator's own bookkeeping (counting, error
// classification, percentiles, flags), and the real request path is
// exercised by the team's benchmark runs against real keyraft processes.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTransit mimics the transit endpoints the generator uses.
type fakeTransit struct {
	token      string
	size       int // expected plaintext size
	failStatus int // when set, every encrypt/decrypt answers with it

	mu       sync.Mutex
	keys     map[string]bool
	answered map[int]int64 // data-operation answers by status
	items    int64         // batch items seen
	bad      []string      // protocol violations seen by the fake
}

func newFake(t *testing.T, size int) *fakeTransit {
	return &fakeTransit{token: "tok", size: size, keys: map[string]bool{}, answered: map[int]int64{}}
}

func (f *fakeTransit) violation(format string, a ...any) {
	f.mu.Lock()
	f.bad = append(f.bad, fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeTransit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Token") != f.token {
		reply(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/transit/")
	if !ok {
		reply(w, http.StatusNotFound, map[string]any{"errors": []string{}})
		return
	}
	op, name, _ := strings.Cut(rest, "/")
	var in map[string]any
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			f.violation("%s %s: bad JSON: %v", r.Method, r.URL.Path, err)
			reply(w, http.StatusBadRequest, map[string]any{"errors": []string{"bad json"}})
			return
		}
	}
	switch {
	case op == "keys" && r.Method == http.MethodGet:
		f.mu.Lock()
		exists := f.keys[name]
		f.mu.Unlock()
		if !exists {
			reply(w, http.StatusNotFound, map[string]any{"errors": []string{"no such key"}})
			return
		}
		reply(w, http.StatusOK, map[string]any{"data": map[string]any{"name": name}})
	case op == "keys" && r.Method == http.MethodPost:
		f.mu.Lock()
		exists := f.keys[name]
		f.keys[name] = true
		f.mu.Unlock()
		if exists {
			// Vault's older behaviour; keyraft answers 200 with a warning.
			reply(w, http.StatusBadRequest, map[string]any{"errors": []string{"key already exists"}})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case op == "encrypt" || op == "decrypt":
		f.mu.Lock()
		exists := f.keys[name]
		f.mu.Unlock()
		status, out := f.data(op, exists, in)
		f.mu.Lock()
		f.answered[status]++
		f.mu.Unlock()
		reply(w, status, out)
	default:
		reply(w, http.StatusNotFound, map[string]any{"errors": []string{}})
	}
}

// data answers an encrypt or decrypt; the "ciphertext" is the plaintext
// with a prefix.
func (f *fakeTransit) data(op string, exists bool, in map[string]any) (int, any) {
	if !exists {
		return http.StatusNotFound, map[string]any{"errors": []string{"no such key"}}
	}
	if f.failStatus != 0 {
		return f.failStatus, map[string]any{"errors": []string{"injected failure"}}
	}
	one := func(item map[string]any) map[string]any {
		if op == "encrypt" {
			pt, _ := item["plaintext"].(string)
			b, err := base64.StdEncoding.DecodeString(pt)
			if err != nil || len(b) != f.size {
				f.violation("plaintext %q: %d bytes, %v", pt, len(b), err)
			}
			return map[string]any{"ciphertext": "vault:v1:" + pt}
		}
		ct, _ := item["ciphertext"].(string)
		pt, ok := strings.CutPrefix(ct, "vault:v1:")
		if !ok {
			f.violation("ciphertext %q not from this server", ct)
		}
		return map[string]any{"plaintext": pt}
	}
	if batch, ok := in["batch_input"].([]any); ok {
		results := make([]any, len(batch))
		for i, it := range batch {
			m, _ := it.(map[string]any)
			results[i] = one(m)
		}
		f.mu.Lock()
		f.items += int64(len(batch))
		f.mu.Unlock()
		return http.StatusOK, map[string]any{"data": map[string]any{"batch_results": results}}
	}
	return http.StatusOK, map[string]any{"data": one(in)}
}

func (f *fakeTransit) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.bad {
		t.Errorf("fake server saw: %s", v)
	}
}

func testConfig(op string, addrs ...string) config {
	return config{
		Addrs: addrs, Token: "tok", Op: op, Key: "bench", Size: 24, Batch: 5,
		Conns: 4, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
	}
}

// checkResult asserts what holds for every result.
func checkResult(t *testing.T, res Result) {
	t.Helper()
	var errs int64
	for _, n := range res.Errors {
		errs += n
	}
	if res.Requests != res.OKRequests+errs {
		t.Errorf("requests %d != ok %d + errors %d", res.Requests, res.OKRequests, errs)
	}
	if res.P50Ms > res.P90Ms || res.P90Ms > res.P99Ms || res.P99Ms > res.MaxMs {
		t.Errorf("percentiles out of order: p50 %v p90 %v p99 %v max %v", res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs)
	}
	if res.OKRequests > 0 && res.MaxMs <= 0 {
		t.Errorf("max latency %v with %d ok requests", res.MaxMs, res.OKRequests)
	}
	if res.ElapsedSec <= 0 {
		t.Errorf("elapsed %v", res.ElapsedSec)
	}
	if want := float64(res.Ops) / res.ElapsedSec; res.OpsPerSec != want {
		t.Errorf("ops/s %v, want %v", res.OpsPerSec, want)
	}
	if res.Machine.NumCPU < 1 || res.Machine.GOOS == "" || res.Machine.GOARCH == "" {
		t.Errorf("machine %+v", res.Machine)
	}
}

func TestEncryptCountsAddUp(t *testing.T) {
	f := newFake(t, 24)
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig("encrypt", srv.URL)
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res)
	f.check(t)
	if res.OKRequests == 0 || res.Ops != res.OKRequests || len(res.Errors) != 0 {
		t.Fatalf("result %+v", res)
	}
	// The server answered at least what was counted (plus the warmup and
	// the requests cut off at the end), and nothing else than 200.
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.answered) != 1 || f.answered[200] < res.OKRequests {
		t.Errorf("server answered %v, client counted %d ok", f.answered, res.OKRequests)
	}
	if res.ElapsedSec != cfg.Duration.Seconds() {
		t.Errorf("elapsed %v, want %v", res.ElapsedSec, cfg.Duration.Seconds())
	}
}

func TestErrorsCountedByStatus(t *testing.T) {
	good := newFake(t, 24)
	bad := newFake(t, 24)
	bad.failStatus = http.StatusTooManyRequests
	// Both "nodes" share the key so that the visibility check passes.
	bad.keys, good.keys = map[string]bool{"bench": true}, map[string]bool{}
	s1, s2 := httptest.NewServer(good), httptest.NewServer(bad)
	defer s1.Close()
	defer s2.Close()
	var logged bytes.Buffer
	cfg := testConfig("encrypt", s1.URL, s2.URL)
	cfg.Log = &logged
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res)
	good.check(t)
	bad.check(t)
	if res.OKRequests == 0 || res.Errors["429"] == 0 || len(res.Errors) != 1 {
		t.Fatalf("ok %d, errors %v; want both ok answers and only 429 errors", res.OKRequests, res.Errors)
	}
	bad.mu.Lock()
	served := bad.answered[429]
	bad.mu.Unlock()
	if res.Errors["429"] > served {
		t.Errorf("counted %d 429s, the server sent %d", res.Errors["429"], served)
	}
	if n := strings.Count(logged.String(), "first error:"); n != 1 || !strings.Contains(logged.String(), "injected failure") {
		t.Errorf("log %q: want the first error body once", logged.String())
	}
	if !strings.Contains(res.FirstError, "HTTP 429") {
		t.Errorf("first error %q", res.FirstError)
	}
}

func TestNetworkErrorsAndCreateKey(t *testing.T) {
	f := newFake(t, 24)
	srv := httptest.NewServer(f)
	defer srv.Close()
	// An address where nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	cfg := testConfig("create-key", srv.URL, dead)
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res)
	f.check(t)
	if res.OKRequests == 0 || res.Errors["network"] == 0 || len(res.Errors) != 1 {
		t.Fatalf("ok %d, errors %v; want ok answers and network errors", res.OKRequests, res.Errors)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Every successful request created its own key.
	if int64(len(f.keys)) < res.OKRequests {
		t.Errorf("%d keys created, %d ok requests", len(f.keys), res.OKRequests)
	}
	for k := range f.keys {
		if !strings.HasPrefix(k, "bench-") || !keyName.MatchString(k) {
			t.Errorf("created key %q", k)
		}
	}
}

func TestDecrypt(t *testing.T) {
	f := newFake(t, 24)
	srv := httptest.NewServer(f)
	defer srv.Close()
	res, err := run(context.Background(), testConfig("decrypt", srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res)
	f.check(t)
	if res.OKRequests == 0 || len(res.Errors) != 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestBatchEncryptCountsItems(t *testing.T) {
	f := newFake(t, 24)
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig("batch-encrypt", srv.URL)
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res)
	f.check(t)
	if res.OKRequests == 0 || res.Ops != res.OKRequests*int64(cfg.Batch) || res.Batch != cfg.Batch {
		t.Fatalf("result %+v", res)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.items < res.Ops || f.items%int64(cfg.Batch) != 0 {
		t.Errorf("server saw %d items, client counted %d", f.items, res.Ops)
	}
}

func TestKeyAlreadyExistsIsFine(t *testing.T) {
	f := newFake(t, 24)
	f.keys["bench"] = true // creation answers 400 "key already exists"
	srv := httptest.NewServer(f)
	defer srv.Close()
	res, err := run(context.Background(), testConfig("encrypt", srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if res.OKRequests == 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestBadTokenFailsBeforeTheRun(t *testing.T) {
	f := newFake(t, 24)
	srv := httptest.NewServer(f)
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := realMain(context.Background(), []string{"-addrs", srv.URL, "-token", "wrong", "-duration", "100ms"},
		func(string) string { return "" }, &stdout, &stderr)
	if code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	if !strings.HasPrefix(stderr.String(), "error: create key \"bench\"") || !strings.Contains(stderr.String(), "HTTP 403") ||
		!strings.Contains(stderr.String(), "hint: check -token") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestInterruptedRunReportsWhatItMeasured(t *testing.T) {
	f := newFake(t, 24)
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig("encrypt", srv.URL)
	cfg.Duration = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	res, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res)
	if res.ElapsedSec > 5 || len(res.Errors) != 0 || res.OKRequests == 0 {
		t.Errorf("result %+v", res)
	}
}

func TestJSONOutput(t *testing.T) {
	f := newFake(t, 16)
	srv := httptest.NewServer(f)
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := realMain(context.Background(), []string{"-addrs", srv.URL + "/", "-token", "tok", "-size", "16",
		"-conns", "3", "-duration", "200ms", "-warmup", "0s", "-json"}, func(string) string { return "" }, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	var out map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%v: %q", err, stdout.String())
	}
	for _, k := range []string{"addrs", "op", "size", "conns", "duration", "ops", "ops_per_sec", "errors",
		"p50_ms", "p90_ms", "p99_ms", "max_ms", "machine"} {
		if _, ok := out[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, stdout.String())
		}
	}
	if out["op"] != "encrypt" || out["size"] != 16.0 || out["conns"] != 3.0 || out["duration"] != "200ms" {
		t.Errorf("JSON %s", stdout.String())
	}
	if addrs, _ := out["addrs"].([]any); len(addrs) != 1 || addrs[0] != srv.URL {
		t.Errorf("addrs %v, want [%s] (trailing slash dropped)", out["addrs"], srv.URL)
	}
	m, _ := out["machine"].(map[string]any)
	if m["num_cpu"] == nil || m["goos"] == nil || m["goarch"] == nil {
		t.Errorf("machine %v", out["machine"])
	}
	if errs, _ := out["errors"].(map[string]any); errs == nil || len(errs) != 0 {
		t.Errorf("errors %v, want {}", out["errors"])
	}
	f.check(t)
}

func TestHumanSummary(t *testing.T) {
	var b bytes.Buffer
	writeSummary(&b, Result{Addrs: []string{"http://a", "http://b"}, Op: "batch-encrypt", Key: "k", Size: 32, Batch: 10,
		Conns: 8, Warmup: "1s", ElapsedSec: 2, Requests: 12, OKRequests: 10, Ops: 100, OpsPerSec: 50,
		Errors: map[string]int64{"500": 1, "network": 1}, P50Ms: 1, P90Ms: 2, P99Ms: 3, MaxMs: 4,
		Machine: Machine{NumCPU: 2, GOOS: "linux", GOARCH: "amd64"}})
	for _, want := range []string{"8 conns over http://a, http://b", "12 (10 ok, 2 errors)", "50.0 items/s (5.0 requests/s)",
		"p50 1.000ms  p90 2.000ms  p99 3.000ms  max 4.000ms", "500: 1, network: 1", "2 CPUs, linux/amd64"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestPercentile(t *testing.T) {
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {90, 90}, {99, 99}, {99.9, 100}, {100, 100}, {0, 1}, {1, 1}} {
		if got := percentile(d, c.p); got != c.want {
			t.Errorf("p%v of 1..100 = %v, want %v", c.p, got, c.want)
		}
	}
	one := []time.Duration{7}
	if percentile(one, 50) != 7 || percentile(one, 99) != 7 {
		t.Error("single sample")
	}
	// Ordered for any sample.
	var counter atomic.Int64
	for n := 1; n < 50; n++ {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration((counter.Add(7919) % 1000))
		}
		slices.Sort(s)
		p50, p90, p99 := percentile(s, 50), percentile(s, 90), percentile(s, 99)
		if p50 > p90 || p90 > p99 || p99 > s[n-1] {
			t.Errorf("n=%d: %v %v %v max %v", n, p50, p90, p99, s[n-1])
		}
	}
}

func TestFlagErrors(t *testing.T) {
	noenv := func(string) string { return "" }
	base := []string{"-addrs", "http://127.0.0.1:8200", "-token", "t"}
	for _, c := range []struct {
		args []string
		msg  string // the error line, after "error: "
		hint string // a part of the hint line
	}{
		{nil, "missing -addrs", "usage:"},
		{[]string{"-addrs", "http://127.0.0.1:8200"}, "missing -token", "KEYRAFT_TOKEN"},
		{[]string{"-addrs", "127.0.0.1:8200", "-token", "t"}, `invalid address "127.0.0.1:8200" in -addrs`, "http://127.0.0.1:8200"},
		{[]string{"-addrs", "http://a:1,,http://b:2", "-token", "t"}, `invalid address "" in -addrs`, "separated by commas"},
		{[]string{"-addrs", "http://a:1/v1", "-token", "t"}, `invalid address "http://a:1/v1" in -addrs`, "base URLs"},
		{append(base, "-op", "sign"), `unknown -op "sign"`, "encrypt, decrypt, batch-encrypt, create-key"},
		{append(base, "-conns", "0"), "invalid -conns 0: must be between 1 and 100000", "usage:"},
		{append(base, "-size", "0"), "invalid -size 0: must be between 1 and 33554432 bytes", "usage:"},
		{append(base, "-batch", "-1"), "invalid -batch -1: must be between 1 and 100000", "usage:"},
		{append(base, "-duration", "0s"), "invalid -duration 0s: must be positive", "usage:"},
		{append(base, "-warmup", "-1s"), "invalid -warmup -1s: must not be negative", "usage:"},
		{append(base, "-duration", "ten"), `invalid value "ten" for flag -duration: parse error`, "usage:"},
		{append(base, "-key", "a/b"), `invalid -key "a/b": use 1-128 letters`, "usage:"},
		{append(base, "-op", "create-key", "-key", strings.Repeat("k", 81)), "invalid -key", "usage:"},
		{append(base, "-frobnicate"), "flag provided but not defined: -frobnicate", "usage:"},
		{append(base, "extra"), `unexpected argument "extra"`, "usage:"},
	} {
		var stdout, stderr bytes.Buffer
		code := realMain(context.Background(), c.args, noenv, &stdout, &stderr)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if code != exitUsage || len(lines) != 2 || !strings.HasPrefix(lines[0], "error: "+c.msg) ||
			!strings.HasPrefix(lines[1], "hint: ") || !strings.Contains(lines[1], c.hint) || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2, error: %s / hint with %q", c.args, code, stderr.String(), c.msg, c.hint)
		}
	}

	// The token can come from the environment.
	cfg, err := parseFlags([]string{"-addrs", "http://a:1, https://b:2/"}, func(k string) string {
		return map[string]string{"KEYRAFT_TOKEN": "envtok"}[k]
	}, &bytes.Buffer{})
	if err != nil || cfg.Token != "envtok" || !slices.Equal(cfg.Addrs, []string{"http://a:1", "https://b:2"}) {
		t.Errorf("cfg %+v, err %v", cfg, err)
	}

	// -h prints the usage and succeeds.
	var stdout, stderr bytes.Buffer
	if code := realMain(context.Background(), []string{"-h"}, noenv, &stdout, &stderr); code != exitOK ||
		!strings.Contains(stderr.String(), "-conns") {
		t.Errorf("-h: exit %d, stderr %q", code, stderr.String())
	}
}

// Requests in flight at the end are left to finish (uncounted), not
// cancelled: a cancelled request shows up in the server's error log.
func TestInFlightRequestsFinishAtTheEnd(t *testing.T) {
	f := newFake(t, 24)
	var cancelled, finished atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/transit/encrypt/") {
			select {
			case <-time.After(120 * time.Millisecond):
				finished.Add(1)
			case <-r.Context().Done():
				cancelled.Add(1)
				return
			}
		}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg := testConfig("encrypt", srv.URL)
	cfg.Warmup = 0
	cfg.Duration = 300 * time.Millisecond // not a multiple of 120ms: requests are in flight at the end
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res)
	if cancelled.Load() != 0 {
		t.Errorf("%d requests cancelled", cancelled.Load())
	}
	// Each worker's last request ends after the period: counted by the
	// server, not by the generator. (About 2 per worker are counted.)
	if res.OKRequests < 4 || res.OKRequests > 8 || finished.Load() != res.OKRequests+int64(cfg.Conns) {
		t.Errorf("counted %d ok, server finished %d; want 4-8 and %d more", res.OKRequests, finished.Load(), cfg.Conns)
	}
}
