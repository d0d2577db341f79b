#!/usr/bin/env python3
"""How much audit sinks slow requests on one dev server, for one or more
keyraft binaries in the same run (before/after a change on one machine).

  python3 scripts/bench-sinks.py --bin before=/tmp/kr-before/keyraft \\
      --bin after=/tmp/kr-after/keyraft [--dur 7] [--json out.json]
  # the acked version:  --framing-option acked \\
  #   --collector-cmd '/tmp/kr-after/keyraft audit receive -listen 127.0.0.1:{port} -o {out}'

Per binary: a fresh dev server and collector, then loadgen encrypt runs
(32 conns, 32-byte plaintext, aes256-gcm96) in the phases none-1, healthy
(file sink + tcp socket sink), none-2, stalled (the collector SIGSTOPped for
the phase), heal (SIGCONT, wait until the collector's file stops growing,
count lines, duplicate and missing seqs), none-3. Before a loaded sink
phase the sinks are left to catch up with the log (a new device delivers it
from seq 1), so a phase measures the steady cost, not the backlog. Every
wait is bounded; all processes started are killed on exit.
"lag at stall end" is head seq minus each sink's cursor when the stalled
load ends. The default collector (--collector PORT OUT [RCVBUF]) writes
whole lines per connection; a fragment left at a connection's end goes on a
line of its own. Loopback socket buffers autotune to tens of MB, which can
absorb a short stall; --collector-rcvbuf makes the stall bite sooner.
"""
import argparse, atexit, json, os, shlex, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request

TOKEN = "bench"
PROCS = []  # process groups started (pgid == pid, start_new_session)


def collector(port, out, rcvbuf=0):
    lock = threading.Lock()
    f = open(out, "ab")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:  # inherited by accepted sockets; turns off receive-buffer autotuning
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    srv.bind(("127.0.0.1", port)); srv.listen(64)
    threading.Timer(4 * 3600, lambda: os._exit(0)).start()  # never outlive a run

    def serve(c):
        buf = b""
        with c:
            while True:
                try:
                    d = c.recv(1 << 16)
                except OSError:
                    d = b""
                if not d:
                    break
                buf += d
                i = buf.rfind(b"\n")
                if i >= 0:
                    with lock:
                        f.write(buf[:i + 1]); f.flush()
                    buf = buf[i + 1:]
        if buf:
            with lock:
                f.write(buf + b"\n"); f.flush()

    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def start(argv, log):
    p = subprocess.Popen(argv, stdout=open(log, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    PROCS.append(p)
    return p


def stop(p, grace=10):
    for sig in (signal.SIGCONT, signal.SIGTERM):  # CONT first: a stopped collector ignores TERM
        try: os.killpg(p.pid, sig)
        except ProcessLookupError: pass
    deadline = time.time() + grace
    while time.time() < deadline and group(p.pid):
        time.sleep(0.1)
    try: os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError: pass
    try: p.wait(5)
    except subprocess.TimeoutExpired: pass
    if p in PROCS:
        PROCS.remove(p)


@atexit.register
def cleanup():
    for p in list(PROCS):
        stop(p, grace=3)


def group(pgid):  # pids of a process group, from /proc
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(st[2]) == pgid and st[0] != "Z":
                out.append(int(d))
    return out


def ticks(pgid):
    t = 0
    for pid in group(pgid):
        try: st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError: continue
        t += int(st[11]) + int(st[12])  # utime + stime
    return t


def rss_kb(pgid):
    t = 0
    for pid in group(pgid):
        try:
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    t += int(line.split()[1])
        except OSError:
            pass
    return t


def free_port(pair=False):
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
        if not pair:
            return p
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p)); b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    sys.exit("error: no free port pair")


def api(addr, method, path, body=None, timeout=10):
    req = urllib.request.Request(addr + "/v1/" + path, method=method, headers={"X-Vault-Token": TOKEN},
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        b = r.read()
    return json.loads(b) if b else {}


def head(addr):
    return api(addr, "GET", "sys/audit/events?limit=1")["data"]["head"]["seq"]


def until(cond, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return True
        except Exception:
            pass
        time.sleep(step)
    return False


def add_sinks(addr, a, d, cport):
    api(addr, "PUT", "sys/audit/bench-file", {"type": "file", "options": {"file_path": os.path.join(d, "sink-file.log")}})
    opts = {"address": f"127.0.0.1:{cport}", "socket_type": "tcp"}
    if a.framing_option:
        opts["framing"] = a.framing_option
    api(addr, "PUT", "sys/audit/bench-sock", {"type": "socket", "options": opts})
    # Let both followers start and catch up with the log before the load.
    h = head(addr)

    def caught_up():
        devs = api(addr, "GET", "sys/audit")["data"]
        return all(devs.get(k, {}).get("cursor", -1) >= h for k in ("bench-file/", "bench-sock/"))
    ok = until(caught_up, 60)
    if not ok:
        print(f"  warning: sinks did not catch up with seq {h} in 60 s", file=sys.stderr)


def del_sinks(addr):
    for n in ("bench-file", "bench-sock"):
        api(addr, "DELETE", "sys/audit/" + n)
    time.sleep(1.5)  # the sync loop stops the followers within ~1 s


def load(a, addr, pgid):
    hz = os.sysconf("SC_CLK_TCK")
    c0 = ticks(pgid)
    r = subprocess.run([a.loadgen, "-addrs", addr, "-token", TOKEN, "-op", "encrypt", "-key", "bench", "-size", "32",
                        "-conns", str(a.conns), "-duration", f"{a.dur}s", "-warmup", "1s", "-json"],
                       capture_output=True, text=True, timeout=a.dur + 60)
    c1 = ticks(pgid)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen failed ({r.returncode}): {r.stderr.strip()[-500:]}")
    o = json.loads(r.stdout)
    meas = o["elapsed_sec"]
    cpu = (c1 - c0) / hz * meas / (meas + 1.0)  # only the measured share (not the 1 s warm-up)
    errs = sum(o.get("errors", {}).values())
    return {"rps": o["ops_per_sec"], "p50": o["p50_ms"], "p99": o["p99_ms"], "ops": o["ops"], "errors": errs,
            "cpu_us": cpu / max(o["ops"], 1) * 1e6, "rss_mb": rss_kb(pgid) / 1024}


def scan(path):
    lines = bad = 0
    seqs = {}
    try:
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                lines += 1
                try:
                    e = json.loads(line)
                except ValueError:
                    bad += 1
                    continue
                if isinstance(e, dict) and isinstance(e.get("seq"), int):
                    seqs[e["seq"]] = seqs.get(e["seq"], 0) + 1
    except FileNotFoundError:
        pass
    return lines, bad, seqs


def tail_seq(path):  # the highest seq in the last 256 KiB of a file
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - (256 << 10)))
            data = f.read()
    except OSError:
        return 0
    best = 0
    for line in data.splitlines():
        try: best = max(best, int(json.loads(line).get("seq", 0)))
        except (ValueError, AttributeError, TypeError): pass
    return best


def integrity(path, h):
    lines, bad, seqs = scan(path)
    return {"lines": lines, "events": sum(seqs.values()), "unparsable": bad,
            "dup_seqs": sum(1 for n in seqs.values() if n > 1), "extra_copies": sum(n - 1 for n in seqs.values() if n > 1),
            "missing": sum(1 for s in range(1, h + 1) if s not in seqs), "head": h}


def bench(a, name, binary, root):
    d = os.path.join(root, name); os.makedirs(d)
    port, cport = free_port(pair=True), free_port()
    addr = f"http://127.0.0.1:{port}"
    out = os.path.join(d, "collector.out")
    srv = start([binary, "server", "-dev", f"-dev-root-token-id={TOKEN}", f"-dev-listen-address=127.0.0.1:{port}"], os.path.join(d, "server.log"))
    if not until(lambda: urllib.request.urlopen(addr + "/v1/sys/health", timeout=2).status == 200, 30, 0.1):
        sys.exit(f"error: {name}: the server did not start; see {d}/server.log")
    api(addr, "POST", "transit/keys/bench", {"type": "aes256-gcm96"})
    if a.collector_cmd:
        argv = shlex.split(a.collector_cmd.format(port=cport, out=out))
    else:
        argv = [sys.executable, os.path.abspath(__file__), "--collector", str(cport), out, str(a.collector_rcvbuf)]
    col = start(argv, os.path.join(d, "collector.log"))
    if not until(lambda: socket.create_connection(("127.0.0.1", cport), 1).close() is None, 15, 0.1):
        sys.exit(f"error: {name}: the collector did not listen on {cport}; see {d}/collector.log")
    res = {"phases": {}, "dir": d}

    def phase(ph):
        r = load(a, addr, srv.pid); res["phases"][ph] = r
        print(f"  {name} {ph:<8} {r['rps']:8.0f} req/s  p50 {r['p50']:6.2f}  p99 {r['p99']:7.2f} ms  "
              f"{r['cpu_us']:6.0f} CPU us/req  RSS {r['rss_mb']:.0f} MB  errors {r['errors']}", flush=True)

    phase("none-1")
    add_sinks(addr, a, d, cport); phase("healthy"); del_sinks(addr)
    phase("none-2")
    add_sinks(addr, a, d, cport)
    os.killpg(col.pid, signal.SIGSTOP)
    try:
        phase("stalled")
        devs, h = api(addr, "GET", "sys/audit")["data"], head(addr)  # how far behind the sinks are
        res["stall_lag"] = {k[:-1]: h - v.get("cursor", 0) for k, v in devs.items() if k.startswith("bench-")}
    finally:
        os.killpg(col.pid, signal.SIGCONT)
    t0 = since = time.time()
    last, healed, h0 = -1, False, head(addr)
    # Until the collector's file stops growing; no API calls in here, as
    # each one is an audit event that would make the file grow again.
    while time.time() - t0 < a.heal_timeout:
        size = os.path.getsize(out) if os.path.exists(out) else 0
        if size != last:
            last, since = size, time.time()
        # quiet for 1.5 s once the file holds the load's last seq, else for longer than the 5 s max backoff
        if time.time() - since >= (1.5 if tail_seq(out) >= h0 else 6.0):
            healed = True
            break
        time.sleep(0.5)
    res["heal_sec"], res["healed"] = round(since - t0, 1), healed
    h = head(addr)
    res["collector"] = integrity(out, h)
    res["file_sink"] = integrity(os.path.join(d, "sink-file.log"), h)
    del_sinks(addr)
    phase("none-3")
    stop(col); stop(srv)
    ph = res["phases"]
    base = {k: statistics.mean(ph[p][k] for p in ("none-1", "none-2", "none-3")) for k in ("rps", "p99")}
    res["vs_none"] = {p: {"rps_ratio": ph[p]["rps"] / base["rps"], "p99_ratio": ph[p]["p99"] / base["p99"]} for p in ("healthy", "stalled")}
    return res


def report(results):
    print("\n| binary | phase | req/s | p50 ms | p99 ms | CPU us/req | RSS MB | errors | req/s vs none | p99 vs none |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        for ph, v in r["phases"].items():
            rel = r["vs_none"].get(ph)
            rr = f"{rel['rps_ratio']:.2f}" if rel else ""
            pr = f"{rel['p99_ratio']:.2f}" if rel else ""
            print(f"| {name} | {ph} | {v['rps']:.0f} | {v['p50']:.2f} | {v['p99']:.2f} | {v['cpu_us']:.0f} | {v['rss_mb']:.0f} | {v['errors']} | {rr} | {pr} |")
    print("\n| binary | sink | head seq | lines | events | unparsable | dup seqs | extra copies | missing | lag at stall end | heal s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        for s, dev in (("collector", "bench-sock"), ("file_sink", "bench-file")):
            v, lag = r[s], r.get("stall_lag", {}).get(dev, "")
            heal = (f"{r['heal_sec']}" if r["healed"] else "timeout") if s == "collector" else ""
            print(f"| {name} | {s} | {v['head']} | {v['lines']} | {v['events']} | {v['unparsable']} | {v['dup_seqs']} | {v['extra_copies']} | {v['missing']} | {lag} | {heal} |")


def main():
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--collector":
        return collector(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else 0)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", action="append", required=True, metavar="NAME=PATH", help="keyraft binary (repeat)")
    ap.add_argument("--loadgen", default="/tmp/kr-before/loadgen")
    ap.add_argument("--dur", type=float, default=7, help="measured seconds per phase (plus 1 s warm-up)")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--framing-option", help='socket option "framing" (lines|acked); default: not sent')
    ap.add_argument("--collector-cmd", help="collector command, {port} and {out} substituted (default: the built-in one)")
    ap.add_argument("--collector-rcvbuf", type=int, default=0, metavar="BYTES",
                    help="SO_RCVBUF of the built-in collector (default: the OS's, autotuned; loopback can absorb tens of MB)")
    ap.add_argument("--heal-timeout", type=float, default=60)
    ap.add_argument("--workdir", help="where logs and sink files go (default: a new /tmp dir, kept)")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.bin]
    if any(len(b) != 2 or not os.access(b[1], os.X_OK) for b in bins) or len({b[0] for b in bins}) != len(bins):
        ap.error("--bin takes NAME=PATH of an executable, with distinct names")
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    root = a.workdir or tempfile.mkdtemp(prefix="bench-sinks-")
    os.makedirs(root, exist_ok=True)
    print(f"work dir {root}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    results = {name: bench(a, name, path, root) for name, path in bins}
    report(results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
