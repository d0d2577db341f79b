package forward

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
)

// Frame layout (see the package documentation for the rules):
//
//	kind    1 byte   version<<4 | type
//	id      8 bytes  big-endian request id, never 0
//	length  4 bytes  big-endian payload length
//	payload length bytes
const (
	headerLen = 13

	// wireVersion is the only version this package speaks. A frame with
	// any other version is a protocol violation.
	wireVersion = 1

	typeRequest  = 1 // client → server: payload is the request
	typeResponse = 2 // server → client: payload is the handler's result
	typeError    = 3 // server → client: payload is the handler's error text
	typeCancel   = 4 // client → server: the caller gave up; length is 0
)

// DefaultMaxFrame is the payload limit when a config leaves MaxFrame at 0.
const DefaultMaxFrame = 64 << 20

// maxFrameLimit is the largest payload the 4-byte length can describe.
const maxFrameLimit = math.MaxUint32

// errProtocol marks a frame or frame sequence that breaks the protocol;
// the receiver closes the connection.
var errProtocol = errors.New("forward: protocol violation")

// frame is one decoded frame.
type frame struct {
	typ     byte
	id      uint64
	payload []byte
}

func typeName(t byte) string {
	switch t {
	case typeRequest:
		return "request"
	case typeResponse:
		return "response"
	case typeError:
		return "error"
	case typeCancel:
		return "cancel"
	}
	return fmt.Sprintf("type %d", t)
}

func violation(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errProtocol, fmt.Sprintf(format, args...))
}

// readFrame decodes one frame from r, whose payload may be at most limit
// bytes. It returns io.EOF if r ends cleanly before a frame starts, an
// error wrapping errProtocol for a malformed, unknown, oversized (also
// ErrFrameTooLarge) or truncated frame, and r's own error otherwise.
// The length is checked before anything is allocated, and a large payload
// is allocated only as fast as its bytes arrive, so a peer that announces
// limit bytes and sends none costs nothing.
func readFrame(r io.Reader, limit int) (frame, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, fmt.Errorf("%w: truncated frame header: %w", errProtocol, err)
		}
		return frame{}, err
	}
	kind := hdr[0]
	if v := kind >> 4; v != wireVersion {
		return frame{}, violation("unsupported wire version %d (kind byte %#02x)", v, kind)
	}
	f := frame{typ: kind & 0x0f, id: binary.BigEndian.Uint64(hdr[1:9])}
	n := binary.BigEndian.Uint32(hdr[9:13])
	switch f.typ {
	case typeRequest, typeResponse, typeError:
	case typeCancel:
		if n != 0 {
			return frame{}, violation("cancel frame with %d-byte payload", n)
		}
	default:
		return frame{}, violation("unknown frame type %d", f.typ)
	}
	if f.id == 0 {
		return frame{}, violation("%s frame with id 0", typeName(f.typ))
	}
	if uint64(n) > uint64(limit) {
		return frame{}, fmt.Errorf("%w: %w: %s frame of %d bytes, limit %d",
			errProtocol, ErrFrameTooLarge, typeName(f.typ), n, limit)
	}
	p, err := readPayload(r, int(n))
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, fmt.Errorf("%w: truncated %s frame: %w", errProtocol, typeName(f.typ), io.ErrUnexpectedEOF)
		}
		return frame{}, err
	}
	f.payload = p
	return f, nil
}

// readChunk is the most readPayload allocates ahead of the bytes it has.
const readChunk = 64 << 10

// readPayload reads exactly n bytes, growing the buffer as data arrives.
func readPayload(r io.Reader, n int) ([]byte, error) {
	if n <= readChunk {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b := make([]byte, 0, readChunk)
	for len(b) < n {
		step := min(n-len(b), max(len(b), readChunk))
		b = slices.Grow(b, step)
		m, err := io.ReadFull(r, b[len(b):len(b)+step])
		b = b[:len(b)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// writeFrame buffers one frame in w.
func writeFrame(w *bufio.Writer, typ byte, id uint64, payload []byte) error {
	hdr := w.AvailableBuffer()
	hdr = append(hdr, wireVersion<<4|typ)
	hdr = binary.BigEndian.AppendUint64(hdr, id)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(payload)))
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// appendFrame is writeFrame for a byte slice (tests and fuzzing).
func appendFrame(b []byte, typ byte, id uint64, payload []byte) []byte {
	b = append(b, wireVersion<<4|typ)
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// outFrame is a frame waiting for a connection's writer goroutine. A
// client's request carries its call, and gets its id from claim.
type outFrame struct {
	typ     byte
	id      uint64
	payload []byte
	call    *call
}

// writeLoop is a connection's only writer: it writes frames from out,
// flushing whenever out runs dry, until done is closed or a write fails.
// A frame with a call is written only if claim returns true.
func writeLoop(w *bufio.Writer, out <-chan outFrame, done <-chan struct{}, claim func(*outFrame) bool) error {
	for {
		var f outFrame
		select {
		case f = <-out:
		case <-done:
			return nil
		}
		yielded := false
		for {
			if f.call == nil || claim(&f) {
				if err := writeFrame(w, f.typ, f.id, f.payload); err != nil {
					return err
				}
			}
			more := false
			select {
			case f = <-out:
				more = true
			default:
				// Before paying a write syscall, let the goroutines that
				// are about to queue a frame do so, once per batch.
				if !yielded {
					yielded = true
					runtime.Gosched()
					select {
					case f = <-out:
						more = true
					default:
					}
				}
			}
			if !more {
				break
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// limitFrame turns a config value into a payload limit.
func limitFrame(n int) int {
	if n <= 0 {
		return DefaultMaxFrame
	}
	if uint64(n) > maxFrameLimit {
		return maxFrameLimit
	}
	return n
}
