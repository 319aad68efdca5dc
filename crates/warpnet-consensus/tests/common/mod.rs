//! What the multi-process tests share: a cluster of real `warpnet-consensus` processes on
//! 127.0.0.1, bounded waits, and small HTTP helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod hosts;
pub mod linearizability;
pub mod load;
pub mod members;
pub mod raft;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The test clusters' bound on waiting for a commit (the default is 5000).
pub const CLAIM_TIMEOUT_MS: u64 = 2_000;

pub const BIN: &str = env!("CARGO_BIN_EXE_warpnet-consensus");

/// A free port outside the kernel's ephemeral range (32768-60999 on Linux), so that no dialer's
/// local port can take a killed node's port before it restarts.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = 20_000 + (u64::from(std::process::id()) % 400) * 30;
    loop {
        let port = u16::try_from(base + NEXT.fetch_add(1, Ordering::Relaxed) % 30).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn temp_dir() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let p = std::env::temp_dir().join(format!(
        "warpnet-cluster-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

pub fn run_ok(args: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `GET path` on 127.0.0.1:`port`; None if the node does not answer.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_secs(1),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

pub fn cluster_view(port: u16) -> Option<Value> {
    let (status, body) = get(port, "/v1/cluster")?;
    (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

pub struct Cluster {
    pub dir: PathBuf,
    pub api: Vec<u16>,
    pub p2p: Vec<u16>,
    pub children: Vec<Option<Child>>,
}

impl Cluster {
    pub fn new(n: usize) -> Self {
        Self::with_config(n, "")
    }

    /// A cluster whose every `node.toml` also holds `extra` (keys given there win).
    pub fn with_config(n: usize, extra: &str) -> Self {
        Self::build(n, extra, "hotstuff", &[])
    }

    /// A Raft-mode cluster (`committee create --consensus raft`) whose members in `private`
    /// are not public (they vote and replicate, never lead), with `extra` in every `node.toml`.
    pub fn raft(n: usize, private: &[usize], extra: &str) -> Self {
        Self::build(n, extra, "raft", private)
    }

    fn build(n: usize, extra: &str, consensus: &str, private: &[usize]) -> Self {
        let dir = temp_dir();
        let (mut api, mut p2p, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let (a, p) = (free_port(), free_port());
            let node = dir.join(format!("node-{i}"));
            let (p2p_address, api_address) = (format!("127.0.0.1:{p}"), format!("127.0.0.1:{a}"));
            let mut init = vec![
                "node",
                "init",
                "--dir",
                node.to_str().unwrap(),
                "--p2p",
                &p2p_address,
                "--api",
                &api_address,
                "--committee-file",
                "../committee.toml",
            ];
            if !private.contains(&i) {
                init.push("--public");
            }
            run_ok(&init);
            // Short rounds so crashed leaders cost little test time.
            let mut f =
                std::fs::OpenOptions::new().append(true).open(node.join("node.toml")).unwrap();
            if !extra.contains("round_timeout_base_ms") {
                writeln!(f, "round_timeout_base_ms = 300").unwrap();
            }
            if !extra.contains("claim_timeout_ms") {
                writeln!(f, "claim_timeout_ms = {CLAIM_TIMEOUT_MS}").unwrap();
            }
            writeln!(f, "{extra}").unwrap();
            api.push(a);
            p2p.push(p);
            members.push(node.join("member.toml").to_str().unwrap().to_owned());
        }
        let out = dir.join("committee.toml");
        let mut args = vec![
            "committee",
            "create",
            "--network",
            "test",
            "--consensus",
            consensus,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(members.iter().map(String::as_str));
        run_ok(&args);
        Self { dir, api, p2p, children: (0..n).map(|_| None).collect() }
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    pub fn start(&mut self, i: usize) {
        self.start_env(i, &[]);
    }

    /// Starts node `i` with extra environment variables (the test-only storage switch).
    pub fn start_env(&mut self, i: usize, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.node_dir(i).join("node.log"))
            .unwrap();
        let child = Command::new(BIN)
            .args(["node", "run", "--config"])
            .arg(self.node_dir(i).join("node.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .envs(env.iter().copied())
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    /// Node `i`'s exit status if it has stopped on its own (the child is reaped).
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let status = self.children[i].as_mut()?.try_wait().ok()??;
        self.children[i] = None;
        Some(status)
    }

    /// Node `i`'s API address.
    pub fn api_address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.api[i])
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` (`"-STOP"`, `"-CONT"`, ...) to node `i` with kill(1).
    pub fn signal(&self, i: usize, sig: &str) {
        let pid = self.children[i].as_ref().expect("node running").id();
        let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status();
        assert!(ok.is_ok_and(|s| s.success()), "kill {sig} {pid}");
    }

    pub fn height(&self, i: usize) -> u64 {
        cluster_view(self.api[i]).and_then(|v| v["committed_height"].as_u64()).unwrap_or(0)
    }

    pub fn live(&self) -> Vec<usize> {
        (0..self.children.len()).filter(|&i| self.children[i].is_some()).collect()
    }

    /// Waits until every live node has committed `by` more blocks than the highest now.
    pub fn wait_progress(&self, by: u64, what: &str) {
        let live = self.live();
        let target = live.iter().map(|&i| self.height(i)).max().unwrap_or(0) + by;
        wait_until(what, 60, || live.iter().all(|&i| self.height(i) >= target));
    }
}

/// A cluster of `n` running nodes, each connected to every other, with `extra` in each
/// `node.toml`.
pub fn start_all_with(n: usize, extra: &str) -> Cluster {
    let mut c = Cluster::with_config(n, extra);
    for i in 0..n {
        c.start(i);
    }
    c.wait_progress(2, "first commits");
    wait_until("every node connected to every other", 30, || {
        (0..n).all(|i| {
            cluster_view(c.api[i]).is_some_and(|v| {
                v["members"].as_array().unwrap().iter().all(|m| m["connected"] == Value::Bool(true))
            })
        })
    });
    c
}

pub fn start_all(n: usize) -> Cluster {
    start_all_with(n, "")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        // WARPNET_TEST_KEEP=1 keeps the nodes' directories (logs) for a look after a failure.
        if std::env::var_os("WARPNET_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
