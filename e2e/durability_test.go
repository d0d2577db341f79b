package e2e

import (
	"crypto/rand"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyraft/keyraft/internal/testwait"
)

// TestKill9LosesNothingAcknowledged checks promise 3 against kill -9: a
// client encrypts and rotates sequentially, recording every answer it
// got, while another goroutine SIGKILLs the server at a random operation.
// After a restart every acknowledged ciphertext decrypts to its plaintext
// and the key has at least the version the last acknowledged rotate
// reported. Two rounds, bounded in operations.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	const (
		rounds      = 2
		encrypts    = 200 // per round
		rotateEvery = 50
	)
	n := newConfigNode(t)
	n.start()
	shares, _, root := n.initNode(3, 2)
	n.unseal(shares[0], shares[1])
	c := n.client(root)
	write(t, c, "transit/keys/dur", map[string]any{"type": "aes256-gcm96"})

	var acked []sealed
	latest := 1 // the version the last acknowledged rotate reported
	for round := 1; round <= rounds; round++ {
		// Operations of the round: the encrypts and the rotates between
		// them. The kill comes right before operation killAt is sent, so it
		// races with that request.
		ops := encrypts + (encrypts-1)/rotateEvery
		killAt := 1 + mathrand.IntN(ops)
		t.Logf("round %d: SIGKILL before operation %d of %d", round, killAt, ops)
		trigger, killed := make(chan struct{}), make(chan struct{})
		proc := n.cmd.Process
		go func() {
			<-trigger
			proc.Signal(syscall.SIGKILL)
			close(killed)
		}()
		op := 0
		next := func() {
			op++
			if op == killAt {
				close(trigger)
			}
		}
		fired := func() bool { return op >= killAt }

		for i := 0; i < encrypts; i++ {
			if i > 0 && i%rotateEvery == 0 {
				next()
				s, err := c.Logical().Write("transit/keys/dur/rotate", nil)
				if err != nil {
					if !fired() {
						t.Fatalf("round %d: rotate before the kill: %v", round, err)
					}
					break
				}
				if s == nil || s.Data == nil {
					t.Fatalf("round %d: rotate answered without the key", round)
				}
				v := num(t, s.Data, "latest_version")
				if v <= latest {
					t.Fatalf("round %d: rotate answered latest_version %d after %d", round, v, latest)
				}
				latest = v
			}
			next()
			pt := make([]byte, 1+mathrand.IntN(64))
			rand.Read(pt)
			s, err := c.Logical().Write("transit/encrypt/dur", map[string]any{"plaintext": b64(pt)})
			if err != nil {
				if !fired() {
					t.Fatalf("round %d: encrypt %d before the kill: %v", round, i, err)
				}
				break
			}
			ct := str(t, s.Data, "ciphertext")
			if want := "vault:v" + strconv.Itoa(latest) + ":"; !strings.HasPrefix(ct, want) {
				t.Errorf("round %d: encrypt %d after rotate to v%d gave %.12s…", round, i, latest, ct)
			}
			acked = append(acked, sealed{"dur", ct, pt, "round " + strconv.Itoa(round) + " encrypt " + strconv.Itoa(i)})
		}
		if !fired() {
			close(trigger) // every operation came back before the kill point
		}
		<-killed
		<-n.exited
		t.Logf("round %d: %d ciphertexts acknowledged in all, latest acknowledged version %d", round, len(acked), latest)

		n.start()
		n.unseal(shares[2], shares[round%2])
		c = n.client(root)
		checkDecrypts(t, c, acked)
		if v := num(t, read(t, c, "transit/keys/dur"), "latest_version"); v < latest {
			t.Fatalf("round %d: after restart latest_version is %d, but a rotate to %d was acknowledged", round, v, latest)
		} else {
			latest = v // an unacknowledged rotate may have landed too
		}
		n.waitLeader() // rotates of the next round need a leader
	}
	if code := n.stop(); code != 0 {
		t.Errorf("SIGTERM: exit code %d, want 0", code)
	}
}

// TestStateRebuiltFromRaft: a node whose state store (state.db) is lost
// rebuilds it from its Raft snapshot and log on restart, and nothing
// acknowledged is missing. One variant has a snapshot, the other only
// the log.
func TestStateRebuiltFromRaft(t *testing.T) {
	t.Parallel()
	for _, withSnapshot := range []bool{true, false} {
		name := "log only"
		if withSnapshot {
			name = "snapshot and log"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			storage := ""
			if withSnapshot {
				storage = "  snapshot_threshold = 8\n  snapshot_interval = \"1s\""
			}
			n := newConfigNodeWith(t, storage)
			n.start()
			shares, _, root := n.initNode(1, 1)
			n.unseal(shares[0])
			c := n.client(root)
			var kept []sealed
			for i := 0; i < 12; i++ {
				if i == 0 {
					write(t, c, "transit/keys/rb", map[string]any{"type": "chacha20-poly1305"})
				} else {
					write(t, c, "transit/keys/rb/rotate", nil)
				}
				pt := []byte("before the loss, version " + strconv.Itoa(i+1))
				kept = append(kept, sealed{"rb", encrypt(t, c, "rb", pt), pt, "v" + strconv.Itoa(i+1)})
				if withSnapshot && i == 8 {
					testwait.Within(t, 60*time.Second, "a Raft snapshot", func() bool { return hasSnapshot(filepath.Join(n.dataDir, "snapshots")) })
				}
			}
			if code := n.stop(); code != 0 {
				t.Fatalf("SIGTERM: exit code %d", code)
			}
			if err := os.Remove(filepath.Join(n.dataDir, "state.db")); err != nil {
				t.Fatal(err)
			}
			n.start()
			// The seal config lives in the state: it must be back before the
			// node can be unsealed.
			cl := n.client("")
			testwait.Within(t, 60*time.Second, "the rebuilt state to show the node initialized", func() bool {
				st, err := cl.Sys().SealStatus()
				return err == nil && st.Initialized
			})

			n.unseal(shares[0])
			c = n.client(root)
			// Right after unseal the node may still be replaying its log. It
			// may say so (503, try again); it must not answer from a state
			// that lacks acknowledged writes.
			for _, k := range kept {
				var got []byte
				testwait.Within(t, 60*time.Second, "an answer other than 503", func() bool {
					s, err := c.Logical().Write("transit/decrypt/rb", map[string]any{"ciphertext": k.ciphertext})
					if statusOf(err) == 503 {
						return false
					}
					if err != nil {
						t.Fatalf("decrypt %s right after the rebuild: %v", k.what, err)
					}
					got = mustDecodeB64(t, str(t, s.Data, "plaintext"))
					return true
				})

				if string(got) != string(k.plaintext) {
					t.Errorf("%s decrypts to %q, want %q", k.what, got, k.plaintext)
				}
			}
			if v := num(t, read(t, c, "transit/keys/rb"), "latest_version"); v != 12 {
				t.Errorf("latest_version after the rebuild = %d, want 12", v)
			}
		})
	}
}
