#!/usr/bin/env python3
"""Measures how long commits stall when the leader is killed (-9) under load.

Starts a local cluster with `dev`, loads it with `bench` (16 clients by default), kills the
current leader after a few seconds, and polls a surviving node's committed height every few ms.
Prints the longest gap between two height increases around the kill, and the round timeout.

    cargo build --release -p warpnet-consensus
    python3 scripts/leader-crash.py [--nodes 4] [--clients 16] [--runs 3]
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "warpnet-consensus")


def cluster(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/cluster", timeout=1) as r:
        return json.load(r)


def pids_by_node(d):
    out = subprocess.run(["pgrep", "-af", "node run --config"], capture_output=True, text=True).stdout
    pids = {}
    for line in out.splitlines():
        pid, cmd = line.split(" ", 1)
        if d in cmd:
            i = int(cmd.split("node-")[1].split("/")[0])
            pids[i] = int(pid)
    return pids


def one_run(nodes, clients, api_port):
    d = tempfile.mkdtemp(prefix="warpnet-crash-")
    dev = subprocess.Popen([BIN, "dev", "--nodes", str(nodes), "--dir", d, "--api-port", str(api_port),
                            "--p2p-port", str(api_port + 100)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                if all(cluster(api_port + i)["committed_height"] > 2 for i in range(nodes)):
                    break
            except Exception:
                pass
            if time.time() > deadline:
                sys.exit("cluster did not start")
            time.sleep(0.2)
        urls = sum([["--node", f"http://127.0.0.1:{api_port + i}"] for i in range(nodes)], [])
        bench = subprocess.Popen([BIN, "bench", *urls, "--clients", str(clients), "--duration", "12s",
                                  "--warmup", "1s"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(5)
        leader = cluster(api_port)["leader"]
        watch = api_port + (leader + 1) % nodes
        samples = []
        pid = pids_by_node(d)[leader]
        t_kill = time.time()
        os.kill(pid, signal.SIGKILL)
        while time.time() < t_kill + 6:
            try:
                samples.append((time.time(), cluster(watch)["committed_height"]))
            except Exception:
                pass
            time.sleep(0.005)
        out, _ = bench.communicate()
        # Longest time without a new commit, from the last commit before the kill.
        gaps, last_t, last_h = [], t_kill, None
        for t, h in samples:
            if last_h is None:
                last_h = h
                continue
            if h > last_h:
                gaps.append(t - last_t)
                last_t, last_h = t, h
        stall = max(gaps) if gaps else float("nan")
        return stall, leader, out.strip().splitlines()[1:3]
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(15)
        except subprocess.TimeoutExpired:
            dev.kill()
        shutil.rmtree(d, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    stalls = []
    for r in range(a.runs):
        stall, leader, summary = one_run(a.nodes, a.clients, 7600 + 20 * r)
        stalls.append(stall)
        print(f"run {r + 1}: killed leader {leader}; longest commit gap after the kill {stall * 1000:.0f} ms; {' / '.join(summary)}", flush=True)
    stalls.sort()
    print(f"median stall {stalls[len(stalls) // 2] * 1000:.0f} ms (min {stalls[0] * 1000:.0f}, max {stalls[-1] * 1000:.0f}); round timeout base 1000 ms")


if __name__ == "__main__":
    main()
