//! The core's contract, rule by rule, as scenarios.
//!
//! Each test is named after the rule it proves (the names used in `lib.rs` and in the code
//! comments: S1–S4 safety, C1 commit, Q1 quorum verification, P1–P6 proposals, PM0–PM6
//! pacemaker, E1 evidence, Y1–Y3 sync). Tests drive real [`Core`]s with an Ed25519 committee of
//! four (`f = 1`, `q = 3`) and compare the returned actions exactly. Leaders are never
//! hard-coded: the rotation is a per-cycle permutation, so every test asks `config.leader`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use warpnet_core::tree::{BlockTree, TreeError};
use warpnet_core::{
    Action, Committed, Core, CoreParams, Equivocation, Input, Recovery, Rejection, SafetyData,
    SafetyError, Statement, Timer,
};
use warpnet_types::{
    Block, BlockId, ConsensusConfig, Decode, Encode, Epoch, Height, Message, NodeId, Proposal,
    QuorumCertificate, Round, SchemeId, Signer, SyncRequest, SyncResponse, Timeout,
    TimeoutCertificate, TimeoutMsg, ValidationError, Vote, VoterBitmap,
};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const BASE_MS: u64 = 100;
const IDLE_MS: u64 = 50;
const UNREACHABLE_MS: u64 = 7;
const FUTURE_ROUNDS_MAX: u64 = 10;
const PAYLOAD_COUNT_MAX: usize = 4;
const PAYLOAD_BYTES_MAX: usize = 64;
const SYNC_BLOCKS_MAX: u16 = 16;

fn params() -> CoreParams {
    CoreParams {
        round_timeout_base_ms: BASE_MS,
        round_timeout_max_ms: 16 * BASE_MS,
        unreachable_leader_timeout_ms: UNREACHABLE_MS,
        idle_propose_delay_ms: IDLE_MS,
        future_rounds_max: FUTURE_ROUNDS_MAX,
        payload_count_max: PAYLOAD_COUNT_MAX,
        payload_bytes_max: PAYLOAD_BYTES_MAX,
        command_bytes_max: 32,
        mempool_max: 64,
        sync_blocks_max: SYNC_BLOCKS_MAX,
        pending_proposals_max: 4,
        evidence_max: 16,
        ..CoreParams::default()
    }
}

/// A committee with its keys, and builders for everything its members sign.
struct Committee {
    config: Arc<ConsensusConfig>,
    signers: Vec<Arc<dyn Signer>>,
}

impl Committee {
    fn new(n: usize) -> Self {
        let (config, signers) = ConsensusConfig::for_testing(n, SchemeId::Ed25519, 7).unwrap();
        Self { config: Arc::new(config), signers: signers.into_iter().map(Arc::from).collect() }
    }

    fn ids(&self) -> Vec<NodeId> {
        (0..self.config.total_nodes()).map(|i| NodeId(i as u16)).collect()
    }

    fn leader(&self, round: u64) -> NodeId {
        self.config.leader(Round(round))
    }

    fn q(&self) -> usize {
        self.config.quorum_threshold()
    }

    fn signer(&self, id: NodeId) -> &dyn Signer {
        self.signers[id.index()].as_ref()
    }

    /// A member leading none of `rounds` (there is one while `rounds` has fewer than `n`
    /// distinct leaders).
    fn follower(&self, rounds: &[u64]) -> NodeId {
        let leaders: HashSet<NodeId> = rounds.iter().map(|&r| self.leader(r)).collect();
        self.ids()
            .into_iter()
            .find(|id| !leaders.contains(id))
            .expect("a member that leads none of these rounds")
    }

    /// The members other than those listed, in id order.
    fn other_than(&self, not: &[NodeId]) -> Vec<NodeId> {
        self.ids().into_iter().filter(|id| !not.contains(id)).collect()
    }

    fn core(&self, id: NodeId, recovery: Recovery) -> Core {
        Core::new(self.config.clone(), id, self.signers[id.index()].clone(), params(), recovery)
            .expect("core starts")
    }

    /// A fresh member, started; returns the start actions too.
    fn start(&self, id: NodeId) -> (Core, Vec<Act>) {
        let mut core = self.core(id, Recovery::genesis(&self.config));
        let acts = mirror(core.start(0));
        (core, acts)
    }

    fn recovery(&self, safety: SafetyData, blocks: Vec<Block>) -> Recovery {
        Recovery { safety, blocks, ..Recovery::genesis(&self.config) }
    }

    fn genesis(&self) -> Block {
        Block::genesis(&self.config)
    }

    fn genesis_qc(&self) -> QuorumCertificate {
        QuorumCertificate::genesis(&self.config)
    }

    /// A block by `proposer` at `round` and `height`, extending the block `justify` certifies,
    /// stamped `round * 10` ms.
    fn block_by(
        &self,
        proposer: NodeId,
        round: u64,
        height: u64,
        justify: &QuorumCertificate,
        payload: Vec<Vec<u8>>,
    ) -> Block {
        Block::new(
            self.config.epoch(),
            Round(round),
            Height(height),
            proposer,
            justify.clone(),
            round * 10,
            payload,
        )
    }

    /// A block by the leader of `round`.
    fn block(
        &self,
        round: u64,
        height: u64,
        justify: &QuorumCertificate,
        payload: Vec<Vec<u8>>,
    ) -> Block {
        self.block_by(self.leader(round), round, height, justify, payload)
    }

    /// The proposal of `block`, signed by its proposer.
    fn proposal(&self, block: Block, tc: Option<TimeoutCertificate>) -> Proposal {
        let signer = self.signer(block.proposer());
        Proposal::sign(&self.config, block, tc, signer)
    }

    fn vote(&self, block: &Block, voter: NodeId) -> Vote {
        Vote::sign(&self.config, block, voter, self.signer(voter))
    }

    /// A QC for `block` signed by the first `q` members.
    fn qc(&self, block: &Block) -> QuorumCertificate {
        let votes: Vec<Vote> =
            self.ids().into_iter().take(self.q()).map(|id| self.vote(block, id)).collect();
        let refs: Vec<&Vote> = votes.iter().collect();
        QuorumCertificate::from_votes(&self.config, &refs).unwrap()
    }

    fn timeout(&self, round: u64, high_qc: &QuorumCertificate, signer: NodeId) -> Timeout {
        Timeout::sign(&self.config, Round(round), high_qc.clone(), signer, self.signer(signer))
    }

    /// A TC for `round` signed by the first `q` members, all carrying `high_qc`.
    fn tc(&self, round: u64, high_qc: &QuorumCertificate) -> TimeoutCertificate {
        let ts: Vec<Timeout> = self
            .ids()
            .into_iter()
            .take(self.q())
            .map(|id| self.timeout(round, high_qc, id))
            .collect();
        let refs: Vec<&Timeout> = ts.iter().collect();
        TimeoutCertificate::from_timeouts(&self.config, &refs).unwrap()
    }

    fn timeout_msg(&self, round: u64, high_qc: &QuorumCertificate, signer: NodeId) -> Message {
        Message::Timeout(TimeoutMsg {
            timeout: self.timeout(round, high_qc, signer),
            last_round_tc: None,
        })
    }

    /// Safety data of a member that signed `vote` and nothing else after genesis.
    fn voted(&self, vote: Vote, high_qc: QuorumCertificate) -> SafetyData {
        SafetyData {
            last_voted_round: vote.round,
            high_qc,
            last_vote: Some(vote),
            ..SafetyData::initial(&self.config)
        }
    }
}

fn msg(from: NodeId, message: Message) -> Input {
    Input::Message { from, message }
}

fn persisted(version: u64) -> Input {
    Input::SafetyPersisted { version }
}

fn cmd(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// [`Action`] with equality, so whole action lists can be compared exactly.
#[derive(Clone, Debug, PartialEq)]
enum Act {
    Send(NodeId, Message),
    Broadcast(Message),
    PersistSafety(u64, SafetyData),
    PersistBlock(Block),
    Commit(Committed),
    SetTimer(Timer, u64),
    ServeSync(NodeId, SyncRequest),
    Evidence(Equivocation),
    Rejected(Option<NodeId>, Rejection),
}

fn mirror(actions: Vec<Action>) -> Vec<Act> {
    actions
        .into_iter()
        .map(|a| match a {
            Action::Send { to, message } => Act::Send(to, message),
            Action::Broadcast { message } => Act::Broadcast(message),
            Action::PersistSafety { version, data } => Act::PersistSafety(version, data),
            Action::PersistBlock(b) => Act::PersistBlock(b),
            Action::Commit(c) => Act::Commit(c),
            Action::SetTimer { timer, after_ms } => Act::SetTimer(timer, after_ms),
            Action::ServeSync { to, request } => Act::ServeSync(to, request),
            Action::Evidence(e) => Act::Evidence(e),
            Action::Rejected { from, reason } => Act::Rejected(from, reason),
        })
        .collect()
}

/// The single `PersistSafety` of a step: (version, data).
fn the_persist(acts: &[Act]) -> (u64, SafetyData) {
    let found: Vec<(u64, SafetyData)> = acts
        .iter()
        .filter_map(|a| match a {
            Act::PersistSafety(v, d) => Some((*v, d.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "exactly one PersistSafety expected in {acts:#?}");
    found.into_iter().next().unwrap()
}

fn sends_anything(acts: &[Act]) -> bool {
    acts.iter().any(|a| matches!(a, Act::Send(..) | Act::Broadcast(..)))
}

fn timers(acts: &[Act]) -> Vec<(Timer, u64)> {
    acts.iter()
        .filter_map(|a| match a {
            Act::SetTimer(t, ms) => Some((*t, *ms)),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Persist before release (the contract's central promise), S1, S4
// ---------------------------------------------------------------------------------------------

/// PM1: a member starts in round 1 with the base round timeout; the round-1 leader also arms
/// its idle-proposal timer (it has nothing to propose yet).
#[test]
fn pm1_start_arms_the_round_timer_and_the_idle_leader_its_propose_timer() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let (_, acts) = c.start(l1);
    assert_eq!(
        acts,
        [
            Act::SetTimer(Timer::Round(Round(1)), BASE_MS),
            Act::SetTimer(Timer::Propose(Round(1)), IDLE_MS)
        ]
    );
    let r = c.follower(&[1]);
    let (core, acts) = c.start(r);
    assert_eq!(acts, [Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]);
    assert_eq!(core.status().round, Round(1));
}

/// S1b + persist-before-release: a vote for a valid round-1 proposal is signed, the block and
/// the safety data are handed out for persisting, and the vote leaves only once that version
/// is reported durable, addressed to the leader of round 2.
#[test]
fn s1b_vote_is_released_only_after_its_safety_data_is_persisted() {
    let c = Committee::new(4);
    let (l1, l2) = (c.leader(1), c.leader(2));
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);

    let b1 = c.block(1, 1, &c.genesis_qc(), vec![cmd("a")]);
    let acts = mirror(core.handle(10, msg(l1, Message::Proposal(c.proposal(b1.clone(), None)))));
    let vote = c.vote(&b1, r);
    let (version, data) = the_persist(&acts);
    assert_eq!(data, c.voted(vote.clone(), c.genesis_qc()));
    assert_eq!(acts, [Act::PersistBlock(b1.clone()), Act::PersistSafety(version, data)]);
    assert!(!sends_anything(&acts), "no vote before its safety data is durable");

    // An older version being durable is not enough.
    assert_eq!(mirror(core.handle(11, persisted(version - 1))), []);
    // Once durable, the vote goes out, to the next leader only.
    assert_eq!(mirror(core.handle(12, persisted(version))), [Act::Send(l2, Message::Vote(vote))]);
    // And only once.
    assert_eq!(mirror(core.handle(13, persisted(version))), []);
}

/// S2 + PM4 + persist-before-release: the round timer makes the member sign a timeout carrying
/// its highest QC and re-arm the timer; the timeout is broadcast only after its safety data is
/// durable. Firing again re-sends the same timeout (S3) without a new write. A stale timer does
/// nothing.
#[test]
fn s2_timeout_is_broadcast_only_after_its_safety_data_is_persisted() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);

    let acts = mirror(core.handle(100, Input::Timer(Timer::Round(Round(1)))));
    let timeout = c.timeout(1, &c.genesis_qc(), r);
    let expected = SafetyData {
        last_voted_round: Round(1),
        last_timeout: Some(timeout.clone()),
        ..SafetyData::initial(&c.config)
    };
    let (version, _) = the_persist(&acts);
    assert_eq!(
        acts,
        [Act::SetTimer(Timer::Round(Round(1)), BASE_MS), Act::PersistSafety(version, expected)]
    );
    let out = Message::Timeout(TimeoutMsg { timeout, last_round_tc: None });
    assert_eq!(mirror(core.handle(101, persisted(version))), [Act::Broadcast(out.clone())]);

    // PM4/S3: fires again in the same round: the very same timeout, nothing new to persist.
    assert_eq!(
        mirror(core.handle(200, Input::Timer(Timer::Round(Round(1))))),
        [Act::SetTimer(Timer::Round(Round(1)), BASE_MS), Act::Broadcast(out)]
    );
    // A timer of another round is stale.
    assert_eq!(mirror(core.handle(201, Input::Timer(Timer::Round(Round(7))))), []);

    // S2: having timed out in round 1, it never votes in round 1.
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let acts =
        mirror(core.handle(202, msg(c.leader(1), Message::Proposal(c.proposal(b1.clone(), None)))));
    assert!(!sends_anything(&acts));
    assert_eq!(
        acts,
        [
            Act::PersistBlock(b1),
            Act::Rejected(
                Some(c.leader(1)),
                Rejection::Safety(SafetyError::AlreadyVoted {
                    round: Round(1),
                    last_voted: Round(1)
                })
            )
        ]
    );
}

/// S4 + persist-before-release: a leader's proposal leaves together with its own vote, and
/// neither before the safety data recording that vote (hence the round) is durable.
#[test]
fn s4_leaders_proposal_is_held_until_its_safety_data_is_persisted() {
    let c = Committee::new(4);
    let (l1, l2) = (c.leader(1), c.leader(2));
    let (mut core, _) = c.start(l1);

    let acts = mirror(core.handle(5, Input::Payload(cmd("tx-1"))));
    let b1 =
        Block::new(c.config.epoch(), Round(1), Height(1), l1, c.genesis_qc(), 5, vec![cmd("tx-1")]);
    let vote = c.vote(&b1, l1);
    let (version, _) = the_persist(&acts);
    assert_eq!(
        acts,
        [
            Act::PersistBlock(b1.clone()),
            Act::PersistSafety(version, c.voted(vote.clone(), c.genesis_qc()))
        ]
    );
    assert!(!sends_anything(&acts), "no proposal before the leader's safety data is durable");

    assert_eq!(
        mirror(core.handle(6, persisted(version))),
        [
            Act::Broadcast(Message::Proposal(c.proposal(b1, None))),
            Act::Send(l2, Message::Vote(vote)),
        ]
    );
}

/// M1: commands a member shares reach the leader's proposal exactly as a local client's do;
/// duplicates (of the mempool or within the message) are dropped, and a message for another
/// epoch changes nothing.
#[test]
fn m1_shared_commands_enter_the_mempool_and_the_leaders_proposal() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let peer = c.ids().into_iter().find(|&i| i != l1).unwrap();
    let (mut core, _) = c.start(l1);
    let shared = |epoch, cmds: &[&str]| {
        msg(
            peer,
            Message::Commands(warpnet_types::SharedCommands {
                epoch,
                commands: cmds.iter().map(|s| cmd(s)).collect(),
            }),
        )
    };
    let wrong = mirror(core.handle(4, shared(warpnet_types::Epoch(9), &["x"])));
    assert!(matches!(wrong.as_slice(), [Act::Rejected(Some(_), Rejection::WrongEpoch { .. })]));
    assert_eq!(core.status().mempool, 0);

    let acts = mirror(core.handle(5, shared(c.config.epoch(), &["tx-1", "tx-2", "tx-1"])));
    let b1 = Block::new(
        c.config.epoch(),
        Round(1),
        Height(1),
        l1,
        c.genesis_qc(),
        5,
        vec![cmd("tx-1"), cmd("tx-2")],
    );
    assert!(acts.contains(&Act::PersistBlock(b1)), "the leader proposes the shared commands");
    assert_eq!(core.status().mempool, 2);
}

// ---------------------------------------------------------------------------------------------
// S3 / S4 across restarts
// ---------------------------------------------------------------------------------------------

/// S3: a member restarted from its persisted safety data, asked again about the block it voted
/// for, re-sends a byte-identical vote without signing (or persisting) anything new; asked about
/// a different block of that round, it refuses (S1a).
#[test]
fn s3_restarted_member_resends_the_identical_vote_and_refuses_a_conflicting_block() {
    let c = Committee::new(4);
    let (l1, l2) = (c.leader(1), c.leader(2));
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![cmd("a")]);
    let p1 = c.proposal(b1.clone(), None);
    let acts = mirror(core.handle(10, msg(l1, Message::Proposal(p1.clone()))));
    let (version, data) = the_persist(&acts);
    let sent = mirror(core.handle(11, persisted(version)));
    let [Act::Send(to, Message::Vote(first))] = sent.as_slice() else {
        panic!("expected one vote, got {sent:#?}")
    };
    assert_eq!(*to, l2);
    drop(core); // crash

    // Restart with the block store and the safety data.
    let mut core = c.core(r, c.recovery(data.clone(), vec![b1.clone()]));
    assert_eq!(mirror(core.start(20)), [Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]);
    let acts = mirror(core.handle(21, msg(l1, Message::Proposal(p1.clone()))));
    assert_eq!(acts, [Act::Send(l2, Message::Vote(first.clone()))], "no new signature, no write");
    let Act::Send(_, again) = &acts[0] else { unreachable!() };
    assert_eq!(again.to_frame(), Message::Vote(first.clone()).to_frame(), "byte-identical");

    // Restart again (the block store lost the block): same vote, after storing the block.
    let mut core = c.core(r, c.recovery(data.clone(), vec![]));
    let _ = core.start(30);
    assert_eq!(
        mirror(core.handle(31, msg(l1, Message::Proposal(p1)))),
        [Act::PersistBlock(b1), Act::Send(l2, Message::Vote(first.clone()))]
    );

    // A different block for round 1 (the first this incarnation sees, so not equivocation
    // evidence to it): refused by the safety rules, nothing sent, nothing signed.
    let mut core = c.core(r, c.recovery(data, vec![]));
    let _ = core.start(40);
    let other = c.block(1, 1, &c.genesis_qc(), vec![cmd("b")]);
    let acts = mirror(core.handle(41, msg(l1, Message::Proposal(c.proposal(other.clone(), None)))));
    assert_eq!(
        acts,
        [
            Act::PersistBlock(other),
            Act::Rejected(
                Some(l1),
                Rejection::Safety(SafetyError::AlreadyVoted {
                    round: Round(1),
                    last_voted: Round(1)
                })
            ),
        ]
    );
}

/// S3 for timeouts: restarted in the round it timed out in, a member re-broadcasts the same
/// signed timeout at once (its data is durable by definition), without a new write.
#[test]
fn s3_restarted_member_resends_the_identical_timeout() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let acts = mirror(core.handle(100, Input::Timer(Timer::Round(Round(1)))));
    let (version, data) = the_persist(&acts);
    let sent = mirror(core.handle(101, persisted(version)));
    drop(core);

    let mut core = c.core(r, c.recovery(data, vec![]));
    assert_eq!(mirror(core.start(200)), [Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]);
    let mut again = mirror(core.handle(300, Input::Timer(Timer::Round(Round(1)))));
    assert_eq!(again.remove(0), Act::SetTimer(Timer::Round(Round(1)), BASE_MS));
    assert_eq!(again, sent);
}

/// S3 through storage: what the runtime writes for `PersistSafety` is the encoded safety data;
/// decoding it must give the same data back (the highest TC included), or a restarted member
/// forgets what it signed.
#[test]
fn s3_persisted_safety_data_survives_encoding() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let acts = mirror(core.handle(10, msg(c.leader(1), Message::Proposal(c.proposal(b1, None)))));
    let (_, voted) = the_persist(&acts);
    let tc = c.tc(1, &c.genesis_qc());
    let with_tc = SafetyData { high_tc: Some(tc), ..voted.clone() };
    for data in [SafetyData::initial(&c.config), voted, with_tc] {
        let decoded = SafetyData::from_bytes(&data.to_bytes());
        assert_eq!(decoded.as_ref(), Ok(&data));
    }
}

/// S4: a leader restarted in a round it already proposed in (its vote for its own block is in
/// the persisted safety data) never proposes in that round again: not at start, not when a
/// payload arrives, not when its propose timer fires.
#[test]
fn s4_restarted_leader_does_not_propose_twice_in_a_round() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let (mut core, _) = c.start(l1);
    let acts = mirror(core.handle(5, Input::Payload(cmd("tx-1"))));
    let (version, data) = the_persist(&acts);
    let _ = core.handle(6, persisted(version));
    drop(core);

    for blocks in [vec![], vec![acts_block(&acts)]] {
        let mut core = c.core(l1, c.recovery(data.clone(), blocks));
        assert_eq!(mirror(core.start(10)), [Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]);
        assert_eq!(core.status().round, Round(1));
        assert_eq!(mirror(core.handle(11, Input::Payload(cmd("tx-2")))), []);
        assert_eq!(mirror(core.handle(12, Input::Timer(Timer::Propose(Round(1))))), []);
    }
}

fn acts_block(acts: &[Act]) -> Block {
    acts.iter()
        .find_map(|a| match a {
            Act::PersistBlock(b) => Some(b.clone()),
            _ => None,
        })
        .expect("a PersistBlock")
}

/// PM0: a member restarted after voting in round r resumes in round r (not 1), so its timer
/// and its timeouts are for the round it was in; S2 lets it time out there when the round was
/// entered through a TC (the TC is persisted with the vote).
#[test]
fn pm0_restarted_member_resumes_in_the_round_it_voted_in() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2, 3]);
    let (mut core, _) = c.start(r);
    let tc1 = c.tc(1, &c.genesis_qc());
    let b2 = c.block(2, 1, &c.genesis_qc(), vec![]);
    let acts = mirror(core.handle(
        10,
        msg(c.leader(2), Message::Proposal(c.proposal(b2.clone(), Some(tc1.clone())))),
    ));
    let (_, data) = the_persist(&acts);
    assert_eq!(data.high_tc.as_ref(), Some(&tc1));
    assert_eq!(data.last_voted_round, Round(2));
    drop(core);

    let mut core = c.core(r, c.recovery(data, vec![b2]));
    let acts = mirror(core.start(20));
    assert_eq!(core.status().round, Round(2));
    assert_eq!(acts, [Act::SetTimer(Timer::Round(Round(2)), BASE_MS)]);
    let acts = mirror(core.handle(30, Input::Timer(Timer::Round(Round(2)))));
    let (version, data) = the_persist(&acts);
    assert_eq!(data.last_timeout.as_ref().map(|t| t.round), Some(Round(2)));
    let out = mirror(core.handle(31, persisted(version)));
    let [Act::Broadcast(Message::Timeout(t))] = out.as_slice() else { panic!("{out:#?}") };
    assert_eq!((t.timeout.round, t.last_round_tc.as_ref()), (Round(2), Some(&tc1)));
}

// ---------------------------------------------------------------------------------------------
// C1: the 2-chain commit rule
// ---------------------------------------------------------------------------------------------

fn fake_qc(c: &Committee, b: &Block) -> QuorumCertificate {
    // The tree does not verify signatures (the core does before it records a QC).
    QuorumCertificate::from_parts(
        c.config.epoch(),
        b.round(),
        b.id(),
        VoterBitmap::empty(c.config.total_nodes()),
        vec![],
    )
}

/// C1 on the tree itself: a QC for B1 commits B1's parent B0 exactly when their rounds are
/// consecutive; a round gap (a TC in between) commits nothing; the next consecutive pair
/// commits the whole uncommitted prefix at once, in height order, each block once; forks that
/// no longer extend the committed chain are pruned; blocks are refused if they do not extend
/// their parent.
#[test]
fn c1_block_tree_commits_consecutive_rounds_only_and_ancestors_together_in_order() {
    let c = Committee::new(4);
    let g = c.genesis();
    let mut tree = BlockTree::new(g.clone(), c.genesis_qc());
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let b2 = c.block(2, 2, &fake_qc(&c, &b1), vec![]);
    let b3 = c.block(3, 3, &fake_qc(&c, &b2), vec![]);
    // Rounds 4 and 5 fail (TCs); b6 extends b3.
    let b6 = c.block(6, 4, &fake_qc(&c, &b3), vec![]);
    let b7 = c.block(7, 5, &fake_qc(&c, &b6), vec![]);
    // A fork from b2 in round 4.
    let fork = c.block(4, 3, &fake_qc(&c, &b2), vec![cmd("fork")]);
    for b in [&b1, &b2, &b3, &fork, &b6, &b7] {
        assert_eq!(tree.insert(b.clone()), Ok(true));
    }
    assert_eq!(tree.insert(b1.clone()), Ok(false), "already present");

    // A QC for b1: its parent is the committed root; nothing new.
    assert_eq!(tree.commit_for(&fake_qc(&c, &b1)), []);
    // A QC for b2 (round 2 = round(b1) + 1) commits b1, certified by b2's justify.
    assert_eq!(
        tree.commit_for(&fake_qc(&c, &b2)),
        [Committed { block: b1.clone(), certificate: b2.justify().clone() }]
    );
    assert_eq!(tree.root().id(), b1.id());
    // Again: nothing (each height once).
    assert_eq!(tree.commit_for(&fake_qc(&c, &b2)), []);
    // A QC for b6 (round 6) does not commit b3 (round 3): rounds are not consecutive.
    assert_eq!(tree.commit_for(&fake_qc(&c, &b6)), []);
    assert_eq!(tree.root().id(), b1.id());
    // A QC for b7 (round 7 = round(b6) + 1) commits b6 and, with it, b2 and b3, in order.
    let qc7 = fake_qc(&c, &b7);
    let committed = tree.commit_for(&qc7);
    let ids: Vec<(BlockId, Height)> =
        committed.iter().map(|x| (x.block.id(), x.block.height())).collect();
    assert_eq!(
        ids,
        [(b2.id(), Height(2)), (b3.id(), Height(3)), (b6.id(), Height(4))],
        "the whole uncommitted prefix, lowest first"
    );
    for x in &committed {
        let cert = tree_cert_of(&x.block, [&b2, &b3, &b6, &b7]);
        assert_eq!(x.certificate, cert, "each block comes with the QC its child carries");
    }
    assert_eq!(tree.root().id(), b6.id());
    assert!(!tree.contains(&fork.id()), "the fork no longer extends the committed chain");
    assert!(!tree.contains(&b3.id()), "committed ancestors below the root are pruned");
    assert!(tree.contains(&b7.id()));
    assert_eq!(tree.commit_for(&qc7), [], "each height exactly once");

    // Blocks that do not extend their parent are refused.
    let orphan_parent = c.block(9, 9, &fake_qc(&c, &fork), vec![]);
    assert!(matches!(tree.insert(orphan_parent), Err(TreeError::UnknownParent { .. })));
    let low = c.block(8, 3, &fake_qc(&c, &b2), vec![]);
    assert!(matches!(tree.insert(low), Err(TreeError::BelowRoot { .. })));
    let same_round = c.block(7, 6, &fake_qc(&c, &b7), vec![]);
    assert!(matches!(tree.insert(same_round), Err(TreeError::Round { .. })));
}

/// The QC certifying `b`: the justify of its child among `chain`.
fn tree_cert_of<'a>(b: &Block, chain: impl IntoIterator<Item = &'a Block>) -> QuorumCertificate {
    chain.into_iter().find(|x| x.parent() == b.id()).map(|x| x.justify().clone()).expect("a child")
}

/// Decides whether the network loses a message from one member to another.
type DropRule = Box<dyn Fn(NodeId, NodeId, &Message) -> bool>;

/// A synchronous in-memory network of cores: delivers `Send`/`Broadcast` in FIFO order,
/// answers `PersistSafety` at once, serves sync from each member's stored blocks, and fires
/// timers only when a test says so. It checks C1 at every step: each member commits heights in
/// order, each exactly once, each block certified, and the highest block of a commit step has a
/// child in the next round whose QC that member holds.
struct Net {
    c: Committee,
    cores: Vec<Core>,
    queue: VecDeque<(NodeId, Input)>,
    now: u64,
    steps: usize,
    /// Blocks stored by each member (genesis included).
    stores: Vec<HashMap<BlockId, Block>>,
    /// Commits of each member, one entry per step that committed.
    commits: Vec<Vec<Vec<Committed>>>,
    /// Every block seen on the wire.
    wire_blocks: HashMap<BlockId, Block>,
    /// Blocks each member received a QC for (in a message).
    qcs: Vec<HashSet<BlockId>>,
    /// Votes each member received, by block.
    votes: Vec<HashMap<BlockId, HashSet<NodeId>>>,
    /// The last timers each member armed.
    round_timer: Vec<Option<Timer>>,
    propose_timer: Vec<Option<Timer>>,
    rejections: Vec<(NodeId, Option<NodeId>, Rejection)>,
    evidence: Vec<Equivocation>,
    /// Which messages the network loses (none by default).
    drop: DropRule,
}

impl Net {
    fn new(n: usize) -> Self {
        let c = Committee::new(n);
        let ids = c.ids();
        let cores = ids.iter().map(|&id| c.core(id, Recovery::genesis(&c.config))).collect();
        let g = c.genesis();
        Self {
            cores,
            queue: VecDeque::new(),
            now: 0,
            steps: 0,
            stores: ids.iter().map(|_| HashMap::from([(g.id(), g.clone())])).collect(),
            commits: ids.iter().map(|_| Vec::new()).collect(),
            wire_blocks: HashMap::new(),
            qcs: ids.iter().map(|_| HashSet::new()).collect(),
            votes: ids.iter().map(|_| HashMap::new()).collect(),
            round_timer: vec![None; n],
            propose_timer: vec![None; n],
            rejections: Vec::new(),
            evidence: Vec::new(),
            drop: Box::new(|_, _, _| false),
            c,
        }
    }

    fn start(&mut self) {
        for id in self.c.ids() {
            let acts = self.cores[id.index()].start(self.now);
            self.apply(id, acts);
        }
    }

    fn input(&mut self, to: NodeId, input: Input) {
        self.queue.push_back((to, input));
    }

    fn deliver(&mut self, to: NodeId, input: Input) {
        self.now += 1;
        self.steps += 1;
        if let Input::Message { from, message } = &input {
            let i = to.index();
            match message {
                Message::Proposal(p) => {
                    self.qcs[i].insert(p.block.justify().block_id());
                }
                Message::Timeout(t) => {
                    self.qcs[i].insert(t.timeout.high_qc.block_id());
                }
                Message::Vote(v) => {
                    self.votes[i].entry(v.block_id).or_default().insert(*from);
                }
                Message::SyncResponse(r) => {
                    for b in &r.blocks {
                        self.qcs[i].insert(b.justify().block_id());
                    }
                }
                Message::SyncRequest(_) | Message::Commands(_) => {}
            }
        }
        let acts = self.cores[to.index()].handle(self.now, input);
        self.apply(to, acts);
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        if !(self.drop)(from, to, &message) {
            self.queue.push_back((to, Input::Message { from, message }));
        }
    }

    fn apply(&mut self, me: NodeId, actions: Vec<Action>) {
        let i = me.index();
        let mut committed = Vec::new();
        for a in actions {
            match a {
                Action::Send { to, message } => self.send(me, to, message),
                Action::Broadcast { message } => {
                    if let Message::Proposal(p) = &message {
                        self.wire_blocks.insert(p.block.id(), p.block.clone());
                    }
                    for to in self.c.other_than(&[me]) {
                        self.send(me, to, message.clone());
                    }
                }
                Action::PersistSafety { version, .. } => {
                    self.queue.push_front((me, Input::SafetyPersisted { version }));
                }
                Action::PersistBlock(b) => {
                    self.stores[i].insert(b.id(), b);
                }
                Action::Commit(c) => committed.push(c),
                Action::SetTimer { timer: t @ Timer::Round(_), .. } => {
                    self.round_timer[i] = Some(t)
                }
                Action::SetTimer { timer: t @ Timer::Propose(_), .. } => {
                    self.propose_timer[i] = Some(t)
                }
                Action::ServeSync { to, request } => {
                    let store = &self.stores[i];
                    let response =
                        warpnet_core::sync::respond(&request, usize::from(SYNC_BLOCKS_MAX), |id| {
                            store.get(id).cloned()
                        });
                    self.send(me, to, Message::SyncResponse(response));
                }
                Action::Evidence(e) => self.evidence.push(e),
                Action::Rejected { from, reason } => self.rejections.push((me, from, reason)),
            }
        }
        if !committed.is_empty() {
            self.check_commit_step(me, &committed);
            self.commits[i].push(committed);
        }
    }

    /// C1 at the moment of committing.
    fn check_commit_step(&self, me: NodeId, step: &[Committed]) {
        let i = me.index();
        let mut prev = self.commits[i]
            .last()
            .and_then(|s| s.last())
            .map_or_else(|| self.c.genesis(), |x| x.block.clone());
        for x in step {
            assert_eq!(
                x.block.height(),
                prev.height().next(),
                "{me}: heights in order, none skipped"
            );
            assert_eq!(x.block.parent(), prev.id(), "{me}: the committed chain links up");
            assert_eq!(x.certificate.block_id(), x.block.id(), "{me}: certificate names the block");
            assert_eq!(x.certificate.round(), x.block.round());
            assert_eq!(x.certificate.validate(&self.c.config), Ok(()), "{me}: a valid QC");
            prev = x.block.clone();
        }
        let top = &step[step.len() - 1].block;
        let child_certified = self.wire_blocks.values().any(|child| {
            child.parent() == top.id()
                && child.round() == top.round().next()
                && (self.qcs[i].contains(&child.id())
                    || self.votes[i].get(&child.id()).map_or(0, HashSet::len) + 1 >= self.c.q())
        });
        assert!(
            child_certified,
            "{me} committed {top:?} without holding a QC for a child in round {}",
            top.round().next()
        );
    }

    fn run(&mut self) {
        while let Some((to, input)) = self.queue.pop_front() {
            self.deliver(to, input);
            assert!(self.steps < 50_000, "the network does not quiesce");
        }
    }

    /// Fires every member's propose timer armed for its current round.
    fn fire_propose_timers(&mut self) {
        for id in self.c.ids() {
            let round = self.cores[id.index()].status().round;
            if self.propose_timer[id.index()] == Some(Timer::Propose(round)) {
                self.input(id, Input::Timer(Timer::Propose(round)));
            }
        }
        self.run();
    }

    /// Fires every member's round timer (they are all armed for the current round).
    fn fire_round_timers(&mut self) {
        for id in self.c.ids() {
            let round = self.cores[id.index()].status().round;
            assert_eq!(self.round_timer[id.index()], Some(Timer::Round(round)));
            self.input(id, Input::Timer(Timer::Round(round)));
        }
        self.run();
    }

    fn committed_chain(&self, id: NodeId) -> Vec<Block> {
        self.commits[id.index()].iter().flatten().map(|x| x.block.clone()).collect()
    }

    /// Agreement and exactly-once delivery of `cmds`, over the whole run.
    fn check_agreement_and_payloads(&self, cmds: &[Vec<u8>]) {
        let chains: Vec<Vec<Block>> =
            self.c.ids().iter().map(|&id| self.committed_chain(id)).collect();
        let longest = chains.iter().max_by_key(|c| c.len()).unwrap();
        for chain in &chains {
            assert_eq!(chain[..], longest[..chain.len()], "all members commit the same blocks");
        }
        let ordered: Vec<&Vec<u8>> = longest.iter().flat_map(|b| b.payload().iter()).collect();
        for c in cmds {
            let n = ordered.iter().filter(|x| **x == c).count();
            assert_eq!(n, 1, "command {:?} committed exactly once", String::from_utf8_lossy(c));
        }
        assert!(self.evidence.is_empty(), "no equivocation among honest members");
    }
}

/// C1 in a network of four honest members with a steady supply of commands: every member
/// commits the same chain, heights in order, each once, each block only when it holds a QC for
/// a child in the next round; commands commit exactly once.
#[test]
fn c1_network_commits_in_height_order_exactly_once_on_certified_two_chains() {
    let mut net = Net::new(4);
    net.start();
    let cmds: Vec<Vec<u8>> = (0..10).map(|k| cmd(&format!("cmd-{k}"))).collect();
    for k in &cmds {
        for id in net.c.ids() {
            net.input(id, Input::Payload(k.clone()));
        }
    }
    net.run();
    for _ in 0..4 {
        net.fire_propose_timers();
    }
    let heights: Vec<usize> = net.c.ids().iter().map(|&id| net.committed_chain(id).len()).collect();
    assert!(heights.iter().all(|&h| h >= 5), "progress: committed heights {heights:?}");
    for id in net.c.ids() {
        let s = net.cores[id.index()].status();
        assert_eq!(s.committed_height, Height(heights[id.index()] as u64));
        assert_eq!(s.consecutive_timeouts, 0);
    }
    // With no failure, every committed block is of the round after its parent.
    for b in net.committed_chain(NodeId(0)).windows(2) {
        assert_eq!(b[1].round(), b[0].round().next());
    }
    net.check_agreement_and_payloads(&cmds);
    assert_eq!(net.rejections, [], "an honest synchronous run refuses nothing");
}

/// C1 across a failed round: the round-3 proposal is lost, everyone times out (PM4), a TC
/// forms (PM5) and round 4 extends the round-2 block. The round-2 block does not commit on the
/// QC of its round-4 child (rounds not consecutive); it commits together with that child once a
/// round-5 block certifies the child, in one step, lowest first. The lost block never commits.
#[test]
fn c1_network_commits_across_a_timeout_only_on_consecutive_rounds() {
    let mut net = Net::new(4);
    net.drop = Box::new(|_, _, m| matches!(m, Message::Proposal(p) if p.block.round() == Round(3)));
    net.start();
    let cmds: Vec<Vec<u8>> = (0..10).map(|k| cmd(&format!("cmd-{k}"))).collect();
    for k in &cmds {
        for id in net.c.ids() {
            net.input(id, Input::Payload(k.clone()));
        }
    }
    net.run();
    for id in net.c.ids() {
        let round = net.cores[id.index()].status().round;
        assert!(round == Round(2) || round == Round(3), "{id}: stuck before round 4");
    }
    // The QC of round 2 travelled only with the lost proposal: the round-3 leader's timeout
    // carries it to the others (round 3), and their round-3 timeouts then form the TC.
    for _ in 0..3 {
        if net.c.ids().iter().all(|id| net.cores[id.index()].status().round >= Round(4)) {
            break;
        }
        net.fire_round_timers();
    }
    for id in net.c.ids() {
        let s = net.cores[id.index()].status();
        assert!(s.round >= Round(4), "{id}: a TC moved it on");
        assert_eq!(s.high_tc_round, Some(Round(3)));
    }
    for _ in 0..6 {
        net.fire_propose_timers();
    }
    net.check_agreement_and_payloads(&cmds);
    for id in net.c.ids() {
        let chain = net.committed_chain(id);
        assert!(chain.len() >= 5, "{id}: progress after the TC, committed {}", chain.len());
        assert!(chain.iter().all(|b| b.round() != Round(3)), "the lost block never commits");
        let r2 = chain.iter().find(|b| b.round() == Round(2)).expect("round 2 committed");
        let r4 = chain.iter().find(|b| b.round() == Round(4)).expect("round 4 committed");
        assert_eq!(r4.parent(), r2.id());
        let step = net.commits[id.index()]
            .iter()
            .find(|s| s.iter().any(|x| x.block.id() == r2.id()))
            .unwrap();
        let in_step: Vec<Round> = step.iter().map(|x| x.block.round()).collect();
        assert_eq!(in_step, [Round(2), Round(4)], "{id}: the gap commits with its certified child");
    }
}

// ---------------------------------------------------------------------------------------------
// P1–P6: what a proposal, vote or timeout must satisfy
// ---------------------------------------------------------------------------------------------

/// P1: a proposal signed by a member that does not lead its round is refused.
#[test]
fn p1_proposal_from_a_non_leader_is_rejected_not_leader() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let x = c.other_than(&[l1])[0];
    let r = c.other_than(&[l1, x])[0];
    let (mut core, _) = c.start(r);
    let b = c.block_by(x, 1, 1, &c.genesis_qc(), vec![]);
    assert_eq!(
        mirror(core.handle(10, msg(x, Message::Proposal(c.proposal(b, None))))),
        [Act::Rejected(Some(x), Rejection::NotLeader { round: Round(1), proposer: x, leader: l1 })]
    );
}

/// P2: a proposal whose round follows neither its QC nor a TC is refused before any vote.
#[test]
fn p2_unjustified_round_is_rejected() {
    let c = Committee::new(4);
    let l3 = c.leader(3);
    let r = c.other_than(&[l3])[0];
    let (mut core, _) = c.start(r);
    let b = c.block(3, 1, &c.genesis_qc(), vec![]);
    assert_eq!(
        mirror(core.handle(10, msg(l3, Message::Proposal(c.proposal(b, None))))),
        [Act::Rejected(
            Some(l3),
            Rejection::Invalid(ValidationError::NoJustification {
                round: Round(3),
                qc_round: Round(0)
            })
        )]
    );
}

/// P3: a proposal whose signature is not the proposer's is refused.
#[test]
fn p3_badly_signed_proposal_is_rejected() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let x = c.other_than(&[l1])[0];
    let r = c.other_than(&[l1, x])[0];
    let (mut core, _) = c.start(r);
    let b = c.block(1, 1, &c.genesis_qc(), vec![]);
    let forged = Proposal::sign(&c.config, b, None, c.signer(x));
    let acts = mirror(core.handle(10, msg(l1, Message::Proposal(forged))));
    assert_eq!(
        acts,
        [Act::Rejected(
            Some(l1),
            Rejection::Invalid(ValidationError::BadSignature { kind: "proposal", signer: l1 })
        )]
    );
}

/// P4: a proposal over the configured payload limits (count or bytes) is refused: not stored,
/// not voted for. One exactly at the limits is accepted.
#[test]
fn p4_payload_over_limits_is_rejected_payload_too_large() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let r = c.follower(&[1, 2]);
    let too_many: Vec<Vec<u8>> = (0..=PAYLOAD_COUNT_MAX).map(|k| vec![k as u8]).collect();
    let too_big: Vec<Vec<u8>> = (0..3).map(|k| vec![k as u8; 30]).collect();
    for (payload, count, bytes) in
        [(too_many, PAYLOAD_COUNT_MAX + 1, PAYLOAD_COUNT_MAX + 1), (too_big, 3, 90)]
    {
        let (mut core, _) = c.start(r);
        let b = c.block(1, 1, &c.genesis_qc(), payload);
        assert_eq!(
            mirror(core.handle(10, msg(l1, Message::Proposal(c.proposal(b, None))))),
            [Act::Rejected(
                Some(l1),
                Rejection::Invalid(ValidationError::PayloadTooLarge {
                    count,
                    bytes,
                    count_max: PAYLOAD_COUNT_MAX,
                    bytes_max: PAYLOAD_BYTES_MAX,
                })
            )]
        );
    }
    let (mut core, _) = c.start(r);
    let at_limit: Vec<Vec<u8>> = (0..PAYLOAD_COUNT_MAX)
        .map(|k| vec![k as u8; PAYLOAD_BYTES_MAX / PAYLOAD_COUNT_MAX])
        .collect();
    let b = c.block(1, 1, &c.genesis_qc(), at_limit);
    let acts = mirror(core.handle(10, msg(l1, Message::Proposal(c.proposal(b.clone(), None)))));
    let (version, _) = the_persist(&acts);
    assert_eq!(acts[0], Act::PersistBlock(b));
    assert_eq!(acts.len(), 2);
    assert!(matches!(
        &mirror(core.handle(11, persisted(version)))[..],
        [Act::Send(_, Message::Vote(_))]
    ));
}

/// P5: the next leader proposes as soon as its votes form a QC, when it has something to
/// propose (a payload arrived first): the new block extends the QC at once, and is broadcast
/// with the leader's vote only after the safety data is durable (S4).
#[test]
fn p5_qc_at_the_next_leader_makes_it_propose_at_once_when_it_has_payload() {
    let c = Committee::new(4);
    let (l1, l2, l3) = (c.leader(1), c.leader(2), c.leader(3));
    let (mut core, _) = c.start(l2);
    assert_eq!(mirror(core.handle(1, Input::Payload(cmd("tx")))), [], "not its round yet");

    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let acts = mirror(core.handle(10, msg(l1, Message::Proposal(c.proposal(b1.clone(), None)))));
    let (v, _) = the_persist(&acts);
    assert_eq!(mirror(core.handle(11, persisted(v))), [], "its own vote is counted, not sent");

    let voters = c.other_than(&[l2]);
    let (a, b) = (voters[0], voters[1]);
    assert_eq!(mirror(core.handle(12, msg(a, Message::Vote(c.vote(&b1, a)))))[..], []);
    let acts = mirror(core.handle(20, msg(b, Message::Vote(c.vote(&b1, b)))));

    let votes = [c.vote(&b1, l2), c.vote(&b1, a), c.vote(&b1, b)];
    let qc1 = QuorumCertificate::from_votes(&c.config, &votes.iter().collect::<Vec<_>>()).unwrap();
    let b2 =
        Block::new(c.config.epoch(), Round(2), Height(2), l2, qc1.clone(), 20, vec![cmd("tx")]);
    let my_vote = c.vote(&b2, l2);
    let (v, data) = the_persist(&acts);
    assert_eq!(data, c.voted(my_vote.clone(), qc1));
    assert_eq!(
        acts,
        [
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
            Act::PersistBlock(b2.clone()),
            Act::PersistSafety(v, data),
        ]
    );
    assert_eq!(
        mirror(core.handle(21, persisted(v))),
        [
            Act::Broadcast(Message::Proposal(c.proposal(b2, None))),
            Act::Send(l3, Message::Vote(my_vote)),
        ]
    );
}

/// P5 without payload: a QC makes an idle next leader arm its propose timer instead; when it
/// fires, it proposes an empty block.
#[test]
fn p5_idle_next_leader_waits_for_its_propose_timer() {
    let c = Committee::new(4);
    let (l2, l3) = (c.leader(2), c.leader(3));
    let (mut core, _) = c.start(l2);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    // The QC arrives inside a timeout of round 2 (so no vote counting is involved).
    let signer = c.other_than(&[l2])[0];
    let acts = mirror(core.handle(20, msg(signer, c.timeout_msg(2, &qc1, signer))));
    let (v, _) = the_persist(&acts);
    assert_eq!(
        acts,
        [
            Act::Send(
                qc1.voters().iter().find(|&id| id != l2).unwrap(),
                Message::SyncRequest(SyncRequest {
                    epoch: c.config.epoch(),
                    target: b1.id(),
                    above: Height(0),
                    max_blocks: SYNC_BLOCKS_MAX,
                })
            ),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
            Act::PersistSafety(
                v,
                SafetyData { high_qc: qc1.clone(), ..SafetyData::initial(&c.config) }
            ),
        ],
        "it lacks the block, so it fetches it (Y1) and cannot propose yet"
    );
    // Y3: the block arrives; now it could propose, but has nothing to: it arms the timer.
    let acts = mirror(core.handle(
        21,
        msg(
            signer,
            Message::SyncResponse(SyncResponse {
                epoch: c.config.epoch(),
                blocks: vec![b1.clone()],
            }),
        ),
    ));
    assert_eq!(acts, [Act::PersistBlock(b1), Act::SetTimer(Timer::Propose(Round(2)), IDLE_MS)]);
    let acts = mirror(core.handle(30, Input::Timer(Timer::Propose(Round(2)))));
    let b2 = Block::new(c.config.epoch(), Round(2), Height(2), l2, qc1, 30, vec![]);
    let (v, _) = the_persist(&acts);
    assert_eq!(acts[0], Act::PersistBlock(b2.clone()));
    assert_eq!(acts.len(), 2);
    assert_eq!(
        mirror(core.handle(31, persisted(v))),
        [
            Act::Broadcast(Message::Proposal(c.proposal(b2.clone(), None))),
            Act::Send(l3, Message::Vote(c.vote(&b2, l2))),
        ]
    );
}

/// P6: votes and timeouts further ahead than `future_rounds_max` are dropped unverified; one
/// exactly at the limit is not refused.
#[test]
fn p6_vote_beyond_future_rounds_max_is_rejected_far_future() {
    let c = Committee::new(4);
    let r = c.ids()[0];
    let v = c.ids()[1];
    let (mut core, _) = c.start(r);
    let far = 1 + FUTURE_ROUNDS_MAX + 1;
    let b = c.block(far, 1, &c.genesis_qc(), vec![]);
    assert_eq!(
        mirror(core.handle(10, msg(v, Message::Vote(c.vote(&b, v))))),
        [Act::Rejected(Some(v), Rejection::FarFuture { round: Round(far), current: Round(1) })]
    );
    assert_eq!(
        mirror(core.handle(11, msg(v, c.timeout_msg(far, &c.genesis_qc(), v)))),
        [Act::Rejected(Some(v), Rejection::FarFuture { round: Round(far), current: Round(1) })]
    );
    let at_limit = c.block(far - 1, 1, &c.genesis_qc(), vec![]);
    assert_eq!(mirror(core.handle(12, msg(v, Message::Vote(c.vote(&at_limit, v))))), []);
}

/// The transport authenticates senders: a vote, timeout or proposal signed as one member but
/// arriving from another is refused.
#[test]
fn wrong_sender_is_rejected() {
    let c = Committee::new(4);
    let [r, v, w, _] = c.ids()[..] else { unreachable!() };
    let (mut core, _) = c.start(r);
    let b = c.block(1, 1, &c.genesis_qc(), vec![]);
    let wrong = Rejection::WrongSender { claimed: v, from: w };
    assert_eq!(
        mirror(core.handle(10, msg(w, Message::Vote(c.vote(&b, v))))),
        [Act::Rejected(Some(w), wrong.clone())]
    );
    assert_eq!(
        mirror(core.handle(11, msg(w, c.timeout_msg(1, &c.genesis_qc(), v)))),
        [Act::Rejected(Some(w), wrong)]
    );
    let l1 = c.leader(1);
    let relay = c.other_than(&[l1, r])[0];
    assert_eq!(
        mirror(core.handle(12, msg(relay, Message::Proposal(c.proposal(b, None))))),
        [Act::Rejected(Some(relay), Rejection::WrongSender { claimed: l1, from: relay })]
    );
}

/// Messages of another epoch are refused before anything else.
#[test]
fn wrong_epoch_is_rejected() {
    let c = Committee::new(4);
    let r = c.follower(&[1]);
    let v = c.other_than(&[r])[0];
    let (mut core, _) = c.start(r);
    let b = c.block(1, 1, &c.genesis_qc(), vec![]);
    let mut vote = c.vote(&b, v);
    vote.epoch = Epoch(2);
    assert_eq!(
        mirror(core.handle(10, msg(v, Message::Vote(vote)))),
        [Act::Rejected(Some(v), Rejection::WrongEpoch { got: Epoch(2), expected: Epoch(1) })]
    );
    let other = Block::new(Epoch(2), Round(1), Height(1), c.leader(1), c.genesis_qc(), 0, vec![]);
    assert_eq!(
        mirror(core.handle(11, msg(c.leader(1), Message::Proposal(c.proposal(other, None))))),
        [Act::Rejected(
            Some(c.leader(1)),
            Rejection::WrongEpoch { got: Epoch(2), expected: Epoch(1) }
        )]
    );
}

// ---------------------------------------------------------------------------------------------
// Q1, E1
// ---------------------------------------------------------------------------------------------

/// Q1: votes are verified in one batch when they reach a quorum; a bad signature in the batch is
/// found and dropped (no QC from it), and the next valid vote completes the quorum.
#[test]
fn q1_bad_vote_signature_in_a_quorum_is_dropped_and_the_quorum_completes_later() {
    let c = Committee::new(4);
    let (l1, l2) = (c.leader(1), c.leader(2));
    let (mut core, _) = c.start(l2);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let acts = mirror(core.handle(10, msg(l1, Message::Proposal(c.proposal(b1.clone(), None)))));
    let (v, _) = the_persist(&acts);
    let _ = core.handle(11, persisted(v));
    let [a, bad, d] = c.other_than(&[l2])[..] else { unreachable!() };
    assert_eq!(mirror(core.handle(12, msg(a, Message::Vote(c.vote(&b1, a))))), []);
    let forged = Vote { signature: c.vote(&b1, a).signature, ..c.vote(&b1, bad) };
    assert_eq!(
        mirror(core.handle(13, msg(bad, Message::Vote(forged)))),
        [Act::Rejected(Some(bad), Rejection::BadSignatures(vec![bad]))]
    );
    assert_eq!(core.status().round, Round(1), "no QC from a bad signature");
    let acts = mirror(core.handle(14, msg(d, Message::Vote(c.vote(&b1, d)))));
    assert_eq!(acts[0], Act::SetTimer(Timer::Round(Round(2)), BASE_MS));
    assert_eq!(core.status().high_qc_round, Round(1));
    let voters: Vec<NodeId> = core.high_qc().voters().iter().collect();
    let mut expected = vec![l2, a, d];
    expected.sort();
    assert_eq!(voters, expected);
    assert_eq!(core.high_qc().validate(&c.config), Ok(()));
}

/// E1: two different, validly signed proposals by the round's leader are proof of
/// equivocation: the second yields `Evidence` that anyone can verify, and is not voted on.
/// A conflicting proposal that is not validly signed proves nothing and yields no evidence.
#[test]
fn e1_two_signed_proposals_for_a_round_yield_verifiable_evidence_and_no_second_vote() {
    let c = Committee::new(4);
    let (l1, l2) = (c.leader(1), c.leader(2));
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let pa = c.proposal(c.block(1, 1, &c.genesis_qc(), vec![cmd("a")]), None);
    let pb = c.proposal(c.block(1, 1, &c.genesis_qc(), vec![cmd("b")]), None);

    let acts = mirror(core.handle(10, msg(l1, Message::Proposal(pa.clone()))));
    let (v, _) = the_persist(&acts);
    // A forged second proposal: no evidence, nothing at all.
    let x = c.other_than(&[l1])[0];
    let forged = Proposal::sign(&c.config, pb.block.clone(), None, c.signer(x));
    assert_eq!(mirror(core.handle(11, msg(l1, Message::Proposal(forged)))), []);
    assert!(core.evidence().is_empty());

    let acts = mirror(core.handle(12, msg(l1, Message::Proposal(pb.clone()))));
    let ev = Equivocation {
        signer: l1,
        epoch: c.config.epoch(),
        round: Round(1),
        first: Statement::Proposal { block_id: pa.block.id(), signature: pa.signature },
        second: Statement::Proposal { block_id: pb.block.id(), signature: pb.signature },
    };
    assert!(ev.verify(&c.config));
    assert_eq!(
        acts,
        [
            Act::Evidence(ev.clone()),
            Act::Rejected(Some(l1), Rejection::Equivocation { signer: l1, round: Round(1) }),
        ]
    );
    assert_eq!(core.evidence(), [ev]);
    // Only the vote for the first proposal ever leaves.
    assert_eq!(
        mirror(core.handle(13, persisted(v))),
        [Act::Send(l2, Message::Vote(c.vote(&pa.block, r)))]
    );
}

/// E1 for votes: the next leader collecting votes sees one member vote for two blocks of a
/// round; the evidence verifies and the second vote is not counted.
#[test]
fn e1_two_signed_votes_for_a_round_yield_verifiable_evidence() {
    let c = Committee::new(4);
    let l2 = c.leader(2);
    let (mut core, _) = c.start(l2);
    let v = c.other_than(&[l2])[0];
    let ba = c.block(1, 1, &c.genesis_qc(), vec![cmd("a")]);
    let bb = c.block(1, 1, &c.genesis_qc(), vec![cmd("b")]);
    let (va, vb) = (c.vote(&ba, v), c.vote(&bb, v));
    assert_eq!(mirror(core.handle(10, msg(v, Message::Vote(va.clone())))), []);
    let ev = Equivocation {
        signer: v,
        epoch: c.config.epoch(),
        round: Round(1),
        first: Statement::Vote { block_id: ba.id(), signature: va.signature },
        second: Statement::Vote { block_id: bb.id(), signature: vb.signature },
    };
    assert!(ev.verify(&c.config));
    assert_eq!(
        mirror(core.handle(11, msg(v, Message::Vote(vb)))),
        [
            Act::Evidence(ev),
            Act::Rejected(Some(v), Rejection::Equivocation { signer: v, round: Round(1) })
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// PM3, PM5, PM6: the pacemaker
// ---------------------------------------------------------------------------------------------

/// PM3: the round timeout keeps the base for the first two consecutive rounds entered through
/// a TC (a crashed member fails its round and the one before it), then doubles with each
/// further one, and goes back to the base once a round is entered through a QC. The timer
/// re-armed on expiry uses the current backoff (PM4). S1c: blocks justified by a TC are voted
/// for.
#[test]
fn pm3_timeout_backs_off_after_two_tcs_and_resets_after_a_qc() {
    let c = Committee::new(7);
    let r = c.follower(&[2, 3, 4, 5, 6]);
    let (mut core, _) = c.start(r);
    let g = c.genesis_qc();

    // Rounds 2, 3 and 4, each entered through a TC for the round before.
    let mut last = None;
    for (round, expected) in [(2, BASE_MS), (3, BASE_MS), (4, 2 * BASE_MS)] {
        let b = c.block(round, 1, &g, vec![]);
        let acts = mirror(core.handle(
            10 * round,
            msg(
                c.leader(round),
                Message::Proposal(c.proposal(b.clone(), Some(c.tc(round - 1, &g)))),
            ),
        ));
        assert_eq!(timers(&acts), [(Timer::Round(Round(round)), expected)], "round {round}");
        let (v, _) = the_persist(&acts);
        let sent = mirror(core.handle(10 * round + 1, persisted(v)));
        assert!(
            matches!(&sent[..], [Act::Send(to, Message::Vote(_))] if *to == c.leader(round + 1)),
            "S1c vote in round {round}"
        );
        last = Some(b);
    }
    assert_eq!(core.status().consecutive_timeouts, 3);
    // PM4: expiry re-arms with the current backoff.
    let acts = mirror(core.handle(500, Input::Timer(Timer::Round(Round(4)))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(4)), 2 * BASE_MS)]);

    // Round 5, entered through a QC for round 4: back to the base.
    let b5 = c.block(5, 2, &c.qc(&last.unwrap()), vec![]);
    let acts = mirror(core.handle(600, msg(c.leader(5), Message::Proposal(c.proposal(b5, None)))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(5)), BASE_MS)]);
    assert_eq!(core.status().consecutive_timeouts, 0);
    let acts = mirror(core.handle(700, Input::Timer(Timer::Round(Round(5)))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(5)), BASE_MS)]);
}

/// PM7: a round whose leader, or whose vote collector (the next round's leader), is unreachable
/// cannot produce a QC, so its timer is short: re-armed at once when that member goes away
/// mid-round, and armed short when such a round is entered. Other members going away, repeated
/// reports, members coming back, or a member flapping (down, up, down) never push the deadline
/// back; the next round with both reachable gets the normal timeout again.
#[test]
fn pm7_an_unreachable_leader_or_vote_collector_shortens_the_round() {
    let c = Committee::new(7);
    let me = c.follower(&[1, 2, 3, 4]);
    let (mut core, acts) = c.start(me);
    assert_eq!(timers(&acts), [(Timer::Round(Round(1)), BASE_MS)]);
    let down = |peer| Input::Reachability { peer, reachable: false };
    let up = |peer| Input::Reachability { peer, reachable: true };
    // Neither round 1's leader nor its collector: nothing changes.
    let bystander =
        c.other_than(&[me, c.leader(1), c.leader(2)]).into_iter().next().expect("a bystander");
    assert_eq!(mirror(core.handle(1, down(bystander))), []);
    // Round 1's vote collector goes away: round 1 is hopeless.
    let acts = mirror(core.handle(2, down(c.leader(2))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(1)), UNREACHABLE_MS)]);
    assert_eq!(mirror(core.handle(3, down(c.leader(2)))), [], "a repeated report changes nothing");
    assert_eq!(mirror(core.handle(4, up(c.leader(2)))), [], "coming back changes nothing now");
    assert_eq!(mirror(core.handle(5, up(bystander))), []);
    assert_eq!(
        mirror(core.handle(5, down(c.leader(2)))),
        [],
        "a flapping member never pushes the deadline (2 + 7 ms) back"
    );
    assert_eq!(mirror(core.handle(5, up(c.leader(2)))), []);
    assert_eq!(mirror(core.handle(6, down(me))), [], "never ourselves");

    // Round 2 entered through a QC while round 3's leader (round 2's collector) is away: short.
    let _ = mirror(core.handle(7, down(c.leader(3))));
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let b2 = c.block(2, 2, &c.qc(&b1), vec![]);
    let _ = mirror(core.handle(8, msg(c.leader(1), Message::Proposal(c.proposal(b1, None)))));
    let acts =
        mirror(core.handle(9, msg(c.leader(2), Message::Proposal(c.proposal(b2.clone(), None)))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(2)), UNREACHABLE_MS)]);
    // It came back; round 3 (leader and collector reachable) has the normal timeout.
    let _ = mirror(core.handle(10, up(c.leader(3))));
    let b3 = c.block(3, 3, &c.qc(&b2), vec![]);
    let acts = mirror(core.handle(11, msg(c.leader(3), Message::Proposal(c.proposal(b3, None)))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(3)), BASE_MS)]);
}

/// PM7 + PM4: once a round PM7 cut short has expired, the timeout is re-broadcast at the PM3
/// pace, not every `unreachable_leader_timeout_ms` (a round that cannot gather a TC must not
/// flood).
#[test]
fn pm7_an_expired_short_round_re_arms_at_the_normal_pace() {
    let c = Committee::new(4);
    let me = c.follower(&[1, 2]);
    let (mut core, _) = c.start(me);
    let acts = mirror(core.handle(1, Input::Reachability { peer: c.leader(1), reachable: false }));
    assert_eq!(timers(&acts), [(Timer::Round(Round(1)), UNREACHABLE_MS)]);
    let acts = mirror(core.handle(1 + UNREACHABLE_MS, Input::Timer(Timer::Round(Round(1)))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(1)), BASE_MS)]);
}

/// PM6: f + 1 timeouts for the current round make a member time out too (it cannot be the
/// only one waiting); f do not. PM5: with its own, the quorum forms a TC, which moves it to
/// the next round (with the base timeout: PM3 backs off from the third failure).
#[test]
fn pm6_f_plus_1_timeouts_make_a_member_time_out_and_pm5_a_quorum_forms_a_tc() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let g = c.genesis_qc();
    let [a, b, _] = c.other_than(&[r])[..] else { unreachable!() };
    assert_eq!(c.config.faulty_nodes(), 1);

    assert_eq!(mirror(core.handle(10, msg(a, c.timeout_msg(1, &g, a)))), [], "f timeouts: wait");
    let acts = mirror(core.handle(11, msg(b, c.timeout_msg(1, &g, b))));
    let mine = c.timeout(1, &g, r);
    let (v, data) = the_persist(&acts);
    assert_eq!(
        data,
        SafetyData {
            last_voted_round: Round(1),
            last_timeout: Some(mine.clone()),
            ..SafetyData::initial(&c.config)
        }
    );
    assert_eq!(acts, [Act::PersistSafety(v, data)], "joins, but sends nothing before persisting");

    let acts = mirror(core.handle(12, persisted(v)));
    // The TC changes the safety data too: its write is requested in the same step, so a restart
    // resumes in round 2 (PM0).
    let (tc_writes, rest): (Vec<Act>, Vec<Act>) =
        acts.into_iter().partition(|a| matches!(a, Act::PersistSafety(..)));
    assert_eq!(
        rest,
        [
            Act::Broadcast(Message::Timeout(TimeoutMsg { timeout: mine, last_round_tc: None })),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
        ]
    );
    assert_eq!(tc_writes.len(), 1, "exactly one write, carrying the TC");
    for w in tc_writes {
        assert!(
            matches!(w, Act::PersistSafety(_, d) if d.high_tc.as_ref().map(|t| t.round()) == Some(Round(1)))
        );
    }
    let s = core.status();
    assert_eq!((s.round, s.high_tc_round, s.consecutive_timeouts), (Round(2), Some(Round(1)), 1));
}

// ---------------------------------------------------------------------------------------------
// Y1–Y3: sync
// ---------------------------------------------------------------------------------------------

/// Y1–Y3: a proposal whose parent is unknown is kept while the parent is fetched from a member
/// that certified it; once the response attaches the parent, the member votes. Y2: a peer's
/// request is handed to the runtime to serve, capped to `sync_blocks_max`.
#[test]
fn y1_y3_missing_parent_is_fetched_and_the_waiting_proposal_is_voted_on() {
    let c = Committee::new(4);
    let r = c.follower(&[2, 3]);
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let b2 = c.block(2, 2, &qc1, vec![]);
    let l2 = c.leader(2);
    let acts = mirror(core.handle(20, msg(l2, Message::Proposal(c.proposal(b2.clone(), None)))));
    let peer = qc1.voters().iter().find(|&id| id != r).unwrap();
    let request = SyncRequest {
        epoch: c.config.epoch(),
        target: b1.id(),
        above: Height(0),
        max_blocks: SYNC_BLOCKS_MAX,
    };
    let (v, data) = the_persist(&acts);
    assert_eq!(data.high_qc, qc1);
    assert_eq!(
        acts,
        [
            Act::Send(peer, Message::SyncRequest(request.clone())),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
            Act::PersistSafety(v, data),
        ]
    );
    let _ = core.handle(21, persisted(v));
    let response = SyncResponse { epoch: c.config.epoch(), blocks: vec![b1.clone()] };
    let acts = mirror(core.handle(22, msg(peer, Message::SyncResponse(response))));
    let (v, data) = the_persist(&acts);
    let vote = c.vote(&b2, r);
    assert_eq!(data.last_vote.as_ref(), Some(&vote));
    assert_eq!(acts, [Act::PersistBlock(b1), Act::PersistBlock(b2), Act::PersistSafety(v, data)]);
    assert_eq!(
        mirror(core.handle(23, persisted(v))),
        [Act::Send(c.leader(3), Message::Vote(vote))]
    );

    // Y2.
    let greedy = SyncRequest { max_blocks: u16::MAX, ..request };
    assert_eq!(
        mirror(core.handle(30, msg(peer, Message::SyncRequest(greedy.clone())))),
        [Act::ServeSync(peer, SyncRequest { max_blocks: SYNC_BLOCKS_MAX, ..greedy })]
    );
}

/// Y3: a sync response attaches only certified blocks. Synced blocks carry no proposer
/// signature, so a block that no QC we hold certifies is never stored: a peer cannot fill the
/// tree or the disk with fabricated blocks.
#[test]
fn y3_uncertified_blocks_from_a_peer_are_never_stored() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let peer = c.other_than(&[r])[0];
    // Fabricated children of genesis: well formed, a valid parent QC, but no QC of their own.
    for i in 0..5u64 {
        let fake = c.block(1, 1, &c.genesis_qc(), vec![cmd(&format!("fake{i}"))]);
        let response = SyncResponse { epoch: c.config.epoch(), blocks: vec![fake] };
        let acts = mirror(core.handle(10 + i, msg(peer, Message::SyncResponse(response))));
        assert!(!acts.iter().any(|a| matches!(a, Act::PersistBlock(_))), "{acts:?}");
    }
    assert_eq!(core.status().tree_blocks, 1, "only genesis");
    // A chain certified link by link is attached, except its last block, which nothing we
    // hold certifies.
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let b2 = c.block(2, 2, &qc1, vec![]);
    let response = SyncResponse { epoch: c.config.epoch(), blocks: vec![b1.clone(), b2.clone()] };
    let acts = mirror(core.handle(20, msg(peer, Message::SyncResponse(response))));
    assert!(acts.contains(&Act::PersistBlock(b1)), "{acts:?}");
    assert!(!acts.contains(&Act::PersistBlock(b2)), "{acts:?}");
    assert_eq!(core.status().high_qc_round, Round(1));
}

// ---------------------------------------------------------------------------------------------
// Findings of the safety review, pinned
// ---------------------------------------------------------------------------------------------

/// E1: evidence is kept and emitted once per (signer, round, kind), however many conflicting
/// votes the signer sends.
#[test]
fn e1_evidence_is_recorded_once_per_signer_round_and_kind() {
    let c = Committee::new(4);
    let l2 = c.leader(2);
    let (mut core, _) = c.start(l2);
    let v = c.other_than(&[l2])[0];
    let mut evidence = 0;
    for (i, tag) in ["a", "b", "c", "d"].iter().enumerate() {
        let b = c.block(1, 1, &c.genesis_qc(), vec![cmd(tag)]);
        let acts = mirror(core.handle(10 + i as u64, msg(v, Message::Vote(c.vote(&b, v)))));
        evidence += acts.iter().filter(|a| matches!(a, Act::Evidence(_))).count();
    }
    assert_eq!(evidence, 1);
    assert_eq!(core.status().evidence, 1);
}

/// The verified-QC shortcut only applies to the exact QC verified before: a QC naming a known
/// block and round but carrying other signatures is verified again, and refused if forged.
#[test]
fn a_forged_copy_of_a_known_qc_is_verified_and_refused() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2, 3]);
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let b2 = c.block(2, 2, &qc1, vec![]);
    for (t, p) in [(10, &b1), (20, &b2)] {
        let acts =
            core.handle(t, msg(p.proposer(), Message::Proposal(c.proposal(p.clone(), None))));
        for a in acts {
            if let Action::PersistSafety { version, .. } = a {
                let _ = core.handle(t + 1, persisted(version));
            }
        }
    }
    assert_eq!(core.status().high_qc_round, Round(1), "the real QC of round 1 is known");
    let forged = QuorumCertificate::from_parts(
        c.config.epoch(),
        Round(1),
        b1.id(),
        qc1.voters().clone(),
        vec![warpnet_types::Signature([9; 64]); qc1.signatures().len()],
    );
    // A member's round-2 timeout carries the forged copy as its high QC: its own signature
    // is valid (it covers only the round numbers), so only verifying the QC catches it.
    let x = c.other_than(&[r])[0];
    let timeout = Timeout::sign(&c.config, Round(2), forged, x, c.signer(x));
    let message = Message::Timeout(TimeoutMsg { timeout, last_round_tc: None });
    let acts = mirror(core.handle(30, msg(x, message)));
    assert_eq!(
        acts,
        [Act::Rejected(
            Some(x),
            Rejection::Invalid(ValidationError::BadSignature {
                kind: "quorum certificate",
                signer: qc1.voters().iter().next().unwrap()
            })
        )]
    );
}

/// P6 with catch-up: a timeout far ahead is not counted, but the certificates it carries are
/// used when they move us forward, so a replica far behind catches up from timeouts alone.
#[test]
fn p6_a_far_future_timeout_still_moves_a_laggard_with_its_certificates() {
    let c = Committee::new(4);
    let r = c.ids()[0];
    let x = c.ids()[1];
    let (mut core, _) = c.start(r);
    let far = 50;
    let tc = c.tc(far - 1, &c.genesis_qc());
    let message = Message::Timeout(TimeoutMsg {
        timeout: c.timeout(far, &c.genesis_qc(), x),
        last_round_tc: Some(tc),
    });
    let acts = mirror(core.handle(10, msg(x, message.clone())));
    assert_eq!(core.status().round, Round(far), "{acts:?}");
    // The same message again teaches nothing and costs nothing.
    assert_eq!(mirror(core.handle(11, msg(x, message))), []);
}

/// A replayed timeout is recognised before any signature is checked.
#[test]
fn a_replayed_timeout_is_ignored() {
    let c = Committee::new(4);
    let r = c.ids()[0];
    let x = c.ids()[1];
    let (mut core, _) = c.start(r);
    let m = c.timeout_msg(1, &c.genesis_qc(), x);
    let _ = core.handle(10, msg(x, m.clone()));
    for t in 11..20 {
        assert_eq!(mirror(core.handle(t, msg(x, m.clone()))), []);
    }
}

/// PM0: a replica restarts in the round after its highest QC or TC, whichever is higher.
#[test]
fn pm0_restart_round_counts_the_persisted_tc() {
    let c = Committee::new(4);
    let r = c.ids()[0];
    let safety = SafetyData {
        last_voted_round: Round(3),
        high_tc: Some(c.tc(4, &c.genesis_qc())),
        ..SafetyData::initial(&c.config)
    };
    let core = c.core(r, c.recovery(safety, vec![]));
    assert_eq!(core.status().round, Round(5));
}

/// P2 with the TC's carried QC: a leader entering its round by a TC whose highest QC it has
/// never seen takes that QC in from the TC, fetches the block, and proposes on it.
#[test]
fn p2_a_leader_proposes_on_the_qc_carried_by_the_tc() {
    let c = Committee::new(4);
    // Round 3's leader, which never saw round 1's QC.
    let l3 = c.leader(3);
    let (mut core, _) = c.start(l3);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    // Round 2 timed out; its TC's highest entry is round 1, and the TC carries qc1.
    let timeouts: Vec<Timeout> =
        c.ids().into_iter().take(c.q()).map(|id| c.timeout(2, &qc1, id)).collect();
    let refs: Vec<&Timeout> = timeouts.iter().collect();
    let tc2 = TimeoutCertificate::from_timeouts(&c.config, &refs).unwrap();
    assert_eq!(tc2.high_qc(), &qc1);
    let x = c.other_than(&[l3])[0];
    let _ = core.handle(5, Input::Payload(cmd("p")));
    let message = Message::Timeout(TimeoutMsg {
        timeout: c.timeout(3, &qc1, x),
        last_round_tc: Some(tc2.clone()),
    });
    let acts = mirror(core.handle(10, msg(x, message)));
    assert_eq!(
        (core.status().round, core.status().high_qc_round),
        (Round(3), Round(1)),
        "{acts:?}"
    );
    // It asks for round 1's block, then proposes on it once it arrives.
    assert!(
        acts.iter()
            .any(|a| matches!(a, Act::Send(_, Message::SyncRequest(req)) if req.target == b1.id())),
        "{acts:?}"
    );
    let response = SyncResponse { epoch: c.config.epoch(), blocks: vec![b1.clone()] };
    let mut acts = mirror(core.handle(20, msg(x, Message::SyncResponse(response))));
    let (v, _) = the_persist(&acts);
    acts.extend(mirror(core.handle(21, persisted(v))));
    let proposal = acts
        .iter()
        .find_map(|a| match a {
            Act::Broadcast(Message::Proposal(p)) => Some(p.clone()),
            _ => None,
        })
        .expect("the leader proposes");
    assert_eq!(proposal.block.justify(), &qc1);
    assert_eq!(proposal.tc.as_ref(), Some(&tc2));
    assert_eq!(proposal.validate(&c.config), Ok(()));
}
