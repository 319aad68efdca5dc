#!/usr/bin/env python3
"""Side by side on this machine: a 3-node etcd (Debian's etcd-server, durable storage, its default
fsync per commit) against a committee of ours (4 nodes, and 7; with --raft-nodes, also Raft mode
at those sizes), alternately, with the same client counts, duration and warm-up. Prints one Markdown table: medians of the runs with min and max, and
the ratios ours / etcd.

etcd is driven by tools/etcd-bench (Rust, gRPC): each client one connection and a closed loop of
one `If(CreateRevision(key) == 0) Then(Put) Else(Get)` txn per claim, 5 % of the claims on an ID
just claimed by another client. Ours by `warpnet-consensus bench --spawn N` (signed claims, the
same 5 %). Every run starts a fresh cluster in a fresh temporary directory.

    python3 scripts/bench-vs-etcd.py [--clients 1 16 64 256] [--ours-nodes 4 7] [--runs 3]
                                     [--duration 10] [--warmup 3] [--out results.json]
    python3 scripts/bench-vs-etcd.py --ours-nodes 4 --raft-nodes 3 --clients 1 256   # both modes
    python3 scripts/bench-vs-etcd.py --raft-nodes 3 --ours-nodes --clients 1 --placement leader
        (every client of etcd and of Raft mode on the leader; `follower`: on one follower. Where
        the client sits decides whether a claim is forwarded, so with one client the default
        round-robin measures whichever node happened to win the election; HotStuff mode, whose
        leader changes every round, keeps its round-robin)
    python3 scripts/bench-vs-etcd.py --compare-bin /tmp/warpnet-before      # a third system: an older build
    python3 scripts/bench-vs-etcd.py --verifier-cpu --compare-bin /tmp/warpnet-before --clients 1 256
    python3 scripts/bench-vs-etcd.py --growth [--growth-ours 0 1000000 5000000]
                                     [--growth-etcd 0 600000] [--clients 256] [--runs 3]
        (at each checkpoint, --runs alternating runs of the filled cluster and of a fresh one:
        the ratio filled / fresh is measured side by side, not against a figure from the start)

Installs what it needs when missing: etcd-server and protobuf-compiler (apt), and builds
tools/etcd-bench and target/release/warpnet-consensus (cargo, release).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OURS = os.path.join(ROOT, "target", "release", "warpnet-consensus")
ETCD_BENCH_DIR = os.path.join(ROOT, "tools", "etcd-bench")
ETCD_BENCH = os.path.join(ETCD_BENCH_DIR, "target", "release", "etcd-bench")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def apt_install(*packages):
    log("installing", *packages, "(apt)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL, env=env)
    subprocess.run(["apt-get", "install", "-y", *packages], check=True,
                   stdout=subprocess.DEVNULL, env=env)


def ensure_tools(build_ours):
    if not shutil.which("etcd"):
        apt_install("etcd-server")
    if not os.path.exists(ETCD_BENCH):
        if not shutil.which("protoc"):
            apt_install("protobuf-compiler")
        subprocess.run(["cargo", "build", "--release", "--manifest-path",
                        os.path.join(ETCD_BENCH_DIR, "Cargo.toml")], check=True)
    if build_ours:
        subprocess.run(["cargo", "build", "--release", "-p", "warpnet-consensus"], check=True,
                       cwd=ROOT)
    ver = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout
    return ver.splitlines()[0] if ver else "etcd (unknown version)"


class Etcd:
    """A 3-node etcd cluster on loopback in a temporary directory, default (durable) settings."""

    def __init__(self, base_port, nodes=3):
        self.dir = tempfile.mkdtemp(prefix="etcd-bench-")
        self.clients = [f"127.0.0.1:{base_port + 2 * i}" for i in range(nodes)]
        peers = [f"http://127.0.0.1:{base_port + 2 * i + 1}" for i in range(nodes)]
        cluster = ",".join(f"e{i}={p}" for i, p in enumerate(peers))
        self.procs = []
        for i in range(nodes):
            logf = open(os.path.join(self.dir, f"e{i}.log"), "w")
            self.procs.append(subprocess.Popen([
                "etcd", "--name", f"e{i}", "--data-dir", os.path.join(self.dir, f"e{i}"),
                "--listen-client-urls", f"http://{self.clients[i]}",
                "--advertise-client-urls", f"http://{self.clients[i]}",
                "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", os.path.basename(self.dir),
                "--quota-backend-bytes", str(8 << 30), "--logger", "zap",
            ], stdout=logf, stderr=logf))
        deadline = time.time() + 60
        while not all(self.healthy(c) for c in self.clients):
            if time.time() > deadline or any(p.poll() is not None for p in self.procs):
                self.stop()
                sys.exit(f"etcd did not become healthy; logs in {self.dir}")
            time.sleep(0.2)

    def placed(self, placement):
        """The client endpoints to load: all of them, or the leader, or one follower."""
        if placement == "any":
            return self.clients
        deadline = time.time() + 30
        while time.time() < deadline:
            leaders = []
            for c in self.clients:
                try:
                    with urllib.request.urlopen(f"http://{c}/metrics", timeout=2) as r:
                        text = r.read().decode()
                except OSError:
                    text = ""
                leaders.append("\netcd_server_is_leader 1" in text)
            if any(leaders):
                want = placement == "leader"
                return [next(c for c, l in zip(self.clients, leaders) if l == want)]
            time.sleep(0.2)
        self.stop()
        sys.exit(f"no etcd member reported being leader within 30 s; logs in {self.dir}")

    @staticmethod
    def healthy(client):
        try:
            with urllib.request.urlopen(f"http://{client}/health", timeout=1) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def pids(self):
        return [p.pid for p in self.procs]

    def stop(self, keep=False):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_json(cmd, started=None):
    """Runs a load generator with `--json FILE` and returns what it wrote; `started(pid)` is
    called once it runs."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    log(" ".join(cmd + ["--json", path]))
    proc = subprocess.Popen(cmd + ["--json", path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if started:
        started(proc.pid)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{stdout}\n{stderr}")
    log(stdout.strip())
    with open(path) as f:
        result = json.load(f)
    os.unlink(path)
    return result


def etcd_run(clients, a, port):
    cluster = Etcd(port)
    try:
        return run_json([ETCD_BENCH, "--endpoints", ",".join(cluster.placed(a.placement)),
                         "--clients", str(clients), "--duration", str(a.duration), "--warmup",
                         str(a.warmup)])
    finally:
        cluster.stop()


def ours_run(binary, nodes, clients, a, port, started=None, consensus="hotstuff"):
    mode = [] if consensus == "hotstuff" else ["--consensus", consensus]
    if consensus == "raft" and a.placement != "any":
        mode += ["--target", a.placement]
    return run_json([binary, "bench", "--spawn", str(nodes), "--spawn-port", str(port), *mode,
                     "--clients", str(clients), "--duration", f"{a.duration}s",
                     "--warmup", f"{a.warmup}s"], started)


def spread(values, fmt):
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}–{fmt.format(max(values))})")


def ratio(ours, theirs):
    m_o, m_t = statistics.median(ours), statistics.median(theirs)
    return f"{m_o / m_t:.2f}×" if m_t else "–"


def matrix(a):
    # (label, binary, nodes): etcd, ours at each size, and optionally a second build of ours.
    # Raft mode (--raft-nodes) is "ours Raft"; the fourth field is the consensus.
    systems = [("etcd, 3 nodes", None, 3, None)]
    systems += [(f"ours, {n} nodes", OURS, n, "hotstuff") for n in a.ours_nodes]
    systems += [(f"ours Raft, {n} nodes", OURS, n, "raft") for n in a.raft_nodes]
    if a.compare_bin:
        systems += [(f"{a.compare_label}, {n} nodes", a.compare_bin, n, "hotstuff")
                    for n in a.ours_nodes]
        systems += [(f"{a.compare_label} Raft, {n} nodes", a.compare_bin, n, "raft")
                     for n in a.raft_nodes]
    raw = {s: {c: [] for c in a.clients} for s in systems}
    port = 7400
    for clients in a.clients:
        for r in range(a.runs):
            # Alternate which system goes first, so drift on the machine hits both alike.
            order = systems if r % 2 == 0 else list(reversed(systems))
            for s in order:
                port = 7400 + (port - 7400 + 40) % 800
                label, binary, nodes, consensus = s
                if binary is None:
                    res = etcd_run(clients, a, 22379 + (port - 7400))
                else:
                    res = ours_run(binary, nodes, clients, a, port, consensus=consensus)
                raw[s][clients].append(res)
                # What a run left (etcd's dirty pages above all) is flushed before the next
                # system starts, so no system runs behind another's writeback.
                os.sync()
                time.sleep(1)
    lines = []
    head = ("| system | clients | claims/s | p50 ms | p90 ms | p99 ms | max ms | errors "
            "| claims/s vs etcd | p50 vs etcd | p99 vs etcd |")
    lines += [head, "|" + "---|" * 11]
    for clients in a.clients:
        e = raw[systems[0]][clients]
        for s in systems:
            rs = raw[s][clients]
            thr = [r["throughput"] for r in rs]
            lat = lambda k, rs=rs: [r["latency_ms"][k] for r in rs]
            errors = sum(sum(r["errors"].values()) for r in rs)
            name = s[0]
            vs = ("| | | |" if s[1] is None else
                  f"| {ratio(thr, [r['throughput'] for r in e])} "
                  f"| {ratio(lat('p50'), [r['latency_ms']['p50'] for r in e])} "
                  f"| {ratio(lat('p99'), [r['latency_ms']['p99'] for r in e])} |")
            lines.append(f"| {name} | {clients} | {spread(thr, '{:.0f}')} "
                         f"| {spread(lat('p50'), '{:.2f}')} | {spread(lat('p90'), '{:.2f}')} "
                         f"| {spread(lat('p99'), '{:.2f}')} | {spread(lat('max'), '{:.1f}')} "
                         f"| {errors} {vs}")
    return lines, [{"system": s[0], "clients": c, "runs": raw[s][c]} for s in systems
                   for c in a.clients]


def rss_kib(pids):
    """(VmRSS, VmHWM) in KiB for each pid."""
    out = []
    for pid in pids:
        vals = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    vals[k] = int(v.split()[0])
        out.append((vals.get("VmRSS", 0), vals.get("VmHWM", 0)))
    return out


def our_node_pids(cluster_dir):
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if b"run" in cmd and any(c.startswith(cluster_dir.encode()) for c in cmd):
            pids.append(int(p))
    return sorted(pids)


def proc_cpu_s(pid, task=None):
    """CPU seconds (user + system) of a process, or of one of its threads."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_sample(spawn_port, bench_pid):
    """(nodes' CPU s, their claim-verifier threads' CPU s, commands applied on node 0) of the
    cluster that the bench process `bench_pid` spawned."""
    total = verifier = 0.0
    for pid in our_node_pids(os.path.join(tempfile.gettempdir(), f"warpnet-bench-{bench_pid}/")):
        try:
            total += proc_cpu_s(pid)
            for t in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{t}/comm") as f:
                    if f.read().strip() == "claim-verifier":
                        verifier += proc_cpu_s(pid, t)
        except OSError:
            return None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{spawn_port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return None
    applied = sum(float(l.split()[-1]) for l in text.splitlines()
                  if l.startswith("warpnet_applied_commands_total{"))
    return total, verifier, applied


def verifier_cpu(a):
    """Runs ours (and --compare-bin) alternately, sampling the nodes' CPU and their
    claim-verifier threads' CPU every 0.5 s: verifier CPU per claim per node, and its share of
    all the nodes' CPU."""
    import threading
    builds = [("ours", OURS)] + ([(a.compare_label, a.compare_bin)] if a.compare_bin else [])
    rows = {}
    port = 7400
    for clients in a.clients:
        for r in range(a.runs):
            for label, binary in (builds if r % 2 == 0 else list(reversed(builds))):
                port = 7400 + (port - 7400 + 40) % 800
                samples, done, bench = [], threading.Event(), []

                def poll(port=port, samples=samples, done=done, bench=bench):
                    while not done.is_set():
                        sample = cpu_sample(port, bench[0]) if bench else None
                        if sample and sample[2] > 0:
                            samples.append(sample)
                        time.sleep(0.5)

                t = threading.Thread(target=poll)
                t.start()
                res = ours_run(binary, a.ours_nodes[0], clients, a, port, bench.append)
                done.set()
                t.join()
                if len(samples) < 2:
                    sys.exit("could not sample the spawned nodes' CPU")
                (t0, v0, n0), (t1, v1, n1) = samples[0], samples[-1]
                claims = max(n1 - n0, 1)
                rows.setdefault((label, clients), []).append(
                    (res["throughput"], 1e6 * (v1 - v0) / claims / a.ours_nodes[0],
                     100 * (v1 - v0) / max(t1 - t0, 1e-9), res["latency_ms"]["p50"]))
    lines = ["| build | clients | claims/s | p50 ms | verifier CPU per claim per node µs "
             "| verifier share of the nodes' CPU % |", "|---|---|---|---|---|---|"]
    for (label, clients), rs in rows.items():
        lines.append(f"| {label} | {clients} | {spread([x[0] for x in rs], '{:.0f}')} "
                     f"| {spread([x[3] for x in rs], '{:.2f}')} "
                     f"| {spread([x[1] for x in rs], '{:.1f}')} "
                     f"| {spread([x[2] for x in rs], '{:.1f}')} |")
    return lines, [{"build": k[0], "clients": k[1], "runs": v} for k, v in rows.items()]


# The per-client API limits `bench --spawn` lifts on its clusters (bench.rs, BENCH_LIMITS).
BENCH_LIMITS = ("api_connections_max = 65536\napi_client_connections_max = 65536\n"
                "api_client_requests_per_second = 10000000\napi_client_burst = 10000000\n")


def growth_ours(a):
    """Fills a 4-node cluster of ours through claims (the only way in) up to each checkpoint;
    there, `--runs` alternating runs of the filled cluster and of a fresh one (a new cluster
    each run, as in the matrix) give claims/s side by side, and the filled nodes' RSS."""
    d = tempfile.mkdtemp(prefix="warpnet-growth-")
    port = 7300
    start = lambda: subprocess.Popen([OURS, "dev", "--dir", d, "--api-port", str(port),
                                      "--p2p-port", str(port + 100)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Configured as `bench --spawn` configures its clusters (BENCH_LIMITS in bench.rs: all of
    # bench is one client address), so that filled and fresh differ only in what they hold:
    # `dev` creates the cluster, stops, the limits are appended, `dev` runs it again.
    dev = start()
    while not all(os.path.exists(os.path.join(d, f"node-{i}", "node.toml")) for i in range(4)):
        time.sleep(0.2)
    time.sleep(2)
    dev.terminate()
    dev.wait(timeout=30)
    for i in range(4):
        with open(os.path.join(d, f"node-{i}", "node.toml"), "a") as f:
            f.write(BENCH_LIMITS)
    dev = start()
    nodes = [f"--node=http://127.0.0.1:{port + i}" for i in range(4)]
    rows, filled, chunk = [], 0, 0
    clients = a.clients[-1]
    try:
        time.sleep(3)
        for target in a.growth_ours:
            while filled < target:
                # Fill in bounded chunks: bench pre-signs every claim of a run in memory.
                secs = min(120, max(10, (target - filled) // 1500))
                res = run_json([OURS, "bench", *nodes, "--clients", "256", "--duration",
                                f"{secs}s", "--warmup", "0s", "--duplicates", "0",
                                "--pool-per-second", "6000", "--prefix", f"f{chunk:07x}"])
                filled += res["outcomes"].get("claimed", 0)
                chunk += 1
                log(f"ours: {filled} IDs registered")
                short = no_room(d, filled, target)
                if short:
                    log(short)
                    return rows
            runs = {"filled": [], "fresh": []}
            for r in range(a.runs):
                for which in (["filled", "fresh"] if r % 2 == 0 else ["fresh", "filled"]):
                    if which == "filled":
                        res = run_json([OURS, "bench", *nodes, "--clients", str(clients),
                                        "--duration", f"{a.duration}s", "--warmup",
                                        f"{a.warmup}s", "--prefix", f"e{chunk:07x}"])
                        chunk += 1
                        filled += res["outcomes"].get("claimed", 0)
                    else:
                        res = ours_run(OURS, 4, clients, a, 7500)
                    runs[which].append(res)
            rows.append(("ours, 4 nodes", target, runs, rss_kib(our_node_pids(d))))
            # Each checkpoint's table as soon as it is measured: a fill that fails later
            # (a full disk) loses nothing measured before.
            disk = du_bytes(d)
            log(f"ours at {filled} IDs: data directory {disk / 2**30:.2f} GiB "
                f"({disk / max(filled, 1) / 4:.0f} bytes per ID per node)")
            log("\n".join(growth_table(rows)[0]))
            short = no_room(d, filled, a.growth_ours[-1])
            if short:
                log(short)
                break
    finally:
        dev.terminate()
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
        shutil.rmtree(d, ignore_errors=True)
    return rows


def du_bytes(path):
    """Bytes the files under `path` occupy on disk."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def no_room(d, filled, target):
    """Why the disk cannot take the fill up to `target` IDs (None if it can): the bytes per ID
    the cluster in `d` used so far, +20 %, against the free space."""
    if filled <= 0 or target <= filled:
        return None
    per_id = du_bytes(d) / filled
    need, free = per_id * (target - filled) * 1.2, shutil.disk_usage(d).free
    if need <= free:
        return None
    return (f"stopping the fill at {filled:,} IDs: {target:,} need about {need / 2**30:.1f} GiB "
            f"more ({per_id:.0f} bytes per ID for the 4 nodes so far, +20 %), "
            f"and {free / 2**30:.1f} GiB are free")


def growth_etcd(a):
    """The same for etcd: filled with 128-put txns, alternated with a fresh 3-node etcd."""
    cluster = Etcd(22379)
    rows, filled = [], 0
    clients = a.clients[-1]
    bench = lambda c: run_json([ETCD_BENCH, "--endpoints", ",".join(c.clients), "--clients",
                                str(clients), "--duration", str(a.duration), "--warmup",
                                str(a.warmup)])
    try:
        for target in a.growth_etcd:
            if target > filled:
                subprocess.run([ETCD_BENCH, "--endpoints", ",".join(cluster.clients),
                                "--clients", "64", "--fill", str(target - filled),
                                "--prefix", f"fill{len(rows)}"], check=True)
                filled = target
            runs = {"filled": [], "fresh": []}
            for r in range(a.runs):
                for which in (["filled", "fresh"] if r % 2 == 0 else ["fresh", "filled"]):
                    if which == "filled":
                        runs[which].append(bench(cluster))
                    else:
                        fresh = Etcd(23379)
                        try:
                            runs[which].append(bench(fresh))
                        finally:
                            fresh.stop()
            rows.append(("etcd, 3 nodes", target, runs, rss_kib(cluster.pids())))
    finally:
        cluster.stop()
    return rows


def growth_table(rows):
    lines = ["| system | IDs registered | claims/s filled | claims/s fresh, same runs "
             "| filled / fresh | p50 ms filled | p99 ms filled | RSS per node MiB (peak) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, ids, runs, rss in rows:
        f = [r["throughput"] for r in runs["filled"]]
        n = [r["throughput"] for r in runs["fresh"]]
        per = [x / y for x, y in zip(f, n) if y]
        mib = ", ".join(f"{r / 1024:.0f} ({h / 1024:.0f})" for r, h in rss)
        lines.append(f"| {name} | {ids:,} | {spread(f, '{:.0f}')} | {spread(n, '{:.0f}')} "
                     f"| {ratio(f, n)} (pairs {spread(per, '{:.2f}')}) "
                     f"| {spread([r['latency_ms']['p50'] for r in runs['filled']], '{:.2f}')} "
                     f"| {spread([r['latency_ms']['p99'] for r in runs['filled']], '{:.2f}')} "
                     f"| {mib} |")
    raw = [{"system": n, "ids": i, "runs": r, "rss_kib": s} for n, i, r, s in rows]
    return lines, raw


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--ours-nodes", type=int, nargs="*", default=[4, 7])
    p.add_argument("--raft-nodes", type=int, nargs="*", default=[],
                   help="also run ours in Raft mode (bench --spawn N --consensus raft) at these sizes")
    p.add_argument("--placement", choices=["any", "leader", "follower"], default="any",
                   help="where etcd's and Raft mode's clients send: every node in turn (any), "
                        "the leader, or one follower")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--compare-bin", default=None,
                   help="a second build of warpnet-consensus, run alongside (e.g. the code before a change)")
    p.add_argument("--compare-label", default="before")
    p.add_argument("--no-build", action="store_true", help="use target/release as it is")
    p.add_argument("--growth", action="store_true", help="run the registry-growth curve")
    p.add_argument("--growth-ours", type=int, nargs="+", default=[0, 1_000_000, 5_000_000])
    p.add_argument("--growth-etcd", type=int, nargs="*", default=[0, 600_000, 1_000_000],
                   help="etcd's checkpoints (none: skip etcd)")
    p.add_argument("--verifier-cpu", action="store_true",
                   help="ours only (first --ours-nodes size, and --compare-bin): the claim "
                        "verifier threads' CPU per claim and share")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    version = ensure_tools(not a.no_build)
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[:3]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    if a.verifier_cpu:
        lines, raw = verifier_cpu(a)
    elif a.growth:
        rows = (growth_etcd(a) if a.growth_etcd else []) + growth_ours(a)
        lines, raw = growth_table(rows)
    else:
        lines, raw = matrix(a)
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[:3]
    print(f"{version}; started {started}; load average before {' '.join(load_before)}, "
          f"after {' '.join(load_after)}; {a.runs} alternating runs of {a.duration:g} s "
          f"after {a.warmup:g} s warm-up; clients on {a.placement} node(s)\n")
    print("\n".join(lines))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
