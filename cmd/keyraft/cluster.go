package main

import (
	"fmt"
	"text/tabwriter"
)

var operatorRaftJoinCmd = &command{
	name:    "operator raft join",
	args:    "LEADER_API_ADDR",
	summary: "ask a cluster to admit this node",
	network: true,
	help: `
Ask the cluster whose API is at LEADER_API_ADDR (any member) to admit the
node at -address. The node must be new (an empty data directory). It gets a
challenge only the unseal keys can answer: finish the join with
'keyraft operator unseal' on the joining node, using the cluster's keys. It
then receives its cluster certificate, catches up and unseals; autopilot
makes it a voter once it has been healthy for a while.

To bring back a node that was removed: stop it, empty its data directory,
start it again and run this command (a retry_join block in its config
does the same by itself).`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		var out struct {
			Joined bool `json:"joined"`
		}
		if err := c.Do(e.ctx, "POST", "sys/storage/raft/join", map[string]any{"leader_api_addr": pos[0]}, &out); err != nil {
			return &hintError{err: err, hint: "the joining node needs an empty data directory; LEADER_API_ADDR is a member's API URL, e.g. http://10.0.0.1:8200"}
		}
		if g.format == "json" {
			return printJSON(e.stdout, out)
		}
		fmt.Fprintln(e.stdout, "Joining: unseal this node with the cluster's unseal keys ('keyraft operator unseal') to finish.")
		return nil
	},
}

var operatorRaftRemovePeerCmd = &command{
	name:    "operator raft remove-peer",
	args:    "NODE_ID",
	summary: "remove a server from the Raft cluster",
	network: true,
	help: `
Remove the server NODE_ID from the Raft configuration (needs a root token).
The last voter cannot be removed. A removed node can come back only with
an empty data directory ('keyraft operator raft join').`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		pos, c, err := e.connect(cmd, fs, g, args, 1, 1)
		if err != nil {
			return err
		}
		if err := c.Do(e.ctx, "POST", "sys/storage/raft/remove-peer", map[string]any{"server_id": pos[0]}, nil); err != nil {
			return &hintError{err: err, hint: "see the servers with 'keyraft operator raft list-peers'"}
		}
		if g.format != "json" {
			fmt.Fprintf(e.stdout, "Removed %s from the cluster.\n", clean(pos[0]))
		}
		return nil
	},
}

var operatorMembersCmd = &command{
	name:    "operator members",
	summary: "list the cluster's nodes and their health",
	network: true,
	help: `
List every node gossip knows: its health (alive, suspect, failed, left),
seal state, Raft role and addresses. A node that stops answering shows as
failed within about two seconds.`,
	run: func(e *env, cmd *command, args []string) error {
		fs, g := e.flags(cmd)
		_, c, err := e.connect(cmd, fs, g, args, 0, 0)
		if err != nil {
			return err
		}
		var out struct {
			Data struct {
				Members []struct {
					NodeID      string `json:"node_id"`
					APIAddr     string `json:"api_addr"`
					ClusterAddr string `json:"cluster_addr"`
					Status      string `json:"status"`
					Sealed      bool   `json:"sealed"`
					Version     string `json:"version"`
					RaftMember  bool   `json:"raft_member"`
					Voter       bool   `json:"voter"`
					Leader      bool   `json:"leader"`
				} `json:"members"`
			} `json:"data"`
		}
		if err := c.Do(e.ctx, "GET", "sys/members", nil, &out); err != nil {
			return err
		}
		if g.format == "json" {
			return printJSON(e.stdout, out.Data)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 3, ' ', 0)
		fmt.Fprint(tw, "Node\tStatus\tSealed\tRaft\tAPI\tCluster\tVersion\n----\t------\t------\t----\t---\t-------\t-------\n")
		for _, m := range out.Data.Members {
			role := "-"
			switch {
			case m.Leader:
				role = "leader"
			case m.Voter:
				role = "voter"
			case m.RaftMember:
				role = "non-voter"
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\t%s\n", clean(m.NodeID), clean(m.Status), m.Sealed, role,
				clean(m.APIAddr), clean(m.ClusterAddr), clean(m.Version))
		}
		return tw.Flush()
	},
}
