package e2e

// The security regression test of issue 12: the attacks of items 1-8,
// each against the same real keyraft process on loopback, with a normal
// client encrypting throughout. Each item logs what it measured (the
// server's RSS before, at its peak and after, the data dir before and
// after, the normal client's encrypt latency p50/p99) and checks the
// behaviour the fixes promise.
//
// KEYRAFT_E2E_SECURITY_MEASURE=1 only measures: it leaves the listener
// settings of this change out of the config (so that an older binary,
// given with KEYRAFT_E2E_BIN, starts) and logs every failed expectation
// as "BEFORE" instead of failing. That is how the figures before the fixes
// were taken.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Settings of the node under attack.
const (
	secReadTimeout = 3 * time.Second // http_read_timeout
	secBatchItems  = 100             // max_batch_items
	// secCloseMargin is how much longer than http_read_timeout a busy
	// machine may take to close a slow sender's connection.
	secCloseMargin = 10 * time.Second
	// secUnauthBody is the most body an unauthenticated request may
	// carry (item 4).
	secUnauthBody = 64 << 10
)

// Bounds. Generous: they tell a fixed node from an unbounded one
// (hundreds of MiB), not a fast machine from a slow one. A -race server
// uses several times the memory for the same work.
var (
	secRSSBound  int64 = 64 << 20
	secDiskBound int64 = 16 << 20
)

func init() {
	if raceEnabled {
		secRSSBound *= 4
	}
}

// secNode is the node under attack and what the items share.
type secNode struct {
	n           *node
	root        string
	shares      []string // unseal shares (3, threshold 2)
	measureOnly bool     // only measure: failed expectations are logged
	hc          *http.Client
	probeTk     string // the normal client's token (encrypt and decrypt on "app")
	summary     []string
}

// expect fails the test (or, when only measuring, logs) unless ok.
func (s *secNode) expect(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	if s.measureOnly {
		t.Logf("BEFORE (expectation not met): "+format, args...)
		return
	}
	t.Errorf(format, args...)
}

func TestSecurityRegression(t *testing.T) {
	s := &secNode{measureOnly: os.Getenv("KEYRAFT_E2E_SECURITY_MEASURE") == "1"}
	n := newConfigNode(t)
	if !s.measureOnly {
		n.listen = fmt.Sprintf(`  http_read_header_timeout = "2s"
  http_read_timeout        = %q
  max_batch_items                 = %d
  max_token_batch_items_in_flight = %d`, secReadTimeout.String(), secBatchItems, 10*secBatchItems)
		n.writeNodeConfig()
	}
	n.start()
	s.n = n
	b64s, _, root := n.initNode(3, 2)
	s.shares, s.root = b64s, root
	n.unseal(b64s[0], b64s[1])
	s.hc = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
	t.Cleanup(s.hc.CloseIdleConnections)

	c := n.client(root)
	write(t, c, "transit/keys/app", map[string]any{})
	if err := c.Sys().PutPolicy("app", `path "transit/encrypt/app" { capabilities = ["update"] }
path "transit/decrypt/app" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().PutPolicy("enc-only", `path "transit/encrypt/app" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	s.probeTk = s.token(t, c, "app")
	s.alive(t)

	start := time.Now()
	t.Run("1-duplicate-keys", s.duplicateKeys)
	t.Run("2-metrics-labels", s.metricsLabels)
	t.Run("3-audit-disk-fill", s.auditDiskFill)
	t.Run("4-slow-bodies", s.slowBodies)
	t.Run("5-batch-items", s.batchItems)
	t.Run("6-generate-root-reset", s.generateRootReset)
	t.Run("7-namespace-tokens", s.namespaceTokens)
	t.Run("8-huge-names-audited", s.hugeNamesAudited)
	t.Logf("summary (%v in all):\n%s", time.Since(start).Round(time.Second), strings.Join(s.summary, "\n"))
}

// token creates a token with the policies, in the client's namespace.
func (s *secNode) token(t *testing.T, c *vault.Client, policies ...string) string {
	t.Helper()
	sec, err := c.Auth().Token().Create(&vault.TokenCreateRequest{Policies: policies})
	if err != nil || sec == nil || sec.Auth == nil {
		t.Fatalf("token create %v: %v", policies, err)
	}
	return sec.Auth.ClientToken
}

// do sends one request and returns the status and the body (at most
// 4 MiB of it). token and ns may be empty.
func (s *secNode) do(method, path, token, ns string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, s.n.addr+"/v1/"+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if ns != "" {
		req.Header.Set("X-Vault-Namespace", ns)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, raw, err
}

// errorsOf returns the "errors" of a Vault error answer, joined.
func errorsOf(raw []byte) string {
	var e struct {
		Errors []string `json:"errors"`
	}
	json.Unmarshal(raw, &e)
	return strings.Join(e.Errors, "; ")
}

// alive checks that the node answers health and the normal client's
// encrypt.
func (s *secNode) alive(t *testing.T) {
	t.Helper()
	if !s.n.running() {
		t.Fatal("the keyraft process is gone")
	}
	code, raw, err := s.do("GET", "sys/health", "", "", nil)
	if err != nil || code != 200 {
		t.Fatalf("sys/health: %d %s %v", code, raw, err)
	}
	code, raw, err = s.do("POST", "transit/encrypt/app", s.probeTk, "", []byte(`{"plaintext":"aGVsbG8="}`))
	if err != nil || code != 200 {
		t.Fatalf("a normal client's encrypt: %d %s %v", code, raw, err)
	}
}

// rss is the server process's resident set (VmRSS), in bytes.
func (s *secNode) rss(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.n.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the server's RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/PID/status")
	return 0
}

// diskUsage is the disk the node's data dir takes, in bytes: the blocks
// its files hold, not their lengths (bbolt grows a file ahead of its data
// in steps, as a sparse extension, so the length jumps by megabytes
// whatever a request wrote).
func (s *secNode) diskUsage(t *testing.T) int64 {
	t.Helper()
	var total int64
	filepath.WalkDir(s.n.dataDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				} else {
					total += info.Size()
				}
			}
		}
		return nil
	})
	return total
}

// auditHead is the seq of the newest audit event.
func (s *secNode) auditHead(t *testing.T) int {
	t.Helper()
	sec, err := s.n.client(s.root).Logical().ReadWithData("sys/audit/events", map[string][]string{"limit": {"1"}})
	if err != nil {
		t.Fatalf("sys/audit/events: %v", err)
	}
	return num(t, sec.Data["head"].(map[string]any), "seq")
}

// auditFind reads the audit events from seq from up to the head (at
// most 5,000) and reports which markers appear in an event's path,
// operation or key.
func (s *secNode) auditFind(t *testing.T, from int, markers ...string) map[string]bool {
	t.Helper()
	c := s.n.client(s.root)
	found := map[string]bool{}
	to := s.auditHead(t)
	for seq, pages := from, 0; seq <= to && pages < 50; pages++ {
		sec, err := c.Logical().ReadWithData("sys/audit/events", map[string][]string{"from_seq": {strconv.Itoa(seq)}, "limit": {"100"}})
		if err != nil {
			t.Fatalf("sys/audit/events: %v", err)
		}
		evs, _ := sec.Data["events"].([]any)
		for _, e := range evs {
			ev, _ := e.(map[string]any)
			text := fmt.Sprint(ev["path"], " ", ev["operation"], " ", ev["key"])
			for _, m := range markers {
				if strings.Contains(text, m) {
					found[m] = true
				}
			}
		}
		next := num(t, sec.Data, "next_seq")
		if len(evs) == 0 || next <= seq {
			break
		}
		seq = next
	}
	return found
}

// figures is what one item measured.
type figures struct {
	rssBefore, rssPeak, rssAfter int64
	diskBefore, diskAfter        int64
	latencies                    []time.Duration // the normal client's encrypts
	failures                     int
	lastFailure                  string
}

func (f *figures) rssGrowth() int64  { return f.rssPeak - f.rssBefore }
func (f *figures) diskGrowth() int64 { return f.diskAfter - f.diskBefore }

func (f *figures) percentile(p float64) time.Duration {
	if len(f.latencies) == 0 {
		return 0
	}
	l := slices.Clone(f.latencies)
	slices.Sort(l)
	return l[min(len(l)-1, int(p*float64(len(l))))]
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// measure runs attack while a normal client encrypts every 25 ms and the
// server's RSS is sampled every 100 ms, then logs the figures and checks
// that the node still answers. note, when attack returns one, is logged
// with them.
func (s *secNode) measure(t *testing.T, item string, attack func() string) *figures {
	t.Helper()
	f := &figures{rssBefore: s.rss(t), diskBefore: s.diskUsage(t)}
	f.rssPeak = f.rssBefore
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(2)
	go func() { // the RSS sampler
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.n.cmd.Process.Pid))
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					mu.Lock()
					f.rssPeak = max(f.rssPeak, kb<<10)
					mu.Unlock()
				}
			}
		}
	}()
	go func() { // the normal client
		defer wg.Done()
		hc := &http.Client{Timeout: 30 * time.Second}
		defer hc.CloseIdleConnections()
		for i := 0; i < 20000; i++ { // bounded; stop ends it much sooner
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("POST", s.n.addr+"/v1/transit/encrypt/app", strings.NewReader(`{"plaintext":"bm9ybWFsIGNsaWVudA=="}`))
			req.Header.Set("X-Vault-Token", s.probeTk)
			t0 := time.Now()
			resp, err := hc.Do(req)
			took := time.Since(t0)
			failure := ""
			if err != nil {
				failure = err.Error()
			} else {
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failure = fmt.Sprintf("%d %.200s", resp.StatusCode, raw)
				}
			}
			mu.Lock()
			if failure == "" {
				f.latencies = append(f.latencies, took)
			} else {
				f.failures++
				f.lastFailure = failure
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()
	note := attack()
	close(stop)
	wg.Wait()
	f.rssAfter, f.diskAfter = s.rss(t), s.diskUsage(t)
	line := fmt.Sprintf("item %s: RSS %s → peak %s → after %s (growth %s); data dir %s → %s (growth %s); normal client %d encrypts p50 %v p99 %v, %d failed",
		item, mib(f.rssBefore), mib(f.rssPeak), mib(f.rssAfter), mib(f.rssGrowth()), mib(f.diskBefore), mib(f.diskAfter), mib(f.diskGrowth()),
		len(f.latencies), f.percentile(0.5).Round(time.Microsecond), f.percentile(0.99).Round(time.Microsecond), f.failures)
	if f.failures > 0 {
		line += " (last: " + f.lastFailure + ")"
	}
	if note != "" {
		line += "; " + note
	}
	t.Log(line)
	s.summary = append(s.summary, line)
	s.alive(t)
	s.expect(t, len(f.latencies) > 0, "the normal client had no successful encrypt during the attack (%d failed, last: %s)", f.failures, f.lastFailure)
	return f
}

// flood runs send from workers goroutines until total calls or the time
// budget are used up, and returns how many calls were made and the count
// of each status (0: a transport error).
func flood(workers, total int, budget time.Duration, send func(i int) int) (int, map[int]int) {
	var next atomic.Int64
	deadline := time.Now().Add(budget)
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[int]int{}
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= total {
					break
				}
				local[send(i)]++
			}
			mu.Lock()
			for k, v := range local {
				statuses[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	sent := 0
	for _, v := range statuses {
		sent += v
	}
	return sent, statuses
}

// Item 1: a body with a key and a case variant of it, or a key twice, is
// refused with 400 naming the field; it is never served.
func (s *secNode) duplicateKeys(t *testing.T) {
	c := s.n.client(s.root)
	write(t, c, "transit/keys/tenant", map[string]any{"derived": true})
	ctxA, ctxB := b64([]byte("tenant-a")), b64([]byte("tenant-b"))
	ct := str(t, write(t, c, "transit/encrypt/tenant", map[string]any{"plaintext": b64([]byte("a's secret")), "context": ctxA}), "ciphertext")
	pt, pt2 := b64([]byte("x")), b64([]byte("y"))
	cases := []struct {
		name, path, body, field string
	}{
		{"context and Context", "transit/decrypt/tenant", fmt.Sprintf(`{"ciphertext":%q,"context":%q,"Context":%q}`, ct, ctxA, ctxB), "context"},
		{"batch_input and BATCH_INPUT", "transit/encrypt/tenant",
			fmt.Sprintf(`{"batch_input":[{"plaintext":%q,"context":%q}],"BATCH_INPUT":[{"plaintext":%q,"context":%q}]}`, pt, ctxA, pt, ctxB), "batch_input"},
		{"plaintext twice", "transit/encrypt/tenant", fmt.Sprintf(`{"plaintext":%q,"plaintext":%q,"context":%q}`, pt, pt2, ctxA), "plaintext"},
		{"context twice", "transit/decrypt/tenant", fmt.Sprintf(`{"ciphertext":%q,"context":%q,"context":%q}`, ct, ctxB, ctxA), "context"},
		{"batch item with context and Context", "transit/decrypt/tenant",
			fmt.Sprintf(`{"batch_input":[{"ciphertext":%q,"context":%q,"Context":%q}]}`, ct, ctxA, ctxB), "context"},
	}
	var results []string
	s.measure(t, "1 (duplicate and case-variant keys)", func() string {
		for _, tc := range cases {
			code, raw, err := s.do("POST", tc.path, s.root, "", []byte(tc.body))
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			msg := errorsOf(raw)
			results = append(results, fmt.Sprintf("%s → %d", tc.name, code))
			s.expect(t, code != 200, "%s: answered 200: %.300s", tc.name, raw)
			s.expect(t, code == 400 && strings.Contains(strings.ToLower(msg), tc.field),
				"%s: %d %q, want 400 naming the duplicate or case-variant field %q", tc.name, code, msg, tc.field)
		}
		return strings.Join(results, ", ")
	})
}

// Item 2: unauthenticated requests to random transit paths add no
// metrics series: sys/metrics names none of them and stays small, and
// the server's memory does not grow with them.
func (s *secNode) metricsLabels(t *testing.T) {
	const total, workers = 20000, 8
	prefix := "zq" + randomMarker("m")[2:12]
	var sent int
	var statuses map[int]int
	f := s.measure(t, "2 (metrics labels, unauthenticated)", func() string {
		sent, statuses = flood(workers, total, 25*time.Second, func(i int) int {
			method, body := "GET", []byte(nil)
			if i%2 == 1 {
				method, body = "POST", []byte("{}")
			}
			code, _, err := s.do(method, fmt.Sprintf("transit/%s%x/x", prefix, i), "", "", body)
			if err != nil {
				return 0
			}
			return code
		})
		return fmt.Sprintf("%d requests sent, statuses %v", sent, statuses)
	})
	code, raw, err := s.do("GET", "sys/metrics", s.root, "", nil)
	if err != nil || code != 200 {
		t.Fatalf("sys/metrics: %d %v", code, err)
	}
	t.Logf("item 2: sys/metrics is %d bytes, names the random paths %d times", len(raw), bytes.Count(raw, []byte(prefix)))
	s.summary = append(s.summary, fmt.Sprintf("item 2: sys/metrics %d bytes, %d random names", len(raw), bytes.Count(raw, []byte(prefix))))
	s.expect(t, !bytes.Contains(raw, []byte(prefix)), "sys/metrics names %d of the random paths", bytes.Count(raw, []byte(prefix)))
	s.expect(t, len(raw) < 1<<20, "sys/metrics is %d bytes after %d unauthenticated requests, want < 1 MiB", len(raw), sent)
	s.expect(t, f.rssGrowth() < secRSSBound, "RSS grew by %s for %d unauthenticated requests, want < %s", mib(f.rssGrowth()), sent, mib(secRSSBound))
	s.expect(t, statuses[0] == 0 && statuses[503] == 0 && statuses[500] == 0, "statuses %v: some requests failed", statuses)
}

// Item 3: unauthenticated requests with a 60 KB path segment cost the
// disk (audit events included) only a small fixed amount each.
func (s *secNode) auditDiskFill(t *testing.T) {
	const total, workers = 1000, 4
	seg := randomMarker("seg") + strings.Repeat("A", 60000)
	var statuses map[int]int
	var sent int
	f := s.measure(t, "3 (audit disk fill, 60 KB segment)", func() string {
		sent, statuses = flood(workers, total, 30*time.Second, func(i int) int {
			code, _, err := s.do("GET", fmt.Sprintf("sys/%s%d", seg, i), "", "", nil)
			if err != nil {
				return 0
			}
			return code
		})
		return fmt.Sprintf("%d requests sent, statuses %v", sent, statuses)
	})
	s.expect(t, f.diskGrowth() < secDiskBound, "the data dir grew by %s for %d unauthenticated requests, want < %s", mib(f.diskGrowth()), sent, mib(secDiskBound))
	for code, count := range statuses {
		s.expect(t, code >= 400 && code < 500, "%d requests answered %d, want a 4xx", count, code)
	}
}

// Item 4: slow unauthenticated senders that declare 32 MiB bodies (and
// send 8 MiB of them) pin no memory and are cut off after
// http_read_timeout; a request without a token may carry at most 64 KiB
// of body.
func (s *secNode) slowBodies(t *testing.T) {
	// Each sender sends slowUpFront bytes at once, so that a server that
	// keeps what it has read of a body shows it in its RSS, then a byte
	// every 200 ms.
	const senders, slowUpFront = 20, 8 << 20
	host := strings.TrimPrefix(s.n.addr, "http://")
	marker := randomMarker("slow")
	from := s.auditHead(t) + 1
	closedAfter := make([]time.Duration, senders) // 0: still open at the end
	answers := make([]string, senders)
	f := s.measure(t, "4 (slow 32 MiB bodies, unauthenticated)", func() string {
		var wg sync.WaitGroup
		start := time.Now()
		for i := range senders {
			conn, err := net.DialTimeout("tcp", host, 10*time.Second)
			if err != nil {
				t.Errorf("sender %d: %v", i, err)
				continue
			}
			wg.Add(2)
			done := make(chan struct{})
			go func() { // reads until the server closes the connection
				defer wg.Done()
				defer close(done)
				defer conn.Close()
				conn.SetReadDeadline(start.Add(secReadTimeout + secCloseMargin))
				var got bytes.Buffer
				_, err := io.Copy(&got, io.LimitReader(conn, 64<<10))
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					closedAfter[i] = time.Since(start)
				}
				status, rest, _ := strings.Cut(got.String(), "\r\n")
				if _, body, ok := strings.Cut(rest, "\r\n\r\n"); ok {
					status += " " + strings.TrimSpace(body)
				}
				answers[i] = status
			}()
			go func() { // sends 8 MiB, then trickles a byte every 200 ms
				defer wg.Done()
				fmt.Fprintf(conn, "POST /v1/transit/encrypt/%s-%02d HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"plaintext\":\"", marker, i, host, 32<<20)
				chunk := bytes.Repeat([]byte("A"), 64<<10)
				for range slowUpFront / len(chunk) {
					if _, err := conn.Write(chunk); err != nil {
						return
					}
				}
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-done:
						return
					case <-tick.C:
						if _, err := conn.Write([]byte("A")); err != nil {
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		open := 0
		var latest time.Duration
		for _, d := range closedAfter {
			if d == 0 {
				open++
			}
			latest = max(latest, d)
		}
		return fmt.Sprintf("%d of %d slow connections still open after %v, the others closed by the server within %v; first answer %.200q",
			open, senders, secReadTimeout+secCloseMargin, latest.Round(10*time.Millisecond), answers[0])
	})
	for i, d := range closedAfter {
		s.expect(t, d != 0, "slow sender %d: the connection was still open %v after it started (http_read_timeout %v)", i, secReadTimeout+secCloseMargin, secReadTimeout)
		// Cut off without an answer, or told why with a 4xx: a client that
		// does not send its body is bad input, not a server fault.
		s.expect(t, answers[i] == "" || strings.HasPrefix(answers[i], "HTTP/1.1 4"), "slow sender %d: answered %.300q, want a 4xx or no answer", i, answers[i])
	}
	// Every request that reaches the node is recorded (promise 2): the
	// senders send whole headers, so each reached the handler (which
	// refuses the declared 32 MiB at once), and each has its event.
	var markers []string
	for i := range senders {
		markers = append(markers, fmt.Sprintf("%s-%02d", marker, i))
	}
	recorded := len(s.auditFind(t, from, markers...))
	t.Logf("item 4: %d of %d slow requests have an audit event", recorded, senders)
	s.summary = append(s.summary, fmt.Sprintf("item 4: %d of %d slow requests have an audit event; first answer %.200q", recorded, senders, answers[0]))
	s.expect(t, recorded == senders, "%d of %d slow requests have an audit event, want all", recorded, senders)
	s.expect(t, f.rssGrowth() < secRSSBound, "RSS grew by %s with %d slow 32 MiB senders, want < %s", mib(f.rssGrowth()), senders, mib(secRSSBound))

	// The whole body sent at once: over 64 KiB without a token is 413
	// with a reason; under it, the usual 403.
	big := fmt.Sprintf(`{"plaintext":%q}`, strings.Repeat("A", secUnauthBody+1024))
	code, raw, err := s.do("POST", "transit/encrypt/app", "", "", []byte(big))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("item 4: %d-byte body without a token: %d %.200s", len(big), code, raw)
	s.summary = append(s.summary, fmt.Sprintf("item 4: %d-byte body without a token → %d", len(big), code))
	s.expect(t, code == 413 && errorsOf(raw) != "", "a %d-byte body without a token: %d %q, want 413 with a reason", len(big), code, errorsOf(raw))
	code, raw, err = s.do("POST", "transit/encrypt/app", "", "", []byte(`{"plaintext":"aGk="}`))
	if err != nil || code != 403 {
		t.Errorf("a small body without a token: %d %s %v, want 403", code, raw, err)
	}
}

// Item 5: a batch over max_batch_items from a narrow encrypt-only token
// is refused with 400 naming the limit, and costs the node little; a
// normal client is served meanwhile.
func (s *secNode) batchItems(t *testing.T) {
	attacker := s.token(t, s.n.client(s.root), "enc-only")
	batch := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"batch_input":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"plaintext":%q}`, b64([]byte(fmt.Sprint("item ", i))))
		}
		b.WriteString("]}")
		return b.Bytes()
	}
	type result struct {
		items, code int
		msg         string
		took        time.Duration
	}
	var results []result
	f := s.measure(t, "5 (batch_input over max_batch_items, encrypt-only token)", func() string {
		for _, items := range []int{secBatchItems + 1, 50000} {
			body := batch(items)
			t0 := time.Now()
			code, raw, err := s.do("POST", "transit/encrypt/app", attacker, "", body)
			if err != nil {
				t.Errorf("%d items: %v", items, err)
				continue
			}
			results = append(results, result{items, code, errorsOf(raw), time.Since(t0)})
		}
		var parts []string
		for _, r := range results {
			parts = append(parts, fmt.Sprintf("%d items → %d in %v", r.items, r.code, r.took.Round(time.Millisecond)))
		}
		return strings.Join(parts, ", ")
	})
	for _, r := range results {
		s.expect(t, r.code == 400 && strings.Contains(r.msg, strconv.Itoa(secBatchItems)),
			"%d items with max_batch_items = %d: %d %q, want 400 naming the limit", r.items, secBatchItems, r.code, r.msg)
	}
	s.expect(t, f.failures == 0, "the normal client failed %d times during the big batches (last: %s)", f.failures, f.lastFailure)
	s.expect(t, f.rssGrowth() < secRSSBound, "RSS grew by %s for the big batches, want < %s", mib(f.rssGrowth()), mib(secRSSBound))
	// A batch at the limit is served.
	if code, raw, err := s.do("POST", "transit/encrypt/app", attacker, "", batch(secBatchItems)); err != nil || code != 200 {
		t.Errorf("%d items (the limit): %d %.300s %v", secBatchItems, code, raw, err)
	}
}

// Item 6: nobody can reset a generate-root attempt in progress: a second
// start is refused with 400, and the first attempt, with the share it has,
// goes on.
func (s *secNode) generateRootReset(t *testing.T) {
	var note string
	s.measure(t, "6 (generate-root reset)", func() string {
		code, raw, err := s.do("PUT", "sys/generate-root/attempt", "", "", []byte("{}"))
		if err != nil || code != 200 {
			t.Errorf("start: %d %s %v", code, raw, err)
			return ""
		}
		var first struct {
			Nonce string `json:"nonce"`
			OTP   string `json:"otp"`
		}
		json.Unmarshal(raw, &first)
		defer s.do("DELETE", "sys/generate-root/attempt", "", "", nil)
		share := func(i int) (int, map[string]any) {
			code, raw, err := s.do("PUT", "sys/generate-root/update", "", "", []byte(fmt.Sprintf(`{"nonce":%q,"key":%q}`, first.Nonce, s.shares[i])))
			if err != nil {
				t.Errorf("share %d: %v", i+1, err)
			}
			var out map[string]any
			json.Unmarshal(raw, &out)
			return code, out
		}
		if code, out := share(0); code != 200 || out["progress"] != float64(1) {
			t.Errorf("first share: %d %v", code, out)
		}
		// A stranger (no token; none is needed) starts another attempt.
		code2, raw2, err := s.do("PUT", "sys/generate-root/attempt", "", "", []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		s.expect(t, code2 == 400, "a second start while one is in progress: %d %.200s, want 400", code2, raw2)
		stCode, stRaw, _ := s.do("GET", "sys/generate-root/attempt", "", "", nil)
		var st map[string]any
		json.Unmarshal(stRaw, &st)
		s.expect(t, stCode == 200 && st["nonce"] == first.Nonce && st["progress"] == float64(1),
			"status after the second start: %d %.300s, want the first attempt's nonce with progress 1", stCode, stRaw)
		code3, out := share(1)
		s.expect(t, code3 == 200 && out["complete"] == true, "the second share for the first attempt: %d %v, want complete", code3, out)
		note = fmt.Sprintf("second start → %d, status → %d, first attempt's second share → %d (complete %v)", code2, stCode, code3, out["complete"])
		return note
	})
}

// Item 7: deleting a namespace revokes its tokens: after it is created
// again, with a same-named policy and key, the old token is refused.
func (s *secNode) namespaceTokens(t *testing.T) {
	root := s.n.client(s.root)
	dev := s.n.client(s.root)
	dev.SetNamespace("dev")
	setUp := func() {
		t.Helper()
		if _, err := root.Logical().Write("sys/namespaces/dev", nil); err != nil {
			t.Fatalf("create namespace dev: %v", err)
		}
		if err := dev.Sys().PutPolicy("app", `path "transit/encrypt/app" { capabilities = ["update"] }`); err != nil {
			t.Fatalf("policy in dev: %v", err)
		}
		write(t, dev, "transit/keys/app", map[string]any{})
	}
	encrypt := func(token string) (int, string) {
		code, raw, err := s.do("POST", "transit/encrypt/app", token, "dev", []byte(`{"plaintext":"aGk="}`))
		if err != nil {
			t.Fatal(err)
		}
		return code, errorsOf(raw)
	}
	var code int
	s.measure(t, "7 (tokens of a deleted namespace)", func() string {
		setUp()
		old := s.token(t, dev, "app")
		if c, msg := encrypt(old); c != 200 {
			t.Fatalf("the dev token before the delete: %d %s", c, msg)
		}
		// A namespace that still holds keys cannot be deleted: delete
		// the key first, as an operator must.
		write(t, dev, "transit/keys/app/config", map[string]any{"deletion_allowed": true})
		if _, err := dev.Logical().Delete("transit/keys/app"); err != nil {
			t.Fatalf("delete key app in dev: %v", err)
		}
		if _, err := root.Logical().Delete("sys/namespaces/dev"); err != nil {
			t.Fatalf("delete namespace dev: %v", err)
		}
		setUp()
		var msg string
		code, msg = encrypt(old)
		s.expect(t, code == 403, "the old token after dev was deleted and created again: %d %q, want 403", code, msg)
		return fmt.Sprintf("old token after delete and re-create → %d", code)
	})
}

// Item 8: a path segment or key name of ~70 KiB gets a normal 4xx (not
// 503), and the audit log holds an event for it.
func (s *secNode) hugeNamesAudited(t *testing.T) {
	segMarker, keyMarker := randomMarker("longseg"), randomMarker("longkey")
	from := s.auditHead(t) + 1
	var segCode, keyCode int
	s.measure(t, "8 (70 KiB segment and key name)", func() string {
		var err error
		segCode, _, err = s.do("GET", "sys/"+segMarker+strings.Repeat("S", 70<<10), "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		keyCode, _, err = s.do("POST", "transit/encrypt/"+keyMarker+strings.Repeat("k", 70<<10), s.root, "", []byte(`{"plaintext":"aGk="}`))
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("70 KiB segment → %d, 70 KiB key name → %d", segCode, keyCode)
	})
	for what, code := range map[string]int{"a 70 KiB path segment": segCode, "a 70 KiB key name": keyCode} {
		s.expect(t, code >= 400 && code < 500, "%s: %d, want a 4xx", what, code)
	}
	// The markers start the long names, so they survive any shortening.
	found := s.auditFind(t, from, segMarker, keyMarker)
	s.summary = append(s.summary, fmt.Sprintf("item 8: audit events found: segment %v, key name %v", found[segMarker], found[keyMarker]))
	s.expect(t, found[segMarker], "no audit event for the request with the 70 KiB path segment")
	s.expect(t, found[keyMarker], "no audit event for the request with the 70 KiB key name")
}
