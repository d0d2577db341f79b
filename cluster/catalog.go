package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/plugins/catalog"
	"github.com/keyraft/keyraft/store"
)

// The plugin catalog is replicated state: an operator registers a plugin
// once and every node may run it, each checking the binary's SHA-256
// before every start. Records live at sys/plugins/catalog/<type>/<name>;
// a built-in plugin's record holds only its reload generation (the
// built-in entry itself is each node's own, see Config.BuiltinPlugins).

func pluginKey(typ, name string) string { return fsm.RecordPluginCatalog + typ + "/" + name }

// pluginCache keeps catalog entries by record key: the crypto backend of
// a key is looked up on every use. A built-in plugin's entry is cached
// with or without its record.
type pluginCache = store.Cache[*catalog.Entry]

func (n *Node) builtinPlugin(typ, name string) (catalog.Entry, bool) {
	for _, e := range n.cfg.BuiltinPlugins {
		if e.Type == typ && e.Name == name {
			return e, true
		}
	}
	return catalog.Entry{}, false
}

// PluginEntry returns the catalog entry typ/name as this node runs it. It
// returns catalog.ErrNotFound, ErrSealed or ErrNotReady.
func (n *Node) PluginEntry(typ, name string) (*catalog.Entry, error) {
	key := pluginKey(typ, name)
	_, applied := n.RaftIndexes()
	return n.plugins.Get(key, applied,
		func() (uint64, error) { return n.Revision(key) },
		func(rev uint64) (*catalog.Entry, uint64, error) {
			var rec *catalog.Entry
			if rev != 0 {
				b, r, err := n.Read(key)
				if err != nil {
					return nil, 0, err
				}
				if b != nil {
					rec = new(catalog.Entry)
					if err := json.Unmarshal(b, rec); err != nil {
						return nil, 0, fmt.Errorf("cluster: plugin record %s: %w", key, err)
					}
				}
				rev = r
			}
			e := rec
			if b, ok := n.builtinPlugin(typ, name); ok {
				bc := b
				if rec != nil {
					bc.Generation = rec.Generation
				}
				e = &bc
			}
			if e == nil {
				return nil, 0, fmt.Errorf("%w: %s plugin %q", catalog.ErrNotFound, typ, name)
			}
			return e, rev, nil
		})
}

// Plugins lists the catalog (built-in entries first), optionally of one
// type. It returns ErrSealed or ErrNotReady.
func (n *Node) Plugins(typ string) ([]catalog.Entry, error) {
	var out []catalog.Entry
	for _, b := range n.cfg.BuiltinPlugins {
		if typ == "" || b.Type == typ {
			e, err := n.PluginEntry(b.Type, b.Name)
			if err != nil {
				return nil, err
			}
			out = append(out, *e)
		}
	}
	names, err := n.List(fsm.RecordPluginCatalog)
	if err != nil {
		return nil, err
	}
	for _, tn := range names {
		t, name, _ := strings.Cut(tn, "/")
		if (typ != "" && t != typ) || catalog.IsBuiltin(t, name) {
			continue
		}
		e, err := n.PluginEntry(t, name)
		if errors.Is(err, catalog.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Builtin != out[j].Builtin {
			return out[i].Builtin
		}
		return out[i].Type+"/"+out[i].Name < out[j].Type+"/"+out[j].Name
	})
	return out, nil
}

// RegisterPlugin adds or replaces an operator's catalog entry through
// Raft. It returns an error wrapping catalog.ErrInvalid or
// catalog.ErrBuiltin, ErrSealed, or a commit error.
func (n *Node) RegisterPlugin(ctx context.Context, e catalog.Entry) error {
	e.Builtin = false
	if catalog.IsBuiltin(e.Type, e.Name) {
		return fmt.Errorf("%w: %s plugin %q ships with keyraft and cannot be registered over; pick another name", catalog.ErrBuiltin, e.Type, e.Name)
	}
	if err := e.Validate(); err != nil {
		return err
	}
	return n.updatePlugin(ctx, e.Type, e.Name, func(old *catalog.Entry) (*catalog.Entry, error) {
		if old != nil {
			e.Generation = old.Generation
		}
		return &e, nil
	})
}

// DeregisterPlugin removes an operator's catalog entry. Removing an entry
// that is not there is not an error (as in Vault). It returns
// catalog.ErrBuiltin, ErrSealed or a commit error.
func (n *Node) DeregisterPlugin(ctx context.Context, typ, name string) error {
	if catalog.IsBuiltin(typ, name) {
		return fmt.Errorf("%w: %s plugin %q cannot be deregistered", catalog.ErrBuiltin, typ, name)
	}
	return n.updatePlugin(ctx, typ, name, func(*catalog.Entry) (*catalog.Entry, error) { return nil, nil })
}

// ReloadPlugin makes every node restart the plugin typ/name (they see the
// new generation at its next use). It returns catalog.ErrNotFound,
// ErrSealed or a commit error.
func (n *Node) ReloadPlugin(ctx context.Context, typ, name string) error {
	if _, err := n.PluginEntry(typ, name); err != nil {
		return err
	}
	return n.updatePlugin(ctx, typ, name, func(old *catalog.Entry) (*catalog.Entry, error) {
		if old == nil { // a built-in's first reload
			old = &catalog.Entry{Name: name, Type: typ, Builtin: true}
		}
		c := *old
		c.Generation++
		return &c, nil
	})
}

// updatePlugin is a conditional read-modify-write of one catalog record;
// change returns nil to delete it.
func (n *Node) updatePlugin(ctx context.Context, typ, name string, change func(old *catalog.Entry) (*catalog.Entry, error)) error {
	key := pluginKey(typ, name)
	for attempt := 0; attempt < 8; attempt++ {
		b, rev, err := n.Read(key)
		if err != nil {
			return err
		}
		var old *catalog.Entry
		if b != nil {
			old = new(catalog.Entry)
			if err := json.Unmarshal(b, old); err != nil {
				return fmt.Errorf("cluster: plugin record %s: %w", key, err)
			}
		}
		next, err := change(old)
		if err != nil {
			return err
		}
		txn := &Txn{Expect: []fsm.Cond{{Key: key, Revision: rev}}}
		if next == nil {
			if old == nil {
				return nil
			}
			txn.Writes = []Write{{Key: key, Delete: true}}
		} else {
			v, err := json.Marshal(next)
			if err != nil {
				return err
			}
			txn.Writes = []Write{{Key: key, Value: v}}
		}
		_, err = n.Commit(ctx, txn)
		if errors.Is(err, fsm.ErrConflict) {
			continue
		}
		return err
	}
	return fmt.Errorf("cluster: plugin %s/%s: %w", typ, name, fsm.ErrConflict)
}
