//! The simulated Raft world: replicas running the Raft engine, a faulty network, lossy disks
//! and a virtual clock, driven by one seeded event queue (a seed replays a run exactly).

use std::rc::Rc;

use warpnet_raft::{
    EngineConfig, Input, Member, Membership, RaftEngine, RaftMessage, ReadId, Recovery, Role,
};
use warpnet_types::NodeId;

use super::app::App;
use super::config::RaftSimConfig;
use super::disk::RaftDisk;
use super::invariants::{RaftInvariants, Violation};
use super::report::{RaftReport, RaftStats};
use crate::events::EventQueue;
use crate::rng::Rng;

pub(super) struct Replica {
    pub engine: Option<RaftEngine>,
    pub disk: RaftDisk,
    /// The live state machine (the durable one is on the disk).
    pub app: App,
    pub incarnation: u64,
    pub next_read: u64,
}

pub(super) enum Event {
    Deliver {
        to: usize,
        from: NodeId,
        bytes: Rc<[u8]>,
    },
    Tick {
        replica: usize,
        incarnation: u64,
    },
    Disk {
        replica: usize,
        incarnation: u64,
    },
    Crash(usize),
    Restart(usize),
    /// A client submits (or re-submits) command `cmd` until some replica applies it.
    Client {
        cmd: Rc<[u8]>,
    },
    Read,
    Membership,
    Partition,
    Gst,
}

pub struct RaftWorld {
    pub(super) cfg: RaftSimConfig,
    pub(super) rng: Rng,
    pub(super) now: u64,
    queue: EventQueue<Event>,
    pub(super) replicas: Vec<Replica>,
    pub(super) inv: RaftInvariants,
    pub(super) partition: Option<Vec<u8>>,
    pub(super) after_gst: bool,
    /// Commands some replica applied (a client would have its answer), with the index at
    /// which the first answer came.
    pub(super) acknowledged: std::collections::BTreeMap<Vec<u8>, u64>,
    pub(super) stats: RaftStats,
}

impl RaftWorld {
    pub fn new(cfg: RaftSimConfig) -> Self {
        let rng = Rng::new(cfg.seed);
        let founders = Membership::new(
            cfg.publics
                .iter()
                .enumerate()
                .map(|(i, &p)| Member { id: NodeId(i as u16), public: p })
                .collect(),
        );
        let replicas = (0..cfg.members())
            .map(|i| {
                let initial = if i < cfg.publics.len() {
                    Recovery::genesis(founders.clone())
                } else {
                    Recovery::joining()
                };
                let app = if i < cfg.publics.len() { App::genesis() } else { App::default() };
                Replica {
                    engine: None,
                    disk: RaftDisk::new(&initial, app.clone()),
                    app,
                    incarnation: 0,
                    next_read: 0,
                }
            })
            .collect();
        Self {
            cfg,
            rng,
            now: 0,
            queue: EventQueue::default(),
            replicas,
            inv: RaftInvariants::default(),
            partition: None,
            after_gst: false,
            acknowledged: std::collections::BTreeMap::new(),
            stats: RaftStats::default(),
        }
    }

    pub(super) fn schedule(&mut self, at: u64, event: Event) {
        self.queue.schedule(at, event);
    }

    /// Runs the safety phase (faults until GST), then the liveness phase.
    pub fn run(mut self) -> RaftReport {
        let n = self.replicas.len();
        for i in 0..n {
            self.boot(i);
        }
        let gst = self.cfg.faults.gst_ms;
        for c in 0..self.cfg.payloads {
            let at = self.rng.range(0, gst);
            let cmd: Rc<[u8]> = format!("s{}-c{c}", self.cfg.seed).into_bytes().into();
            self.schedule(at, Event::Client { cmd });
        }
        for _ in 0..self.cfg.faults.crashes {
            let at = self.rng.range(0, gst.saturating_sub(100));
            let victim = self.rng.index(n);
            self.schedule(at, Event::Crash(victim));
        }
        for _ in 0..self.cfg.membership_changes {
            let at = self.rng.range(100, gst.saturating_sub(100).max(100));
            self.schedule(at, Event::Membership);
        }
        for _ in 0..self.cfg.reads {
            let at = self.rng.range(0, gst + 2_000);
            self.schedule(at, Event::Read);
        }
        if self.cfg.faults.partitions {
            let at = self.rng.range(0, gst / 2);
            self.schedule(at, Event::Partition);
        }
        self.schedule(gst, Event::Gst);
        while let Some((time, event)) = self.queue.pop() {
            self.now = time;
            self.stats.steps += 1;
            if self.stats.steps > self.cfg.max_steps {
                self.inv.record(Some(Violation::step_budget(self.cfg.max_steps, self.now)));
                break;
            }
            self.dispatch(event);
            if self.after_gst {
                let voters = self.voters();
                if self.inv.liveness.done(&voters) {
                    break;
                }
                let v = self.inv.liveness.check(&voters, self.now);
                if v.is_some() {
                    self.inv.record(v);
                    break;
                }
            }
            if !self.inv.violations.is_empty() {
                break;
            }
        }
        let voters = self.voters();
        if self.inv.violations.is_empty() && self.inv.liveness.done(&voters) {
            let holders: Vec<_> = voters
                .iter()
                .map(|&v| {
                    (v, self.replicas[v].app.applied, self.replicas[v].app.commands.as_slice())
                })
                .collect();
            let v = super::invariants::acknowledged::check(&self.acknowledged, &holders, self.now);
            self.inv.record(v);
        }
        self.report()
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, bytes } => self.deliver(to, from, &bytes),
            Event::Tick { replica, incarnation } => {
                if self.replicas[replica].incarnation == incarnation
                    && self.replicas[replica].engine.is_some()
                {
                    self.input(replica, Input::Tick);
                    let next = self.now + self.cfg.tick_ms;
                    self.schedule(next, Event::Tick { replica, incarnation });
                }
            }
            Event::Disk { replica, incarnation } => {
                if self.replicas[replica].incarnation == incarnation {
                    if let Some(id) = self.replicas[replica].disk.complete(self.now) {
                        self.input(replica, Input::Persisted(id));
                    }
                }
            }
            Event::Crash(i) => self.crash(i),
            Event::Restart(i) => {
                if self.replicas[i].engine.is_none() {
                    self.boot(i);
                }
            }
            Event::Client { cmd } => self.client(cmd),
            Event::Read => self.read(),
            Event::Membership => self.change_membership(),
            Event::Partition => self.repartition(),
            Event::Gst => self.gst(),
        }
    }

    /// Starts (or restarts) a replica from what its disk kept.
    fn boot(&mut self, i: usize) {
        let recovery = self.replicas[i].disk.recovery();
        let (term, applied) = (recovery.hard_state.term, recovery.applied);
        let config = EngineConfig {
            me: NodeId(i as u16),
            params: self.cfg.params.clone(),
            seed: self.cfg.seed.wrapping_mul(31).wrapping_add(self.replicas[i].incarnation),
        };
        match RaftEngine::new(config, recovery) {
            Ok(e) => self.replicas[i].engine = Some(e),
            Err(e) => {
                let detail = format!("replica {i} cannot restart from its disk: {e}");
                return self.inv.record(Some(Violation {
                    invariant: "recovery",
                    at_ms: self.now,
                    detail,
                }));
            }
        }
        let r = &mut self.replicas[i];
        r.app = r.disk.durable.app.clone();
        self.inv.applied_once.on_start(i, applied);
        let v = self.inv.log_growth.on_start(i, term, applied, self.now);
        self.inv.record(v);
        let incarnation = self.replicas[i].incarnation;
        let at = self.now + 1 + self.rng.range(0, self.cfg.tick_ms);
        self.schedule(at, Event::Tick { replica: i, incarnation });
    }

    fn crash(&mut self, i: usize) {
        if self.after_gst || self.replicas[i].engine.is_none() {
            return;
        }
        self.stats.crashes += 1;
        let r = &mut self.replicas[i];
        r.engine = None;
        r.disk.crash();
        r.incarnation += 1;
        let back = (self.now + self.rng.range(10, 1_500)).min(self.cfg.faults.gst_ms);
        self.schedule(back, Event::Restart(i));
    }

    fn repartition(&mut self) {
        if self.after_gst {
            return;
        }
        let n = self.replicas.len();
        self.partition = if self.partition.is_some() && self.rng.chance(0.5) {
            None
        } else {
            Some((0..n).map(|_| self.rng.range(0, 1) as u8).collect())
        };
        let next = self.now + self.rng.range(50, 800);
        if next < self.cfg.faults.gst_ms {
            self.schedule(next, Event::Partition);
        }
    }

    /// GST: faults stop, every replica runs, the liveness workload starts.
    fn gst(&mut self) {
        self.after_gst = true;
        self.partition = None;
        for i in 0..self.replicas.len() {
            if self.replicas[i].engine.is_none() {
                self.boot(i);
            }
        }
        self.inv.liveness.deadline_ms = self.now + self.cfg.liveness_bound_ms;
        for c in 0..self.cfg.liveness_payloads {
            let cmd = format!("s{}-live{c}", self.cfg.seed).into_bytes();
            self.inv.liveness.expect(cmd.clone());
            self.schedule(self.now + 1 + c as u64 * 5, Event::Client { cmd: cmd.into() });
        }
    }

    /// The voters of the most advanced replica's membership (the committed membership), as
    /// replica indices.
    pub(super) fn voters(&self) -> Vec<usize> {
        let best = self
            .replicas
            .iter()
            .filter_map(|r| r.engine.as_ref())
            .max_by_key(|e| e.status().applied);
        best.map(|e| e.status().membership.voters().iter().map(|m| m.id.index()).collect())
            .unwrap_or_default()
    }

    fn client(&mut self, cmd: Rc<[u8]>) {
        if self.acknowledged.contains_key(&cmd[..]) {
            return;
        }
        let up: Vec<usize> =
            (0..self.replicas.len()).filter(|&i| self.replicas[i].engine.is_some()).collect();
        if !up.is_empty() {
            let i = up[self.rng.index(up.len())];
            self.input(i, Input::Propose(cmd.to_vec()));
        }
        // A client retries until it hears an answer (the state machine ignores a repeat).
        let at = self.now + self.rng.range(150, 400);
        self.schedule(at, Event::Client { cmd });
    }

    fn read(&mut self) {
        let up: Vec<usize> =
            (0..self.replicas.len()).filter(|&i| self.replicas[i].engine.is_some()).collect();
        if up.is_empty() {
            return;
        }
        let i = up[self.rng.index(up.len())];
        let id = self.replicas[i].next_read;
        self.replicas[i].next_read += 1;
        let frontier = self.inv.agreement.max_index();
        if self.input(i, Input::Read(ReadId(id))) {
            self.inv.reads.on_issue(i, id, frontier);
        }
    }

    /// An operator asks the leader to add a spare (it learns, then the leader promotes it:
    /// RV1), remove a voter, or cancel a learner (refusals are fine: one change at a time,
    /// RV2; removed ids never return, RV4).
    fn change_membership(&mut self) {
        let Some(l) = (0..self.replicas.len()).find(|&i| {
            self.replicas[i].engine.as_ref().is_some_and(|e| e.status().role == Role::Leader)
        }) else {
            return;
        };
        let Some(status) = self.replicas[l].engine.as_ref().map(RaftEngine::status) else { return };
        let n = self.replicas.len();
        let m = &status.membership;
        let outside: Vec<usize> = (0..n)
            .map(|i| NodeId(i as u16))
            .filter(|&id| !m.knows(id) && !m.is_retired(id))
            .map(NodeId::index)
            .collect();
        let learners = status.membership.learners();
        let input = if !learners.is_empty() && self.rng.chance(0.3) {
            // RV2: a learner still catching up may be cancelled (the one change accepted).
            Input::RemoveServer {
                id: learners[self.rng.index(learners.len())].id,
                expected_index: None,
            }
        } else if !outside.is_empty() && (status.membership.len() < 3 || self.rng.chance(0.6)) {
            let i = outside[self.rng.index(outside.len())];
            Input::AddVoter {
                member: Member { id: NodeId(i as u16), public: self.cfg.is_public(i) },
                description: format!("replica {i}").into_bytes(),
                expected_index: None,
            }
        } else if status.membership.len() > 1 {
            let v = status.membership.voters();
            Input::RemoveServer {
                id: v[self.rng.index(v.len())].id,
                expected_index: Some(status.membership_index),
            }
        } else {
            return;
        };
        if self.input(l, input) {
            self.stats.membership_changes += 1;
        }
    }

    pub(super) fn transmit(&mut self, from: usize, m: &RaftMessage) {
        self.stats.messages_sent += 1;
        let Some(to) = m.to().map(NodeId::index).filter(|&t| t < self.replicas.len()) else {
            return;
        };
        let f = &self.cfg.faults;
        let (loss, dup, delay_max) = if self.after_gst {
            (0.0, 0.0, f.delay_after_gst_ms_max)
        } else {
            (f.loss, f.duplicate, f.delay_ms_max)
        };
        let cut = self.partition.as_ref().is_some_and(|g| g[from] != g[to]);
        if cut || self.rng.chance(loss) {
            self.stats.messages_dropped += 1;
            return;
        }
        let bytes: Rc<[u8]> = m.encode().into();
        let copies = if self.rng.chance(dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + self.rng.range(1, delay_max.max(1));
            self.schedule(
                at,
                Event::Deliver { to, from: NodeId(from as u16), bytes: bytes.clone() },
            );
        }
    }

    fn deliver(&mut self, to: usize, from: NodeId, bytes: &[u8]) {
        if self.replicas[to].engine.is_none() {
            return;
        }
        match RaftMessage::decode(bytes) {
            Ok(message) => {
                self.input(to, Input::Message { from, message });
            }
            Err(_) => self.stats.malformed += 1,
        }
    }

    fn report(self) -> RaftReport {
        RaftReport {
            seed: self.cfg.seed,
            nodes: self.cfg.publics.len(),
            publics: self.cfg.publics.iter().filter(|p| **p).count(),
            spares: self.cfg.spares.len(),
            applied_index: self.inv.agreement.max_index(),
            virtual_ms: self.now,
            terms_with_leader: self.inv.election_safety.terms(),
            reads_served: self.inv.reads.served,
            reads_failed: self.inv.reads.failed,
            stats: self.stats,
            statuses: self
                .replicas
                .iter()
                .map(|r| r.engine.as_ref().map(RaftEngine::status))
                .collect(),
            violations: self.inv.violations,
        }
    }
}
