package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestDevPortsTakenBySomeoneElse: with the ports after its API port
// taken by another server, 'keyraft server -dev' still starts, on other
// free ports, and its banner lists every port it listens on, for what,
// and why a port is not the one after the API's.
func TestDevPortsTakenBySomeoneElse(t *testing.T) {
	t.Parallel()
	var api int
	var blockers []net.Listener
	for api == 0 {
		p := freePort(t)
		// The two ports after it are this test's too (no other test of
		// the package gets them from freePort).
		if _, dup := handedOut.LoadOrStore(p+1, true); dup {
			continue
		}
		if _, dup := handedOut.LoadOrStore(p+2, true); dup {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if err != nil {
			continue // not a run of free ports; try another
		}
		blockers = append(blockers, l)
		api = p
	}
	defer func() {
		for _, l := range blockers {
			l.Close()
		}
	}()
	n := newDevNode(t, fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", api))
	n.start()
	banner := strings.Join(n.stdoutLines(), "\n")
	for _, want := range []string{
		fmt.Sprintf("    API      127.0.0.1:%d ", api),
		"HTTP API (-dev-listen-address)",
		fmt.Sprintf("Raft and forwarding, TCP; %d was in use", api+1),
		"    gossip   127.0.0.1:",
		"membership, TCP and UDP",
	} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	if strings.Contains(banner, fmt.Sprintf("    cluster  127.0.0.1:%d ", api+1)) {
		t.Errorf("the banner names the taken port as the cluster port:\n%s", banner)
	}
	c := n.client("")
	if st, err := c.Sys().SealStatus(); err != nil || st.Sealed {
		t.Fatalf("the dev node is not serving unsealed: %+v, %v", st, err)
	}
}
