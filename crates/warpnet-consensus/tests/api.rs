//! The HTTP API as clients meet it, from the built binary on 127.0.0.1: load protection (one
//! client's flood does not starve another's claims), a waiting claim answered as soon as the
//! quorum is gone, and `dev` stopping a node restarted by hand. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, get, start_all_with, temp_dir, wait_until, BIN};
use hyper::Method;
use serde_json::Value;
use warpnet_client::Connection;
use warpnet_state::{Claim, UserId};
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::{NetworkId, SchemeId};

fn claim_body(seed: u64, id: &str) -> Vec<u8> {
    let signer = signer_from_seed(SchemeId::Ed25519, seed);
    let network = NetworkId::new("test").unwrap();
    let c = Claim::sign(&network, UserId::parse(id).unwrap(), signer.as_ref(), "r1").unwrap();
    serde_json::to_vec(&serde_json::json!({
        "user_id": id,
        "owner_key": c.owner_key.to_hex(),
        "signature": hex::encode(c.signature.0),
        "request_id": "r1",
    }))
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

/// One client (127.0.0.2) floods a node with lookups over more connections than it may hold;
/// another (127.0.0.1) claims IDs meanwhile. The flooder is refused (429 `rate_limited` and
/// `too_many_connections`, with Retry-After) while every claim of the other client succeeds,
/// on a connection the flooder could not take.
#[test]
fn a_flood_of_lookups_from_one_client_does_not_starve_claims_from_another() {
    let limits = "api_connections_max = 12\napi_client_connections_max = 6\n\
                  api_client_requests_per_second = 50\napi_client_burst = 50";
    let c = start_all_with(4, limits);
    let authority = format!("127.0.0.1:{}", c.api[0]);
    let flooder: IpAddr = "127.0.0.2".parse().unwrap();
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let retry_after_missing = Arc::new(AtomicBool::new(false));
    // Ten connections from the flooder, each sending lookups as fast as it is answered (and
    // reconnecting when refused), for at most 60 s.
    let mut flood = Vec::new();
    for task in 0..10 {
        let (stop, seen, authority) = (stop.clone(), seen.clone(), authority.clone());
        let missing = retry_after_missing.clone();
        flood.push(rt.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut conn: Option<Connection> = None;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if conn.is_none() {
                    conn = Connection::open_from(&authority, Some(flooder)).await.ok();
                }
                let Some(open) = conn.as_mut() else { continue };
                n += 1;
                let path = format!("/v1/users/flood_{task}_{n}");
                let Ok(reply) = open.send(Method::GET, &path, None).await else {
                    conn = None;
                    continue;
                };
                let v: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
                let result = v["error"].as_str().unwrap_or("found").to_owned();
                if reply.status == 429 && reply.retry_after_s().is_none() {
                    missing.store(true, Ordering::Relaxed);
                }
                if result == "too_many_connections" {
                    conn = None;
                }
                *seen.lock().unwrap().entry(result).or_default() += 1;
            }
        }));
    }
    // Let the flood take every connection it may before the claimer connects.
    wait_until("the flood is refused", 30, || {
        let s = seen.lock().unwrap();
        s.contains_key("too_many_connections") && s.contains_key("rate_limited")
    });
    let claims = rt.block_on(async {
        let mut conn = Connection::open(&authority).await.unwrap();
        let mut answers = Vec::new();
        for i in 0..10u64 {
            let body = claim_body(1_000 + i, &format!("steady_{i}"));
            let (status, body) =
                conn.request(Method::POST, "/v1/claims", Some(body)).await.unwrap();
            answers.push((status, body));
        }
        answers
    });
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        rt.block_on(t).unwrap();
    }
    for (status, body) in &claims {
        assert_eq!(*status, 200, "a claim of the other client was not answered: {body}");
        assert!(body.contains("\"status\":\"claimed\""), "{body}");
    }
    let seen = seen.lock().unwrap().clone();
    assert!(seen.get("rate_limited").is_some_and(|n| *n > 0), "{seen:?}");
    assert!(seen.get("too_many_connections").is_some_and(|n| *n > 0), "{seen:?}");
    assert!(seen.get("not_found").is_some_and(|n| *n > 0), "the flood was served too: {seen:?}");
    assert!(!retry_after_missing.load(Ordering::Relaxed), "a 429 without Retry-After");
    let (_, metrics) = get(c.api[0], "/metrics").unwrap();
    assert!(metrics.contains("warpnet_api_requests_total{result=\"rate_limited\"}"), "{metrics}");
}

/// A claim submitted just after two of four members froze (SIGSTOP: their connections stay
/// open but go silent) waits; once the transport declares the silent members dead (1 s without
/// even a heartbeat), the node sees its quorum gone and answers `no_quorum`, outcome `unknown`,
/// at once rather than after the whole bound (20 s here).
#[test]
fn a_waiting_claim_is_answered_as_soon_as_the_quorum_is_gone() {
    let c = start_all_with(4, "claim_timeout_ms = 20000");
    let pid = |c: &common::Cluster, i: usize| c.children[i].as_ref().unwrap().id();
    let authority = format!("127.0.0.1:{}", c.api[0]);
    let rt = runtime();
    let mut conn = rt.block_on(Connection::open(&authority)).unwrap();
    signal(pid(&c, 2), "-STOP");
    signal(pid(&c, 3), "-STOP");
    let started = Instant::now();
    let reply =
        rt.block_on(conn.send(Method::POST, "/v1/claims", Some(claim_body(7, "pending")))).unwrap();
    let took = started.elapsed();
    signal(pid(&c, 2), "-CONT");
    signal(pid(&c, 3), "-CONT");
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!((reply.status, v["error"].as_str()), (503, Some("no_quorum")), "{v}");
    assert_eq!(v["outcome"], "unknown", "submitted: it may still commit: {v}");
    assert_eq!(reply.retry_after_s(), Some(1));
    assert!(took < Duration::from_secs(10), "answered when the quorum went, not at 20 s: {took:?}");
}

/// A free port whose successor is free too.
fn port_pair() -> u16 {
    loop {
        let (a, b) = (free_port(), free_port());
        if b == a + 1 {
            return a;
        }
    }
}

/// `dev` stops the nodes of its directory it did not start: a node killed and restarted by
/// hand with `node run` is stopped by dev's Ctrl-C (SIGINT), and dev says so.
#[test]
fn dev_stops_a_node_restarted_by_hand() {
    let dir = temp_dir();
    // Two nodes (with one, dev would end when its only child died), on ports p and p + 1.
    let (api, p2p) = (port_pair(), port_pair());
    let log = dir.join("dev.log");
    let mut dev = Command::new(BIN)
        .args(["dev", "--nodes", "2", "--dir"])
        .arg(dir.join("cluster"))
        .args(["--api-port", &api.to_string(), "--p2p-port", &p2p.to_string()])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let node = dir.join("cluster").join("node-0");
    let pid_of = || std::fs::read_to_string(node.join("node.pid")).ok()?.trim().parse::<u32>().ok();
    wait_until("the node answers", 30, || get(api, "/v1/health").is_some_and(|(s, _)| s == 200));
    let first = pid_of().expect("node run writes node.pid");
    signal(first, "-KILL");
    wait_until("dev sees the node exit", 10, || {
        std::fs::read_to_string(&log).unwrap().contains("exited")
    });
    let mut by_hand = Command::new(BIN)
        .args(["node", "run", "--config"])
        .arg(node.join("node.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the node restarted by hand answers", 30, || {
        pid_of() == Some(by_hand.id()) && get(api, "/v1/health").is_some_and(|(s, _)| s == 200)
    });
    signal(dev.id(), "-INT");
    let deadline = Instant::now() + Duration::from_secs(20);
    let stopped = loop {
        if let Some(status) = by_hand.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = by_hand.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = dev.wait();
    let out = std::fs::read_to_string(&log).unwrap();
    assert!(stopped.is_some(), "dev left the node started by hand running:\n{out}");
    assert!(out.contains(&format!("node 0 (pid {}, started by hand)", by_hand.id())), "{out}");
    assert!(pid_of().is_none(), "a stopped node removes its pid file");
    let _ = std::fs::remove_dir_all(&dir);
}
