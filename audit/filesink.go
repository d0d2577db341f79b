package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// FileSink appends events as JSON lines, whole lines only: a batch is one
// write and one fsync, a write that fails (a full disk) is cut back off
// the file, and a torn tail left by a crash is cut off when the sink
// (re)opens. The file is its own cursor (Positioner): delivery resumes
// after its last whole line. Past MaxBytes the file rotates, keeping Keep
// old files (path.1 is the newest).
type FileSink struct {
	path     string
	maxBytes int64
	keep     int
	f        *os.File
	size     int64
	pos      Position
	broken   bool // a failed write may have left a torn tail: re-open
}

// NewFileSink opens (creating) the file. maxBytes 0 disables rotation.
func NewFileSink(path string, maxBytes int64, keep int) (*FileSink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// At least one rotated file stays: an empty new file takes its
	// position from it.
	s := &FileSink{path: path, maxBytes: maxBytes, keep: max(keep, 1)}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open opens the file, cuts off a torn tail and reads the position from
// the last whole line (or from the newest rotated file when the current
// one is empty).
func (s *FileSink) open() error {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	f, pos, size, err := openLines(s.path)
	if err != nil {
		return err
	}
	if size == 0 {
		_, p, _, err := lastLine(s.path + ".1")
		switch {
		case err == nil:
			pos = p
		case !errors.Is(err, os.ErrNotExist):
			f.Close()
			return fmt.Errorf("audit: %s is empty and the position cannot be read from %s.1: %w", s.path, s.path, err)
		}
	}
	s.f, s.pos, s.size, s.broken = f, pos, size, false
	return nil
}

// openLines opens path for appending after cutting off anything after its
// last newline, and returns the position of its last line.
func openLines(path string) (*os.File, Position, int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, Position{}, 0, fmt.Errorf("audit: opening %s: %w", path, err)
	}
	keep, pos, err := tail(f)
	if err == nil {
		var st os.FileInfo
		if st, err = f.Stat(); err == nil && st.Size() != keep {
			if err = f.Truncate(keep); err == nil {
				err = f.Sync()
			}
		}
	}
	if err == nil {
		_, err = f.Seek(keep, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, Position{}, 0, fmt.Errorf("audit: recovering %s: %w", path, err)
	}
	return f, pos, keep, nil
}

// lastLine reads the position of path's last whole line.
func lastLine(path string) (int64, Position, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, Position{}, false, err
	}
	defer f.Close()
	keep, pos, err := tail(f)
	return keep, pos, pos.Seq > 0, err
}

// tail finds where f's whole lines end and the position of the last one.
// A last line that is not an event is an error (someone else's file: it
// is never cut), a line with no newline after it is a torn write.
func tail(f *os.File) (int64, Position, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, Position{}, err
	}
	size := st.Size()
	window := int64(2*MaxEventSize + 2)
	start := max(0, size-window)
	buf := make([]byte, size-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return 0, Position{}, err
	}
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 {
		if start > 0 {
			return 0, Position{}, fmt.Errorf("audit: %s ends in %d bytes without a line break: not an audit log", f.Name(), len(buf))
		}
		if len(buf) > 0 && !bytes.HasPrefix(buf, []byte(`{"seq":`)) {
			return 0, Position{}, fmt.Errorf("audit: %s holds a line that is not an audit event (move the file away to start a new one)", f.Name())
		}
		return 0, Position{}, nil // empty, or one torn event: cut it
	}
	keep := start + int64(end) + 1
	body := buf[:end]
	line := body[bytes.LastIndexByte(body, '\n')+1:]
	pos, err := lineSeq(line)
	if err != nil {
		return 0, Position{}, fmt.Errorf("audit: the last line of %s is not an audit event (move the file away to start a new one): %v", f.Name(), err)
	}
	return keep, pos, nil
}

// Position implements Positioner: after a failed write the file is opened
// again, which cuts off whatever part of the batch reached it.
func (s *FileSink) Position() (Position, error) {
	if s.broken || s.f == nil {
		if err := s.open(); err != nil {
			return Position{}, err
		}
	}
	return s.pos, nil
}

// Write implements Sink: the batch is one write followed by fsync.
func (s *FileSink) Write(b *Batch) error {
	if s.broken || s.f == nil {
		return errors.New("audit: file sink must be re-opened after an error")
	}
	if b.First <= s.pos.Seq {
		return fmt.Errorf("audit: batch from seq %d does not follow the file's last seq %d", b.First, s.pos.Seq)
	}
	if s.maxBytes > 0 && s.size > 0 && s.size+int64(len(b.Lines)) > s.maxBytes {
		if err := s.rotate(); err != nil {
			s.broken = true
			return err
		}
	}
	if _, err := s.f.Write(b.Lines); err != nil {
		s.cutBack()
		return fmt.Errorf("audit: writing %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		s.cutBack()
		return fmt.Errorf("audit: syncing %s: %w", s.path, err)
	}
	s.size += int64(len(b.Lines))
	s.pos = Position{Seq: b.Last, Hash: b.LastHash}
	return nil
}

// cutBack removes a failed batch's bytes; when even that fails the sink
// is re-opened before the next write, which cuts the torn tail then.
func (s *FileSink) cutBack() {
	s.broken = true
	if s.f.Truncate(s.size) == nil && s.f.Sync() == nil {
		if _, err := s.f.Seek(s.size, io.SeekStart); err == nil {
			s.broken = false
		}
	}
}

func (s *FileSink) rotate() error {
	s.f.Close()
	s.f = nil
	for i := s.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", s.path, i), fmt.Sprintf("%s.%d", s.path, i+1))
	}
	if err := os.Rename(s.path, s.path+".1"); err != nil {
		return err
	}
	return s.open()
}

// Close implements Sink.
func (s *FileSink) Close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

// Restart starts a new file after the log was replaced, so that the old
// and the new history never share a file (the old one is rotated away).
func (s *FileSink) Restart() error {
	if s.size > 0 {
		if err := s.rotate(); err != nil {
			s.broken = true
			return err
		}
	}
	s.pos = Position{}
	return nil
}
