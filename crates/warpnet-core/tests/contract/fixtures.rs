//! Fixtures for every contract test: a committee of real Ed25519 keys, builders for what its
//! members sign, and [`Member`], a core driven through the contract's checks.
//!
//! Every step a test takes goes through [`Member`], which checks after each one what the
//! contract promises whatever the input: [`Core::validate`] holds, the step's `deadline_ms` is
//! the earliest of [`Core::timers`], and writes are numbered 1, 2, 3, ... without a gap.
//! [`Act`] mirrors a [`Step`] in a fixed order so whole steps can be compared exactly.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;

use warpnet_core::{
    Committed, Core, CoreParams, Equivocation, Input, Outgoing, Recovery, Rejection, SafetyData,
    Step, Target, Timer,
};
use warpnet_types::health::BlockHealth;
use warpnet_types::{
    Block, ConsensusConfig, Height, Message, NodeId, Proposal, QuorumCertificate, Round, SchemeId,
    Signer, SyncRequest, Timeout, TimeoutCertificate, TimeoutMsg, Vote,
};

pub const BASE_MS: u64 = 100;
pub const IDLE_MS: u64 = 50;
pub const UNREACHABLE_MS: u64 = 7;
pub const FUTURE_ROUNDS_MAX: u64 = 10;
pub const PAYLOAD_COUNT_MAX: usize = 4;
pub const PAYLOAD_BYTES_MAX: usize = 64;
pub const COMMAND_BYTES_MAX: usize = 32;
pub const SYNC_BLOCKS_MAX: u16 = 16;

pub fn params() -> CoreParams {
    CoreParams {
        round_timeout_base_ms: BASE_MS,
        round_timeout_max_ms: 16 * BASE_MS,
        unreachable_leader_timeout_ms: UNREACHABLE_MS,
        idle_propose_delay_ms: IDLE_MS,
        future_rounds_max: FUTURE_ROUNDS_MAX,
        payload_count_max: PAYLOAD_COUNT_MAX,
        payload_bytes_max: PAYLOAD_BYTES_MAX,
        command_bytes_max: COMMAND_BYTES_MAX,
        mempool_max: 64,
        sync_blocks_max: SYNC_BLOCKS_MAX,
        pending_proposals_max: 4,
        evidence_max: 16,
        ..CoreParams::default()
    }
}

/// A committee with its keys, and builders for everything its members sign.
pub struct Committee {
    pub config: Arc<ConsensusConfig>,
    signers: Vec<Arc<dyn Signer>>,
}

impl Committee {
    pub fn new(n: usize) -> Self {
        let (config, signers) =
            ConsensusConfig::for_testing(n, SchemeId::Ed25519, KEY_SEED).unwrap();
        Self { config: Arc::new(config), signers: signers.into_iter().map(Arc::from).collect() }
    }

    pub fn ids(&self) -> Vec<NodeId> {
        (0..self.config.total_nodes()).map(|i| NodeId(i as u16)).collect()
    }

    /// The leader of `round` after a block of the round before (L1 while the window is short:
    /// every member eligible).
    pub fn leader(&self, round: u64) -> NodeId {
        self.config.leader(Round(round))
    }

    /// The health of a short window (LR1: every public member eligible), as the fixtures'
    /// chains see it.
    fn early_health(&self) -> warpnet_core::health::Health {
        warpnet_core::health::Health::compute(&self.config, &[], Height(0), None)
    }

    /// LR5: the leader of `round` for a block extending `parent` (the leaders of the rounds
    /// that failed since, and those `parent` blames, skipped).
    pub fn leader_after(&self, parent: &Block, round: u64) -> NodeId {
        let since = warpnet_core::health::Since::of_block(parent);
        self.early_health().leader(&self.config, since, Round(round))
    }

    /// [`Committee::leader_after`] for a parent of `parent_round` that blames nobody.
    pub fn leader_after_round(&self, parent_round: u64, round: u64) -> NodeId {
        let since = warpnet_core::health::Since::clean(Round(parent_round));
        self.early_health().leader(&self.config, since, Round(round))
    }

    pub fn q(&self) -> usize {
        self.config.quorum_threshold()
    }

    pub fn signer(&self, id: NodeId) -> &dyn Signer {
        self.signers[id.index()].as_ref()
    }

    /// A member leading none of `rounds` (there is one while `rounds` has fewer than `n`
    /// distinct leaders).
    pub fn follower(&self, rounds: &[u64]) -> NodeId {
        let leaders: HashSet<NodeId> = rounds.iter().map(|&r| self.leader(r)).collect();
        self.ids()
            .into_iter()
            .find(|id| !leaders.contains(id))
            .expect("a member that leads none of these rounds")
    }

    /// A member that leads neither round 1 nor round 2 once round 1 timed out (LR5 skips
    /// round 1's leader then).
    pub fn follower_through_a_timeout(&self) -> NodeId {
        self.other_than(&[self.leader(1), self.leader_after_round(0, 2)])[0]
    }

    /// The members other than those listed, in id order.
    pub fn other_than(&self, not: &[NodeId]) -> Vec<NodeId> {
        self.ids().into_iter().filter(|id| !not.contains(id)).collect()
    }

    /// A member built from `recovery` with the test parameters, not started.
    pub fn core(&self, id: NodeId, recovery: Recovery) -> Member {
        self.core_with(id, params(), recovery)
    }

    pub fn core_with(&self, id: NodeId, params: CoreParams, recovery: Recovery) -> Member {
        let signer = self.signers[id.index()].clone();
        let core = Core::new(self.config.clone(), id, signer, params, recovery).expect("starts");
        Member { core, now: 0, last_seq: 0 }
    }

    /// A fresh member, started at time 0; returns the start step too.
    pub fn start(&self, id: NodeId) -> (Member, Vec<Act>) {
        let mut core = self.core(id, Recovery::genesis(&self.config));
        let acts = core.start(0);
        (core, acts)
    }

    pub fn recovery(&self, safety: SafetyData, blocks: Vec<Block>) -> Recovery {
        Recovery { safety, blocks, ..Recovery::genesis(&self.config) }
    }

    pub fn genesis(&self) -> Block {
        Block::genesis(&self.config)
    }

    pub fn genesis_qc(&self) -> QuorumCertificate {
        QuorumCertificate::genesis(&self.config)
    }

    /// A block by `proposer` at `round` and `height`, extending the block `justify` certifies,
    /// stamped `round * 10` ms. After failed rounds it records what a leader must (H1, LR2):
    /// the signers of [`Committee::tc`] and the L1 leaders of the failed rounds (every member
    /// is eligible in these short chains).
    pub fn block_by(
        &self,
        proposer: NodeId,
        round: u64,
        height: u64,
        justify: &QuorumCertificate,
        payload: Vec<Vec<u8>>,
    ) -> Block {
        let b = Block::new(
            self.config.epoch(),
            Round(round),
            Height(height),
            proposer,
            justify.clone(),
            round * 10,
            payload,
        );
        b.with_health(self.records(round, justify.round().0))
    }

    /// H1, LR2: what a block of `round` extending a block of `parent_round` records when the
    /// rounds between failed (see [`Committee::block_by`]).
    pub fn records(&self, round: u64, parent_round: u64) -> BlockHealth {
        if round <= parent_round + 1 {
            return BlockHealth::default();
        }
        let since = warpnet_core::health::Since::clean(Round(parent_round));
        let failed = self.early_health().blame(&self.config, since, Round(round));
        let first_q: Vec<NodeId> = self.ids().into_iter().take(self.q()).collect();
        BlockHealth {
            timeouts: warpnet_types::VoterBitmap::from_ids(self.config.total_nodes(), &first_q)
                .unwrap(),
            failed,
            ..BlockHealth::default()
        }
    }

    /// Where a member sends its vote (H1): the next round's leader, which gathers the QC, and
    /// the leader after it, which records the vote if it came late; a member that is one of
    /// them counts its own vote instead of sending it.
    pub fn vote_sends(&self, vote: &Vote) -> Vec<Act> {
        let (collector, recorder) = (self.leader(vote.round.0 + 1), self.leader(vote.round.0 + 2));
        let mut targets = vec![collector];
        if recorder != collector {
            targets.push(recorder);
        }
        targets
            .into_iter()
            .filter(|&t| t != vote.voter)
            .map(|t| Act::Send(t, Message::Vote(vote.clone())))
            .collect()
    }

    /// A block by the leader of `round`.
    pub fn block(
        &self,
        round: u64,
        height: u64,
        justify: &QuorumCertificate,
        payload: Vec<Vec<u8>>,
    ) -> Block {
        let leader = self.leader_after_round(justify.round().0, round);
        self.block_by(leader, round, height, justify, payload)
    }

    /// The block a leader builds itself: stamped with its clock, `now_ms`.
    pub fn block_at(
        &self,
        round: u64,
        height: u64,
        justify: &QuorumCertificate,
        now_ms: u64,
        payload: Vec<Vec<u8>>,
    ) -> Block {
        let epoch = self.config.epoch();
        let proposer = self.leader(round);
        Block::new(epoch, Round(round), Height(height), proposer, justify.clone(), now_ms, payload)
    }

    /// The proposal of `block`, signed by its proposer.
    pub fn proposal(&self, block: Block, tc: Option<TimeoutCertificate>) -> Proposal {
        let signer = self.signer(block.proposer());
        Proposal::sign(&self.config, block, tc, signer)
    }

    /// `block`'s proposal as a message from its proposer.
    pub fn propose(&self, block: &Block, tc: Option<TimeoutCertificate>) -> Input {
        msg(block.proposer(), Message::Proposal(self.proposal(block.clone(), tc)))
    }

    pub fn vote(&self, block: &Block, voter: NodeId) -> Vote {
        Vote::sign(&self.config, block, voter, self.signer(voter))
    }

    /// A QC for `block` signed by the first `q` members.
    pub fn qc(&self, block: &Block) -> QuorumCertificate {
        let votes: Vec<Vote> =
            self.ids().into_iter().take(self.q()).map(|id| self.vote(block, id)).collect();
        let refs: Vec<&Vote> = votes.iter().collect();
        QuorumCertificate::from_votes(&self.config, &refs).unwrap()
    }

    pub fn timeout(&self, round: u64, high_qc: &QuorumCertificate, signer: NodeId) -> Timeout {
        Timeout::sign(&self.config, Round(round), high_qc.clone(), signer, self.signer(signer))
    }

    /// A TC for `round` signed by the first `q` members, all carrying `high_qc`.
    pub fn tc(&self, round: u64, high_qc: &QuorumCertificate) -> TimeoutCertificate {
        let ts: Vec<Timeout> = self
            .ids()
            .into_iter()
            .take(self.q())
            .map(|id| self.timeout(round, high_qc, id))
            .collect();
        let refs: Vec<&Timeout> = ts.iter().collect();
        TimeoutCertificate::from_timeouts(&self.config, &refs).unwrap()
    }

    pub fn timeout_msg(&self, round: u64, high_qc: &QuorumCertificate, signer: NodeId) -> Message {
        Message::Timeout(TimeoutMsg {
            timeout: self.timeout(round, high_qc, signer),
            last_round_tc: None,
        })
    }

    /// Client commands shared by a member (M1), in this committee's epoch.
    pub fn commands(&self, cmds: &[&str]) -> Message {
        let commands = cmds.iter().map(|s| cmd(s)).collect();
        Message::Commands(warpnet_types::SharedCommands { epoch: self.config.epoch(), commands })
    }

    /// Safety data of a member that signed `vote` and nothing else after genesis.
    pub fn voted(&self, vote: Vote, high_qc: QuorumCertificate) -> SafetyData {
        SafetyData {
            last_voted_round: vote.round,
            high_qc,
            proposal_floor: self.floor(vote.voter, vote.round),
            last_vote: Some(vote),
            ..SafetyData::initial(&self.config)
        }
    }

    /// Safety data of a member that signed `timeout` and nothing else after genesis: S4's floor
    /// is raised if it leads the next round after its highest QC's block (LR5: the rounds
    /// since that block failed).
    pub fn timed_out(&self, timeout: Timeout) -> SafetyData {
        let next = self.leader_after_round(timeout.high_qc.round().0, timeout.round.0 + 1);
        SafetyData {
            last_voted_round: timeout.round,
            proposal_floor: if next == timeout.signer { timeout.round.next() } else { Round(0) },
            last_timeout: Some(timeout),
            ..SafetyData::initial(&self.config)
        }
    }

    /// S4's proposal floor of a member that signed only in `round`: the next round if it leads
    /// it (raised ahead), else this round if it led it (its own proposal), else none.
    pub fn floor(&self, member: NodeId, round: Round) -> Round {
        if self.config.leader(round.next()) == member {
            round.next()
        } else if self.config.leader(round) == member {
            round
        } else {
            Round(0)
        }
    }
}

/// Every committee here draws member `i`'s key from seed `KEY_SEED + i`, so a member's key
/// follows from its id whatever the committee's size.
const KEY_SEED: u64 = 7;

/// The key of member `id` (the core names peers by key; the tests by id).
pub fn key(id: NodeId) -> warpnet_types::PublicKey {
    warpnet_types::crypto::signer_from_seed(SchemeId::Ed25519, KEY_SEED + id.0 as u64).public_key()
}

/// The member holding `key`.
pub fn id_of(k: &warpnet_types::PublicKey) -> NodeId {
    (0..64u16).map(NodeId).find(|&id| key(id) == *k).expect("a test member's key")
}

pub fn msg(from: NodeId, message: Message) -> Input {
    Input::Message { from: key(from), message }
}

pub fn persisted(seq: u64) -> Input {
    Input::Persisted { seq }
}

pub fn cmd(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// One replica under test. Every step goes through here, so every step of every test is
/// checked against the contract (see the module documentation). It dereferences to the
/// [`Core`] for read-only queries (`status`, `timers`, `evidence`, ...), never for a step.
pub struct Member {
    core: Core,
    /// The core's clock: the highest `now_ms` fed so far.
    now: u64,
    /// The last write's number.
    last_seq: u64,
}

impl Deref for Member {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Member {
    pub fn start(&mut self, now_ms: u64) -> Vec<Act> {
        self.run(now_ms, |core| core.start(now_ms))
    }

    /// One input; the step mirrored as [`Act`]s.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Act> {
        self.run(now_ms, |core| core.handle(now_ms, input))
    }

    /// Client commands; each one's verdict and the step mirrored as [`Act`]s.
    pub fn submit(
        &mut self,
        now_ms: u64,
        commands: Vec<Vec<u8>>,
    ) -> (Vec<Result<(), Rejection>>, Vec<Act>) {
        let mut verdicts = Vec::new();
        let acts = self.run(now_ms, |core| {
            let (v, step) = core.submit(now_ms, commands);
            verdicts = v;
            step
        });
        (verdicts, acts)
    }

    /// Starts the member; the step itself (checked like every other).
    pub fn start_step(&mut self, now_ms: u64) -> Step {
        self.checked(now_ms, |core| core.start(now_ms))
    }

    /// One input; the step itself (checked like every other).
    pub fn step(&mut self, now_ms: u64, input: Input) -> Step {
        self.checked(now_ms, |core| core.handle(now_ms, input))
    }

    /// Client commands; each one's verdict and the step itself.
    pub fn submit_step(
        &mut self,
        now_ms: u64,
        commands: Vec<Vec<u8>>,
    ) -> (Vec<Result<(), Rejection>>, Step) {
        let mut verdicts = Vec::new();
        let step = self.checked(now_ms, |core| {
            let (v, step) = core.submit(now_ms, commands);
            verdicts = v;
            step
        });
        (verdicts, step)
    }

    /// The deadline of an armed `timer`, if it is armed.
    pub fn deadline(&self, timer: Timer) -> Option<u64> {
        self.core.timers().into_iter().find(|(t, _)| *t == timer).map(|(_, at)| at)
    }

    fn run(&mut self, now_ms: u64, f: impl FnOnce(&mut Core) -> Step) -> Vec<Act> {
        let before = self.core.timers();
        let step = self.checked(now_ms, f);
        let mut acts = mirror(step);
        // Timers armed (or re-armed with another deadline) by this step, in kind order.
        for (timer, at) in self.core.timers() {
            if !before.contains(&(timer, at)) {
                let after_ms = at.checked_sub(self.now).expect("a timer armed in the past");
                acts.push(Act::SetTimer(timer, after_ms));
            }
        }
        acts
    }

    /// Runs one step and checks what the contract promises after every step.
    fn checked(&mut self, now_ms: u64, f: impl FnOnce(&mut Core) -> Step) -> Step {
        self.now = self.now.max(now_ms);
        let step = f(&mut self.core);
        assert_eq!(self.core.validate(), Ok(()), "a core invariant broke: {step:#?}");
        let earliest = self.core.timers().into_iter().map(|(_, at)| at).min();
        assert_eq!(step.deadline_ms, earliest, "deadline_ms is the earliest armed timer");
        if let Some(write) = &step.write {
            assert_eq!(write.seq, self.last_seq + 1, "writes are numbered 1, 2, 3, ...");
            assert!(!write.is_empty(), "a step hands out no empty write");
            self.last_seq = write.seq;
        }
        step
    }
}

/// A [`Step`] as a flat list, in a fixed order, so whole steps compare exactly: the write
/// (its number, then its blocks, commits and safety data), the messages in order, the sync
/// requests to serve, evidence, rejections, and last the timers the step armed (with their
/// delay from the step's time).
#[derive(Clone, Debug, PartialEq)]
pub enum Act {
    Write(u64),
    PersistBlock(Block),
    Commit(Committed),
    PersistSafety(SafetyData),
    Send(NodeId, Message),
    Broadcast(Message),
    ServeSync(NodeId, SyncRequest),
    ServeEpochs(NodeId, warpnet_types::Epoch),
    Evidence(Equivocation),
    Rejected(Option<NodeId>, Rejection),
    SetTimer(Timer, u64),
}

fn mirror(step: Step) -> Vec<Act> {
    let Step { write, messages, serve_sync, serve_epochs, evidence, rejected, deadline_ms: _ } =
        step;
    let mut acts = Vec::new();
    if let Some(w) = write {
        acts.push(Act::Write(w.seq));
        acts.extend(w.blocks.into_iter().map(Act::PersistBlock));
        acts.extend(w.commits.into_iter().map(Act::Commit));
        acts.extend(w.safety.map(Act::PersistSafety));
    }
    for Outgoing { to, message } in messages {
        acts.push(match to {
            Target::One(k) => Act::Send(id_of(&k), message),
            Target::All => Act::Broadcast(message),
        });
    }
    acts.extend(serve_sync.into_iter().map(|(to, r)| Act::ServeSync(id_of(&to), r)));
    acts.extend(serve_epochs.into_iter().map(|(to, e)| Act::ServeEpochs(id_of(&to), e)));
    acts.extend(evidence.into_iter().map(Act::Evidence));
    acts.extend(rejected.into_iter().map(|(from, reason)| Act::Rejected(from, reason)));
    acts
}

/// The write of a step that writes safety data: (its number, the safety data).
pub fn the_persist(acts: &[Act]) -> (u64, SafetyData) {
    let seq = acts.iter().find_map(|a| match a {
        Act::Write(seq) => Some(*seq),
        _ => None,
    });
    let found: Vec<SafetyData> = acts
        .iter()
        .filter_map(|a| match a {
            Act::PersistSafety(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "exactly one write of safety data expected in {acts:#?}");
    (seq.expect("a write"), found.into_iter().next().unwrap())
}

/// Whether the step sends a signed consensus message (shared client commands do not count).
pub fn sends_anything(acts: &[Act]) -> bool {
    acts.iter().any(|a| match a {
        Act::Send(_, m) | Act::Broadcast(m) => !matches!(m, Message::Commands(_)),
        _ => false,
    })
}

/// The timers a step armed: (timer, delay from the step's time).
pub fn timers(acts: &[Act]) -> Vec<(Timer, u64)> {
    acts.iter()
        .filter_map(|a| match a {
            Act::SetTimer(t, ms) => Some((*t, *ms)),
            _ => None,
        })
        .collect()
}

/// The block a step writes.
pub fn acts_block(acts: &[Act]) -> Block {
    acts.iter()
        .find_map(|a| match a {
            Act::PersistBlock(b) => Some(b.clone()),
            _ => None,
        })
        .expect("a written block")
}
