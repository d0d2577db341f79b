package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/syslog"
	"net"
	"sync"
	"time"
)

// The acknowledged socket framing ("acked"), spoken by keyraft's socket
// sink and by `keyraft audit receive` (docs/audit.md has the details):
//
//	sink → collector   {"keyraft_audit":1,"device":"NAME","node":"ID","new_log":false}
//	collector → sink   {"last_seq":N,"last_hash":"H"}     what it has stored
//	sink → collector   the events after N, one JSON line each
//	collector → sink   {"ack":S,"hash":"H"}               stored through S
//
// The collector stores an event only when its seq follows the last one
// it stored, so a resend (after a reconnect, or from two nodes during a
// leader change) is never stored twice.
type helloMsg struct {
	Version int    `json:"keyraft_audit"`
	Device  string `json:"device"`
	Node    string `json:"node,omitempty"`
	NewLog  bool   `json:"new_log,omitempty"`
}

type helloAnswer struct {
	LastSeq  *uint64 `json:"last_seq"`
	LastHash string  `json:"last_hash"`
}

type ackMsg struct {
	Ack  *uint64 `json:"ack"`
	Hash string  `json:"hash"`
}

// maxControlLine bounds a hello answer or an acknowledgement.
const maxControlLine = 4096

// SocketSinkConfig configures a SocketSink.
type SocketSinkConfig struct {
	Network, Address string // "tcp", "127.0.0.1:9090"; "unix", "/run/collector.sock"; "udp"
	// Acked selects the acknowledged framing; false sends plain JSON lines
	// (any line collector: Vector, Fluent Bit, nc), whose cursor moves on
	// a write the kernel accepted.
	Acked bool
	// Device and Node name the stream in the hello.
	Device, Node string
	// Timeout bounds a dial, the hello answer, one write, and a wait for
	// acknowledgements with the window full (default 10 s).
	Timeout time.Duration
	// Window bounds the bytes sent and not yet acknowledged (default 4 MiB).
	Window int
}

// SocketSink writes events to a TCP, UDP or unix socket. A peer that
// stops reading costs at most the window and the kernel's buffers: after
// Timeout the connection is reset (not closed with data queued), and the
// follower reconnects with backoff and resumes from what the collector
// says it stored.
type SocketSink struct {
	cfg SocketSinkConfig

	mu       sync.Mutex
	conn     net.Conn
	stored   Position
	inflight []sentBatch
	bytes    int       // sent, not acknowledged
	dead     error     // the reader's error: the connection is over
	ackAt    time.Time // when the collector last confirmed progress (or we connected)
	signal   chan struct{}
	newLog   bool
}

type sentBatch struct {
	last  uint64
	bytes int
}

// NewSocketSink returns a sink that dials lazily: with the acknowledged
// framing it is a Positioner, Acker and Restarter, with plain lines only
// a Sink.
func NewSocketSink(cfg SocketSinkConfig) Sink {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Window == 0 {
		cfg.Window = 4 << 20
	}
	s := &SocketSink{cfg: cfg, signal: make(chan struct{}, 1)}
	if cfg.Acked {
		return ackedSocket{s}
	}
	return linesSocket{s}
}

// reset drops the connection at once: a TCP reset discards what the
// kernel still queues for a peer that does not read.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (s *SocketSink) dropLocked() {
	if s.conn != nil {
		reset(s.conn)
		s.conn = nil
	}
	s.inflight, s.bytes = nil, 0
}

// Position implements Positioner for the acknowledged framing: it
// (re)connects and asks the collector what it has stored. A plain-lines
// sink is not a Positioner; see Follower.Cursor.
func (s *SocketSink) Position() (Position, error) {
	if !s.cfg.Acked {
		return Position{}, errors.New("audit: a plain-lines socket sink has no position")
	}
	s.mu.Lock()
	s.dropLocked()
	newLog := s.newLog
	s.mu.Unlock()
	c, err := net.DialTimeout(s.cfg.Network, s.cfg.Address, s.cfg.Timeout)
	if err != nil {
		return Position{}, err
	}
	hello, _ := json.Marshal(helloMsg{Version: 1, Device: s.cfg.Device, Node: s.cfg.Node, NewLog: newLog})
	c.SetDeadline(time.Now().Add(s.cfg.Timeout))
	if _, err := c.Write(append(hello, '\n')); err != nil {
		reset(c)
		return Position{}, err
	}
	r := bufio.NewReaderSize(c, maxControlLine)
	line, err := r.ReadSlice('\n')
	if err != nil {
		reset(c)
		if errors.Is(err, bufio.ErrBufferFull) {
			err = errors.New("answer line too long")
		}
		return Position{}, fmt.Errorf("audit: collector %s did not answer the hello (is it a plain line collector? then set framing = \"lines\"): %w", s.cfg.Address, err)
	}
	var ans helloAnswer
	if err := json.Unmarshal(line, &ans); err != nil || ans.LastSeq == nil {
		reset(c)
		return Position{}, fmt.Errorf("audit: collector %s answered the hello with %q, not {\"last_seq\":…}", s.cfg.Address, clip(string(bytes.TrimSpace(line)), 200))
	}
	c.SetDeadline(time.Time{})
	p := Position{Seq: *ans.LastSeq, Hash: ans.LastHash}
	s.mu.Lock()
	s.conn, s.stored, s.dead, s.newLog, s.ackAt = c, p, nil, false, time.Now()
	s.mu.Unlock()
	go s.readAcks(c, r)
	return p, nil
}

// readAcks moves Stored as acknowledgements arrive, until the connection
// ends.
func (s *SocketSink) readAcks(c net.Conn, r *bufio.Reader) {
	var err error
	for {
		var line []byte
		if line, err = r.ReadSlice('\n'); err != nil {
			break
		}
		var a ackMsg
		if json.Unmarshal(line, &a) != nil || a.Ack == nil {
			err = fmt.Errorf("audit: collector sent %q, not an acknowledgement", clip(string(bytes.TrimSpace(line)), 200))
			break
		}
		s.mu.Lock()
		if s.conn == c {
			if *a.Ack > s.stored.Seq {
				s.stored = Position{Seq: *a.Ack, Hash: a.Hash}
			}
			s.ackAt = time.Now()
			// Batches the collector already had count as stored too.
			for len(s.inflight) > 0 && s.inflight[0].last <= *a.Ack {
				s.bytes -= s.inflight[0].bytes
				s.inflight = s.inflight[1:]
			}
		}
		s.mu.Unlock()
		s.poke()
	}
	s.mu.Lock()
	if s.conn == c {
		s.dead = fmt.Errorf("audit: connection to collector %s ended: %w", s.cfg.Address, err)
	}
	s.mu.Unlock()
	s.poke()
}

func (s *SocketSink) poke() {
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// Broken reports a connection that ended with events unacknowledged.
func (s *SocketSink) Broken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dead != nil && s.bytes > 0
}

// Stored implements Acker: what the collector confirmed.
func (s *SocketSink) Stored() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored
}

// Write implements Sink.
func (s *SocketSink) Write(b *Batch) error {
	if !s.cfg.Acked {
		return s.writeLines(b)
	}
	deadline := time.Now().Add(s.cfg.Timeout)
	s.mu.Lock()
	for {
		switch {
		case s.conn == nil:
			s.mu.Unlock()
			return errors.New("audit: not connected to the collector")
		case s.dead != nil:
			err := s.dead
			s.dropLocked()
			s.mu.Unlock()
			return err
		}
		if s.bytes > 0 && time.Since(s.ackAt) > s.cfg.Timeout {
			// A collector that stopped confirming: reset rather than
			// queue more in kernel buffers; the reconnect resumes from
			// what it says it stored.
			n := s.bytes
			s.dropLocked()
			s.mu.Unlock()
			return fmt.Errorf("audit: collector %s acknowledged nothing for %v with %d bytes unacknowledged", s.cfg.Address, s.cfg.Timeout, n)
		}
		if s.bytes == 0 || s.bytes+len(b.Lines) <= s.cfg.Window {
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			s.dropLocked()
			s.mu.Unlock()
			return fmt.Errorf("audit: collector %s acknowledged nothing for %v with %d bytes unacknowledged", s.cfg.Address, s.cfg.Timeout, s.bytes)
		}
		s.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-s.signal:
		case <-t.C:
		}
		t.Stop()
		s.mu.Lock()
	}
	c := s.conn
	s.inflight = append(s.inflight, sentBatch{last: b.Last, bytes: len(b.Lines)})
	s.bytes += len(b.Lines)
	s.mu.Unlock()
	c.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	if _, err := c.Write(b.Lines); err != nil {
		s.mu.Lock()
		if s.conn == c {
			s.dropLocked()
		}
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *SocketSink) writeLines(b *Batch) error {
	if s.conn == nil {
		c, err := net.DialTimeout(s.cfg.Network, s.cfg.Address, s.cfg.Timeout)
		if err != nil {
			return err
		}
		s.conn = c
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	var err error
	if s.cfg.Network == "udp" {
		// One datagram per event.
		for line := range bytes.Lines(b.Lines) {
			if _, err = s.conn.Write(line); err != nil {
				break
			}
		}
	} else {
		_, err = s.conn.Write(b.Lines)
	}
	if err != nil {
		reset(s.conn)
		s.conn = nil
	}
	return err
}

// Restart implements Restarter: the next hello tells the collector that
// a new log begins, so it keeps the old one apart.
func (s *SocketSink) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Acked {
		s.newLog = true
		s.dropLocked()
	}
	return nil
}

// Close implements Sink.
func (s *SocketSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked()
	return nil
}

type ackedSocket struct{ *SocketSink }
type linesSocket struct{ s *SocketSink }

func (l linesSocket) Write(b *Batch) error { return l.s.Write(b) }
func (l linesSocket) Close() error         { return l.s.Close() }

// SyslogSink sends each event as one JSON message to syslog (the local
// daemon when network is "", or a remote one over "udp"/"tcp"). Syslog
// has no acknowledgements: the cursor moves when the message is written.
type SyslogSink struct{ w *syslog.Writer }

// NewSyslogSink connects to syslog with the given tag (facility AUTH).
func NewSyslogSink(network, addr, tag string) (*SyslogSink, error) {
	w, err := syslog.Dial(network, addr, syslog.LOG_AUTH|syslog.LOG_INFO, tag)
	if err != nil {
		return nil, fmt.Errorf("audit: connecting to syslog: %w", err)
	}
	return &SyslogSink{w: w}, nil
}

// Write implements Sink.
func (s *SyslogSink) Write(b *Batch) error {
	for line := range bytes.Lines(b.Lines) {
		if err := s.w.Info(string(bytes.TrimSuffix(line, []byte("\n")))); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Sink.
func (s *SyslogSink) Close() error { return s.w.Close() }
