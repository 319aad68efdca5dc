//! The node's handle: what the consensus loop shares with the API. The configuration, the
//! snapshot the loop publishes after every step, committed state, the claim verifier, and the
//! queue of requests (a command, a read barrier or a membership change, and where its answer
//! goes). Both engines serve the same handle.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use warpnet_state::{Claim, Outcome, Owner, UserId};
use warpnet_storage::{AppSnapshot, RaftStore, Store, StoreError};
use warpnet_types::{ConsensusConfig, PublicKey};

use crate::app::View;
use crate::error::ApiError;
use crate::files::Consensus;
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
    pub config: Arc<ConsensusConfig>,
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
            total: self.config.total_nodes(),
            quorum: self.config.quorum_threshold(),
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
