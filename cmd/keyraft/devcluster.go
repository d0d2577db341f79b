package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/config"
	"github.com/keyraft/keyraft/transport"
)

// devClusterNode is what the first node of a dev cluster tells the others.
type devClusterSeed struct {
	apiAddr string
	res     *cluster.InitResult
}

// serveDevCluster runs size real nodes in this process, each with its
// own data directory, API, cluster port and gossip port on 127.0.0.1:
// the first is initialized (one unseal key), the others join it through
// the same join protocol as real nodes (challenge, unseal with the key)
// and become voters. Data is removed on exit.
func serveDevCluster(ctx context.Context, size int, firstListen, token string, stdout io.Writer, logger hclog.Logger) error {
	host, portStr, err := net.SplitHostPort(firstListen)
	if err != nil {
		return fmt.Errorf("-dev-listen-address %q: %v", firstListen, err)
	}
	base, err := strconv.Atoi(portStr)
	if err != nil || base < 0 || base > 65535-10*size {
		return fmt.Errorf("-dev-listen-address %q: bad port", firstListen)
	}
	dir, err := os.MkdirTemp("", "keyraft-dev-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port := func(i, off int) string {
		if base == 0 {
			return net.JoinHostPort(host, "0")
		}
		return net.JoinHostPort(host, strconv.Itoa(base+10*i+off))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seed := make(chan devClusterSeed, 1)
	var first devClusterSeed
	type ready struct {
		id, api, cluster, gossip string
	}
	// The API ports are the ones the banner and the README promise: a
	// taken one stops the start before any node runs.
	for i := 0; i < size; i++ {
		if base != 0 && !portFree(port(i, 0), false) {
			return fmt.Errorf("%w: %s, the API port of node%d", errDevPortInUse, port(i, 0), i+1)
		}
	}
	readyCh := make(chan ready, size)
	errs := make(chan error, size)
	for i := 0; i < size; i++ {
		cfg := config.Dev(port(i, 0))
		cfg.Storage.NodeID = fmt.Sprintf("node%d", i+1)
		cfg.Storage.Path = filepath.Join(dir, cfg.Storage.NodeID)
		apiPort := 0 // 0: the OS picks every port
		if base != 0 {
			apiPort = base + 10*i
		}
		side := pickDevSidePorts(host, apiPort)
		side.apply(cfg)
		cfg.Storage.Autopilot = &config.Autopilot{ServerStabilizationTime: "2s"}
		if err := cfg.Validate(); err != nil {
			return err
		}
		i := i
		onReady := func(node *cluster.Node, apiAddr string) error {
			if i == 0 {
				res, err := devInit(ctx, node, token)
				if err != nil {
					return err
				}
				seed <- devClusterSeed{apiAddr: apiAddr, res: res}
			} else {
				s := <-seed
				seed <- s
				jctx, jcancel := context.WithTimeout(ctx, time.Minute)
				defer jcancel()
				if err := (&transport.Joiner{Node: node}).Join(jctx, s.apiAddr); err != nil {
					return fmt.Errorf("%s joining: %v", cfg.Storage.NodeID, err)
				}
				if _, err := node.Unseal(jctx, s.res.Keys[0]); err != nil {
					return fmt.Errorf("%s unsealing: %v", cfg.Storage.NodeID, err)
				}
			}
			clusterAddr, gossipAddr := side.bound(node)
			readyCh <- ready{cfg.Storage.NodeID, apiAddr, side.withNote(clusterAddr), side.withNote(gossipAddr)}
			return nil
		}
		go func() { errs <- serve(ctx, cfg, true, onReady, logger.Named(cfg.Storage.NodeID)) }()
	}
	var nodes []ready
	for len(nodes) < size {
		select {
		case r := <-readyCh:
			nodes = append(nodes, r)
		case err := <-errs:
			return err
		case <-ctx.Done():
			return nil
		}
	}
	first = <-seed
	fmt.Fprintf(stdout, "==> keyraft dev cluster of %d nodes started. Data is removed on exit; never keep real keys here.\n\n", size)
	for _, n := range nodes {
		fmt.Fprintf(stdout, "    %-6s api %-24s cluster %-16s gossip %s\n", n.id, n.api, n.cluster, n.gossip)
	}
	fmt.Fprintf(stdout, `
    $ export KEYRAFT_ADDR='%s'
    $ export VAULT_ADDR='%s'

Every node serves key use; writes sent to a follower are forwarded to the
leader. Try 'keyraft operator members' and 'keyraft operator raft list-peers'.

Unseal Key: %s
Root Token: %s

`, first.apiAddr, first.apiAddr, base64.StdEncoding.EncodeToString(first.res.Keys[0]), first.res.RootToken)
	// Run until interrupted or a node fails.
	select {
	case <-ctx.Done():
		for i := 0; i < size; i++ {
			<-errs
		}
		return nil
	case err := <-errs:
		return err
	}
}

// devSidePorts are the ports a dev node binds besides its API: the
// cluster port (Raft and forwarding, TCP) and gossip (TCP and UDP).
type devSidePorts struct {
	cluster, gossip string
	// notes say, per address, why it is not the one asked for.
	notes map[string]string
}

// pickDevSidePorts gives a dev node whose API listens on host:apiPort
// the next two ports up for cluster traffic and gossip when they are
// free, else ports that are free now (a neighbouring server must not
// stop a throwaway node over ports nobody dials by hand); the banner
// says which. apiPort 0 leaves them to the OS too.
func pickDevSidePorts(host string, apiPort int) devSidePorts {
	p := devSidePorts{notes: map[string]string{}}
	pick := func(want int, udp bool) string {
		if apiPort == 0 {
			return net.JoinHostPort(host, "0")
		}
		addr := net.JoinHostPort(host, strconv.Itoa(want))
		if portFree(addr, udp) {
			return addr
		}
		for range 100 {
			l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				break
			}
			other := net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
			l.Close()
			if portFree(other, udp) {
				p.notes[other] = fmt.Sprintf("%d was in use", want)
				return other
			}
		}
		return addr // let the bind say what is wrong
	}
	p.cluster = pick(apiPort+1, false)
	p.gossip = pick(apiPort+2, true)
	return p
}

// portFree reports whether addr can be bound for TCP (and UDP) now.
func portFree(addr string, udp bool) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	if udp {
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		u.Close()
	}
	return true
}

// apply sets the ports in a dev node's configuration.
func (p devSidePorts) apply(cfg *config.Config) {
	cfg.Listeners[0].ClusterAddress = p.cluster
	cfg.Storage.GossipAddress = p.gossip
}

// bound returns the addresses the node bound (the OS's choice for port
// 0).
func (p devSidePorts) bound(node *cluster.Node) (clusterAddr, gossipAddr string) {
	clusterAddr, gossipAddr = node.ClusterAddr(), p.gossip
	for _, m := range node.Members() {
		if m.NodeID == node.Config().NodeID && m.GossipAddr != "" {
			gossipAddr = m.GossipAddr
		}
	}
	return clusterAddr, gossipAddr
}

// withNote is addr and, when it is not the port asked for, why.
func (p devSidePorts) withNote(addr string) string {
	if n := p.notes[addr]; n != "" {
		return addr + " (" + n + ")"
	}
	return addr
}

// table lists the ports of a dev node for its banner.
func (p devSidePorts) table(node *cluster.Node, apiAddr string) string {
	clusterAddr, gossipAddr := p.bound(node)
	if u, err := url.Parse(apiAddr); err == nil && u.Host != "" {
		apiAddr = u.Host
	}
	note := func(addr string) string {
		if n := p.notes[addr]; n != "" {
			return "; " + n
		}
		return ""
	}
	return fmt.Sprintf("    API      %-22s  HTTP API (-dev-listen-address)\n"+
		"    cluster  %-22s  Raft and forwarding, TCP%s\n"+
		"    gossip   %-22s  membership, TCP and UDP%s\n",
		apiAddr, clusterAddr, note(clusterAddr), gossipAddr, note(gossipAddr))
}

// errDevPortInUse: a port a dev cluster must have is taken.
var errDevPortInUse = errors.New("port in use")

// devClusterPortsHelp is the hint of a dev cluster whose API port is
// taken.
const devClusterPortsHelp = "another server uses that port: start the dev cluster on other ports with -dev-listen-address=127.0.0.1:PORT (the nodes' APIs use PORT, PORT+10, PORT+20, …; each node also takes its API port +1 and +2 when they are free, other free ports when not)"

// devPortsHelp is the hint of a dev server whose API port is taken.
const devPortsHelp = "another server uses that port: pick another with -dev-listen-address=127.0.0.1:PORT (the node also takes PORT+1 and PORT+2 when they are free, other free ports when not)"
