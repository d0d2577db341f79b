package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// An export is JSON lines: one header line, then one line per event in
// seq order, with checkpoint lines where the cluster signed the chain, and
// a final checkpoint covering the last event so truncation shows. An
// export that starts after seq 1 may begin with the signed checkpoint of
// the event before its first, which anchors the chain.
//
//	{"keyraft_audit_export":1,"public_key":"…","from_seq":1,"to_seq":42}
//	{"seq":1,…,"prev_hash":"…","hash":"…"}
//	{"checkpoint":{"seq":42,"hash":"…","time":"…","signature":"…"}}

// ExportHeader is the first line of an export.
type ExportHeader struct {
	Format    int    `json:"keyraft_audit_export"`
	PublicKey string `json:"public_key"` // base64 Ed25519 public key of the cluster
	FromSeq   uint64 `json:"from_seq"`
	ToSeq     uint64 `json:"to_seq"`
}

type checkpointLine struct {
	Checkpoint *Checkpoint `json:"checkpoint"`
}

// ExportWriter writes an export.
type ExportWriter struct{ w *bufio.Writer }

// NewExportWriter writes the header line.
func NewExportWriter(w io.Writer, h ExportHeader) (*ExportWriter, error) {
	h.Format = 1
	ew := &ExportWriter{w: bufio.NewWriter(w)}
	return ew, ew.line(h)
}

func (ew *ExportWriter) line(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ew.w.Write(b)
	return ew.w.WriteByte('\n')
}

// Event writes one event line.
func (ew *ExportWriter) Event(e *Event) error { return ew.line(e) }

// Checkpoint writes one checkpoint line.
func (ew *ExportWriter) Checkpoint(c *Checkpoint) error { return ew.line(checkpointLine{c}) }

// Flush writes out buffered lines.
func (ew *ExportWriter) Flush() error { return ew.w.Flush() }

// VerifyReport summarizes a verified export.
type VerifyReport struct {
	Events           int
	FirstSeq         uint64
	LastSeq          uint64
	Checkpoints      int
	PublicKeyPinned  bool // the key came from the caller, not the file
	LastCheckpointAt uint64
}

// VerifyExport checks an export: the header, the chain of every event,
// every checkpoint's signature and hash, and that the export is not cut
// short of its header's to_seq or its last checkpoint. pub pins the
// cluster's public key; when nil the header's key is used (which proves
// integrity of the file, not its origin). Any problem is a *Problem
// naming the first bad seq, or an error naming the line.
func VerifyExport(r io.Reader, pub ed25519.PublicKey) (*VerifyReport, error) {
	rep := &VerifyReport{PublicKeyPinned: pub != nil}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxEventSize+1)
	line := 0
	var hdr *ExportHeader
	var v *Verifier
	var lastHash string
	var anchor *Checkpoint
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		switch {
		case hdr == nil:
			var h ExportHeader
			if err := strictUnmarshal(b, &h); err != nil || h.Format != 1 {
				return rep, fmt.Errorf("line %d: not a keyraft audit export header", line)
			}
			hdr = &h
			if pub == nil {
				k, err := base64.StdEncoding.DecodeString(h.PublicKey)
				if err != nil || len(k) != ed25519.PublicKeySize {
					return rep, fmt.Errorf("line %d: the header's public key is invalid", line)
				}
				pub = k
			}
		case bytes.HasPrefix(b, []byte(`{"checkpoint":`)):
			var cl checkpointLine
			if err := strictUnmarshal(b, &cl); err != nil || cl.Checkpoint == nil {
				return rep, fmt.Errorf("line %d: malformed checkpoint", line)
			}
			cp := cl.Checkpoint
			if !cp.Verify(pub) {
				return rep, &Problem{Seq: cp.Seq, Reason: "bad checkpoint signature"}
			}
			if v == nil {
				// A checkpoint before any event anchors a segment that
				// starts mid-log: its first event must follow it.
				if cp.Seq+1 != hdr.FromSeq {
					return rep, &Problem{Seq: cp.Seq, Reason: "checkpoint out of place (lines reordered)"}
				}
				anchor = cp
				rep.Checkpoints++
				continue
			}
			// A checkpoint line follows the event it covers.
			switch {
			case cp.Seq > rep.LastSeq:
				return rep, &Problem{Seq: rep.LastSeq + 1, Reason: fmt.Sprintf("truncated or missing: a checkpoint covers seq %d but the events before it end at %d", cp.Seq, rep.LastSeq)}
			case cp.Seq < rep.LastSeq:
				return rep, &Problem{Seq: cp.Seq, Reason: "checkpoint out of place (lines reordered)"}
			case lastHash != cp.Hash:
				return rep, &Problem{Seq: cp.Seq, Reason: "the event's hash differs from the signed checkpoint: an event after the previous checkpoint and up to this one was edited"}
			}
			rep.Checkpoints++
			rep.LastCheckpointAt = cp.Seq
		default:
			e, err := Decode(b)
			if err != nil {
				return rep, fmt.Errorf("line %d: %w", line, err)
			}
			if v == nil {
				if anchor != nil && (e.Seq != anchor.Seq+1 || e.PrevHash != anchor.Hash) {
					return rep, &Problem{Seq: e.Seq, Reason: "the first event does not follow the signed checkpoint before it"}
				}
				if e.Seq != hdr.FromSeq && hdr.FromSeq != 0 {
					return rep, &Problem{Seq: hdr.FromSeq, Reason: fmt.Sprintf("missing: the export starts at seq %d, its header at %d", e.Seq, hdr.FromSeq)}
				}
				if e.Seq == 1 && e.PrevHash != GenesisHash {
					return rep, &Problem{Seq: 1, Reason: "the first event does not start from the genesis hash"}
				}
				v = NewVerifier(e.Seq-1, e.PrevHash)
				rep.FirstSeq = e.Seq
			}
			if err := v.Next(e); err != nil {
				return rep, err
			}
			lastHash = e.Hash
			rep.Events++
			rep.LastSeq = e.Seq
		}
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("line %d: %w", line+1, err)
	}
	if hdr == nil {
		return rep, fmt.Errorf("empty export: no header line")
	}
	if hdr.ToSeq > rep.LastSeq {
		return rep, &Problem{Seq: rep.LastSeq + 1, Reason: fmt.Sprintf("truncated: the header promises events up to seq %d, the export ends at %d", hdr.ToSeq, rep.LastSeq)}
	}
	// The header is not signed: only a checkpoint on the last event proves
	// that nothing was cut off the end or rewritten after the last one.
	if rep.Events > 0 && rep.LastCheckpointAt != rep.LastSeq {
		return rep, &Problem{Seq: rep.LastCheckpointAt + 1, Reason: fmt.Sprintf("truncated or rewritten: no signed checkpoint covers the events after seq %d", rep.LastCheckpointAt)}
	}
	return rep, nil
}
