package transport

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestStrangersCannotGrowState: requests without a token whose method,
// path segments or key names are long or new each time leave an audit
// event of a bounded size (never none and a 503: issue 12 items 3 and 8),
// name an operation from the closed set (never their own text), and add
// no series to the metrics (item 2).
func TestStrangersCannotGrowState(t *testing.T) {
	h := newHarness(t, harnessOpts{raftAudit: true})
	long := strings.Repeat("x", 70<<10)
	send := func(method, path string) int {
		req, _ := http.NewRequest(method, h.srv.URL+"/v1/"+path, nil)
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "sys/" + long, 404},
		// A path no row has is a 404 before any token is looked at (the
		// table is public: docs/api.md); a key path needs a token.
		{"GET", "transit/" + long + "/x", 404},
		{"POST", "transit/encrypt/" + long, 403},
		{"POST", "sys/" + long + "/" + long, 404},
		{strings.Repeat("M", 70<<10), "sys/health", 405},
	} {
		if got := send(c.method, c.path); got != c.want {
			t.Fatalf("%.20s %.40s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	for i := 0; i < 50; i++ {
		send("GET", "transit/random-"+strings.Repeat("y", i)+"/x")
	}
	evs := h.must(200, "GET", "sys/audit/events?limit=1000", nil)
	var list struct {
		Data struct {
			Events []json.RawMessage `json:"events"`
		} `json:"data"`
	}
	if err := json.Unmarshal(evs.raw, &list); err != nil || len(list.Data.Events) < 55 {
		t.Fatalf("events: %v, %d", err, len(list.Data.Events))
	}
	strangers := 0
	for _, raw := range list.Data.Events {
		var e struct {
			Operation string `json:"operation"`
			Identity  string `json:"identity"`
		}
		json.Unmarshal(raw, &e)
		if e.Identity != "" {
			continue
		}
		strangers++
		if len(raw) > 4<<10 {
			t.Fatalf("a stranger's event is %d bytes: %.200s", len(raw), raw)
		}
		if _, ok := operations[e.Operation]; !ok && e.Operation != otherOperation {
			t.Fatalf("operation %q is not from the closed set", e.Operation)
		}
	}
	if strangers < 55 {
		t.Fatalf("%d events of requests without a token, want at least 55", strangers)
	}
	res, m := getRaw(t, h, "sys/metrics")
	// Paths no row has are 404s, counted under one label whatever the
	// path (51 strangers' requests, and the other 404s above).
	const unknown = `keyraft_requests_total{operation="unknown",status="404"} `
	_, after, found := strings.Cut(string(m), unknown)
	count, _, _ := strings.Cut(after, "\n")
	if n, err := strconv.Atoi(count); res.StatusCode != 200 || !found || err != nil || n < 51 {
		t.Fatalf("metrics: %d, count %q: want the strangers' 51 requests or more as operation unknown", res.StatusCode, count)
	}
	if strings.Contains(string(m), "random-") || strings.Contains(string(m), "xxxx") {
		t.Fatal("the metrics hold a label a stranger chose")
	}
}

// TestBodyLimits: a request without a valid token may send at most
// MaxUnauthenticatedBody (a declared larger length is refused before a
// byte is read), one with a token up to MaxRequestSize; a batch_input
// over MaxBatchItems is a 400 naming the limit before any item is used;
// and a token whose batch items in flight fill its budget gets a 429
// with Retry-After until they finish (issue 12 items 4 and 5).
func TestBodyLimits(t *testing.T) {
	h := newHarness(t, harnessOpts{maxBatchItems: 5})
	h.createKey("app", nil)
	big := `{"plaintext":"` + strings.Repeat("A", 100<<10) + `"}`
	for _, tok := range []string{"", "kr.not-a-token"} {
		r := h.doWith("POST", "transit/encrypt/app", big, map[string]string{"X-Vault-Token": tok})
		if r.status != 413 || !strings.Contains(r.errs()[0], "without a valid token: the limit is 65536 bytes") {
			t.Fatalf("token %q: %d %s", tok, r.status, r.raw)
		}
	}
	h.must(200, "POST", "transit/encrypt/app", big)

	items := func(n int) map[string]any {
		var list []any
		for i := 0; i < n; i++ {
			list = append(list, map[string]any{"plaintext": b64("x")})
		}
		return map[string]any{"batch_input": list}
	}
	h.must(200, "POST", "transit/encrypt/app", items(5))
	r := h.do("POST", "transit/encrypt/app", items(6))
	if r.status != 400 || !strings.Contains(r.errs()[0], "more than 5 items") || !strings.Contains(r.errs()[0], "max_batch_items") {
		t.Fatalf("6 items: %d %s", r.status, r.raw)
	}

	h.putPolicy("enc", `path "transit/encrypt/app" { capabilities = ["update"] }`)
	tok := h.newToken("enc")
	acc := h.as(tok, "GET", "auth/token/lookup-self", nil).data()["accessor"].(string)
	limit := h.api.cfg.MaxTokenBatchItemsInFlight
	if !h.api.inflight.acquire(acc, limit, limit) { // as if its earlier batches were still running
		t.Fatal("budget not free")
	}
	r = h.as(tok, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")})
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(r.errs()[0], "max_token_batch_items_in_flight") {
		t.Fatalf("over the budget: %d %s", r.status, r.raw)
	}
	h.must(200, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}) // another token is not held up
	h.api.inflight.release(acc, limit, limit)
	if r := h.as(tok, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")}); r.status != 200 {
		t.Fatalf("after the budget is free: %d %s", r.status, r.raw)
	}
	// The request bytes in flight are bounded per token too, before the
	// body is read.
	budget := h.api.maxTokenBodyBytes()
	h.api.inflight.acquire(bodyBudgetKey+acc, budget-10, budget)
	r = h.as(tok, "POST", "transit/encrypt/app", map[string]any{"plaintext": b64("x")})
	if r.status != 429 || !strings.Contains(r.errs()[0], "request bytes in flight") {
		t.Fatalf("over the bytes budget: %d %s", r.status, r.raw)
	}
	h.api.inflight.release(bodyBudgetKey+acc, budget-10, budget)
	h.api.inflight.mu.Lock()
	left := len(h.api.inflight.m)
	h.api.inflight.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d tokens still counted in flight after every request finished", left)
	}
}
