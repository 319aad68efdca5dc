//! Why the engine refused an input or a recovery. A refused input changes nothing.

use warpnet_types::NodeId;

use crate::types::Index;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("no leader is known: the proposal or read was not submitted")]
    NoLeader,
    #[error("command of {len} bytes exceeds the limit of {max}")]
    CommandTooLarge { len: usize, max: usize },
    #[error("empty command (empty entries are the leader's no-ops)")]
    EmptyCommand,
    #[error("the leader has too much uncommitted data or too many pending reads")]
    Overloaded,
    #[error("a membership change (index {pending}) is not applied yet: one change at a time")]
    MembershipChangePending { pending: Index },
    #[error("the membership is at index {current}, the change expected index {expected}")]
    MembershipChanged { expected: Index, current: Index },
    #[error("member {id} is already a voter with the same description")]
    AlreadyVoter { id: NodeId },
    #[error(
        "member {id} leads: transfer leadership to another public voter, then remove it there"
    )]
    RemoveLeader { id: NodeId },
    #[error("member {id} is neither a voter nor a learner")]
    NotVoter { id: NodeId },
    #[error("member {id} was removed: its id is never added again (RV4)")]
    Retired { id: NodeId },
    #[error("learner {id} is catching up: the leader promotes it once it has (RV1); one change at a time, so only its removal is accepted meanwhile")]
    LearnerPending { id: NodeId },
    #[error("the removal would leave {voters} voters, fewer than the minimum of {min} (RV3)")]
    BelowMinimum { voters: usize, min: usize },
    #[error("the change would leave {voters} voters with {public} public and caught up: nobody could lead")]
    NoPublicVoterLeft { voters: usize, public: usize },
    #[error("member {id} is not a public voter and may not lead (RF1)")]
    NotPublic { id: NodeId },
    #[error("message from {claimed} arrived on the connection of {sender}")]
    WrongSender { sender: NodeId, claimed: u64 },
    #[error("message addressed to {to}, this replica is {me}")]
    WrongRecipient { me: NodeId, to: u64 },
    #[error("message kind {kind} is never accepted from a peer")]
    ForbiddenKind { kind: &'static str },
    #[error("raft refused the input: {detail}")]
    Refused { detail: String },
    #[error("compaction to {index} is outside ({snapshot}, {applied}]")]
    BadCompaction { index: Index, snapshot: Index, applied: Index },
    #[error("snapshot message does not hold together: {detail}")]
    BadSnapshot { detail: String },
    #[error("unknown write {id} acknowledged (next expected {expected})")]
    UnknownWrite { id: u64, expected: u64 },
}

/// What a disk handed to the engine does not hold together; the node must stop.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("log entries are not contiguous after index {after}: found {found}")]
    Gap { after: Index, found: Index },
    #[error("commit index {commit} is beyond the last log index {last}")]
    CommitBeyondLog { commit: Index, last: Index },
    #[error("applied index {applied} is beyond the commit index {commit}")]
    AppliedBeyondCommit { applied: Index, commit: Index },
    #[error("commit index {commit} is below the snapshot's index {snapshot}")]
    CommitBelowSnapshot { commit: Index, snapshot: Index },
    #[error("the stored membership {stored} differs from the one the log gives, {derived}")]
    MembershipMismatch { stored: String, derived: String },
    #[error("applied index {applied} is below the snapshot's index {snapshot}")]
    AppliedBelowSnapshot { applied: Index, snapshot: Index },
    #[error("entry {index} has term {term}, below the entry before it ({previous})")]
    TermDecreases { index: Index, term: u64, previous: u64 },
    #[error("corrupt membership entry at {index}: {detail}")]
    Membership { index: Index, detail: String },
    #[error("raft refused the recovered state: {detail}")]
    Raft { detail: String },
}
