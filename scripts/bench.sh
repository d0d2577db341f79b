#!/usr/bin/env bash
# Load runs of a real keyraft process in its default configuration (storage
# and crypto plugins out of process, every answer after its audit event is
# committed): the workloads of the side-by-side harness, driven by
# tools/loadgen, with the server's CPU (its process group: the node and its
# plugins) per request.
#
#   bash scripts/bench.sh            # 10 s per workload
#   DURATION=30s bash scripts/bench.sh
#   SERVER_FLAGS=-plugins-in-process bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
work=$(mktemp -d)
trap 'kill -9 -- -"$pgid" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/keyraft" ./cmd/keyraft
go build -o "$work/loadgen" ./tools/loadgen
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=http://127.0.0.1:$port
setsid "$work/keyraft" server -dev -dev-root-token-id=bench -dev-listen-address=127.0.0.1:"$port" ${SERVER_FLAGS:-} >"$work/server.log" 2>&1 &
pgid=$!
for _ in $(seq 300); do curl -sf "$addr/v1/sys/health" >/dev/null && break; sleep 0.1; done
curl -sf "$addr/v1/sys/health" >/dev/null || { echo "error: the server did not start; its log:" >&2; cat "$work/server.log" >&2; exit 1; }
curl -sf -H 'X-Vault-Token: bench' -X POST -d '{"type":"aes256-gcm96"}' "$addr/v1/transit/keys/bench" >/dev/null

ticks() { # CPU ticks of the server's process group
  local t=0 p s
  for p in $(pgrep -g "$pgid"); do
    s=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
    t=$((t + s))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)
printf '%-22s %10s %9s %9s %10s\n' workload "ops/s" "p50 ms" "p99 ms" "CPU us/op"
# ops are requests, except for batch runs, where they are items.
run() { # name, loadgen flags...
  local name=$1; shift
  local c0 c1 out
  c0=$(ticks)
  out=$("$work/loadgen" -addrs "$addr" -token bench -duration "$DURATION" -warmup 1s -json "$@")
  c1=$(ticks)
  python3 - "$name" "$out" "$c0" "$c1" "$hz" <<'PY'
import json, sys
name, out, c0, c1, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if out.get("errors"):
    print(f"{name}: errors {out['errors']} (first: {out.get('first_error', '')})", file=sys.stderr)
# The CPU counter also covers loadgen's 1 s warm-up: count the measured
# share of it only.
meas = out["elapsed_sec"]
cpu = (c1 - c0) / hz * meas / (meas + 1.0)
print(f"{name:<22} {out['ops_per_sec']:>10.0f} {out['p50_ms']:>9.2f} {out['p99_ms']:>9.2f} {cpu / max(out['ops'], 1) * 1e6:>10.1f}")
PY
}
run "encrypt 16 conns" -op encrypt -conns 16
run "encrypt 64 conns" -op encrypt -conns 64
run "decrypt 16 conns" -op decrypt -conns 16
run "create-key 16 conns" -op create-key -conns 16
run "batch 1000 x 1 conn" -op batch-encrypt -batch 1000 -conns 1
run "batch 1000 x 4 conns" -op batch-encrypt -batch 1000 -conns 4
