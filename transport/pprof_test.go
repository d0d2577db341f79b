package transport

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestPprof: sys/pprof serves the runtime's profiles to a root token only,
// refuses unknown profiles and out-of-range durations, and every request
// is recorded.
func TestPprof(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.putPolicy("enc", `path "sys/pprof/*" { capabilities = ["read"] }`)
	narrow := h.newToken("enc")
	get := func(token, path string) (int, string) {
		req, _ := http.NewRequest("GET", h.srv.URL+"/v1/"+path, nil)
		if token != "" {
			req.Header.Set("X-Vault-Token", token)
		}
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, c := range []struct {
		token, path string
		want        int
		contains    string
	}{
		{h.token, "sys/pprof/goroutine?debug=1", 200, "goroutine profile"},
		{h.token, "sys/pprof/heap", 200, ""},
		{h.token, "sys/pprof/profile?seconds=1", 200, ""},
		{h.token, "sys/pprof", 200, "Types of profiles available"},
		{h.token, "sys/pprof/nope", 404, "unknown profile"},
		{h.token, "sys/pprof/profile?seconds=600", 400, "seconds must be"},
		{narrow, "sys/pprof/heap", 403, ""},
		{"", "sys/pprof/heap", 403, ""},
	} {
		before := len(h.audit.all())
		code, body := get(c.token, c.path)
		if code != c.want || !strings.Contains(body, c.contains) {
			t.Errorf("%s: %d %.120q, want %d with %q", c.path, code, body, c.want, c.contains)
		}
		if evs := h.audit.all(); len(evs) != before+1 || evs[len(evs)-1].Operation != "sys/pprof" {
			t.Errorf("%s: no sys/pprof event recorded", c.path)
		}
	}
}
