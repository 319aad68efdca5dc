//! The user-ID registry end to end, from the built binary on 127.0.0.1: concurrent claims with
//! duplicates, kill -9 under load with a linearizability check of the client history, loss of
//! quorum, and bad input. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::linearizability::{check, Op, Seen};
use common::{cluster_view, get, start_all, wait_until, CLAIM_TIMEOUT_MS};
use hyper::Method;
use serde_json::Value;
use warpnet_client::Connection;
use warpnet_state::{Claim, UserId};
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::{NetworkId, SchemeId, Signer};

fn network() -> NetworkId {
    NetworkId::new("test").unwrap()
}

fn key(seed: u64) -> Box<dyn Signer> {
    signer_from_seed(SchemeId::Ed25519, seed)
}

/// The JSON body of a claim, exactly as a third-party client builds it.
fn claim_body(signer: &dyn Signer, id: &str, request_id: &str) -> Vec<u8> {
    let c = Claim::sign(&network(), UserId::parse(id).unwrap(), signer, request_id).unwrap();
    serde_json::to_vec(&serde_json::json!({
        "user_id": id,
        "owner_key": c.owner_key.to_hex(),
        "signature": hex::encode(c.signature.0),
        "request_id": request_id,
    }))
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One request on a cached keep-alive connection; None (and the connection dropped) on any
/// transport error.
async fn request(
    conns: &mut HashMap<u16, Connection>,
    port: u16,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Option<(u16, Value)> {
    let conn = match conns.entry(port) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let address = format!("127.0.0.1:{port}");
            let open = Connection::open(&address);
            e.insert(tokio::time::timeout(Duration::from_secs(2), open).await.ok()?.ok()?)
        }
    };
    let bound = Duration::from_millis(CLAIM_TIMEOUT_MS + 3_000);
    match tokio::time::timeout(bound, conn.request(method, path, body)).await {
        Ok(Ok((status, body))) => {
            Some((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
        }
        _ => {
            conns.remove(&port);
            None
        }
    }
}

/// What a claim's answer says, for the history.
fn seen_of_claim(answer: &Option<(u16, Value)>) -> Seen {
    match answer {
        Some((200 | 409, v)) => Seen::Claim {
            mine: v["status"] != "taken",
            owner: v["owner_key"].as_str().unwrap().to_owned(),
            height: v["height"].as_u64().unwrap(),
        },
        _ => Seen::Unknown,
    }
}

fn seen_of_read(answer: &Option<(u16, Value)>) -> Seen {
    match answer {
        Some((200, v)) => Seen::Read(Some((
            v["owner_key"].as_str().unwrap().to_owned(),
            v["height"].as_u64().unwrap(),
        ))),
        Some((404, _)) => Seen::Read(None),
        _ => Seen::Unknown,
    }
}

/// A POST written by hand: the headers and only the start of the body, then the answer.
fn raw_post(port: u16, headers: &str, body_start: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST /v1/claims HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\r\n"
    )
    .unwrap();
    let _ = s.write_all(body_start);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the JSON body is complete (the node may or may not close the connection).
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(b"}") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

// ---------------------------------------------------------------------------------------------
// The checker has teeth
// ---------------------------------------------------------------------------------------------

fn op(id: &str, key: Option<&str>, t: (u64, u64), seen: Seen) -> Op {
    Op { id: id.into(), key: key.map(Into::into), invoked: t.0, responded: t.1, seen }
}

fn claimed(owner: &str, h: u64) -> Seen {
    Seen::Claim { mine: true, owner: owner.into(), height: h }
}

fn taken(owner: &str, h: u64) -> Seen {
    Seen::Claim { mine: false, owner: owner.into(), height: h }
}

#[test]
fn the_linearizability_checker_accepts_valid_histories_and_rejects_broken_ones() {
    // Valid: a concurrent read may miss the write; losers see the winner; unknowns are free.
    let good = vec![
        op("a", Some("K1"), (0, 10), claimed("K1", 5)),
        op("a", None, (1, 12), Seen::Read(None)),
        op("a", Some("K2"), (2, 11), taken("K1", 5)),
        op("a", Some("K3"), (3, 50), Seen::Unknown),
        op("a", None, (20, 21), Seen::Read(Some(("K1".into(), 5)))),
        op("b", None, (0, 1), Seen::Read(None)),
        op("c", Some("K9"), (0, 100), Seen::Unknown),
        op("c", None, (200, 201), Seen::Read(Some(("K9".into(), 7)))),
    ];
    assert_eq!(check(&good), Ok(()));

    let two_owners = vec![
        op("a", Some("K1"), (0, 10), claimed("K1", 5)),
        op("a", Some("K2"), (0, 10), claimed("K2", 6)),
    ];
    assert!(check(&two_owners).unwrap_err().contains("two owners"));

    let lost = vec![
        op("a", Some("K1"), (0, 10), claimed("K1", 5)),
        op("a", None, (11, 12), Seen::Read(None)),
    ];
    assert!(check(&lost).unwrap_err().contains("lost or unseen"));

    let from_the_future = vec![
        op("a", None, (0, 1), Seen::Read(Some(("K1".into(), 5)))),
        op("a", Some("K1"), (2, 10), claimed("K1", 5)),
    ];
    assert!(check(&from_the_future).unwrap_err().contains("before its claim began"));

    let lying = vec![op("a", Some("K2"), (0, 10), claimed("K1", 5))];
    assert!(check(&lying).unwrap_err().contains("names owner"));

    let nobody_claimed = vec![op("a", None, (0, 1), Seen::Read(Some(("K7".into(), 5))))];
    assert!(check(&nobody_claimed).unwrap_err().contains("never claimed"));

    let height_moved = vec![
        op("a", Some("K1"), (0, 10), claimed("K1", 5)),
        op("a", None, (11, 12), Seen::Read(Some(("K1".into(), 6)))),
    ];
    assert!(check(&height_moved).unwrap_err().contains("two owners"));
}

// ---------------------------------------------------------------------------------------------
// Concurrent claims with duplicates
// ---------------------------------------------------------------------------------------------

/// 1,000 concurrent claims (5 % of them on an ID another key also claims) spread over all four
/// nodes: every claim gets a final answer, every ID exactly one owner, every loser the winner's
/// key, and every acknowledged claim reads back, identically, on every node.
#[test]
fn concurrent_claims_with_duplicates_have_one_owner_each_readable_on_every_node() {
    let c = start_all(4);
    let ports = c.api.clone();
    // 950 distinct IDs; 50 more claims of IDs 0..50 by other keys.
    let mut work: Vec<(usize, String, u64)> =
        (0..950).map(|i| (i, format!("user_{i}"), 0)).collect();
    work.extend((0..50).map(|i| (950 + i, format!("USER_{i}"), 0)));
    // A fixed shuffle so duplicates race their originals.
    let mut x = 0x9E37_79B9_u64;
    for i in (1..work.len()).rev() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        work.swap(i, (x >> 33) as usize % (i + 1));
    }
    let keys: Arc<Vec<Box<dyn Signer>>> = Arc::new((0..1000).map(|i| key(10_000 + i)).collect());
    let queue = Arc::new(Mutex::new(work.into_iter().collect::<VecDeque<_>>()));
    let results = Arc::new(Mutex::new(Vec::new()));
    let rt = runtime();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..64usize {
            let (queue, results, keys, ports) =
                (queue.clone(), results.clone(), keys.clone(), ports.clone());
            tasks.push(tokio::spawn(async move {
                let mut conns = HashMap::new();
                loop {
                    let Some((k, id, _)) = queue.lock().unwrap().pop_front() else { break };
                    let body = claim_body(keys[k].as_ref(), &id, &format!("r{k}"));
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut attempt = 0;
                    let answer = loop {
                        let port = ports[(t + attempt) % ports.len()];
                        let a = request(
                            &mut conns,
                            port,
                            Method::POST,
                            "/v1/claims",
                            Some(body.clone()),
                        )
                        .await;
                        match a {
                            Some((200 | 409, _)) => break a,
                            Some((400, v)) => panic!("a valid claim refused: {v}"),
                            _ if Instant::now() > deadline => {
                                panic!("no final answer for {id}: {a:?}")
                            }
                            _ => {
                                attempt += 1;
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    };
                    results.lock().unwrap().push((k, id, answer.unwrap()));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let results = Arc::try_unwrap(results).unwrap().into_inner().unwrap();
    assert_eq!(results.len(), 1000);

    // Per ID: one winner, named by every answer.
    let mut by_id: BTreeMap<String, Vec<(usize, u16, Value)>> = BTreeMap::new();
    for (k, id, (status, v)) in results {
        by_id
            .entry(UserId::parse(&id).unwrap().as_str().to_owned())
            .or_default()
            .push((k, status, v));
    }
    assert_eq!(by_id.len(), 950);
    let mut owners = BTreeMap::new();
    let mut max_height = 0;
    for (id, answers) in &by_id {
        let winners: Vec<_> =
            answers.iter().filter(|(_, s, v)| *s == 200 && v["status"] == "claimed").collect();
        assert_eq!(winners.len(), 1, "{id}: {answers:?}");
        let (wk, _, wv) = winners[0];
        let owner = keys[*wk].public_key().to_hex();
        assert_eq!(wv["owner_key"], owner.as_str());
        for (k, status, v) in answers {
            assert_eq!(v["owner_key"], owner.as_str(), "{id}: every answer names the winner");
            assert_eq!(v["height"], wv["height"]);
            if k != wk {
                assert_eq!((*status, v["status"].as_str()), (409, Some("taken")), "{id}");
            }
        }
        let height = wv["height"].as_u64().unwrap();
        max_height = max_height.max(height);
        owners.insert(id.clone(), (owner, height));
    }
    assert_eq!(by_id.values().filter(|a| a.len() == 2).count(), 50, "the 50 duplicates raced");

    // Every node, once it has committed that far, answers every lookup identically.
    let rt = runtime();
    for &port in &c.api {
        wait_until("the node catches up", 30, || {
            cluster_view(port)
                .is_some_and(|v| v["committed_height"].as_u64().unwrap() >= max_height)
        });
        rt.block_on(async {
            let mut conns = HashMap::new();
            for (id, (owner, height)) in &owners {
                let path = format!("/v1/users/{id}");
                let (status, v) =
                    request(&mut conns, port, Method::GET, &path, None).await.unwrap();
                assert_eq!(status, 200, "{id} on port {port}: {v}");
                assert_eq!(
                    (v["owner_key"].as_str().unwrap(), v["height"].as_u64().unwrap()),
                    (owner.as_str(), *height)
                );
                assert!(v["read_height"].as_u64().unwrap() >= *height);
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// kill -9 under load, checked for linearizability
// ---------------------------------------------------------------------------------------------

/// Contended claims (three keys per ID) and linearizable reads from 24 clients over all four
/// nodes while the leader, and later another node, are killed with -9 and restarted. The whole
/// client history (every attempt, with its invocation and response times) must be
/// linearizable for a write-once register per ID; then every node holds the same owners.
#[test]
fn kill_9_under_load_loses_no_acknowledged_claim_and_the_history_is_linearizable() {
    let c = Arc::new(Mutex::new(start_all(4)));
    let ports = c.lock().unwrap().api.clone();
    const IDS: usize = 300;
    let keys: Arc<Vec<Box<dyn Signer>>> = Arc::new((0..3).map(|i| key(20_000 + i)).collect());
    // Operation j: a claim of ID j/4 by key j%4 (0..3), or, when j%4 == 3, a linearizable read.
    let total = IDS * 4;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let history = Arc::new(Mutex::new(Vec::new()));
    let began = Instant::now();
    let now = move || began.elapsed().as_micros() as u64;

    // The killer acts on the load's progress, so the kills land during the load.
    let killer = {
        let (c, done) = (c.clone(), done.clone());
        std::thread::spawn(move || {
            let wait_for = |fraction: usize| {
                let deadline = Instant::now() + Duration::from_secs(120);
                while done.load(Ordering::Relaxed) < total * fraction / 100 {
                    assert!(Instant::now() < deadline, "the load stalled before {fraction} %");
                    std::thread::sleep(Duration::from_millis(5));
                }
            };
            wait_for(10);
            eprintln!("10 % at {:?}", began.elapsed());
            let leader = {
                let c = c.lock().unwrap();
                cluster_view(c.api[0]).unwrap()["leader"].as_u64().unwrap() as usize
            };
            c.lock().unwrap().kill(leader);
            eprintln!("killed leader {leader} at {:?}", began.elapsed());
            wait_for(35);
            eprintln!("35 % at {:?}", began.elapsed());
            c.lock().unwrap().start(leader);
            wait_for(50);
            let other = (leader + 1) % 4;
            c.lock().unwrap().kill(other);
            wait_for(75);
            eprintln!("75 % at {:?}", began.elapsed());
            c.lock().unwrap().start(other);
            (leader, other)
        })
    };

    let rt = runtime();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..24usize {
            let (next, done, history, keys, ports) =
                (next.clone(), done.clone(), history.clone(), keys.clone(), ports.clone());
            tasks.push(tokio::spawn(async move {
                let mut conns = HashMap::new();
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    if j >= total {
                        break;
                    }
                    let id = format!("k9_{}", j / 4);
                    let k = j % 4;
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut attempt = 0;
                    loop {
                        let port = ports[(t + j + attempt) % ports.len()];
                        let invoked = now();
                        let (op, final_answer) = if k == 3 {
                            let path = format!("/v1/users/{id}?consistency=linearizable");
                            let a = request(&mut conns, port, Method::GET, &path, None).await;
                            let seen = seen_of_read(&a);
                            let fin = seen != Seen::Unknown;
                            (Op { id: id.clone(), key: None, invoked, responded: now(), seen }, fin)
                        } else {
                            let body = claim_body(keys[k].as_ref(), &id, &format!("k9-{j}"));
                            let a =
                                request(&mut conns, port, Method::POST, "/v1/claims", Some(body))
                                    .await;
                            if let Some((400, v)) = &a {
                                panic!("a valid claim refused: {v}");
                            }
                            let seen = seen_of_claim(&a);
                            let fin = seen != Seen::Unknown;
                            let owner = keys[k].public_key().to_hex();
                            (
                                Op {
                                    id: id.clone(),
                                    key: Some(owner),
                                    invoked,
                                    responded: now(),
                                    seen,
                                },
                                fin,
                            )
                        };
                        history.lock().unwrap().push(op);
                        if final_answer || Instant::now() > deadline {
                            break;
                        }
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    eprintln!("load done after {:?}", began.elapsed());
    let (leader, other) = killer.join().unwrap();
    assert_ne!(leader, other);

    // Every ID read once more, linearizably, after everything is back.
    let c = Arc::try_unwrap(c).ok().unwrap().into_inner().unwrap();
    c.wait_progress(2, "all four back");
    let mut history = Arc::try_unwrap(history).unwrap().into_inner().unwrap();
    let unknown = history.iter().filter(|o| o.seen == Seen::Unknown).count();
    rt.block_on(async {
        let mut conns = HashMap::new();
        for i in 0..IDS {
            let id = format!("k9_{i}");
            let invoked = now();
            let path = format!("/v1/users/{id}?consistency=linearizable");
            let a = request(&mut conns, c.api[i % 4], Method::GET, &path, None).await;
            let seen = seen_of_read(&a);
            assert!(matches!(seen, Seen::Read(Some(_))), "{id} has an owner by now: {a:?}");
            history.push(Op { id, key: None, invoked, responded: now(), seen });
        }
    });
    eprintln!(
        "history: {} operations, {unknown} unknown, after {:?}",
        history.len(),
        began.elapsed()
    );
    check(&history).unwrap_or_else(|e| panic!("not linearizable: {e}"));
    let acked = history.iter().filter(|o| matches!(o.seen, Seen::Claim { .. })).count();
    assert!(acked >= IDS * 3 / 2, "most claims were answered ({acked}); unknown: {unknown}");

    // Every node holds the same owner for every ID.
    let heights: Vec<u64> = (0..4).map(|i| c.height(i)).collect();
    let target = *heights.iter().max().unwrap();
    for &port in &c.api {
        wait_until("the node catches up", 30, || {
            cluster_view(port).is_some_and(|v| v["committed_height"].as_u64().unwrap() >= target)
        });
    }
    for i in 0..IDS {
        let answers: Vec<String> = c
            .api
            .iter()
            .map(|&p| {
                let (status, body) = get(p, &format!("/v1/users/k9_{i}")).unwrap();
                assert_eq!(status, 200, "{body}");
                let v: Value = serde_json::from_str(&body).unwrap();
                format!("{}@{}", v["owner_key"], v["height"])
            })
            .collect();
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "k9_{i}: {answers:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Loss of quorum
// ---------------------------------------------------------------------------------------------

/// Two of four nodes stopped (SIGSTOP: still connected, silent) then killed (connections
/// gone): claims answer 503 `no_quorum` within the bound, saying whether the outcome is
/// unknown or nothing was submitted; lookups still answer; with the nodes back, the pending
/// claim commits and its retry gets the recorded result, and new claims succeed.
#[test]
fn two_of_four_down_claims_get_no_quorum_within_the_bound_and_lookups_still_answer() {
    let mut c = start_all(4);
    let rt = runtime();
    let api0 = c.api[0];
    let post = |body: Vec<u8>| {
        rt.block_on(async {
            let mut conns = HashMap::new();
            let started = Instant::now();
            let a = request(&mut conns, api0, Method::POST, "/v1/claims", Some(body)).await;
            (a.expect("the node answers"), started.elapsed())
        })
    };
    let alice = key(1);
    let ((status, v), _) = post(claim_body(alice.as_ref(), "alice", "a1"));
    assert_eq!((status, v["status"].as_str()), (200, Some("claimed")), "{v}");

    // Stopped: the connections stay up but fall silent, so the claim is submitted and waits
    // until the transport declares the silent members dead (1 s without a heartbeat) or the
    // bound passes, whichever comes first; either way the outcome is unknown.
    c.signal(2, "-STOP");
    c.signal(3, "-STOP");
    let bob = key(2);
    let ((status, v), took) = post(claim_body(bob.as_ref(), "bob", "b1"));
    assert_eq!((status, v["error"].as_str()), (503, Some("no_quorum")), "{v}");
    assert_eq!(v["outcome"], "unknown", "{v}");
    assert_eq!(v["quorum"], 3);
    assert!(took < Duration::from_millis(CLAIM_TIMEOUT_MS + 1_500), "within the bound: {took:?}");
    assert!(v["message"].as_str().unwrap().contains("same request_id is safe"), "{v}");
    let (status, body) = get(api0, "/v1/users/alice").unwrap();
    assert_eq!(status, 200, "committed IDs stay readable: {body}");

    // Back: bob's pending claim commits; its retry gets the recorded result.
    c.signal(2, "-CONT");
    c.signal(3, "-CONT");
    wait_until("bob's claim commits", 30, || {
        get(api0, "/v1/users/bob").is_some_and(|(s, _)| s == 200)
    });
    let ((status, v), _) = post(claim_body(bob.as_ref(), "bob", "b1"));
    assert_eq!((status, v["status"].as_str()), (200, Some("claimed")), "{v}");

    // Killed: the connections drop, and claims are refused at once, unsubmitted.
    c.kill(2);
    c.kill(3);
    wait_until("node 0 sees two members gone", 20, || {
        cluster_view(api0).is_some_and(|v| {
            v["members"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["connected"] == Value::Bool(true))
                .count()
                == 2
        })
    });
    let carol = key(3);
    let ((status, v), took) = post(claim_body(carol.as_ref(), "carol", "c1"));
    assert_eq!(
        (status, v["error"].as_str(), v["outcome"].as_str()),
        (503, Some("no_quorum"), Some("not_submitted")),
        "{v}"
    );
    assert_eq!((v["reachable"].as_u64(), v["quorum"].as_u64()), (Some(2), Some(3)));
    assert!(took < Duration::from_millis(CLAIM_TIMEOUT_MS), "{took:?}");
    for id in ["alice", "bob"] {
        let (status, body) = get(api0, &format!("/v1/users/{id}")).unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = get(api0, "/v1/users/carol").unwrap();
    assert_eq!(status, 404);

    // Restarted: claims succeed again.
    c.start(2);
    c.start(3);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ((status, v), _) = post(claim_body(carol.as_ref(), "carol", "c1"));
        if status == 200 {
            assert_eq!(v["status"], "claimed");
            break;
        }
        assert!(Instant::now() < deadline, "claims never succeeded again: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

/// Malformed JSON, wrong lengths, bad signatures, over-long IDs, lookalikes, unknown fields and
/// huge bodies get 400 or 413 with a message; nothing reaches the log; the node stays healthy.
#[test]
fn bad_claims_get_a_clear_refusal_and_nothing_enters_the_log() {
    let c = start_all(4);
    let port = c.api[1];
    let k = key(7);
    let good: Value = serde_json::from_slice(&claim_body(k.as_ref(), "mallory", "m1")).unwrap();
    let with = |field: &str, value: Value| {
        let mut v = good.clone();
        v[field] = value;
        serde_json::to_vec(&v).unwrap()
    };
    let mut flipped = hex::decode(good["signature"].as_str().unwrap()).unwrap();
    flipped[5] ^= 1;
    let other_id = claim_body(k.as_ref(), "someone", "m1");
    let other_sig: Value = serde_json::from_slice(&other_id).unwrap();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed JSON", b"{\"user_id\": ".to_vec(), 400, "invalid_json"),
        ("not an object", b"[1,2,3]".to_vec(), 400, "invalid_json"),
        ("missing field", br#"{"user_id":"mallory"}"#.to_vec(), 400, "invalid_json"),
        ("unknown field", with("extra", Value::from(1)), 400, "invalid_json"),
        ("short key", with("owner_key", Value::from("abcd")), 400, "invalid_owner_key"),
        ("key not hex", with("owner_key", Value::from("zz".repeat(32))), 400, "invalid_owner_key"),
        (
            "small-order key",
            with("owner_key", Value::from(format!("01{}", "00".repeat(31)))),
            400,
            "invalid_owner_key",
        ),
        (
            "short signature",
            with("signature", Value::from("00".repeat(63))),
            400,
            "invalid_signature",
        ),
        (
            "bad signature",
            with("signature", Value::from(hex::encode(&flipped))),
            400,
            "bad_signature",
        ),
        (
            "signature of another id",
            with("signature", other_sig["signature"].clone()),
            400,
            "bad_signature",
        ),
        ("over-long id", with("user_id", Value::from("a".repeat(33))), 400, "invalid_user_id"),
        ("Cyrillic lookalike", with("user_id", Value::from("mаllory")), 400, "invalid_user_id"),
        ("empty id", with("user_id", Value::from("@")), 400, "invalid_user_id"),
        ("bad request id", with("request_id", Value::from("no spaces")), 400, "invalid_request_id"),
        ("body over the limit", vec![b' '; 5_000], 413, "too_large"),
    ];
    // Huge bodies: the node answers 413 without reading them (declared, or streamed in chunks).
    for (what, headers, start) in [
        ("declared 1 GiB", "Content-Length: 1073741824\r\n", b"{".to_vec()),
        (
            "chunked, unbounded",
            "Transfer-Encoding: chunked\r\n",
            b"2000\r\n".iter().copied().chain(vec![b' '; 8192]).chain(*b"\r\n").collect(),
        ),
    ] {
        let (status, body) = raw_post(port, headers, &start);
        assert_eq!(status, 413, "{what}: {body}");
        assert!(body.contains("too_large"), "{what}: {body}");
    }
    let rt = runtime();
    rt.block_on(async {
        for (what, body, status, code) in cases {
            let mut conns = HashMap::new();
            let (s, v) = request(&mut conns, port, Method::POST, "/v1/claims", Some(body))
                .await
                .unwrap_or_else(|| panic!("{what}: no answer"));
            assert_eq!((s, v["error"].as_str()), (status, Some(code)), "{what}: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {v}");
        }
        let mut conns = HashMap::new();
        for (path, status, code) in [
            ("/v1/users/%D0%B0lice", 400, "invalid_user_id"),
            ("/v1/users/a-b", 400, "invalid_user_id"),
            ("/v1/users/alice?consistency=eventual", 400, "invalid_query"),
            ("/v1/users/alice?consistency=local&extra=1", 400, "invalid_query"),
            ("/v1/users/%ff", 400, "invalid_user_id"),
            ("/v1/users/alice/extra", 404, "not_found"),
            ("/v1/users/mallory", 404, "not_found"),
            ("/v1/users/mallory?consistency=local", 404, "not_found"),
            ("/v1/nothing", 404, "not_found"),
        ] {
            let (s, v) = request(&mut conns, port, Method::GET, path, None).await.unwrap();
            assert_eq!((s, v["error"].as_str()), (status, Some(code)), "{path}: {v}");
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}: {v}");
            // Only a lookup's "not registered" names the ID; a path that is no endpoint does not.
            assert_eq!(v.get("user_id").is_some(), path.starts_with("/v1/users/mallory"), "{v}");
        }
        let (s, v) = request(&mut conns, port, Method::GET, "/v1/claims", None).await.unwrap();
        assert_eq!((s, v["error"].as_str()), (405, Some("method_not_allowed")), "{v}");
    });
    // Nothing entered the log: no node applied any command, and the node is healthy.
    c.wait_progress(2, "commits continue");
    for &p in &c.api {
        let (_, metrics) = get(p, "/metrics").unwrap();
        assert!(!metrics.contains("warpnet_applied_commands_total{"), "{metrics}");
    }
    let (status, body) = get(port, "/v1/health").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"recent_certificate\":true"), "{body}");
    // And the good claim still works.
    rt.block_on(async {
        let mut conns = HashMap::new();
        let body = serde_json::to_vec(&good).unwrap();
        let (s, v) =
            request(&mut conns, port, Method::POST, "/v1/claims", Some(body)).await.unwrap();
        assert_eq!((s, v["status"].as_str()), (200, Some("claimed")), "{v}");
    });
}
