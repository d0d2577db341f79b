package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Device is the configuration of one sink, from the server config or
// from sys/audit/:name (replicated, so every node runs it).
type Device struct {
	Name        string `json:"name"`
	Type        string `json:"type"` // file, syslog or socket
	Description string `json:"description,omitempty"`
	Path        string `json:"file_path,omitempty"`   // file
	MaxBytes    int64  `json:"max_bytes,omitempty"`   // file: rotate past this size
	Keep        int    `json:"keep,omitempty"`        // file: rotated files kept
	Network     string `json:"socket_type,omitempty"` // syslog, socket: tcp, udp, unix
	Address     string `json:"address,omitempty"`     // syslog, socket
	Tag         string `json:"tag,omitempty"`         // syslog
}

var deviceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate checks a device and fills in defaults.
func (d *Device) Validate() error {
	if !deviceName.MatchString(d.Name) || strings.HasSuffix(d.Name, ".tmp") {
		return fmt.Errorf("invalid audit device name %q: use 1-64 letters, digits, '_', '-' or '.', not ending in .tmp", d.Name)
	}
	switch d.Type {
	case "file":
		if d.Path == "" {
			return errors.New(`a file audit device needs file_path`)
		}
		if !filepath.IsAbs(d.Path) {
			return fmt.Errorf("file_path %q must be absolute", d.Path)
		}
		if d.MaxBytes < 0 || d.Keep < 0 {
			return errors.New("max_bytes and keep must not be negative")
		}
		if d.Keep == 0 {
			d.Keep = 5
		}
	case "syslog":
		if d.Tag == "" {
			d.Tag = "keyraft"
		}
	case "socket":
		if d.Address == "" {
			return errors.New("a socket audit device needs address")
		}
		if d.Network == "" {
			d.Network = "tcp"
		}
		if d.Network != "tcp" && d.Network != "udp" && d.Network != "unix" {
			return fmt.Errorf("socket_type %q is not one of tcp, udp, unix", d.Network)
		}
	default:
		return fmt.Errorf("audit device type %q is not supported; use file, syslog or socket", d.Type)
	}
	return nil
}

// Open makes the device's sink.
func (d *Device) Open() (Sink, error) {
	switch d.Type {
	case "file":
		return NewFileSink(d.Path, d.MaxBytes, d.Keep)
	case "syslog":
		return NewSyslogSink(d.Network, d.Address, d.Tag)
	case "socket":
		return NewSocketSink(d.Network, d.Address, 5*time.Second), nil
	}
	return nil, fmt.Errorf("audit device type %q is not supported", d.Type)
}

// Devices runs one Follower per device and keeps the running set equal to
// the configured one (Sync). Each follower's cursor is a file named after
// the device in CursorDir, on this node only.
type Devices struct {
	Source    Source
	CursorDir string
	Logger    hclog.Logger

	mu      sync.Mutex
	running map[string]*runningDevice
	wg      sync.WaitGroup
}

type runningDevice struct {
	dev    Device
	cancel context.CancelFunc
	fol    *Follower
}

// Sync starts devices that are new or changed and stops those that are
// gone. A device that cannot be opened is logged and retried on the next
// Sync; it never affects requests.
func (ds *Devices) Sync(ctx context.Context, devs []Device) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.running == nil {
		ds.running = map[string]*runningDevice{}
	}
	if ds.Logger == nil {
		ds.Logger = hclog.NewNullLogger()
	}
	want := map[string]Device{}
	for _, d := range devs {
		want[d.Name] = d
	}
	for name, r := range ds.running {
		if d, ok := want[name]; !ok || !reflect.DeepEqual(d, r.dev) {
			r.cancel()
			delete(ds.running, name)
			ds.Logger.Info("audit device stopped", "device", name)
		}
	}
	for name, d := range want {
		if _, ok := ds.running[name]; ok {
			continue
		}
		sink, err := d.Open()
		if err != nil {
			ds.Logger.Warn("audit device cannot start; will retry", "device", name, "error", err)
			continue
		}
		if err := os.MkdirAll(ds.CursorDir, 0o700); err != nil {
			sink.Close()
			ds.Logger.Warn("audit device cursor directory", "error", err)
			continue
		}
		dctx, cancel := context.WithCancel(ctx)
		f := &Follower{Name: name, Source: ds.Source, Sink: sink,
			CursorPath: filepath.Join(ds.CursorDir, name), Logger: ds.Logger.With("device", name)}
		ds.running[name] = &runningDevice{dev: d, cancel: cancel, fol: f}
		ds.wg.Add(1)
		go func() {
			defer ds.wg.Done()
			defer sink.Close()
			if err := f.Run(dctx); err != nil {
				ds.Logger.Error("audit device stopped", "device", name, "error", err)
			}
		}()
		ds.Logger.Info("audit device started", "device", name, "type", d.Type)
	}
}

// Cursors reports each running device's last delivered seq.
func (ds *Devices) Cursors() map[string]uint64 {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	out := map[string]uint64{}
	for name, r := range ds.running {
		out[name] = r.fol.Cursor()
	}
	return out
}

// Stop stops every device and waits for them.
func (ds *Devices) Stop() {
	ds.mu.Lock()
	for name, r := range ds.running {
		r.cancel()
		delete(ds.running, name)
	}
	ds.mu.Unlock()
	ds.wg.Wait()
}
