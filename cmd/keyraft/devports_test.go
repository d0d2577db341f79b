package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
)

// freeRun returns a 127.0.0.1 port P such that P to P+n-1 are free now
// (TCP and UDP), below the ephemeral range.
func freeRun(t *testing.T, n int) int {
	t.Helper()
	for range 1000 {
		p := 17000 + rand.IntN(2900)
		ok := true
		for i := range n {
			ok = ok && portFree(net.JoinHostPort("127.0.0.1", strconv.Itoa(p+i)), true)
		}
		if ok {
			return p
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

// TestPickDevSidePorts: a dev node takes its API port +1 and +2 when
// they are free, other free ones (and says why) when they are not, a
// gossip port whose UDP side is taken counting as taken; port 0 leaves
// every choice to the OS.
func TestPickDevSidePorts(t *testing.T) {
	p := freeRun(t, 3)
	addr := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	got := pickDevSidePorts("127.0.0.1", p)
	if got.cluster != addr(p+1) || got.gossip != addr(p+2) || len(got.notes) != 0 {
		t.Errorf("all free: %+v, want %s and %s without notes", got, addr(p+1), addr(p+2))
	}
	tcp, err := net.Listen("tcp", addr(p+1))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", addr(p+2))
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	got = pickDevSidePorts("127.0.0.1", p)
	if got.cluster == addr(p+1) || got.notes[got.cluster] != fmt.Sprintf("%d was in use", p+1) {
		t.Errorf("cluster port taken: %q, notes %v", got.cluster, got.notes)
	}
	if got.gossip == addr(p+2) || got.notes[got.gossip] != fmt.Sprintf("%d was in use", p+2) {
		t.Errorf("gossip's UDP port taken: %q, notes %v", got.gossip, got.notes)
	}
	if !portFree(got.cluster, false) || !portFree(got.gossip, true) {
		t.Errorf("the ports picked instead are not free: %+v", got)
	}
	if got := pickDevSidePorts("127.0.0.1", 0); got.cluster != "127.0.0.1:0" || got.gossip != "127.0.0.1:0" {
		t.Errorf("port 0: %+v", got)
	}
}

// TestDevAPIPortInUse: a dev server or dev cluster whose API port is
// taken fails at once, naming the port and the flag that changes it.
func TestDevAPIPortInUse(t *testing.T) {
	p := freeRun(t, 30)
	busy := func(port int) net.Listener {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	busy(p)
	busy(p + 20)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"-dev", fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", p)},
			[]string{fmt.Sprintf("error: listening on 127.0.0.1:%d: ", p), "address already in use", "hint: another server uses that port: pick another with -dev-listen-address=127.0.0.1:PORT"}},
		{[]string{"-dev-cluster=3", fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", p+10)},
			[]string{fmt.Sprintf("error: port in use: 127.0.0.1:%d, the API port of node2", p+20), "hint: another server uses that port: start the dev cluster on other ports with -dev-listen-address=127.0.0.1:PORT"}},
	} {
		var out, errOut bytes.Buffer
		code := runServer(context.Background(), tt.args, &out, &errOut, func(string) string { return "" })
		for _, w := range tt.want {
			if code != 1 || !strings.Contains(errOut.String(), w) {
				t.Errorf("%v: exit %d, stderr %q; want exit 1 with %q", tt.args, code, errOut.String(), w)
			}
		}
	}
}
