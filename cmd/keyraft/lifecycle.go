package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/keyraft/keyraft/cluster"
	"github.com/keyraft/keyraft/transit"
)

// unsafeMinPendingWindowEnv lowers the 1 h minimum pending window of a key
// destruction, so tests can watch a destruction complete. It is honoured
// only by a dev server (-dev, -dev-cluster) or a server started with
// -unsafe-test-settings (e2e tests run real servers from config files);
// any other server refuses to start while it is set, so a production
// node never destroys keys after seconds because of a stray variable.
const unsafeMinPendingWindowEnv = "KEYRAFT_UNSAFE_TEST_MIN_PENDING_WINDOW"

// unsafeTestSettingsFlag is the server flag that allows the unsafe test
// settings on a server that is not a dev server.
const unsafeTestSettingsFlag = "unsafe-test-settings"

// unsafeMinPendingWindow checks the unsafe test setting at server start:
// the window it sets (0 when unset), or the error and hint the server
// refuses to start with (set on a server that may not take it, or not a
// positive duration).
func unsafeMinPendingWindow(getenv func(string) string, dev, allowed bool) (d time.Duration, msg, hint string) {
	v := getenv(unsafeMinPendingWindowEnv)
	if v == "" {
		return 0, "", ""
	}
	if !dev && !allowed {
		return 0, unsafeMinPendingWindowEnv + " is set on a server that is not a dev server: it lets keys be destroyed after a pending window below one hour",
			"unset it; only a test server takes it, started with -dev, -dev-cluster or -" + unsafeTestSettingsFlag
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Sprintf("%s=%q is not a positive duration", unsafeMinPendingWindowEnv, transit.Truncate(v)),
			"give a duration such as 1s, or unset it"
	}
	return d, "", ""
}

type unsafeMinPendingWindowKey struct{}

// withUnsafeMinPendingWindow carries the checked unsafe test setting from
// the server's command line to every node it serves (a dev cluster has
// several), through their context.
func withUnsafeMinPendingWindow(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, unsafeMinPendingWindowKey{}, d)
}

// startLifecycle configures the engine's lifecycle settings (before the
// API serves) and starts the key lifecycle's background work: every
// unsealed node folds its encryption counts into the replicated records
// every few seconds; the leader activates, destroys and usage-rotates keys
// whose time has come (transit.Engine.LifecycleDue) once a minute, or
// every tick in the unsafe test mode. That mode is the checked setting
// in ctx (withUnsafeMinPendingWindow), logged at WARN on every start.
func startLifecycle(ctx context.Context, node *cluster.Node, engine *transit.Engine, log hclog.Logger) {
	tick, dueEvery := 5*time.Second, 12
	if minPendingWindow, _ := ctx.Value(unsafeMinPendingWindowKey{}).(time.Duration); minPendingWindow > 0 {
		log.Warn("UNSAFE: "+unsafeMinPendingWindowEnv+" is set; keys can be destroyed after a pending window below one hour. Tests only.", "min_pending_window", minPendingWindow)
		engine.UnsafeMinPendingWindow = minPendingWindow
		tick, dueEvery = 250*time.Millisecond, 1
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
