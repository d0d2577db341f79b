package forward

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestReadFrameValid(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes: chunked read
	for _, tc := range []struct {
		typ     byte
		id      uint64
		payload []byte
	}{
		{typeRequest, 1, []byte("hello")},
		{typeResponse, 1<<64 - 1, nil},
		{typeError, 42, []byte("no such key")},
		{typeCancel, 7, nil},
		{typeRequest, 9, big},
	} {
		data := appendFrame(nil, tc.typ, tc.id, tc.payload)
		data = append(data, 0xff) // trailing byte must stay unread
		r := bytes.NewReader(data)
		f, err := readFrame(r, len(big))
		if err != nil {
			t.Fatalf("%s: %v", typeName(tc.typ), err)
		}
		if f.typ != tc.typ || f.id != tc.id || !bytes.Equal(f.payload, tc.payload) {
			t.Fatalf("%s: got type %d id %d %d bytes", typeName(tc.typ), f.typ, f.id, len(f.payload))
		}
		if r.Len() != 1 {
			t.Fatalf("%s: %d bytes left, want 1", typeName(tc.typ), r.Len())
		}
	}
}

func TestWriteFrameMatchesAppendFrame(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriterSize(&buf, 16) // smaller than a frame: exercises the Write paths
	if err := writeFrame(w, typeRequest, 5, []byte("payload bytes")); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(w, typeCancel, 5, nil); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	want := appendFrame(appendFrame(nil, typeRequest, 5, []byte("payload bytes")), typeCancel, 5, nil)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("writeFrame wrote %x, want %x", buf.Bytes(), want)
	}
}

func header(kind byte, id uint64, n uint32) []byte {
	b := []byte{kind}
	b = binary.BigEndian.AppendUint64(b, id)
	return binary.BigEndian.AppendUint32(b, n)
}

func TestReadFrameRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
		big  bool // also ErrFrameTooLarge
	}{
		{"version 0", header(0x01, 1, 0), "unsupported wire version 0", false},
		{"version 2", header(0x21, 1, 0), "unsupported wire version 2", false},
		{"type 0", header(0x10, 1, 0), "unknown frame type 0", false},
		{"type 5", header(0x15, 1, 0), "unknown frame type 5", false},
		{"type 15", header(0x1f, 1, 0), "unknown frame type 15", false},
		{"id 0", header(0x11, 0, 0), "request frame with id 0", false},
		{"cancel with payload", append(header(0x14, 3, 1), 'x'), "cancel frame with 1-byte payload", false},
		{"oversized", header(0x11, 1, 101), "request frame of 101 bytes, limit 100", true},
		{"max length", header(0x12, 1, 1<<32-1), "response frame of 4294967295 bytes", true},
		{"truncated header", header(0x11, 1, 4)[:7], "truncated frame header", false},
		{"truncated payload", append(header(0x11, 1, 4), "abc"...), "truncated request frame", false},
		{"header only", header(0x13, 1, 4), "truncated error frame", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readFrame(bytes.NewReader(tc.data), 100)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, errProtocol) {
				t.Fatalf("%v: not a protocol violation", err)
			}
			if errors.Is(err, ErrFrameTooLarge) != tc.big {
				t.Fatalf("%v: errors.Is(ErrFrameTooLarge) = %v", err, !tc.big)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestReadFrameCleanEOF(t *testing.T) {
	if _, err := readFrame(bytes.NewReader(nil), 100); err != io.EOF {
		t.Fatalf("empty input: %v, want io.EOF", err)
	}
}

// A header announcing a large payload followed by little data must not
// cost the announced size.
func TestReadFrameAllocatesAsDataArrives(t *testing.T) {
	data := append(header(0x11, 1, 60<<20), "only a few bytes"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := readFrame(bytes.NewReader(data), 64<<20); !errors.Is(err, errProtocol) {
			t.Fatalf("got %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if n := (after.TotalAlloc - before.TotalAlloc) / 10; n > 1<<20 {
		t.Fatalf("truncated 60 MiB frame allocated %d bytes per read", n)
	}
}

func TestErrorText(t *testing.T) {
	long := strings.Repeat("é", 1000) // 2000 bytes
	got := errorText(long, 1<<20)
	if len(got) != 1024 || got != long[:1024] {
		t.Fatalf("cut to %d bytes", len(got))
	}
	got = errorText("x"+long, 1<<20) // cut falls inside a rune
	if len(got) != 1023 {
		t.Fatalf("cut to %d bytes, want 1023", len(got))
	}
	if got := errorText("short", 3); got != "sho" {
		t.Fatalf("limit 3: %q", got)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendFrame(nil, typeRequest, 1, []byte("put k v")))
	f.Add(appendFrame(nil, typeResponse, 2, nil))
	f.Add(appendFrame(nil, typeError, 3, []byte("sealed")))
	f.Add(appendFrame(nil, typeCancel, 4, nil))
	f.Add(header(0x11, 1, 1<<31))
	f.Add(header(0x27, 0, 3))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	const limit = 1 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := readFrame(bytes.NewReader(data), limit)
		if err != nil {
			if len(data) == 0 {
				if err != io.EOF {
					t.Fatalf("empty input: %v", err)
				}
				return
			}
			if !errors.Is(err, errProtocol) {
				t.Fatalf("error without errProtocol: %v", err)
			}
			return
		}
		if fr.id == 0 || len(fr.payload) > limit {
			t.Fatalf("accepted id %d with %d bytes", fr.id, len(fr.payload))
		}
		switch fr.typ {
		case typeRequest, typeResponse, typeError:
		case typeCancel:
			if len(fr.payload) != 0 {
				t.Fatal("cancel with payload")
			}
		default:
			t.Fatalf("accepted type %d", fr.typ)
		}
		enc := appendFrame(nil, fr.typ, fr.id, fr.payload)
		if !bytes.Equal(enc, data[:len(enc)]) {
			t.Fatalf("decoded frame re-encodes to %x, input starts %x", enc, data[:min(len(data), len(enc))])
		}
	})
}
