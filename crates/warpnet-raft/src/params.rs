//! The engine's tunables, in ticks (the runtime decides how long a tick is) and bytes.

/// A deliberately broken rule, compiled only with the `mutations` feature, so tests can show
/// that the simulator's checkers catch it.
#[cfg(feature = "mutations")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// RF2 off: votes and append acknowledgements leave before the write they vouch for is
    /// durable.
    AckBeforePersist,
    /// RF1 off: members that are not public campaign too.
    PrivateCampaigns,
    /// RF2b too broad: a write of the hard state alone counts as moving only the commit index
    /// even when it changes the term or the vote, so a vote leaves before it is durable.
    VoteCountsAsCommitOnly,
    /// RF12 too broad: a leader's messages to private members leave before its own write
    /// too, so a private member may hold entries its leader loses in a crash.
    PrivateBeforeLeaderWrite,
    /// RF15 off: a leader's messages to public voters leave before its own write even while
    /// a membership change is in flight, so a voter may hold its own removal that the leader
    /// lost in a crash.
    EarlyDuringChange,
    /// RV1 off: a learner is promoted to voter at once, before it has caught up.
    PromoteAtOnce,
    /// RF4/RV2 off: a change is proposed while another is still in flight (raft-rs's own
    /// guard, the pending index, is cleared too).
    TwoChangesAtOnce,
}

#[derive(Clone, Debug)]
pub struct RaftParams {
    /// A follower that hears nothing from a leader for a random number of ticks in
    /// `[election_ticks, 2 * election_ticks)` campaigns (if it is public, RF1).
    pub election_ticks: usize,
    /// A leader sends heartbeats every `heartbeat_ticks`.
    pub heartbeat_ticks: usize,
    /// Entries per append message are cut at this many bytes.
    pub message_bytes_max: u64,
    /// Append messages in flight per follower.
    pub inflight_messages_max: usize,
    /// Bytes of proposed but uncommitted entries a leader accepts (beyond: `Overloaded`).
    pub uncommitted_bytes_max: u64,
    /// Largest command accepted by `propose` (and in a forwarded proposal).
    pub command_bytes_max: usize,
    /// Linearizable reads waiting for their read index at once.
    pub pending_reads_max: usize,
    /// A read still unanswered after this many ticks is reported failed (`ReadFailed`).
    pub read_timeout_ticks: u64,
    /// RV3: a removal never leaves fewer voters than this (the committee file's minimum).
    pub voters_min: usize,
    #[cfg(feature = "mutations")]
    pub mutation: Option<Mutation>,
}

impl Default for RaftParams {
    fn default() -> Self {
        Self {
            election_ticks: 10,
            heartbeat_ticks: 1,
            message_bytes_max: 1 << 20,
            inflight_messages_max: 256,
            uncommitted_bytes_max: 64 << 20,
            command_bytes_max: 64 << 10,
            pending_reads_max: 4_096,
            read_timeout_ticks: 20,
            voters_min: 1,
            #[cfg(feature = "mutations")]
            mutation: None,
        }
    }
}

impl RaftParams {
    #[cfg(feature = "mutations")]
    pub(crate) fn mutated(&self, m: Mutation) -> bool {
        self.mutation == Some(m)
    }

    #[cfg(not(feature = "mutations"))]
    #[allow(clippy::unused_self)]
    pub(crate) fn mutated(&self, _m: Never) -> bool {
        false
    }
}

/// Stands in for `Mutation` in builds without the feature, so call sites compile unchanged.
#[cfg(not(feature = "mutations"))]
#[derive(Clone, Copy, Debug)]
pub(crate) enum Never {
    AckBeforePersist,
    PrivateCampaigns,
    VoteCountsAsCommitOnly,
    PrivateBeforeLeaderWrite,
    EarlyDuringChange,
    PromoteAtOnce,
    TwoChangesAtOnce,
}

#[cfg(not(feature = "mutations"))]
pub(crate) use Never as Mutation;
