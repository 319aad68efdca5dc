//! Runs one input on one replica and carries out the engine's actions exactly as the contract
//! says: durable effects through the disk's FIFO (acknowledged when durable), messages through
//! the faulty network, applies to the live state machine, reads checked; then the invariants.

use warpnet_raft::{Action, Applied, Input, ReadId};
use warpnet_types::NodeId;

use super::app::App;
use super::disk::{app_kind, Effect};
use super::world::{Event, RaftWorld};

impl RaftWorld {
    /// Returns whether the engine accepted the input.
    pub(super) fn input(&mut self, i: usize, input: Input) -> bool {
        let Some(engine) = self.replicas[i].engine.as_mut() else { return false };
        // raft-rs panics on states it proves impossible (a commit index beyond the log: an
        // acknowledged entry lost). A node would stop there; the simulator reports it.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.handle(input)));
        let actions = match outcome {
            Ok(Ok(a)) => a,
            Ok(Err(_)) => {
                self.stats.refused += 1;
                return false;
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                    .unwrap_or_default();
                self.replicas[i].engine = None;
                let detail = format!("replica {i}: raft-rs stopped on an impossible state: {what}");
                let v = super::invariants::Violation {
                    invariant: "engine-panic",
                    at_ms: self.now,
                    detail,
                };
                self.inv.record(Some(v));
                return false;
            }
        };
        let mut compact = false;
        for a in actions {
            match a {
                Action::Send(m) => self.transmit(i, &m),
                Action::Persist(w) => {
                    if self.cfg.answer_at_append {
                        let commands = w.entries.iter().filter(|e| {
                            e.kind == warpnet_raft::EntryKind::Normal && !e.data.is_empty()
                        });
                        for e in commands {
                            self.acknowledged.entry(e.data.clone()).or_insert(e.index);
                        }
                    }
                    let latency = self.rng.range(0, self.cfg.faults.disk_latency_ms_max);
                    self.durable(i, latency, Effect::Log(w));
                }
                Action::Apply(a) => self.apply(i, a),
                Action::ReadReady { id: ReadId(id), index } => {
                    let v = self.inv.reads.on_ready(i, id, index, self.now);
                    self.inv.record(v);
                }
                Action::ReadFailed { id: ReadId(id) } => self.inv.reads.on_failed(i, id),
                Action::SnapshotWanted { .. } => compact = true,
            }
        }
        self.check_status(i);
        let Some(status) = self.replicas[i].engine.as_ref().map(|e| e.status()) else {
            return true;
        };
        let due = compact || status.applied >= status.snapshot_index + self.cfg.compact_every;
        if due && status.applied > status.snapshot_index {
            self.stats.compactions += 1;
            let data = self.replicas[i].app.encode();
            self.input(i, Input::Compact { index: status.applied, data });
        }
        true
    }

    fn durable(&mut self, i: usize, latency: u64, e: Effect) {
        let incarnation = self.replicas[i].incarnation;
        let at = self.replicas[i].disk.push(self.now, latency, e);
        self.schedule(at, Event::Disk { replica: i, incarnation });
    }

    fn apply(&mut self, i: usize, a: Applied) {
        let index = a.index();
        let (membership, snapshot) = match &a {
            Applied::Snapshot { data, membership, .. } => {
                self.stats.snapshots_installed += 1;
                match App::decode(data) {
                    Ok(app) if app.applied == index => {
                        for c in &app.commands {
                            self.inv.liveness.on_apply(i, c);
                            self.acknowledged.entry(c.clone()).or_insert(index);
                        }
                        self.replicas[i].app = app;
                    }
                    other => {
                        let detail = format!("replica {i}: snapshot at {index} holds {other:?}");
                        let v = super::invariants::Violation {
                            invariant: "snapshot",
                            at_ms: self.now,
                            detail,
                        };
                        return self.inv.record(Some(v));
                    }
                }
                (Some(membership.clone()), true)
            }
            Applied::Membership { membership, .. } => {
                let (kind, data) = app_kind(&a);
                self.replicas[i].app.apply(index, kind, data);
                (Some(membership.clone()), false)
            }
            _ => {
                let (kind, data) = app_kind(&a);
                self.replicas[i].app.apply(index, kind, data);
                (None, false)
            }
        };
        if let Applied::Command { data, .. } = &a {
            self.stats.applied_commands += 1;
            self.inv.liveness.on_apply(i, data);
            self.acknowledged.entry(data.clone()).or_insert(index);
        }
        let v = self.inv.applied_once.on_apply(i, index, snapshot, self.now);
        self.inv.record(v);
        let chain = self.replicas[i].app.chain;
        let v = self.inv.agreement.on_apply(i, index, chain, self.now);
        self.inv.record(v);
        // The state machine's effect is durable with the applied index, after earlier writes.
        let app = self.replicas[i].app.clone();
        self.durable(i, 0, Effect::App { app, membership });
    }

    fn check_status(&mut self, i: usize) {
        let Some(s) = self.replicas[i].engine.as_ref().map(|e| e.status()) else { return };
        let public = self.cfg.is_public(i);
        let v = self.inv.public_leader.check(NodeId(i as u16), public, s.role, s.term, self.now);
        self.inv.record(v);
        if s.role == warpnet_raft::Role::Leader {
            let v = self.inv.election_safety.on_leader(s.term, NodeId(i as u16), self.now);
            self.inv.record(v);
        }
        let v = self.inv.log_growth.on_status(i, s.term, s.commit, self.now);
        self.inv.record(v);
    }
}
