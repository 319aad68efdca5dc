//! Executing a replica's actions: disks, timers, commits (checked by the invariants), sync.

use warpnet_core::Action;
use warpnet_types::codec::Encode;
use warpnet_types::{Message, NodeId};

use super::{message_round, timer_key, Event, World};
use crate::byzantine::Target;
use crate::invariants::Violation;
use crate::storage::Write;

impl World {
    pub(super) fn apply(&mut self, idx: usize, actions: Vec<Action>) {
        let honest = self.honest(idx);
        let mut sends = Vec::new();
        for action in actions {
            match action {
                Action::Send { to, message } => {
                    if honest {
                        self.check_outgoing(idx, &message);
                    }
                    sends.push((Target::Node(to), message));
                }
                Action::Broadcast { message } => {
                    if honest {
                        self.check_outgoing(idx, &message);
                    }
                    sends.push((Target::All, message));
                }
                Action::PersistSafety { version, data } => {
                    self.disk_write(idx, Write::Safety { version, bytes: data.to_bytes() })
                }
                Action::PersistBlock(b) => self.disk_write(idx, Write::Block(b)),
                Action::Commit(c) => {
                    if honest {
                        self.stats.commits += 1;
                        let (h, id, now) = (c.block.height(), c.block.id(), self.now);
                        let v = self.inv.agreement.on_commit(idx, h, id, now);
                        self.inv.record(v);
                        let v = self.inv.chain_growth.on_commit(idx, &c.block, now);
                        self.inv.record(v);
                        let v = self.inv.committed_once.on_commit(idx, h, c.block.payload(), now);
                        self.inv.record(v);
                        self.inv.liveness.on_commit(idx, c.block.payload());
                    }
                    self.disk_write(idx, Write::Commit(c));
                }
                Action::SetTimer { timer, after_ms } => {
                    let r = &mut self.replicas[idx];
                    let gen = r.timers.entry(timer_key(timer)).or_insert(0);
                    *gen += 1;
                    let (gen, incarnation) = (*gen, r.incarnation);
                    self.schedule(
                        self.now + after_ms,
                        Event::Timer { replica: idx, incarnation, timer, gen },
                    );
                }
                Action::ServeSync { to, request } => {
                    let disk = &self.replicas[idx].disk;
                    let max = usize::from(self.cfg.params.sync_blocks_max);
                    let response = warpnet_core::sync::respond(&request, max, |id| disk.lookup(id));
                    sends.push((Target::Node(to), Message::SyncResponse(response)));
                }
                Action::Evidence(ev) => {
                    self.stats.evidence += 1;
                    if self.honest_node(ev.signer) {
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
                Action::Rejected { reason, .. } => {
                    self.stats.rejected += 1;
                    if honest {
                        *self.stats.rejected_by_kind.entry(reason.kind()).or_default() += 1;
                    }
                }
            }
        }
        let r = &mut self.replicas[idx];
        let out = match r.byz.as_mut() {
            Some(b) => b.distort(&self.config, r.node, r.signer.as_ref(), sends),
            None => sends
                .into_iter()
                .map(|(t, m)| (t, m.to_frame().into(), message_round(&m)))
                .collect(),
        };
        self.send_outgoing(idx, out);
    }

    /// Records honest votes and timeouts (including votes proven by QCs in proposals).
    fn check_outgoing(&mut self, idx: usize, m: &Message) {
        let node = self.replicas[idx].node;
        let now = self.now;
        let v = match m {
            Message::Vote(v) => self.inv.no_double_vote.on_vote(node, v.round, v.block_id, now),
            Message::Timeout(t) => self.inv.no_double_vote.on_timeout(
                node,
                t.timeout.round,
                t.timeout.high_qc_round(),
                now,
            ),
            Message::Proposal(p) => {
                let qc = p.block.justify();
                let voters: Vec<NodeId> =
                    qc.voters().iter().filter(|&v| self.honest_node(v)).collect();
                let mut found = None;
                for voter in voters {
                    found = found.or(self.inv.no_double_vote.on_vote(
                        voter,
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

    fn disk_write(&mut self, idx: usize, w: Write) {
        let latency = self.rng.range(0, self.cfg.faults.disk_latency_ms_max);
        let r = &mut self.replicas[idx];
        let done = r.disk.write(self.now, latency, w);
        let incarnation = r.incarnation;
        self.schedule(done, Event::Disk { replica: idx, incarnation });
    }
}
