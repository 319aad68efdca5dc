//! Multi-process tests from the built binary, on 127.0.0.1 only. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::load::kill_all_under_load;
use common::{cluster_view, free_port, get, run_ok, start_all, wait_until, Cluster, BIN};
use serde_json::Value;
use warpnet_node::files::{read_toml, CommitteeFile};
use warpnet_storage::Store;
use warpnet_types::Height;

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

/// Every member killed with -9 at once under claim load, then restarted: they resume from
/// what their disks hold, and every claim acknowledged before the crash is still there on
/// every member, with the same owner (the history of both loads is linearizable).
#[test]
fn all_members_killed_at_once_under_load_come_back_with_every_acknowledged_claim() {
    let mut c = start_all(4);
    kill_all_under_load(&mut c, "k", |c| {
        c.wait_progress(2, "commits after every member restarted")
    });
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
    // The member with the lowest key plays the sender (the lower key dials, so the target reads
    // what it sends); the target is another member.
    let keys: Vec<_> = (0..4)
        .map(|i| warpnet_node::files::read_key(&c.node_dir(i).join("node.key")).unwrap())
        .collect();
    let sender = (0..4).min_by_key(|&i| warpnet_types::Signer::public_key(&keys[i])).unwrap();
    let t = (sender + 1) % 4;
    let target = c.p2p[t];
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
    // An authenticated member (the sender's key, read from its directory) sending a frame over
    // the limit is cut off; the sender itself then reconnects.
    let config = {
        let committee: CommitteeFile = read_toml(&c.dir.join("committee.toml")).unwrap();
        std::sync::Arc::new(committee.to_config(Path::new("committee.toml")).unwrap())
    };
    let key = &keys[sender];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", target)).await.unwrap();
        let anyone = |_: &warpnet_types::PublicKey| true;
        let side = warpnet_net::Side {
            role: warpnet_net::Role::Dialer,
            config: &config,
            signer: key,
            purpose: warpnet_net::Purpose::Connect,
            expected: None,
            admits: &anyone,
        };
        let (_, _, mut w) = warpnet_net::handshake(stream, side, 1 << 20)
            .await
            .expect("a member's key is accepted");
        let _ = w.send(&vec![0u8; warpnet_types::message::MESSAGE_BYTES_MAX + 1]).await;
    });
    let (status, body) = get(c.api[t], "/v1/health").expect("the node answers");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["recent_certificate"], Value::Bool(true), "{body}");
    let refused = || {
        get(c.api[t], "/metrics").and_then(|(_, m)| {
            m.lines()
                .find(|l| l.starts_with("warpnet_rejected_connections_total "))
                .and_then(|l| l.split(' ').nth(1)?.parse::<u64>().ok())
        })
    };
    wait_until("the junk connections are counted as refused", 20, || refused().unwrap_or(0) >= 3);
    wait_until("the target connected to everyone again", 20, || {
        cluster_view(c.api[t]).is_some_and(|v| {
            v["members"].as_array().unwrap().iter().all(|m| m["connected"] == Value::Bool(true))
        })
    });
    c.wait_progress(2, "commits continue after the garbage");
}

/// A node whose database has gone (deleted, a lost directory entry, or an empty volume mounted
/// over its data directory) refuses to start: from genesis it could sign twice. Only its first
/// start may create the database, and an empty data directory then (a fresh mount) is fine:
/// `node init`'s marker lives beside `node.toml`, not inside the data directory.
#[test]
fn a_node_never_restarts_from_genesis_without_its_database() {
    let mut c = Cluster::new(4);
    let data = c.node_dir(0).join("data");
    // A fresh, empty volume mounted on data/ before the first start.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    c.start(0);
    let db = data.join("node.redb");
    let marker = c.node_dir(0).join("FIRST_START");
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
