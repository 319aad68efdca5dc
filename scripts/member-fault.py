#!/usr/bin/env python3
"""What one faulty member costs a 4-node cluster under claim load (issue 10, leader reputation).

For each run (faults alternate: kill, sigstop, partition): a fresh `dev` cluster in its own
directory and ports; `bench` (16 clients by default) loads nodes 0-2 only; a healthy phase is
measured (one bench process), then a second bench process of the same shape runs while member 3,
picked at a moment it leads the current round, is

  kill       killed with SIGKILL (its connections reset; healed by restarting it),
  sigstop    stopped with SIGSTOP (connected, silent; healed with SIGCONT),
  partition  cut off silently: iptables DROP (not REJECT) of every packet of its p2p traffic,
             its connections are not reset (healed by removing the rules).

A poller reads node 0's round and committed height every ~20 ms: failed rounds are
Δround − Δcommitted height (first 10 s of the fault, and after). Node 0's `/v1/members` is read
every 200 ms: when the member shows `online: false` and its reputation leaves `leader`. After the
fault the member is healed and the script waits until it is online, reputation `leader`, and has
proposed a committed block again (the cluster idle then: about four blocks a second).

Prints one Markdown table, medians with min–max over the runs of each fault (and build: with
`--compare-bin`, every run also runs an older build the same way, the order alternating).

    cargo build --release -p warpnet-consensus
    python3 scripts/member-fault.py [--runs 9] [--clients 16] [--healthy 10] [--fault 30]
                                    [--faults kill sigstop partition] [--logs DIR]
    python3 scripts/member-fault.py --compare-bin /tmp/warpnet-before   # an older build beside

Needs root and iptables with the cgroup match for `partition` (the member's new sockets are
matched by a cgroup v2 it is moved into, its existing ones by their ports). Every rule carries
the comment `warpnet-member-fault` and is removed on exit, whatever happens.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.path.join(ROOT, "target", "release", "warpnet-consensus")
NODES = 4
VICTIM = 3  # bench talks to nodes 0..2 only
TAG = "warpnet-member-fault"
CGROUP2 = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def get(port, path, timeout=1.0):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return json.load(r)


class Poller:
    """Background samples of node 0: (t, round, height, leader) often, members' health less often."""

    def __init__(self, port):
        self.port, self.stop = port, threading.Event()
        self.rounds, self.members = [], []
        self.threads = [threading.Thread(target=self._rounds, daemon=True),
                        threading.Thread(target=self._members, daemon=True)]
        for t in self.threads:
            t.start()

    def _rounds(self):
        while not self.stop.is_set():
            try:
                c = get(self.port, "/v1/cluster")
                self.rounds.append((time.time(), c["round"], c["committed_height"], c["leader"]))
            except Exception:
                pass
            time.sleep(0.02)

    def _members(self):
        while not self.stop.is_set():
            try:
                m = next(x for x in get(self.port, "/v1/members")["members"] if x["node_id"] == VICTIM)
                self.members.append((time.time(), m["connected"], m["health"]))
            except Exception:
                pass
            time.sleep(0.2)

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(3)

    def lag(self, t):
        """round − committed height at t: the smallest over the samples of the 0.3 s before t (a
        sample taken between a proposal and its commit reads one too high)."""
        vals = [r - h for (s, r, h, _) in self.rounds if t - 0.3 <= s <= t]
        if not vals:
            vals = [r - h for (s, r, h, _) in self.rounds if s <= t][-1:]
        return min(vals) if vals else float("nan")

    def height(self, t):
        hs = [h for (s, _, h, _) in self.rounds if s <= t]
        return hs[-1] if hs else float("nan")

    def blocks_per_s(self, a, b):
        return (self.height(b) - self.height(a)) / (b - a)

    def failed(self, a, b):
        return self.lag(b) - self.lag(a)

    def max_gap(self, a, b):
        """The longest time in [a, b] without a new committed height, in ms."""
        last_t, last_h, gap = a, self.height(a), 0.0
        for (s, _, h, _) in self.rounds:
            if a < s <= b and h > last_h:
                gap, last_t, last_h = max(gap, s - last_t), s, h
        return 1000 * max(gap, b - last_t)

    def first(self, since, pred):
        """Seconds from `since` to the first members sample (connected, health) matching pred."""
        for (s, conn, h) in self.members:
            if s >= since and pred(conn, h):
                return s - since
        return None


class Bench:
    """One `bench` process against nodes 0..2; `started()` waits until it loads."""

    def __init__(self, bin_, ports, clients, duration, warmup, out):
        urls = sum([["--node", f"http://127.0.0.1:{p}"] for p in ports], [])
        self.json, self.warmup, self.duration = out, warmup, duration
        self.p = subprocess.Popen([bin_, "bench", *urls, "--clients", str(clients), "--duration", f"{duration}s",
                                   "--warmup", f"{warmup}s", "--pool-per-second", "2000", "--json", out],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def started(self):
        """Blocks until bench starts loading (after signing its pool); returns when measuring begins."""
        seen = []
        for line in self.p.stderr:
            if line.startswith("loading for"):
                t = time.time() + self.warmup
                threading.Thread(target=self.p.stderr.read, daemon=True).start()
                return t
            seen.append(line)
        raise RuntimeError("bench ended before loading: " + self.p.stdout.read() + "".join(seen[-20:]))

    def result(self):
        self.p.wait()
        with open(self.json) as f:
            return json.load(f)


class Partition:
    """Silent cut of one member's p2p traffic with iptables DROP rules, always removable."""

    def __init__(self, pid, p2p_port, other_p2p_ports):
        self.rules, self.cg = [], os.path.join(CGROUP2, f"{TAG}-{os.getpid()}")
        # New sockets of the member (reconnects, H2 probes) are matched by its cgroup...
        os.makedirs(self.cg, exist_ok=True)
        with open(os.path.join(self.cg, "cgroup.procs"), "w") as f:
            f.write(str(pid))
        rel = "/" + os.path.relpath(self.cg, CGROUP2)
        self._add("OUTPUT", "-m", "cgroup", "--path", rel, "-m", "multiport", "--dports",
                  ",".join(map(str, other_p2p_ports)))
        # ...connections to its listener by its port, both directions...
        self._add("INPUT", "--dport", str(p2p_port))
        self._add("INPUT", "--sport", str(p2p_port))
        # ...and the connections it dialed before the cut by their local ports.
        for _ in range(2):
            for port in self._dialed(pid, other_p2p_ports):
                self._add("INPUT", "--dport", str(port))
                self._add("INPUT", "--sport", str(port))
            time.sleep(0.1)

    def _dialed(self, pid, remote_ports):
        out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True).stdout
        ports = set()
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 6 and f"pid={pid}," in f[5] and int(f[4].rsplit(":", 1)[1]) in remote_ports:
                ports.add(int(f[3].rsplit(":", 1)[1]))
        return ports

    def _add(self, chain, *match):
        spec = [chain, "-p", "tcp", *match, "-m", "comment", "--comment", TAG, "-j", "DROP"]
        if spec in self.rules:
            return
        subprocess.run(["iptables", "-I", *spec], check=True)
        self.rules.append(spec)

    def heal(self):
        for spec in reversed(self.rules):
            subprocess.run(["iptables", "-D", *spec], check=False)
        self.rules = []
        if os.path.isdir(self.cg):
            try:
                with open(os.path.join(self.cg, "cgroup.procs")) as f:
                    pids = f.read().split()
                for p in pids:
                    with open(os.path.join(CGROUP2, "cgroup.procs"), "w") as f:
                        f.write(p)
                os.rmdir(self.cg)
            except OSError as e:
                log("cgroup cleanup:", e)


def node_pid(d, i):
    with open(os.path.join(d, f"node-{i}", "node.pid")) as f:
        return int(f.read().split()[0])


def one_run(fault, bin_, a, api_port, logs):
    p2p_port = api_port + 500
    d = tempfile.mkdtemp(prefix=f"warpnet-fault-{fault}-")
    dev = subprocess.Popen([bin_, "dev", "--nodes", str(NODES), "--dir", d, "--api-port", str(api_port),
                            "--p2p-port", str(p2p_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    poller, part, stopped, restarted = None, None, None, None
    try:
        deadline = time.time() + 60
        has_health = None
        while True:  # every member online, verified public and eligible to lead
            try:
                ms = get(api_port, "/v1/members")["members"]
                has_health = any(m.get("health") for m in ms)
                if len(ms) == NODES and all(m["health"] and m["health"]["reputation"] == "leader" for m in ms):
                    break
            except Exception:
                pass
            try:  # an older build without agreed health: every node committing
                if not has_health and all(get(api_port + i, "/v1/cluster")["committed_height"] > 2
                                          for i in range(NODES)):
                    break
            except Exception:
                pass
            if time.time() > deadline:
                raise RuntimeError("cluster did not become healthy in 60 s")
            time.sleep(0.3)
        poller = Poller(api_port)
        ports = [api_port + i for i in range(NODES) if i != VICTIM]
        healthy = Bench(bin_, ports, a.clients, a.healthy, 2, os.path.join(d, "bench-healthy.json"))
        h0 = healthy.started()
        hres = healthy.result()
        h1 = h0 + a.healthy
        faulty = Bench(bin_, ports, a.clients, a.fault, 1, os.path.join(d, "bench-fault.json"))
        f0 = faulty.started()
        while time.time() < f0:
            time.sleep(0.01)
        # Hit it while it leads: its round, and the votes it collects, are lost.
        pid = node_pid(d, VICTIM)
        wait_until = time.time() + 3
        while time.time() < wait_until:
            try:
                if get(api_port, "/v1/cluster", 0.2)["leader"] == VICTIM:
                    break
            except Exception:
                pass
            time.sleep(0.002)
        t0 = time.time()
        if fault == "kill":
            os.kill(pid, signal.SIGKILL)
        elif fault == "sigstop":
            os.kill(pid, signal.SIGSTOP)
            stopped = pid
        else:
            others = [p2p_port + i for i in range(NODES) if i != VICTIM]
            part = Partition(pid, p2p_port + VICTIM, others)
        fres = faulty.result()
        while time.time() < t0 + a.fault:
            time.sleep(0.05)
        t_heal = time.time()
        if fault == "kill":
            logf = open(os.path.join(d, f"node-{VICTIM}", "node.log"), "a")
            restarted = subprocess.Popen([bin_, "node", "run", "--config",
                                          os.path.join(d, f"node-{VICTIM}", "node.toml")],
                                         stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        elif fault == "sigstop":
            os.kill(pid, signal.SIGCONT)
            stopped = None
        else:
            part.heal()
            part = None
        back = lambda c, h: h and h["online"] and h["reputation"] == "leader"
        leads = lambda c, h: h and h["proposals"] > 0 and back(c, h)
        deadline = t_heal + (a.recover if has_health else 3)
        while time.time() < deadline and poller.first(t_heal, leads) is None:
            time.sleep(0.2)
        poller.close()
        t1 = min(t0 + a.fault, time.time())
        r = {
            "fault": fault, "load": os.getloadavg()[0],
            "failed_healthy": poller.failed(h0, h1),
            "failed_first": poller.failed(t0, t0 + 10), "failed_after": poller.failed(t0 + 10, t1),
            "gap_healthy": poller.max_gap(h0, h1), "gap_first": poller.max_gap(t0, t0 + 10),
            "gap_after": poller.max_gap(t0 + 10, t1),
            "bps_healthy": poller.blocks_per_s(h0, h1), "bps_fault": poller.blocks_per_s(t0, t1),
            "p50_healthy": hres["latency_ms"]["p50"], "p99_healthy": hres["latency_ms"]["p99"],
            "p50_fault": fres["latency_ms"]["p50"], "p99_fault": fres["latency_ms"]["p99"],
            "tput_healthy": hres["throughput"], "tput_fault": fres["throughput"],
            "errors": sum(fres["errors"].values()) if fres["errors"] else 0,
            "exhausted": hres["clients_exhausted"] + fres["clients_exhausted"],
            "disconnected": poller.first(t0, lambda c, h: not c),
            "offline": poller.first(t0, lambda c, h: h and not h["online"]),
            "not_leader": poller.first(t0, lambda c, h: h and h["reputation"] != "leader"),
            "reputation_seen": sorted({h["reputation"] for (s, c, h) in poller.members if t0 <= s <= t_heal and h}),
            "recovered": poller.first(t_heal, back), "leads_again": poller.first(t_heal, leads),
            "fault_at": t0, "dir": d, "build": "this" if bin_ == BIN else bin_,
        }
        return r
    finally:
        if poller:
            poller.close()
        if part:
            part.heal()
        if stopped:
            os.kill(stopped, signal.SIGCONT)
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(20)
        except subprocess.TimeoutExpired:
            dev.kill()
        if restarted and restarted.poll() is None:
            restarted.terminate()
            try:
                restarted.wait(10)
            except subprocess.TimeoutExpired:
                restarted.kill()
        if logs:
            dst = os.path.join(logs, os.path.basename(d))
            os.makedirs(dst, exist_ok=True)
            for i in range(NODES):
                src = os.path.join(d, f"node-{i}", "node.log")
                if os.path.exists(src):
                    shutil.copy(src, os.path.join(dst, f"node-{i}.log"))
        shutil.rmtree(d, ignore_errors=True)


def cell(vals, fmt):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "never"
    s = sorted(vals)
    return f"{fmt(statistics.median(s))} ({fmt(s[0])}–{fmt(s[-1])})"


def groups(results, a):
    for fault in a.faults:
        for build in ["this"] + ([a.compare_bin] if a.compare_bin else []):
            rs = [r for r in results if r["fault"] == fault and r["build"] == build]
            if rs:
                yield fault, ("this" if build == "this" else os.path.basename(build)), rs


def table(results, a):
    i = lambda v: f"{v:g}"
    x = lambda v: f"{v:.2f}"
    sec = lambda v: f"{v:.1f} s"
    print(f"\n{a.clients} clients on nodes 0-2; member 3 faulty for {a.fault} s, hit while it leads; "
          f"healthy phase {a.healthy} s; medians (min–max) over runs\n")
    print("| fault | build | runs | failed rounds first 10 s | failed rounds after | longest commit gap first 10 s | "
          "blocks/s fault/healthy | "
          "p99 fault/healthy | time to offline | time to not `leader` | time to recover | time to lead again |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for fault, build, rs in groups(results, a):
        def never(k):
            n = sum(r[k] is None for r in rs)
            return f" ({n} never)" if n else ""
        print(f"| {fault} | {build} | {len(rs)} | {cell([r['failed_first'] for r in rs], i)} | "
              f"{cell([r['failed_after'] for r in rs], i)} | "
              f"{cell([r['gap_first'] for r in rs], lambda v: f'{v:.0f} ms')} | "
              f"{cell([r['bps_fault'] / r['bps_healthy'] for r in rs], x)} | "
              f"{cell([r['p99_fault'] / r['p99_healthy'] for r in rs], x)} | "
              f"{cell([r['offline'] for r in rs], sec)}{never('offline')} | "
              f"{cell([r['not_leader'] for r in rs], sec)}{never('not_leader')} | "
              f"{cell([r['recovered'] for r in rs], sec)}{never('recovered')} | "
              f"{cell([r['leads_again'] for r in rs], sec)}{never('leads_again')} |")
    print("\nabsolute figures (medians): healthy failed rounds per phase, blocks/s, claims/s, p50/p99 ms")
    print("| fault | build | failed rounds healthy | blocks/s healthy | blocks/s fault | claims/s healthy | claims/s fault | "
          "p50 healthy | p50 fault | p99 healthy | p99 fault | longest gap healthy | longest gap after 10 s | "
          "bench errors | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for fault, build, rs in groups(results, a):
        m = lambda k, f=x: cell([r[k] for r in rs], f)
        print(f"| {fault} | {build} | {m('failed_healthy', i)} | {m('bps_healthy', lambda v: f'{v:.0f}')} | "
              f"{m('bps_fault', lambda v: f'{v:.0f}')} | {m('tput_healthy', lambda v: f'{v:.0f}')} | "
              f"{m('tput_fault', lambda v: f'{v:.0f}')} | {m('p50_healthy', lambda v: f'{v:.0f}')} | "
              f"{m('p50_fault', lambda v: f'{v:.0f}')} | {m('p99_healthy', lambda v: f'{v:.0f}')} | "
              f"{m('p99_fault', lambda v: f'{v:.0f}')} | {m('gap_healthy', lambda v: f'{v:.0f} ms')} | "
              f"{m('gap_after', lambda v: f'{v:.0f} ms')} | {m('errors', i)} | {m('load', lambda v: f'{v:.1f}')} |")


def on_term(*_):
    raise KeyboardInterrupt


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=9, help="runs in all, the faults alternating")
    p.add_argument("--faults", nargs="+", default=["kill", "sigstop", "partition"],
                   choices=["kill", "sigstop", "partition"])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--healthy", type=int, default=10, help="seconds of the healthy phase")
    p.add_argument("--fault", type=int, default=30, help="seconds the member stays faulty")
    p.add_argument("--recover", type=int, default=40, help="seconds to wait for it to lead again")
    p.add_argument("--api-port", type=int, default=9500, help="node 0's API port of run 0 (+10 per run; p2p +500)")
    p.add_argument("--compare-bin", help="an older build to run beside this one, alternately, in every run")
    p.add_argument("--logs", help="copy every run's node logs here")
    p.add_argument("--json", help="write every run's figures here")
    a = p.parse_args()
    if a.fault < 12:
        sys.exit("--fault must be at least 12 s (10 s first phase, then the rest)")
    # SIGTERM runs the finally blocks too (rules removed, the member continued, the cluster stopped).
    signal.signal(signal.SIGTERM, on_term)
    log(f"load average at start: {os.getloadavg()}")
    results = []
    for n in range(a.runs):
        fault = a.faults[n % len(a.faults)]
        bins = [BIN] + ([a.compare_bin] if a.compare_bin else [])
        if n % 2:
            bins.reverse()
        for k, bin_ in enumerate(bins):
            r = one_run(fault, bin_, a, a.api_port + 10 * (len(bins) * n + k), a.logs)
            results.append(r)
            sec = lambda v: "never" if v is None else f"{v:.1f} s"
            log(f"run {n + 1} {fault} {os.path.basename(bin_)}: failed rounds {r['failed_healthy']} healthy, "
                f"{r['failed_first']} first 10 s, {r['failed_after']} after; longest commit gap "
                f"{r['gap_healthy']:.0f} ms healthy, {r['gap_first']:.0f} ms first 10 s; blocks/s {r['bps_healthy']:.0f} -> "
                f"{r['bps_fault']:.0f}; p99 {r['p99_healthy']:.0f} -> {r['p99_fault']:.0f} ms; disconnected "
                f"{sec(r['disconnected'])}, offline {sec(r['offline'])}, not leader {sec(r['not_leader'])} "
                f"{r['reputation_seen']}; recovered {sec(r['recovered'])}, leads {sec(r['leads_again'])}; "
                f"errors {r['errors']}; load {r['load']:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    log(f"load average at end: {os.getloadavg()}")
    table(results, a)


if __name__ == "__main__":
    main()
