//! Certificates move the replica: QCs lock, commit and advance rounds; TCs advance rounds.

use warpnet_types::{NodeId, PublicKey, QuorumCertificate, Round, TimeoutCertificate};

use super::Core;
use crate::io::Rejection;

impl Core {
    /// Takes in a QC from any source. Verifies it unless an equal QC is already known, then:
    /// observes it (lock, S-data), applies C1 (commit), fetches its block if missing, and
    /// PM2: moves to round `qc.round + 1`.
    ///
    /// `source` is the member the QC came with (it holds the block); sync asks it first.
    pub(super) fn process_qc(
        &mut self,
        qc: &QuorumCertificate,
        verified: bool,
        source: Option<PublicKey>,
    ) -> Result<(), Rejection> {
        if !verified && !self.tree.knows_qc(qc) {
            qc.validate(&self.config)?;
        }
        self.tree.record_qc(qc);
        let raised = self.safety.observe_qc(qc);
        self.commit_with(qc);
        if !self.tree.contains(&qc.block_id()) && qc.round() >= self.safety.data().high_qc.round() {
            let voter = self.key_of(qc.voters().iter().find(|&id| Some(id) != self.me));
            self.request_sync(qc.block_id(), source.or(voter));
        }
        let round = self.round;
        self.advance(qc.round().next(), false);
        if raised && self.round == round {
            // Same round, higher QC: a leader that could not propose (its QC was below the
            // TC's highest) may be able to now.
            self.propose(false);
        }
        Ok(())
    }

    /// C1: commits what the QC completes, in height order, exactly once (EP3 may end the
    /// epoch on the way).
    pub(super) fn commit_with(&mut self, qc: &QuorumCertificate) {
        if let Some(b0) = self.tree.committable(qc) {
            self.commit_proven(b0, qc);
        }
    }

    /// Takes in a TC: verifies it unless it is the one we hold, keeps the highest, and
    /// PM2: moves to round `tc.round + 1`.
    pub(super) fn process_tc(
        &mut self,
        tc: &TimeoutCertificate,
        verified: bool,
    ) -> Result<(), Rejection> {
        if !verified && self.safety.data().high_tc.as_ref() != Some(tc) {
            tc.validate_shape(&self.config)?;
            tc.validate_signatures(&self.config)?;
        }
        // The TC carries the QC of its highest entry: taking it in guarantees we hold a QC at
        // least as high as every signer's, so as leader we can extend it (P2, S1c).
        self.process_qc(tc.high_qc(), verified, None)?;
        self.safety.observe_tc(tc);
        self.advance(tc.round().next(), true);
        Ok(())
    }

    /// Moves to `round` if it is ahead. A round reached through a TC counts as failed (PM3).
    pub(super) fn advance(&mut self, round: Round, via_tc: bool) {
        if round <= self.round {
            return;
        }
        self.round = round;
        self.consecutive_timeouts =
            if via_tc { self.consecutive_timeouts.saturating_add(1) } else { 0 };
        self.enter_round();
    }

    /// PM1: arms the round timer, forgets old rounds, and lets the leader propose.
    pub(super) fn enter_round(&mut self) {
        let after_ms = self.round_timeout();
        self.arm_round_timer(after_ms);
        let keep_from = Round(self.round.0.saturating_sub(1));
        // Votes two rounds back are still recorded (H1).
        self.votes.prune_below(Round(self.round.0.saturating_sub(2)));
        self.timeouts.prune_below(keep_from);
        let seen_from = (Round(self.round.0.saturating_sub(8)), NodeId(0));
        self.seen_proposals = self.seen_proposals.split_off(&seen_from);
        self.prune_epoch_limits();
        self.sync_requested.retain(|_, r| r.0 + 1 >= self.round.0);
        self.propose(false);
        // A proposal for this round may have been waiting for the certificates we now hold.
        if let Some((from, p)) = self.pending.remove(&self.round) {
            self.accept_proposal(from, p);
        }
        self.pending = self.pending.split_off(&self.round);
    }
}
