// Package snapfile is the file a snapshot save produces and a restore
// takes: the archive shape of Vault and OpenBao raft snapshots, so that
// `bao operator raft snapshot save/restore` and the vault/api client's
// Sys().RaftSnapshot work against keyraft.
//
// An archive is a gzip stream (stored, not compressed: the content is
// barrier ciphertext) holding a tar of four regular files:
//
//	meta.json          the Raft snapshot meta (JSON), Size = length of state.bin
//	state.bin          the state machine's snapshot stream (fsm: "keyraft-fsm-snapshot-v1")
//	SHA256SUMS         "<sha256 hex>  <name>\n" for meta.json and state.bin
//	SHA256SUMS.sealed  SHA256SUMS sealed by the cluster's keyring
//
// The package knows nothing about keys: Write is given the function that
// seals the sums, and a reader opens SHA256SUMS.sealed itself and checks
// the result with Archive.Verify. Older keyraft versions saved state.bin
// alone (the raw stream); restores still take it (see IsArchive).
package snapfile

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// The archive's entries.
const (
	MetaName   = "meta.json"
	StateName  = "state.bin"
	SumsName   = "SHA256SUMS"
	SealedName = "SHA256SUMS.sealed"
)

// MaxSmallEntry bounds meta.json, SHA256SUMS and SHA256SUMS.sealed (as
// Vault does): only state.bin may be large.
const MaxSmallEntry = 8 << 10

// maxPadding bounds the zeros a tar writer may add after the archive's
// end (GNU tar pads to 10 KiB records).
const maxPadding = 64 << 10

// ErrFormat is wrapped by every error Read returns for an input that is
// not a well-formed archive (truncated, altered, or something else).
var ErrFormat = errors.New("not a keyraft snapshot archive")

// IsArchive reports whether head, the first bytes of a file, starts an
// archive (gzip's magic); the raw stream of older versions starts with
// the state machine's own magic instead.
func IsArchive(head []byte) bool {
	return len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b
}

// Write writes the archive of a Raft snapshot to w: meta, then exactly
// meta.Size bytes of state, then SHA256SUMS and seal(SHA256SUMS). Nothing
// is buffered but the two small files, so the archive streams as the
// state is read. An error means w holds a broken archive: the caller must
// not let it pass for a whole one (abort the connection, drop the file).
func Write(w io.Writer, meta *raft.SnapshotMeta, state io.Reader, seal func(sums []byte) ([]byte, error)) error {
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	metaJSON = append(metaJSON, '\n')
	if len(metaJSON) > MaxSmallEntry {
		return fmt.Errorf("snapfile: the snapshot meta is %d bytes, more than %d", len(metaJSON), MaxSmallEntry)
	}
	zw, err := gzip.NewWriterLevel(w, gzip.NoCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	now := time.Now().UTC()
	put := func(name string, size int64, body io.Reader) ([]byte, error) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: now}); err != nil {
			return nil, err
		}
		h := sha256.New()
		n, err := io.CopyN(io.MultiWriter(tw, h), body, size)
		if err == io.EOF {
			err = fmt.Errorf("snapfile: %s ended after %d of %d bytes", name, n, size)
		}
		return h.Sum(nil), err
	}
	metaSum, err := put(MetaName, int64(len(metaJSON)), bytes.NewReader(metaJSON))
	if err != nil {
		return err
	}
	stateSum, err := put(StateName, meta.Size, state)
	if err != nil {
		return err
	}
	if n, _ := io.ReadFull(state, make([]byte, 1)); n != 0 {
		return fmt.Errorf("snapfile: the snapshot is longer than its meta's %d bytes", meta.Size)
	}
	sums := formatSums(map[string][]byte{MetaName: metaSum, StateName: stateSum})
	if _, err := put(SumsName, int64(len(sums)), bytes.NewReader(sums)); err != nil {
		return err
	}
	sealed, err := seal(sums)
	if err != nil {
		return fmt.Errorf("snapfile: sealing %s: %w", SumsName, err)
	}
	if len(sealed) == 0 || len(sealed) > MaxSmallEntry {
		return fmt.Errorf("snapfile: %s of %d bytes", SealedName, len(sealed))
	}
	if _, err := put(SealedName, int64(len(sealed)), bytes.NewReader(sealed)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// formatSums is SHA256SUMS: one "<hex>  <name>\n" line per file, by name.
func formatSums(sums map[string][]byte) []byte {
	var b bytes.Buffer
	for _, name := range []string{MetaName, StateName} {
		fmt.Fprintf(&b, "%x  %s\n", sums[name], name)
	}
	return b.Bytes()
}

// Archive is what Read found in a well-formed archive.
type Archive struct {
	// Meta is the Raft snapshot meta of meta.json.
	Meta raft.SnapshotMeta
	// StateSize is the length of state.bin.
	StateSize int64
	// Sealed is SHA256SUMS.sealed as it came (nil when absent): open it
	// with the keyring that made it and check it with Verify.
	Sealed []byte
	// hashes are the SHA-256 of meta.json and state.bin as read.
	hashes map[string][]byte
}

// Verify checks sums, the text of a SHA256SUMS file, against the archive
// as read: it must list exactly meta.json and state.bin, each once, with
// their hashes.
func (a *Archive) Verify(sums []byte) error {
	text := string(sums)
	if !strings.HasSuffix(text, "\n") {
		return fmt.Errorf("%w: %s does not end with a newline", ErrFormat, SumsName)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		want, known := a.hashes[name]
		got, err := hex.DecodeString(sum)
		switch {
		case !ok || err != nil || len(got) != sha256.Size:
			return fmt.Errorf("%w: %s has a malformed line", ErrFormat, SumsName)
		case !known:
			return fmt.Errorf("%w: %s lists an unknown file %q", ErrFormat, SumsName, name)
		case seen[name]:
			return fmt.Errorf("%w: %s lists %s twice", ErrFormat, SumsName, name)
		case !bytes.Equal(got, want):
			return fmt.Errorf("%w: the SHA-256 of %s does not match %s", ErrFormat, name, SumsName)
		}
		seen[name] = true
	}
	for name := range a.hashes {
		if !seen[name] {
			return fmt.Errorf("%w: %s does not list %s", ErrFormat, SumsName, name)
		}
	}
	return nil
}

// Read reads a whole archive from r. It hands state.bin to state as a
// reader (state must read it to its end, for example into a file, or
// through the state machine's validation) and hashes it on the way. It
// accepts only the four files, each once, regular, the small ones within
// MaxSmallEntry and state.bin within maxState bytes; it requires
// meta.json, state.bin and SHA256SUMS, checks SHA256SUMS (Verify) and
// meta.json's size, and reads to the end of the gzip stream (its
// checksum) and of r: nothing may follow. It does not open
// SHA256SUMS.sealed.
//
// An error about the input wraps ErrFormat (and, when reading r failed,
// that error too); an error of state is returned as it is.
func Read(r io.Reader, maxState int64, state func(io.Reader) error) (*Archive, error) {
	// gzip reads through br itself (a ByteReader), so br is positioned
	// right after the gzip stream at its end.
	src := &errReader{r: r}
	br := bufio.NewReader(src)
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, formatErr(src, "gzip header", err)
	}
	zr.Multistream(false)
	tr := tar.NewReader(zr)
	a := &Archive{hashes: map[string][]byte{}}
	small := map[string][]byte{}
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, formatErr(src, "tar", err)
		}
		name := hdr.Name
		switch {
		case name != MetaName && name != StateName && name != SumsName && name != SealedName:
			return nil, fmt.Errorf("%w: unexpected file %q", ErrFormat, name)
		case seen[name]:
			return nil, fmt.Errorf("%w: %s appears twice", ErrFormat, name)
		case hdr.Typeflag != tar.TypeReg:
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrFormat, name)
		case hdr.Size < 0:
			return nil, fmt.Errorf("%w: %s has a negative size", ErrFormat, name)
		case name == StateName && hdr.Size > maxState:
			return nil, fmt.Errorf("%w: %s of %d bytes, more than %d", ErrFormat, name, hdr.Size, maxState)
		case name != StateName && hdr.Size > MaxSmallEntry:
			return nil, fmt.Errorf("%w: %s of %d bytes, more than %d", ErrFormat, name, hdr.Size, MaxSmallEntry)
		}
		seen[name] = true
		if name == StateName {
			a.StateSize = hdr.Size
			if err := readState(src, tr, state, a); err != nil {
				return nil, err
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, formatErr(src, name, err)
		}
		small[name] = b
		if name == MetaName {
			sum := sha256.Sum256(b)
			a.hashes[name] = sum[:]
		}
	}
	if err := concludeGzip(src, br, zr); err != nil {
		return nil, err
	}
	for _, name := range []string{MetaName, StateName, SumsName} {
		if !seen[name] {
			return nil, fmt.Errorf("%w: no %s", ErrFormat, name)
		}
	}
	if err := json.Unmarshal(small[MetaName], &a.Meta); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, MetaName, err)
	}
	if a.Meta.Size != a.StateSize {
		return nil, fmt.Errorf("%w: %s says %d bytes, %s has %d", ErrFormat, MetaName, a.Meta.Size, StateName, a.StateSize)
	}
	if err := a.Verify(small[SumsName]); err != nil {
		return nil, err
	}
	a.Sealed = small[SealedName]
	return a, nil
}

// readState hands state.bin to state, hashing it, and reads what state
// left of it.
func readState(src *errReader, tr *tar.Reader, state func(io.Reader) error, a *Archive) error {
	h := sha256.New()
	body := &errReader{r: io.TeeReader(tr, h)}
	err := state(body)
	if err == nil {
		_, err = io.Copy(io.Discard, body)
	}
	if err != nil {
		if body.err != nil {
			return formatErr(src, StateName, body.err)
		}
		return err
	}
	a.hashes[StateName] = h.Sum(nil)
	return nil
}

// concludeGzip reads what follows the tar's end: only zeros (a tar
// writer's padding), then the gzip trailer (its CRC-32 and length are
// checked at EOF), then nothing.
func concludeGzip(src *errReader, br *bufio.Reader, zr *gzip.Reader) error {
	buf := make([]byte, 4096)
	padding := 0
	for {
		n, err := zr.Read(buf)
		padding += n
		for _, c := range buf[:n] {
			if c != 0 {
				return fmt.Errorf("%w: data after the end of the tar", ErrFormat)
			}
		}
		if padding > maxPadding {
			return fmt.Errorf("%w: more than %d bytes after the end of the tar", ErrFormat, maxPadding)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return formatErr(src, "gzip", err)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err != nil {
			return formatErr(src, "gzip", err)
		}
		return fmt.Errorf("%w: data after the end of the gzip stream", ErrFormat)
	}
	return nil
}

// formatErr wraps err, met reading part, as ErrFormat, and the error of
// reading the source too when there was one (a body too large, a
// connection cut).
func formatErr(src *errReader, part string, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if src.err != nil {
		return fmt.Errorf("%w: %s: %w", ErrFormat, part, src.err)
	}
	return fmt.Errorf("%w: %s: %v", ErrFormat, part, err)
}

// errReader remembers the first error other than io.EOF its reader gave.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
