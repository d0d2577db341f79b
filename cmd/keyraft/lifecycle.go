package main

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// unsafeMinPendingWindowEnv lowers the 1 h minimum pending window of a key
// destruction, so tests can watch a destruction complete. Never set it in
// production: it is logged as unsafe.
const unsafeMinPendingWindowEnv = "KEYRAFT_UNSAFE_TEST_MIN_PENDING_WINDOW"

// startLifecycle configures the engine's lifecycle settings (before the
// API serves) and starts the key lifecycle's background work: every
// unsealed node folds its encryption counts into the replicated records
// every few seconds; the leader activates, destroys and usage-rotates keys
// whose time has come (transit.Engine.LifecycleDue) once a minute, or
// every tick in the unsafe test mode.
func startLifecycle(ctx context.Context, node *cluster.Node, engine *transit.Engine, log hclog.Logger) {
	tick, dueEvery := 5*time.Second, 12
	if v := os.Getenv(unsafeMinPendingWindowEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			log.Error("ignoring "+unsafeMinPendingWindowEnv, "value", v, "error", "not a positive duration")
		} else {
			log.Warn("UNSAFE: "+unsafeMinPendingWindowEnv+" is set; keys can be destroyed after a pending window below one hour. Tests only.", "min_pending_window", d)
			engine.UnsafeMinPendingWindow = d
			tick, dueEvery = 250*time.Millisecond, 1
		}
	}
	go lifecycleLoop(ctx, node, engine, log, tick, dueEvery)
}

func lifecycleLoop(ctx context.Context, node *cluster.Node, engine *transit.Engine, log hclog.Logger, tick time.Duration, dueEvery int) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if node.Sealed() {
			continue
		}
		if err := engine.FlushUsage(ctx); err != nil && ctx.Err() == nil {
			log.Debug("encryption counts not committed yet", "error", err)
		}
		engine.SweepCache(time.Minute)
		if n%dueEvery != 0 || !node.IsLeader() {
			continue
		}
		if _, err := engine.LifecycleDue(ctx); err != nil && ctx.Err() == nil {
			log.Warn("lifecycle work incomplete", "error", err)
		}
	}
}
