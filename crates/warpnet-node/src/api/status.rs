//! The node's own state: `GET /v1/cluster`, `GET /v1/health`, `GET /metrics`, and the API's
//! contract, `GET /v1/openapi.json`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ok, AppState, OPENAPI};
use crate::error::ApiError;

/// One member of the committee, as this node sees it.
#[derive(Serialize)]
struct Member {
    node_id: u16,
    public_key: String,
    p2p_address: String,
    public: bool,
    connected: bool,
}

/// `GET /v1/cluster`.
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

/// `GET /v1/health` (fields in alphabetical order, as answers have always been written).
#[derive(Serialize)]
struct Health {
    committed_height: u64,
    node_id: u16,
    recent_certificate: bool,
    round: u64,
    status: &'static str,
}

pub(super) async fn cluster(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snap = state.shared.snapshot()?;
    let c = state.shared.config();
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
    let body = Cluster {
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
    };
    Ok(ok("ok", StatusCode::OK, body))
}

pub(super) async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snap = state.shared.snapshot()?;
    let live = snap.last_certificate.is_some_and(|t| t.elapsed() <= state.shared.live_window);
    let body = Health {
        status: "running",
        node_id: snap.node_id,
        round: snap.round,
        committed_height: snap.committed_height,
        recent_certificate: live,
    };
    Ok(ok("ok", StatusCode::OK, body))
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.shared.metrics.render();
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
