#!/usr/bin/env python3
"""What a claim and a round cost the whole cluster in CPU, for builds side by side.

Throughput and latency on a shared 2-vCPU machine move by 30-50 % from one run to the next
with the host's load (steal time); the CPU the nodes spend per round and per claim moves far
less, so a lever that saves CPU shows in it with a few runs. For each build (alternating, A B A
B ...), this starts `BIN bench --spawn N --clients C` and, over a window after the warm-up,
reads every node process's CPU time (utime + stime, /proc/<pid>/stat), its threads' context
switches (/proc/<pid>/task/*/status), and node 0's `warpnet_round`, and prints per build and
client count the medians (min-max) of:

  claims/s, p50 ms          the load generator's own figures for the whole run
  rounds/s                  node 0's rounds in the window
  CPU ms per round          all nodes' CPU time / rounds (HotStuff mode)
  CPU µs per claim          all nodes' CPU time / claims answered (claims/s x window)
  switches per round        all nodes' voluntary + involuntary context switches / rounds,
                            and the share of each thread kind (loop, tokio workers,
                            storage-writer, claim-verifier)
  max ms                    the load generator's largest latency (a stall shows here)
  frames dropped            shared-command frames the nodes dropped (all nodes, the whole
                            run so far): each one's claims wait for M3's re-share (2 s)

    python3 scripts/cluster-cost.py --bin target/release/warpnet-consensus \\
        --bin /tmp/warpnet-before --clients 1 256 --runs 3
    python3 scripts/cluster-cost.py --bin A --env WARPNET_X=1 ...   (an environment for all)

HotStuff mode only (Raft mode has no rounds). The load generator's own CPU is not counted.
"""
import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TCK = os.sysconf("SC_CLK_TCK")


def node_pids(spawn_dir):
    out = subprocess.run(["pgrep", "-f", f"node run --config {spawn_dir}/"],
                         capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TCK


def switches(pids):
    """Context switches per thread kind, summed over the nodes."""
    kinds = {}
    for pid in pids:
        main = str(pid)
        for task in glob.glob(f"/proc/{pid}/task/*"):
            try:
                comm = open(f"{task}/comm").read().strip()
                status = open(f"{task}/status").read()
            except OSError:
                continue  # a thread that just ended
            n = sum(int(re.search(rf"^{k}:\s+(\d+)", status, re.M).group(1))
                    for k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
            kind = "loop" if task.endswith("/" + main) else comm
            kinds[kind] = kinds.get(kind, 0) + n
    return kinds


def metrics(port):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()


def rounds(port):
    line = next(l for l in metrics(port).splitlines() if l.startswith("warpnet_round "))
    return float(line.split()[1])


def frames_dropped(ports):
    total = 0.0
    for port in ports:
        for line in metrics(port).splitlines():
            if line.startswith('warpnet_rejected_inputs_total{kind="shared_commands_dropped"}'):
                total += float(line.split()[1])
    return total


def one_run(binary, nodes, clients, warmup, window, port, env):
    duration = warmup + window + 2
    cmd = [binary, "bench", "--spawn", str(nodes), "--spawn-port", str(port), "--clients",
           str(clients), "--duration", f"{duration}s", "--warmup", "1s"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    # The spawned nodes' config paths hold the bench's directory: warpnet-bench-<its pid> in
    # the temporary directory (std::env::temp_dir, which honours TMPDIR as Python does).
    time.sleep(1 + warmup)
    pids = node_pids(os.path.join(tempfile.gettempdir(), f"warpnet-bench-{proc.pid}"))
    if len(pids) != nodes:
        proc.kill()
        sys.exit(f"expected {nodes} node processes, found {len(pids)} (another cluster running?)")
    c0, s0, r0, t0 = cpu_seconds(pids), switches(pids), rounds(port), time.time()
    time.sleep(window)
    c1, s1, r1, t1 = cpu_seconds(pids), switches(pids), rounds(port), time.time()
    dropped = frames_dropped([port + i for i in range(nodes)])
    output = proc.communicate()[0]
    if proc.returncode != 0:
        sys.exit(f"bench failed:\n{output}")
    throughput = float(re.search(r"throughput: ([0-9.]+)", output).group(1))
    p50 = float(re.search(r"p50 ([0-9.]+)", output).group(1))
    largest = float(re.search(r"max ([0-9.]+)", output).group(1))
    elapsed, n_rounds = t1 - t0, max(1.0, r1 - r0)
    cpu = c1 - c0
    sw = {k: s1.get(k, 0) - s0.get(k, 0) for k in s1}
    return {
        "claims/s": throughput,
        "p50 ms": p50,
        "rounds/s": n_rounds / elapsed,
        "CPU ms/round": 1000 * cpu / n_rounds,
        "CPU µs/claim": 1e6 * cpu / (throughput * elapsed),
        "switches/round": sum(sw.values()) / n_rounds,
        "max ms": largest,
        "frames dropped": dropped,
        "by thread": {k: v / n_rounds for k, v in sw.items()},
    }


def fmt(values):
    med = statistics.median(values)
    digits = 0 if med >= 100 else 2
    return f"{med:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", action="append", required=True, help="a build; repeat to compare")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 256])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=4)
    ap.add_argument("--window", type=float, default=8)
    ap.add_argument("--port", type=int, default=7400)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for every run")
    args = ap.parse_args()
    env = dict(os.environ)
    for kv in args.env:
        k, v = kv.split("=", 1)
        env[k] = v
    results = {}
    for clients in args.clients:
        for run in range(args.runs):
            for b in args.bin:
                r = one_run(b, args.nodes, clients, args.warmup, args.window, args.port, env)
                results.setdefault((b, clients), []).append(r)
                print(f"{b} clients={clients} run {run + 1}: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in r.items() if k != "by thread"),
                    file=sys.stderr, flush=True)
    cols = ["claims/s", "p50 ms", "rounds/s", "CPU ms/round", "CPU µs/claim", "switches/round",
            "max ms", "frames dropped"]
    print(f"| build | clients | {' | '.join(cols)} | switches/round by thread |")
    print("|---|---|" + "---|" * (len(cols) + 1))
    for (b, clients), rs in results.items():
        kinds = sorted({k for r in rs for k in r["by thread"]})
        by = ", ".join(f"{k} {statistics.median(r['by thread'].get(k, 0) for r in rs):.1f}"
                       for k in kinds)
        cells = " | ".join(fmt([r[c] for r in rs]) for c in cols)
        print(f"| {b} | {clients} | {cells} | {by} |")


if __name__ == "__main__":
    main()
