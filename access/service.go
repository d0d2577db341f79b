package access

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/store"
)

// Config configures a Service.
type Config struct {
	// Store is the replicated state the records live in (the node).
	Store store.Store
	// NodeID names the node in the audit events of tidy passes.
	NodeID string
	Logger hclog.Logger
}

// Validate reports a Config that cannot work.
func (c *Config) Validate() error {
	if c.Store == nil {
		return errors.New("access: a store is required")
	}
	return nil
}

// Service is access control over a Store: tokens (create, look up, renew,
// revoke, use, tidy), ACL policies, namespaces, grants, certificate roles
// and break-glass sessions. It holds no state of its own beyond the
// store's records (and caches of them), so every node's Service answers
// the same.
type Service struct {
	st     store.Store
	nodeID string
	log    hclog.Logger
	cache  caches
}

// New returns the Service of cfg.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	svc := &Service{st: cfg.Store, nodeID: cfg.NodeID, log: cfg.Logger}
	svc.cache.init()
	return svc, nil
}

// The errors of the store that access passes on, and its own.
var (
	// ErrInvalidRequest: the request cannot be served as asked (the
	// message says why); the same value as cluster.ErrInvalidRequest.
	ErrInvalidRequest = store.ErrInvalidRequest
	// ErrPermissionDenied: no such token, or not for this caller.
	ErrPermissionDenied = store.ErrPermissionDenied
)

// NewID is a random identifier in the UUID layout (namespace and cluster
// ids).
func NewID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
}
