//! The builders every validation scenario uses: test committees, blocks, votes and
//! certificates from the public constructors, forgeries through `from_parts`, the small chain
//! the error scenarios edit, and the record of which error variants they produced.

pub(crate) use std::collections::BTreeSet;
pub(crate) use std::ops::{Add, Mul};

pub(crate) use sha2::{Digest as _, Sha512};
pub(crate) use warpnet_types::bitmap::{BitmapError, VoterBitmap};
pub(crate) use warpnet_types::certs::{timeout_signing_bytes, vote_signing_bytes};
pub(crate) use warpnet_types::crypto::{domain, SignedItem};
pub(crate) use warpnet_types::message::proposal_signing_bytes;
pub(crate) use warpnet_types::{
    Block, BlockId, ConsensusConfig, Digest, Epoch, Height, NetworkId, NodeId, Proposal,
    QuorumCertificate, Round, SchemeId, Signature, Signer, Timeout, TimeoutCertificate,
    ValidationError, Vote,
};

pub(crate) type Signers = Vec<Box<dyn Signer>>;

/// Seed base of every test committee: member `i` has the key of seed `SEED + i`.
pub(crate) const SEED: u64 = 7;

pub(crate) const K_BLOCK: &str = "block";
pub(crate) const K_VOTE: &str = "vote";
pub(crate) const K_QC: &str = "quorum certificate";
pub(crate) const K_TIMEOUT: &str = "timeout";
pub(crate) const K_TC: &str = "timeout certificate";
pub(crate) const K_PROPOSAL: &str = "proposal";

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

pub(crate) fn committee(n: usize, scheme: SchemeId) -> (ConsensusConfig, Signers) {
    ConsensusConfig::for_testing(n, scheme, SEED).expect("a test committee is valid")
}

/// The members (and keys) of `committee(n, Ed25519)`, on the network `network`.
pub(crate) fn committee_on(network: &str, n: usize) -> (ConsensusConfig, Signers) {
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
pub(crate) fn committee_in_epoch(epoch: u64, n: usize) -> ConsensusConfig {
    let (c, _) = committee(n, SchemeId::Ed25519);
    ConsensusConfig::new(c.network().clone(), Epoch(epoch), c.scheme(), c.participants().to_vec())
        .expect("valid")
}

/// A block of `round` proposed by member `round % n` (validation does not check the leader
/// schedule, so the tests do not depend on it).
pub(crate) fn block(config: &ConsensusConfig, round: u64, justify: &QuorumCertificate) -> Block {
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

pub(crate) fn signer(signers: &Signers, id: u16) -> &dyn Signer {
    signers[usize::from(id)].as_ref()
}

pub(crate) fn votes(
    config: &ConsensusConfig,
    signers: &Signers,
    block: &Block,
    voters: &[u16],
) -> Vec<Vote> {
    voters.iter().map(|&i| Vote::sign(config, block, NodeId(i), signer(signers, i))).collect()
}

pub(crate) fn qc_of(config: &ConsensusConfig, votes: &[Vote]) -> QuorumCertificate {
    let refs: Vec<&Vote> = votes.iter().collect();
    QuorumCertificate::from_votes(config, &refs).expect("distinct members vote")
}

pub(crate) fn qc(
    config: &ConsensusConfig,
    signers: &Signers,
    block: &Block,
    voters: &[u16],
) -> QuorumCertificate {
    qc_of(config, &votes(config, signers, block, voters))
}

pub(crate) fn timeouts(
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

pub(crate) fn tc_of(config: &ConsensusConfig, timeouts: &[Timeout]) -> TimeoutCertificate {
    let refs: Vec<&Timeout> = timeouts.iter().collect();
    TimeoutCertificate::from_timeouts(config, &refs).expect("distinct members time out")
}

/// The fields of a QC, for forging.
pub(crate) struct QcParts {
    pub(crate) epoch: Epoch,
    pub(crate) round: Round,
    pub(crate) block: BlockId,
    pub(crate) voters: VoterBitmap,
    pub(crate) sigs: Vec<Signature>,
}

/// A QC with the same fields as `qc` except the ones `edit` changes.
pub(crate) fn forge_qc(
    qc: &QuorumCertificate,
    edit: impl FnOnce(&mut QcParts),
) -> QuorumCertificate {
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
pub(crate) struct BlockParts {
    pub(crate) epoch: Epoch,
    pub(crate) round: Round,
    pub(crate) height: Height,
    pub(crate) parent: BlockId,
    pub(crate) proposer: NodeId,
    pub(crate) justify: QuorumCertificate,
}

pub(crate) fn forge_block(b: &Block, edit: impl FnOnce(&mut BlockParts)) -> Block {
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

pub(crate) fn bitmap(total: usize, bytes: &[u8]) -> VoterBitmap {
    VoterBitmap::from_bytes(total, bytes).expect("a well-formed bitmap for `total`")
}

pub(crate) fn flip(s: &Signature) -> Signature {
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
pub(crate) struct Chain {
    pub(crate) config: ConsensusConfig,
    pub(crate) signers: Signers,
    pub(crate) genesis_qc: QuorumCertificate,
    pub(crate) b1: Block,
    pub(crate) qc1_votes: Vec<Vote>,
    pub(crate) qc1: QuorumCertificate,
    pub(crate) b2: Block,
    pub(crate) qc2: QuorumCertificate,
    pub(crate) tc2_timeouts: Vec<Timeout>,
    pub(crate) tc2: TimeoutCertificate,
    pub(crate) b3: Block,
}

pub(crate) fn chain_with(config: ConsensusConfig, signers: Signers) -> Chain {
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

pub(crate) fn chain(scheme: SchemeId) -> Chain {
    let (config, signers) = committee(4, scheme);
    chain_with(config, signers)
}

/// The variant name, from an exhaustive match: adding a variant breaks this file until the
/// coverage test below learns about it.
pub(crate) fn variant(e: &ValidationError) -> &'static str {
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

pub(crate) const ALL_VARIANTS: &[&str] = &[
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
pub(crate) const NOT_PRODUCED_BY_VALIDATE: &[&str] = &["PayloadTooLarge"];

/// Records the variants the scenarios produced and checks each scenario's exact error.
#[derive(Default)]
pub(crate) struct Seen(pub(crate) BTreeSet<&'static str>);

impl Seen {
    #[track_caller]
    pub(crate) fn check(
        &mut self,
        what: &str,
        got: Result<(), ValidationError>,
        want: ValidationError,
    ) {
        assert_eq!(got, Err(want.clone()), "{what}");
        self.0.insert(variant(&want));
        // Every error renders a message that names its kind of failure.
        assert!(!want.to_string().is_empty());
    }
}
