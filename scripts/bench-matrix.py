#!/usr/bin/env python3
"""Runs `warpnet-consensus bench --spawn N` over a matrix of committee sizes and client counts,
several times each, and prints a Markdown table: the median of the runs, with min and max.

    cargo build --release -p warpnet-consensus
    python3 scripts/bench-matrix.py [--nodes 4 7] [--clients 1 16 64 256] [--runs 3]
                                    [--duration 10s] [--warmup 3s] [--out bench-results.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

BIN = os.path.join(os.path.dirname(__file__), "..", "target", "release", "warpnet-consensus")


def run_once(nodes, clients, duration, warmup, port):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    cmd = [BIN, "bench", "--spawn", str(nodes), "--spawn-port", str(port), "--clients",
           str(clients), "--duration", duration, "--warmup", warmup, "--json", path]
    print(" ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench failed:\n{out.stdout}\n{out.stderr}")
    with open(path) as f:
        result = json.load(f)
    os.unlink(path)
    print(out.stdout.strip(), file=sys.stderr, flush=True)
    return result


def spread(values, fmt):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, nargs="+", default=[4, 7])
    p.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", default="10s")
    p.add_argument("--warmup", default="3s")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    rows, raw = [], []
    port = 7400
    for nodes in a.nodes:
        for clients in a.clients:
            results = []
            for _ in range(a.runs):
                results.append(run_once(nodes, clients, a.duration, a.warmup, port))
                port = 7400 + (port - 7400 + 20) % 400  # fresh ports each run
            raw.append({"nodes": nodes, "clients": clients, "runs": results})
            lat = lambda k: [r["latency_ms"][k] for r in results]
            errors = sum(sum(r["errors"].values()) for r in results)
            rows.append(
                f"| {nodes} | {clients} | {spread([r['throughput'] for r in results], '{:.0f}')} "
                f"| {spread(lat('p50'), '{:.1f}')} | {spread(lat('p90'), '{:.1f}')} "
                f"| {spread(lat('p99'), '{:.1f}')} | {spread(lat('p99_9'), '{:.1f}')} "
                f"| {spread(lat('max'), '{:.1f}')} | {errors} |")
    print("| nodes | clients | claims/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
