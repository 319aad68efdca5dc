//! The node's handle: what the consensus loop shares with the API. The committee of the current
//! epoch, the snapshot the loop publishes after every step, committed state, the claim verifier,
//! the queue of submissions (a command and where its outcome goes), and the operators' requests
//! about the committee ([`Control`]).

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use warpnet_state::{Claim, Outcome, Owner, UserId};
use warpnet_storage::Store;
use warpnet_types::membership::Admission;
use warpnet_types::{ConsensusConfig, PublicKey};

use crate::app::View;
use crate::error::ApiError;
use crate::membership::operator::Action;
use crate::membership::{PendingView, Refusal};
use crate::metrics::Metrics;
use crate::verifier::Verifier;

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
    /// The command is not acceptable (too large): the API should never have sent it.
    Invalid(String),
    /// The command committed recently (M2): committed state has its outcome.
    AlreadyCommitted,
}

/// A request about the committee, for the consensus loop (which owns [`crate::membership`]).
pub enum Control {
    /// A candidate's signed request to join (`POST /v1/admissions`).
    Admission { admission: Admission, done: oneshot::Sender<Result<PendingView, Refusal>> },
    /// This node's operator's instruction, already authenticated (`POST /v1/operator`).
    Operator { action: Action, done: oneshot::Sender<Result<PendingView, Refusal>> },
}

/// A member of the current committee, as `GET /v1/members` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct MemberView {
    pub node_id: u16,
    pub public_key: String,
    pub p2p_address: String,
    pub api_address: String,
    pub public: bool,
    /// The first epoch of the run of epochs, up to the current one, it has been a member in.
    pub member_since_epoch: u64,
    pub connected: bool,
}

/// An equivocation proven lately, as `GET /v1/evidence` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceView {
    pub epoch: u64,
    pub round: u64,
    pub signer: String,
    pub kind: String,
    /// Both signed statements, encoded (`warpnet_types::Equivocation`), hex.
    pub evidence: String,
}

/// The committee as the loop last published it (after every epoch change and membership event).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Committee {
    pub epoch: u64,
    /// This node's index in the epoch; none when it is not a member (joining, or removed).
    pub node_id: Option<u16>,
    pub quorum_threshold: usize,
    pub members_min: usize,
    pub members: Vec<MemberView>,
    pub pending: Vec<PendingView>,
    /// Keys removed in earlier epochs (never admitted again).
    pub retired: Vec<String>,
    /// Equivocations proven lately (the most recent last).
    pub evidence: Vec<EvidenceView>,
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
    /// The committee of the current epoch (replaced at each epoch change): read it with
    /// [`Shared::config`].
    pub committee: RwLock<Arc<ConsensusConfig>>,
    /// This node's key (operator instructions must be signed by it).
    pub key: PublicKey,
    /// The committee view for `GET /v1/members`.
    pub members: Mutex<Committee>,
    /// Requests about the committee for the consensus loop.
    pub control: mpsc::Sender<Control>,
    pub snapshot: Mutex<Snapshot>,
    pub metrics: Arc<Metrics>,
    /// How recent a certificate must be for `/v1/health` to call the node live.
    pub live_window: Duration,
    /// Committed state, for lookups (readers never block the consensus loop's writes).
    pub store: Arc<Store>,
    pub verifier: Verifier,
    /// Commands for the consensus loop.
    pub submit: mpsc::Sender<Submission>,
    /// How long a claim (or a linearizable read) waits for its commit.
    pub claim_timeout: Duration,
}

/// An owner found in committed state, and the committed height it was read at.
pub struct Lookup {
    pub owner: Option<Owner>,
    pub read_height: u64,
}

impl Shared {
    /// The committee of the current epoch.
    pub fn config(&self) -> Arc<ConsensusConfig> {
        // A poisoned lock still holds the last committee set: reading it is safe.
        match self.committee.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The loop's last published committee view.
    pub fn committee_view(&self) -> Result<Committee, ApiError> {
        self.members
            .lock()
            .map(|c| c.clone())
            .map_err(|_| ApiError::internal("the node's committee lock is poisoned"))
    }

    /// The loop's last published snapshot.
    pub fn snapshot(&self) -> Result<Snapshot, ApiError> {
        self.snapshot
            .lock()
            .map(|s| s.clone())
            .map_err(|_| ApiError::internal("the node's status lock is poisoned"))
    }

    /// Members reachable (connected, and this node), and the quorum.
    pub fn reach(&self) -> (usize, usize) {
        // A poisoned lock counts nobody else reachable: claims are then refused unsubmitted.
        let connected = self.snapshot.lock().map(|s| s.connected.len()).unwrap_or(0);
        (connected + 1, self.config().quorum_threshold())
    }

    /// Who owns `id` in committed state.
    pub fn lookup(&self, id: &UserId) -> Result<Lookup, ApiError> {
        let snapshot = self.store.app_snapshot().map_err(ApiError::internal)?;
        let owner =
            warpnet_state::lookup(&View::committed(&snapshot), id).map_err(ApiError::internal)?;
        Ok(Lookup { owner, read_height: snapshot.height().0 })
    }

    /// What committed state already answers for `claim`, if anything (see
    /// `warpnet_state::settled`): a retry's recorded result, or the ID's owner.
    pub fn settled(&self, claim: &Claim) -> Result<Option<Outcome>, ApiError> {
        let snapshot = self.store.app_snapshot().map_err(ApiError::internal)?;
        warpnet_state::settled(&View::committed(&snapshot), claim).map_err(ApiError::internal)
    }
}
