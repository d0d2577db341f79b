package transport

import (
	"encoding/json"
	"io"
	"net/http"
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
		{"GET", "transit/" + long + "/x", 403},
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
	if res.StatusCode != 200 || !strings.Contains(string(m), `keyraft_requests_total{operation="other",status="403"} 51`) {
		t.Fatalf("metrics: %d, no count of the strangers' requests as operation other", res.StatusCode)
	}
	if strings.Contains(string(m), "random-") || strings.Contains(string(m), "xxxx") {
		t.Fatal("the metrics hold a label a stranger chose")
	}
}
