//! The node's handle: what the consensus loop shares with the API. The committee of the current
//! epoch, the snapshot the loop publishes after every step, committed state, the claim verifier,
//! the queue of requests (a command, a read barrier or a membership change, and where its
//! answer goes), and the operators' requests about the committee ([`Control`]). Both engines
//! serve the same handle.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use warpnet_state::{Claim, Outcome, Owner, UserId};
use warpnet_storage::{AppSnapshot, RaftStore, Store, StoreError};
use warpnet_types::membership::Admission;
use warpnet_types::{ConsensusConfig, PublicKey};

use crate::app::View;
use crate::error::ApiError;
use crate::files::Consensus;
use crate::membership::operator::Action;
use crate::membership::{PendingView, Refusal};
use crate::metrics::Metrics;
use crate::verifier::Verifier;

/// Where an ordered request's answer goes.
pub type Reply = oneshot::Sender<Result<Outcome, Refused>>;

/// What the API asks the consensus loop for.
pub enum Request {
    /// Order a checked client command; answered with its outcome once it is committed and
    /// applied here durably.
    Command { command: Vec<u8>, done: Reply },
    /// A read barrier: answered `Outcome::Barrier` once this node has applied, durably, every
    /// command committed before the request arrived (linearizable lookups).
    Read { done: Reply },
    /// A change of the voters (Raft mode: AddVoter / RemoveServer, by the leader).
    Member { change: MemberChange, done: oneshot::Sender<Result<MemberDone, MemberRefused>> },
}

/// A checked membership change: which member, and the membership index it was decided
/// against (hashicorp's `prevIndex`: a change decided on an older membership is refused, so a
/// signed request cannot be replayed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberChange {
    pub add: bool,
    pub key: PublicKey,
    pub expected_index: u64,
}

/// A membership change applied here, durably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDone {
    pub membership_index: u64,
    pub voters: Vec<u16>,
}

/// Why a membership change was not made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberRefused {
    /// Only the leader changes the membership (RF4).
    NotLeader { leader: Option<u16> },
    /// The engine refused it (pending change, stale index, already a voter, ...): the message
    /// says which rule.
    Refused(String),
    /// Proposed, not applied within the bound (a leader change): the outcome is unknown.
    Unknown,
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
    /// No leader is known (Raft mode): nothing was submitted.
    NoLeader,
    /// The engine gave up on a read (its leader was lost): it may be retried.
    ReadFailed,
    /// The node failed (no randomness): not the client's fault.
    Internal(String),
}

/// Raft mode's view of its log and leadership, for `/v1/cluster`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RaftView {
    pub term: u64,
    pub role: &'static str,
    pub leader: Option<u16>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
    pub membership_index: u64,
    pub health: &'static str,
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
    /// This node's own view: a transport connection to it is up (not agreed; see `health`).
    pub connected: bool,
    /// Agreed health (H3, LR1, LR2), from the committed chain; `null` until a window exists
    /// (and in Raft mode).
    pub health: Option<MemberHealthView>,
}

/// One member's agreed health, as every honest node computes it from the same committed block.
#[derive(Clone, Debug, Serialize)]
pub struct MemberHealthView {
    pub online: bool,
    pub last_seen_height: Option<u64>,
    pub votes: u32,
    pub proposals: u32,
    pub failed_leader_rounds: u32,
    pub verified_public: bool,
    pub attested_by: u32,
    /// `leader`, `not_public`, `unverified`, `offline`, `failed` or `failing`.
    pub reputation: &'static str,
}

/// Where the agreed health in a committee view comes from.
#[derive(Clone, Debug, Serialize)]
pub struct HealthView {
    /// The committed block the health is seen from (its window ends there or just below).
    pub computed_at_height: u64,
    pub window_blocks: u32,
    /// LR1: no verified-public member is fit to lead; leaders come from the self-declared
    /// public members.
    pub fallback: bool,
}

/// `GET /v1/routing`: the members to route through, from the newest committed health summary,
/// with the proof that it committed.
#[derive(Clone, Debug, Serialize)]
pub struct RoutingView {
    pub epoch: u64,
    /// The height of the block that carries the summary.
    pub height: u64,
    pub block_id: String,
    pub fallback: bool,
    pub members: Vec<RouteView>,
    /// The encoded `CommitProof` (hex): the summary's block first, then its descendants up to
    /// a certified pair in consecutive rounds, and the quorum certificate of the last.
    pub proof: String,
}

/// One member to route through.
#[derive(Clone, Debug, Serialize)]
pub struct RouteView {
    pub node_id: u16,
    pub public_key: String,
    pub p2p_address: String,
    pub api_address: String,
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
    /// Raft mode: the members listed that are learners (catching up before the leader
    /// promotes them, RV1), by node id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub learners: Vec<u16>,
    pub pending: Vec<PendingView>,
    /// Keys removed in earlier epochs (never admitted again).
    pub retired: Vec<String>,
    /// Equivocations proven lately (the most recent last).
    pub evidence: Vec<EvidenceView>,
    /// Agreed health's provenance; `null` until a window exists (and in Raft mode).
    pub health: Option<HealthView>,
    /// `GET /v1/routing`'s answer, once a summary committed in this epoch.
    #[serde(skip)]
    pub routing: Option<Arc<RoutingView>>,
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
    /// The members that vote (all of them in HotStuff mode), sorted, and how many votes commit.
    pub voters: Vec<u16>,
    pub quorum: usize,
    /// Raft mode only.
    pub raft: Option<RaftView>,
    #[serde(skip)]
    pub last_certificate: Option<Instant>,
}

/// Committed state: the store of the engine the network runs.
pub enum Committed {
    Hotstuff(Arc<Store>),
    Raft(Arc<RaftStore>),
}

impl Committed {
    /// One read transaction's view of the registry, with the height (HotStuff) or applied
    /// index (Raft) it reflects.
    pub fn app_snapshot(&self) -> Result<AppSnapshot, StoreError> {
        match self {
            Committed::Hotstuff(s) => s.app_snapshot(),
            Committed::Raft(s) => s.app_snapshot(),
        }
    }
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
    pub consensus: Consensus,
    pub snapshot: Mutex<Snapshot>,
    pub metrics: Arc<Metrics>,
    /// How recent a certificate must be for `/v1/health` to call the node live.
    pub live_window: Duration,
    /// Committed state, for lookups (readers never block the consensus loop's writes).
    pub store: Committed,
    pub verifier: Verifier,
    /// Requests for the consensus loop.
    pub requests: mpsc::Sender<Request>,
    /// How long a claim (or a linearizable read) waits for its commit.
    pub claim_timeout: Duration,
}

/// Who can commit now, as the loop last saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reach {
    /// Voters connected (this node counts when it votes).
    pub reachable: usize,
    /// Voters in all.
    pub total: usize,
    /// Votes needed to commit.
    pub quorum: usize,
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

    /// Voters reachable (connected, and this node if it votes), voters, and the quorum.
    pub fn reach(&self) -> Reach {
        // A poisoned lock counts nobody reachable: claims are then refused unsubmitted.
        let fallback = Reach {
            reachable: 0,
            total: self.config().total_nodes(),
            quorum: self.config().quorum_threshold(),
        };
        let Ok(s) = self.snapshot.lock() else { return fallback };
        if s.voters.is_empty() {
            return fallback;
        }
        let reachable =
            s.voters.iter().filter(|v| **v == s.node_id || s.connected.contains(v)).count();
        Reach { reachable, total: s.voters.len(), quorum: s.quorum }
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
