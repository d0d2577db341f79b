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

	"github.com/keyraft/keyraft/cluster"
)

// MaxSnapshotSize bounds an uploaded snapshot.
const MaxSnapshotSize = 8 << 30

// saveSnapshot answers GET sys/storage/raft/snapshot: a snapshot of the
// whole state (ciphertext only), streamed after the event is recorded.
func (a *API) saveSnapshot(req *request) reply {
	ev := req.ev
	return reply{stream: func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		if err := a.cfg.Node.SaveSnapshot(w); err != nil {
			// Headers are gone: abort the connection so the client sees a
			// broken transfer, not a short file that ends cleanly.
			a.log.Error("snapshot stream failed", "request_id", ev.RequestID, "error", err)
			panic(http.ErrAbortHandler)
		}
	}}
}

// restoreSnapshot answers POST sys/storage/raft/snapshot(-force): restoring
// a snapshot of another cluster needs snapshot-force, as in Vault. The
// event is recorded after the restore, in the restored log, naming the
// head it replaced.
func (a *API) restoreSnapshot(req *request) reply {
	r, ev, n := req.http, req.ev, a.cfg.Node
	force := strings.HasSuffix(req.path, "-force")
	// The server's read timeout bounds strangers; a root caller's
	// snapshot of gigabytes may take longer to upload.
	_ = http.NewResponseController(req.w).SetReadDeadline(time.Time{})
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
