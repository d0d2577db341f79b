package transport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/cluster/snapfile"
	"github.com/keyraft/keyraft/fsm"
)

// MaxSnapshotSize bounds an uploaded snapshot.
const MaxSnapshotSize = 8 << 30

// saveSnapshot answers GET sys/storage/raft/snapshot: a snapshot of the
// whole state (ciphertext only) as a Vault-shaped archive (snapfile),
// streamed after the event is recorded. It is gzip data, not a
// gzip-encoded answer: a Content-Encoding would have HTTP clients unpack
// it, and the vault/api client expects the gzip stream itself.
func (a *API) saveSnapshot(req *request) reply {
	ev, n := req.ev, a.cfg.Node
	return reply{stream: func(w http.ResponseWriter) {
		// The server's write timeout would cut a large snapshot; only a
		// sudo caller gets here.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Disposition", `attachment; filename="keyraft.snap"`)
		w.Header().Set("Cache-Control", "no-store")
		err := func() error {
			meta, rc, err := n.OpenSnapshot()
			if err != nil {
				return err
			}
			defer rc.Close()
			return snapfile.Write(w, meta, rc, n.SealSnapshotSums)
		}()
		if err != nil {
			// Headers may be gone: abort the connection so the client sees
			// a broken transfer, not a short file that ends cleanly (the
			// sealed sums come last, so a cut archive never has them).
			a.log.Error("snapshot stream failed", "request_id", ev.RequestID, "error", err)
			panic(http.ErrAbortHandler)
		}
	}}
}

// restoreSnapshot answers POST sys/storage/raft/snapshot(-force): the
// body is an archive, or the raw state-machine stream older versions
// saved. Without force an archive must carry checksums sealed by this
// cluster's keyring, and either kind must be of this cluster (its ID);
// snapshot-force restores any cluster's, as in Vault. The event is
// recorded after the restore, in the restored log, naming the head it
// replaced.
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
	body := bufio.NewReaderSize(http.MaxBytesReader(nil, r.Body, MaxSnapshotSize), 64<<10)
	format, rep, ok := a.receiveSnapshot(body, tmp, force)
	if !ok {
		return rep
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
	if format == "raw" && !force {
		a.log.Warn("restoring a raw snapshot of an older keyraft version: it is checked against this cluster's ID only, not its keyring",
			"request_id", ev.RequestID)
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
		"snapshot_format":          format,
	}
	return reply{status: http.StatusNoContent}
}

// receiveSnapshot reads the upload into tmp: the state of an archive
// (checked by extractArchive), or a raw stream as it is. It returns the
// format, and the answer to give unless ok.
func (a *API) receiveSnapshot(body *bufio.Reader, tmp *os.File, force bool) (format string, rep reply, ok bool) {
	head, err := body.Peek(64)
	switch {
	case snapfile.IsArchive(head):
		rep, ok := a.extractArchive(body, tmp, force)
		return "archive", rep, ok
	case fsm.IsSnapshot(head):
		if _, err := io.Copy(tmp, body); err != nil {
			return "raw", a.uploadError(err), false
		}
		return "raw", reply{}, true
	case err != nil && err != io.EOF:
		return "", a.uploadError(err), false
	}
	return "", errReply(http.StatusBadRequest, "not a keyraft snapshot: expected a snapshot archive (gzip, as sys/storage/raft/snapshot saves it) or the raw stream of an older keyraft version"), false
}

// extractArchive reads an archive from body, its state.bin into tmp, and
// checks it (snapfile.Read); without force, also that its sealed sums
// open with this node's keyring and match. It returns ok when the state
// in tmp may go on to the restore, or else the answer to give.
func (a *API) extractArchive(body io.Reader, tmp *os.File, force bool) (reply, bool) {
	arc, err := snapfile.Read(body, MaxSnapshotSize, func(state io.Reader) error {
		_, err := io.Copy(tmp, state)
		return err
	})
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || (err != nil && !errors.Is(err, snapfile.ErrFormat)):
		return a.uploadError(err), false
	case err != nil:
		return errReply(http.StatusBadRequest, "not a keyraft snapshot archive, or a damaged one: "+strings.TrimPrefix(err.Error(), snapfile.ErrFormat.Error()+": ")), false
	case force:
		return reply{}, true
	case len(arc.Sealed) == 0:
		return errReply(http.StatusBadRequest, "the snapshot archive has no "+snapfile.SealedName+": it cannot be checked against this cluster's keyring (is it of another cluster?); use sys/storage/raft/snapshot-force to restore it anyway"), false
	}
	sums, err := a.cfg.Node.OpenSnapshotSums(arc.Sealed)
	if errors.Is(err, cluster.ErrSealed) {
		return a.errorReply(err), false
	}
	if err == nil {
		err = arc.Verify(sums)
	}
	if err != nil {
		return errReply(http.StatusBadRequest, "the snapshot is not sealed by this cluster's keyring (it is of another cluster, or was altered); use sys/storage/raft/snapshot-force to replace this cluster's keys with it"), false
	}
	return reply{}, true
}

// uploadError is the answer to an upload that could not be stored: too
// large, the temporary file failed (a *os.PathError, which reading a
// request body never gives), or the body broke off.
func (a *API) uploadError(err error) reply {
	var tooBig *http.MaxBytesError
	var file *os.PathError
	switch {
	case errors.As(err, &tooBig):
		return errReply(http.StatusRequestEntityTooLarge, fmt.Sprintf("snapshot larger than %d bytes", int64(MaxSnapshotSize)))
	case errors.As(err, &file):
		return a.errorReply(err)
	}
	return errReply(http.StatusBadRequest, "failed to read the snapshot")
}
