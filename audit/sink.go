package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Sink delivers committed events somewhere outside the cluster (a file,
// syslog, a socket). Write gets events in seq order and either delivers
// all of them or returns an error; it is retried from the first event it
// did not confirm.
type Sink interface {
	Write(events []*Event) error
	Close() error
}

// Source is the replicated log a sink reads: a node's committed events.
type Source interface {
	// AuditHeadSeq is the newest committed seq.
	AuditHeadSeq() uint64
	// AuditEvents calls fn for each event from fromSeq on, in order.
	AuditEvents(fromSeq uint64, fn func(e *Event) error) error
}

// Follower feeds one sink from the replicated log with its own durable
// cursor, so a slow, broken or hanging sink delays nobody but itself, and
// after an outage it resumes with the first event it has not delivered.
type Follower struct {
	Name   string
	Source Source
	Sink   Sink
	// CursorPath is a node-local file holding the last delivered seq.
	CursorPath string
	// Poll is how often to look for new events (default 100ms).
	Poll time.Duration
	// MaxBatch bounds one Write (default 256).
	MaxBatch int
	Logger   hclog.Logger

	mu       sync.Mutex
	cursor   uint64
	lastHash string // hash of the last delivered event (loop-owned)
}

// Cursor returns the last delivered seq.
func (f *Follower) Cursor() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cursor
}

// Run delivers events until ctx ends. Sink errors are retried with
// backoff (up to 5 s between tries); they never stop the follower.
func (f *Follower) Run(ctx context.Context) error {
	if f.Poll == 0 {
		f.Poll = 100 * time.Millisecond
	}
	if f.MaxBatch == 0 {
		f.MaxBatch = 256
	}
	if f.Logger == nil {
		f.Logger = hclog.NewNullLogger()
	}
	cur, lastHash, err := readCursor(f.CursorPath)
	if err != nil {
		return err
	}
	if r, ok := f.Sink.(interface{ LastSeq() uint64 }); ok && r.LastSeq() > cur {
		cur, lastHash = r.LastSeq(), "" // the sink got further than the cursor before a crash
	}
	f.lastHash = lastHash
	f.mu.Lock()
	f.cursor = cur
	f.mu.Unlock()
	backoff := time.Duration(0)
	for {
		delay := f.Poll
		if backoff > 0 {
			delay = backoff
		}
		if head := f.Source.AuditHeadSeq(); head < cur {
			cur = f.restart(cur, "the log is shorter than what this sink delivered")
		}
		if f.Source.AuditHeadSeq() > cur || backoff > 0 {
			last, n, err := f.deliver(cur)
			if errors.Is(err, errChainReplaced) {
				cur = f.restart(cur, "the next event does not follow the last one delivered")
				continue
			}
			if n > 0 {
				cur = last
			}
			switch {
			case err != nil:
				backoff = min(max(2*backoff, 50*time.Millisecond), 5*time.Second)
				f.Logger.Warn("audit sink failing; will retry", "sink", f.Name, "cursor", cur, "error", err)
				delay = backoff
			case n > 0:
				backoff = 0
				continue // more may be waiting
			default:
				backoff = 0
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// deliver writes up to MaxBatch events after cur and advances the
// cursor; it returns the last seq delivered and how many events were.
func (f *Follower) deliver(cur uint64) (uint64, int, error) {
	var batch []*Event
	errFull := errors.New("full")
	err := f.Source.AuditEvents(cur+1, func(e *Event) error {
		batch = append(batch, e)
		if len(batch) >= f.MaxBatch {
			return errFull
		}
		return nil
	})
	if err != nil && err != errFull {
		return 0, 0, err
	}
	if len(batch) == 0 {
		return cur, 0, nil
	}
	if f.lastHash != "" && batch[0].Seq == cur+1 && batch[0].PrevHash != f.lastHash {
		return 0, 0, errChainReplaced
	}
	if first := batch[0].Seq; first > cur+1 {
		// Compacted before this sink got them: say so, loudly, once.
		f.Logger.Error("audit events were compacted before this sink received them", "sink", f.Name, "from_seq", cur+1, "to_seq", first-1)
	}
	if err := f.Sink.Write(batch); err != nil {
		return 0, 0, err
	}
	last := batch[len(batch)-1].Seq
	if err := writeCursor(f.CursorPath, last, batch[len(batch)-1].Hash); err != nil {
		return 0, 0, err
	}
	f.lastHash = batch[len(batch)-1].Hash
	f.mu.Lock()
	f.cursor = last
	f.mu.Unlock()
	return last, len(batch), nil
}

// errChainReplaced means the log no longer continues the events this
// sink delivered: a snapshot restore replaced it.
var errChainReplaced = errors.New("audit: the chain was replaced")

// restart begins delivery again from the start of the current log after
// the log was replaced (a snapshot restore), and tells the sink so it can
// keep the two histories apart (a file sink starts a new file).
func (f *Follower) restart(cur uint64, why string) uint64 {
	f.Logger.Error("audit log replaced (snapshot restore?); delivering the new log from its start", "sink", f.Name, "delivered_up_to", cur, "why", why)
	if r, ok := f.Sink.(interface{ Restart() error }); ok {
		if err := r.Restart(); err != nil {
			f.Logger.Error("audit sink could not start over", "sink", f.Name, "error", err)
		}
	}
	f.lastHash = ""
	f.mu.Lock()
	f.cursor = 0
	f.mu.Unlock()
	return 0
}

// A cursor file holds "seq hash": the last delivered event's seq and hash.
func readCursor(path string) (uint64, string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("audit: reading cursor: %w", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 || len(fields) > 2 {
		return 0, "", fmt.Errorf("audit: cursor file %s is corrupt", path)
	}
	n, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("audit: cursor file %s is corrupt: %v", path, err)
	}
	hash := ""
	if len(fields) == 2 {
		hash = fields[1]
	}
	return n, hash, nil
}

func writeCursor(path string, seq uint64, hash string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(seq, 10)+" "+hash+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// FileSink appends events as JSON lines and rotates the file when it
// passes MaxBytes, keeping Keep old files (path.1 is the newest).
type FileSink struct {
	path     string
	maxBytes int64
	keep     int
	f        *os.File
	size     int64
	lastSeq  uint64
}

// NewFileSink opens (creating) the file. maxBytes 0 disables rotation.
func NewFileSink(path string, maxBytes int64, keep int) (*FileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	s := &FileSink{path: path, maxBytes: maxBytes, keep: keep}
	s.lastSeq = lastSeqInFile(path)
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: opening %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, st.Size()
	return nil
}

// LastSeq is the seq of the last event in the file when it was opened,
// so that a crash between a write and the cursor update never duplicates.
func (s *FileSink) LastSeq() uint64 { return s.lastSeq }

// Write implements Sink: the batch is one write followed by fsync.
func (s *FileSink) Write(events []*Event) error {
	var buf []byte
	for _, e := range events {
		if e.Seq <= s.lastSeq {
			continue
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	if len(buf) == 0 {
		return nil
	}
	if s.maxBytes > 0 && s.size > 0 && s.size+int64(len(buf)) > s.maxBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	if _, err := s.f.Write(buf); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.size += int64(len(buf))
	s.lastSeq = events[len(events)-1].Seq
	return nil
}

func (s *FileSink) rotate() error {
	s.f.Close()
	for i := s.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", s.path, i), fmt.Sprintf("%s.%d", s.path, i+1))
	}
	if s.keep > 0 {
		if err := os.Rename(s.path, s.path+".1"); err != nil {
			return err
		}
	} else if err := os.Remove(s.path); err != nil {
		return err
	}
	return s.open()
}

// Close implements Sink.
func (s *FileSink) Close() error { return s.f.Close() }

// Restart starts a new file after the log was replaced, so that the old
// and the new history never share a file (the old one is rotated away).
func (s *FileSink) Restart() error {
	s.lastSeq = 0
	if s.size == 0 {
		return nil
	}
	return s.rotate()
}

func lastSeqInFile(path string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var last uint64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), MaxEventSize+1)
	for sc.Scan() {
		var e struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Seq > last {
			last = e.Seq
		}
	}
	return last
}

// SocketSink writes events as JSON lines to a TCP, UDP or unix socket
// ("tcp", "127.0.0.1:9090"), reconnecting after an error. Each Write has
// a deadline, so a peer that stops reading cannot hang the follower.
type SocketSink struct {
	network, addr string
	timeout       time.Duration
	conn          net.Conn
}

// NewSocketSink returns a sink that dials lazily.
func NewSocketSink(network, addr string, timeout time.Duration) *SocketSink {
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	return &SocketSink{network: network, addr: addr, timeout: timeout}
}

// Write implements Sink.
func (s *SocketSink) Write(events []*Event) error {
	if s.conn == nil {
		c, err := net.DialTimeout(s.network, s.addr, s.timeout)
		if err != nil {
			return err
		}
		s.conn = c
	}
	var buf []byte
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.conn.Write(buf); err != nil {
		s.conn.Close()
		s.conn = nil
		return err
	}
	return nil
}

// Close implements Sink.
func (s *SocketSink) Close() error {
	if s.conn != nil {
		return s.conn.Close()
	}
	return nil
}

var _ io.Closer = (*SocketSink)(nil)

// SyslogSink sends each event as one JSON message to syslog (the local
// daemon when network is "", or a remote one over "udp"/"tcp").
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
func (s *SyslogSink) Write(events []*Event) error {
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := s.w.Info(string(b)); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Sink.
func (s *SyslogSink) Close() error { return s.w.Close() }
