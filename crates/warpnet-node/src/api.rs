//! The node's HTTP API (`/v1/...`), health and metrics. Errors are JSON `{error, message}`.
//!
//! Claims (`POST /v1/claims`) are checked in this order, and the first failure answers:
//! body size (413) → JSON shape (400) → ID, key, signature and request id formats (400) →
//! signature, in batches on the verifier thread (400) → committed state, which may already
//! settle it (200/409, no ordering needed) → a quorum of members reachable (503 `no_quorum`,
//! nothing submitted) → the consensus loop's queue (503 `overloaded`) → the commit, waited for
//! at most `claim_timeout` (200/409, else 503 with the outcome unknown: a retry with the same
//! `request_id` is safe and returns the recorded result).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use warpnet_state::{Claim, ClaimError, Command, Outcome, UserId, BARRIER_NONCE_BYTES};
use warpnet_storage::Store;
use warpnet_types::{ConsensusConfig, PublicKey, Signature};

use crate::app::View;
use crate::metrics::Metrics;
use crate::verifier::Verifier;

/// Largest claim request body, in bytes (a claim is about 300).
pub const CLAIM_BODY_BYTES_MAX: usize = 4 << 10;

/// A command for the consensus loop, and where its outcome goes.
pub struct Submission {
    pub command: Vec<u8>,
    pub done: oneshot::Sender<Result<Outcome, Refused>>,
}

/// Why the consensus loop did not take a command.
#[derive(Debug)]
pub enum Refused {
    /// The mempool is full.
    Overloaded,
    /// The command is not acceptable (too large).
    Invalid(String),
    /// The command committed recently (M2): committed state has its outcome.
    AlreadyCommitted,
}

/// What the consensus loop publishes after every step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    pub node_id: u16,
    pub epoch: u64,
    pub round: u64,
    pub committed_height: u64,
    pub leader: u16,
    pub connected: Vec<u16>,
    #[serde(skip)]
    pub last_certificate: Option<Instant>,
}

/// State shared between the consensus loop and the API.
pub struct Shared {
    pub config: Arc<ConsensusConfig>,
    pub snapshot: Mutex<Snapshot>,
    pub metrics: Arc<Metrics>,
    pub rejected_connections: std::sync::atomic::AtomicU64,
    pub malformed_frames: std::sync::atomic::AtomicU64,
    pub dropped_sends: std::sync::atomic::AtomicU64,
    /// How recent a certificate must be for `/v1/health` to call the node live.
    pub live_window: Duration,
    /// Committed state, for lookups (readers never block the consensus loop's writes).
    pub store: Arc<Store>,
    pub verifier: Verifier,
    /// Commands for the consensus loop.
    pub submit: mpsc::Sender<Submission>,
    /// How long a claim (or a linearizable read) waits for its commit.
    pub claim_timeout: Duration,
    /// Linearizable reads waiting for a barrier.
    pub barriers: Mutex<Barriers>,
}

#[derive(Serialize)]
struct Member {
    node_id: u16,
    public_key: String,
    p2p_address: String,
    public: bool,
    connected: bool,
}

#[derive(Serialize)]
struct Cluster {
    network: String,
    epoch: u64,
    round: u64,
    committed_height: u64,
    total_nodes: usize,
    faulty_nodes: usize,
    quorum_threshold: usize,
    leader: u16,
    node_id: u16,
    members: Vec<Member>,
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn error(status: StatusCode, error: &str, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": error, "message": message }))
}

type Reply = Response<Full<Bytes>>;

/// Routes a request. Every answer is JSON (but `/metrics`), and every refusal says why.
async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if path == "/v1/claims" {
        if method != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use POST");
        }
        let (result, reply) = post_claim(&shared, req).await;
        shared.metrics.api(result);
        return reply;
    }
    if let Some(raw) = path.strip_prefix("/v1/users/") {
        if method != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET");
        }
        let (result, reply) = get_user(&shared, raw, req.uri().query()).await;
        shared.metrics.api(result);
        return reply;
    }
    if method != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "only GET is allowed here",
        );
    }
    route(&shared, &path)
}

/// `POST /v1/claims`' body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimRequest {
    user_id: String,
    owner_key: String,
    signature: String,
    request_id: String,
}

fn bad(code: &'static str, message: &str) -> (&'static str, Reply) {
    ("bad_request", error(StatusCode::BAD_REQUEST, code, message))
}

fn with_retry_after(mut r: Reply, seconds: u32) -> Reply {
    if let Ok(v) = hyper::header::HeaderValue::from_str(&seconds.to_string()) {
        r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
    }
    r
}

fn overloaded() -> (&'static str, Reply) {
    let r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "this node has too many claims waiting; nothing was submitted. Retry after the given delay",
    );
    ("overloaded", with_retry_after(r, 1))
}

fn internal(detail: &str) -> (&'static str, Reply) {
    warn!(detail, "api request failed");
    (
        "internal",
        error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &format!("node error: {detail}")),
    )
}

/// Members reachable (connected, and this node) and the quorum.
fn reach(shared: &Shared) -> (usize, usize) {
    let connected = shared.snapshot.lock().map(|s| s.connected.len()).unwrap_or(0);
    (connected + 1, shared.config.quorum_threshold())
}

fn hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = hex::decode(s).ok()?;
    bytes.try_into().ok()
}

/// Answers a claim. Returns the result's name (for metrics) and the response.
async fn post_claim(shared: &Shared, req: Request<Incoming>) -> (&'static str, Reply) {
    let too_large = || {
        (
            "too_large",
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("a claim request is at most {CLAIM_BODY_BYTES_MAX} bytes"),
            ),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > CLAIM_BODY_BYTES_MAX as u64) {
        return too_large();
    }
    let body = match Limited::new(req.into_body(), CLAIM_BODY_BYTES_MAX).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Err(e) => return bad("bad_body", &format!("could not read the body: {e}")),
    };
    let request: ClaimRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return bad(
                "invalid_json",
                &format!(
                    "expected {{\"user_id\", \"owner_key\", \"signature\", \"request_id\"}}: {e}"
                ),
            )
        }
    };
    let user_id = match UserId::parse(&request.user_id) {
        Ok(id) => id,
        Err(e) => return bad("invalid_user_id", &e.to_string()),
    };
    let Some(owner_key) = hex_array::<32>(&request.owner_key).map(PublicKey) else {
        return bad(
            "invalid_owner_key",
            "owner_key must be 64 hex characters: the 32-byte Ed25519 public key",
        );
    };
    let Some(signature) = hex_array::<64>(&request.signature).map(Signature) else {
        return bad("invalid_signature", "signature must be 128 hex characters: 64 bytes, Ed25519");
    };
    let claim = Claim { user_id, owner_key, signature, request_id: request.request_id };
    // Bounded like the rest of the request: a flooded verifier answers `overloaded`.
    let verdict = tokio::time::timeout(shared.claim_timeout, shared.verifier.check(claim.clone()));
    match verdict.await.unwrap_or(Err(crate::verifier::Busy)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let code = match e {
                ClaimError::RequestId => "invalid_request_id",
                ClaimError::BadKey => "invalid_owner_key",
                _ => "bad_signature",
            };
            return bad(code, &e.to_string());
        }
        Err(_) => return overloaded(),
    }
    // Committed state may settle it already (a retry, or an ID with an owner): no ordering.
    if let Some(reply) = settled_reply(shared, &claim) {
        return reply;
    }
    match order(shared, Command::Claim(claim.clone()).encode()).await {
        Ok(outcome) => claim_reply(&claim, outcome),
        // It committed since we looked (M2): committed state has the answer now.
        Err(Failure::AlreadyCommitted) => settled_reply(shared, &claim)
            .unwrap_or_else(|| internal("a committed claim has no recorded result")),
        Err(failure) => failure.reply(shared, "claim"),
    }
}

/// The answer committed state gives for `claim`, if any (see `warpnet_state::settled`).
fn settled_reply(shared: &Shared, claim: &Claim) -> Option<(&'static str, Reply)> {
    let snapshot = shared.store.app_snapshot();
    match snapshot.and_then(|s| warpnet_state::settled(&View::committed(&s), claim)) {
        Ok(Some(outcome)) => Some(claim_reply(claim, outcome)),
        Ok(None) => None,
        Err(e) => Some(internal(&e.to_string())),
    }
}

/// The answer to `claim`. A recorded result for the same (key, request id) but another ID means
/// the client reused a request id: say so rather than answer for the other ID.
fn claim_reply(claim: &Claim, outcome: Outcome) -> (&'static str, Reply) {
    let recorded_for = match &outcome {
        Outcome::Claimed { user_id, .. }
        | Outcome::AlreadyYours { user_id, .. }
        | Outcome::Taken { user_id, .. } => Some(user_id),
        Outcome::Rejected { .. } | Outcome::Barrier => None,
    };
    match recorded_for {
        Some(other) if *other != claim.user_id => (
            "request_id_reused",
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "request_id_reused",
                &format!(
                    "this key already used request_id {:?} to claim {other}; use a new request_id for {}",
                    claim.request_id, claim.user_id
                ),
            ),
        ),
        _ => outcome_reply(outcome),
    }
}

/// Why a command was not (known to be) ordered. Clonable: one barrier answers many reads.
#[derive(Clone, Debug)]
enum Failure {
    /// Fewer than a quorum reachable (`submitted: false`, answered at once), or nothing
    /// committed within the bound (`submitted: true`: the outcome is unknown).
    NoQuorum {
        reachable: usize,
        quorum: usize,
        submitted: bool,
    },
    Overloaded,
    Invalid(String),
    /// Committed already (between the API's look at committed state and the submission).
    AlreadyCommitted,
    /// The node is stopping with the command submitted: the outcome is unknown.
    Stopping,
}

impl Failure {
    /// The answer; `what` names the request ("claim" or "read").
    fn reply(&self, shared: &Shared, what: &str) -> (&'static str, Reply) {
        let n = shared.config.total_nodes();
        let retry = if what == "claim" {
            "retrying with the same request_id is safe and returns the recorded result"
        } else {
            "retrying is safe"
        };
        match self {
            Failure::Overloaded => overloaded(),
            Failure::Invalid(m) => bad("invalid_command", m),
            Failure::AlreadyCommitted => bad("invalid_command", "this command already committed"),
            Failure::Stopping => {
                let r = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({
                        "error": "stopping",
                        "message": format!("the node is stopping; the {what} may still commit: {retry} (on another node)"),
                        "outcome": "unknown",
                    }),
                );
                ("stopping", with_retry_after(r, 1))
            }
            Failure::NoQuorum { reachable, quorum, submitted } => {
                let message = if *submitted {
                    // The committee could not commit in time: too few members reachable, or
                    // too few of the connected ones responsive (stopped, partitioned, faulty).
                    let ms = shared.claim_timeout.as_millis();
                    let why = if reachable < quorum {
                        format!("only {reachable} of {n} members are reachable and {quorum} are needed to commit")
                    } else {
                        format!("{reachable} of {n} members are connected but no quorum of {quorum} committed in time")
                    };
                    format!(
                        "not committed within {ms} ms: {why}. The {what} may still commit: {retry}"
                    )
                } else {
                    format!("only {reachable} of {n} members are reachable and {quorum} are needed to commit; nothing was submitted. Committed IDs can still be looked up")
                };
                let r = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({
                        "error": "no_quorum",
                        "message": message,
                        "reachable": reachable,
                        "quorum": quorum,
                        "outcome": if *submitted { "unknown" } else { "not_submitted" },
                    }),
                );
                ("no_quorum", with_retry_after(r, 1))
            }
        }
    }
}

/// Orders a command through consensus and waits (bounded) for its outcome.
async fn order(shared: &Shared, command: Vec<u8>) -> Result<Outcome, Failure> {
    let (reachable, quorum) = reach(shared);
    if reachable < quorum {
        return Err(Failure::NoQuorum { reachable, quorum, submitted: false });
    }
    let (done, outcome) = oneshot::channel();
    if shared.submit.try_send(Submission { command, done }).is_err() {
        return Err(Failure::Overloaded);
    }
    match tokio::time::timeout(shared.claim_timeout, outcome).await {
        Ok(Ok(Ok(outcome))) => Ok(outcome),
        Ok(Ok(Err(Refused::Overloaded))) => Err(Failure::Overloaded),
        Ok(Ok(Err(Refused::Invalid(m)))) => Err(Failure::Invalid(m)),
        Ok(Ok(Err(Refused::AlreadyCommitted))) => Err(Failure::AlreadyCommitted),
        Ok(Err(_)) => Err(Failure::Stopping),
        Err(_) => {
            let (reachable, quorum) = reach(shared);
            Err(Failure::NoQuorum { reachable, quorum, submitted: true })
        }
    }
}

/// Linearizable reads waiting for a barrier, and whether one is being ordered.
#[derive(Default)]
pub struct Barriers {
    waiting: Vec<oneshot::Sender<Result<(), Failure>>>,
    running: bool,
}

/// Waits for a read barrier ordered after this call began. Reads arriving while a barrier is
/// being ordered share the next one: at most one barrier per node is in flight, however many
/// linearizable reads come in (an unauthenticated client cannot flood the mempools with them).
async fn barrier(shared: &Arc<Shared>) -> Result<(), Failure> {
    let (tx, rx) = oneshot::channel();
    let start = match shared.barriers.lock() {
        Ok(mut b) => {
            b.waiting.push(tx);
            !std::mem::replace(&mut b.running, true)
        }
        Err(_) => return Err(Failure::Invalid("internal lock poisoned".into())),
    };
    if start {
        tokio::spawn(run_barriers(shared.clone()));
    }
    rx.await.unwrap_or(Err(Failure::Stopping))
}

async fn run_barriers(shared: Arc<Shared>) {
    loop {
        // Every read in this group began before its barrier is submitted below.
        let group = match shared.barriers.lock() {
            Ok(mut b) if b.waiting.is_empty() => {
                b.running = false;
                return;
            }
            Ok(mut b) => std::mem::take(&mut b.waiting),
            Err(_) => return,
        };
        let mut nonce = [0u8; BARRIER_NONCE_BYTES];
        let result = if getrandom::fill(&mut nonce).is_err() {
            Err(Failure::Invalid("no randomness for the read barrier".into()))
        } else {
            match order(&shared, Command::Barrier { nonce }.encode()).await {
                Ok(Outcome::Barrier) => Ok(()),
                Ok(_) => Err(Failure::Invalid("a read barrier was answered by a claim".into())),
                Err(f) => Err(f),
            }
        };
        for waiter in group {
            let _ = waiter.send(result.clone());
        }
    }
}

fn outcome_reply(outcome: Outcome) -> (&'static str, Reply) {
    let body = |status: &str, user_id: &UserId, owner: &warpnet_state::Owner| {
        serde_json::json!({
            "status": status,
            "user_id": user_id.as_str(),
            "owner_key": owner.key.to_hex(),
            "height": owner.height.0,
        })
    };
    match outcome {
        Outcome::Claimed { user_id, owner } => {
            ("claimed", json(StatusCode::OK, &body("claimed", &user_id, &owner)))
        }
        Outcome::AlreadyYours { user_id, owner } => {
            ("already_yours", json(StatusCode::OK, &body("already_yours", &user_id, &owner)))
        }
        Outcome::Taken { user_id, owner } => {
            ("taken", json(StatusCode::CONFLICT, &body("taken", &user_id, &owner)))
        }
        Outcome::Rejected { reason } => (
            "rejected",
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rejected",
                &format!(
                    "the claim was ordered but refused when applied (nothing changed): {reason}"
                ),
            ),
        ),
        Outcome::Barrier => internal("a claim was answered by a barrier"),
    }
}

/// Decodes `%XX` escapes (a path may carry `%40` for `@`, or a non-ASCII lookalike).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `GET /v1/users/{id}[?consistency=linearizable]`.
async fn get_user(shared: &Arc<Shared>, raw: &str, query: Option<&str>) -> (&'static str, Reply) {
    let Some(decoded) = percent_decode(raw) else {
        return bad(
            "invalid_user_id",
            "the user id in the path is not valid percent-encoded UTF-8",
        );
    };
    let id = match UserId::parse(&decoded) {
        Ok(id) => id,
        Err(e) => return bad("invalid_user_id", &e.to_string()),
    };
    let mut linearizable = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair {
            "consistency=linearizable" => linearizable = true,
            "consistency=local" => linearizable = false,
            other => {
                return bad(
                    "invalid_query",
                    &format!(
                        "unknown query {other:?}: the only one is consistency=linearizable|local"
                    ),
                )
            }
        }
    }
    if linearizable {
        // A barrier through consensus: once it commits here, this node has applied every
        // claim committed before the read began.
        if let Err(f) = barrier(shared).await {
            return f.reply(shared, "read");
        }
    }
    let snapshot = match shared.store.app_snapshot() {
        Ok(s) => s,
        Err(e) => return internal(&e.to_string()),
    };
    let read_height = snapshot.height().0;
    match warpnet_state::lookup(&View::committed(&snapshot), &id) {
        Ok(Some(owner)) => (
            "found",
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "user_id": id.as_str(),
                    "owner_key": owner.key.to_hex(),
                    "height": owner.height.0,
                    "read_height": read_height,
                }),
            ),
        ),
        Ok(None) => (
            "not_found",
            json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({
                    "error": "not_found",
                    "message": format!("{id} is not registered (as of height {read_height})"),
                    "user_id": id.as_str(),
                    "read_height": read_height,
                }),
            ),
        ),
        Err(e) => internal(&e.to_string()),
    }
}

fn route(shared: &Shared, path: &str) -> Reply {
    let snap = shared.snapshot.lock().map(|s| s.clone()).unwrap_or_default();
    match path {
        "/v1/cluster" => {
            let c = &shared.config;
            let members = c
                .participants()
                .iter()
                .enumerate()
                .map(|(i, p)| Member {
                    node_id: i as u16,
                    public_key: p.public_key.to_hex(),
                    p2p_address: p.address.clone(),
                    public: p.public,
                    connected: i as u16 == snap.node_id || snap.connected.contains(&(i as u16)),
                })
                .collect();
            json(
                StatusCode::OK,
                &Cluster {
                    network: c.network().as_str().to_owned(),
                    epoch: snap.epoch,
                    round: snap.round,
                    committed_height: snap.committed_height,
                    total_nodes: c.total_nodes(),
                    faulty_nodes: c.faulty_nodes(),
                    quorum_threshold: c.quorum_threshold(),
                    leader: snap.leader,
                    node_id: snap.node_id,
                    members,
                },
            )
        }
        "/v1/health" => {
            let live = snap.last_certificate.is_some_and(|t| t.elapsed() <= shared.live_window);
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "status": "running",
                    "node_id": snap.node_id,
                    "round": snap.round,
                    "committed_height": snap.committed_height,
                    "recent_certificate": live,
                }),
            )
        }
        "/metrics" => {
            let load =
                |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            let transport = crate::metrics::TransportCounters {
                rejected_connections: load(&shared.rejected_connections),
                malformed_frames: load(&shared.malformed_frames),
                dropped_sends: load(&shared.dropped_sends),
            };
            let body = shared.metrics.render(&transport, snap.connected.len());
            Response::builder()
                .header("content-type", "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(body)))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint; see the README for the API",
        ),
    }
}

/// Serves the API until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "api accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            // A client that does not finish its headers within 10 s is cut off.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10));
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                debug!(%peer, error = %e, "api connection ended");
            }
        });
    }
}
