#!/usr/bin/env python3
"""The status page in a real browser: headless Chromium (Debian `chromium` + `chromium-driver`,
driven by Selenium) opens `/` on node 0 of a local 4-node cluster of the built binary, reads the
members table from the DOM (each row's `data-member`, `data-online`, `data-online-source`), sees
all 4 members online, kills one node with SIGKILL, and sees it marked offline within the bound
the README documents (#status-page). A screenshot of the page, taken after the kill, is the
test's artifact. Runs once per consensus (HotStuff, then Raft).

  python3 scripts/status-page.py --bin target/debug/warpnet-consensus [--require-browser]

Without chromium, chromedriver, selenium or requests the test is SKIPPED (exit code 77, with the reason),
never passed; with --require-browser (CI) that is a failure. Needs: selenium, requests.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# README #status-page: a killed member shows offline within 3 s while the page shows this
# node's own view (its connection resets at once, or falls silent for 1 s; the page reads the
# API every second), and within 10 s once it shows agreed health (its signatures missing from
# the last few committed blocks).
OFFLINE_BOUND_S = {"local": 3.0, "agreed": 10.0}
SKIPPED = 77


def skip(reason, required):
    if required:
        print(f"status page test FAILED: {reason} (--require-browser)")
        sys.exit(1)
    print(f"status page test SKIPPED: {reason}. Install chromium and chromium-driver (Debian) and "
          f"selenium (PyPI), as .ci/run does, to run it.")
    sys.exit(SKIPPED)


def free_ports(n):
    """n free ports in a row."""
    for base in range(33100, 36000, n):
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return list(range(base, base + n))
    raise SystemExit("no free ports")


def run(args):
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{args}: {out.stderr}")
    return out.stdout


class Cluster:
    """A committee of n nodes of the binary on 127.0.0.1, each its own process."""

    def __init__(self, binary, consensus, n=4):
        self.bin, self.dir = binary, tempfile.mkdtemp(prefix="warpnet-page-")
        ports = free_ports(2 * n)
        self.api, self.p2p = ports[:n], ports[n:]
        self.procs = [None] * n
        members = []
        for i in range(n):
            d = self.node_dir(i)
            run([binary, "node", "init", "--dir", d, "--p2p", f"127.0.0.1:{self.p2p[i]}",
                 "--api", f"127.0.0.1:{self.api[i]}", "--public", "--committee-file", "../committee.toml"])
            members.append(os.path.join(d, "member.toml"))
        run([binary, "committee", "create", "--network", "dev", "--consensus", consensus, "--out",
             os.path.join(self.dir, "committee.toml")] + members)

    def node_dir(self, i):
        return os.path.join(self.dir, f"node-{i}")

    def url(self, i):
        return f"http://127.0.0.1:{self.api[i]}"

    def start(self, i):
        log = open(os.path.join(self.node_dir(i), "node.log"), "a")
        self.procs[i] = subprocess.Popen([self.bin, "node", "run", "--config",
                                          os.path.join(self.node_dir(i), "node.toml")],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def kill9(self, i):
        p = self.procs[i]
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.procs[i] = None

    def close(self):
        for p in self.procs:
            if p is not None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait(what, seconds, f):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = f()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def rows(driver):
    """The members table as the page renders it: one dict per row, from its data attributes
    and the text of its online cell."""
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#members tbody tr')).map((tr) => ({
            key: tr.dataset.member, id: tr.dataset.nodeId, online: tr.dataset.online,
            source: tr.dataset.onlineSource, text: tr.cells[5].textContent }));""")


def check_page(driver, cluster, consensus, screenshot):
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.get(cluster.url(0) + "/")
    members = requests.get(cluster.url(0) + "/v1/cluster", timeout=5).json()["members"]
    keys = [m["public_key"] for m in members]
    # Every member online, as the page shows it (the DOM, not the API).
    wait("the page to show 4 members online", 30, lambda: (
        len(r := rows(driver)) == 4 and all(x["online"] == "true" and x["text"] == "online" for x in r)))
    # A HotStuff node that reports agreed health (`health` in /v1/members, null until a window
    # of blocks exists; always null in Raft mode) must have the page show it before the kill:
    # then "offline" is the agreed one.
    reported = requests.get(cluster.url(0) + "/v1/members", timeout=5).json()
    if consensus == "hotstuff" and reported.get("members") and "health" in reported["members"][0]:
        wait("the page to show 4 members online by agreed health", 90, lambda: (
            len(r := rows(driver)) == 4 and all(x["online"] == "true" and x["source"] == "agreed" for x in r)))
    print(f"  {consensus}: the page shows 4 members online ({rows(driver)[0]['source']} view)")
    # The cards and the chart have content, and the history the chart reads has samples.
    wait("the commit-rate chart to be drawn", 15,
         lambda: driver.execute_script("return document.querySelectorAll('#chart polyline').length") == 1)
    text = lambda id: driver.find_element("id", id).text
    assert text("network") == "dev", text("network")
    assert text("consensus") == consensus, text("consensus")
    assert text("state") == "running", text("state")
    # A follower if there is one to pick in Raft mode; node 3 otherwise (the page is node 0's).
    victim = 3
    victim_key = keys[victim]
    started = time.monotonic()
    cluster.kill9(victim)
    source = wait(f"node {victim} marked offline", 30, lambda: next(
        (x["source"] for x in rows(driver) if x["key"] == victim_key and x["online"] == "false"
         and x["text"] == "offline"), None))
    elapsed = time.monotonic() - started
    bound = OFFLINE_BOUND_S[source]
    print(f"  {consensus}: node {victim} shown offline {elapsed:.1f} s after kill -9 "
          f"({source} view; bound {bound:.0f} s)")
    assert elapsed <= bound, f"offline after {elapsed:.1f} s, over the documented {bound} s"
    others = [x for x in rows(driver) if x["key"] != victim_key]
    assert all(x["online"] == "true" for x in others), others
    time.sleep(2)  # one more refresh, so the screenshot shows the chart after the kill too
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"the page logged errors: {errors}"
    os.makedirs(os.path.dirname(screenshot), exist_ok=True)
    # The whole page, not just the window.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1360, "height": height, "deviceScaleFactor": 1, "mobile": False})
    driver.save_screenshot(screenshot)
    print(f"  {consensus}: screenshot {screenshot}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--require-browser", action="store_true",
                    help="fail (not skip) when chromium, chromedriver or selenium is missing")
    ap.add_argument("--artifacts", default=os.path.join(REPO, "target/artifacts"))
    ap.add_argument("--consensus", choices=["hotstuff", "raft", "both"], default="both")
    a = ap.parse_args()
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            skip(f"{path} not found", a.require_browser)
    try:
        global requests
        import requests
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        skip(f"a Python package is missing ({e.name}: selenium and requests are needed)", a.require_browser)

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1360,900", "--hide-scrollbars"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    binary = os.path.abspath(a.bin)
    try:
        for consensus in (["hotstuff", "raft"] if a.consensus == "both" else [a.consensus]):
            cluster = Cluster(binary, consensus)
            try:
                for i in range(4):
                    cluster.start(i)
                name = "status-page.png" if consensus == "hotstuff" else f"status-page-{consensus}.png"
                check_page(driver, cluster, consensus, os.path.join(a.artifacts, name))
            finally:
                cluster.close()
    finally:
        driver.quit()
    print("status page test: passed")


if __name__ == "__main__":
    main()
