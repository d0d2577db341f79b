package e2e

import (
	"crypto/rand"
	mathrand "math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
