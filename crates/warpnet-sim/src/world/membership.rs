//! Committee changes in the simulated world: the operators' side (admissions and removals,
//! endorsed by a quorum of the current committee and submitted to a member, retried in the next
//! epoch until they take effect), and the epoch invariants: every honest replica ends each
//! epoch at the same block with the same next committee, and no certificate an honest replica
//! commits counts a key outside its epoch's committee.

use std::sync::Arc;

use warpnet_core::Write;
use warpnet_types::membership::{Admission, Change, Endorsed, Endorsement, Grounds};
use warpnet_types::{Block, ConsensusConfig, Participant};

use super::{Event, World};
use crate::config::Op;
use crate::invariants::Violation;

/// The address change number `index` of the schedule gives replica `idx`.
fn updated_address(idx: usize, index: usize) -> String {
    format!("sim-replica-{idx}-change-{index}")
}

/// How long after an attempt the world tries a change again if it has not taken effect.
const RETRY_MS: u64 = 300;

impl World {
    /// The committee of the latest epoch some honest replica reached.
    fn latest_config(&self) -> Arc<ConsensusConfig> {
        self.configs.values().next_back().cloned().unwrap_or_else(|| self.config.clone())
    }

    /// Whether the change is already in effect (or can never be: then it is skipped).
    fn change_done(&self, index: usize, op: Op, config: &ConsensusConfig) -> bool {
        let (Op::Add(idx) | Op::Remove(idx) | Op::Update(idx)) = op;
        if idx >= self.replicas.len() || self.replicas[idx].gone {
            // A schedule drawn for another committee (a test changed `nodes`), or a replica
            // that stopped for good: its operators have nothing to do.
            return true;
        }
        match op {
            Op::Add(idx) => {
                let key = self.replicas[idx].key;
                config.node_id_of(&key).is_some() || config.is_retired(&key)
            }
            Op::Remove(idx) => config.node_id_of(&self.replicas[idx].key).is_none(),
            Op::Update(idx) => {
                let key = self.replicas[idx].key;
                match config.node_id_of(&key).and_then(|id| config.participant(id).ok()) {
                    Some(p) => p.address == updated_address(idx, index),
                    None => true, // no longer a member: nothing to update
                }
            }
        }
    }

    /// (Re)schedules the operators' next attempt, replacing the one scheduled before.
    fn schedule_membership(&mut self, at: u64) {
        self.membership_gen += 1;
        self.schedule(at, Event::Membership(self.membership_gen));
    }

    /// Submits the next change, as its operators would: signed by the candidate, endorsed by a
    /// quorum of the current committee, given to a running member.
    pub(super) fn next_membership_change(&mut self) {
        let config = self.latest_config();
        while let Some(op) = self.cfg.membership.get(self.next_change).map(|c| c.op) {
            if !self.change_done(self.next_change, op, &config) {
                break;
            }
            self.next_change += 1;
        }
        let Some(op) = self.cfg.membership.get(self.next_change).map(|c| c.op) else { return };
        let change = self.endorsed_change(op, &config);
        let members: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.honest(i))
            .filter(|&i| {
                self.replicas[i]
                    .core
                    .as_ref()
                    .is_some_and(|c| c.id().is_some() && c.config().epoch() == config.epoch())
            })
            .collect();
        if !members.is_empty() {
            let at = members[self.rng.index(members.len())];
            let now = self.now;
            if let Some(core) = self.replicas[at].core.as_mut() {
                let (_, step) = core.submit(now, vec![change.to_command()]);
                self.apply(at, step);
            }
        }
        self.schedule_membership(self.now + RETRY_MS);
    }

    fn endorsed_change(&mut self, op: Op, config: &ConsensusConfig) -> Change {
        let quorum = config.quorum_threshold();
        let endorse = |world: &Self, what: &Endorsed| -> Vec<Endorsement> {
            config
                .participants()
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let r = world.replicas.iter().find(|r| r.key == p.public_key)?;
                    let id = warpnet_types::NodeId(i as u16);
                    Some(Endorsement::sign(config, id, what, r.signer.as_ref()))
                })
                .take(quorum)
                .collect()
        };
        match op {
            Op::Add(idx) => {
                let r = &self.replicas[idx];
                let candidate = Participant {
                    public_key: r.key,
                    address: format!("sim-replica-{idx}"),
                    api_address: String::new(),
                    public: true,
                };
                let mut nonce = [0u8; 16];
                nonce[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
                let admission =
                    Admission::sign(config.network(), candidate, nonce, r.signer.as_ref());
                let endorsements = endorse(self, &Endorsed::Add(admission.digest()));
                Change::Add { admission, endorsements }
            }
            Op::Update(idx) => {
                let r = &self.replicas[idx];
                let mut member = config
                    .node_id_of(&r.key)
                    .and_then(|id| config.participant(id).ok())
                    .cloned()
                    .unwrap_or_else(|| Participant {
                        public_key: r.key,
                        address: String::new(),
                        api_address: String::new(),
                        public: true,
                    });
                member.address = updated_address(idx, self.next_change);
                let mut nonce = [0u8; 16];
                nonce[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
                Change::Update(warpnet_types::membership::Update::sign(
                    config,
                    member,
                    nonce,
                    self.replicas[idx].signer.as_ref(),
                ))
            }
            Op::Remove(idx) => {
                let key = self.replicas[idx].key;
                let reason = format!("simulated removal of replica {idx}");
                let what = Endorsed::Remove { key, reason: reason.clone() };
                Change::Remove { key, reason, grounds: Grounds::Endorsed(endorse(self, &what)) }
            }
        }
    }

    /// A replica that left the committee stops for good (with `handover_faults`): it may be
    /// the only one holding the proof of the epoch's end, and the others must not need it.
    pub(super) fn leave_for_good(&mut self, idx: usize) {
        if !self.cfg.handover_faults || self.after_gst || self.replicas[idx].gone {
            return;
        }
        self.replicas[idx].gone = true;
        self.stats.crashes += 1;
        let r = &mut self.replicas[idx];
        r.core = None;
        r.disk.crash();
        r.incarnation += 1;
        r.wake = None;
        self.sync_reports();
    }

    /// EP3 seen from outside (epoch end): an honest replica that commits a block carrying a
    /// committee change ends its epoch at that block, in the same step, and commits nothing
    /// after it in that epoch (EP1 lets only valid changes into blocks).
    pub(super) fn check_epoch_end(&mut self, idx: usize, step: &warpnet_core::Step) {
        let commits = step.commits();
        let Some(at) = commits.iter().position(|c| {
            c.block
                .payload()
                .iter()
                .any(|cmd| warpnet_types::membership::Change::from_command(cmd).is_some())
        }) else {
            return;
        };
        let change = &commits[at].block;
        let ended = step
            .write
            .as_ref()
            .and_then(|w| w.epoch.as_ref())
            .and_then(|e| e.end.block())
            .is_some_and(|b| b.id() == change.id());
        let after = commits[at + 1..].iter().any(|c| c.block.epoch() == change.epoch());
        if !ended || after {
            let detail = format!(
                "replica {idx} committed the committee change in {change:?} but {}",
                if ended {
                    "committed blocks after it in its epoch"
                } else {
                    "did not end its epoch there"
                }
            );
            self.inv.record(Some(Violation { invariant: "epoch-end", at_ms: self.now, detail }));
        }
    }

    /// EP3 seen from outside: the first honest replica to end an epoch fixes its end and the
    /// next committee; every other honest replica must reach exactly the same.
    pub(super) fn check_epoch_change(&mut self, idx: usize, w: &Write) {
        let Some(change) = &w.epoch else { return };
        let next = &change.next;
        let end_block = change.end.block().map(Block::id);
        match self.configs.get(&next.epoch()) {
            Some(known) if known.digest() != next.digest() => {
                let detail = format!(
                    "replica {idx} started epoch {} with committee {}, another honest replica with {}",
                    next.epoch(),
                    next.digest(),
                    known.digest()
                );
                self.inv.record(Some(Violation {
                    invariant: "epoch-agreement",
                    at_ms: self.now,
                    detail,
                }));
            }
            Some(_) => {}
            None => {
                self.configs.insert(next.epoch(), next.clone());
                self.stats.epochs += 1;
                // The operators of the next change need not wait for their retry timer.
                if self.next_change < self.cfg.membership.len() {
                    let at = self.now.max(self.cfg.membership[self.next_change].at_ms);
                    self.schedule_membership(at + 1);
                }
                if self.cfg.handover_faults {
                    // The first leader of the new epoch crashes as the epoch begins (LR3: as
                    // the health carried from the ended epoch names it, H5).
                    let carried = change.end.block().and_then(|b| b.health().summary.clone());
                    let health = warpnet_core::health::Health::compute(
                        next,
                        &[],
                        warpnet_types::Height(0),
                        carried.as_ref(),
                    );
                    let since = warpnet_core::health::Since::clean(warpnet_types::Round(0));
                    let first = health.leader(next, since, warpnet_types::Round(1));
                    let leader = next.public_key(first).ok().copied();
                    if let Some(i) =
                        (0..self.replicas.len()).find(|&i| Some(self.replicas[i].key) == leader)
                    {
                        self.schedule(self.now, Event::Crash(i));
                    }
                }
            }
        }
        if let (Some(id), Some(start)) = (end_block, next.start()) {
            if start.after != id {
                let detail =
                    format!("replica {idx}: the next committee does not start after the end block");
                self.inv.record(Some(Violation {
                    invariant: "epoch-agreement",
                    at_ms: self.now,
                    detail,
                }));
            }
        }
    }

    /// No vote of a key outside the epoch's committee is ever counted: every QC in a block an
    /// honest replica commits verifies against that epoch's committee as the world recorded it
    /// (independently of the replica). Checked once per certificate.
    pub(super) fn check_certificate_signers(&mut self, idx: usize, block: &Block) {
        let qc = block.justify();
        if qc.round().0 == 0 || !self.checked_certificates.insert(qc.block_id()) {
            return; // a genesis certificate carries no votes; or checked already
        }
        let Some(config) = self.configs.get(&qc.epoch()) else { return };
        if let Err(e) = qc.validate(config) {
            let detail = format!(
                "replica {idx} committed a block whose QC does not verify against epoch {}'s committee: {e}",
                qc.epoch()
            );
            self.inv.record(Some(Violation {
                invariant: "committee-votes",
                at_ms: self.now,
                detail,
            }));
        }
    }
}
