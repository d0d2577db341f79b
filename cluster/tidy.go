package cluster

import (
	"context"
	"time"

	"github.com/keyraft/keyraft/access"
)

// Access is the node's access control: tokens, policies, namespaces,
// grants, certificate roles and break-glass sessions, over the node's
// replicated state.
func (n *Node) Access() *access.Service { return n.access }

// TidyLoop runs until ctx ends or the node closes: every interval, on the
// leader of an unsealed cluster that has caught up, it tidies expired
// tokens, grants and break-glass sessions (access.Service.Tidy).
func (n *Node) TidyLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.closed:
			return
		case <-t.C:
		}
		if !n.IsLeader() || n.Sealed() || !n.CaughtUp() {
			continue
		}
		n.access.Tidy(ctx, time.Now().UTC())
	}
}
