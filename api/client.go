package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultAddress is the server address used when neither KEYRAFT_ADDR nor
// VAULT_ADDR is set.
const DefaultAddress = "http://127.0.0.1:8200"

// DefaultTimeout is the Timeout set by DefaultConfig.
const DefaultTimeout = 60 * time.Second

// maxResponseSize bounds what the client reads from a server.
const maxResponseSize = 64 << 20

// Config says how to reach a server.
type Config struct {
	// Address is the server's URL, http:// or https://, as in
	// "https://kms.example.com:8200". A path is kept as a prefix, for
	// servers behind a proxy.
	Address string
	// Token is sent as X-Vault-Token. It may be empty for the requests that
	// need no token (seal status, init, unseal, health, leader).
	Token string
	// CACert is the path of a PEM file with the CA certificates to trust
	// for https; empty means the system's roots.
	CACert string
	// TLSSkipVerify turns off verification of the server's certificate.
	// For tests only.
	TLSSkipVerify bool
	// Timeout bounds each request, including reading the response; 0 means
	// no limit other than the context's.
	Timeout time.Duration
}

// DefaultConfig returns the configuration described by the environment, as
// read through getenv (os.Getenv in a program). Each setting is taken from
// the KEYRAFT_ variable, else from its VAULT_ counterpart, so that a shell
// set up for Vault works unchanged:
//
//	KEYRAFT_ADDR        VAULT_ADDR        Address (default DefaultAddress)
//	KEYRAFT_TOKEN       VAULT_TOKEN       Token
//	KEYRAFT_CACERT      VAULT_CACERT      CACert
//	KEYRAFT_SKIP_VERIFY VAULT_SKIP_VERIFY TLSSkipVerify (true, 1, ...; anything
//	                                      else leaves verification on)
//
// Timeout is DefaultTimeout.
func DefaultConfig(getenv func(string) string) Config {
	env := func(name string) string {
		if v := getenv("KEYRAFT_" + name); v != "" {
			return v
		}
		return getenv("VAULT_" + name)
	}
	c := Config{
		Address: env("ADDR"),
		Token:   strings.TrimSpace(env("TOKEN")),
		CACert:  env("CACERT"),
		Timeout: DefaultTimeout,
	}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	c.TLSSkipVerify, _ = strconv.ParseBool(env("SKIP_VERIFY"))
	return c
}

// Client talks to one keyraft (or Vault) server. It is safe for concurrent
// use.
type Client struct {
	base       *url.URL // ends in "/"
	token      string
	http       *http.Client
	onWarnings func([]string)
}

// New returns a client for the server described by c. It checks the
// address and reads the CA file, but does not contact the server.
func New(c Config) (*Client, error) {
	u, err := url.Parse(c.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invalid address %q: want a URL like https://127.0.0.1:8200", c.Address)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	if strings.ContainsAny(c.Token, "\r\n") {
		return nil, errors.New("invalid token: it contains a line break")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSSkipVerify}
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("reading the CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no PEM certificate in %s", c.CACert)
		}
		tlsConf.RootCAs = pool
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConf
	return &Client{
		base:  u,
		token: c.Token,
		http:  &http.Client{Transport: t, Timeout: c.Timeout},
	}, nil
}

// SetWarningHandler makes c call fn with the "warnings" of every
// successful answer that has any, before the call returns. Vault's
// envelope carries them beside the data ("key already exists; its
// settings were not changed", a compromised key, ignored parameters); the
// typed helpers return only the data, so this is how their caller sees
// them. nil stops it. It is not safe to call while requests are in
// flight.
func (c *Client) SetWarningHandler(fn func(warnings []string)) { c.onWarnings = fn }

// Address returns the server address the client uses.
func (c *Client) Address() string {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u.String()
}

// ResponseError is the error for an HTTP status other than 2xx.
type ResponseError struct {
	StatusCode int
	// Errors holds the messages of the server's {"errors": [...]} body;
	// empty when the body had none (or was not JSON).
	Errors []string
	// Method and Path are the request's ("POST", "transit/decrypt/app":
	// the path under /v1/, without the query), to tell what was refused.
	Method, Path string
}

// Error returns the messages joined by "; " on one line, then the status:
// "permission denied (status 403)". Without messages it uses the status
// text: "service unavailable (status 503)".
func (e *ResponseError) Error() string {
	msg := oneLine(strings.Join(e.Errors, "; "))
	if msg == "" {
		msg = strings.ToLower(http.StatusText(e.StatusCode))
	}
	if msg == "" {
		msg = "unexpected response"
	}
	return fmt.Sprintf("%s (status %d)", msg, e.StatusCode)
}

// Do sends one request and decodes the answer. path is relative to /v1/
// ("sys/seal-status", "transit/keys/k?version=2"); a leading "/" or "/v1/"
// is dropped. method may be "LIST", sent as is. body, when not nil, is sent
// as JSON. Do sends the token as X-Vault-Token and X-Vault-Request: true.
//
// A 2xx response with a body is decoded into out when out is not nil (a
// 204 has no body). Any other status gives a *ResponseError. Transport
// errors are returned as they come from net/http.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	status, data, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return requestError(method, path, responseError(status, data))
	}
	c.warnings(data)
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: cannot decode the response: %w", method, path, err)
	}
	return nil
}

// send does the request and returns the status and the body, whatever the
// status.
func (c *Client) send(ctx context.Context, method, path string, body any) (int, []byte, error) {
	if method == "" || strings.ContainsAny(method, " \t\r\n") {
		return 0, nil, fmt.Errorf("invalid method %q", method)
	}
	path = strings.TrimPrefix(path, "/")
	path = strings.TrimPrefix(path, "v1/")
	ref, err := url.Parse("v1/" + path)
	if err != nil {
		return 0, nil, fmt.Errorf("invalid path %q", path)
	}
	u := c.base.ResolveReference(ref)

	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: cannot encode the request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Vault-Token", c.token)
	}
	req.Header.Set("X-Vault-Request", "true")
	req.Header.Set("User-Agent", "keyraft-api")

	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the response: %w", method, path, err)
	}
	if len(data) > maxResponseSize {
		return 0, nil, fmt.Errorf("%s %s: the response is larger than %d MiB", method, path, maxResponseSize>>20)
	}
	return resp.StatusCode, data, nil
}

// oneLine turns control characters (line breaks, escapes) into spaces and
// collapses runs of spaces, so that a server's message prints as one line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// warnings hands the warnings of a successful answer's body to the
// warning handler.
func (c *Client) warnings(body []byte) {
	if c.onWarnings == nil || len(body) == 0 {
		return
	}
	var w struct {
		Warnings []string `json:"warnings"`
	}
	if json.Unmarshal(body, &w) == nil && len(w.Warnings) > 0 {
		c.onWarnings(w.Warnings)
	}
}

// requestError records the request that a *ResponseError answered.
func requestError(method, path string, err error) error {
	var re *ResponseError
	if errors.As(err, &re) {
		path = strings.TrimPrefix(strings.TrimPrefix(path, "/"), "v1/")
		path, _, _ = strings.Cut(path, "?")
		if p, err := url.PathUnescape(path); err == nil {
			path = p
		}
		re.Method, re.Path = method, path
	}
	return err
}

func responseError(status int, body []byte) error {
	var e struct {
		Errors []string `json:"errors"`
	}
	_ = json.Unmarshal(body, &e) // not JSON: no messages
	var msgs []string
	for _, m := range e.Errors {
		if m = strings.TrimSpace(m); m != "" {
			msgs = append(msgs, m)
		}
	}
	return &ResponseError{StatusCode: status, Errors: msgs}
}

// envelope is Vault's response body: {"request_id": …, "data": {…},
// "warnings": […]}. The typed helpers keep only the data.
type envelope struct {
	RequestID string          `json:"request_id"`
	Data      json.RawMessage `json:"data"`
	Warnings  []string        `json:"warnings"`
}

// data does a request whose answer carries {"data": …} and decodes the data
// into out.
func (c *Client) data(ctx context.Context, method, path string, body, out any) error {
	var env envelope
	if err := c.Do(ctx, method, path, body, &env); err != nil {
		return err
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return fmt.Errorf("%s %s: the response has no data", method, path)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%s %s: cannot decode the response: %w", method, path, err)
	}
	return nil
}

// Stream GETs path and returns the response body for the caller to read
// as it arrives (audit export and follow streams). It has no overall
// timeout: cancel ctx to stop. A non-2xx answer is a *ResponseError.
func (c *Client) Stream(ctx context.Context, path string) (io.ReadCloser, error) {
	path = strings.TrimPrefix(strings.TrimPrefix(path, "/"), "v1/")
	ref, err := url.Parse("v1/" + path)
	if err != nil {
		return nil, fmt.Errorf("invalid path %q", path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.ResolveReference(ref).String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("X-Vault-Token", c.token)
	}
	req.Header.Set("X-Vault-Request", "true")
	req.Header.Set("User-Agent", "keyraft-api")
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, requestError(http.MethodGet, path, responseError(resp.StatusCode, data))
	}
	return resp.Body, nil
}

// Upload POSTs the raw bytes of body to path (snapshot restore) and
// returns nil on a 2xx answer, a *ResponseError otherwise. It has no
// overall timeout: cancel ctx to stop.
func (c *Client) Upload(ctx context.Context, path string, body io.Reader) error {
	path = strings.TrimPrefix(strings.TrimPrefix(path, "/"), "v1/")
	ref, err := url.Parse("v1/" + path)
	if err != nil {
		return fmt.Errorf("invalid path %q", path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.ResolveReference(ref).String(), body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("X-Vault-Token", c.token)
	}
	req.Header.Set("X-Vault-Request", "true")
	req.Header.Set("Content-Type", "application/octet-stream")
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return requestError(http.MethodPost, path, responseError(resp.StatusCode, data))
	}
	c.warnings(data)
	return nil
}
