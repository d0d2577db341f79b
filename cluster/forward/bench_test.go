package forward

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkCall measures round trips of 256-byte requests to an echo
// handler over one loopback TCP connection, with 1 and 64 concurrent
// callers. ns/op is per call, across all callers.
func BenchmarkCall(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			ts := startServer(b, "", echo, ServerConfig{})
			c := newClient(b, ClientConfig{})
			payload := bytes.Repeat([]byte{0xa5}, 256)
			if _, err := c.Call(context.Background(), ts.addr, payload); err != nil {
				b.Fatal(err) // dial outside the timed part
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						resp, err := c.Call(context.Background(), ts.addr, payload)
						if err != nil || len(resp) != len(payload) {
							b.Errorf("call: %d bytes, %v", len(resp), err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
