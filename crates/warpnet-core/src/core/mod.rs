//! The replica: one state machine fed by [`Input`]s that returns a [`Step`] for each.
//!
//! Split by concern: `proposal.rs` (proposing and voting), `certs.rs` (QCs, TCs, rounds,
//! commits), `timeout.rs` (the pacemaker's timeouts), `sync.rs` (fetching missing blocks).

mod certs;
mod proposal;
mod sync;
mod timeout;
mod validate;

pub use validate::CoreInvariant;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use warpnet_types::{
    Block, BlockId, ConsensusConfig, Height, Message, NodeId, Proposal, QuorumCertificate, Round,
    Signature, Signer, Timeout, TimeoutCertificate, Vote,
};

use crate::collect::{TimeoutCollector, VoteCollector};
use crate::evidence::Equivocation;
use crate::io::{Input, Outgoing, Rejection, Step, Target, Timer, Write};
use crate::mempool::Mempool;
use crate::params::CoreParams;
use crate::safety::{SafetyData, SafetyRules, Sealed};
use crate::tree::BlockTree;

/// What a replica loads from its storage to resume after a restart.
#[derive(Clone, Debug)]
pub struct Recovery {
    pub safety: SafetyData,
    /// The last committed block (genesis if none).
    pub committed: Block,
    /// A QC certifying `committed` (the genesis QC for genesis).
    pub committed_certificate: QuorumCertificate,
    /// Stored blocks above `committed`, in any order; those not extending it are dropped.
    pub blocks: Vec<Block>,
    /// Commands of the last committed blocks, oldest first (see [`RECENT_COMMITTED_BLOCKS`]):
    /// M2 remembers them across a restart, so a late or replayed copy is not committed again.
    pub recent_commands: Vec<Vec<u8>>,
}

/// How many of the last committed blocks a store hands back in `Recovery::recent_commands`.
pub const RECENT_COMMITTED_BLOCKS: u64 = 256;

impl Recovery {
    /// A member's first start.
    pub fn genesis(config: &ConsensusConfig) -> Self {
        Self {
            safety: SafetyData::initial(config),
            committed: Block::genesis(config),
            committed_certificate: QuorumCertificate::genesis(config),
            blocks: Vec::new(),
            recent_commands: Vec::new(),
        }
    }
}

/// Why the core could not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("node {me} is not a member of a committee of {total}")]
    NotMember { me: NodeId, total: usize },
    #[error("the key does not match member {me}'s public key")]
    WrongKey { me: NodeId },
    #[error("the key is for scheme {key:?}, the committee uses {committee:?}")]
    WrongScheme { key: warpnet_types::SchemeId, committee: warpnet_types::SchemeId },
    #[error("invalid core parameters: {0}")]
    Params(&'static str),
    #[error("stored safety data is for epoch {stored}, the committee is epoch {committee}")]
    WrongEpoch { stored: warpnet_types::Epoch, committee: warpnet_types::Epoch },
}

/// A signed message held until the safety data it depends on is durable.
enum Outbound {
    Proposal(Sealed<Proposal>),
    Vote { to: NodeId, vote: Sealed<Vote> },
    Timeout { timeout: Sealed<Timeout>, tc: Option<TimeoutCertificate> },
}

/// A snapshot of the replica's progress, for status pages, metrics and the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub round: Round,
    pub leader: NodeId,
    pub high_qc_round: Round,
    pub high_tc_round: Option<Round>,
    pub committed_height: Height,
    pub committed_block: BlockId,
    pub consecutive_timeouts: u32,
    pub last_voted_round: Round,
    pub tree_blocks: usize,
    pub mempool: usize,
    pub evidence: usize,
    /// Round timers that expired since the start (PM4), for metrics.
    pub round_timeouts: u64,
    /// Writes handed out and not yet reported durable.
    pub writes_in_flight: u64,
}

/// One replica's consensus state. See the crate documentation for the contract.
pub struct Core {
    config: Arc<ConsensusConfig>,
    me: NodeId,
    signer: Arc<dyn Signer>,
    params: CoreParams,
    safety: SafetyRules,
    /// Highest safety-data version already handed to the runtime for persisting.
    persist_requested: u64,
    /// The last write's number (see [`Write::seq`]).
    write_seq: u64,
    /// Writes in flight that carry safety data: (seq, safety version), oldest first.
    unpersisted: VecDeque<(u64, u64)>,
    /// The timers armed, by kind: (deadline in the core's clock, timer).
    timers: [Option<(u64, Timer)>; 2],
    round_timeouts: u64,
    sealed: Vec<Outbound>,
    tree: BlockTree,
    round: Round,
    consecutive_timeouts: u32,
    proposed_round: Round,
    votes: VoteCollector,
    timeouts: TimeoutCollector,
    /// First proposal seen per round (only that round's leader may propose): for E1.
    seen_proposals: BTreeMap<Round, (BlockId, Signature)>,
    /// Proposals whose ancestors are being fetched.
    pending: BTreeMap<Round, (NodeId, Proposal)>,
    /// Sync requests sent this round, by target.
    sync_requested: HashMap<BlockId, Round>,
    evidence: Vec<Equivocation>,
    mempool: Mempool,
    /// Members the transport reports unreachable (PM7).
    unreachable: std::collections::BTreeSet<NodeId>,
    now_ms: u64,
    /// The step being built, and its write.
    step: Step,
    write: Write,
}

impl Core {
    /// Builds a replica from what its storage holds. Call [`Core::start`] next.
    pub fn new(
        config: Arc<ConsensusConfig>,
        me: NodeId,
        signer: Arc<dyn Signer>,
        params: CoreParams,
        recovery: Recovery,
    ) -> Result<Self, StartError> {
        let expected = config
            .public_key(me)
            .map_err(|_| StartError::NotMember { me, total: config.total_nodes() })?;
        if signer.scheme() != config.scheme() {
            return Err(StartError::WrongScheme {
                key: signer.scheme(),
                committee: config.scheme(),
            });
        }
        if signer.public_key() != *expected {
            return Err(StartError::WrongKey { me });
        }
        params.check().map_err(StartError::Params)?;
        if recovery.safety.epoch != config.epoch() {
            return Err(StartError::WrongEpoch {
                stored: recovery.safety.epoch,
                committee: config.epoch(),
            });
        }
        let committed_certificate = recovery.committed_certificate.clone();
        let mut tree = BlockTree::new(recovery.committed, recovery.committed_certificate);
        let mut blocks = recovery.blocks;
        blocks.sort_by_key(|b| b.height());
        for b in blocks {
            // Forks that can no longer commit, and anything not attached, are dropped (pruned).
            let _ = tree.insert(b);
        }
        let mut safety = SafetyRules::new(recovery.safety);
        // The committed block is certified; after a crash its QC may be newer than the stored
        // high QC (commits are applied before the next safety write).
        safety.observe_qc(&committed_certificate);
        #[cfg(feature = "mutations")]
        {
            safety.mutation = params.mutation;
        }
        let data = safety.data();
        // PM0: resume in the round our persisted certificates entitle us to. (The QC or TC that
        // moved us into a round is persisted with any vote or timeout we signed there.)
        let tc_round = data.high_tc.as_ref().map_or(Round(0), TimeoutCertificate::round);
        let round = data.high_qc.round().max(tc_round).next().max(data.last_voted_round);
        let mut mempool = Mempool::new(params.mempool_max, params.command_bytes_max);
        mempool.remove_committed(recovery.recent_commands.iter());
        Ok(Self {
            config,
            me,
            signer,
            params,
            safety,
            persist_requested: 0,
            write_seq: 0,
            unpersisted: VecDeque::new(),
            timers: [None, None],
            round_timeouts: 0,
            sealed: Vec::new(),
            tree,
            round,
            consecutive_timeouts: 0,
            proposed_round: Round(0),
            votes: VoteCollector::default(),
            timeouts: TimeoutCollector::default(),
            seen_proposals: BTreeMap::new(),
            pending: BTreeMap::new(),
            sync_requested: HashMap::new(),
            evidence: Vec::new(),
            mempool,
            unreachable: std::collections::BTreeSet::new(),
            now_ms: 0,
            step: Step::default(),
            write: Write::default(),
        })
    }

    /// Starts the replica: arms the round timer, proposes if it leads, fetches what it misses.
    pub fn start(&mut self, now_ms: u64) -> Step {
        self.now_ms = now_ms;
        self.enter_round();
        let high_qc = self.safety.data().high_qc.clone();
        if self.tree.contains(&high_qc.block_id()) {
            self.tree.record_qc(&high_qc);
        } else {
            let peer = high_qc.voters().iter().find(|&id| id != self.me);
            self.request_sync(high_qc.block_id(), peer);
        }
        self.finish()
    }

    /// Handles one input. The returned step must be executed as [`Step`] says.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Step {
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            Input::Message { from, message } => self.on_message(from, message),
            Input::Tick => self.on_tick(),
            Input::Persisted { seq } => self.on_persisted(seq),
            Input::Reachability { peer, reachable } => self.on_reachability(peer, reachable),
        }
        self.finish()
    }

    /// Takes client commands into the mempool and, M1, shares those it accepted with every
    /// other member (one `Commands` message per [`SHARED_COMMANDS_MAX`] commands), so they
    /// reach a proposal whoever leads next. Returns each command's verdict, in order: a
    /// refused command (`MempoolFull`, `CommandTooLarge`, `DuplicateCommand` when it is already
    /// pending, `AlreadyCommitted` under M2) changed nothing.
    ///
    /// [`SHARED_COMMANDS_MAX`]: warpnet_types::message::SHARED_COMMANDS_MAX
    pub fn submit(
        &mut self,
        now_ms: u64,
        commands: Vec<Vec<u8>>,
    ) -> (Vec<Result<(), Rejection>>, Step) {
        use warpnet_types::message::SHARED_COMMANDS_MAX;
        self.now_ms = self.now_ms.max(now_ms);
        let mut verdicts = Vec::with_capacity(commands.len());
        let mut fresh = Vec::new();
        for cmd in commands {
            let verdict = self.mempool.add(cmd.clone());
            if verdict.is_ok() {
                fresh.push(cmd);
            }
            verdicts.push(verdict);
        }
        if !fresh.is_empty() {
            let epoch = self.config.epoch();
            while !fresh.is_empty() {
                let rest = fresh.split_off(fresh.len().min(SHARED_COMMANDS_MAX));
                let commands = std::mem::replace(&mut fresh, rest);
                let shared = warpnet_types::SharedCommands { epoch, commands };
                self.broadcast(Message::Commands(shared));
            }
            self.propose(false);
        }
        (verdicts, self.finish())
    }

    /// The writes up to `seq` are durable: the safety data they carried is too. Only those:
    /// a later write may still be in flight, and what it seals must wait for it.
    fn on_persisted(&mut self, seq: u64) {
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
    fn on_tick(&mut self) {
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
    fn round_deadline_ms(&self) -> u64 {
        self.timers[0].map_or(u64::MAX, |(at, _)| at)
    }

    pub(super) fn send(&mut self, to: NodeId, message: Message) {
        self.step.messages.push(Outgoing { to: Target::One(to), message });
    }

    pub(super) fn broadcast(&mut self, message: Message) {
        self.step.messages.push(Outgoing { to: Target::All, message });
    }

    pub(super) fn persist_block(&mut self, block: Block) {
        self.write.blocks.push(block);
    }

    /// PM7: a member became unreachable or reachable again. If the current round's leader or
    /// vote collector just went away, the round cannot produce a QC: its timer is shortened.
    fn on_reachability(&mut self, peer: NodeId, reachable: bool) {
        if peer == self.me || !self.config.contains(peer) {
            return;
        }
        if reachable {
            self.unreachable.remove(&peer);
            return;
        }
        if self.unreachable.insert(peer) && self.round_is_hopeless(self.round) {
            // Only ever earlier: a member whose connection flaps must not keep pushing the
            // deadline back (then the round would never time out).
            let after_ms = self.params.unreachable_leader_timeout_ms;
            if self.now_ms.saturating_add(after_ms) < self.round_deadline_ms() {
                self.arm_round_timer(after_ms);
            }
        }
    }

    /// Arms the current round's timer and remembers its deadline.
    pub(super) fn arm_round_timer(&mut self, after_ms: u64) {
        self.set_timer(Timer::Round(self.round), after_ms);
    }

    /// PM7: a round whose leader or next leader (who collects its votes) is unreachable.
    pub(super) fn round_is_hopeless(&self, round: Round) -> bool {
        self.unreachable.contains(&self.config.leader(round))
            || self.unreachable.contains(&self.config.leader(round.next()))
    }

    /// PM3 + PM7: the current round's timeout.
    pub(super) fn round_timeout(&self) -> u64 {
        let normal = self.params.round_timeout_ms(self.consecutive_timeouts);
        if self.round_is_hopeless(self.round) {
            normal.min(self.params.unreachable_leader_timeout_ms)
        } else {
            normal
        }
    }

    /// M1: client commands a member shares enter the mempool like a local client's (bounded,
    /// de-duplicated), so they reach a proposal whoever leads next. The runtime checks each
    /// command's client signature before this; a block's commands are checked again when
    /// applied, so a member sharing junk wastes block space but changes no state.
    fn on_shared_commands(&mut self, from: NodeId, shared: warpnet_types::SharedCommands) {
        let mut added = false;
        for cmd in shared.commands {
            match self.mempool.add(cmd) {
                Ok(()) => added = true,
                Err(Rejection::DuplicateCommand | Rejection::AlreadyCommitted) => {}
                Err(reason) => {
                    // Full, or a command over the limit: refuse the rest of the message.
                    self.reject(Some(from), reason);
                    break;
                }
            }
        }
        if added {
            self.propose(false);
        }
    }

    fn on_message(&mut self, from: NodeId, message: Message) {
        if !self.config.contains(from) || from == self.me {
            return;
        }
        if message.epoch() != self.config.epoch() {
            let reason =
                Rejection::WrongEpoch { got: message.epoch(), expected: self.config.epoch() };
            return self.reject(Some(from), reason);
        }
        match message {
            Message::Proposal(p) => self.on_proposal(from, p),
            Message::Vote(v) => self.on_vote(from, v, false),
            Message::Timeout(t) => self.on_timeout_msg(from, t),
            Message::SyncRequest(r) => self.on_sync_request(from, r),
            Message::SyncResponse(r) => self.on_sync_response(from, r),
            Message::Commands(c) => self.on_shared_commands(from, c),
        }
    }

    /// Ends a step: releases every sealed message whose safety data is durable, then puts the
    /// safety data into the step's write if it changed (one write per step: group commit),
    /// numbers the write and reports the next timer deadline.
    fn finish(&mut self) -> Step {
        // Releasing our own vote or timeout can form a QC or TC, which changes the safety data
        // and may seal more messages: repeat until nothing more is released.
        while self.release_durable() > 0 {}
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
                Outbound::Vote { to, vote } => match self.safety.release(vote) {
                    Ok(vote) => {
                        released += 1;
                        self.send_vote(to, vote);
                    }
                    Err(vote) => held.push(Outbound::Vote { to, vote }),
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

    fn reject(&mut self, from: Option<NodeId>, reason: Rejection) {
        self.step.rejected.push((from, reason));
    }

    /// E1: keeps and emits evidence once per (signer, round, kind of statement).
    fn record_evidence(&mut self, ev: Equivocation) {
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
        self.step.evidence.push(ev);
        self.reject(Some(signer), reason);
    }

    pub fn status(&self) -> Status {
        let root = self.tree.root();
        let data = self.safety.data();
        Status {
            round: self.round,
            leader: self.config.leader(self.round),
            high_qc_round: data.high_qc.round(),
            high_tc_round: data.high_tc.as_ref().map(TimeoutCertificate::round),
            committed_height: root.height(),
            committed_block: root.id(),
            consecutive_timeouts: self.consecutive_timeouts,
            last_voted_round: data.last_voted_round,
            tree_blocks: self.tree.len(),
            mempool: self.mempool.len(),
            evidence: self.evidence.len(),
            round_timeouts: self.round_timeouts,
            writes_in_flight: self.unpersisted.len() as u64,
        }
    }

    /// The armed timers with their deadlines (in the core's clock), at most one of each kind.
    pub fn timers(&self) -> Vec<(Timer, u64)> {
        self.timers.iter().flatten().map(|&(at, t)| (t, at)).collect()
    }

    pub fn id(&self) -> NodeId {
        self.me
    }

    pub fn config(&self) -> &Arc<ConsensusConfig> {
        &self.config
    }

    /// Evidence of equivocation seen so far (the most recent `evidence_max`).
    pub fn evidence(&self) -> &[Equivocation] {
        &self.evidence
    }

    /// A block just joined the tree: a QC for it may have come first (votes, sync), and with it
    /// a commit (C1).
    fn on_block_inserted(&mut self, id: &BlockId) {
        let high_qc = self.safety.data().high_qc.clone();
        if high_qc.block_id() == *id {
            self.tree.record_qc(&high_qc);
        }
        if let Some(qc) = self.tree.certificate(id).cloned() {
            self.commit_with(&qc);
        }
    }

    /// The highest QC this replica holds.
    pub fn high_qc(&self) -> &QuorumCertificate {
        &self.safety.data().high_qc
    }

    /// A block of the uncommitted tree (or the last committed one), if held.
    pub fn block(&self, id: &BlockId) -> Option<&Block> {
        self.tree.get(id)
    }
}
