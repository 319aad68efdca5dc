//! Scenario tests for `validate(&config)` of blocks, votes, certificates, timeouts and proposals.
//!
//! Valid objects come from the public constructors (`Vote::sign`, `QuorumCertificate::from_votes`,
//! `Timeout::sign`, `TimeoutCertificate::from_timeouts`, `Proposal::sign`); invalid ones are forged
//! with `from_parts`, `Block::with_parent` or by editing public fields. Every error is compared
//! exactly, so a test also pins which signer, round or count the error names.

use std::collections::BTreeSet;
use std::ops::{Add, Mul};

use sha2::{Digest as _, Sha512};
use warpnet_types::bitmap::{BitmapError, VoterBitmap};
use warpnet_types::certs::{timeout_signing_bytes, vote_signing_bytes};
use warpnet_types::crypto::{domain, SignedItem};
use warpnet_types::message::proposal_signing_bytes;
use warpnet_types::{
    Block, BlockId, ConsensusConfig, Digest, Epoch, Height, NetworkId, NodeId, Proposal,
    QuorumCertificate, Round, SchemeId, Signature, Signer, Timeout, TimeoutCertificate,
    ValidationError, Vote,
};

type Signers = Vec<Box<dyn Signer>>;

/// Seed base of every test committee: member `i` has the key of seed `SEED + i`.
const SEED: u64 = 7;

const K_BLOCK: &str = "block";
const K_VOTE: &str = "vote";
const K_QC: &str = "quorum certificate";
const K_TIMEOUT: &str = "timeout";
const K_TC: &str = "timeout certificate";
const K_PROPOSAL: &str = "proposal";

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

fn committee(n: usize, scheme: SchemeId) -> (ConsensusConfig, Signers) {
    ConsensusConfig::for_testing(n, scheme, SEED).expect("a test committee is valid")
}

/// The members (and keys) of `committee(n, Ed25519)`, on the network `network`.
fn committee_on(network: &str, n: usize) -> (ConsensusConfig, Signers) {
    let (c, signers) = committee(n, SchemeId::Ed25519);
    let c = ConsensusConfig::new(
        NetworkId::new(network).expect("a valid network name"),
        c.epoch(),
        c.scheme(),
        c.participants().to_vec(),
    )
    .expect("the same members form a valid committee on any network");
    (c, signers)
}

/// The committee of `committee(n, Ed25519)` in another epoch.
fn committee_in_epoch(epoch: u64, n: usize) -> ConsensusConfig {
    let (c, _) = committee(n, SchemeId::Ed25519);
    ConsensusConfig::new(c.network().clone(), Epoch(epoch), c.scheme(), c.participants().to_vec())
        .expect("valid")
}

/// A block of `round` proposed by member `round % n` (validation does not check the leader
/// schedule, so the tests do not depend on it).
fn block(config: &ConsensusConfig, round: u64, justify: &QuorumCertificate) -> Block {
    let proposer = round % config.total_nodes() as u64;
    Block::new(
        config.epoch(),
        Round(round),
        Height(round),
        NodeId(u16::try_from(proposer).expect("small committee")),
        justify.clone(),
        1_000 * round,
        vec![format!("cmd-{round}").into_bytes(), vec![0xAB; 100]],
    )
}

fn signer(signers: &Signers, id: u16) -> &dyn Signer {
    signers[usize::from(id)].as_ref()
}

fn votes(config: &ConsensusConfig, signers: &Signers, block: &Block, voters: &[u16]) -> Vec<Vote> {
    voters.iter().map(|&i| Vote::sign(config, block, NodeId(i), signer(signers, i))).collect()
}

fn qc_of(config: &ConsensusConfig, votes: &[Vote]) -> QuorumCertificate {
    let refs: Vec<&Vote> = votes.iter().collect();
    QuorumCertificate::from_votes(config, &refs).expect("distinct members vote")
}

fn qc(
    config: &ConsensusConfig,
    signers: &Signers,
    block: &Block,
    voters: &[u16],
) -> QuorumCertificate {
    qc_of(config, &votes(config, signers, block, voters))
}

fn timeouts(
    config: &ConsensusConfig,
    signers: &Signers,
    round: u64,
    high_qcs: &[(u16, &QuorumCertificate)],
) -> Vec<Timeout> {
    high_qcs
        .iter()
        .map(|&(i, hqc)| {
            Timeout::sign(config, Round(round), hqc.clone(), NodeId(i), signer(signers, i))
        })
        .collect()
}

fn tc_of(config: &ConsensusConfig, timeouts: &[Timeout]) -> TimeoutCertificate {
    let refs: Vec<&Timeout> = timeouts.iter().collect();
    TimeoutCertificate::from_timeouts(config, &refs).expect("distinct members time out")
}

/// The fields of a QC, for forging.
struct QcParts {
    epoch: Epoch,
    round: Round,
    block: BlockId,
    voters: VoterBitmap,
    sigs: Vec<Signature>,
}

/// A QC with the same fields as `qc` except the ones `edit` changes.
fn forge_qc(qc: &QuorumCertificate, edit: impl FnOnce(&mut QcParts)) -> QuorumCertificate {
    let mut p = QcParts {
        epoch: qc.epoch(),
        round: qc.round(),
        block: qc.block_id(),
        voters: qc.voters().clone(),
        sigs: qc.signatures().to_vec(),
    };
    edit(&mut p);
    QuorumCertificate::from_parts(p.epoch, p.round, p.block, p.voters, p.sigs)
}

/// A block with the same fields as `b` except the ones `edit` changes (id recomputed).
struct BlockParts {
    epoch: Epoch,
    round: Round,
    height: Height,
    parent: BlockId,
    proposer: NodeId,
    justify: QuorumCertificate,
}

fn forge_block(b: &Block, edit: impl FnOnce(&mut BlockParts)) -> Block {
    let mut p = BlockParts {
        epoch: b.epoch(),
        round: b.round(),
        height: b.height(),
        parent: b.parent(),
        proposer: b.proposer(),
        justify: b.justify().clone(),
    };
    edit(&mut p);
    Block::with_parent(
        p.epoch,
        p.round,
        p.height,
        p.parent,
        p.proposer,
        p.justify,
        b.timestamp_ms(),
        b.payload().clone(),
    )
}

fn bitmap(total: usize, bytes: &[u8]) -> VoterBitmap {
    VoterBitmap::from_bytes(total, bytes).expect("a well-formed bitmap for `total`")
}

fn flip(s: &Signature) -> Signature {
    let mut s = *s;
    s.0[10] ^= 0x01;
    s
}

/// A small chain on a committee of 4 (`f = 1`, `q = 3`):
///
/// ```text
/// genesis <- b1 (r1) <- b2 (r2)          qc1 = {0,1,2} on b1, qc2 = {1,2,3} on b2
///               ^---- b3 (r3)            round 2 timed out: tc2 = {0,1,3}, high QC rounds [1,1,0]
/// ```
struct Chain {
    config: ConsensusConfig,
    signers: Signers,
    genesis_qc: QuorumCertificate,
    b1: Block,
    qc1_votes: Vec<Vote>,
    qc1: QuorumCertificate,
    b2: Block,
    qc2: QuorumCertificate,
    tc2_timeouts: Vec<Timeout>,
    tc2: TimeoutCertificate,
    b3: Block,
}

fn chain_with(config: ConsensusConfig, signers: Signers) -> Chain {
    let genesis_qc = QuorumCertificate::genesis(&config);
    let b1 = block(&config, 1, &genesis_qc);
    let qc1_votes = votes(&config, &signers, &b1, &[0, 1, 2]);
    let qc1 = qc_of(&config, &qc1_votes);
    let b2 = block(&config, 2, &qc1);
    let qc2 = qc(&config, &signers, &b2, &[1, 2, 3]);
    let tc2_timeouts = timeouts(&config, &signers, 2, &[(0, &qc1), (1, &qc1), (3, &genesis_qc)]);
    let tc2 = tc_of(&config, &tc2_timeouts);
    let b3 = block(&config, 3, &qc1);
    Chain { config, signers, genesis_qc, b1, qc1_votes, qc1, b2, qc2, tc2_timeouts, tc2, b3 }
}

fn chain(scheme: SchemeId) -> Chain {
    let (config, signers) = committee(4, scheme);
    chain_with(config, signers)
}

/// The variant name, from an exhaustive match: adding a variant breaks this file until the
/// coverage test below learns about it.
fn variant(e: &ValidationError) -> &'static str {
    match e {
        ValidationError::WrongEpoch { .. } => "WrongEpoch",
        ValidationError::UnknownNode { .. } => "UnknownNode",
        ValidationError::Bitmap { .. } => "Bitmap",
        ValidationError::SignatureCount { .. } => "SignatureCount",
        ValidationError::HighQcRoundCount { .. } => "HighQcRoundCount",
        ValidationError::NoQuorum { .. } => "NoQuorum",
        ValidationError::BadSignature { .. } => "BadSignature",
        ValidationError::NotGenesis => "NotGenesis",
        ValidationError::JustifyNotLower { .. } => "JustifyNotLower",
        ValidationError::ParentMismatch { .. } => "ParentMismatch",
        ValidationError::GenesisShape => "GenesisShape",
        ValidationError::HighQcNotLower { .. } => "HighQcNotLower",
        ValidationError::TcRound { .. } => "TcRound",
        ValidationError::NoJustification { .. } => "NoJustification",
        ValidationError::StaleHighQc { .. } => "StaleHighQc",
        ValidationError::TimeoutTcRound { .. } => "TimeoutTcRound",
        ValidationError::TcHighQcMismatch { .. } => "TcHighQcMismatch",
        ValidationError::PayloadTooLarge { .. } => "PayloadTooLarge",
        ValidationError::FailedRounds { .. } => "FailedRounds",
        ValidationError::SummaryMembers { .. } => "SummaryMembers",
        ValidationError::LateVoter { .. } => "LateVoter",
        ValidationError::Attester { .. } => "Attester",
    }
}

const ALL_VARIANTS: &[&str] = &[
    "WrongEpoch",
    "UnknownNode",
    "Bitmap",
    "SignatureCount",
    "HighQcRoundCount",
    "NoQuorum",
    "BadSignature",
    "NotGenesis",
    "JustifyNotLower",
    "ParentMismatch",
    "GenesisShape",
    "HighQcNotLower",
    "TcRound",
    "NoJustification",
    "StaleHighQc",
    "TimeoutTcRound",
    "TcHighQcMismatch",
    "PayloadTooLarge",
    "FailedRounds",
    "SummaryMembers",
    "LateVoter",
    "Attester",
];

/// Variants no `validate`/`validate_shape` in this crate produces (see
/// `variants_no_validate_path_produces`).
const NOT_PRODUCED_BY_VALIDATE: &[&str] = &["PayloadTooLarge"];

/// Records the variants the scenarios produced and checks each scenario's exact error.
#[derive(Default)]
struct Seen(BTreeSet<&'static str>);

impl Seen {
    #[track_caller]
    fn check(&mut self, what: &str, got: Result<(), ValidationError>, want: ValidationError) {
        assert_eq!(got, Err(want.clone()), "{what}");
        self.0.insert(variant(&want));
        // Every error renders a message that names its kind of failure.
        assert!(!want.to_string().is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Valid objects
// ---------------------------------------------------------------------------------------------

#[test]
fn objects_built_by_the_constructors_are_valid() {
    let c = chain(SchemeId::Ed25519);
    let cfg = &c.config;
    assert_eq!((cfg.total_nodes(), cfg.faulty_nodes(), cfg.quorum_threshold()), (4, 1, 3));

    assert_eq!(c.genesis_qc.validate(cfg), Ok(()));
    for v in &c.qc1_votes {
        assert_eq!(v.validate(cfg), Ok(()));
    }
    for qc in [&c.qc1, &c.qc2] {
        assert_eq!(qc.validate_shape(cfg), Ok(()));
        assert_eq!(qc.validate(cfg), Ok(()));
    }
    for b in [&c.b1, &c.b2, &c.b3] {
        assert_eq!(b.validate_shape(cfg), Ok(()));
        assert_eq!(b.validate(cfg), Ok(()));
    }
    for t in &c.tc2_timeouts {
        assert_eq!(t.validate(cfg), Ok(()));
    }
    assert_eq!(c.tc2.validate(cfg), Ok(()));
    assert_eq!(c.tc2.high_qc_rounds(), &[Round(1), Round(1), Round(0)]);
    assert_eq!(c.tc2.max_high_qc_round(), Round(1));
    assert_eq!(c.tc2.signers().iter().collect::<Vec<_>>(), [NodeId(0), NodeId(1), NodeId(3)]);

    // Proposals justified by the previous round's QC, and by the previous round's TC.
    let p2 = Proposal::sign(cfg, c.b2.clone(), None, signer(&c.signers, 2));
    assert_eq!(p2.validate(cfg), Ok(()));
    let p3 = Proposal::sign(cfg, c.b3.clone(), Some(c.tc2.clone()), signer(&c.signers, 3));
    assert_eq!(p3.validate(cfg), Ok(()));

    // A timeout whose highest QC is genesis, and one for a later round.
    let t = Timeout::sign(cfg, Round(1), c.genesis_qc.clone(), NodeId(2), signer(&c.signers, 2));
    assert_eq!(t.validate(cfg), Ok(()));
    let t = Timeout::sign(cfg, Round(9), c.qc2.clone(), NodeId(0), signer(&c.signers, 0));
    assert_eq!(t.validate(cfg), Ok(()));
}

#[test]
fn from_votes_and_from_timeouts_sort_by_member_and_refuse_duplicates_and_strangers() {
    let c = chain(SchemeId::Ed25519);
    let cfg = &c.config;
    let mut vs = votes(cfg, &c.signers, &c.b1, &[3, 0, 2]);
    let qc = qc_of(cfg, &vs);
    assert_eq!(qc.voters().iter().collect::<Vec<_>>(), [NodeId(0), NodeId(2), NodeId(3)]);
    assert_eq!(qc.signatures(), [vs[1].signature, vs[2].signature, vs[0].signature]);
    assert_eq!(qc.validate(cfg), Ok(()));

    vs.push(vs[0].clone());
    let refs: Vec<&Vote> = vs.iter().collect();
    assert_eq!(QuorumCertificate::from_votes(cfg, &refs), None, "duplicate voter");
    let mut stranger = vs[0].clone();
    stranger.voter = NodeId(4);
    assert_eq!(QuorumCertificate::from_votes(cfg, &[&stranger]), None, "unknown voter");
    assert_eq!(QuorumCertificate::from_votes(cfg, &[]), None, "no votes");

    let ts = &c.tc2_timeouts;
    assert_eq!(TimeoutCertificate::from_timeouts(cfg, &[&ts[0], &ts[0]]), None);
    assert_eq!(TimeoutCertificate::from_timeouts(cfg, &[]), None);
}

// ---------------------------------------------------------------------------------------------
// Every error path, each with its exact error
// ---------------------------------------------------------------------------------------------

fn vote_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let good = c.qc1_votes[1].clone();

    let mut v = good.clone();
    v.epoch = Epoch(2);
    seen.check(
        "vote of another epoch",
        v.validate(cfg),
        ValidationError::WrongEpoch { kind: K_VOTE, expected: Epoch(1), got: Epoch(2) },
    );
    seen.check(
        "validate_shape checks the epoch too",
        v.validate_shape(cfg),
        ValidationError::WrongEpoch { kind: K_VOTE, expected: Epoch(1), got: Epoch(2) },
    );

    for id in [4, 5, u16::MAX] {
        let mut v = good.clone();
        v.voter = NodeId(id);
        seen.check(
            "vote by a non-member",
            v.validate(cfg),
            ValidationError::UnknownNode { kind: K_VOTE, id: NodeId(id), total: 4 },
        );
    }

    // Member 2 claims a vote that member 1 signed.
    let mut v = good.clone();
    v.voter = NodeId(2);
    seen.check(
        "vote signed by another member",
        v.validate(cfg),
        ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(2) },
    );
    let mut v = good.clone();
    v.round = Round(2);
    seen.check(
        "vote whose round was changed after signing",
        v.validate(cfg),
        ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(1) },
    );
    let mut v = good.clone();
    v.block_id = c.b2.id();
    seen.check(
        "vote whose block was changed after signing",
        v.validate(cfg),
        ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(1) },
    );
    let mut v = good;
    v.signature = flip(&v.signature);
    seen.check(
        "vote with a corrupted signature",
        v.validate(cfg),
        ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(1) },
    );
}

fn qc_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let qc1 = &c.qc1;

    let qc = forge_qc(qc1, |p| p.epoch = Epoch(0));
    seen.check(
        "QC of another epoch",
        qc.validate(cfg),
        ValidationError::WrongEpoch { kind: K_QC, expected: Epoch(1), got: Epoch(0) },
    );

    // Round 0 is reserved for this committee's genesis certificate.
    let qc = forge_qc(qc1, |p| p.round = Round(0));
    seen.check("round-0 QC with signatures", qc.validate(cfg), ValidationError::NotGenesis);
    let qc = forge_qc(&c.genesis_qc, |p| p.block = c.b1.id());
    seen.check("round-0 QC for another block", qc.validate(cfg), ValidationError::NotGenesis);
    let qc = forge_qc(&c.genesis_qc, |p| {
        p.voters = bitmap(4, &[0b0111]);
        p.sigs = c.qc1.signatures().to_vec();
    });
    seen.check("genesis QC carrying votes", qc.validate_shape(cfg), ValidationError::NotGenesis);
    let (other_net, _) = committee_on("other", 4);
    seen.check(
        "another network's genesis QC",
        QuorumCertificate::genesis(&other_net).validate(cfg),
        ValidationError::NotGenesis,
    );
    seen.check(
        "another epoch's genesis QC",
        QuorumCertificate::genesis(&committee_in_epoch(2, 4)).validate(cfg),
        ValidationError::WrongEpoch { kind: K_QC, expected: Epoch(1), got: Epoch(2) },
    );

    // Bitmap: exactly (n+7)/8 bytes, no bit at or above n.
    let qc = forge_qc(qc1, |p| p.voters = bitmap(16, &[0b0111, 0]));
    seen.check(
        "bitmap one byte too long",
        qc.validate(cfg),
        ValidationError::Bitmap {
            kind: K_QC,
            source: BitmapError::WrongLength { total: 4, expected: 1, got: 2 },
        },
    );
    let qc = forge_qc(qc1, |p| p.voters = VoterBitmap::empty(0));
    seen.check(
        "empty bitmap",
        qc.validate(cfg),
        ValidationError::Bitmap {
            kind: K_QC,
            source: BitmapError::WrongLength { total: 4, expected: 1, got: 0 },
        },
    );
    let qc = forge_qc(qc1, |p| p.voters = bitmap(8, &[0b0001_0011]));
    seen.check(
        "bit 4 set in a committee of 4",
        qc.validate(cfg),
        ValidationError::Bitmap {
            kind: K_QC,
            source: BitmapError::BitOutOfRange { bit: 4, total: 4 },
        },
    );
    let qc = forge_qc(qc1, |p| p.voters = bitmap(8, &[0b1000_0111]));
    seen.check(
        "bit 7 set in a committee of 4",
        qc.validate(cfg),
        ValidationError::Bitmap {
            kind: K_QC,
            source: BitmapError::BitOutOfRange { bit: 7, total: 4 },
        },
    );

    let qc = forge_qc(qc1, |p| {
        p.sigs.pop();
    });
    seen.check(
        "a signature missing",
        qc.validate(cfg),
        ValidationError::SignatureCount { kind: K_QC, voters: 3, signatures: 2 },
    );
    let qc = forge_qc(qc1, |p| p.sigs.push(p.sigs[0]));
    seen.check(
        "a signature too many",
        qc.validate(cfg),
        ValidationError::SignatureCount { kind: K_QC, voters: 3, signatures: 4 },
    );

    seen.check(
        "two votes where three are a quorum",
        qc_of(cfg, &c.qc1_votes[..2]).validate(cfg),
        ValidationError::NoQuorum { kind: K_QC, got: 2, need: 3 },
    );
    let qc = forge_qc(qc1, |p| {
        p.voters = VoterBitmap::empty(4);
        p.sigs.clear();
    });
    seen.check(
        "no votes at all",
        qc.validate(cfg),
        ValidationError::NoQuorum { kind: K_QC, got: 0, need: 3 },
    );

    // Signatures checked against the QC's own (round, block): changing either breaks them all,
    // and the error names the first signer in bitmap order.
    let qc = forge_qc(qc1, |p| p.round = Round(5));
    seen.check(
        "QC whose round was changed",
        qc.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) },
    );
    let qc = forge_qc(qc1, |p| p.block = c.b2.id());
    seen.check(
        "QC moved to another block",
        qc.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) },
    );
    assert_eq!(qc.validate_shape(cfg), Ok(()), "shape alone does not check signatures");
    let qc = forge_qc(qc1, |p| p.sigs[2] = flip(&p.sigs[2]));
    seen.check(
        "the third signature corrupted",
        qc.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(2) },
    );
}

fn block_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let b2 = &c.b2;

    let b = forge_block(b2, |p| p.epoch = Epoch(3));
    seen.check(
        "block of another epoch",
        b.validate(cfg),
        ValidationError::WrongEpoch { kind: K_BLOCK, expected: Epoch(1), got: Epoch(3) },
    );
    let b = forge_block(b2, |p| p.proposer = NodeId(4));
    seen.check(
        "block by a non-member",
        b.validate(cfg),
        ValidationError::UnknownNode { kind: K_BLOCK, id: NodeId(4), total: 4 },
    );

    seen.check(
        "the genesis block itself",
        Block::genesis(cfg).validate(cfg),
        ValidationError::GenesisShape,
    );
    let b = forge_block(&c.b1, |p| p.round = Round(0));
    seen.check("a round-0 block", b.validate(cfg), ValidationError::GenesisShape);
    let b = forge_block(b2, |p| p.height = Height(0));
    seen.check("a height-0 block", b.validate_shape(cfg), ValidationError::GenesisShape);

    let b = forge_block(b2, |p| p.round = Round(1));
    seen.check(
        "block justified by a QC of its own round",
        b.validate(cfg),
        ValidationError::JustifyNotLower { round: Round(1), justify_round: Round(1) },
    );
    let b = Block::new(cfg.epoch(), Round(1), Height(3), NodeId(1), c.qc2.clone(), 0, vec![]);
    seen.check(
        "block justified by a QC of a later round",
        b.validate(cfg),
        ValidationError::JustifyNotLower { round: Round(1), justify_round: Round(2) },
    );

    let b = forge_block(b2, |p| p.parent = c.b3.id());
    seen.check(
        "parent is not the certified block",
        b.validate(cfg),
        ValidationError::ParentMismatch { parent: c.b3.id(), justify: c.b1.id() },
    );
    let b = forge_block(&c.b1, |p| p.parent = cfg.digest());
    seen.check(
        "parent named after the config instead of genesis",
        b.validate(cfg),
        ValidationError::ParentMismatch { parent: cfg.digest(), justify: Block::genesis(cfg).id() },
    );

    // The justifying QC's shape is part of the block's shape...
    let weak = qc_of(cfg, &c.qc1_votes[..2]);
    let b = forge_block(b2, |p| p.justify = weak);
    seen.check(
        "block justified by a QC without quorum",
        b.validate_shape(cfg),
        ValidationError::NoQuorum { kind: K_QC, got: 2, need: 3 },
    );
    let fake_genesis = forge_qc(&c.genesis_qc, |p| p.block = Digest([9; 32]));
    let b = Block::new(cfg.epoch(), Round(1), Height(1), NodeId(1), fake_genesis, 0, vec![]);
    seen.check("block on a fake genesis", b.validate(cfg), ValidationError::NotGenesis);

    // ...its signatures only of the full validation.
    let bad_sig = forge_qc(&c.qc1, |p| p.sigs[1] = flip(&p.sigs[1]));
    let b = forge_block(b2, |p| p.justify = bad_sig);
    assert_eq!(b.validate_shape(cfg), Ok(()));
    seen.check(
        "block justified by a QC with a bad signature",
        b.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(1) },
    );
}

fn timeout_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let good = c.tc2_timeouts[0].clone(); // member 0, round 2, high QC qc1

    let mut t = good.clone();
    t.epoch = Epoch(2);
    seen.check(
        "timeout of another epoch",
        t.validate(cfg),
        ValidationError::WrongEpoch { kind: K_TIMEOUT, expected: Epoch(1), got: Epoch(2) },
    );
    let mut t = good.clone();
    t.signer = NodeId(9);
    seen.check(
        "timeout by a non-member",
        t.validate(cfg),
        ValidationError::UnknownNode { kind: K_TIMEOUT, id: NodeId(9), total: 4 },
    );

    let t = Timeout::sign(cfg, Round(1), c.qc1.clone(), NodeId(0), signer(&c.signers, 0));
    seen.check(
        "timeout whose high QC is of its own round",
        t.validate(cfg),
        ValidationError::HighQcNotLower {
            kind: K_TIMEOUT,
            round: Round(1),
            high_qc_round: Round(1),
        },
    );
    let t = Timeout::sign(cfg, Round(1), c.qc2.clone(), NodeId(0), signer(&c.signers, 0));
    seen.check(
        "timeout whose high QC is of a later round",
        t.validate_shape(cfg),
        ValidationError::HighQcNotLower {
            kind: K_TIMEOUT,
            round: Round(1),
            high_qc_round: Round(2),
        },
    );

    let weak = qc_of(cfg, &c.qc1_votes[..1]);
    let t = Timeout::sign(cfg, Round(2), weak, NodeId(0), signer(&c.signers, 0));
    seen.check(
        "timeout whose high QC has no quorum",
        t.validate(cfg),
        ValidationError::NoQuorum { kind: K_QC, got: 1, need: 3 },
    );

    let mut t = good.clone();
    t.signer = NodeId(2);
    seen.check(
        "timeout signed by another member",
        t.validate(cfg),
        ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(2) },
    );
    let mut t = good.clone();
    t.round = Round(3);
    seen.check(
        "timeout whose round was changed after signing",
        t.validate(cfg),
        ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(0) },
    );
    // The signature covers the high QC's round: claiming a higher QC afterwards breaks it.
    let mut t = c.tc2_timeouts[2].clone(); // member 3, signed with the genesis QC (round 0)
    t.high_qc = c.qc1.clone();
    seen.check(
        "timeout whose high QC was swapped after signing",
        t.validate(cfg),
        ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(3) },
    );
    assert_eq!(t.validate_shape(cfg), Ok(()));

    let bad_qc = forge_qc(&c.qc1, |p| p.sigs[0] = flip(&p.sigs[0]));
    let t = Timeout::sign(cfg, Round(2), bad_qc, NodeId(1), signer(&c.signers, 1));
    assert_eq!(t.validate_signature(cfg), Ok(()));
    seen.check(
        "timeout whose high QC has a bad signature",
        t.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) },
    );
}

fn tc_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let tc = &c.tc2;
    let sigs: Vec<Signature> = c.tc2_timeouts.iter().map(|t| t.signature).collect();
    let parts =
        |epoch: u64, round: u64, signers: VoterBitmap, rounds: &[u64], sigs: &[Signature]| {
            TimeoutCertificate::from_parts(
                Epoch(epoch),
                Round(round),
                signers,
                rounds.iter().copied().map(Round).collect(),
                sigs.to_vec(),
                tc.high_qc().clone(),
            )
        };
    let signers = tc.signers().clone();
    assert_eq!(
        parts(1, 2, signers.clone(), &[1, 1, 0], &sigs),
        *tc,
        "the forge helper round-trips"
    );

    seen.check(
        "TC of another epoch",
        parts(2, 2, signers.clone(), &[1, 1, 0], &sigs).validate(cfg),
        ValidationError::WrongEpoch { kind: K_TC, expected: Epoch(1), got: Epoch(2) },
    );
    seen.check(
        "TC bitmap of the wrong length",
        parts(1, 2, bitmap(9, &[0b1011, 0]), &[1, 1, 0], &sigs).validate(cfg),
        ValidationError::Bitmap {
            kind: K_TC,
            source: BitmapError::WrongLength { total: 4, expected: 1, got: 2 },
        },
    );
    seen.check(
        "TC bitmap naming member 5",
        parts(1, 2, bitmap(8, &[0b0010_0011]), &[1, 1, 0], &sigs).validate(cfg),
        ValidationError::Bitmap {
            kind: K_TC,
            source: BitmapError::BitOutOfRange { bit: 5, total: 4 },
        },
    );
    seen.check(
        "TC with a signature missing",
        parts(1, 2, signers.clone(), &[1, 1, 0], &sigs[..2]).validate(cfg),
        ValidationError::SignatureCount { kind: K_TC, voters: 3, signatures: 2 },
    );
    seen.check(
        "TC with a high-QC round missing",
        parts(1, 2, signers.clone(), &[1, 1], &sigs).validate(cfg),
        ValidationError::HighQcRoundCount { signers: 3, rounds: 2 },
    );
    seen.check(
        "TC with a high-QC round too many",
        parts(1, 2, signers.clone(), &[1, 1, 0, 0], &sigs).validate_shape(cfg),
        ValidationError::HighQcRoundCount { signers: 3, rounds: 4 },
    );
    seen.check(
        "TC of two timeouts where three are a quorum",
        tc_of(cfg, &c.tc2_timeouts[..2]).validate(cfg),
        ValidationError::NoQuorum { kind: K_TC, got: 2, need: 3 },
    );
    seen.check(
        "TC claiming a high QC of its own round",
        parts(1, 2, signers.clone(), &[1, 2, 0], &sigs).validate(cfg),
        ValidationError::HighQcNotLower { kind: K_TC, round: Round(2), high_qc_round: Round(2) },
    );
    // The carried QC must be the one of the highest entry: a signer's round is only a number,
    // the QC proves it.
    seen.check(
        "TC whose carried QC is above every signer's claimed round",
        parts(1, 2, signers.clone(), &[0, 0, 0], &sigs).validate(cfg),
        ValidationError::TcHighQcMismatch { tc_max: Round(0), qc_round: Round(1) },
    );
    // Each signature covers its signer's high-QC round: a lie about member 1's is pinned on it.
    seen.check(
        "TC misreporting member 1's high-QC round",
        parts(1, 2, signers.clone(), &[1, 0, 0], &sigs).validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(1) },
    );
    seen.check(
        "TC misreporting member 3's high-QC round",
        parts(1, 2, signers.clone(), &[1, 1, 1], &sigs).validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(3) },
    );
    let mut bad = sigs.clone();
    bad[2] = flip(&bad[2]);
    seen.check(
        "TC with member 3's signature corrupted",
        parts(1, 2, signers.clone(), &[1, 1, 0], &bad).validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(3) },
    );
    seen.check(
        "TC moved to another round",
        parts(1, 3, signers, &[1, 1, 0], &sigs).validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(0) },
    );
}

fn proposal_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let sign = |b: &Block, tc: Option<&TimeoutCertificate>| {
        Proposal::sign(cfg, b.clone(), tc.cloned(), signer(&c.signers, b.proposer().0))
    };

    // P2: the round must follow the QC's round, or the TC's.
    seen.check(
        "round 3 justified by a round-1 QC and no TC",
        sign(&c.b3, None).validate(cfg),
        ValidationError::NoJustification { round: Round(3), qc_round: Round(1) },
    );
    let b4 = block(cfg, 4, &c.qc2);
    seen.check(
        "round 4 carrying the TC of round 2",
        sign(&b4, Some(&c.tc2)).validate(cfg),
        ValidationError::TcRound { round: Round(4), tc_round: Round(2) },
    );
    // P2 with S1c: after TC(2), whose highest QC round is 1, a block on the genesis QC is stale.
    seen.check(
        "round 3 after TC(2) extending a QC below the TC's highest",
        sign(&block(cfg, 3, &c.genesis_qc), Some(&c.tc2)).validate_shape(cfg),
        ValidationError::StaleHighQc { qc_round: Round(0), tc_max: c.tc2.max_high_qc_round() },
    );
    // A timeout message carries the TC of the round before the timeout's, or none.
    let msg = warpnet_types::TimeoutMsg {
        timeout: c.tc2_timeouts[0].clone(),
        last_round_tc: Some(c.tc2.clone()),
    };
    seen.check(
        "timeout of round 2 carrying TC(2)",
        msg.validate(cfg),
        ValidationError::TimeoutTcRound { round: Round(2), tc_round: Round(2) },
    );
    let ok = warpnet_types::TimeoutMsg { timeout: c.tc2_timeouts[0].clone(), last_round_tc: None };
    assert_eq!(ok.validate(cfg), Ok(()));
    // A QC and a TC of round 2 may both justify round 3.
    assert_eq!(sign(&block(cfg, 3, &c.qc2), Some(&c.tc2)).validate(cfg), Ok(()));
    seen.check(
        "round 2 carrying an (irrelevant) TC of round 2",
        sign(&c.b2, Some(&c.tc2)).validate_shape(cfg),
        ValidationError::TcRound { round: Round(2), tc_round: Round(2) },
    );

    // The block's and the TC's shapes are part of the proposal's.
    let b = forge_block(&c.b2, |p| p.epoch = Epoch(7));
    seen.check(
        "proposal of a block of another epoch",
        sign(&b, None).validate(cfg),
        ValidationError::WrongEpoch { kind: K_BLOCK, expected: Epoch(1), got: Epoch(7) },
    );
    let weak_tc = tc_of(cfg, &c.tc2_timeouts[1..]);
    seen.check(
        "proposal carrying a TC without quorum",
        sign(&c.b3, Some(&weak_tc)).validate(cfg),
        ValidationError::NoQuorum { kind: K_TC, got: 2, need: 3 },
    );

    // The proposer's signature, and it must be the proposer's.
    let p = Proposal::sign(cfg, c.b2.clone(), None, signer(&c.signers, 1));
    seen.check(
        "proposal signed by someone else than its proposer",
        p.validate(cfg),
        ValidationError::BadSignature { kind: K_PROPOSAL, signer: NodeId(2) },
    );
    let mut p = sign(&c.b2, None);
    p.block = forge_block(&c.b2, |p| p.height = Height(20));
    seen.check(
        "proposal whose block was changed after signing",
        p.validate(cfg),
        ValidationError::BadSignature { kind: K_PROPOSAL, signer: NodeId(2) },
    );
    let b = forge_block(&c.b2, |p| p.proposer = NodeId(4));
    let p = Proposal::sign(cfg, b, None, signer(&c.signers, 0));
    seen.check(
        "validate_signature of a proposal by a non-member",
        p.validate_signature(cfg),
        ValidationError::UnknownNode { kind: K_PROPOSAL, id: NodeId(4), total: 4 },
    );
    seen.check(
        "validate of a proposal by a non-member stops at the block",
        p.validate(cfg),
        ValidationError::UnknownNode { kind: K_BLOCK, id: NodeId(4), total: 4 },
    );

    // Full validation reaches the QC's and the TC's signatures.
    let bad_qc = forge_qc(&c.qc1, |p| p.sigs[1] = flip(&p.sigs[1]));
    let b = forge_block(&c.b2, |p| p.justify = bad_qc);
    let p = sign(&b, None);
    assert_eq!(p.validate_shape(cfg), Ok(()));
    assert_eq!(p.validate_signature(cfg), Ok(()));
    seen.check(
        "proposal whose QC has a bad signature",
        p.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(1) },
    );
    let mut sigs: Vec<Signature> = c.tc2_timeouts.iter().map(|t| t.signature).collect();
    sigs[1] = flip(&sigs[1]);
    let bad_tc = TimeoutCertificate::from_parts(
        Epoch(1),
        Round(2),
        c.tc2.signers().clone(),
        c.tc2.high_qc_rounds().to_vec(),
        sigs,
        c.tc2.high_qc().clone(),
    );
    let p = sign(&c.b3, Some(&bad_tc));
    assert_eq!(p.validate_shape(cfg), Ok(()));
    seen.check(
        "proposal whose TC has a bad signature",
        p.validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(1) },
    );
}

/// H1, H2, LR2, H4: a block's health records are part of its shape.
fn health_errors(c: &Chain, seen: &mut Seen) {
    use warpnet_types::health::{Attestation, BlockHealth, HealthSummary, LateVotes};
    let cfg = &c.config;
    let with = |h: BlockHealth| c.b2.clone().with_health(h);
    let failed = BlockHealth { failed: vec![(NodeId(2), 1), (NodeId(1), 1)], ..Default::default() };
    seen.check(
        "blame out of order",
        with(failed).validate(cfg),
        ValidationError::FailedRounds { id: NodeId(1), count: 1, total: 4 },
    );
    let summary = HealthSummary {
        window_end: Height(0),
        window_blocks: 0,
        fallback: false,
        members: Vec::new(),
    };
    let h = BlockHealth { summary: Some(summary), ..Default::default() };
    seen.check(
        "a summary without the committee's members",
        with(h).validate_shape(cfg),
        ValidationError::SummaryMembers { got: 0, total: 4 },
    );
    let sig = c.qc1_votes[0].signature;
    let late = LateVotes {
        round: Round(1),
        block_id: c.b1.id(),
        votes: vec![(NodeId(3), sig), (NodeId(3), sig)],
    };
    let h = BlockHealth { late: Some(late), ..Default::default() };
    seen.check(
        "a late voter twice",
        with(h).validate_shape(cfg),
        ValidationError::LateVoter { id: NodeId(3), total: 4 },
    );
    let mut reached = VoterBitmap::empty(4);
    reached.insert(NodeId(1));
    let a = Attestation::sign(cfg, NodeId(1), 0, reached, c.signers[1].as_ref());
    let h = BlockHealth { attestations: vec![a], ..Default::default() };
    seen.check(
        "a member attesting itself",
        with(h).validate_shape(cfg),
        ValidationError::Attester { id: NodeId(1), total: 4 },
    );
}

#[test]
fn every_validation_error_variant_and_path() {
    let c = chain(SchemeId::Ed25519);
    let mut seen = Seen::default();
    vote_errors(&c, &mut seen);
    qc_errors(&c, &mut seen);
    block_errors(&c, &mut seen);
    timeout_errors(&c, &mut seen);
    tc_errors(&c, &mut seen);
    proposal_errors(&c, &mut seen);
    health_errors(&c, &mut seen);

    let reachable: BTreeSet<&str> =
        ALL_VARIANTS.iter().copied().filter(|v| !NOT_PRODUCED_BY_VALIDATE.contains(v)).collect();
    assert_eq!(seen.0, reachable, "every variant a validate() can return was exercised");
}

/// `PayloadTooLarge` exists in `ValidationError` but nothing in this crate returns it:
/// `Block::validate` does not look at the payload's size (the core's configured limits do). This pins their messages so the callers that will produce them get them right.
#[test]
fn variants_no_validate_path_produces() {
    let e =
        ValidationError::PayloadTooLarge { count: 10, bytes: 2000, count_max: 5, bytes_max: 1000 };
    assert_eq!(variant(&e), "PayloadTooLarge");
    assert_eq!(e.to_string(), "payload has 10 commands and 2000 bytes, limits are 5 and 1000");

    // A block with a payload far above any sensible limit still validates here.
    let c = chain(SchemeId::Ed25519);
    let big = Block::new(
        Epoch(1),
        Round(2),
        Height(2),
        NodeId(2),
        c.qc1.clone(),
        0,
        vec![vec![0; 16]; 10_000],
    );
    assert_eq!(big.validate(&c.config), Ok(()));
}

#[test]
fn bad_signature_names_the_right_signer_at_every_position() {
    let (cfg, signers) = committee(10, SchemeId::Ed25519); // f = 3, q = 7
    let b1 = block(&cfg, 1, &QuorumCertificate::genesis(&cfg));
    let voters = [0, 2, 3, 5, 6, 8, 9];
    let qc = qc(&cfg, &signers, &b1, &voters);
    assert_eq!(qc.validate(&cfg), Ok(()));
    for (pos, &id) in voters.iter().enumerate() {
        let bad = forge_qc(&qc, |p| p.sigs[pos] = flip(&p.sigs[pos]));
        assert_eq!(
            bad.validate(&cfg),
            Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(id) }),
            "signature at position {pos}"
        );
        // A valid signature by another member in that slot is just as bad.
        let other = Vote::sign(&cfg, &b1, NodeId(1), signer(&signers, 1)).signature;
        let bad = forge_qc(&qc, |p| p.sigs[pos] = other);
        assert_eq!(
            bad.validate(&cfg),
            Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(id) })
        );
    }
    // Two signatures swapped: the first of the two, in bitmap order, is named.
    let bad = forge_qc(&qc, |p| p.sigs.swap(3, 5));
    assert_eq!(
        bad.validate(&cfg),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(5) })
    );
    // Several bad: the lowest member is named.
    let bad = forge_qc(&qc, |p| {
        p.sigs[6] = flip(&p.sigs[6]);
        p.sigs[4] = flip(&p.sigs[4]);
    });
    assert_eq!(
        bad.validate(&cfg),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(6) })
    );
}

// ---------------------------------------------------------------------------------------------
// Quorum rule
// ---------------------------------------------------------------------------------------------

#[test]
fn a_qc_needs_exactly_n_minus_f_votes() {
    for n in 1..=10usize {
        let (cfg, signers) = committee(n, SchemeId::Ed25519);
        let f = (n - 1) / 3;
        let q = n - f;
        assert_eq!(cfg.quorum_threshold(), q, "n={n}");
        let b1 = block(&cfg, 1, &QuorumCertificate::genesis(&cfg));
        let all: Vec<u16> = (0..n as u16).collect();
        let vs = votes(&cfg, &signers, &b1, &all);

        assert_eq!(qc_of(&cfg, &vs).validate(&cfg), Ok(()), "n={n}, all {n} votes");
        // Any q votes (first ones, last ones) form a valid QC.
        assert_eq!(qc_of(&cfg, &vs[..q]).validate(&cfg), Ok(()), "n={n}, first {q}");
        assert_eq!(qc_of(&cfg, &vs[n - q..]).validate(&cfg), Ok(()), "n={n}, last {q}");
        if q > 1 {
            assert_eq!(
                qc_of(&cfg, &vs[..q - 1]).validate(&cfg),
                Err(ValidationError::NoQuorum { kind: K_QC, got: q - 1, need: q }),
                "n={n}"
            );
        }
    }
}

#[test]
fn the_same_votes_pass_the_unsafe_adr_rule_but_not_n_minus_f() {
    // n = 5: f = 1, n - f = 4, but ADR-006's 2f + 1 = 3.
    let (cfg, signers) = committee(5, SchemeId::Ed25519);
    let b1 = block(&cfg, 1, &QuorumCertificate::genesis(&cfg));
    let three = qc(&cfg, &signers, &b1, &[0, 2, 4]);
    assert_eq!(
        three.validate(&cfg),
        Err(ValidationError::NoQuorum { kind: K_QC, got: 3, need: 4 })
    );
    let adr = cfg.clone().with_unsafe_adr_quorum();
    assert_eq!(adr.quorum_threshold(), 3);
    assert_eq!(three.validate(&adr), Ok(()));

    // And the same for timeout certificates.
    let g = QuorumCertificate::genesis(&cfg);
    let ts = timeouts(&cfg, &signers, 1, &[(1, &g), (2, &g), (3, &g)]);
    let tc = tc_of(&cfg, &ts);
    assert_eq!(tc.validate(&cfg), Err(ValidationError::NoQuorum { kind: K_TC, got: 3, need: 4 }));
    // A TC carries its highest QC, here the genesis QC, which belongs to its committee (the
    // quorum rule is part of the committee's digest): build the ADR committee's own.
    let g = QuorumCertificate::genesis(&adr);
    let ts = timeouts(&adr, &signers, 1, &[(1, &g), (2, &g), (3, &g)]);
    assert_eq!(tc_of(&adr, &ts).validate(&adr), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Domain separation, networks, schemes
// ---------------------------------------------------------------------------------------------

fn verifies(cfg: &ConsensusConfig, id: NodeId, message: &[u8], signature: &Signature) -> bool {
    let key = cfg.public_key(id).expect("member");
    cfg.scheme().scheme().verify(SignedItem { key, message, signature }).is_ok()
}

/// `len(tag) || tag || network || epoch || round || block id`: the vote layout under any tag.
fn vote_layout(
    tag: &[u8],
    cfg: &ConsensusConfig,
    epoch: Epoch,
    round: Round,
    block: BlockId,
) -> Vec<u8> {
    let mut w = domain::signing_writer(tag, cfg.network());
    w.put(&epoch).put(&round).put(&block);
    w.finish()
}

#[test]
fn a_vote_signature_never_verifies_under_another_domain() {
    for scheme in [SchemeId::Ed25519, SchemeId::InsecureSimulation] {
        let c = chain(scheme);
        let cfg = &c.config;
        let b2 = &c.b2; // proposed by member 2
        let vote = Vote::sign(cfg, b2, NodeId(2), signer(&c.signers, 2));
        let (e, r, id) = (b2.epoch(), b2.round(), b2.id());

        // The layout helper reproduces the real signed bytes, which verify.
        assert_eq!(
            vote_layout(domain::TAG_VOTE, cfg, e, r, id),
            vote_signing_bytes(cfg.network(), e, r, id)
        );
        assert_eq!(
            vote_layout(domain::TAG_PROPOSAL, cfg, e, r, id),
            proposal_signing_bytes(cfg.network(), e, r, id),
            "proposals sign the vote's layout; only the tag differs"
        );
        assert!(verifies(cfg, NodeId(2), &vote.signing_bytes(cfg), &vote.signature));

        // The very same fields under every other tag: never.
        for &tag in domain::ALL.iter().filter(|&&t| t != domain::TAG_VOTE) {
            let bytes = vote_layout(tag, cfg, e, r, id);
            assert!(
                !verifies(cfg, NodeId(2), &bytes, &vote.signature),
                "{scheme:?}: vote signature verified under {}",
                String::from_utf8_lossy(tag)
            );
        }
        // Timeout bytes with the vote's round in both places, and with the tag left out.
        let tb = timeout_signing_bytes(cfg.network(), e, r, r);
        assert!(!verifies(cfg, NodeId(2), &tb, &vote.signature));
        let mut untagged = warpnet_types::codec::Writer::new();
        untagged.put(cfg.network()).put(&e).put(&r).put(&id);
        assert!(!verifies(cfg, NodeId(2), untagged.as_slice(), &vote.signature));

        // As objects: the proposer's vote passed off as its proposal signature.
        let p = Proposal { block: b2.clone(), tc: None, signature: vote.signature };
        assert_eq!(
            p.validate(cfg),
            Err(ValidationError::BadSignature { kind: K_PROPOSAL, signer: NodeId(2) }),
            "{scheme:?}"
        );
        // ...and the other way round.
        let proposal = Proposal::sign(cfg, b2.clone(), None, signer(&c.signers, 2));
        assert_eq!(proposal.validate(cfg), Ok(()));
        let mut v = vote.clone();
        v.signature = proposal.signature;
        assert_eq!(
            v.validate(cfg),
            Err(ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(2) })
        );
        // A vote signature in a timeout, and timeout signatures in a QC.
        let mut t = Timeout::sign(cfg, Round(2), c.qc1.clone(), NodeId(2), signer(&c.signers, 2));
        t.signature = vote.signature;
        assert_eq!(
            t.validate(cfg),
            Err(ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(2) })
        );
        let ts: Vec<Signature> = c.tc2_timeouts.iter().map(|t| t.signature).collect();
        let qc = QuorumCertificate::from_parts(e, r, id, c.tc2.signers().clone(), ts);
        assert_eq!(
            qc.validate(cfg),
            Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) })
        );
    }
}

#[test]
fn a_committee_on_network_a_refuses_what_was_signed_for_network_b() {
    let (a, signers) = committee_on("a", 4);
    let (b, _) = committee_on("b", 4);
    assert_eq!(a.participants(), b.participants(), "same members, same keys");
    let on_b = chain_with(b.clone(), signers);

    // Valid on b...
    assert_eq!(on_b.qc1.validate(&b), Ok(()));
    assert_eq!(on_b.tc2.validate(&b), Ok(()));
    // ...refused on a, naming the first signer.
    assert_eq!(
        on_b.qc1.validate(&a),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) })
    );
    assert_eq!(on_b.qc1.validate_shape(&a), Ok(()), "the shape alone cannot tell");
    assert_eq!(
        on_b.tc2.validate(&a),
        Err(ValidationError::BadSignature { kind: K_TC, signer: NodeId(0) })
    );
    assert_eq!(
        on_b.qc1_votes[1].validate(&a),
        Err(ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(1) })
    );
    // A timeout whose high QC is genesis: b's genesis QC is not a's.
    let t =
        Timeout::sign(&b, Round(1), on_b.genesis_qc.clone(), NodeId(3), signer(&on_b.signers, 3));
    assert_eq!(t.validate(&b), Ok(()));
    assert_eq!(t.validate(&a), Err(ValidationError::NotGenesis));
    assert_eq!(
        on_b.tc2_timeouts[0].validate(&a),
        Err(ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(0) })
    );
    // b's round-1 block extends b's genesis, which a does not recognise.
    assert_eq!(on_b.b1.validate(&a), Err(ValidationError::NotGenesis));
    let p2 = Proposal::sign(&b, on_b.b2.clone(), None, signer(&on_b.signers, 2));
    assert_eq!(p2.validate(&b), Ok(()));
    assert_eq!(
        p2.validate(&a),
        Err(ValidationError::BadSignature { kind: K_PROPOSAL, signer: NodeId(2) })
    );
}

#[test]
fn qc_validation_works_for_both_schemes() {
    for scheme in [SchemeId::Ed25519, SchemeId::InsecureSimulation] {
        for n in [1usize, 4, 7] {
            let (cfg, signers) = committee(n, scheme);
            assert_eq!(cfg.scheme(), scheme);
            let q = cfg.quorum_threshold();
            let b1 = block(&cfg, 1, &QuorumCertificate::genesis(&cfg));
            let all: Vec<u16> = (0..n as u16).collect();
            let qc = qc(&cfg, &signers, &b1, &all[..q]);
            assert_eq!(qc.validate(&cfg), Ok(()), "{scheme:?} n={n}");
            let last = q - 1;
            let bad = forge_qc(&qc, |p| p.sigs[last] = flip(&p.sigs[last]));
            assert_eq!(
                bad.validate(&cfg),
                Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(last as u16) }),
                "{scheme:?} n={n}"
            );
            let moved = forge_qc(&qc, |p| p.round = Round(2));
            assert_eq!(
                moved.validate(&cfg),
                Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) }),
                "{scheme:?} n={n}"
            );
            if q > 1 {
                let short = forge_qc(&qc, |p| {
                    p.voters = VoterBitmap::from_ids(n, &[NodeId(0)]).expect("member 0");
                    p.sigs.truncate(1);
                });
                assert_eq!(
                    short.validate(&cfg),
                    Err(ValidationError::NoQuorum { kind: K_QC, got: 1, need: q })
                );
            }
        }
    }
    // Signatures of one scheme mean nothing to a committee of the other (even for its own
    // members' positions).
    let (ed, ed_signers) = committee(4, SchemeId::Ed25519);
    let (sim, _) = committee(4, SchemeId::InsecureSimulation);
    let b1 = block(&ed, 1, &QuorumCertificate::genesis(&ed));
    let qc = qc(&ed, &ed_signers, &b1, &[0, 1, 2]);
    assert_eq!(
        qc.validate(&sim),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) })
    );
}

// ---------------------------------------------------------------------------------------------
// Ed25519: batch and single verification must agree
// ---------------------------------------------------------------------------------------------

/// `bytes` (little-endian, any length) reduced mod the group order, as a value of the type of
/// `like` (curve25519-dalek's `Scalar`, reached through `SigningKey::to_scalar` without naming it).
fn scalar_like<S>(_like: &S, bytes: &[u8]) -> S
where
    S: From<u64> + Mul<Output = S> + Add<Output = S> + Copy,
{
    let base = S::from(256);
    bytes.iter().rev().fold(S::from(0), |acc, &b| acc * base + S::from(u64::from(b)))
}

/// A member who knows its own secret signs with `R` = the identity point (a small-order point):
/// `s = H(R || A || M) * a`. Cofactorless verification holds (`sB = hA = R + hA`), so batch
/// verification accepts it, but `verify_strict` refuses every small-order `R`.
fn small_order_r_signature(seed: u64, public: &[u8; 32], message: &[u8]) -> Signature {
    // `signer_from_seed`'s derivation of test secrets.
    let secret = Digest::hash(b"warpnet/test-key", &seed.to_le_bytes()).0;
    let sk = ed25519_dalek::SigningKey::from_bytes(&secret);
    assert_eq!(&sk.verifying_key().to_bytes(), public, "the derivation matches the crate's");
    let mut r = [0u8; 32];
    r[0] = 1; // the compressed identity (y = 1)
    let h: [u8; 64] =
        Sha512::new().chain_update(r).chain_update(public).chain_update(message).finalize().into();
    let a = sk.to_scalar();
    let s = scalar_like(&a, &h) * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    sig[32..].copy_from_slice(&s.to_bytes());
    Signature(sig)
}

/// The signature a vote alone is refused for must not count inside a QC.
///
/// Regression: `ed25519_dalek::verify_batch` accepts a small-order `R` that `verify_strict`
/// refuses; `Ed25519Scheme::verify_batch` now refuses such a batch so the culprit is found one by
/// one and the certificate is refused.
#[test]
fn a_qc_refuses_a_signature_that_single_verification_refuses() {
    let c = chain(SchemeId::Ed25519);
    let cfg = &c.config;
    let b1 = &c.b1;
    let msg = vote_signing_bytes(cfg.network(), b1.epoch(), b1.round(), b1.id());
    let public = cfg.public_key(NodeId(0)).expect("member").0;
    let sig = small_order_r_signature(SEED, &public, &msg);

    let mut forged = c.qc1_votes[0].clone();
    forged.signature = sig;
    assert_eq!(
        forged.validate(cfg),
        Err(ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(0) }),
        "verify_strict refuses the small-order R"
    );
    let qc = qc_of(cfg, &[forged, c.qc1_votes[1].clone(), c.qc1_votes[2].clone()]);
    assert_eq!(
        qc.validate(cfg),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) }),
        "a QC must not count a vote that is refused on its own"
    );
}
