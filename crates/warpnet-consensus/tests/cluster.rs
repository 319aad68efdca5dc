//! Multi-process tests from the built binary, on 127.0.0.1 only. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use warpnet_node::files::{read_toml, CommitteeFile};
use warpnet_storage::Store;
use warpnet_types::Height;

const BIN: &str = env!("CARGO_BIN_EXE_warpnet-consensus");

/// A free port outside the kernel's ephemeral range (32768-60999 on Linux), so that no dialer's
/// local port can take a killed node's port before it restarts.
fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = 20_000 + (u64::from(std::process::id()) % 400) * 30;
    loop {
        let port = u16::try_from(base + NEXT.fetch_add(1, Ordering::Relaxed) % 30).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn temp_dir() -> PathBuf {
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

fn run_ok(args: &[&str]) {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `GET path` on 127.0.0.1:`port`; None if the node does not answer.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
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

fn cluster_view(port: u16) -> Option<Value> {
    let (status, body) = get(port, "/v1/cluster")?;
    (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {secs} s waiting for {what}");
}

struct Cluster {
    dir: PathBuf,
    api: Vec<u16>,
    p2p: Vec<u16>,
    children: Vec<Option<Child>>,
}

impl Cluster {
    fn new(n: usize) -> Self {
        let dir = temp_dir();
        let (mut api, mut p2p, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let (a, p) = (free_port(), free_port());
            let node = dir.join(format!("node-{i}"));
            run_ok(&[
                "node",
                "init",
                "--dir",
                node.to_str().unwrap(),
                "--p2p",
                &format!("127.0.0.1:{p}"),
                "--api",
                &format!("127.0.0.1:{a}"),
                "--public",
                "--committee-file",
                "../committee.toml",
            ]);
            // Short rounds so crashed leaders cost little test time.
            let mut f =
                std::fs::OpenOptions::new().append(true).open(node.join("node.toml")).unwrap();
            writeln!(f, "round_timeout_base_ms = 300").unwrap();
            api.push(a);
            p2p.push(p);
            members.push(node.join("member.toml").to_str().unwrap().to_owned());
        }
        let out = dir.join("committee.toml");
        let mut args =
            vec!["committee", "create", "--network", "test", "--out", out.to_str().unwrap()];
        args.extend(members.iter().map(String::as_str));
        run_ok(&args);
        Self { dir, api, p2p, children: (0..n).map(|_| None).collect() }
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    fn start(&mut self, i: usize) {
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
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    /// kill -9.
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn height(&self, i: usize) -> u64 {
        cluster_view(self.api[i]).and_then(|v| v["committed_height"].as_u64()).unwrap_or(0)
    }

    fn live(&self) -> Vec<usize> {
        (0..self.children.len()).filter(|&i| self.children[i].is_some()).collect()
    }

    /// Waits until every live node has committed `by` more blocks than the highest now.
    fn wait_progress(&self, by: u64, what: &str) {
        let live = self.live();
        let target = live.iter().map(|&i| self.height(i)).max().unwrap_or(0) + by;
        wait_until(what, 60, || live.iter().all(|&i| self.height(i) >= target));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Commits; kill -9 of a node and, separately, of the leader: commits continue, the node comes
/// back and catches up; every node restarted at once resumes from disk; and all committed
/// chains are identical.
#[test]
fn a_cluster_survives_crashes_and_restarts_with_identical_chains() {
    let mut c = Cluster::new(4);
    for i in 0..4 {
        c.start(i);
    }
    c.wait_progress(3, "first commits");

    c.kill(3);
    c.wait_progress(3, "commits without node 3");
    c.start(3);
    c.wait_progress(3, "node 3 back and caught up");

    let leader = cluster_view(c.api[0]).unwrap()["leader"].as_u64().unwrap() as usize;
    c.kill(leader);
    c.wait_progress(3, "commits without the leader");
    c.start(leader);
    c.wait_progress(3, "the old leader back and caught up");

    let before = (0..4).map(|i| c.height(i)).max().unwrap();
    for i in 0..4 {
        c.kill(i);
    }
    for i in 0..4 {
        c.start(i);
    }
    wait_until("every node resumes from disk", 60, || (0..4).all(|i| c.height(i) >= before + 2));

    for i in 0..4 {
        c.kill(i);
    }
    let committee: CommitteeFile = read_toml(&c.dir.join("committee.toml")).unwrap();
    let config = committee.to_config(Path::new("committee.toml")).unwrap();
    let stores: Vec<Store> = (0..4)
        .map(|i| Store::open(&c.node_dir(i).join("data/node.redb"), &config).unwrap())
        .collect();
    let common = stores.iter().map(|s| s.committed_height().unwrap().0).min().unwrap();
    assert!(common >= before, "common height {common} below {before}");
    for h in 1..=common {
        let reference = stores[0].committed(Height(h)).unwrap();
        for (i, s) in stores.iter().enumerate().skip(1) {
            assert_eq!(s.committed(Height(h)).unwrap(), reference, "node {i} height {h}");
        }
    }
}

/// A node whose key is not in the committee is refused by the members, which carry on.
#[test]
fn a_node_outside_the_committee_is_refused() {
    let mut c = Cluster::new(4);
    for i in 0..4 {
        c.start(i);
    }
    c.wait_progress(2, "first commits");
    // A stranger with a committee of its own in which it dials every member.
    let stranger = c.dir.join("stranger");
    let (a, p) = (free_port(), free_port());
    run_ok(&[
        "node",
        "init",
        "--dir",
        stranger.to_str().unwrap(),
        "--p2p",
        &format!("127.0.0.1:{p}"),
        "--api",
        &format!("127.0.0.1:{a}"),
        "--public",
    ]);
    let mut members = vec![stranger.join("member.toml").to_str().unwrap().to_owned()];
    members.extend((0..4).map(|i| c.node_dir(i).join("member.toml").to_str().unwrap().to_owned()));
    let out = stranger.join("committee.toml");
    let mut args = vec!["committee", "create", "--network", "test", "--out", out.to_str().unwrap()];
    args.extend(members.iter().map(String::as_str));
    run_ok(&args);
    let mut child = Command::new(BIN)
        .args(["node", "run", "--config"])
        .arg(stranger.join("node.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let refused = |port: u16| {
        get(port, "/metrics").and_then(|(_, m)| {
            m.lines()
                .find(|l| l.starts_with("warpnet_rejected_connections_total "))
                .and_then(|l| l.split(' ').nth(1)?.parse::<u64>().ok())
        })
    };
    wait_until("members refuse the stranger", 30, || {
        (0..4).all(|i| refused(c.api[i]).unwrap_or(0) > 0)
    });
    let _ = child.kill();
    let _ = child.wait();
    c.wait_progress(2, "commits continue");
}

/// Garbage and oversized input on a member-to-member port is dropped; the node stays healthy.
#[test]
fn garbage_and_oversized_frames_on_a_p2p_port_are_dropped() {
    let mut c = Cluster::new(4);
    for i in 0..4 {
        c.start(i);
    }
    c.wait_progress(2, "first commits");
    let target = c.p2p[1];
    for junk in [
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0xFF; 1 << 20],
        b"WARPNET1\xff\xff".iter().copied().chain(std::iter::repeat_n(7u8, 70_000)).collect(),
    ] {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", target)) {
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(&junk);
        }
    }
    // An authenticated member (node 0's key, read from its directory) sending a frame over the
    // limit is cut off; node 0 itself then reconnects.
    let config = {
        let committee: CommitteeFile = read_toml(&c.dir.join("committee.toml")).unwrap();
        std::sync::Arc::new(committee.to_config(Path::new("committee.toml")).unwrap())
    };
    let key = warpnet_node::files::read_key(&c.node_dir(0).join("node.key")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", target)).await.unwrap();
        let (_, _, mut w) =
            warpnet_net::handshake(stream, warpnet_net::Role::Dialer, &config, &key, None, 1 << 20)
                .await
                .expect("a member's key is accepted");
        let _ = w.send(&vec![0u8; warpnet_types::message::MESSAGE_BYTES_MAX + 1]).await;
    });
    let (status, body) = get(c.api[1], "/v1/health").expect("the node answers");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["recent_certificate"], Value::Bool(true), "{body}");
    let refused = || {
        get(c.api[1], "/metrics").and_then(|(_, m)| {
            m.lines()
                .find(|l| l.starts_with("warpnet_rejected_connections_total "))
                .and_then(|l| l.split(' ').nth(1)?.parse::<u64>().ok())
        })
    };
    wait_until("the junk connections are counted as refused", 20, || refused().unwrap_or(0) >= 3);
    wait_until("node 1 connected to everyone again", 20, || {
        cluster_view(c.api[1]).is_some_and(|v| {
            v["members"].as_array().unwrap().iter().all(|m| m["connected"] == Value::Bool(true))
        })
    });
    c.wait_progress(2, "commits continue after the garbage");
}

/// A node whose database has gone (deleted, or a lost directory entry) refuses to start: from
/// genesis it could sign twice. Only its first start may create the database.
#[test]
fn a_node_never_restarts_from_genesis_without_its_database() {
    let mut c = Cluster::new(4);
    c.start(0);
    let db = c.node_dir(0).join("data/node.redb");
    let marker = c.node_dir(0).join("data/FIRST_START");
    // The first start is complete once the database exists and the marker is gone.
    wait_until("the first start creates the database", 20, || db.exists() && !marker.exists());
    c.kill(0);
    std::fs::remove_file(&db).unwrap();
    let mut child = Command::new(BIN)
        .args(["node", "run", "--config"])
        .arg(c.node_dir(0).join("node.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node started without its database");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("no database at") && stderr.contains("sign twice"), "{stderr}");
    assert!(!db.exists(), "nothing was created");
}
