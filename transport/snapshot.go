package transport

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keyraft/keyraft/audit"
	"github.com/keyraft/keyraft/cluster"
)

// MaxSnapshotSize bounds an uploaded snapshot.
const MaxSnapshotSize = 8 << 30

// serveSnapshot answers sys/storage/raft/snapshot: GET streams a snapshot
// of the whole state (ciphertext only), POST/PUT restores one. Restoring a
// snapshot of another cluster needs snapshot-force, as in Vault. Both need
// a root token; the event is recorded before any byte of a snapshot is
// sent, and after a restore (in the restored log, naming the head it
// replaced).
func (a *API) serveSnapshot(w http.ResponseWriter, r *http.Request, ev *audit.Event) {
	req := &request{ctx: r.Context(), method: r.Method, query: r.URL.Query(), token: tokenFrom(r), ev: ev}
	ev.Operation = "sys/storage"
	te, rep := a.authenticate(req)
	if rep == nil && !a.hasSudo(req, te) {
		deny := errReply(http.StatusForbidden, "permission denied: snapshots need a root token")
		rep = &deny
	}
	if rep != nil {
		a.finish(w, r, ev, *rep)
		return
	}
	force := strings.HasSuffix(r.URL.Path, "-force")
	switch {
	case r.Method == http.MethodGet && !force:
		ev.Status, ev.Outcome = http.StatusOK, audit.Allowed
		if err := a.record(r, ev); err != nil {
			a.write(w, ev.RequestID, errReply(http.StatusServiceUnavailable, "request could not be recorded in the audit log"))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		if err := a.cfg.Node.SaveSnapshot(w); err != nil {
			// Headers are gone: abort the connection so the client sees a
			// broken transfer, not a short file that ends cleanly.
			a.log.Error("snapshot stream failed", "request_id", ev.RequestID, "error", err)
			panic(http.ErrAbortHandler)
		}
	case r.Method == http.MethodPost || r.Method == http.MethodPut:
		// The server's read timeout bounds strangers; a root caller's
		// snapshot of gigabytes may take longer to upload.
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		a.finish(w, r, ev, a.restoreSnapshot(r, ev, force))
	default:
		a.finish(w, r, ev, unsupportedOp())
	}
}

func (a *API) restoreSnapshot(r *http.Request, ev *audit.Event, force bool) reply {
	n := a.cfg.Node
	tmp, err := os.CreateTemp(n.Config().DataDir, ".restore-*")
	if err != nil {
		return a.errorReply(err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, http.MaxBytesReader(nil, r.Body, MaxSnapshotSize)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errReply(http.StatusRequestEntityTooLarge, fmt.Sprintf("snapshot larger than %d bytes", int64(MaxSnapshotSize)))
		}
		return errReply(http.StatusBadRequest, "failed to read the snapshot")
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return a.errorReply(err)
	}
	id, err := cluster.SnapshotClusterID(tmp)
	if err != nil {
		return errReply(http.StatusBadRequest, "not a keyraft snapshot, or a damaged one: "+strings.TrimPrefix(err.Error(), "fsm: "))
	}
	if mine := n.SealStatus().ClusterID; !force && id != mine {
		return errReply(http.StatusBadRequest, fmt.Sprintf("the snapshot is of another cluster (%s, this is %s); use sys/storage/raft/snapshot-force to replace this cluster's keys with it", id, mine))
	}
	prev, err := n.RestoreSnapshot(r.Context(), tmp)
	switch {
	case errors.Is(err, cluster.ErrInvalidRequest):
		return errReply(http.StatusBadRequest, strings.TrimPrefix(err.Error(), cluster.ErrInvalidRequest.Error()+": "))
	case err != nil:
		return a.errorReply(err)
	}
	ev.Details = map[string]string{
		"replaced_audit_head_seq":  strconv.FormatUint(prev.Seq, 10),
		"replaced_audit_head_hash": prev.Hash,
		"snapshot_cluster_id":      id,
	}
	return reply{status: http.StatusNoContent}
}
