//! The replica: one state machine fed by [`Input`]s that returns a [`Step`] for each.
//!
//! Split by concern: `proposal.rs` (proposing and voting), `certs.rs` (QCs, TCs, rounds,
//! commits), `timeout.rs` (the pacemaker's timeouts), `sync.rs` (fetching missing blocks).

mod attest;
mod certs;
mod epoch;
mod proposal;
mod reputation;
mod step;
mod sync;
mod timeout;
mod validate;

pub use validate::CoreInvariant;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use warpnet_types::epoch::CommitProof;
use warpnet_types::{
    Block, BlockId, ConsensusConfig, Height, Message, NodeId, Proposal, PublicKey,
    QuorumCertificate, Round, Signature, Signer, Timeout, TimeoutCertificate, Vote,
};

use crate::collect::{TimeoutCollector, VoteCollector};
use crate::evidence::Equivocation;
use crate::io::{EpochChange, Input, Rejection, Step, Timer, Write};
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
    /// The last committed blocks' health records, oldest first, ending with `committed`:
    /// [`crate::health::history_len`] of them when the chain has that many (H3; records of an
    /// earlier epoch are used only for its last summary, H5).
    pub history: Vec<crate::health::Record>,
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
            history: Vec::new(),
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
    /// To the next leader, and to the leader after it (H1: it records late votes).
    Vote {
        to: NodeId,
        recorder: Option<NodeId>,
        vote: Sealed<Vote>,
    },
    Timeout {
        timeout: Sealed<Timeout>,
        tc: Option<TimeoutCertificate>,
    },
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
    pub epoch: warpnet_types::Epoch,
    /// This replica's index in the epoch's committee; `None` when it is not a member (a
    /// joining node following the chain, or a removed member lingering).
    pub member: Option<NodeId>,
}

/// One replica's consensus state. See the crate documentation for the contract.
pub struct Core {
    config: Arc<ConsensusConfig>,
    /// Our index in the epoch's committee, if a member: only members sign.
    me: Option<NodeId>,
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
    /// First proposal seen per round and proposer: for E1. (With LR3, two members may each
    /// lead a round after different parents.)
    seen_proposals: BTreeMap<(Round, NodeId), (BlockId, Signature)>,
    /// Proposals whose ancestors are being fetched.
    pending: BTreeMap<Round, (NodeId, Proposal)>,
    /// Sync requests sent this round, by target.
    sync_requested: HashMap<BlockId, Round>,
    evidence: Vec<Equivocation>,
    mempool: Mempool,
    /// Members the transport reports unreachable (PM7).
    unreachable: std::collections::BTreeSet<NodeId>,
    /// H2: the members the runtime last reported reached (kept across epochs).
    reached: Vec<PublicKey>,
    /// H2: the latest valid attestation of each member of the epoch (ours included).
    attestations: BTreeMap<NodeId, warpnet_types::health::Attestation>,
    /// H3: committed records at and below the root, oldest first (this epoch's only).
    history: VecDeque<crate::health::Record>,
    /// H3: the health seen from each block a window recently ended at, with its height.
    /// (Behind a `RefCell`: a read-only query may fill it.)
    health_cache: std::cell::RefCell<HashMap<BlockId, (Height, Arc<crate::health::Health>)>>,
    /// H5: the previous epoch's last summary, filling in while this epoch's window is short.
    carried: Option<Arc<warpnet_types::HealthSummary>>,
    /// The parent of this epoch's genesis and the genesis's height (where windows start).
    genesis_link: (BlockId, Height),
    /// The proof of our latest commit (served to peers catching up, EP4).
    latest_commit: Option<CommitProof>,
    /// H4: the proof that the newest committed block carrying a health summary committed (of
    /// this epoch; gone at an epoch switch until the next summary commits).
    health_proof: Option<CommitProof>,
    /// Blocks proven committed that we are fetching, oldest first: the ends of our epoch and
    /// the next ones (with the committee each starts), then a latest commit (EP4, Y5).
    targets: VecDeque<epoch::Proven>,
    /// The epoch ended in this step (EP3); the switch happens as the step finishes.
    ending: Option<EpochChange>,
    /// Rate limits for EP4: when (core clock) we last answered or asked each peer.
    epoch_served: HashMap<PublicKey, u64>,
    epoch_asked: HashMap<PublicKey, u64>,
    now_ms: u64,
    /// M3: the mempool is looked at for commands to share again from this time on.
    next_reshare_ms: u64,
    /// The step being built, and its write.
    step: Step,
    write: Write,
}

impl Core {
    /// Builds a member's replica from what its storage holds. Call [`Core::start`] next.
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
        if signer.public_key() != *expected {
            return Err(StartError::WrongKey { me });
        }
        Self::recover(config, signer, params, recovery)
    }

    /// Builds a replica from what its storage holds, a member of `config`'s epoch or not (then
    /// it follows the chain without signing, EP4). Call [`Core::start`] next.
    pub fn recover(
        config: Arc<ConsensusConfig>,
        signer: Arc<dyn Signer>,
        params: CoreParams,
        recovery: Recovery,
    ) -> Result<Self, StartError> {
        let me = config.node_id_of(&signer.public_key());
        if signer.scheme() != config.scheme() {
            return Err(StartError::WrongScheme {
                key: signer.scheme(),
                committee: config.scheme(),
            });
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
        // H3, H5: this epoch's committed records, and the previous epoch's last summary.
        let epoch = config.epoch();
        let carried =
            recovery.history.iter().rev().find(|r| r.epoch < epoch).and_then(|r| r.summary.clone());
        let history: VecDeque<_> = recovery
            .history
            .into_iter()
            .filter(|r| r.epoch == epoch && r.height <= tree.root().height())
            .collect();
        let genesis = Block::genesis(&config);
        let genesis_link = (genesis.parent(), genesis.height());
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
            reached: Vec::new(),
            attestations: BTreeMap::new(),
            history,
            health_cache: Default::default(),
            carried,
            genesis_link,
            latest_commit: None,
            health_proof: None,
            targets: VecDeque::new(),
            ending: None,
            epoch_served: HashMap::new(),
            epoch_asked: HashMap::new(),
            now_ms: 0,
            next_reshare_ms: 0,
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
            let peer = high_qc.voters().iter().find(|&id| Some(id) != self.me);
            self.request_sync(high_qc.block_id(), self.key_of(peer));
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
            Input::Reached { peers } => self.on_reached(peers),
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
        self.mempool.set_now(self.now_ms);
        for cmd in commands {
            // EP1: a membership change must be valid for the epoch to be ordered at all.
            let verdict =
                self.check_membership_command(&cmd).and_then(|()| self.mempool.add(cmd.clone()));
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

    /// PM7: a member became unreachable or reachable again. If the current round's leader or
    /// vote collector just went away, the round cannot produce a QC: its timer is shortened.
    fn on_reachability(&mut self, peer: PublicKey, reachable: bool) {
        let Some(peer) = self.config.node_id_of(&peer).filter(|&p| Some(p) != self.me) else {
            return;
        };
        if reachable {
            self.unreachable.remove(&peer);
            return;
        }
        if self.unreachable.insert(peer) && self.round_is_hopeless() {
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

    /// PM7: the current round's leader or next leader (who collects its votes) is unreachable.
    pub(super) fn round_is_hopeless(&self) -> bool {
        if self.unreachable.is_empty() {
            return false;
        }
        let (leader, next) = self.round_pair();
        self.unreachable.contains(&leader) || self.unreachable.contains(&next)
    }

    /// PM3 + PM7: the current round's timeout.
    pub(super) fn round_timeout(&self) -> u64 {
        let normal = self.params.round_timeout_ms(self.consecutive_timeouts);
        if self.round_is_hopeless() {
            normal.min(self.params.unreachable_leader_timeout_ms)
        } else {
            normal
        }
    }

    /// M1: client commands a member shares enter the mempool like a local client's (bounded,
    /// de-duplicated), so they reach a proposal whoever leads next. The runtime checks each
    /// command's client signature before this; a block's commands are checked again when
    /// applied, so a member sharing junk wastes block space but changes no state.
    fn on_shared_commands(&mut self, key: PublicKey, shared: warpnet_types::SharedCommands) {
        let from = self.config.node_id_of(&key);
        let mut added = false;
        self.mempool.set_now(self.now_ms);
        for cmd in shared.commands {
            // EP1: a membership change enters the mempool only if it is valid for the epoch.
            if let Err(reason) = self.check_membership_command(&cmd) {
                self.reject(from, reason);
                continue;
            }
            match self.mempool.add(cmd) {
                Ok(()) => added = true,
                Err(Rejection::DuplicateCommand | Rejection::AlreadyCommitted) => {}
                Err(reason) => {
                    // Full, or a command over the limit: refuse the rest of the message.
                    self.reject(from, reason);
                    break;
                }
            }
        }
        if added {
            self.propose(false);
        }
    }

    fn on_message(&mut self, key: PublicKey, message: Message) {
        if key == self.signer.public_key() {
            return;
        }
        // Served whatever the epoch and whoever asks (EP4, Y2): they let a peer catch up.
        match message {
            Message::SyncRequest(r) => return self.on_sync_request(key, r),
            Message::SyncResponse(r) => return self.on_sync_response(key, r),
            Message::EpochRequest(r) => return self.on_epoch_request(key, r.from),
            Message::EpochProof(p) => return self.on_epoch_proof(key, p),
            // M1: client commands are valid in any epoch (a membership change is checked
            // against ours, EP1); a member catching up or leaving still passes them on.
            Message::Commands(c) => return self.on_shared_commands(key, c),
            // Committee-change gossip is the runtime's (operators' policies, endorsements).
            Message::Membership(_) => return,
            _ => {}
        }
        if message.epoch() != self.config.epoch() {
            return self.on_other_epoch(key, message.epoch());
        }
        let Some(from) = self.config.node_id_of(&key) else {
            return self.reject(None, Rejection::NotMember { kind: message.kind() });
        };
        match message {
            Message::Proposal(p) => self.on_proposal(from, p),
            Message::Vote(v) => self.on_vote(from, v, false),
            Message::Timeout(t) => self.on_timeout_msg(from, t),
            Message::Attestation(a) => self.on_attestation(from, a),
            Message::Commands(_)
            | Message::SyncRequest(_)
            | Message::SyncResponse(_)
            | Message::EpochRequest(_)
            | Message::EpochProof(_)
            | Message::Raft(_)
            | Message::Membership(_) => {}
        }
    }

    pub fn status(&self) -> Status {
        let leader = self.current_leader();
        let root = self.tree.root();
        let data = self.safety.data();
        Status {
            round: self.round,
            leader,
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
            epoch: self.config.epoch(),
            member: self.me,
        }
    }

    /// The armed timers with their deadlines (in the core's clock), at most one of each kind.
    pub fn timers(&self) -> Vec<(Timer, u64)> {
        self.timers.iter().flatten().map(|&(at, t)| (t, at)).collect()
    }

    /// Our index in the epoch's committee, if a member.
    pub fn id(&self) -> Option<NodeId> {
        self.me
    }

    /// The proof of our latest commit in this epoch, if we hold it (served with epoch proofs).
    pub fn latest_commit(&self) -> Option<&CommitProof> {
        self.latest_commit.as_ref()
    }

    /// H4: the newest committed block of this epoch that carries a health summary, proven
    /// committed (the block first; verifiable with the epoch's committee alone).
    pub fn health_proof(&self) -> Option<&CommitProof> {
        self.health_proof.as_ref()
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
