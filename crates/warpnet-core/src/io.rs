//! What goes into the core and what comes out of it.

use warpnet_types::epoch::{EpochEnd, ProofError};
use warpnet_types::membership::MembershipError;
use warpnet_types::{
    Block, ConsensusConfig, Epoch, Message, NodeId, PublicKey, Round, SyncRequest, ValidationError,
};

use crate::evidence::Equivocation;
use crate::safety::{SafetyData, SafetyError};
use crate::tree::{Committed, TreeError};

/// The two timers a replica runs. The core keeps their deadlines itself (at most one of each
/// kind); the runtime only wakes it with [`Input::Tick`] at [`Step::deadline_ms`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The round's timeout (PM1).
    Round(Round),
    /// A leader's delayed empty proposal (see `CoreParams::idle_propose_delay_ms`).
    Propose(Round),
}

impl Timer {
    /// Setting a timer replaces the earlier one of the same kind.
    pub(crate) fn kind(self) -> usize {
        match self {
            Timer::Round(_) => 0,
            Timer::Propose(_) => 1,
        }
    }
}

/// An event for the core. Moved, not stored, so the large message variant stays unboxed.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// A message from a peer, named by its key (authenticated by the transport). Members of
    /// the current epoch may send anything; other peers (members of other epochs, joining
    /// nodes) only what is served whatever the epoch (sync, epoch proofs).
    Message { from: PublicKey, message: Message },
    /// The runtime's clock reached the last [`Step::deadline_ms`]: due timers fire, one at a
    /// time in deadline order. A tick with nothing due does nothing.
    Tick,
    /// Every [`Write`] up to and including `seq` is durable.
    Persisted { seq: u64 },
    /// The transport lost (`reachable: false`) or regained its connection to a member (PM7).
    /// Only timing depends on it: a report can only bring the current round's timer forward,
    /// never push it back, and never touches safety.
    Reachability { peer: PublicKey, reachable: bool },
    /// H2: the members whose advertised p2p address the runtime dialed recently, completing an
    /// authenticated handshake with the member it expected there (a reachability probe). A
    /// member signs an attestation of them and sends it to every member; leaders record it.
    Reached { peers: Vec<PublicKey> },
}

/// One durable write: everything a step asks to persist. The runtime makes it durable
/// atomically (one transaction, or one log record), after every write of an earlier step
/// (FIFO), then feeds [`Input::Persisted`] with its `seq` (or a later one). Runtimes may merge
/// consecutive writes into one durable transaction (group commit).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Write {
    /// Numbers the core's writes 1, 2, 3, ... within one incarnation.
    pub seq: u64,
    /// Blocks to keep, not yet committed.
    pub blocks: Vec<Block>,
    /// Newly committed blocks, in height order, each height exactly once, extending the last
    /// committed block: apply them to the state machine in this order. They may include
    /// blocks of `blocks` (a chain fetched and committed in one step).
    pub commits: Vec<Committed>,
    /// The safety data, when it changed. Sealed votes and timeouts that depend on it leave
    /// only after this write is durable.
    pub safety: Option<SafetyData>,
    /// The epoch ended with the last of `commits` but one (EP3): the last commit is the next
    /// epoch's genesis, `safety` is the next epoch's, and this is its committee with the proof
    /// of the end. Durable in the same write, so a crash keeps all of it or none.
    pub epoch: Option<EpochChange>,
}

impl Write {
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
            && self.commits.is_empty()
            && self.safety.is_none()
            && self.epoch.is_none()
    }
}

/// An epoch's end and the committee that follows (EP3).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochChange {
    pub end: EpochEnd,
    pub next: std::sync::Arc<ConsensusConfig>,
}

/// Who a message goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    One(PublicKey),
    /// Every other member.
    All,
}

/// A message to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub to: Target,
    pub message: Message,
}

/// Everything one step (one input) asks of the runtime. The node and the simulator execute it
/// the same way, in this order:
///
/// 1. `write`, if any: queue it for durability (FIFO; see [`Write`]). Nothing waits for it
///    here: the loop goes on with the next input while the write is in flight.
/// 2. `messages`: send now, best effort. None depends on a write that is not yet durable
///    (persist before release: votes, timeouts and a leader's own proposal stay sealed in the
///    core until `Persisted` reports the write that carries their safety data).
/// 3. `serve_sync`: answer each request from the block store with [`crate::sync::respond`];
///    the store must read its own queued writes. `serve_epochs`: answer each with the ends of
///    the epochs from the one named to ours (EP4), and [`crate::Core::latest_commit`].
/// 4. `evidence` and `rejected`: log and count.
/// 5. `deadline_ms`: feed [`Input::Tick`] once the clock reaches it, replacing any earlier
///    wake-up (`None`: no timer is armed).
#[derive(Clone, Debug, Default)]
#[must_use = "a step must be executed"]
pub struct Step {
    pub write: Option<Write>,
    pub messages: Vec<Outgoing>,
    pub serve_sync: Vec<(PublicKey, SyncRequest)>,
    pub serve_epochs: Vec<(PublicKey, Epoch)>,
    /// Proven equivocation (E1); the runtime records it (and later, membership acts on it).
    pub evidence: Vec<Equivocation>,
    /// Input that was refused, with its sender; the core's state did not change.
    pub rejected: Vec<(Option<NodeId>, Rejection)>,
    /// When the earliest armed timer is due, in the core's clock (the `now_ms` it is fed).
    pub deadline_ms: Option<u64>,
}

impl Step {
    /// The blocks this step commits (empty without a write).
    pub fn commits(&self) -> &[Committed] {
        self.write.as_ref().map_or(&[], |w| w.commits.as_slice())
    }
}

/// Why the core refused an input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("invalid: {0}")]
    Invalid(#[from] ValidationError),
    #[error("message signed as node {claimed} arrived from node {from}")]
    WrongSender { claimed: NodeId, from: NodeId },
    #[error("node {proposer} proposed in round {round}, whose leader is {leader}")]
    NotLeader { round: Round, proposer: NodeId, leader: NodeId },
    #[error("round {round} is too far ahead of our round {current}")]
    FarFuture { round: Round, current: Round },
    #[error("block does not extend the tree: {0}")]
    Tree(#[from] TreeError),
    #[error("refused to sign: {0}")]
    Safety(#[from] SafetyError),
    #[error("equivocation by node {signer} in round {round}")]
    Equivocation { signer: NodeId, round: Round },
    #[error("bad signatures from nodes {0:?}")]
    BadSignatures(Vec<NodeId>),
    #[error("block timestamp {timestamp_ms} ms is too far ahead of our clock ({now_ms} ms)")]
    FutureTimestamp { timestamp_ms: u64, now_ms: u64 },
    #[error("mempool is full ({capacity} commands)")]
    MempoolFull { capacity: usize },
    #[error("command of {bytes} bytes exceeds the limit of {max}")]
    CommandTooLarge { bytes: usize, max: usize },
    #[error("command is already pending")]
    DuplicateCommand,
    #[error("command was committed recently")]
    AlreadyCommitted,
    #[error("message for epoch {got}, ours is {expected}")]
    WrongEpoch { got: warpnet_types::Epoch, expected: warpnet_types::Epoch },
    #[error("membership change refused: {0}")]
    Membership(#[from] MembershipError),
    #[error("block carries {count} membership changes; at most one, and none after one in its epoch (EP1, EP2)")]
    Reconfiguration { count: usize },
    #[error("epoch proof refused: {0}")]
    EpochProof(#[from] ProofError),
    #[error("{kind} from a peer outside the committee")]
    NotMember { kind: &'static str },
    #[error("membership command does not decode: {0}")]
    MalformedChange(String),
    #[error("block at height {height}: its {what} are not what its ancestry and its TC give (H1, LR2, H4)")]
    HealthRecord { what: &'static str, height: warpnet_types::Height },
    #[error(
        "block at height {height} extends blocks whose health this replica does not hold (H3)"
    )]
    UnknownAncestry { height: warpnet_types::Height },
}

impl Rejection {
    /// A stable, low-cardinality name for metrics and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Invalid(ValidationError::BadSignature { .. })
            | Rejection::BadSignatures(_) => "bad_signature",
            Rejection::Invalid(_) => "invalid",
            Rejection::WrongSender { .. } => "wrong_sender",
            Rejection::NotLeader { .. } => "not_leader",
            Rejection::FarFuture { .. } => "far_future",
            Rejection::Tree(_) => "not_extending",
            Rejection::Safety(_) => "safety_refused",
            Rejection::Equivocation { .. } => "equivocation",
            Rejection::FutureTimestamp { .. } => "future_timestamp",
            Rejection::MempoolFull { .. } => "mempool_full",
            Rejection::CommandTooLarge { .. } => "command_too_large",
            Rejection::DuplicateCommand => "duplicate_command",
            Rejection::AlreadyCommitted => "already_committed",
            Rejection::WrongEpoch { .. } => "wrong_epoch",
            Rejection::Membership(_) => "membership",
            Rejection::Reconfiguration { .. } => "reconfiguration",
            Rejection::EpochProof(_) => "epoch_proof",
            Rejection::NotMember { .. } => "not_member",
            Rejection::MalformedChange(_) => "malformed_change",
            Rejection::HealthRecord { .. } => "health_record",
            Rejection::UnknownAncestry { .. } => "unknown_ancestry",
        }
    }
}
