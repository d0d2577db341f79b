package transport

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentUseRotateConfig encrypts from many goroutines while one
// rotates the key and another changes its configuration. Afterwards every
// ciphertext decrypts, latest_version is 1 + the acknowledged rotations
// (no rotation lost to a concurrent config write) and the last
// acknowledged config is in force. Run with -race.
func TestConcurrentUseRotateConfig(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createKey("k", nil)
	const workers, each, rotations, configs = 8, 40, 25, 25

	type result struct{ pt, ct string }
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []result
		errs    []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// Requests go through do, which reports failures with t.Fatalf; from
	// these goroutines they must use t.Errorf instead, so use a raw client.
	post := func(path string, body map[string]any) resp {
		return h.with(&noFatal{T: t, fail: fail}).do("POST", path, body)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				pt := b64(fmt.Sprintf("worker %d message %d", w, i))
				r := post("transit/encrypt/k", map[string]any{"plaintext": pt})
				if r.status != 200 {
					fail("encrypt: %d %s", r.status, r.raw)
					return
				}
				mu.Lock()
				results = append(results, result{pt, r.str("ciphertext")})
				mu.Unlock()
			}
		}()
	}
	rotated := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < rotations; i++ {
			r := post("transit/keys/k/rotate", nil)
			switch {
			case r.status == 200:
				rotated++
			case r.status == 503 && strings.Contains(string(r.raw), "concurrently"):
				// refused without effect: allowed under contention
			default:
				fail("rotate: %d %s", r.status, r.raw)
			}
		}
	}()
	lastDeletion := false
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < configs; i++ {
			want := i%2 == 0
			r := post("transit/keys/k/config", map[string]any{"deletion_allowed": want, "auto_rotate_period": fmt.Sprintf("%dh", 1+i)})
			switch {
			case r.status == 200:
				lastDeletion = want
			case r.status == 503 && strings.Contains(string(r.raw), "concurrently"):
			default:
				fail("config: %d %s", r.status, r.raw)
			}
		}
	}()
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
	if rotated == 0 {
		t.Fatal("no rotation succeeded")
	}

	info := h.keyInfo("k")
	if got := num(info, "latest_version"); got != 1+rotated {
		t.Fatalf("latest_version %d after %d acknowledged rotations", got, rotated)
	}
	if len(info["keys"].(map[string]any)) != 1+rotated {
		t.Fatalf("%d versions after %d rotations", len(info["keys"].(map[string]any)), rotated)
	}
	if info["deletion_allowed"] != lastDeletion {
		t.Fatalf("deletion_allowed %v, last acknowledged %v", info["deletion_allowed"], lastDeletion)
	}
	if len(results) != workers*each {
		t.Fatalf("%d ciphertexts", len(results))
	}
	// Every ciphertext decrypts, in batches.
	for i := 0; i < len(results); i += 50 {
		end := min(i+50, len(results))
		var items []any
		for _, r := range results[i:end] {
			items = append(items, map[string]any{"ciphertext": r.ct})
		}
		res := h.must(200, "POST", "transit/decrypt/k", map[string]any{"batch_input": items}).data()["batch_results"].([]any)
		for j, r := range res {
			if got := r.(map[string]any)["plaintext"]; got != results[i+j].pt {
				t.Fatalf("ciphertext %q decrypts to %v", results[i+j].ct, got)
			}
		}
	}
}

// TestConcurrentUpsert: many first encryptions with a missing key make
// exactly one key, and every ciphertext decrypts with it.
func TestConcurrentUpsert(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	const n = 16
	cts := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		mu.Lock()
		errs = append(errs, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.with(&noFatal{T: t, fail: fail}).do("POST", "transit/encrypt/fresh", map[string]any{"plaintext": b64(fmt.Sprint(i))})
			if r.status != 200 {
				fail("encrypt %d: %d %s", i, r.status, r.raw)
			}
			cts[i] = r.str("ciphertext")
		}()
	}
	wg.Wait()
	for _, e := range errs {
		t.Fatal(e)
	}
	if v := num(h.keyInfo("fresh"), "latest_version"); v != 1 {
		t.Fatalf("latest_version %d", v)
	}
	for i, ct := range cts {
		if got := h.must(200, "POST", "transit/decrypt/fresh", map[string]any{"ciphertext": ct}).str("plaintext"); got != b64(fmt.Sprint(i)) {
			t.Fatalf("ciphertext %d decrypts to %q", i, got)
		}
	}
}

// noFatal is a testing.TB for goroutines: Fatal and Fatalf record the
// failure instead of calling runtime.Goexit from the wrong goroutine.
type noFatal struct {
	*testing.T
	fail func(format string, args ...any)
}

func (n *noFatal) Fatal(args ...any)                 { n.fail("%s", fmt.Sprint(args...)) }
func (n *noFatal) Fatalf(format string, args ...any) { n.fail(format, args...) }
func (n *noFatal) Helper()                           {}
