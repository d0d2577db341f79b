package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// The benchmarks run the whole HTTP path of one node: a real client with
// keep-alive, the httptest server, the pipeline (token lookup, audit
// record), the engine and the crypto. They are not tests: run them with
// go test -run=^$ -bench=. -benchtime=3s ./transport

func benchEncrypt(b *testing.B, size int) {
	h := newHarness(b, harnessOpts{discardAudit: true})
	benchEncryptOn(b, h, size)
}

func benchEncryptOn(b *testing.B, h *harness, size int) {
	h.createKey("bench", nil)
	pt := make([]byte, size)
	rand.Read(pt)
	body, _ := json.Marshal(map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)})
	url := h.srv.URL + "/v1/transit/encrypt/bench"
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		benchPost(b, h, url, body)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func benchDecrypt(b *testing.B, size int) {
	h := newHarness(b, harnessOpts{discardAudit: true})
	h.createKey("bench", nil)
	pt := make([]byte, size)
	rand.Read(pt)
	ct := h.must(200, "POST", "transit/encrypt/bench", map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)}).str("ciphertext")
	body, _ := json.Marshal(map[string]string{"ciphertext": ct})
	url := h.srv.URL + "/v1/transit/decrypt/bench"
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		benchPost(b, h, url, body)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func benchPost(b *testing.B, h *harness, url string, body []byte) {
	if err := post(h, url, body); err != nil {
		b.Fatal(err)
	}
}

func post(h *harness, url string, body []byte) error {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", h.token)
	res, err := h.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}

func BenchmarkEncrypt32B(b *testing.B)  { benchEncrypt(b, 32) }
func BenchmarkEncrypt4KiB(b *testing.B) { benchEncrypt(b, 4096) }
func BenchmarkDecrypt32B(b *testing.B)  { benchDecrypt(b, 32) }
func BenchmarkDecrypt4KiB(b *testing.B) { benchDecrypt(b, 4096) }

// With the replicated audit log every request also commits its event
// through Raft (group commit), as a production node does.
func BenchmarkEncrypt32BRaftAudit(b *testing.B) {
	benchEncryptOn(b, newHarness(b, harnessOpts{raftAudit: true}), 32)
}

// BenchmarkEncryptConns measures encrypt (32 B) with 16 and 64 concurrent
// keep-alive connections, with the replicated audit log and with audit
// events discarded, and reports throughput and p50/p99 latency.
func BenchmarkEncryptConns(b *testing.B) {
	for _, conns := range []int{16, 64} {
		for _, mode := range []string{"audited", "unaudited"} {
			b.Run(fmt.Sprintf("%s/conns=%d", mode, conns), func(b *testing.B) {
				h := newHarness(b, harnessOpts{raftAudit: mode == "audited", discardAudit: mode != "audited"})
				h.createKey("bench", nil)
				h.client.Transport.(*http.Transport).MaxIdleConnsPerHost = conns
				body, _ := json.Marshal(map[string]string{"plaintext": base64.StdEncoding.EncodeToString(make([]byte, 32))})
				url := h.srv.URL + "/v1/transit/encrypt/bench"
				var mu sync.Mutex
				var lat []time.Duration
				b.SetParallelism((conns + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var mine []time.Duration
					for pb.Next() {
						start := time.Now()
						if err := post(h, url, body); err != nil {
							b.Error(err) // not Fatal: this is not the benchmark's goroutine
							return
						}
						mine = append(mine, time.Since(start))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				b.StopTimer()
				slices.Sort(lat)
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}

// BenchmarkHMACBigKey uses a key with a large record (rsa-4096, 20
// versions, ~74 KB): what per-request reads of the record would cost.
func BenchmarkHMACBigKey(b *testing.B) {
	h := newHarness(b, harnessOpts{discardAudit: true})
	h.createKey("big", map[string]any{"type": "rsa-4096"})
	for range 19 {
		h.must(200, "POST", "transit/keys/big/rotate", nil)
	}
	body, _ := json.Marshal(map[string]string{"input": base64.StdEncoding.EncodeToString([]byte("mac me"))})
	url := h.srv.URL + "/v1/transit/hmac/big"
	b.ResetTimer()
	for b.Loop() {
		benchPost(b, h, url, body)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkEncryptBatch100 is the batch hot path: one request of 100
// items of 32 B (per-item cost is b.Elapsed / (b.N*100)).
func BenchmarkEncryptBatch100(b *testing.B) {
	h := newHarness(b, harnessOpts{discardAudit: true})
	h.createKey("bench", nil)
	items := make([]map[string]string, 100)
	for i := range items {
		pt := make([]byte, 32)
		rand.Read(pt)
		items[i] = map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)}
	}
	body, _ := json.Marshal(map[string]any{"batch_input": items})
	url := h.srv.URL + "/v1/transit/encrypt/bench"
	b.ResetTimer()
	for b.Loop() {
		benchPost(b, h, url, body)
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "items/s")
}
