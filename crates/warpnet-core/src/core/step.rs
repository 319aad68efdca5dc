//! The step's plumbing: what the runtime reports (writes durable, the clock), what a step
//! collects (messages, writes, rejections, timers), and how it ends (release what is durable,
//! EP3's switch, one write, the deadline).

use warpnet_types::{Block, Message, NodeId, PublicKey};

use super::{Core, Outbound};
use crate::evidence::Equivocation;
use crate::io::{Outgoing, Rejection, Step, Target, Timer};

impl Core {
    /// The writes up to `seq` are durable: the safety data they carried is too. Only those:
    /// a later write may still be in flight, and what it seals must wait for it.
    pub(super) fn on_persisted(&mut self, seq: u64) {
        #[cfg(feature = "mutations")]
        if self.params.mutation == Some(crate::params::Mutation::PersistedCoversAll) {
            self.unpersisted.clear();
            return self.safety.persisted(self.persist_requested);
        }
        let mut version = None;
        while let Some(&(s, v)) = self.unpersisted.front() {
            if s > seq {
                break;
            }
            version = Some(v);
            self.unpersisted.pop_front();
        }
        if let Some(v) = version {
            self.safety.persisted(v);
        }
    }

    /// Fires the due timers one at a time, earliest first, looking again after each: firing
    /// one may re-arm a timer, which must not fire early. Each kind fires at most once a tick.
    pub(super) fn on_tick(&mut self) {
        let mut fired = [false; 2];
        loop {
            let due = self
                .timers
                .iter()
                .flatten()
                .filter(|(at, t)| *at <= self.now_ms && !fired[t.kind()])
                .min_by_key(|(at, t)| (*at, t.kind()))
                .copied();
            let Some((_, timer)) = due else { return };
            fired[timer.kind()] = true;
            self.timers[timer.kind()] = None;
            match timer {
                Timer::Round(r) => self.on_round_timer(r),
                Timer::Propose(r) => {
                    if r == self.round {
                        self.propose(true);
                    }
                }
            }
        }
    }

    /// Arms a timer `after_ms` from now, replacing the earlier one of its kind.
    pub(super) fn set_timer(&mut self, timer: Timer, after_ms: u64) {
        self.timers[timer.kind()] = Some((self.now_ms.saturating_add(after_ms), timer));
    }

    /// When the current round's timer fires (PM7 only ever brings it forward).
    pub(super) fn round_deadline_ms(&self) -> u64 {
        self.timers[0].map_or(u64::MAX, |(at, _)| at)
    }

    /// To a member of the epoch.
    pub(super) fn send(&mut self, to: NodeId, message: Message) {
        if let Ok(key) = self.config.public_key(to) {
            let to = *key;
            self.send_to(to, message);
        }
    }

    /// To any peer, member or not.
    pub(super) fn send_to(&mut self, to: PublicKey, message: Message) {
        self.step.messages.push(Outgoing { to: Target::One(to), message });
    }

    /// The key of a member of the epoch.
    pub(super) fn key_of(&self, id: Option<NodeId>) -> Option<PublicKey> {
        id.and_then(|id| self.config.public_key(id).ok()).copied()
    }

    pub(super) fn broadcast(&mut self, message: Message) {
        self.step.messages.push(Outgoing { to: Target::All, message });
    }

    pub(super) fn persist_block(&mut self, block: Block) {
        self.write.blocks.push(block);
    }

    /// Ends a step: releases every sealed message whose safety data is durable, then puts the
    /// safety data into the step's write if it changed (one write per step: group commit),
    /// numbers the write and reports the next timer deadline.
    pub(super) fn finish(&mut self) -> Step {
        self.reshare_stale();
        // Releasing our own vote or timeout can form a QC or TC, which changes the safety data
        // and may seal more messages: repeat until nothing more is released.
        while self.release_durable() > 0 {}
        // EP3: the epoch ended in this step; what was sealed in it is dropped with it.
        while let Some(change) = self.ending.take() {
            self.switch_epoch(change);
        }
        if self.safety.dirty() && self.persist_requested < self.safety.version() {
            self.persist_requested = self.safety.version();
            self.write.safety = Some(self.safety.data().clone());
        }
        let mut step = std::mem::take(&mut self.step);
        if !self.write.is_empty() {
            self.write_seq += 1;
            let mut write = std::mem::take(&mut self.write);
            write.seq = self.write_seq;
            if write.safety.is_some() {
                self.unpersisted.push_back((write.seq, self.persist_requested));
            }
            step.write = Some(write);
        }
        step.deadline_ms = self.timers.iter().flatten().map(|(at, _)| *at).min();
        debug_assert_eq!(self.validate(), Ok(()), "core invariant broken after a step");
        step
    }

    /// Sends every sealed message whose safety data is durable; returns how many.
    fn release_durable(&mut self) -> usize {
        let mut held = Vec::new();
        let mut released = 0;
        for ob in std::mem::take(&mut self.sealed) {
            match ob {
                Outbound::Proposal(p) => match self.safety.release(p) {
                    Ok(p) => {
                        released += 1;
                        self.broadcast(Message::Proposal(p));
                    }
                    Err(p) => held.push(Outbound::Proposal(p)),
                },
                Outbound::Vote { to, recorder, vote } => match self.safety.release(vote) {
                    Ok(vote) => {
                        released += 1;
                        self.send_vote(to, recorder, vote);
                    }
                    Err(vote) => held.push(Outbound::Vote { to, recorder, vote }),
                },
                Outbound::Timeout { timeout, tc } => match self.safety.release(timeout) {
                    Ok(t) => {
                        released += 1;
                        self.send_timeout(t, tc);
                    }
                    Err(timeout) => held.push(Outbound::Timeout { timeout, tc }),
                },
            }
        }
        // Messages sealed while releasing were pushed to `self.sealed`; keep both, in order.
        held.append(&mut self.sealed);
        self.sealed = held;
        released
    }

    pub(super) fn reject(&mut self, from: Option<NodeId>, reason: Rejection) {
        self.step.rejected.push((from, reason));
    }

    /// E1: keeps and emits evidence once per (signer, round, kind of statement); EV1 then asks
    /// for the signer's removal.
    pub(super) fn record_evidence(&mut self, ev: Equivocation) {
        let kind = std::mem::discriminant(&ev.first);
        if self.evidence.iter().any(|e| {
            e.signer == ev.signer && e.round == ev.round && std::mem::discriminant(&e.first) == kind
        }) {
            return;
        }
        let reason = Rejection::Equivocation { signer: ev.signer, round: ev.round };
        if self.evidence.len() >= self.params.evidence_max {
            self.evidence.remove(0);
        }
        let signer = ev.signer;
        self.evidence.push(ev.clone());
        self.step.evidence.push(ev.clone());
        self.reject(Some(signer), reason);
        self.remove_equivocator(ev);
    }

    /// M3: commands still pending `reshare_after_ms` after this member last shared them are
    /// shared again with every member, oldest first, at most one block's worth per half
    /// period. M1 shares a command once, as it arrives; when that share is lost (a silent cut,
    /// a peer restarting) at a member that never leads (not public, not verified public, or
    /// skipped by reputation: LR1, LR2), nothing else would bring the command to a leader.
    fn reshare_stale(&mut self) {
        #[cfg(feature = "mutations")]
        if self.params.mutation == Some(crate::params::Mutation::NoReshare) {
            return;
        }
        if self.now_ms < self.next_reshare_ms || self.mempool.is_empty() {
            return;
        }
        let after = self.params.reshare_after_ms;
        self.next_reshare_ms = self.now_ms + (after / 2).max(1);
        let count = self.params.payload_count_max.min(warpnet_types::message::SHARED_COMMANDS_MAX);
        let commands = self.mempool.stale(self.now_ms, after, count, self.params.payload_bytes_max);
        if !commands.is_empty() {
            let shared = warpnet_types::SharedCommands { epoch: self.config.epoch(), commands };
            self.broadcast(Message::Commands(shared));
        }
    }
}
