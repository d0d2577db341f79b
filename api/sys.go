package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// SealStatus is the answer of sys/seal-status and sys/unseal.
type SealStatus struct {
	Type        string `json:"type"` // seal type: "shamir"
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	T           int    `json:"t"`        // threshold: shares needed to unseal
	N           int    `json:"n"`        // shares in total
	Progress    int    `json:"progress"` // shares given so far
	Nonce       string `json:"nonce"`    // identifies the unseal attempt under way
	Version     string `json:"version"`
	ClusterName string `json:"cluster_name,omitempty"`
	ClusterID   string `json:"cluster_id,omitempty"`
	StorageType string `json:"storage_type,omitempty"`
}

// InitRequest is the body of sys/init.
type InitRequest struct {
	SecretShares    int `json:"secret_shares,omitempty"`
	SecretThreshold int `json:"secret_threshold,omitempty"`
	// RecoveryShares and RecoveryThreshold apply to a node with an
	// auto-unseal seal (PKCS#11).
	RecoveryShares    int `json:"recovery_shares,omitempty"`
	RecoveryThreshold int `json:"recovery_threshold,omitempty"`
}

// InitResponse is the answer of sys/init: the unseal key shares, in hex
// and base64, and the initial root token. They are shown once.
type InitResponse struct {
	Keys               []string `json:"keys"`
	KeysBase64         []string `json:"keys_base64"`
	RecoveryKeys       []string `json:"recovery_keys,omitempty"`
	RecoveryKeysBase64 []string `json:"recovery_keys_base64,omitempty"`
	RootToken          string   `json:"root_token"`
}

// Health is the answer of sys/health.
type Health struct {
	Initialized   bool   `json:"initialized"`
	Sealed        bool   `json:"sealed"`
	Standby       bool   `json:"standby"`
	ServerTimeUTC int64  `json:"server_time_utc"`
	Version       string `json:"version"`
	ClusterName   string `json:"cluster_name,omitempty"`
	ClusterID     string `json:"cluster_id,omitempty"`
}

// Leader is the answer of sys/leader.
type Leader struct {
	HAEnabled            bool   `json:"ha_enabled"`
	IsSelf               bool   `json:"is_self"`
	LeaderAddress        string `json:"leader_address"`
	LeaderClusterAddress string `json:"leader_cluster_address"`
}

// SealStatus returns the seal status. It needs no token and works on a
// sealed server.
func (c *Client) SealStatus(ctx context.Context) (*SealStatus, error) {
	s := new(SealStatus)
	if err := c.sys(ctx, "GET", "sys/seal-status", nil, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Init initializes a new server: it creates the root key, splits its seal
// key into req.SecretShares shares of which req.SecretThreshold unseal, and
// returns them with the root token.
func (c *Client) Init(ctx context.Context, req InitRequest) (*InitResponse, error) {
	r := new(InitResponse)
	if err := c.sys(ctx, "PUT", "sys/init", req, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Unseal gives the server one unseal key share (hex or base64) and returns
// the seal status after it.
func (c *Client) Unseal(ctx context.Context, key string) (*SealStatus, error) {
	s := new(SealStatus)
	if err := c.sys(ctx, "PUT", "sys/unseal", map[string]string{"key": key}, s); err != nil {
		return nil, err
	}
	return s, nil
}

// UnsealMigrate gives one share of a seal migration (the old seal's
// unseal shares, or the recovery shares when leaving an HSM seal).
func (c *Client) UnsealMigrate(ctx context.Context, key string) (*SealStatus, error) {
	s := new(SealStatus)
	if err := c.sys(ctx, "PUT", "sys/unseal", map[string]any{"key": key, "migrate": true}, s); err != nil {
		return nil, err
	}
	return s, nil
}

// UnsealReset discards the shares given so far.
func (c *Client) UnsealReset(ctx context.Context) (*SealStatus, error) {
	s := new(SealStatus)
	if err := c.sys(ctx, "PUT", "sys/unseal", map[string]bool{"reset": true}, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Seal seals the server. It needs a token allowed to do so.
func (c *Client) Seal(ctx context.Context) error {
	return c.Do(ctx, "PUT", "sys/seal", nil, nil)
}

// Health returns the server's health. Vault's sys/health reports a sealed,
// uninitialized or standby server through the status code (503, 501, 429,
// …) with the same body; Health decodes that body whatever the status.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	status, data, err := c.send(ctx, "GET", "sys/health", nil)
	if err != nil {
		return nil, err
	}
	h := new(Health)
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) == nil && probe["initialized"] != nil {
		if err := json.Unmarshal(data, h); err != nil {
			return nil, fmt.Errorf("GET sys/health: cannot decode the response: %w", err)
		}
		return h, nil
	}
	if status < 200 || status > 299 {
		return nil, requestError("GET", "sys/health", responseError(status, data))
	}
	return nil, fmt.Errorf("GET sys/health: the response is not a health status")
}

// Leader returns who the server thinks leads its cluster.
func (c *Client) Leader(ctx context.Context) (*Leader, error) {
	l := new(Leader)
	if err := c.sys(ctx, "GET", "sys/leader", nil, l); err != nil {
		return nil, err
	}
	return l, nil
}

// sys does a request to a sys/ endpoint. Vault answers those with their
// fields at the top level of the body; some servers wrap them in {"data":
// …}. Both are accepted: the top level is decoded, then data over it.
func (c *Client) sys(ctx context.Context, method, path string, body, out any) error {
	var raw json.RawMessage
	if err := c.Do(ctx, method, path, body, &raw); err != nil {
		return err
	}
	if len(raw) == 0 {
		return fmt.Errorf("%s %s: the response is empty", method, path)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: cannot decode the response: %w", method, path, err)
	}
	var env envelope
	if json.Unmarshal(raw, &env) == nil && bytes.HasPrefix(env.Data, []byte("{")) {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("%s %s: cannot decode the response: %w", method, path, err)
		}
	}
	return nil
}
