//! The pacemaker's timeouts: local expiry, timeout messages, and forming TCs.

use warpnet_types::{Message, NodeId, Round, Timeout, TimeoutCertificate, TimeoutMsg};

use super::{Core, Outbound};
use crate::collect::Added;
use crate::io::Rejection;

/// Timeouts are counted for our round and the next two; further ones only for their
/// certificates. This bounds the collector's memory whatever peers send.
const TIMEOUT_ROUNDS_COLLECTED: u64 = 2;

impl Core {
    /// The round timer fired. PM4: sign a timeout carrying our highest QC (or re-send the same
    /// one, S3) and re-arm the timer so it is re-broadcast until the round ends; retry any sync.
    pub(super) fn on_round_timer(&mut self, round: Round) {
        if round != self.round {
            return; // stale timer
        }
        self.round_timeouts += 1;
        if self.me.is_none() {
            return self.poll();
        }
        self.local_timeout();
        // Re-broadcast at the PM3 pace, even in a round PM7 cut short: a round that cannot
        // gather a TC (more than f away) must not resend every 100 ms.
        let after_ms = self.params.round_timeout_ms(self.consecutive_timeouts);
        self.arm_round_timer(after_ms);
        let high_qc = self.safety.data().high_qc.clone();
        if !self.tree.contains(&high_qc.block_id()) {
            self.sync_requested.remove(&high_qc.block_id());
            let peers: Vec<NodeId> =
                high_qc.voters().iter().filter(|&id| Some(id) != self.me).collect();
            let hint = (!peers.is_empty()).then(|| peers[(round.0 as usize) % peers.len()]);
            self.request_sync(high_qc.block_id(), self.key_of(hint));
        }
    }

    /// EP4 for a replica outside the committee (joining, or removed and lingering): it signs
    /// nothing; each round timer it asks a member, in turn, for the epochs and commits it
    /// lacks, and follows the chain from the proofs.
    fn poll(&mut self) {
        let after_ms = self.params.round_timeout_ms(0);
        self.arm_round_timer(after_ms);
        // A different member each time (the round stands still while we do not vote).
        let n = self.config.total_nodes() as u64;
        let to = self.key_of(Some(NodeId((self.round_timeouts % n.max(1)) as u16)));
        if let Some(to) = to {
            let epoch = self.config.epoch();
            let request = warpnet_types::EpochRequest { epoch, from: epoch };
            self.send_to(to, Message::EpochRequest(request));
        }
        self.pursue_targets();
    }

    fn local_timeout(&mut self) {
        let round = self.round;
        let Some(me) = self.me else { return };
        // S4's floor is raised ahead if we lead the next round (after our highest QC's block).
        let leads_next =
            self.leader_after(round.next(), self.safety.data().high_qc.block_id()) == Some(me);
        match self.safety.timeout(&self.config, me, self.signer.as_ref(), round, leads_next) {
            Ok(timeout) => {
                let tc = self.safety.data().high_tc.clone().filter(|tc| tc.round().next() == round);
                self.sealed.push(Outbound::Timeout { timeout, tc });
            }
            Err(e) => self.reject(None, e.into()),
        }
    }

    /// Broadcasts a released timeout and counts it ourselves.
    pub(super) fn send_timeout(&mut self, timeout: Timeout, tc: Option<TimeoutCertificate>) {
        let msg = TimeoutMsg { timeout: timeout.clone(), last_round_tc: tc };
        self.broadcast(Message::Timeout(msg));
        self.add_timeout(timeout);
    }

    /// A member's timeout. Its certificates may move us forward; a quorum for one round forms a
    /// TC (PM5); f + 1 timeouts for our round make us time out too (PM6: no one waits alone).
    pub(super) fn on_timeout_msg(&mut self, from: NodeId, msg: TimeoutMsg) {
        let t = &msg.timeout;
        if from != t.signer {
            return self.reject(Some(from), Rejection::WrongSender { claimed: t.signer, from });
        }
        if let Err(e) = msg.validate_shape(&self.config) {
            return self.reject(Some(from), e.into());
        }
        if self.timeouts.contains(t) {
            return; // a duplicate or a replay: already counted, costs nothing
        }
        let high_qc_round = self.safety.data().high_qc.round();
        let teaches_qc = t.high_qc_round() > high_qc_round;
        let teaches_tc = msg.last_round_tc.as_ref().is_some_and(|tc| tc.round() >= self.round);
        if t.round.0 > self.round.0.saturating_add(TIMEOUT_ROUNDS_COLLECTED) {
            // P6: a timeout this far ahead is not counted. Its certificates are still used when
            // they would move us forward, so a replica far behind can catch up from timeouts
            // alone; otherwise it is dropped unverified.
            if !teaches_qc && !teaches_tc {
                if t.round.0 > self.round.0.saturating_add(self.params.future_rounds_max) {
                    let reason = Rejection::FarFuture { round: t.round, current: self.round };
                    self.reject(Some(from), reason);
                }
                return;
            }
            return self.take_timeout_certificates(from, &msg, teaches_qc, teaches_tc);
        }
        if t.round < self.round && !teaches_qc {
            return; // stale and teaches us nothing
        }
        if let Err(e) = t.validate_signature(&self.config) {
            return self.reject(Some(from), e.into());
        }
        // The carried QC is verified even when it is not new to us: it may become the QC of a
        // TC we form, which others verify.
        if let Err(e) = self.process_qc(&t.high_qc, false, self.key_of(Some(from))) {
            return self.reject(Some(from), e);
        }
        if teaches_tc {
            self.take_timeout_certificates(from, &msg, false, true);
        }
        self.add_timeout(msg.timeout);
    }

    /// The QC and TC a timeout message carries, each only if it moves us forward.
    fn take_timeout_certificates(&mut self, from: NodeId, msg: &TimeoutMsg, qc: bool, tc: bool) {
        if qc {
            if let Err(e) = self.process_qc(&msg.timeout.high_qc, false, self.key_of(Some(from))) {
                return self.reject(Some(from), e);
            }
        }
        if let Some(last_tc) = msg.last_round_tc.as_ref().filter(|_| tc) {
            if let Err(e) = self.process_tc(last_tc, false) {
                self.reject(Some(from), e);
            }
        }
    }

    fn add_timeout(&mut self, timeout: Timeout) {
        if timeout.round < self.round {
            return;
        }
        let round = timeout.round;
        match self.timeouts.add(&self.config, timeout) {
            Added::Pending | Added::BadSignatures(_) => {}
            Added::Certificate(tc) => {
                let _ = self.process_tc(&tc, true);
                return;
            }
            Added::Equivocation(ev) => self.record_evidence(ev),
        }
        let joined = self.safety.data().last_timeout.as_ref().is_some_and(|t| t.round == round);
        if round == self.round && !joined && self.timeouts.count(round) > self.config.faulty_nodes()
        {
            self.local_timeout();
        }
    }
}
