package api

import (
	"errors"
	"net/http"
	"strings"
)

// SetNamespace makes every later request of c carry X-Vault-Namespace: ns
// (Vault's header), so that keys, policies and tokens are those of that
// namespace. "" (or "root") is the root namespace. It returns an error
// for a name that cannot be a header value. It is not safe to call while
// requests are in flight.
func (c *Client) SetNamespace(ns string) error {
	ns = strings.Trim(strings.TrimSpace(ns), "/")
	if strings.ContainsAny(ns, "\r\n") {
		return errors.New("invalid namespace: it contains a line break")
	}
	base := c.http.Transport
	if nt, ok := base.(*namespaceTransport); ok {
		base = nt.next
	}
	if ns == "" || ns == "root" {
		c.http.Transport = base
		return nil
	}
	c.http.Transport = &namespaceTransport{ns: ns, next: base}
	return nil
}

// namespaceTransport adds the namespace header to each request.
type namespaceTransport struct {
	ns   string
	next http.RoundTripper
}

func (t *namespaceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Vault-Namespace", t.ns)
	return t.next.RoundTrip(r)
}
