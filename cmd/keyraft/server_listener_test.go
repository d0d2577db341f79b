package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/config"
	"github.com/keyraft/keyraft/transport"
)

// The config package keeps its own copy of the API server's batch
// defaults (it is a leaf); they must stay the same numbers.
func TestListenerDefaultsMatchTransport(t *testing.T) {
	if config.DefaultMaxBatchItems != transport.DefaultMaxBatchItems ||
		config.DefaultMaxTokenBatchItemsInFlight != transport.DefaultMaxTokenBatchItemsInFlight ||
		config.DefaultMaxRequestSize != transport.DefaultMaxRequestSize {
		t.Errorf("config defaults %d/%d/%d, transport defaults %d/%d/%d",
			config.DefaultMaxBatchItems, config.DefaultMaxTokenBatchItemsInFlight, config.DefaultMaxRequestSize,
			transport.DefaultMaxBatchItems, transport.DefaultMaxTokenBatchItemsInFlight, transport.DefaultMaxRequestSize)
	}
}

// newAPIServer takes its timeouts from the listener; an unset listener
// gets Vault's defaults, none of them "no limit" but the write timeout.
func TestNewAPIServerTimeouts(t *testing.T) {
	l := config.Listener{HTTPReadHeaderTimeout: 3 * time.Second, HTTPReadTimeout: 7 * time.Second,
		HTTPWriteTimeout: 11 * time.Second, HTTPIdleTimeout: 13 * time.Second}
	s := newAPIServer(l, http.NotFoundHandler(), hclog.NewNullLogger())
	if s.ReadHeaderTimeout != 3*time.Second || s.ReadTimeout != 7*time.Second || s.WriteTimeout != 11*time.Second || s.IdleTimeout != 13*time.Second {
		t.Errorf("server timeouts %v/%v/%v/%v, want 3s/7s/11s/13s", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
	c := config.Dev("127.0.0.1:0")
	c.Storage.Path = t.TempDir()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s = newAPIServer(c.Listeners[0], http.NotFoundHandler(), hclog.NewNullLogger())
	if s.ReadHeaderTimeout != 10*time.Second || s.ReadTimeout != 30*time.Second || s.WriteTimeout != 0 || s.IdleTimeout != 5*time.Minute {
		t.Errorf("default server timeouts %v/%v/%v/%v, want 10s/30s/0s/5m0s", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
}

// A negative timeout in the file stops the server before it starts,
// with the file, line and field.
func TestServerRefusesNegativeTimeout(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keyraft.hcl")
	src := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "n1"
}
listener "tcp" {
  address           = "127.0.0.1:0"
  tls_disable       = true
  http_read_timeout = "-30s"
}
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	code := runServer(context.Background(), []string{"-config", path}, &out, &errOut, func(string) string { return "" })
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut.String())
	}
	checkErrorLines(t, "negative http_read_timeout", errOut.String(), path+":8,23-29: http_read_timeout must not be negative", "fix the config file")
}

// startListenerServer runs serve() in this process, as 'keyraft server'
// does, with a dev node's config whose listener mutate changes; the node
// is initialized and unsealed with root token "root". It returns the API
// address (http://127.0.0.1:PORT).
func startListenerServer(t *testing.T, mutate func(*config.Listener)) string {
	t.Helper()
	cfg := config.Dev("127.0.0.1:0")
	cfg.Storage.Path = t.TempDir()
	cfg.PluginsInProcess = true
	mutate(&cfg.Listeners[0])
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "keyraft", Level: hclog.Info, Output: logs})
	ready := make(chan string, 1)
	onReady := func(node *cluster.Node, apiAddr string) error {
		if _, err := devInit(ctx, node, "root"); err != nil {
			return err
		}
		ready <- apiAddr
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, true, onReady, logger) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not return within 30s of cancel")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		t.Fatalf("serve stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the server was not ready within 60s")
	}
	return ""
}

// closedWithin reads from conn until the server closes it (or resets
// it), at most d; it reports whether it did and what it sent first.
func closedWithin(conn net.Conn, d time.Duration) (bool, string) {
	conn.SetReadDeadline(time.Now().Add(d))
	var got bytes.Buffer
	_, err := io.Copy(&got, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false, got.String()
	}
	return true, got.String() // EOF (err nil) or a reset
}

// The listener's timeouts reach the HTTP server: a client that sends
// half its headers, or half its body, or idles on a keep-alive
// connection is cut off once its timeout has passed (the bound allows
// a busy machine 10 s more). A normal request is answered meanwhile.
func TestServeListenerTimeouts(t *testing.T) {
	t.Parallel()
	const header, read, idle = time.Second, 2 * time.Second, time.Second
	addr := startListenerServer(t, func(l *config.Listener) {
		l.HTTPReadHeaderTimeout, l.HTTPReadTimeout, l.HTTPIdleTimeout = header, read, idle
	})
	host := strings.TrimPrefix(addr, "http://")
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	const margin = 10 * time.Second

	halfHeaders := dial()
	fmt.Fprintf(halfHeaders, "GET /v1/sys/health HTTP/1.1\r\nHost: %s\r\nX-Slow: ", host)

	halfBody := dial()
	fmt.Fprintf(halfBody, "POST /v1/sys/unseal HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{\"key\":\"", host)
	stopTrickle := make(chan struct{})
	defer close(stopTrickle)
	go func() { // a byte every 100 ms: never idle, never done
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
				if _, err := halfBody.Write([]byte("a")); err != nil {
					return
				}
			}
		}
	}()

	keepAlive := dial()
	fmt.Fprintf(keepAlive, "GET /v1/sys/health HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	keepAlive.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(keepAlive), nil)
	if err != nil {
		t.Fatalf("health over the keep-alive connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health: %d", resp.StatusCode)
	}

	type result struct {
		what   string
		closed bool
		got    string
	}
	results := make(chan result, 3)
	for what, c := range map[string]struct {
		conn net.Conn
		d    time.Duration
	}{"half the headers": {halfHeaders, header}, "half the body": {halfBody, read}, "an idle keep-alive connection": {keepAlive, idle}} {
		go func() {
			closed, got := closedWithin(c.conn, c.d+margin)
			results <- result{what, closed, got}
		}()
	}

	// The server still answers a normal client.
	hc := &http.Client{Timeout: 30 * time.Second}
	if r, err := hc.Get(addr + "/v1/sys/health"); err != nil || r.StatusCode != 200 {
		t.Errorf("a normal request during the slow ones: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	for range 3 {
		r := <-results
		if !r.closed {
			t.Errorf("%s: the connection was still open after its timeout + %v", r.what, margin)
		}
		if strings.HasPrefix(r.got, "HTTP/1.1 2") {
			t.Errorf("%s: answered %q", r.what, strings.SplitN(r.got, "\r\n", 2)[0])
		}
	}
}

// max_batch_items reaches the API: a batch over it is refused with 400
// naming the limit, a batch at it is served.
func TestServeBatchLimit(t *testing.T) {
	t.Parallel()
	addr := startListenerServer(t, func(l *config.Listener) {
		l.MaxBatchItems, l.MaxTokenBatchItemsInFlight = 3, 6
	})
	post := func(n int) (int, string) {
		t.Helper()
		items := make([]map[string]string, n)
		for i := range items {
			items[i] = map[string]string{"plaintext": base64.StdEncoding.EncodeToString([]byte(fmt.Sprint("item ", i)))}
		}
		body, _ := json.Marshal(map[string]any{"batch_input": items})
		req, _ := http.NewRequest(http.MethodPost, addr+"/v1/transit/encrypt/batch-limit", bytes.NewReader(body))
		req.Header.Set("X-Vault-Token", "root")
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("encrypt %d items: %v", n, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if code, body := post(3); code != 200 {
		t.Fatalf("3 items with max_batch_items = 3: %d %s", code, body)
	}
	code, body := post(4)
	if code != 400 || !strings.Contains(body, "3") {
		t.Fatalf("4 items with max_batch_items = 3: %d %s, want 400 naming the limit 3", code, body)
	}
}
