package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/fsm"
	"github.com/keyraft/keyraft/transit"
)

// errStop ends a scan of the audit log early.
var errStop = errors.New("stop")

// MaxAuditQueryLimit caps the events one query returns.
const MaxAuditQueryLimit = 10000

// The sys/audit/* rows are sudo (Vault's root-protected paths); reading
// the log needs no unsealed barrier, but answering needs a token, so a
// sealed node refuses like every other authenticated path.

func (a *API) auditHistory(req *request) reply {
	key := req.params["key"]
	req.ev.Key = key
	f := auditFilter{key: key, stateChange: true, limit: MaxAuditQueryLimit}
	events, next, err := a.scanAudit(1, f)
	if err != nil {
		return a.errorReply(err)
	}
	return reply{data: map[string]any{"key": key, "events": events, "next_seq": next}}
}

func (a *API) auditPublicKey(*request) reply {
	pub := a.cfg.Node.AuditPublicKey()
	if pub == nil {
		return errReply(http.StatusServiceUnavailable, "keyraft is not initialized")
	}
	return reply{data: map[string]any{"public_key": base64.StdEncoding.EncodeToString(pub), "algorithm": "ed25519"}}
}

func (a *API) auditHash(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	in, err := f.String("input", "")
	if err != nil {
		return errorFromTransit(err)
	}
	if !f.Has("input") {
		return errReply(http.StatusBadRequest, "missing input to hash")
	}
	h, ok := a.cfg.Node.AuditHMAC([]byte(in))
	if !ok {
		return errReply(http.StatusServiceUnavailable, "keyraft is sealed")
	}
	return reply{data: map[string]any{"hash": h}}
}

func (a *API) auditCheckpoint(req *request) reply {
	cp, err := a.cfg.Node.Checkpoint(req.ctx)
	switch {
	case errors.Is(err, cluster.ErrNothingToCheckpoint):
		return errReply(http.StatusBadRequest, "the audit head is already checkpointed")
	case err != nil:
		return a.errorReply(err)
	}
	return reply{data: checkpointData(cp)}
}

// auditCompact drops the events up to up_to_seq, but only those every
// sink has delivered (unless force).
func (a *API) auditCompact(req *request) reply {
	n := a.cfg.Node
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	upTo, err := f.Int("up_to_seq", 0)
	if err != nil {
		return errorFromTransit(err)
	}
	if upTo < 0 {
		return errReply(http.StatusBadRequest, "up_to_seq must not be negative")
	}
	force, err := f.Bool("force", false)
	if err != nil {
		return errorFromTransit(err)
	}
	delivered, holder := uint64(math.MaxUint64), ""
	if !force {
		if delivered, holder, err = n.AuditDeliveredThrough(); err != nil {
			return a.errorReply(err)
		}
	}
	if upTo > 0 && uint64(upTo) > delivered {
		return errReply(http.StatusBadRequest, fmt.Sprintf("%s has delivered events only up to seq %d; wait for it or pass force", holder, delivered))
	}
	done, err := n.CompactAudit(req.ctx, uint64(upTo), delivered)
	if errors.Is(err, fsm.ErrBadCompaction) {
		return errReply(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "fsm: "))
	}
	if err != nil {
		return a.errorReply(err)
	}
	return reply{data: map[string]any{"compacted_to": done}}
}

// reservedAuditPaths are sys/audit/* endpoints, not device names.
var reservedAuditPaths = map[string]bool{
	"events": true, "history": true, "stream": true, "export": true, "verify": true,
	"hash": true, "public-key": true, "checkpoint": true, "compact": true,
}

// listAuditDevices answers GET sys/audit in Vault's shape: devices keyed
// "name/", each with where it is delivered and how far (sinkData).
func (a *API) listAuditDevices(*request) reply {
	devs, err := a.cfg.Node.AuditDevices()
	if err != nil {
		return a.errorReply(err)
	}
	out := map[string]any{}
	for _, d := range devs {
		out[d.Name+"/"] = a.deviceData(d)
	}
	for _, d := range a.cfg.ConfigDevices {
		if _, dup := out[d.Name+"/"]; !dup {
			m := a.deviceData(d)
			m["from_config"] = true
			out[d.Name+"/"] = m
		}
	}
	return reply{data: out}
}

// sinkStatuses returns this node's running devices by name.
func (a *API) sinkStatuses() map[string]audit.DeviceStatus {
	out := map[string]audit.DeviceStatus{}
	if a.cfg.AuditSinks != nil {
		for _, st := range a.cfg.AuditSinks() {
			out[st.Device.Name] = st
		}
	}
	return out
}

func (a *API) deviceData(d audit.Device) map[string]any {
	opts := map[string]any{}
	for k, v := range map[string]string{"file_path": d.Path, "socket_type": d.Network, "address": d.Address, "tag": d.Tag, "framing": d.Framing, "write_timeout": d.WriteTimeout} {
		if v != "" {
			opts[k] = v
		}
	}
	if d.MaxBytes != 0 {
		opts["max_bytes"] = strconv.FormatInt(d.MaxBytes, 10)
	}
	if d.Keep != 0 {
		opts["keep"] = strconv.Itoa(d.Keep)
	}
	m := map[string]any{"type": d.Type, "description": d.Description, "options": opts, "path": d.Name + "/", "local": !d.ClusterWide()}
	delivery := map[string]any{"cluster_wide": d.ClusterWide(), "node": a.cfg.Node.Config().NodeID, "running": false, "delivering": false}
	head := a.cfg.Node.AuditHeadSeq()
	if st, ok := a.sinkStatuses()[d.Name]; ok {
		delivery["running"], delivery["delivering"] = true, st.Active
		if st.Active || !d.ClusterWide() {
			delivery["delivered_seq"] = st.Delivered.Seq
			delivery["lag_events"], delivery["lag_seconds"] = st.LagEvents, st.LagSeconds
		}
		if st.LastError != "" {
			delivery["last_error"], delivery["last_error_time"] = st.LastError, st.ErrorAt
		}
		if st.Restarts > 0 {
			delivery["restarts"] = st.Restarts
		}
	}
	if d.ClusterWide() && delivery["delivered_seq"] == nil {
		// Another node delivers it: how far, as last committed.
		p, _ := a.cfg.Node.CommittedAuditCursor(d.Name)
		delivery["delivered_seq"] = p.Seq
		delivery["lag_events"] = head - min(head, p.Seq)
	}
	m["delivery"] = delivery
	m["cursor"] = delivery["delivered_seq"]
	return m
}

// auditDeviceName is the device a sys/audit/:name request names; the
// names of the other sys/audit endpoints are no device's.
func auditDeviceName(req *request) (string, *reply) {
	name := req.params["name"]
	if reservedAuditPaths[name] {
		r := errReply(http.StatusNotFound, "unsupported path")
		return "", &r
	}
	return name, nil
}

// readAuditDevice answers GET sys/audit/:name.
func (a *API) readAuditDevice(req *request) reply {
	name, r := auditDeviceName(req)
	if r != nil {
		return *r
	}
	devs, err := a.cfg.Node.AuditDevices()
	if err != nil {
		return a.errorReply(err)
	}
	for _, d := range devs {
		if d.Name == name {
			return reply{data: a.deviceData(d)}
		}
	}
	return errReply(http.StatusNotFound, fmt.Sprintf("no audit device %q", name))
}

func (a *API) deleteAuditDevice(req *request) reply {
	name, r := auditDeviceName(req)
	if r != nil {
		return *r
	}
	found, err := a.cfg.Node.DeleteAuditDevice(req.ctx, name)
	if err != nil {
		return a.errorReply(err)
	}
	if !found {
		return errReply(http.StatusNotFound, fmt.Sprintf("no audit device %q", name))
	}
	return reply{status: http.StatusNoContent}
}

// writeAuditDevice answers PUT/POST sys/audit/:name (Vault's shape:
// {"type":"file","options":{"file_path":"…"}}).
func (a *API) writeAuditDevice(req *request) reply {
	name, r := auditDeviceName(req)
	if r != nil {
		return *r
	}
	n := a.cfg.Node
	var body struct {
		Type        string            `json:"type"`
		Description string            `json:"description"`
		Options     map[string]string `json:"options"`
		Local       bool              `json:"local"`
	}
	if r := req.decode(&body); r != nil {
		return *r
	}
	for _, d := range a.cfg.ConfigDevices {
		if d.Name == name {
			return errReply(http.StatusBadRequest, fmt.Sprintf("audit device %q is defined in the server config", name))
		}
	}
	d := audit.Device{Name: name, Type: body.Type, Description: body.Description, Local: body.Local}
	for k, v := range body.Options {
		var err error
		switch k {
		case "file_path", "path":
			d.Path = v
		case "max_bytes":
			d.MaxBytes, err = strconv.ParseInt(v, 10, 64)
		case "keep":
			d.Keep, err = strconv.Atoi(v)
		case "socket_type", "network":
			d.Network = v
		case "address":
			d.Address = v
		case "tag":
			d.Tag = v
		case "framing":
			d.Framing = v
		case "write_timeout":
			d.WriteTimeout = v
		default:
			return errReply(http.StatusBadRequest, fmt.Sprintf("unknown audit device option %q", transit.Truncate(k)))
		}
		if err != nil {
			return errReply(http.StatusBadRequest, fmt.Sprintf("option %s must be a whole number", k))
		}
	}
	if err := n.PutAuditDevice(req.ctx, d); err != nil {
		if errors.Is(err, cluster.ErrInvalidRequest) {
			return errReply(http.StatusBadRequest, strings.TrimPrefix(err.Error(), cluster.ErrInvalidRequest.Error()+": "))
		}
		return a.errorReply(err)
	}
	return reply{status: http.StatusNoContent}
}

func checkpointData(cp *audit.Checkpoint) map[string]any {
	return map[string]any{"seq": cp.Seq, "hash": cp.Hash, "time": cp.Time, "signature": cp.Signature}
}

type auditFilter struct {
	key, identity, operation, outcome string
	since, until                      time.Time
	stateChange                       bool
	limit                             int
}

func (f auditFilter) match(e *audit.Event) bool {
	switch {
	case f.key != "" && e.Key != f.key,
		f.identity != "" && e.Identity != f.identity,
		f.operation != "" && e.Operation != f.operation,
		f.outcome != "" && e.Outcome != f.outcome,
		!f.since.IsZero() && e.Time.Before(f.since),
		!f.until.IsZero() && !e.Time.Before(f.until),
		f.stateChange && !e.StateChange:
		return false
	}
	return true
}

// scanAudit returns up to f.limit matching events from fromSeq on, and the
// seq to continue from.
func (a *API) scanAudit(fromSeq uint64, f auditFilter) ([]*audit.Event, uint64, error) {
	events := []*audit.Event{}
	next := fromSeq
	err := a.cfg.Node.AuditEvents(fromSeq, func(e *audit.Event) error {
		if len(events) >= f.limit {
			return errStop
		}
		next = e.Seq + 1
		if f.match(e) {
			events = append(events, e)
		}
		return nil
	})
	if err != nil && err != errStop {
		return nil, 0, err
	}
	return events, next, nil
}

func (a *API) auditQuery(req *request) reply {
	f, r := req.fields(nil)
	if r != nil {
		return *r
	}
	var q auditFilter
	var err error
	str := func(name string, dst *string) {
		if err == nil {
			*dst, err = f.String(name, "")
		}
	}
	str("key", &q.key)
	str("identity", &q.identity)
	str("operation", &q.operation)
	str("outcome", &q.outcome)
	var since, until string
	str("since", &since)
	str("until", &until)
	if err != nil {
		return errorFromTransit(err)
	}
	if q.outcome != "" && q.outcome != audit.Allowed && q.outcome != audit.Denied && q.outcome != audit.Failed {
		return errReply(http.StatusBadRequest, "outcome must be allowed, denied or error")
	}
	for _, t := range []struct {
		text string
		dst  *time.Time
		name string
	}{{since, &q.since, "since"}, {until, &q.until, "until"}} {
		if t.text == "" {
			continue
		}
		if *t.dst, err = time.Parse(time.RFC3339Nano, t.text); err != nil {
			return errReply(http.StatusBadRequest, fmt.Sprintf("%s must be an RFC 3339 time such as 2026-11-27T10:00:00Z", t.name))
		}
	}
	if q.limit, err = f.Int("limit", 100); err != nil {
		return errorFromTransit(err)
	}
	if q.limit < 1 || q.limit > MaxAuditQueryLimit {
		return errReply(http.StatusBadRequest, fmt.Sprintf("limit must be between 1 and %d", MaxAuditQueryLimit))
	}
	from, err := f.Int("from_seq", 1)
	if err != nil {
		return errorFromTransit(err)
	}
	if from < 1 {
		return errReply(http.StatusBadRequest, "from_seq must be at least 1")
	}
	events, next, err := a.scanAudit(uint64(from), q)
	if err != nil {
		return a.errorReply(err)
	}
	head := a.cfg.Node.AuditHead()
	return reply{data: map[string]any{"events": events, "next_seq": next, "head": map[string]any{"seq": head.Seq, "hash": head.Hash}}}
}

// auditVerify checks the node's whole chain and every stored checkpoint.
func (a *API) auditVerify(*request) reply {
	r, err := a.cfg.Node.VerifyAudit()
	if err != nil {
		return a.errorReply(err)
	}
	data := map[string]any{"valid": r.Problem == nil, "events": r.Events, "checkpoints": r.Checkpoints,
		"head_seq": r.HeadSeq, "last_checkpoint_seq": r.LastCheckpointSeq}
	if r.Problem != nil {
		data["first_bad_seq"], data["reason"] = r.Problem.Seq, r.Problem.Reason
	}
	return reply{data: data}
}

// auditSeq reads a positive sequence number from the query (def when
// absent).
func auditSeq(req *request, name string, def uint64) (uint64, *reply) {
	v := req.query.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		r := errReply(http.StatusBadRequest, name+" must be a positive integer")
		return 0, &r
	}
	return n, nil
}

// auditStream answers GET sys/audit/stream: follow the log from from_seq
// as JSON lines, or as server-sent events when the caller accepts them.
func (a *API) auditStream(req *request) reply {
	from, r := auditSeq(req, "from_seq", 1)
	if r != nil {
		return *r
	}
	sse := strings.Contains(req.http.Header.Get("Accept"), "text/event-stream")
	ctx := req.http.Context()
	return reply{stream: func(w http.ResponseWriter) {
		flusher, _ := w.(http.Flusher)
		w.Header().Set("Cache-Control", "no-store")
		if sse {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/x-ndjson")
		}
		w.WriteHeader(http.StatusOK)
		a.follow(ctx, w, flusher, from, sse)
	}}
}

// auditExport answers GET sys/audit/export: the events from from_seq to
// to_seq, ending on a signed checkpoint so that cutting it short or
// rewriting its tail shows.
func (a *API) auditExport(req *request) reply {
	from, r := auditSeq(req, "from_seq", 1)
	if r != nil {
		return *r
	}
	to, r := auditSeq(req, "to_seq", 0)
	if r != nil {
		return *r
	}
	n := a.cfg.Node
	if head := n.AuditHeadSeq(); to > head {
		return errReply(http.StatusBadRequest, fmt.Sprintf("to_seq %d is past the newest event %d", to, head))
	}
	if to == 0 {
		// Sign the head now when this node can (the leader), so the
		// export covers everything up to the request.
		_, err := n.Checkpoint(req.ctx)
		if err != nil && !errors.Is(err, cluster.ErrNothingToCheckpoint) && !errors.Is(err, cluster.ErrNotLeader) {
			return a.errorReply(err)
		}
		to = n.AuditHeadSeq()
	}
	// Round down to the newest checkpoint.
	var last uint64
	n.AuditCheckpoints(from, func(cp *audit.Checkpoint) error {
		if cp.Seq > to {
			return errStop
		}
		last = cp.Seq
		return nil
	})
	if last < from {
		return errReply(http.StatusBadRequest, fmt.Sprintf("no signed checkpoint between seq %d and %d yet; POST sys/audit/checkpoint on the leader first", from, to))
	}
	ctx := req.http.Context()
	return reply{stream: func(w http.ResponseWriter) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		a.writeExport(ctx, w, from, last)
	}}
}

func (a *API) writeExport(ctx context.Context, w http.ResponseWriter, from, to uint64) {
	n := a.cfg.Node
	cps := map[uint64]*audit.Checkpoint{}
	n.AuditCheckpoints(from, func(cp *audit.Checkpoint) error {
		if cp.Seq <= to {
			cps[cp.Seq] = cp
		}
		return nil
	})
	base, _ := n.AuditBase()
	if base != nil && from <= base.Seq {
		from = base.Seq + 1 // earlier events were compacted away
	}
	ew, err := audit.NewExportWriter(w, audit.ExportHeader{
		PublicKey: base64.StdEncoding.EncodeToString(n.AuditPublicKey()), FromSeq: from, ToSeq: to,
	})
	if err != nil {
		return
	}
	// A segment that starts mid-log opens with the signed checkpoint of the
	// event before it, when there is one, so it verifies on its own.
	var anchor *audit.Checkpoint
	n.AuditCheckpoints(from-1, func(cp *audit.Checkpoint) error {
		if cp.Seq == from-1 {
			anchor = cp
		}
		return errStop
	})
	if anchor != nil && from > 1 {
		ew.Checkpoint(anchor)
	}
	n.AuditEvents(from, func(e *audit.Event) error {
		if e.Seq > to || ctx.Err() != nil {
			return errStop
		}
		if err := ew.Event(e); err != nil {
			return err
		}
		if cp := cps[e.Seq]; cp != nil {
			return ew.Checkpoint(cp)
		}
		return nil
	})
	ew.Flush()
}

func (a *API) follow(ctx context.Context, w http.ResponseWriter, flusher http.Flusher, from uint64, sse bool) {
	next := from
	for {
		err := a.cfg.Node.AuditEvents(next, func(e *audit.Event) error {
			b, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if sse {
				_, err = fmt.Fprintf(w, "id: %d\ndata: %s\n\n", e.Seq, b)
			} else {
				_, err = w.Write(append(b, '\n'))
			}
			next = e.Seq + 1
			return err
		})
		if err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
