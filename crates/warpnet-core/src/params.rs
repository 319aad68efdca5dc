//! Tunables of the core. Every queue and message has an explicit limit.

/// A deliberately broken rule, compiled only with the `mutations` feature, so tests can show
/// that the simulator catches each violation. Never part of a node build.
#[cfg(feature = "mutations")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// S1a off: vote again in a round already voted in.
    S1aVoteAgain,
    /// Persist-before-release off: sealed votes and timeouts leave at once.
    ReleaseBeforePersist,
    /// The write order off: `Persisted` for one write counts every write handed out as
    /// durable (as a runtime that acknowledged writes out of order would).
    PersistedCoversAll,
    /// S4's restart floor off: a restarted leader may propose again in a round whose proposal
    /// may have left before the crash.
    S4IgnoreFloor,
    /// EP1 off: members vote for blocks whatever membership commands they carry.
    Ep1AnyChange,
    /// EP3 off: a commit is not cut at the reconfiguration block (suffix blocks commit too).
    Ep3NoCut,
    /// LR1, LR2 off: leaders rotate over every public member (L1 alone), whatever health says.
    LrOff,
    /// LR5 off: a leader is drawn from the health seen two blocks back alone; failures
    /// recorded since (the parent's blame, the rounds failed after it) are not skipped.
    Lr5Off,
    /// H1, LR2, H4 unchecked: voters accept any late votes, blame and summary a leader writes
    /// (the leader check of P1 stays).
    HealthUnchecked,
    /// M3 off: a pending command is shared once, when it arrives, never again.
    NoReshare,
    /// H2 weakened: one attester is enough to make a member verified public (not a quorum).
    H2OneAttester,
    /// H3 without the committed history: a window stops at the tree's root (a block below it
    /// sees only itself), so replicas whose roots differ see different health for the same
    /// block.
    H3TreeOnly,
}

/// Consecutive failed rounds that do not lengthen the round timeout (PM3).
pub const BACKOFF_FREE_TIMEOUTS: u32 = 2;

/// Configuration of one replica's core. Defaults suit a LAN/WAN committee; the simulator and
/// tests use smaller timeouts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreParams {
    /// Round timeout after a round that ended with a QC.
    pub round_timeout_base_ms: u64,
    /// Cap of the exponential backoff.
    pub round_timeout_max_ms: u64,
    /// PM7: the round timeout while the round's leader or its vote collector (the next
    /// leader) is unreachable; such a round cannot produce a QC.
    pub unreachable_leader_timeout_ms: u64,
    /// A leader with nothing to commit waits this long before proposing an empty block
    /// (it proposes at once when a payload arrives or an ancestor carries one).
    pub idle_propose_delay_ms: u64,
    /// Votes and timeouts for rounds further ahead than this are dropped unverified (P6).
    pub future_rounds_max: u64,
    /// Most commands per block (P4).
    pub payload_count_max: usize,
    /// Most payload bytes per block (P4).
    pub payload_bytes_max: usize,
    /// Largest single command.
    pub command_bytes_max: usize,
    /// Most commands waiting in the mempool.
    pub mempool_max: usize,
    /// Most blocks asked for in one sync request.
    pub sync_blocks_max: u16,
    /// Most proposals kept while their ancestors are fetched.
    pub pending_proposals_max: usize,
    /// A proposal's timestamp may be at most this far ahead of the local clock (P7).
    pub clock_skew_max_ms: u64,
    /// Most equivocation records kept in memory (older ones are dropped; all are emitted).
    pub evidence_max: usize,
    /// M3: a command still pending this long after this member last shared it is shared
    /// again with every member.
    pub reshare_after_ms: u64,
    /// A rule to break, for mutation tests only.
    #[cfg(feature = "mutations")]
    pub mutation: Option<Mutation>,
}

impl Default for CoreParams {
    fn default() -> Self {
        Self {
            round_timeout_base_ms: 1_000,
            round_timeout_max_ms: 60_000,
            unreachable_leader_timeout_ms: 100,
            idle_propose_delay_ms: 250,
            future_rounds_max: 1_000,
            payload_count_max: 4_096,
            payload_bytes_max: 2 << 20,
            command_bytes_max: 16 << 10,
            mempool_max: 100_000,
            sync_blocks_max: 128,
            pending_proposals_max: 16,
            clock_skew_max_ms: 30_000,
            evidence_max: 1_024,
            reshare_after_ms: 2_000,
            #[cfg(feature = "mutations")]
            mutation: None,
        }
    }
}

impl CoreParams {
    /// Refuses settings under which the protocol cannot work: a block that would not fit in a
    /// frame, zero timeouts, or limits of zero.
    pub fn check(&self) -> Result<(), &'static str> {
        use warpnet_types::message::{FRAME_OVERHEAD_BYTES, MESSAGE_BYTES_MAX};
        if self.round_timeout_base_ms == 0
            || self.round_timeout_max_ms < self.round_timeout_base_ms
            || self.unreachable_leader_timeout_ms == 0
            || self.reshare_after_ms == 0
        {
            return Err("round timeouts and the reshare period must be positive, the maximum timeout at least the base");
        }
        if self.payload_count_max == 0 || self.payload_bytes_max == 0 || self.sync_blocks_max == 0 {
            return Err("payload and sync limits must be positive");
        }
        if self.payload_bytes_max + 4 * self.payload_count_max + FRAME_OVERHEAD_BYTES
            > MESSAGE_BYTES_MAX
        {
            return Err("a full block would not fit in one frame (MESSAGE_BYTES_MAX)");
        }
        if self.payload_count_max > warpnet_types::block::PAYLOAD_ITEMS_MAX
            || self.command_bytes_max > warpnet_types::block::PAYLOAD_ITEM_BYTES_MAX
        {
            return Err("payload limits exceed the wire limits");
        }
        Ok(())
    }

    /// PM3: the round timeout after `consecutive_timeouts` failed rounds in a row. The first
    /// [`BACKOFF_FREE_TIMEOUTS`] keep the base: one crashed member fails its own round and the
    /// round before it (whose votes it should have gathered into a QC), and at a permutation's
    /// cycle boundary it may lead twice; doubling from the first failure made each crash cost
    /// 0.9-4.5 s at a 300 ms base in the cluster tests. From then on the timeout doubles (up
    /// to the cap: `round_timeout_max_ms`), so after GST rounds still grow long enough for any
    /// honest leader. Counted over consecutive rounds ended by a TC, not the absolute round.
    pub fn round_timeout_ms(&self, consecutive_timeouts: u32) -> u64 {
        let doublings = consecutive_timeouts.saturating_sub(BACKOFF_FREE_TIMEOUTS).min(32);
        let factor = 1u64 << doublings;
        self.round_timeout_base_ms.saturating_mul(factor).min(self.round_timeout_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_settings_are_refused() {
        assert_eq!(CoreParams::default().check(), Ok(()));
        let too_big = CoreParams { payload_bytes_max: 64 << 20, ..CoreParams::default() };
        assert!(too_big.check().is_err());
        let zero = CoreParams { round_timeout_base_ms: 0, ..CoreParams::default() };
        assert!(zero.check().is_err());
    }

    #[test]
    fn pm3_backoff_starts_after_two_failures_doubles_and_is_capped() {
        let p = CoreParams {
            round_timeout_base_ms: 100,
            round_timeout_max_ms: 1_000,
            ..CoreParams::default()
        };
        let t: Vec<u64> = (0..8).map(|k| p.round_timeout_ms(k)).collect();
        assert_eq!(t, [100, 100, 100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(p.round_timeout_ms(u32::MAX), 1_000);
    }
}
