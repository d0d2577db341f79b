package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Receiver is a collector for the acknowledged socket framing: it stores
// what keyraft's socket sinks send in a JSON-lines file (a FileSink: whole
// lines, fsync before every acknowledgement, a torn tail cut off on
// start) and tells each sink on connect what it has, so events arrive
// exactly once across restarts of either side. Events at or before the
// stored seq are dropped, so several nodes may send at once.
// `keyraft audit receive` runs one.
type Receiver struct {
	Path     string
	MaxBytes int64 // rotate past this size (0: never)
	Keep     int   // rotated files kept
	Logger   hclog.Logger

	mu    sync.Mutex
	store *FileSink
	conns map[net.Conn]bool
}

// Open opens (creating, recovering) the file.
func (r *Receiver) Open() error {
	if r.Logger == nil {
		r.Logger = hclog.NewNullLogger()
	}
	keep := r.Keep
	if keep <= 0 {
		keep = 5
	}
	s, err := NewFileSink(r.Path, r.MaxBytes, keep)
	if err != nil {
		return err
	}
	r.store = s
	r.conns = map[net.Conn]bool{}
	return nil
}

// Stored returns the position of the file's last event.
func (r *Receiver) Stored() (Position, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store.Position()
}

// Serve accepts connections until ln is closed.
func (r *Receiver) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		r.mu.Lock()
		if len(r.conns) >= maxReceiverConns {
			// Each connection may hold a read buffer and a batch: a
			// bounded number of them bounds the collector's memory.
			r.mu.Unlock()
			r.Logger.Warn("too many sink connections; refusing one", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		r.conns[c] = true
		r.mu.Unlock()
		go func() {
			defer func() {
				r.mu.Lock()
				delete(r.conns, c)
				r.mu.Unlock()
				c.Close()
			}()
			if err := r.handle(c); err != nil {
				r.Logger.Warn("sink connection ended", "remote", c.RemoteAddr().String(), "error", err)
			}
		}()
	}
}

// Close closes the file and every connection.
func (r *Receiver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.Close()
	}
	return r.store.Close()
}

// maxReceiverConns bounds the connections a Receiver serves at once
// (each costs up to ~1.1 MiB of buffers).
const maxReceiverConns = 64

type receivedLine struct {
	pos        Position
	prev       string
	start, end int
}

func (r *Receiver) handle(c net.Conn) error {
	br := bufio.NewReaderSize(c, MaxStoredEventSize+2)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	var h helloMsg
	if err := json.Unmarshal(line, &h); err != nil || h.Version != 1 {
		return errors.New("the first line is not a keyraft audit hello")
	}
	c.SetReadDeadline(time.Time{})
	r.mu.Lock()
	if h.NewLog {
		r.Logger.Warn("the sink says its log was replaced (a snapshot restore); starting a new file", "device", h.Device, "node", h.Node)
		if err := r.store.Restart(); err != nil {
			r.mu.Unlock()
			return err
		}
	}
	pos, err := r.store.Position()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	seq := pos.Seq
	ans, _ := json.Marshal(helloAnswer{LastSeq: &seq, LastHash: pos.Hash})
	if _, err := c.Write(append(ans, '\n')); err != nil {
		return err
	}
	r.Logger.Info("sink connected", "device", h.Device, "node", h.Node, "resume_after", pos.Seq)
	var buf []byte
	var lines []receivedLine
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return errors.New("a line longer than an audit event")
			}
			return err
		}
		p, err := lineSeq(line)
		if err != nil {
			return errors.New("a line that is not an audit event")
		}
		prev, _, _ := chainFields(line)
		start := len(buf)
		buf = append(buf, line...)
		lines = append(lines, receivedLine{pos: p, prev: prev, start: start, end: len(buf)})
		if br.Buffered() > 0 && len(buf) < 1<<20 {
			continue // store what has arrived in one write
		}
		stored, err := r.store1(lines, buf)
		if err != nil {
			return err
		}
		buf, lines = buf[:0], lines[:0]
		s := stored.Seq
		ack, _ := json.Marshal(ackMsg{Ack: &s, Hash: stored.Hash})
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(append(ack, '\n')); err != nil {
			return err
		}
	}
}

// store1 appends the lines after the stored seq and returns the position.
func (r *Receiver) store1(lines []receivedLine, buf []byte) (Position, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pos, err := r.store.Position()
	if err != nil {
		return Position{}, err
	}
	i := 0
	for i < len(lines) && lines[i].pos.Seq <= pos.Seq {
		i++ // stored already (a resend, or another node)
	}
	if i == len(lines) {
		return pos, nil
	}
	for j := i + 1; j < len(lines); j++ {
		if lines[j].pos.Seq != lines[j-1].pos.Seq+1 {
			return pos, errors.New("events out of order")
		}
	}
	if first := lines[i]; pos.Seq > 0 && first.pos.Seq == pos.Seq+1 && pos.Hash != "" && first.prev != pos.Hash {
		return pos, fmt.Errorf("event %d does not follow the stored event %d (another history: a sender from before a restore?)", first.pos.Seq, pos.Seq)
	}
	if first := lines[i].pos.Seq; pos.Seq > 0 && first != pos.Seq+1 {
		r.Logger.Error("events missing before this batch", "after_seq", pos.Seq, "next_seq", first)
	}
	last := lines[len(lines)-1].pos
	b := &Batch{First: lines[i].pos.Seq, Last: last.Seq, LastHash: last.Hash, Count: len(lines) - i, Lines: buf[lines[i].start:]}
	if err := r.store.Write(b); err != nil {
		r.Logger.Error("storing events failed; the sink will resend them", "error", err)
		return pos, err
	}
	return last, nil
}
