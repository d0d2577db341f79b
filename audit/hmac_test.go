package audit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// HMACKey gives what HMAC gives, also from many goroutines at once.
func TestHMACKeyMatchesHMAC(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	k := NewHMACKey(key)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				v := []byte(fmt.Sprintf("value %d %d", g, i))
				if got, want := k.Sum(v), HMAC(key, v); got != want {
					t.Errorf("Sum(%q) = %s, want %s", v, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	key[0] ^= 1 // the key was copied
	if k.Sum([]byte("x")) != HMAC([]byte("0123456789abcdef0123456789abcdef"), []byte("x")) {
		t.Fatal("HMACKey kept the caller's key buffer")
	}
}

// An event whose HMACs alone exceed the size limit is encoded with the
// summary directly, exactly as when the full encoding is tried first.
func TestEncodeSummarizesLargeBatchesTheSameWay(t *testing.T) {
	e := &Event{Operation: "transit/encrypt", Outcome: Allowed, HMACs: map[string]string{"client_token": "hmac-sha256:" + strings.Repeat("a", 64)}}
	for i := 0; i < 1000; i++ {
		e.HMACs[fmt.Sprintf("batch_input[%d].plaintext", i)] = "hmac-sha256:" + strings.Repeat(fmt.Sprint(i%10), 64)
	}
	if hmacsAtLeast(e.HMACs) <= MaxEventSize {
		t.Fatal("test event too small to take the shortcut")
	}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c := *e
	c.HMACs = summarizeHMACs(e.HMACs)
	want, _ := c.Encode()
	if string(b) != string(want) || !strings.Contains(string(b), `"batch_input[*].plaintext":"sha256-of-1000-hmacs:`) {
		t.Fatalf("encoded:\n%s\nwant:\n%s", b, want)
	}
}
