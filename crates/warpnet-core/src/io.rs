//! What goes into the core and what comes out of it.

use warpnet_types::{Block, Message, NodeId, Round, SyncRequest, ValidationError};

use crate::evidence::Equivocation;
use crate::safety::{SafetyData, SafetyError};
use crate::tree::{Committed, TreeError};

/// The two timers a replica runs. Setting a timer replaces the earlier one of the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The round's timeout (PM1).
    Round(Round),
    /// A leader's delayed empty proposal (see `CoreParams::idle_propose_delay_ms`).
    Propose(Round),
}

/// An event for the core. Moved, not stored, so the large message variant stays unboxed.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// A message from a member; `from` is authenticated by the transport.
    Message { from: NodeId, message: Message },
    /// A timer set by `Action::SetTimer` expired.
    Timer(Timer),
    /// A command from a client, to be ordered.
    Payload(Vec<u8>),
    /// Safety data up to this version (and every block persisted before it) is durable.
    SafetyPersisted { version: u64 },
    /// The transport lost (`reachable: false`) or regained its connection to a member (PM7).
    /// Only timing depends on it: a report can only bring the current round's timer forward,
    /// never push it back, and never touches safety.
    Reachability { peer: NodeId, reachable: bool },
}

/// Something the runtime must do. Actions are executed in the order returned.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    Send {
        to: NodeId,
        message: Message,
    },
    /// To every other member.
    Broadcast {
        message: Message,
    },
    /// Make the safety data durable (fsync), then feed `Input::SafetyPersisted { version }`.
    /// Every `PersistBlock` returned before it must be durable no later than it.
    PersistSafety {
        version: u64,
        data: SafetyData,
    },
    /// Store a block (not yet committed). Durable together with the next `PersistSafety`.
    PersistBlock(Block),
    /// The block is committed: apply it. Emitted in height order, each height exactly once.
    Commit(Committed),
    /// Arm a timer; feed `Input::Timer(timer)` after `after_ms`.
    SetTimer {
        timer: Timer,
        after_ms: u64,
    },
    /// Answer a peer's sync request from the block store (see [`crate::sync::respond`]).
    ServeSync {
        to: NodeId,
        request: SyncRequest,
    },
    /// Proven equivocation; the runtime records it (and later, membership may act on it).
    Evidence(Equivocation),
    /// Input that was refused, for the log and metrics. The core's state did not change.
    Rejected {
        from: Option<NodeId>,
        reason: Rejection,
    },
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
        }
    }
}
