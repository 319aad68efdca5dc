//! The node's HTTP API (`/v1/...`), health and metrics. Errors are JSON `{error, message}`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::{debug, warn};
use warpnet_types::ConsensusConfig;

use crate::metrics::Metrics;

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
    pub metrics: Metrics,
    pub rejected_connections: std::sync::atomic::AtomicU64,
    pub malformed_frames: std::sync::atomic::AtomicU64,
    pub dropped_sends: std::sync::atomic::AtomicU64,
    /// How recent a certificate must be for `/v1/health` to call the node live.
    pub live_window: std::time::Duration,
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

fn route(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let known = matches!(path, "/v1/cluster" | "/v1/health" | "/metrics");
    if known && req.method() != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "only GET is allowed here",
        );
    }
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
                let response = route(&shared, &req);
                async move { Ok::<_, Infallible>(response) }
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
