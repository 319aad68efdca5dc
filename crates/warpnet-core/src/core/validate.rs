//! Invariants of a replica's own state, checked after every step: a debug assertion in the
//! core, and a violation in the simulator (which calls [`Core::validate`] after every step of
//! every replica). They hold whatever peers send; a failure is a bug in the core.

use warpnet_types::{Round, TimeoutCertificate};

use super::{Core, Outbound};
use crate::io::Timer;

/// A broken invariant of the core's state, with the values that show it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreInvariant {
    #[error("round {round} is not above the highest QC round {high_qc_round} and TC round {high_tc_round:?} (PM2)")]
    RoundBehindCertificates { round: Round, high_qc_round: Round, high_tc_round: Option<Round> },
    #[error("signed in round {last_voted} while in round {round} (S1a, S2)")]
    SignedAhead { last_voted: Round, round: Round },
    #[error("proposed in round {proposed} while in round {round} (S4)")]
    ProposedAhead { proposed: Round, round: Round },
    #[error("highest QC round {high_qc_round} is below the committed block's round {committed_round} (C1)")]
    LockBelowCommitted { high_qc_round: Round, committed_round: Round },
    #[error("a sealed message of safety version {version} is held although version {durable} is durable")]
    SealedButDurable { version: u64, durable: u64 },
    #[error("safety version {version} is not covered by the writes handed out (last {requested})")]
    SafetyNotWritten { version: u64, requested: u64 },
    #[error("writes in flight are not numbered in order: {0:?}")]
    WritesOutOfOrder(Vec<u64>),
    #[error("the round timer is {armed:?}, not for the current round {round} (PM1)")]
    RoundTimer { armed: Option<Timer>, round: Round },
    #[error("{what} holds {len}, over its limit of {max}")]
    OverLimit { what: &'static str, len: usize, max: usize },
}

impl Core {
    /// Checks the replica's invariants; see [`CoreInvariant`].
    pub fn validate(&self) -> Result<(), CoreInvariant> {
        let data = self.safety.data();
        let high_qc_round = data.high_qc.round();
        let high_tc_round = data.high_tc.as_ref().map(TimeoutCertificate::round);
        // PM2: a replica is always in a round its certificates entitle it to, or later.
        if self.round <= high_qc_round || high_tc_round.is_some_and(|r| self.round <= r) {
            return Err(CoreInvariant::RoundBehindCertificates {
                round: self.round,
                high_qc_round,
                high_tc_round,
            });
        }
        if data.last_voted_round > self.round {
            let last_voted = data.last_voted_round;
            return Err(CoreInvariant::SignedAhead { last_voted, round: self.round });
        }
        if self.proposed_round > self.round {
            let proposed = self.proposed_round;
            return Err(CoreInvariant::ProposedAhead { proposed, round: self.round });
        }
        let committed_round = self.tree.root().round();
        if high_qc_round < committed_round {
            return Err(CoreInvariant::LockBelowCommitted { high_qc_round, committed_round });
        }
        self.validate_persistence()?;
        match self.timers[0] {
            Some((_, Timer::Round(r))) if r == self.round => {}
            armed => {
                let armed = armed.map(|(_, t)| t);
                return Err(CoreInvariant::RoundTimer { armed, round: self.round });
            }
        }
        let p = &self.params;
        let limits = [
            ("the mempool", self.mempool.len(), p.mempool_max),
            ("the pending proposals", self.pending.len(), p.pending_proposals_max),
            ("the evidence", self.evidence.len(), p.evidence_max),
        ];
        for (what, len, max) in limits {
            if len > max {
                return Err(CoreInvariant::OverLimit { what, len, max });
            }
        }
        Ok(())
    }

    /// Persist before release: nothing sealed is held past its durable version, and every
    /// safety version is in a write handed out (a step never ends with unwritten safety data).
    fn validate_persistence(&self) -> Result<(), CoreInvariant> {
        let durable = self.safety.durable();
        for ob in &self.sealed {
            let version = match ob {
                Outbound::Proposal(s) => s.version(),
                Outbound::Vote { vote, .. } => vote.version(),
                Outbound::Timeout { timeout, .. } => timeout.version(),
            };
            if version <= durable {
                return Err(CoreInvariant::SealedButDurable { version, durable });
            }
        }
        let version = self.safety.version();
        if self.safety.dirty() && self.persist_requested < version {
            let requested = self.persist_requested;
            return Err(CoreInvariant::SafetyNotWritten { version, requested });
        }
        let seqs: Vec<u64> = self.unpersisted.iter().map(|(s, _)| *s).collect();
        if seqs.windows(2).any(|w| w[0] >= w[1]) || seqs.last().is_some_and(|&s| s > self.write_seq)
        {
            return Err(CoreInvariant::WritesOutOfOrder(seqs));
        }
        Ok(())
    }
}
