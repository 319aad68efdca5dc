#!/usr/bin/env python3
"""Where a claim's time goes, per node: runs a local cluster (`dev`), a closed-loop `bench`
against it, and reads every node's /metrics before and after the measured run. Prints, per
node, the mean of each claim stage (`warpnet_claim_stage_seconds{stage}`, on the node that took
the claim), of the durable write (`warpnet_fsync_seconds`: the step applied to a transaction,
its log record written and synced) and of the database commit after it
(`warpnet_db_commit_seconds`), with the bench's own figures.

    python3 scripts/claim-stages.py [--consensus raft|hotstuff] [--nodes N] [--clients 1]
                                    [--duration 15] [--warmup 3] [--bin target/release/warpnet-consensus]

Builds nothing: run `cargo build --release` first (or pass --bin).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LINE = re.compile(r'^(warpnet_[a-z_]+?)_(sum|count)(?:\{stage="([a-z_]+)"\})? ([0-9.e+-]+)$')


def scrape(port):
    """{(metric, stage): (sum, count)} of the histograms this script reads."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m or m.group(1) not in ("warpnet_claim_stage_seconds", "warpnet_fsync_seconds",
                                       "warpnet_db_commit_seconds"):
            continue
        key = (m.group(1), m.group(3) or "")
        s, c = out.get(key, (0.0, 0.0))
        out[key] = (s + float(m.group(4)), c) if m.group(2) == "sum" else (s, float(m.group(4)))
    return out


def ready(port, raft):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/cluster", timeout=2) as r:
            v = json.loads(r.read())
    except (OSError, ValueError):
        return False
    if raft:
        return bool((v.get("raft") or {}).get("leader") is not None)
    return v.get("committed_height", 0) >= 2


def bench(binary, nodes, a, seconds, warmup):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    cmd = [binary, "bench", *[f"--node=http://127.0.0.1:{p}" for p in nodes], "--clients",
           str(a.clients), "--duration", f"{seconds}s", "--warmup", f"{warmup}s", "--json", path]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    with open(path) as f:
        result = json.load(f)
    os.unlink(path)
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--consensus", default="raft", choices=["raft", "hotstuff"])
    p.add_argument("--nodes", type=int, default=None)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "warpnet-consensus"))
    p.add_argument("--port", type=int, default=7600)
    a = p.parse_args()
    raft = a.consensus == "raft"
    n = a.nodes or (3 if raft else 4)
    d = tempfile.mkdtemp(prefix="warpnet-stages-")
    ports = [a.port + i for i in range(n)]
    dev = subprocess.Popen([a.bin, "dev", "--dir", d, "--consensus", a.consensus, "--nodes",
                            str(n), "--api-port", str(a.port), "--p2p-port", str(a.port + 100)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not all(ready(port, raft) for port in ports):
            if time.time() > deadline or dev.poll() is not None:
                sys.exit(f"the cluster did not start; logs in {d}")
            time.sleep(0.3)
        bench(a.bin, ports, a, a.warmup, 0)
        before = [scrape(port) for port in ports]
        res = bench(a.bin, ports, a, a.duration, 0)
        after = [scrape(port) for port in ports]
    finally:
        dev.terminate()
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
        shutil.rmtree(d, ignore_errors=True)
    lat = res["latency_ms"]
    print(f"{a.consensus}, {n} nodes, {a.clients} client(s), {a.duration:.0f} s: "
          f"{res['throughput']:.0f} claims/s, p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms")
    keys = sorted({k for s in after for k in s})
    print("| node | " + " | ".join(f"{m.removeprefix('warpnet_')}{'{' + st + '}' if st else ''} "
                                   "mean ms (n)" for m, st in keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for i, (b, e) in enumerate(zip(before, after)):
        cells = []
        for k in keys:
            s = e.get(k, (0, 0))[0] - b.get(k, (0, 0))[0]
            c = e.get(k, (0, 0))[1] - b.get(k, (0, 0))[1]
            cells.append(f"{1000 * s / c:.3f} ({c:.0f})" if c else "–")
        print(f"| {i} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
