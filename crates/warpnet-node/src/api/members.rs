//! The committee and its changes: `GET /v1/members`, `GET|POST /v1/admissions`,
//! `POST /v1/operator`, `GET /v1/epochs/{n}/proof`, `GET /v1/evidence`.
//!
//! Reads answer from what the consensus loop last published and from committed storage;
//! requests go to the loop ([`Control`]), which owns the pending changes
//! ([`crate::membership`]). Nothing here changes the committee: only a committed membership
//! command does.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use warpnet_types::epoch::{EpochProof, EPOCH_PROOF_ENDS_MAX};
use warpnet_types::membership::{Admission, Change, NONCE_BYTES};
use warpnet_types::{Encode, Epoch, Participant, PublicKey, Signature};

use super::{ok, AppState};
use crate::error::ApiError;
use crate::handle::Control;
use crate::membership::operator::{Action, Instruction};
use crate::membership::PendingView;

/// Largest admission or operator body.
pub const MEMBERSHIP_BODY_BYTES_MAX: usize = 4 << 10;

/// A candidate's request to join (`POST /v1/admissions`), all binary fields in hex.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionBody {
    pub public_key: String,
    pub p2p_address: String,
    pub api_address: String,
    pub public: bool,
    /// 16 random bytes, hex.
    pub nonce: String,
    /// The candidate's signature (proof of possession), hex.
    pub proof: String,
}

impl AdmissionBody {
    /// The signed request, or why the body is not one.
    pub fn parse(&self) -> Result<Admission, ApiError> {
        let bad = |detail: String| ApiError::InvalidRequest { detail };
        let public_key = PublicKey::from_hex(&self.public_key)
            .map_err(|_| bad("public_key must be 64 hex characters".into()))?;
        let nonce: [u8; NONCE_BYTES] = hex::decode(&self.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| bad(format!("nonce must be {} hex characters", 2 * NONCE_BYTES)))?;
        let proof = hex::decode(&self.proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .map(Signature)
            .ok_or_else(|| bad("proof must be 128 hex characters".into()))?;
        for (name, a) in [("p2p_address", &self.p2p_address), ("api_address", &self.api_address)] {
            if a.is_empty() || a.len() > 255 || !a.contains(':') {
                return Err(bad(format!("{name} must be host:port")));
            }
        }
        let candidate = Participant {
            public_key,
            address: self.p2p_address.clone(),
            api_address: self.api_address.clone(),
            public: self.public,
        };
        Ok(Admission { candidate, nonce, proof })
    }

    /// The body of a signed request (for the CLI).
    pub fn of(a: &Admission) -> Self {
        Self {
            public_key: a.candidate.public_key.to_hex(),
            p2p_address: a.candidate.address.clone(),
            api_address: a.candidate.api_address.clone(),
            public: a.candidate.public,
            nonce: hex::encode(a.nonce),
            proof: hex::encode(a.proof.0),
        }
    }
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest { detail: format!("the body is not {what}: {e}") })
}

/// Hands a request to the consensus loop and waits for its answer.
async fn control(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<Result<PendingView, crate::membership::Refusal>>) -> Control,
) -> Result<PendingView, ApiError> {
    let (tx, rx) = oneshot::channel();
    state.shared.control.try_send(make(tx)).map_err(|_| ApiError::Overloaded)?;
    match rx.await {
        Ok(answer) => answer.map_err(ApiError::from),
        Err(_) => Err(ApiError::internal("the consensus loop dropped a membership request")),
    }
}

pub(super) async fn members(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok("ok", StatusCode::OK, state.shared.committee_view()?))
}

/// H4: the healthy, verified-public members, from the newest committed health summary, with
/// the proof that it committed (see README, "Checking the routing list").
pub(super) async fn routing(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.shared.consensus == crate::files::Consensus::Raft {
        return Err(ApiError::NotFound {
            detail: "Raft mode keeps no agreed health: route through any voter".into(),
        });
    }
    let c = state.shared.committee_view()?;
    match c.routing {
        Some(r) => Ok(ok("ok", StatusCode::OK, &*r)),
        None => Err(ApiError::NotFound {
            detail: format!(
                "no health summary has committed in epoch {} yet (one is written every {} blocks)",
                c.epoch,
                warpnet_types::health::SUMMARY_INTERVAL
            ),
        }),
    }
}

#[derive(Serialize)]
struct Pending {
    epoch: u64,
    pending: Vec<PendingView>,
}

pub(super) async fn admissions(State(state): State<AppState>) -> Result<Response, ApiError> {
    let c = state.shared.committee_view()?;
    Ok(ok("ok", StatusCode::OK, Pending { epoch: c.epoch, pending: c.pending }))
}

pub(super) async fn admit(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let admission = json::<AdmissionBody>(&body, "an admission request")?.parse()?;
    let view = control(&state, |done| Control::Admission { admission, done }).await?;
    Ok(ok("accepted", StatusCode::ACCEPTED, view))
}

pub(super) async fn operator(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let instruction: Instruction = json(&body, "an operator instruction")?;
    let config = state.shared.config();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let checked = state
        .operators
        .lock()
        .map_err(|_| ApiError::internal("operator guard poisoned"))?
        .check(&instruction, config.network(), config.scheme(), &state.shared.key, now_ms);
    checked.map_err(|e| match e {
        crate::membership::operator::OperatorError::MalformedSignature => {
            ApiError::InvalidRequest { detail: e.to_string() }
        }
        e => ApiError::Forbidden { detail: e.to_string() },
    })?;
    let key = match &instruction.action {
        Action::Endorse { public_key } | Action::Remove { public_key, .. } => public_key,
    };
    PublicKey::from_hex(key).map_err(|_| ApiError::InvalidRequest {
        detail: "public_key must be 64 hex characters".into(),
    })?;
    let action = instruction.action;
    let view = control(&state, |done| Control::Operator { action, done }).await?;
    Ok(ok("ok", StatusCode::OK, view))
}

/// One epoch's end, summarized (the proof itself is the hex field of the answer).
#[derive(Serialize)]
struct EndView {
    epoch: u64,
    height: u64,
    block_id: String,
    change: String,
    members_after: usize,
}

#[derive(Serialize)]
struct ProofView {
    from_epoch: u64,
    current_epoch: u64,
    ends: Vec<EndView>,
    /// `EpochProof` encoded, hex; empty when `from_epoch` is the current epoch.
    proof: String,
}

pub(super) async fn epoch_proof(
    State(state): State<AppState>,
    Path(n): Path<String>,
) -> Result<Response, ApiError> {
    let from = n.parse::<u64>().map_err(|_| ApiError::InvalidRequest {
        detail: format!("the epoch must be a number, got {n:?}"),
    })?;
    let current = state.shared.config().epoch().0;
    let crate::handle::Committed::Hotstuff(store) = &state.shared.store else {
        return Err(ApiError::NotFound {
            detail: "this network runs Raft: its committee has no epochs to prove".into(),
        });
    };
    if from > current {
        return Err(ApiError::NotFound {
            detail: format!("epoch {from} has not started (this node is in epoch {current})"),
        });
    }
    let ends = store.epoch_ends(Epoch(from), EPOCH_PROOF_ENDS_MAX).map_err(ApiError::internal)?;
    let mut views = Vec::new();
    let mut members = None;
    for end in &ends {
        let Some(block) = end.block() else { continue };
        let change = warpnet_types::epoch::reconfiguration(block.payload())
            .map(|c| describe(&c))
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        if let Ok(Some(c)) = store.committee_at(Epoch(end.epoch().0 + 1)) {
            members = Some(c.total_nodes());
        }
        views.push(EndView {
            epoch: end.epoch().0,
            height: block.height().0,
            block_id: block.id().to_hex(),
            change,
            members_after: members.unwrap_or(0),
        });
    }
    let proof =
        if ends.is_empty() { String::new() } else { hex::encode(EpochProof { ends }.to_bytes()) };
    Ok(ok(
        "ok",
        StatusCode::OK,
        ProofView { from_epoch: from, current_epoch: current, ends: views, proof },
    ))
}

fn describe(c: &Change) -> String {
    match c {
        Change::Add { admission, .. } => format!("add {}", admission.candidate.public_key.to_hex()),
        Change::Remove { key, reason, .. } => format!("remove {} ({reason})", key.to_hex()),
        Change::Update(u) => format!("update {}", u.member.public_key.to_hex()),
    }
}

#[derive(Serialize)]
struct Evidence {
    evidence: Vec<crate::handle::EvidenceView>,
}

pub(super) async fn evidence(State(state): State<AppState>) -> Result<Response, ApiError> {
    let c = state.shared.committee_view()?;
    Ok(ok("ok", StatusCode::OK, Evidence { evidence: c.evidence }))
}
