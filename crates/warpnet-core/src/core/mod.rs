//! The replica: one state machine fed by [`Input`]s that returns [`Action`]s.
//!
//! Split by concern: `proposal.rs` (proposing and voting), `certs.rs` (QCs, TCs, rounds,
//! commits), `timeout.rs` (the pacemaker's timeouts), `sync.rs` (fetching missing blocks).

mod certs;
mod proposal;
mod sync;
mod timeout;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use warpnet_types::{
    Block, BlockId, ConsensusConfig, Height, Message, NodeId, Proposal, QuorumCertificate, Round,
    Signature, Signer, Timeout, TimeoutCertificate, Vote,
};

use crate::collect::{TimeoutCollector, VoteCollector};
use crate::evidence::Equivocation;
use crate::io::{Action, Input, Rejection, Timer};
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
    /// When the current round's timer fires (core clock), so PM7 only ever brings it forward.
    round_deadline_ms: u64,
    now_ms: u64,
    out: Vec<Action>,
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
            round_deadline_ms: u64::MAX,
            now_ms: 0,
            out: Vec::new(),
        })
    }

    /// Starts the replica: arms the round timer, proposes if it leads, fetches what it misses.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
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

    /// Handles one input. The returned actions must be executed in order.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            Input::Message { from, message } => self.on_message(from, message),
            Input::Timer(Timer::Round(r)) => self.on_round_timer(r),
            Input::Timer(Timer::Propose(r)) => {
                if r == self.round {
                    self.propose(true);
                }
            }
            Input::Payload(cmd) => match self.mempool.add(cmd) {
                Ok(()) => self.propose(false),
                Err(reason) => self.reject(None, reason),
            },
            Input::SafetyPersisted { version } => self.safety.persisted(version),
            Input::Reachability { peer, reachable } => self.on_reachability(peer, reachable),
        }
        self.finish()
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
            if self.now_ms.saturating_add(after_ms) < self.round_deadline_ms {
                self.arm_round_timer(after_ms);
            }
        }
    }

    /// Arms the current round's timer and remembers its deadline.
    pub(super) fn arm_round_timer(&mut self, after_ms: u64) {
        self.round_deadline_ms = self.now_ms.saturating_add(after_ms);
        self.out.push(Action::SetTimer { timer: Timer::Round(self.round), after_ms });
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

    /// Ends a step: asks for the safety data to be persisted if it changed (one write per step:
    /// group commit), then releases every sealed message whose version is durable.
    fn finish(&mut self) -> Vec<Action> {
        loop {
            if self.safety.dirty() && self.persist_requested < self.safety.version() {
                self.persist_requested = self.safety.version();
                let data = self.safety.data().clone();
                self.out.push(Action::PersistSafety { version: self.persist_requested, data });
            }
            // Releasing our own vote or timeout can form a QC or TC, which changes the safety
            // data and may seal more messages: repeat until nothing more is released.
            if self.release_durable() == 0 {
                break;
            }
        }
        std::mem::take(&mut self.out)
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
                        self.out.push(Action::Broadcast { message: Message::Proposal(p) });
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
        self.out.push(Action::Rejected { from, reason });
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
        self.out.push(Action::Evidence(ev));
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
        }
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
