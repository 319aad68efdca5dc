//! The simulated world: replicas, a network, disks and a virtual clock, driven by one seeded
//! event queue. Everything non-deterministic lives here, so a seed replays a run exactly.

use std::rc::Rc;
use std::sync::Arc;

use warpnet_core::{Core, Input};
use warpnet_types::{
    ConsensusConfig, Epoch, Message, NodeId, PublicKey, QuorumRule, Round, Signer,
};

use crate::byzantine::Byzantine;
use crate::config::{Behavior, LateFault, SimConfig};
use crate::events::EventQueue;

/// Fairness is watched from this long after GST: replicas that restarted there catch up first.
const FAIRNESS_SETTLE_MS: u64 = 1_000;
/// H2: how often each replica's runtime probes every member's advertised address.
const PROBE_INTERVAL_MS: u64 = 1_000;
use crate::invariants::{Invariants, Violation};
use crate::rng::Rng;
use crate::storage::Disk;
use crate::twins::TwinsSchedule;

mod actions;
mod membership;
mod net;
mod report;

pub use report::{Report, Stats};

/// Who a replica is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Honest,
    Byzantine(Behavior),
    /// One of two replicas sharing a member's key (Twins): the adversary, running honest code.
    Twin,
}

struct Replica {
    /// Identity: the member's key (a `NodeId` is only an index within one epoch).
    key: PublicKey,
    /// Its index in the first committee, if it was in it (spares join later).
    genesis_id: Option<NodeId>,
    role: Role,
    signer: Arc<dyn Signer>,
    core: Option<Core>,
    disk: Disk,
    /// The armed wake-up: (deadline, generation); only the latest generation fires.
    wake: Option<(u64, u64)>,
    wake_gen: u64,
    incarnation: u64,
    byz: Option<Byzantine>,
    /// Stopped for good (it left the committee, with `handover_faults`).
    gone: bool,
}

enum Event {
    Deliver {
        to: usize,
        from: PublicKey,
        frame: Rc<[u8]>,
    },
    Wake {
        replica: usize,
        incarnation: u64,
        gen: u64,
    },
    Disk {
        replica: usize,
        incarnation: u64,
    },
    Crash(usize),
    Restart(usize),
    Payload {
        replica: usize,
        cmd: Vec<u8>,
    },
    Partition,
    Gst,
    ByzTick(usize),
    /// The next committee change is due (or due again); only the latest scheduled counts.
    Membership(u64),
    /// H2: the replica's runtime dials every member's advertised address (a reachability probe).
    Probe(usize),
}

pub struct World {
    cfg: SimConfig,
    /// The first committee.
    config: Arc<ConsensusConfig>,
    /// The committee of each epoch, as the first honest replica to change into it saw it;
    /// every other honest replica must see the same (the epoch-agreement invariant).
    configs: std::collections::BTreeMap<Epoch, Arc<ConsensusConfig>>,
    /// Index of the next committee change in `cfg.membership`.
    next_change: usize,
    /// Generation of the one live `Event::Membership`.
    membership_gen: u64,
    /// Certificates the committee-votes invariant checked already, by certified block.
    checked_certificates: std::collections::HashSet<warpnet_types::BlockId>,
    rng: Rng,
    now: u64,
    queue: EventQueue<Event>,
    replicas: Vec<Replica>,
    inv: Invariants,
    partition: Option<Vec<u8>>,
    /// PM7: what each replica was last told about each member's reachability (by key;
    /// a member not listed was never reported unreachable).
    reported: Vec<std::collections::HashMap<PublicKey, bool>>,
    /// Every replica has started once (reports begin then).
    booted: bool,
    twins: Option<TwinsSchedule>,
    /// A replica cut off by a late fault, until when.
    cut: Option<(usize, u64)>,
    after_gst: bool,
    /// Where a replica answers its clients (HA1: at the commit).
    answer_point: crate::invariants::AnswerPoint,
    stats: Stats,
}

/// The round a message belongs to, for per-round (Twins) partitions.
fn message_round(m: &Message) -> Option<Round> {
    match m {
        Message::Proposal(p) => Some(p.block.round()),
        Message::Vote(v) => Some(v.round),
        Message::Timeout(t) => Some(t.timeout.round),
        Message::SyncRequest(_)
        | Message::SyncResponse(_)
        | Message::Commands(_)
        | Message::EpochRequest(_)
        | Message::EpochProof(_)
        | Message::Raft(_)
        | Message::Membership(_)
        | Message::Attestation(_) => None,
    }
}

impl World {
    /// Builds the committee and replicas. `twins` adds a second replica for its member;
    /// `cfg.spares` replicas outside the first committee follow the chain until admitted.
    pub fn new(mut cfg: SimConfig, twins: Option<TwinsSchedule>) -> Self {
        // A scenario that shrinks a random config's committee keeps only the undialable
        // members that still exist.
        let total = cfg.nodes + cfg.spares;
        cfg.undialable.retain(|&i| i < total);
        let (all, signers) =
            ConsensusConfig::for_testing(total, cfg.scheme, cfg.seed.wrapping_mul(1_000))
                .expect("valid test committee");
        let config = if cfg.spares == 0 {
            all
        } else {
            let members = all.participants()[..cfg.nodes].to_vec();
            ConsensusConfig::new(all.network().clone(), all.epoch(), cfg.scheme, members)
                .expect("valid test committee")
        };
        let config = config.with_members_min(cfg.members_min).expect("valid test committee");
        let config = match cfg.quorum_rule {
            QuorumRule::NMinusF => config,
            QuorumRule::AdrTwoFPlusOneUnsafe => config.with_unsafe_adr_quorum(),
        };
        let config = Arc::new(config);
        let signers: Vec<Arc<dyn Signer>> = signers.into_iter().map(Arc::from).collect();
        let mut rng = Rng::new(cfg.seed);
        let mut replicas = Vec::new();
        let mut add = |index: usize, role: Role, rng: &mut Rng| {
            let byz = match role {
                Role::Byzantine(b) => Some(Byzantine::new(b, rng.fork())),
                _ => None,
            };
            let signer = signers[index].clone();
            replicas.push(Replica {
                key: signer.public_key(),
                genesis_id: (index < cfg.nodes).then_some(NodeId(index as u16)),
                role,
                signer,
                core: None,
                disk: Disk::new(&config),
                wake: None,
                wake_gen: 0,
                incarnation: 0,
                byz,
                gone: false,
            });
        };
        for id in 0..cfg.nodes as u16 {
            let role = match cfg.byzantine_ids.iter().position(|&b| b == id) {
                Some(i) => Role::Byzantine(cfg.behaviors[i]),
                None if twins.as_ref().is_some_and(|t| t.twin == id) => Role::Twin,
                None => Role::Honest,
            };
            add(id as usize, role, &mut rng);
        }
        if let Some(t) = &twins {
            add(t.twin as usize, Role::Twin, &mut rng);
        }
        for spare in cfg.nodes..total {
            add(spare, Role::Honest, &mut rng);
        }
        let mut configs = std::collections::BTreeMap::new();
        configs.insert(config.epoch(), config.clone());
        Self {
            cfg,
            config,
            configs,
            next_change: 0,
            membership_gen: 0,
            checked_certificates: std::collections::HashSet::new(),
            rng,
            now: 0,
            queue: EventQueue::default(),
            replicas,
            inv: Invariants::default(),
            partition: None,
            reported: Vec::new(),
            booted: false,
            twins,
            cut: None,
            after_gst: false,
            answer_point: crate::invariants::AnswerPoint::default(),
            stats: Stats::default(),
        }
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.queue.schedule(at, event);
    }

    fn honest(&self, idx: usize) -> bool {
        self.replicas[idx].role == Role::Honest
    }

    /// Whether the replicas holding `key` are honest (twins and Byzantine replicas are not).
    fn honest_key(&self, key: &PublicKey) -> bool {
        self.replicas.iter().any(|r| r.key == *key && r.role == Role::Honest)
    }

    /// The committee a replica works in now (its core's, or the first one while it is down).
    fn config_of(&self, idx: usize) -> Arc<ConsensusConfig> {
        self.replicas[idx].core.as_ref().map_or_else(|| self.config.clone(), |c| c.config().clone())
    }

    /// The key of member `id` of `epoch`'s committee, if the world knows that epoch.
    fn key_in(&self, epoch: Epoch, id: NodeId) -> Option<PublicKey> {
        self.configs.get(&epoch).and_then(|c| c.public_key(id).ok()).copied()
    }

    /// Runs to completion: the safety phase (faults until GST), then the liveness phase.
    /// Moves the point at which replicas answer their clients (a test breaking HA1 on
    /// purpose; the default is the node's).
    pub fn answering_at(mut self, point: crate::invariants::AnswerPoint) -> Self {
        self.answer_point = point;
        self
    }

    pub fn run(mut self) -> Report {
        let n = self.replicas.len();
        self.reported = vec![std::collections::HashMap::new(); n];
        for idx in 0..n {
            self.boot(idx);
        }
        self.booted = true;
        self.sync_reports();
        let gst = self.cfg.faults.gst_ms;
        for i in 0..self.cfg.payloads {
            let at = self.rng.range(0, gst);
            let replica = self.rng.index(n);
            self.schedule(
                at,
                Event::Payload { replica, cmd: format!("s{}-c{i}", self.cfg.seed).into_bytes() },
            );
        }
        for _ in 0..self.cfg.faults.crashes {
            let at = self.rng.range(0, gst.saturating_sub(100));
            let victim = self.rng.index(n);
            self.schedule(at, Event::Crash(victim));
        }
        if self.cfg.faults.partitions {
            let at = self.rng.range(0, gst / 2);
            self.schedule(at, Event::Partition);
        }
        for idx in 0..n {
            let at = self.rng.range(0, PROBE_INTERVAL_MS);
            self.schedule(at, Event::Probe(idx));
        }
        for idx in 0..n {
            if self.replicas[idx].byz.is_some() {
                let at = self.rng.range(1, 50);
                self.schedule(at, Event::ByzTick(idx));
            }
        }
        if let Some(first) = self.cfg.membership.first() {
            self.schedule(first.at_ms, Event::Membership(0));
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
                if self.inv.liveness.done() && self.inv.reputation.done() {
                    // Liveness met: every command answered so far was committed somewhere.
                    let v = self.inv.acknowledged.check_end(self.now);
                    self.inv.record(v);
                    break;
                }
                if let Some(v) = self.inv.liveness.check(self.now) {
                    self.inv.record(Some(v));
                    break;
                }
                if self.now >= self.inv.liveness.deadline_ms {
                    if let Some(v) = self.inv.reputation.check(self.now) {
                        self.inv.record(Some(v));
                        break;
                    }
                }
            }
            if !self.inv.violations.is_empty() {
                break;
            }
        }
        self.stats.late_fault_failed_rounds = self.inv.reputation.failed_rounds;
        self.stats.late_fault_all_failed_rounds = self.inv.reputation.all_failed_rounds;
        self.stats.late_fault_blocks = self.inv.reputation.blocks;
        self.stats.late_fault_led_after = self.inv.reputation.led_after;
        self.stats.longest_skip = self.inv.fairness.longest;
        self.stats.settled_blocks = self.inv.fairness.blocks;
        self.stats.fallback_blocks = self.inv.fairness.fallback_blocks;
        self.stats.undialable_led = self.inv.fairness.undialable_led;
        self.stats.health_checked_blocks = self.inv.health_agreement.blocks();
        Report {
            seed: self.cfg.seed,
            nodes: self.cfg.nodes,
            byzantine: self
                .replicas
                .iter()
                .filter_map(|r| match r.role {
                    Role::Byzantine(b) => r.genesis_id.map(|id| (id, b)),
                    _ => None,
                })
                .collect(),
            committed_height: self.inv.agreement.max_height(),
            committee: {
                let last = self.configs.values().next_back().cloned();
                last.map(|c| {
                    c.participants()
                        .iter()
                        .filter_map(|p| self.replicas.iter().position(|r| r.key == p.public_key))
                        .collect()
                })
                .unwrap_or_default()
            },
            replicas: self
                .replicas
                .iter()
                .map(|r| (r.genesis_id, r.role, r.core.as_ref().map(Core::status)))
                .collect(),
            virtual_ms: self.now,
            stats: self.stats,
            violations: self.inv.violations,
        }
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, frame } => self.deliver(to, from, &frame),
            Event::Wake { replica, incarnation, gen } => {
                let r = &mut self.replicas[replica];
                if r.incarnation == incarnation && r.wake.is_some_and(|(_, g)| g == gen) {
                    r.wake = None;
                    self.step(replica, Input::Tick);
                }
            }
            Event::Disk { replica, incarnation } => {
                if self.replicas[replica].incarnation == incarnation {
                    if let Some(seq) = self.replicas[replica].disk.complete(self.now) {
                        self.step(replica, Input::Persisted { seq });
                    }
                }
            }
            Event::Crash(idx) => self.crash(idx),
            Event::Restart(idx) => {
                if self.replicas[idx].core.is_none() && !self.replicas[idx].gone {
                    self.boot(idx);
                }
            }
            Event::Payload { replica, cmd } => {
                // As the node does it: the client's member submits the command, and the core
                // shares it with every other member (M1, through the faulty network), so the
                // liveness invariant also checks that shared commands reach a proposal.
                let now = self.now;
                if let Some(core) = self.replicas[replica].core.as_mut() {
                    let (_, step) = core.submit(now, vec![cmd]);
                    self.apply(replica, step);
                }
            }
            Event::Partition => self.repartition(),
            Event::Gst => self.gst(),
            Event::ByzTick(idx) => self.byz_tick(idx),
            Event::Membership(gen) => {
                if gen == self.membership_gen {
                    self.next_membership_change();
                }
            }
            Event::Probe(idx) => self.probe(idx),
        }
    }

    /// Starts (or restarts) a replica from what its disk kept.
    fn boot(&mut self, idx: usize) {
        let r = &mut self.replicas[idx];
        let recovery = match r.disk.recovery(&self.config) {
            Ok(rec) => rec,
            Err(e) => {
                let detail = format!("replica {idx} cannot decode its safety data: {e}");
                return self.inv.record(Some(Violation {
                    invariant: "recovery",
                    at_ms: self.now,
                    detail,
                }));
            }
        };
        let tip = (recovery.committed.height(), recovery.committed.id());
        let config = r.disk.config().unwrap_or_else(|| self.config.clone());
        match Core::recover(config, r.signer.clone(), self.cfg.params.clone(), recovery) {
            Ok(core) => r.core = Some(core),
            Err(e) => {
                let detail = format!("replica {idx} cannot restart: {e}");
                return self.inv.record(Some(Violation {
                    invariant: "recovery",
                    at_ms: self.now,
                    detail,
                }));
            }
        }
        self.inv.chain_growth.on_start(idx, tip.0, tip.1);
        let actions =
            self.replicas[idx].core.as_mut().map(|c| c.start(self.now)).unwrap_or_default();
        self.apply(idx, actions);
        // PM7: a fresh core assumes every member reachable; tell it the transport's view.
        self.reported[idx].clear();
        self.sync_reports();
    }

    /// PM7: tells each running replica which members of its committee its transport would see
    /// as gone or back: a member is reachable when one of its replicas runs and is on the same
    /// side of the current partition. Called after every crash, restart, partition change and
    /// epoch change, so reports flap with the partitions (pre-GST) and are sometimes wrong for
    /// Twins, as real ones can be.
    pub(super) fn sync_reports(&mut self) {
        if !self.booted {
            return;
        }
        let n = self.replicas.len();
        for i in 0..n {
            let Some(core) = self.replicas[i].core.as_ref() else { continue };
            let keys: Vec<PublicKey> =
                core.config().participants().iter().map(|p| p.public_key).collect();
            for peer in keys {
                if peer == self.replicas[i].key {
                    continue;
                }
                let up = (0..n).any(|j| {
                    self.replicas[j].key == peer
                        && self.replicas[j].core.is_some()
                        && self.partition.as_ref().is_none_or(|g| g.get(i) == g.get(j))
                });
                let was = self.reported[i].get(&peer).copied().unwrap_or(true);
                if was != up {
                    self.reported[i].insert(peer, up);
                    self.step(i, Input::Reachability { peer, reachable: up });
                }
            }
        }
    }

    fn crash(&mut self, idx: usize) {
        if self.after_gst
            || self.replicas[idx].core.is_none()
            || self.replicas[idx].role == Role::Twin
        {
            return;
        }
        self.stats.crashes += 1;
        let r = &mut self.replicas[idx];
        r.core = None;
        r.disk.crash();
        r.incarnation += 1;
        r.wake = None;
        self.sync_reports();
        let gst = self.cfg.faults.gst_ms;
        let back = (self.now + self.rng.range(10, 1_500)).min(gst);
        self.schedule(back, Event::Restart(idx));
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
        self.sync_reports();
        let next = self.now + self.rng.range(50, 800);
        if next < self.cfg.faults.gst_ms {
            self.schedule(next, Event::Partition);
        }
    }

    /// GST: faults stop; every replica runs; the liveness workload starts.
    fn gst(&mut self) {
        self.after_gst = true;
        self.partition = None;
        for idx in 0..self.replicas.len() {
            if self.replicas[idx].core.is_none() && !self.replicas[idx].gone {
                self.boot(idx);
            }
        }
        self.late_fault();
        self.sync_reports();
        self.inv.fairness.from_ms = Some(self.now + FAIRNESS_SETTLE_MS);
        let honest: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.honest(i) && !self.replicas[i].gone)
            .collect();
        // Commands go to members; replicas outside the committee must commit them too (they
        // follow the chain from proofs).
        let members: Vec<usize> = honest
            .iter()
            .copied()
            .filter(|&i| self.replicas[i].core.as_ref().is_some_and(|c| c.id().is_some()))
            .collect();
        self.inv.liveness.deadline_ms = self.now + self.cfg.liveness_bound_ms;
        for i in 0..self.cfg.liveness_payloads {
            let cmd = format!("s{}-live{i}", self.cfg.seed).into_bytes();
            self.inv.liveness.expect(cmd.clone(), honest.iter().copied());
            if members.is_empty() {
                continue;
            }
            // A client submits to one honest member; it must reach a block by that member's turn.
            let replica = members[self.rng.index(members.len())];
            let spread = self.cfg.liveness_spread_ms / self.cfg.liveness_payloads.max(1) as u64;
            self.schedule(self.now + 1 + i as u64 * spread, Event::Payload { replica, cmd });
        }
    }

    /// The late fault, as GST begins (see [`crate::config::LateFault`]).
    fn late_fault(&mut self) {
        let Some(fault) = self.cfg.late_fault else { return };
        let idx = fault.replica();
        let heal_at = match fault {
            LateFault::Stop(_) => {
                let r = &mut self.replicas[idx];
                r.gone = true;
                r.core = None;
                r.disk.crash();
                r.incarnation += 1;
                r.wake = None;
                None
            }
            LateFault::Cut { for_ms, .. } => {
                self.cut = Some((idx, self.now + for_ms));
                Some(self.now + for_ms)
            }
        };
        let key = self.replicas[idx].key;
        // H2, LR1: a member no one can dial is never verified public, so it leads again only
        // under the fallback (no member dialable).
        let undialable = &self.cfg.undialable;
        let can_return = !undialable.contains(&idx) || undialable.len() >= self.cfg.nodes;
        let byzantine = !self.cfg.byzantine_ids.is_empty();
        self.inv.reputation.start(key, self.now, heal_at, (can_return, byzantine));
    }

    /// H2: the replica's runtime reached every member it can dial at its advertised address:
    /// one that runs, on the same side of any partition or cut, and not `cfg.undialable`.
    fn probe(&mut self, idx: usize) {
        if self.replicas[idx].gone {
            return;
        }
        self.schedule(self.now + PROBE_INTERVAL_MS, Event::Probe(idx));
        let Some(core) = self.replicas[idx].core.as_ref() else { return };
        let members: Vec<PublicKey> =
            core.config().participants().iter().map(|p| p.public_key).collect();
        let peers: Vec<PublicKey> = (0..self.replicas.len())
            .filter(|&j| {
                let r = &self.replicas[j];
                j != idx
                    && r.key != self.replicas[idx].key
                    && r.core.is_some()
                    && members.contains(&r.key)
                    && !self.cfg.undialable.contains(&j)
                    && self.connected(idx, j, None)
            })
            .map(|j| self.replicas[j].key)
            .collect();
        self.step(idx, Input::Reached { peers });
    }

    /// Honest replicas that run and are not under the late fault: those fairness watches.
    pub(super) fn fair_keys(&self) -> Vec<PublicKey> {
        let faulty = self.cfg.late_fault.map(LateFault::replica);
        (0..self.replicas.len())
            .filter(|&i| self.honest(i) && !self.replicas[i].gone && Some(i) != faulty)
            .filter(|i| !self.cfg.undialable.contains(i))
            .map(|i| self.replicas[i].key)
            .collect()
    }

    fn step(&mut self, idx: usize, input: Input) {
        let r = &mut self.replicas[idx];
        if let (Some(b), Input::Message { message, .. }, Some(core)) =
            (r.byz.as_mut(), &input, r.core.as_ref())
        {
            if let Some(me) = core.id() {
                let out = b.observe(core.config(), me, r.signer.as_ref(), message);
                self.send_outgoing(idx, out);
            }
        }
        let now = self.now;
        let Some(core) = self.replicas[idx].core.as_mut() else {
            return;
        };
        let actions = core.handle(now, input);
        self.apply(idx, actions);
    }

    fn deliver(&mut self, to: usize, from: PublicKey, frame: &[u8]) {
        if self.replicas[to].core.is_none() {
            return;
        }
        match Message::from_frame(frame) {
            Ok(message) => self.step(to, Input::Message { from, message }),
            Err(_) => self.stats.malformed_frames += 1,
        }
    }
}
