package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
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
		id, api, cluster string
	}
	readyCh := make(chan ready, size)
	errs := make(chan error, size)
	for i := 0; i < size; i++ {
		cfg := config.Dev(port(i, 0))
		cfg.Storage.NodeID = fmt.Sprintf("node%d", i+1)
		cfg.Storage.Path = filepath.Join(dir, cfg.Storage.NodeID)
		cfg.Listeners[0].ClusterAddress = port(i, 1)
		cfg.Storage.GossipAddress = port(i, 2)
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
			readyCh <- ready{cfg.Storage.NodeID, apiAddr, node.ClusterAddr()}
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
		fmt.Fprintf(stdout, "    %-6s api %-24s cluster %s\n", n.id, n.api, n.cluster)
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
