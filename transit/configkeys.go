package transit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/store"
)

// keysConfig is the engine's key settings (Vault's transit/config/keys).
type keysConfig struct {
	// DisableUpsert stops encrypt from creating a missing key.
	DisableUpsert bool `json:"disable_upsert"`
}

// readKeysConfig reads the settings (the defaults when never written).
func (e *Engine) readKeysConfig() (keysConfig, error) {
	var c keysConfig
	raw, _, err := e.store.Read(fsm.RecordTransitConfigKeys)
	if err != nil || raw == nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("transit: the key settings record does not parse: %w", err)
	}
	return c, nil
}

// ReadKeysConfig handles GET transit/config/keys.
func (e *Engine) ReadKeysConfig() (*Response, error) {
	c, err := e.readKeysConfig()
	if err != nil {
		return nil, err
	}
	return ok(map[string]any{"disable_upsert": c.DisableUpsert}), nil
}

// WriteKeysConfig handles POST transit/config/keys. As in Vault, a field
// left out is its default: {} turns upsert back on.
func (e *Engine) WriteKeysConfig(ctx context.Context, in *Fields) (*Response, error) {
	var c keysConfig
	var err error
	if c.DisableUpsert, err = in.Bool("disable_upsert", false); err != nil {
		return nil, err
	}
	raw, _ := json.Marshal(c)
	if _, err := e.store.Commit(ctx, &store.Txn{Writes: []store.Write{{Key: fsm.RecordTransitConfigKeys, Value: raw}}}); err != nil {
		return nil, err
	}
	return ok(map[string]any{"disable_upsert": c.DisableUpsert}), nil
}

// upsertAllowed reports whether encrypt may create a missing key, or the
// 400 Vault answers when transit/config/keys disables it.
func (e *Engine) upsertAllowed() error {
	c, err := e.readKeysConfig()
	if err != nil {
		return err
	}
	if c.DisableUpsert {
		return badRequest("encryption key not found")
	}
	return nil
}
