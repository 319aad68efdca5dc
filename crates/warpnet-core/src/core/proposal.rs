//! Proposing (leaders) and voting on proposals (everyone).

use std::collections::HashSet;

use warpnet_types::{Block, NodeId, Proposal, Vote};

use super::{Core, Outbound};
use crate::evidence::{Equivocation, Statement};
use crate::io::{Rejection, Timer};
use crate::mempool::command_digest;

impl Core {
    /// Leader side. P5: propose as soon as we hold a certificate for the previous round (a QC
    /// for pipelining, or a TC); with nothing to commit, wait `idle_propose_delay_ms` first
    /// unless `force`d by that timer.
    pub(super) fn propose(&mut self, force: bool) {
        let round = self.round;
        let Some(me) = self.me else { return }; // not a member
        if self.proposed_round >= round || !self.safety.may_propose(round) {
            return; // S4 (may_propose): never a second proposal for a round, even after a restart
        }
        let high_qc = self.safety.data().high_qc.clone();
        let tc = if high_qc.round().next() == round {
            None
        } else if let Some(tc) =
            self.safety.data().high_tc.as_ref().filter(|tc| tc.round().next() == round)
        {
            Some(tc.clone())
        } else {
            return; // not entitled to propose yet
        };
        if tc.as_ref().is_some_and(|tc| high_qc.round() < tc.max_high_qc_round()) {
            // P2: members would refuse a block below a signer's highest QC; we lack that QC
            // (it arrives with the timeouts), so the round times out rather than fail a vote.
            return;
        }
        // P1 with LR3: we lead this round after the block we extend.
        if self.leader_after(round, high_qc.block_id()) != Some(me) {
            return;
        }
        let Some(parent) = self.tree.get(&high_qc.block_id()) else {
            return;
        };
        let ancestors: Vec<&Block> = self.tree.path_to_root(parent.id()).collect();
        let busy = !self.mempool.is_empty()
            || ancestors.iter().any(|b| !b.payload().is_empty())
            || !self.tree.root().payload().is_empty();
        if !busy && !force {
            let after_ms = self.params.idle_propose_delay_ms;
            self.set_timer(Timer::Propose(round), after_ms);
            return;
        }
        let exclude: HashSet<_> =
            ancestors.iter().flat_map(|b| b.payload().iter()).map(|c| command_digest(c)).collect();
        let payload = self.mempool.batch(
            self.params.payload_count_max,
            self.params.payload_bytes_max,
            &exclude,
        );
        let parent = parent.clone();
        // EP1 + EP2: at most one valid membership change, and nothing in the epoch's suffix.
        let payload = self.filter_payload(parent.id(), payload);
        let timestamp_ms = self.now_ms.max(parent.timestamp_ms());
        let height = parent.height().next();
        // H1, H2, H4, H5, LR2: what the block records about the committee's health.
        let health =
            self.health_record(&parent, (round, height, timestamp_ms), &payload, tc.as_ref());
        let block =
            Block::new(self.config.epoch(), round, height, me, high_qc, timestamp_ms, payload)
                .with_health(health);
        let proposal = Proposal::sign(&self.config, block, tc, self.signer.as_ref());
        self.proposed_round = round;
        self.seen_proposals.insert((round, me), (proposal.block.id(), proposal.signature));
        // S4: the proposal leaves once a durable proposal floor covers its round, usually at
        // once (the floor was raised with our vote or timeout in the round before); our own
        // vote for it is sealed by accept_proposal behind its own write, and leaves after it.
        let sealed = self.safety.seal_proposal(round, proposal.clone());
        let at = self.sealed.len();
        self.accept_proposal(me, proposal);
        self.sealed.insert(at.min(self.sealed.len()), Outbound::Proposal(sealed));
    }

    /// Replica side: checks a proposal from `from` before anything costly.
    pub(super) fn on_proposal(&mut self, from: NodeId, p: Proposal) {
        let block = &p.block;
        let round = block.round();
        if from != block.proposer() {
            return self
                .reject(Some(from), Rejection::WrongSender { claimed: block.proposer(), from });
        }
        if let Err(e) = p.validate_shape(&self.config) {
            return self.reject(Some(from), e.into());
        }
        // P1, before anything costly: leaders are drawn from the self-declared public members
        // (LR1, LR4); who leads this round depends on the parent (LR3), checked once it is in
        // the tree (`check_health`).
        if !self.config.participant(block.proposer()).is_ok_and(|p| p.public) {
            let leader = self.config.leader(round);
            return self.reject(
                Some(from),
                Rejection::NotLeader { round, proposer: block.proposer(), leader },
            );
        }
        if let Some(&(seen_id, seen_sig)) = self.seen_proposals.get(&(round, from)) {
            if seen_id == block.id() {
                return; // a duplicate
            }
            // E1: a second, different proposal for the round is evidence, never processed.
            let ev = Equivocation {
                signer: from,
                epoch: block.epoch(),
                round,
                first: Statement::Proposal { block_id: seen_id, signature: seen_sig },
                second: Statement::Proposal { block_id: block.id(), signature: p.signature },
            };
            if ev.verify(&self.config) {
                self.record_evidence(ev);
            }
            return;
        }
        // P3: the proposer's signature (one verification; certificates follow).
        if let Err(e) = p.validate_signature(&self.config) {
            return self.reject(Some(from), e.into());
        }
        // P7: a timestamp at most `clock_skew_max_ms` ahead of our clock, so a Byzantine leader
        // cannot drag block time into the future (honest leaders use max(now, parent)).
        let ahead_max = self.now_ms.saturating_add(self.params.clock_skew_max_ms);
        if block.timestamp_ms() > ahead_max {
            let reason = Rejection::FutureTimestamp {
                timestamp_ms: block.timestamp_ms(),
                now_ms: self.now_ms,
            };
            return self.reject(Some(from), reason);
        }
        // P4: payload within the configured limits.
        let (count, bytes) = (block.payload().len(), block.payload_bytes());
        if count > self.params.payload_count_max || bytes > self.params.payload_bytes_max {
            let e = warpnet_types::ValidationError::PayloadTooLarge {
                count,
                bytes,
                count_max: self.params.payload_count_max,
                bytes_max: self.params.payload_bytes_max,
            };
            return self.reject(Some(from), e.into());
        }
        self.accept_proposal(from, p);
    }

    /// Takes in an authentic proposal: its certificates, then the block, then our vote.
    pub(super) fn accept_proposal(&mut self, from: NodeId, p: Proposal) {
        let own = Some(from) == self.me;
        if let Err(e) = self.process_qc(p.block.justify(), own, self.key_of(Some(from))) {
            return self.reject(Some(from), e);
        }
        if let Some(tc) = &p.tc {
            if let Err(e) = self.process_tc(tc, own) {
                return self.reject(Some(from), e);
            }
        }
        let round = p.block.round();
        if round != self.round {
            return; // stale: a later certificate already moved us past it
        }
        // E1 bookkeeping, only for proposals whose certificates held and whose round is ours,
        // so a peer cannot grow this map with proposals for rounds it will never reach.
        self.seen_proposals.insert((round, from), (p.block.id(), p.signature));
        if !self.tree.contains(&p.block.parent()) {
            // Fetch the ancestors, keep the proposal until they arrive (bounded).
            self.request_sync(p.block.parent(), self.key_of(Some(from)));
            if self.pending.len() >= self.params.pending_proposals_max {
                self.pending.pop_first();
            }
            self.pending.insert(round, (from, p));
            return;
        }
        // EP1 + EP2: what the block may carry, given its place in the epoch.
        if let Err(e) = self.check_reconfiguration(&p.block) {
            return self.reject(Some(from), e);
        }
        // P1 with LR3; H1, LR2, H4: its proposer leads this round after its parent, and it
        // records what its ancestry and its TC give.
        if let Err(e) = self.check_health(&p, own) {
            return self.reject(Some(from), e);
        }
        match self.tree.insert(p.block.clone()) {
            Ok(true) => self.persist_block(p.block.clone()),
            Ok(false) => {}
            Err(e) => return self.reject(Some(from), e.into()),
        }
        self.on_block_inserted(&p.block.id());
        // S1: vote if the safety rules allow; the vote goes to the next round's leader, and
        // (H1) to the leader after it, who records late votes.
        let Some(me) = self.me else { return }; // only members vote
        let (to, recorder) = self.vote_targets(p.block.id(), round);
        let signer = self.signer.as_ref();
        match self.safety.vote(&self.config, me, signer, &p.block, p.tc.as_ref(), to == me) {
            Ok(vote) => self.sealed.push(Outbound::Vote { to, recorder, vote }),
            Err(e) => self.reject(Some(from), e.into()),
        }
    }

    /// Sends a released vote to the next leader and the recorder (or counts it, if we are one).
    pub(super) fn send_vote(&mut self, to: NodeId, recorder: Option<NodeId>, vote: Vote) {
        for target in std::iter::once(to).chain(recorder) {
            if Some(target) == self.me {
                self.on_vote(target, vote.clone(), true);
            } else {
                self.send(target, warpnet_types::Message::Vote(vote.clone()));
            }
        }
    }

    /// Next-leader side: counts a vote; a quorum forms a QC (Q1) and we propose at once.
    pub(super) fn on_vote(&mut self, from: NodeId, vote: Vote, own: bool) {
        if from != vote.voter {
            return self.reject(Some(from), Rejection::WrongSender { claimed: vote.voter, from });
        }
        if let Err(e) = vote.validate_shape(&self.config) {
            return self.reject(Some(from), e.into());
        }
        // P6: votes far ahead are dropped unverified; old ones are useless.
        if vote.round.0 > self.round.0.saturating_add(self.params.future_rounds_max) {
            return self.reject(
                Some(from),
                Rejection::FarFuture { round: vote.round, current: self.round },
            );
        }
        // Useful while we may still gather its QC, or record it two rounds later (H1).
        if vote.round.0.saturating_add(2) < self.round.0 {
            return;
        }
        let (collect, record) = match self.tree.contains(&vote.block_id) {
            true => {
                let (to, recorder) = self.vote_targets(vote.block_id, vote.round);
                (Some(to) == self.me, recorder.is_some() && recorder == self.me)
            }
            // Its block is not here yet: keep it (one per voter and round, P6 bounds rounds).
            false => (true, true),
        };
        if !collect && !record {
            return;
        }
        let collect = collect && vote.round.next() >= self.round;
        match self.votes.add(&self.config, vote, own, collect) {
            crate::collect::Added::Pending => {}
            crate::collect::Added::Certificate(qc) => {
                if let Err(e) = self.process_qc(&qc, true, None) {
                    self.reject(None, e);
                }
            }
            crate::collect::Added::Equivocation(ev) => self.record_evidence(ev),
            crate::collect::Added::BadSignatures(ids) => {
                self.reject(Some(from), Rejection::BadSignatures(ids))
            }
        }
    }
}
