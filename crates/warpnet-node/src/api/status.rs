//! The node's own state: `GET /v1/cluster`, `GET /v1/health`, `GET /metrics`, and the API's
//! contract, `GET /v1/openapi.json`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{ok, AppState, OPENAPI};
use crate::error::ApiError;
use crate::files::Consensus;
use crate::handle::RaftView;

/// One member of the committee, as this node sees it.
#[derive(Serialize)]
struct Member {
    node_id: u16,
    public_key: String,
    p2p_address: String,
    public: bool,
    connected: bool,
    /// Votes (HotStuff: every member; Raft: the current voters, not standbys).
    voter: bool,
}

/// `GET /v1/cluster`.
#[derive(Serialize)]
struct Cluster {
    network: String,
    /// `hotstuff` or `raft`, fixed at genesis.
    consensus: &'static str,
    epoch: u64,
    /// HotStuff's round (0 in Raft mode).
    round: u64,
    /// What lookups read: the committed height (HotStuff) or the applied index (Raft).
    committed_height: u64,
    /// Voters, the faults they tolerate (Byzantine: (n-1)/3; crash: (n-1)/2), and the votes
    /// that commit.
    total_nodes: usize,
    faulty_nodes: usize,
    quorum_threshold: usize,
    leader: u16,
    node_id: u16,
    members: Vec<Member>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raft: Option<RaftView>,
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
    let consensus = state.shared.consensus;
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
            voter: consensus == Consensus::Hotstuff || snap.voters.contains(&(i as u16)),
        })
        .collect();
    let (total_nodes, faulty_nodes, quorum_threshold) = match consensus {
        Consensus::Hotstuff => (c.total_nodes(), c.faulty_nodes(), c.quorum_threshold()),
        Consensus::Raft => {
            let n = snap.voters.len();
            (n, n.saturating_sub(1) / 2, snap.quorum)
        }
    };
    let body = Cluster {
        network: c.network().as_str().to_owned(),
        consensus: consensus.as_str(),
        epoch: snap.epoch,
        round: snap.round,
        committed_height: snap.committed_height,
        total_nodes,
        faulty_nodes,
        quorum_threshold,
        leader: snap.leader,
        node_id: snap.node_id,
        members,
        raft: snap.raft.clone(),
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
