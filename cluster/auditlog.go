package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/fsm"
)

// AuditLog is the replicated audit log seen as an audit.Recorder. Events
// from concurrent requests are grouped into one Raft entry (group commit):
// while one entry is being committed the next batch gathers, so the batch
// size grows with load and no timer delays a lone request. Record returns
// once the event's entry is committed on a quorum and applied locally.
type AuditLog struct {
	node     *Node
	in       chan *pendingEvent
	slots    chan struct{} // bounds the entries in flight
	maxBatch int
	timeout  time.Duration
}

type pendingEvent struct {
	data []byte
	done chan error
}

// ErrAuditUnavailable is returned by Record when the event could not be
// committed (no quorum, no leader, timeout).
var ErrAuditUnavailable = errors.New("cluster: audit log unavailable")

func newAuditLog(n *Node) *AuditLog {
	l := &AuditLog{
		node:     n,
		in:       make(chan *pendingEvent, 4096),
		slots:    make(chan struct{}, 4),
		maxBatch: 512,
		timeout:  n.cfg.ApplyTimeout,
	}
	go l.run()
	return l
}

// AuditLog returns the node's audit recorder.
func (n *Node) AuditLog() *AuditLog { return n.audit }

// Record implements audit.Recorder. An event already committed with a
// state change (see Apply) is not written again.
func (l *AuditLog) Record(ctx context.Context, e *audit.Event) error {
	if e.Committed() != 0 {
		return nil
	}
	c := *e
	c.Seq, c.PrevHash, c.Hash = 0, "", ""
	b, err := json.Marshal(&c)
	if err != nil {
		return err
	}
	if len(b) > audit.MaxEventSize {
		return fmt.Errorf("cluster: audit event of %d bytes exceeds %d", len(b), audit.MaxEventSize)
	}
	p := &pendingEvent{data: b, done: make(chan error, 1)}
	select {
	case l.in <- p:
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, ctx.Err())
	case <-l.node.closed:
		return ErrClosed
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrAuditUnavailable, ctx.Err())
	}
}

func (l *AuditLog) run() {
	for {
		var first *pendingEvent
		select {
		case first = <-l.in:
		case <-l.node.closed:
			l.failQueued()
			return
		}
		// Wait for a free slot first: events arriving meanwhile join the batch.
		select {
		case l.slots <- struct{}{}:
		case <-l.node.closed:
			first.done <- ErrClosed
			l.failQueued()
			return
		}
		batch := []*pendingEvent{first}
	gather:
		for len(batch) < l.maxBatch {
			select {
			case p := <-l.in:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		go l.commit(batch)
	}
}

func (l *AuditLog) commit(batch []*pendingEvent) {
	defer func() { <-l.slots }()
	cmd := &fsm.Command{Events: make([][]byte, len(batch))}
	for i, p := range batch {
		cmd.Events[i] = p.data
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	_, err := l.node.Apply(ctx, cmd)
	if err != nil {
		l.node.log.Warn("audit batch not committed", "events", len(batch), "error", err)
		err = fmt.Errorf("%w: %v", ErrAuditUnavailable, err)
	}
	for _, p := range batch {
		p.done <- err
	}
}

func (l *AuditLog) failQueued() {
	for {
		select {
		case p := <-l.in:
			p.done <- ErrClosed
		default:
			return
		}
	}
}

// AuditHead returns the newest chained event's seq and hash.
func (n *Node) AuditHead() fsm.AuditHead { return n.fsm.AuditHead() }

// AuditEvents calls fn with each chained event from fromSeq on, in order.
func (n *Node) AuditEvents(fromSeq uint64, fn func(e *audit.Event) error) error {
	return n.fsm.AuditEvents(fromSeq, func(_ uint64, b []byte) error {
		e, err := audit.Decode(b)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// AuditHMAC returns the HMAC of a sensitive value under the cluster's
// audit key; ok is false while the node is sealed.
func (n *Node) AuditHMAC(value []byte) (string, bool) {
	n.mu.Lock()
	key := n.auditKey
	n.mu.Unlock()
	if key == nil {
		return "", false
	}
	return audit.HMAC(key, value), true
}

// AuditHeadSeq returns the newest chained event's seq (audit.Source).
func (n *Node) AuditHeadSeq() uint64 { return n.fsm.AuditHead().Seq }
