//! How fast ONE replica processes consensus messages, with real Ed25519 signatures.
//!
//! Setup (not measured): a committee from `ConsensusConfig::for_testing(n, Ed25519, 0)`; the
//! replica under test is node 0. A chain of `ROUNDS` rounds is generated as an honest, fault-free
//! committee would produce it, from node 0's point of view:
//!
//! - a round led by another member (`config.leader(round)`, a per-cycle permutation; health
//!   keeps every member eligible, LR2) brings that leader's signed proposal, carrying a QC of
//!   node 0's and a rotating choice of `n - f - 1` other members' votes for the previous block
//!   (and the health summary when due, H4);
//! - when node 0 is the next leader, the votes of all `n - 1` other members for the round's
//!   block arrive; node 0 forms the QC with its own vote and proposes the next block itself.
//!   Later proposals extend the block it actually proposed.
//!
//! The chain is recorded once while a replica runs it, and every action is checked there (it
//! voted for every proposal, formed every QC it should, proposed, committed every height in
//! order, rejected nothing); a second replica then replays it and must do exactly the same.
//! Only then is anything timed. Each timed iteration replays the whole chain on a fresh replica,
//! answering every write at once with `Input::Persisted` (an instant disk).
//!
//! - `follower_proposal/n{n}_cmds{c}`: only the proposal steps are timed (`Core::handle` of the
//!   proposal plus the `Persisted` that releases the vote): shape checks, the proposer's
//!   signature, batch verification of the QC's `n - f` signatures, tree insertion, the 2-chain
//!   commit, and signing the vote. Blocks carry `c` commands of 100 bytes.
//! - `leader_vote/n{n}_cmds100`: only the vote steps are timed: counting votes, one batch
//!   verification per quorum (the `n - f - 1` votes not our own), forming the QC, committing,
//!   building and signing the next proposal and our vote for it. Late votes (after the quorum)
//!   are counted too: a leader receives them all.
//! - `replica_all/n{n}_cmds100`: every step timed: the replica's overall message rate.
//!
//! Throughput is in messages (elements) per second of the timed steps.
//!
//! Run: `cargo bench -p warpnet-core --bench core` (about 40 s); figures in docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use warpnet_core::{Core, CoreParams, Input, Recovery, Step as CoreStep, Target};
use warpnet_types::{
    Block, ConsensusConfig, Height, Message, NodeId, Proposal, QuorumCertificate, Round, SchemeId,
    Signer, Vote,
};

/// Rounds in a generated chain.
const ROUNDS: u64 = 200;
/// Bytes per command in the generated blocks.
const COMMAND_BYTES: usize = 100;

/// What a recorded step is, to choose which steps are timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Proposal,
    Vote,
    /// The idle-proposal timer (only when the replica leads with nothing to commit).
    Timer,
}

#[derive(Clone)]
struct Step {
    now_ms: u64,
    kind: Kind,
    input: Input,
}

/// What a replica did over a chain; the recording and the check replay must agree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Rounds of the votes node 0 sent (its votes counted by itself are not sent).
    vote_rounds: Vec<u64>,
    proposals_broadcast: usize,
    commits: usize,
    last_committed: u64,
    persists: usize,
    rejected: usize,
    evidence: usize,
}

impl Tally {
    fn add(&mut self, steps: &[CoreStep]) {
        for s in steps {
            for out in &s.messages {
                match &out.message {
                    Message::Vote(v) => self.vote_rounds.push(v.round.0),
                    Message::Proposal(_) => self.proposals_broadcast += 1,
                    _ => {}
                }
            }
            for c in s.commits() {
                assert_eq!(c.block.height().0, self.last_committed + 1, "commits in order");
                self.last_committed = c.block.height().0;
                self.commits += 1;
            }
            self.persists += usize::from(s.write.as_ref().is_some_and(|w| w.safety.is_some()));
            for (_, reason) in &s.rejected {
                eprintln!("rejected: {reason}");
                self.rejected += 1;
            }
            self.evidence += s.evidence.len();
        }
    }
}

/// A chain of inputs for node 0, recorded from an honest committee, and what node 0 did.
struct Chain {
    config: Arc<ConsensusConfig>,
    me: NodeId,
    signer: Arc<dyn Signer>,
    steps: Vec<Step>,
    tally: Tally,
}

impl Chain {
    fn replica(&self) -> Core {
        let mut core = Core::new(
            self.config.clone(),
            self.me,
            self.signer.clone(),
            CoreParams::default(),
            Recovery::genesis(&self.config),
        )
        .expect("a valid replica");
        let start = core.start(0);
        drop(answer(&mut core, 0, start));
        core
    }

    fn count(&self, kind: Kind) -> u64 {
        self.steps.iter().filter(|s| s.kind == kind).count() as u64
    }

    fn messages(&self) -> u64 {
        self.steps.iter().filter(|s| s.kind != Kind::Timer).count() as u64
    }
}

/// Answers every write at once, as a runtime with an instant disk would, and returns the step
/// with the steps that follow.
fn answer(core: &mut Core, now_ms: u64, first: CoreStep) -> Vec<CoreStep> {
    let mut steps = vec![first];
    while let Some(seq) = steps.last().and_then(|s| s.write.as_ref()).map(|w| w.seq) {
        let next = core.handle(now_ms, Input::Persisted { seq });
        steps.push(next);
    }
    steps
}

fn step(core: &mut Core, now_ms: u64, input: Input) -> Vec<CoreStep> {
    let first = core.handle(now_ms, input);
    answer(core, now_ms, first)
}

fn payload(round: u64, cmds: usize) -> Vec<Vec<u8>> {
    (0..cmds as u64)
        .map(|i| {
            let mut c = vec![0xC0; COMMAND_BYTES];
            c[..8].copy_from_slice(&round.to_le_bytes());
            c[8..16].copy_from_slice(&i.to_le_bytes());
            c
        })
        .collect()
}

fn proposal_in(steps: &[CoreStep]) -> Option<Proposal> {
    steps.iter().flat_map(|s| &s.messages).find_map(|out| match &out.message {
        Message::Proposal(p) => Some(p.clone()),
        _ => None,
    })
}

/// Generates and records the chain, checking the replica's actions at every step.
fn build_chain(n: usize, cmds: usize) -> Chain {
    assert!(cmds > 0, "blocks carry commands, so a leader proposes without waiting");
    let (config, signers) =
        ConsensusConfig::for_testing(n, SchemeId::Ed25519, 0).expect("test committee");
    let config = Arc::new(config);
    let signers: Vec<Arc<dyn Signer>> = signers.into_iter().map(Arc::from).collect();
    let me = NodeId(0);
    let others: Vec<NodeId> = (1..n).map(|i| NodeId(u16::try_from(i).expect("small"))).collect();
    let quorum = config.quorum_threshold();
    let mut chain = Chain {
        config: config.clone(),
        me,
        signer: signers[me.index()].clone(),
        steps: Vec::new(),
        tally: Tally::default(),
    };
    let mut core = chain.replica();
    let record = |core: &mut Core, chain: &mut Chain, now_ms: u64, kind: Kind, input: Input| {
        chain.steps.push(Step { now_ms, kind, input: input.clone() });
        let steps = step(core, now_ms, input);
        chain.tally.add(&steps);
        assert_eq!((chain.tally.rejected, chain.tally.evidence), (0, 0), "an honest chain");
        steps
    };

    let mut qc = QuorumCertificate::genesis(&config);
    let mut parent = Block::genesis(&config);
    let mut own: Option<Proposal> = None; // the replica's latest proposal
    let (mut led, mut proposed) = (0, 0);
    for r in 1..=ROUNDS {
        let (now_ms, round) = (r * 10, Round(r));
        let next = config.leader(round.next());
        let block = if config.leader(round) == me {
            if own.as_ref().is_none_or(|p| p.block.round() != round) {
                // The idle-proposal timer: the clock reaches its deadline.
                let at = now_ms + CoreParams::default().idle_propose_delay_ms;
                let actions = record(&mut core, &mut chain, at, Kind::Timer, Input::Tick);
                own = proposal_in(&actions);
                proposed += usize::from(own.is_some());
            }
            let p = own.take().filter(|p| p.block.round() == round).expect("node 0 proposed");
            assert_eq!(p.block.parent(), parent.id(), "node 0 extends the chain");
            led += 1;
            p.block
        } else {
            let leader = config.leader(round);
            let height = Height(parent.height().0 + 1);
            // H4: the health summary when due, as node 0 computes it (every replica does alike).
            let summary = warpnet_types::health::summary_due(height)
                .then(|| core.health_seen_from(parent.parent()).map(|h| h.summary.clone()))
                .flatten();
            let records = warpnet_types::BlockHealth { summary, ..Default::default() };
            let block = Block::new(
                config.epoch(),
                round,
                height,
                leader,
                qc.clone(),
                now_ms.max(parent.timestamp_ms()), // as honest leaders stamp blocks
                payload(r, cmds),
            )
            .with_health(records);
            let p = Proposal::sign(&config, block.clone(), None, signers[leader.index()].as_ref());
            let from = signers[leader.index()].public_key();
            let input = Input::Message { from, message: Message::Proposal(p) };
            let actions = record(&mut core, &mut chain, now_ms, Kind::Proposal, input);
            if next != me {
                let voted = actions.iter().flat_map(|s| &s.messages).any(|out| {
                    matches!((&out.to, &out.message), (Target::One(to), Message::Vote(v))
                        if Some(*to) == config.public_key(next).ok().copied() && v.block_id == block.id() && v.voter == me)
                });
                assert!(voted, "node 0 votes for round {r}, to the next leader");
            }
            block
        };
        let votes: Vec<Vote> = others
            .iter()
            .map(|&i| Vote::sign(&config, &block, i, signers[i.index()].as_ref()))
            .collect();
        if next == me {
            // Our own vote is already counted: the QC forms at the (quorum - 1)-th other vote.
            for (k, v) in votes.into_iter().enumerate() {
                let from = signers[v.voter.index()].public_key();
                let input = Input::Message { from, message: Message::Vote(v) };
                let actions = record(&mut core, &mut chain, now_ms, Kind::Vote, input);
                let p = proposal_in(&actions);
                assert_eq!(p.is_some(), k + 2 == quorum, "QC and proposal at the quorum");
                if let Some(p) = p {
                    let justify = p.block.justify();
                    assert_eq!((justify.round(), justify.block_id()), (round, block.id()));
                    assert_eq!(justify.signatures().len(), quorum);
                    assert_eq!(p.block.round(), round.next());
                    proposed += 1;
                    own = Some(p);
                }
            }
        } else {
            // Node 0 and a rotating choice of the others, so every member's votes reach the
            // chain (H1) and health keeps everyone eligible: leaders stay L1's.
            let mine = Vote::sign(&config, &block, me, signers[me.index()].as_ref());
            let skip = r as usize % votes.len();
            let refs: Vec<&Vote> = std::iter::once(&mine)
                .chain(votes.iter().cycle().skip(skip).take(quorum - 1))
                .collect();
            qc = QuorumCertificate::from_votes(&config, &refs).expect("a quorum");
        }
        parent = block;
    }

    let t = &chain.tally;
    assert!(led > 0 && proposed >= led, "node 0 led {led} rounds, proposed {proposed} blocks");
    assert_eq!(t.proposals_broadcast, proposed);
    // Every block but the last two commits (2-chain rule), each height once and in order.
    assert_eq!((t.commits as u64, t.last_committed), (ROUNDS - 2, ROUNDS - 2), "{t:?}");
    // Node 0 voted in every round (for its own last proposal too, if it made one), and each
    // vote left for the next leader and the one after it (H1: it records late votes) unless
    // that leader is node 0 itself.
    let last = if own.is_some() { ROUNDS + 1 } else { ROUNDS };
    let expected: Vec<u64> = (1..=last)
        .flat_map(|r| {
            let (collector, recorder) = (config.leader(Round(r + 1)), config.leader(Round(r + 2)));
            let to_recorder = recorder != collector && recorder != me;
            [collector != me, to_recorder].into_iter().filter(|&s| s).map(move |_| r)
        })
        .collect();
    assert_eq!(t.vote_rounds, expected, "votes sent");

    // Determinism: a fresh replica fed the recorded steps does exactly the same.
    let mut replay = chain.replica();
    let mut check = Tally::default();
    for s in chain.steps.clone() {
        check.add(&step(&mut replay, s.now_ms, s.input));
    }
    assert_eq!(check, chain.tally, "replay differs from the recording");
    assert_eq!(replay.status().committed_height, Height(ROUNDS - 2));
    chain
}

/// Replays the chain on a fresh replica; times the steps of kind `timed` (every step if
/// `None`). Cloning the inputs and building the replica are not timed.
fn replay(chain: &Chain, timed: Option<Kind>) -> Duration {
    let steps = chain.steps.clone();
    let mut core = chain.replica();
    let mut total = Duration::ZERO;
    for s in steps {
        if timed.is_none_or(|k| k == s.kind) {
            let start = Instant::now();
            black_box(step(&mut core, s.now_ms, black_box(s.input)));
            total += start.elapsed();
        } else {
            drop(step(&mut core, s.now_ms, s.input));
        }
    }
    total
}

fn bench_replay(c: &mut Criterion, group: &str, cases: &[(usize, usize)], timed: Option<Kind>) {
    let mut g = c.benchmark_group(group);
    // One iteration replays a whole chain (tens of milliseconds): the same number of
    // iterations in every sample, rather than criterion's linear ramp.
    g.sampling_mode(SamplingMode::Flat);
    for &(n, cmds) in cases {
        let chain = build_chain(n, cmds);
        let elements = match timed {
            Some(kind) => chain.count(kind),
            None => chain.messages(),
        };
        let t = &chain.tally;
        eprintln!(
            "{group} n={n} cmds={cmds}: {ROUNDS} rounds, {} proposals and {} votes in, \
             {} proposals and {} votes out, {} commits; timing {elements} messages/iteration",
            chain.count(Kind::Proposal),
            chain.count(Kind::Vote),
            t.proposals_broadcast,
            t.vote_rounds.len(),
            t.commits,
        );
        g.throughput(Throughput::Elements(elements));
        g.bench_function(BenchmarkId::from_parameter(format!("n{n}_cmds{cmds}")), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| replay(&chain, timed)).sum());
        });
    }
    g.finish();
}

fn follower(c: &mut Criterion) {
    let cases = [(4, 1), (4, 100), (4, 1000), (7, 100)];
    bench_replay(c, "follower_proposal", &cases, Some(Kind::Proposal));
}

fn next_leader(c: &mut Criterion) {
    bench_replay(c, "leader_vote", &[(4, 100), (7, 100)], Some(Kind::Vote));
}

fn replica(c: &mut Criterion) {
    bench_replay(c, "replica_all", &[(4, 100), (7, 100)], None);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = follower, next_leader, replica
}
criterion_main!(benches);
