//! Executing a replica's step, exactly as the node does (see `warpnet_core::Step`): its write
//! goes to the disk's queue (the replica goes on while it is in flight), its commits are
//! checked by the invariants, its messages are sent, sync is answered from the disk, and the
//! replica is woken at its deadline. The core's own invariants are checked after every step.

use warpnet_core::{Step, Target as To, Write};
use warpnet_types::epoch::EPOCH_PROOF_ENDS_MAX;
use warpnet_types::{EpochProofMsg, Message, PublicKey};

use super::{message_round, Event, World};
use crate::byzantine::Target;
use crate::invariants::Violation;

impl World {
    pub(super) fn apply(&mut self, idx: usize, step: Step) {
        let honest = self.honest(idx);
        if honest {
            self.check_commits(idx, &step);
            self.check_epoch_end(idx, &step);
        }
        let Step { write, messages, serve_sync, serve_epochs, evidence, rejected, deadline_ms } =
            step;
        let changed_epoch = write.as_ref().is_some_and(|w| w.epoch.is_some());
        // A member of the epoch that ended, outside the next one: it leaves the committee.
        let key = self.replicas[idx].key;
        let left = write.as_ref().and_then(|w| w.epoch.as_ref()).is_some_and(|c| {
            let ended =
                self.configs.get(&c.end.epoch()).cloned().unwrap_or_else(|| self.config.clone());
            ended.node_id_of(&key).is_some() && c.next.node_id_of(&key).is_none()
        });
        if let Some(w) = write {
            if honest {
                self.check_epoch_change(idx, &w);
            }
            self.disk_write(idx, w);
        }
        let mut sends = Vec::with_capacity(messages.len() + serve_sync.len());
        for out in messages {
            if honest {
                self.check_outgoing(idx, &out.message);
                self.answer_at_certificate(idx, &out.message);
            }
            let target = match out.to {
                To::One(key) => Target::Key(key),
                To::All => Target::All,
            };
            sends.push((target, out.message));
        }
        for (to, request) in serve_sync {
            let disk = &self.replicas[idx].disk;
            let max = usize::from(self.cfg.params.sync_blocks_max);
            let response = warpnet_core::sync::respond(&request, max, |id| disk.lookup(id));
            sends.push((Target::Key(to), Message::SyncResponse(response)));
        }
        for (to, from) in serve_epochs {
            sends.push((Target::Key(to), self.epoch_proof(idx, from)));
        }
        for ev in evidence {
            self.stats.evidence += 1;
            if self.key_in(ev.epoch, ev.signer).is_some_and(|k| self.honest_key(&k)) {
                let detail = format!(
                    "replica {idx} holds evidence against honest node {}: {ev:?}",
                    ev.signer
                );
                self.inv.record(Some(Violation {
                    invariant: "no-double-vote",
                    at_ms: self.now,
                    detail,
                }));
            }
        }
        for (_, reason) in rejected {
            self.stats.rejected += 1;
            if honest {
                *self.stats.rejected_by_kind.entry(reason.kind()).or_default() += 1;
            }
        }
        self.wake_at(idx, deadline_ms);
        if let Some(Err(e)) = self.replicas[idx].core.as_ref().map(warpnet_core::Core::validate) {
            let detail = format!("replica {idx}: {e}");
            self.inv.record(Some(Violation {
                invariant: "core-invariant",
                at_ms: self.now,
                detail,
            }));
        }
        if changed_epoch {
            // PM7: a new committee, new members to report on.
            self.reported[idx].clear();
            self.sync_reports();
        }

        let r = &mut self.replicas[idx];
        let member = r.core.as_ref().and_then(|c| c.id().map(|me| (c.config().clone(), me)));
        let out = match (r.byz.as_mut(), member) {
            (Some(b), Some((config, me))) => {
                b.distort(&config, me, r.signer.as_ref(), r.core.as_ref(), sends)
            }
            (Some(_), None) => Vec::new(), // outside the committee, the adversary keeps quiet
            (None, _) => sends
                .into_iter()
                .map(|(t, m)| (t, m.to_frame().into(), message_round(&m)))
                .collect(),
        };
        self.send_outgoing(idx, out);
        if left {
            self.leave_for_good(idx);
        }
    }

    /// HA1 broken on purpose ([`crate::invariants::AnswerPoint::Certificate`]): a leader's
    /// proposal carries a certificate of its parent, whose commands it answers at once.
    fn answer_at_certificate(&mut self, idx: usize, message: &Message) {
        if self.answer_point != crate::invariants::AnswerPoint::Certificate {
            return;
        }
        let Message::Proposal(p) = message else { return };
        let certified = p.block.justify().block_id();
        let core = self.replicas[idx].core.as_ref();
        if let Some(b) = core.and_then(|c| c.block(&certified)) {
            let (h, payload) = (b.height(), b.payload().clone());
            self.inv.acknowledged.on_answer(idx, h, certified, &payload);
        }
    }

    /// The agreement, chain-growth, committed-once and liveness invariants see every commit of
    /// an honest replica as it is decided.
    fn check_commits(&mut self, idx: usize, step: &Step) {
        for c in step.commits() {
            self.stats.commits += 1;
            self.check_certificate_signers(idx, &c.block);
            let (h, id, now) = (c.block.height(), c.block.id(), self.now);
            let v = self.inv.agreement.on_commit(idx, h, id, now);
            self.inv.record(v);
            let v = self.inv.chain_growth.on_commit(idx, &c.block, now);
            self.inv.record(v);
            let v = self.inv.committed_once.on_commit(idx, h, c.block.payload(), now);
            self.inv.record(v);
            // HA1: the node answers its clients here, when the step commits the block.
            if self.answer_point == crate::invariants::AnswerPoint::Commit {
                self.inv.acknowledged.on_answer(idx, h, id, c.block.payload());
            }
            let v = self.inv.acknowledged.on_commit(idx, h, id, c.block.payload(), now);
            self.inv.record(v);
            self.inv.liveness.on_commit(idx, c.block.payload());
            self.check_health(idx, &c.block);
        }
    }

    /// H3 and the health records: an honest replica's health seen from each block it commits
    /// must match every other honest replica's (health agreement), and what the block records
    /// must be what its ancestry gives (health records: what voters let through).
    fn check_health(&mut self, idx: usize, block: &warpnet_types::Block) {
        let Some(core) = self.replicas[idx].core.as_ref() else { return };
        if block.epoch() != core.config().epoch() || block.round() == warpnet_types::Round(0) {
            return; // the epoch ended in this step: its history is gone with it
        }
        let now = self.now;
        // Committed in a batch, a block's window may reach below the history the core keeps
        // (`warpnet_core::health::history_len`): other replicas check it.
        let recent = block.height().0 + 2 >= core.status().committed_height.0;
        let health = core.health_seen_from(block.id()).filter(|_| recent);
        let config = core.config().clone();
        let v = self.inv.reputation.on_commit(&config, block, health.as_deref(), now);
        self.inv.record(v);
        let Some(health) = health else { return };
        let fair = self.fair_keys();
        let undialable: Vec<_> =
            self.cfg.undialable.iter().map(|&i| self.replicas[i].key).collect();
        let proposer =
            config.public_key(block.proposer()).copied().unwrap_or(self.replicas[idx].key);
        let v = self.inv.fairness.on_commit(
            &config,
            (block.height(), proposer),
            &health,
            (&fair, &undialable),
            now,
        );
        self.inv.record(v);
        let leader_health =
            self.replicas[idx].core.as_ref().and_then(|c| c.health_for_child_of(block.parent()));
        if let Some(h) = leader_health {
            let v = crate::invariants::reachability::check(block, proposer, &h, &undialable, now);
            self.inv.record(v);
        }
        let v = self.inv.health_agreement.on_commit(idx, block.id(), health, now);
        self.inv.record(v);
        let Some(core) = self.replicas[idx].core.as_ref() else { return };
        if let Some(Err(e)) = core.audit(block) {
            self.inv.record(Some(Violation {
                invariant: "health-records",
                at_ms: now,
                detail: format!("replica {idx} committed {block:?}, whose records are wrong: {e}"),
            }));
        }
    }

    /// Arms the replica's one wake-up at the core's deadline (replacing the earlier one).
    fn wake_at(&mut self, idx: usize, deadline_ms: Option<u64>) {
        let r = &mut self.replicas[idx];
        if r.wake.map(|(at, _)| at) == deadline_ms {
            return;
        }
        r.wake_gen += 1;
        let (gen, incarnation) = (r.wake_gen, r.incarnation);
        r.wake = deadline_ms.map(|at| (at, gen));
        if let Some(at) = deadline_ms {
            self.schedule(at.max(self.now), Event::Wake { replica: idx, incarnation, gen });
        }
    }

    /// Records honest votes and timeouts (including votes proven by QCs in proposals), by
    /// signer key and epoch.
    fn check_outgoing(&mut self, idx: usize, m: &Message) {
        let key = self.replicas[idx].key;
        let now = self.now;
        let v = match m {
            Message::Vote(v) => {
                self.inv.no_double_vote.on_vote(key, v.epoch, v.round, v.block_id, now)
            }
            Message::Timeout(t) => self.inv.no_double_vote.on_timeout(
                key,
                t.timeout.epoch,
                t.timeout.round,
                t.timeout.high_qc_round(),
                now,
            ),
            Message::Proposal(p) => {
                let qc = p.block.justify();
                let voters: Vec<PublicKey> = qc
                    .voters()
                    .iter()
                    .filter_map(|v| self.key_in(qc.epoch(), v))
                    .filter(|k| self.honest_key(k))
                    .collect();
                let mut found = None;
                for voter in voters {
                    found = found.or(self.inv.no_double_vote.on_vote(
                        voter,
                        qc.epoch(),
                        qc.round(),
                        qc.block_id(),
                        now,
                    ));
                }
                found
            }
            _ => None,
        };
        self.inv.record(v);
    }

    /// EP4, answered as a node answers it: the ends on this replica's disk from `from` on, and
    /// its core's latest commit proof.
    fn epoch_proof(&self, idx: usize, from: warpnet_types::Epoch) -> Message {
        let r = &self.replicas[idx];
        let ends = r.disk.epoch_ends(from, EPOCH_PROOF_ENDS_MAX);
        let (epoch, latest) = match r.core.as_ref() {
            Some(c) => (c.config().epoch(), c.latest_commit().cloned()),
            None => (self.config.epoch(), None),
        };
        Message::EpochProof(EpochProofMsg { epoch, ends, latest })
    }

    fn disk_write(&mut self, idx: usize, w: Write) {
        let latency = self.rng.range(0, self.cfg.faults.disk_latency_ms_max);
        let r = &mut self.replicas[idx];
        let done = r.disk.write(self.now, latency, w);
        let incarnation = r.incarnation;
        self.schedule(done, Event::Disk { replica: idx, incarnation });
    }
}
