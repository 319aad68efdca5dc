//! Steady claim load with a recorded client history, a committed-height monitor, and the
//! checks every fault scenario ends with (linearizability, acknowledged claims on every node,
//! heights converging). Plain blocking HTTP over fresh connections, so a test drives nodes on
//! any address (loopback or a network namespace's).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use warpnet_state::{Claim, UserId};
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::{NetworkId, SchemeId, Signer};

use super::linearizability::{check, Op, Seen};
use super::Cluster;

/// One HTTP request on a fresh connection; None on any transport error or timeout.
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> Option<(u16, Value)> {
    let addr: SocketAddr = address.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .ok()?;
    s.write_all(body).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b)?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// A node's committed height, if it answers.
pub fn height_of(address: &str) -> Option<u64> {
    let (status, v) = http(address, "GET", "/v1/cluster", None, Duration::from_secs(2))?;
    (status == 200).then(|| v["committed_height"].as_u64()).flatten()
}

/// How an operation ended, for the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A final answer: a claim's 200/409, a linearizable read's 200/404.
    Acked,
    /// Refused with nothing submitted (`no_quorum` with `not_submitted`, `overloaded`, any
    /// 429: `rate_limited`, `too_many_connections`).
    Failed,
    /// No answer, or one that leaves the outcome open.
    Unknown,
}

/// One recorded operation.
#[derive(Clone, Debug)]
pub struct Record {
    pub op: Op,
    pub outcome: Outcome,
    pub node: usize,
    pub status: u16,
    pub body: Value,
}

/// A running load: `clients` threads, each issuing operations one after another against the
/// nodes in turn. Operation j: a claim of ID `{prefix}{j/4}` by key j%4 (three keys contend
/// for each ID), or when j%4 == 3, a linearizable read of it.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Record>>>,
    pub began: Instant,
}

pub fn network() -> NetworkId {
    NetworkId::new("test").unwrap()
}

pub fn claim_body(signer: &dyn Signer, id: &str, request_id: &str) -> Vec<u8> {
    let c = Claim::sign(&network(), UserId::parse(id).unwrap(), signer, request_id).unwrap();
    serde_json::to_vec(&serde_json::json!({
        "user_id": id,
        "owner_key": c.owner_key.to_hex(),
        "signature": hex::encode(c.signature.0),
        "request_id": request_id,
    }))
    .unwrap()
}

fn seen_of_claim(status: u16, v: &Value) -> Seen {
    match status {
        200 | 409 => Seen::Claim {
            mine: v["status"] != "taken",
            owner: v["owner_key"].as_str().unwrap_or_default().to_owned(),
            height: v["height"].as_u64().unwrap_or_default(),
        },
        _ => Seen::Unknown,
    }
}

fn seen_of_read(status: u16, v: &Value) -> Seen {
    match status {
        200 => Seen::Read(Some((
            v["owner_key"].as_str().unwrap_or_default().to_owned(),
            v["height"].as_u64().unwrap_or_default(),
        ))),
        404 => Seen::Read(None),
        _ => Seen::Unknown,
    }
}

fn outcome_of(status: u16, v: &Value, seen: &Seen) -> Outcome {
    if *seen != Seen::Unknown {
        return Outcome::Acked;
    }
    // A 429 (`rate_limited`, `too_many_connections`) is answered at the API's edge, before
    // the request is submitted.
    let refused = status == 429
        || status == 503 && (v["outcome"] == "not_submitted" || v["error"] == "overloaded");
    if refused {
        Outcome::Failed
    } else {
        Outcome::Unknown
    }
}

impl Load {
    /// Starts the load on `nodes` (API addresses); `live(i)` says whether node i may be sent
    /// to now (a crashed node's port is skipped). `wait` bounds one request.
    pub fn start(
        nodes: Vec<String>,
        clients: usize,
        prefix: &str,
        wait: Duration,
        live: Arc<dyn Fn(usize) -> bool + Send + Sync>,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let began = Instant::now();
        let keys: Arc<Vec<Box<dyn Signer>>> =
            Arc::new((0..3).map(|i| signer_from_seed(SchemeId::Ed25519, 40_000 + i)).collect());
        let nodes = Arc::new(nodes);
        let threads = (0..clients)
            .map(|t| {
                let (stop, next, keys, nodes, live) =
                    (stop.clone(), next.clone(), keys.clone(), nodes.clone(), live.clone());
                let prefix = prefix.to_owned();
                std::thread::spawn(move || {
                    let mut records = Vec::new();
                    let now = || began.elapsed().as_micros() as u64;
                    while !stop.load(Ordering::Relaxed) {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        let id = format!("{prefix}{}", j / 4);
                        let k = j % 4;
                        let node = (0..nodes.len())
                            .map(|a| (t + j + a) % nodes.len())
                            .find(|&i| live(i))
                            .unwrap_or(0);
                        let invoked = now();
                        let (answer, key) = if k == 3 {
                            let path = format!("/v1/users/{id}?consistency=linearizable");
                            (http(&nodes[node], "GET", &path, None, wait), None)
                        } else {
                            let body = claim_body(keys[k].as_ref(), &id, &format!("{prefix}-{j}"));
                            let a = http(&nodes[node], "POST", "/v1/claims", Some(&body), wait);
                            (a, Some(keys[k].public_key().to_hex()))
                        };
                        let (status, body) = answer.unwrap_or((0, Value::Null));
                        assert_ne!(status, 400, "a valid request refused: {body}");
                        let seen = if key.is_none() {
                            seen_of_read(status, &body)
                        } else {
                            seen_of_claim(status, &body)
                        };
                        let outcome = outcome_of(status, &body, &seen);
                        let op = Op { id, key, invoked, responded: now(), seen };
                        records.push(Record { op, outcome, node, status, body });
                        if outcome != Outcome::Acked {
                            // Do not spin on a node that refuses at once.
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    records
                })
            })
            .collect();
        Self { stop, threads, began }
    }

    /// Stops the clients (each finishes its operation in flight) and returns the history.
    pub fn stop(self) -> Vec<Record> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    }
}

/// Operations done, acknowledged, failed and unknown.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub done: usize,
    pub acked: usize,
    pub failed: usize,
    pub unknown: usize,
}

pub fn tally(records: &[Record]) -> Tally {
    let mut t = Tally { done: records.len(), ..Tally::default() };
    for r in records {
        match r.outcome {
            Outcome::Acked => t.acked += 1,
            Outcome::Failed => t.failed += 1,
            Outcome::Unknown => t.unknown += 1,
        }
    }
    t
}

/// Polls every node's committed height every 100 ms.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<(Duration, Vec<Option<u64>>)>>,
}

impl Monitor {
    pub fn start(nodes: Vec<String>, began: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let heights = nodes.iter().map(|a| height_of(a)).collect();
                samples.push((began.elapsed(), heights));
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        Self { stop, thread }
    }

    pub fn stop(self) -> Heights {
        self.stop.store(true, Ordering::Relaxed);
        Heights(self.thread.join().unwrap())
    }
}

/// The monitor's samples: (time since the load began, each node's height).
pub struct Heights(pub Vec<(Duration, Vec<Option<u64>>)>);

impl Heights {
    /// The longest time within [from, to) during which the highest committed height among
    /// `nodes` did not grow.
    pub fn longest_stall(&self, nodes: &[usize], from: Duration, to: Duration) -> Duration {
        let samples: Vec<_> = self.0.iter().filter(|(t, _)| *t >= from && *t < to).collect();
        let mut best = Duration::ZERO;
        let mut since: Option<(Duration, u64)> = None;
        for (t, hs) in &samples {
            let h = nodes.iter().filter_map(|&i| hs[i]).max().unwrap_or(0);
            match since {
                Some((s, top)) if h > top => {
                    best = best.max(*t - s);
                    since = Some((*t, h));
                }
                Some(_) => {}
                None => since = Some((*t, h)),
            }
        }
        if let (Some((s, _)), Some((last, _))) = (since, samples.last()) {
            best = best.max(*last - s);
        }
        best
    }
}

impl Heights {
    /// How long after `t` the highest committed height among `nodes` first grew.
    pub fn resumed_after(&self, nodes: &[usize], t: Duration) -> Option<Duration> {
        let top = |hs: &Vec<Option<u64>>| nodes.iter().filter_map(|&i| hs[i]).max().unwrap_or(0);
        let mut after = self.0.iter().filter(|(at, _)| *at >= t);
        let base = top(&after.next()?.1);
        after.find(|(_, hs)| top(hs) > base).map(|(at, _)| *at - t)
    }
}

/// The checks every scenario ends with, once the faults are healed: the history is
/// linearizable, committed heights converge, and every acknowledged claim reads back, with its
/// owner and height, on every node.
pub fn check_after_heal(nodes: &[String], records: &[Record]) -> Result<(), String> {
    let history: Vec<Op> = records.iter().map(|r| r.op.clone()).collect();
    check(&history).map_err(|e| format!("not linearizable: {e}"))?;
    let acked: Vec<(&str, &str, u64)> = records
        .iter()
        .filter_map(|r| match &r.op.seen {
            Seen::Claim { owner, height, .. } => Some((r.op.id.as_str(), owner.as_str(), *height)),
            _ => None,
        })
        .collect();
    let top = acked.iter().map(|a| a.2).max().unwrap_or(0);
    let target = nodes.iter().filter_map(|a| height_of(a)).max().unwrap_or(0).max(top);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hs: Vec<Option<u64>> = nodes.iter().map(|a| height_of(a)).collect();
        if hs.iter().all(|h| h.is_some_and(|h| h >= target)) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("heights did not converge to {target} within 60 s: {hs:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ids: std::collections::BTreeMap<&str, (&str, u64)> =
        acked.iter().map(|&(id, o, h)| (id, (o, h))).collect();
    let failures = Mutex::new(Vec::new());
    for (i, address) in nodes.iter().enumerate() {
        for (id, (owner, height)) in &ids {
            // A local lookup reflects what the node's store holds as of its `read_height`; the
            // committed height the node reports is the core's, which runs ahead of the store
            // while a write is in flight. So a lookup read below the claim's height is asked
            // again (bounded), never taken for a missing claim. This check reads every
            // acknowledged ID from every node as fast as it can, which can exceed the node's
            // per-client request rate (1,000/s, bursts of 2,000): a 429 is answered as a client
            // should, by asking again after its `retry_after_s`.
            let deadline = Instant::now() + Duration::from_secs(10);
            let got = loop {
                let got =
                    http(address, "GET", &format!("/v1/users/{id}"), None, Duration::from_secs(5));
                let behind = got.as_ref().is_some_and(|(s, v)| {
                    *s == 404 && v["read_height"].as_u64().is_some_and(|r| r < *height)
                });
                let wait = match &got {
                    Some((429, v)) => Duration::from_secs(v["retry_after_s"].as_u64().unwrap_or(1)),
                    _ if behind => Duration::from_millis(50),
                    _ => break got,
                };
                if Instant::now() + wait > deadline {
                    break got;
                }
                std::thread::sleep(wait);
            };
            let ok = got.as_ref().is_some_and(|(s, v)| {
                *s == 200 && v["owner_key"] == *owner && v["height"].as_u64() == Some(*height)
            });
            if !ok {
                let limited = got.as_ref().is_some_and(|(s, _)| *s == 429);
                let what = if limited { "still rate limited after 10 s" } else { "missing" };
                failures.lock().unwrap().push(format!(
                    "node {i}: {id} (acknowledged at height {height}) {what}: {got:?}"
                ));
            }
        }
    }
    let failures = failures.into_inner().unwrap();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} acknowledged claims missing or different: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        ))
    }
}

/// Which members the load may send to (a killed member's port is skipped).
pub struct Live(Arc<Vec<AtomicBool>>);

impl Live {
    pub fn new(n: usize) -> Self {
        Self(Arc::new((0..n).map(|_| AtomicBool::new(true)).collect()))
    }

    pub fn set(&self, i: usize, up: bool) {
        self.0[i].store(up, Ordering::Relaxed);
    }

    pub fn check(&self) -> Arc<dyn Fn(usize) -> bool + Send + Sync> {
        let live = self.0.clone();
        Arc::new(move |i| live[i].load(Ordering::Relaxed))
    }
}

pub fn addresses(c: &Cluster) -> Vec<String> {
    (0..c.api.len()).map(|i| c.api_address(i)).collect()
}

/// The checks every scenario under load ends with, and a floor on acknowledged operations.
pub fn finish(c: &Cluster, records: &[Record], acked_at_least: usize) {
    let t = tally(records);
    eprintln!(
        "history: {} operations, {} acknowledged, {} refused, {} unknown",
        t.done, t.acked, t.failed, t.unknown
    );
    assert!(t.acked >= acked_at_least, "too few operations acknowledged: {t:?}");
    check_after_heal(&addresses(c), records).unwrap_or_else(|e| panic!("{e}"));
}

/// Every member of `c` killed with -9 at once under claim load (3 s in), then restarted; once
/// `back` says they are serving again, 2 s more of load. The checks of [`finish`] follow: every
/// claim acknowledged before the crash is on every member, and the history is linearizable.
pub fn kill_all_under_load(c: &mut Cluster, prefix: &str, back: impl Fn(&Cluster)) {
    let n = c.api.len();
    let live = Live::new(n);
    let load =
        Load::start(addresses(c), 12, &format!("{prefix}a"), Duration::from_secs(3), live.check());
    std::thread::sleep(Duration::from_secs(3));
    (0..n).for_each(|i| live.set(i, false));
    (0..n).for_each(|i| c.kill(i));
    let before = load.stop();
    let acked_before = tally(&before).acked;
    (0..n).for_each(|i| c.start(i));
    back(c);
    (0..n).for_each(|i| live.set(i, true));
    let load =
        Load::start(addresses(c), 12, &format!("{prefix}b"), Duration::from_secs(3), live.check());
    std::thread::sleep(Duration::from_secs(2));
    let mut records = before;
    records.extend(load.stop());
    assert!(acked_before >= 50, "the load ran before the crash: {acked_before}");
    finish(c, &records, 100);
}
