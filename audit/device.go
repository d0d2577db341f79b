package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
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
	// Framing (socket): "acked" (default over tcp and unix: the collector
	// acknowledges what it stored and says where to resume) or "lines"
	// (plain JSON lines, for any line collector; the only one over udp).
	Framing string `json:"framing,omitempty"`
	// WriteTimeout (socket, as in Vault): how long a dial, a write or a
	// wait for acknowledgements may take before the connection is reset
	// and retried (default 10s).
	WriteTimeout string `json:"write_timeout,omitempty"`
	// Local makes a network device node-local: every node delivers the
	// whole log to it. Otherwise a socket or syslog device is delivered by
	// the leader alone. File devices are always node-local: each node
	// writes the whole log to the file on its own disk.
	Local bool `json:"local,omitempty"`
}

// ClusterWide reports whether one node at a time (the leader) delivers
// the device, resuming where the last deliverer stopped.
// A local syslog daemon and a unix socket are reachable only on the
// node's own host, so they are node-local too.
func (d *Device) ClusterWide() bool {
	switch {
	case d.Type == "file", d.Local, d.Network == "unix", d.Type == "syslog" && d.Network == "":
		return false
	}
	return true
}

// framing is the device's framing; a record stored before framing
// existed (empty) keeps the plain lines it always had.
func (d *Device) framing() string {
	if d.Framing == "" {
		return "lines"
	}
	return d.Framing
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
		if d.WriteTimeout != "" {
			if t, err := time.ParseDuration(d.WriteTimeout); err != nil || t < time.Millisecond || t > time.Hour {
				return fmt.Errorf("write_timeout %q must be a duration between 1ms and 1h, such as 10s", d.WriteTimeout)
			}
		}
		if d.Framing == "" {
			d.Framing = "acked"
			if d.Network == "udp" {
				d.Framing = "lines"
			}
		}
		switch {
		case d.Framing != "acked" && d.Framing != "lines":
			return fmt.Errorf("framing %q is not one of acked, lines", d.Framing)
		case d.Framing == "acked" && d.Network == "udp":
			return errors.New(`framing "acked" needs a stream socket (tcp or unix); udp sends lines`)
		}
	default:
		return fmt.Errorf("audit device type %q is not supported; use file, syslog or socket", d.Type)
	}
	if d.Type != "socket" && (d.Framing != "" || d.WriteTimeout != "") {
		return fmt.Errorf("framing and write_timeout are options of socket devices, not %s", d.Type)
	}
	return nil
}

// Open makes the device's sink.
func (d *Device) Open(node string) (Sink, error) {
	switch d.Type {
	case "file":
		return NewFileSink(d.Path, d.MaxBytes, d.Keep)
	case "syslog":
		return NewSyslogSink(d.Network, d.Address, d.Tag)
	case "socket":
		timeout, _ := time.ParseDuration(d.WriteTimeout)
		return NewSocketSink(SocketSinkConfig{Network: d.Network, Address: d.Address, Acked: d.framing() == "acked",
			Device: d.Name, Node: node, Timeout: timeout}), nil
	}
	return nil, fmt.Errorf("audit device type %q is not supported", d.Type)
}

// Devices runs one Follower per device and keeps the running set equal to
// the configured one (Sync). A cluster-wide device runs on every node but
// delivers only while IsLeader says so; node-local devices deliver on
// every node.
type Devices struct {
	Source Source
	// CursorDir holds node-local cursors, a file per device.
	CursorDir string
	// Node is this node's ID (named to collectors).
	Node string
	// IsLeader says whether this node delivers cluster-wide devices now
	// (nil: always).
	IsLeader func() bool
	// Committed returns a cluster-wide device's cursor as committed
	// through the log by whichever node delivered it last, for sinks that
	// cannot say where they stand (syslog, plain lines).
	Committed func(device string) (Position, bool)
	Logger    hclog.Logger

	mu      sync.Mutex
	running map[string]*runningDevice
	stopped bool
	wg      sync.WaitGroup
}

type runningDevice struct {
	dev    Device
	cancel context.CancelFunc
	fol    *Follower
	done   chan struct{}
}

// DeviceStatus is one running device and its follower's status.
type DeviceStatus struct {
	Device Device
	SinkStatus
}

// clusterCursor resumes a cluster-wide device from the further of this
// node's cursor and the one committed by the last deliverer.
type clusterCursor struct {
	local     FileCursor
	name      string
	committed func(string) (Position, bool)
}

func (c clusterCursor) Load() (Position, error) {
	p, err := c.local.Load()
	if err != nil {
		p = Position{}
	}
	if c.committed != nil {
		if q, ok := c.committed(c.name); ok && q.Seq > p.Seq {
			return q, nil
		}
	}
	return p, err
}

func (c clusterCursor) Save(p Position) error { return c.local.Save(p) }

// Sync starts devices that are new or changed and stops those that are
// gone. A device that cannot be opened is logged and retried on the next
// Sync; it never affects requests.
func (ds *Devices) Sync(ctx context.Context, devs []Device) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.stopped {
		return
	}
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
	var gone []*runningDevice
	for name, r := range ds.running {
		if d, ok := want[name]; !ok || !reflect.DeepEqual(d, r.dev) {
			r.cancel()
			delete(ds.running, name)
			gone = append(gone, r)
			ds.Logger.Info("audit device stopped", "device", name)
		}
	}
	// A changed device's new sink must not start while the old one may
	// still be writing the same file or stream.
	for _, r := range gone {
		<-r.done
	}
	for name, d := range want {
		if _, ok := ds.running[name]; ok {
			continue
		}
		if err := os.MkdirAll(ds.CursorDir, 0o700); err != nil {
			ds.Logger.Warn("audit device cursor directory", "error", err)
			continue
		}
		sink, err := d.Open(ds.Node)
		if err != nil {
			ds.Logger.Warn("audit device cannot start; will retry", "device", name, "error", err)
			continue
		}
		dctx, cancel := context.WithCancel(ctx)
		var cursor CursorStore = FileCursor(filepath.Join(ds.CursorDir, name))
		f := &Follower{Name: name, Source: ds.Source, Sink: sink, Logger: ds.Logger.With("device", name)}
		if d.Type == "syslog" || d.Network == "udp" {
			f.MaxBatch = 1 // a message at a time: a failure repeats none that went out
		}
		if d.ClusterWide() {
			cursor = clusterCursor{local: cursor.(FileCursor), name: name, committed: ds.Committed}
			f.Active = ds.IsLeader
		}
		f.Cursor = cursor
		r := &runningDevice{dev: d, cancel: cancel, fol: f, done: make(chan struct{})}
		ds.running[name] = r
		ds.wg.Add(1)
		go func() {
			defer ds.wg.Done()
			defer close(r.done)
			defer sink.Close()
			if err := f.Run(dctx); err != nil {
				ds.Logger.Error("audit device stopped", "device", name, "error", err)
			}
		}()
		ds.Logger.Info("audit device started", "device", name, "type", d.Type, "cluster_wide", d.ClusterWide())
	}
}

// Statuses reports every running device's delivery, by name.
func (ds *Devices) Statuses() []DeviceStatus {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	out := make([]DeviceStatus, 0, len(ds.running))
	for _, r := range ds.running {
		out = append(out, DeviceStatus{Device: r.dev, SinkStatus: r.fol.Status()})
	}
	slices.SortFunc(out, func(a, b DeviceStatus) int { return strings.Compare(a.Device.Name, b.Device.Name) })
	return out
}

// Stop stops every device and waits for them.
func (ds *Devices) Stop() {
	ds.mu.Lock()
	ds.stopped = true
	for name, r := range ds.running {
		r.cancel()
		delete(ds.running, name)
	}
	ds.mu.Unlock()
	ds.wg.Wait()
}
