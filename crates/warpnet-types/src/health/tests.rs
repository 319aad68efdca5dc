use super::*;
use crate::codec::Decode;
use crate::{Block, Digest, QuorumCertificate, SchemeId, Signer};

fn committee(n: usize) -> (ConsensusConfig, Vec<Box<dyn Signer>>) {
    ConsensusConfig::for_testing(n, SchemeId::Ed25519, 0).unwrap()
}

fn summary(c: &ConsensusConfig) -> HealthSummary {
    HealthSummary {
        window_end: Height(31),
        window_blocks: 32,
        fallback: false,
        members: c
            .participants()
            .iter()
            .enumerate()
            .map(|(i, p)| MemberHealth {
                public_key: p.public_key,
                online: i != 2,
                verified_public: i % 2 == 0,
                last_seen: (i != 3).then_some(Height(30 - i as u64)),
                votes: 20 + i as u32,
                proposals: i as u32,
                failed: (i == 2) as u32 * 3,
                attested_by: i as u16,
                reputation: Reputation::ALL[i % Reputation::ALL.len()],
            })
            .collect(),
    }
}

fn late(c: &ConsensusConfig, s: &[Box<dyn Signer>], ids: &[u16]) -> LateVotes {
    let (round, block_id) = (Round(7), Digest([7; 32]));
    let bytes = crate::certs::vote_signing_bytes(c.network(), c.epoch(), round, block_id);
    let votes = ids.iter().map(|&i| (NodeId(i), s[i as usize].sign(&bytes))).collect();
    LateVotes { round, block_id, votes }
}

fn full(c: &ConsensusConfig, s: &[Box<dyn Signer>]) -> BlockHealth {
    let reached = VoterBitmap::from_ids(4, &[NodeId(0), NodeId(2)]).unwrap();
    BlockHealth {
        late: Some(late(c, s, &[1, 3])),
        timeouts: VoterBitmap::from_ids(4, &[NodeId(0), NodeId(1), NodeId(3)]).unwrap(),
        attestations: vec![Attestation::sign(c, NodeId(1), 1_000, reached, s[1].as_ref())],
        failed: vec![(NodeId(1), 2), (NodeId(2), 1)],
        summary: Some(summary(c)),
    }
}

#[test]
fn block_health_roundtrips_and_its_length_is_exact() {
    let (c, s) = committee(4);
    let h = full(&c, &s);
    let bytes = h.to_bytes();
    assert_eq!(bytes.len(), h.encoded_len());
    assert_eq!(BlockHealth::from_bytes(&bytes).unwrap(), h);
    assert_eq!(h.validate_shape(&c), Ok(()));
    assert_eq!(h.validate_signatures(&c), Ok(()));
}

#[test]
fn a_block_without_records_encodes_as_before_records_existed() {
    // The pre-health layout: the payload count is a plain u32 and nothing follows the payload,
    // so a stored chain of such blocks decodes to the same ids.
    let (c, s) = committee(4);
    let qc = QuorumCertificate::genesis(&c);
    let b = Block::new(c.epoch(), Round(1), Height(1), NodeId(0), qc, 5, vec![vec![1, 2]]);
    let bytes = b.to_bytes();
    assert_eq!(&bytes[bytes.len() - 4 - 2 - 4..bytes.len() - 6], &1u32.to_le_bytes());
    let with = b.clone().with_health(full(&c, &s));
    assert_ne!(with.id(), b.id());
    let flagged = with.to_bytes();
    assert_eq!(Block::from_bytes(&flagged).unwrap(), with);
    assert_eq!(flagged.len(), with.encoded_len());
    // Flagged but empty has no canonical meaning and is refused.
    let mut forged = bytes.clone();
    let at = bytes.len() - 6 - 4;
    forged[at + 3] |= 0x80;
    forged.extend(BlockHealth::default().to_bytes());
    assert!(Block::from_bytes(&forged).is_err());
}

#[test]
fn h1_a_forged_late_vote_is_refused() {
    let (c, s) = committee(4);
    let mut h = BlockHealth { late: Some(late(&c, &s, &[1, 3])), ..BlockHealth::default() };
    assert_eq!(h.validate_signatures(&c), Ok(()));
    // Member 3's slot carries member 2's signature: a leader cannot record a vote it lacks.
    let other = late(&c, &s, &[2]).votes[0].1;
    h.late.as_mut().unwrap().votes[1].1 = other;
    assert_eq!(
        h.validate_signatures(&c),
        Err(ValidationError::BadSignature { kind: "late vote", signer: NodeId(3) })
    );
}

#[test]
fn h2_an_attestation_under_another_name_is_refused() {
    let (c, s) = committee(4);
    let reached = VoterBitmap::from_ids(4, &[NodeId(0)]).unwrap();
    let mut a = Attestation::sign(&c, NodeId(1), 5, reached, s[2].as_ref());
    assert!(matches!(a.validate(&c), Err(ValidationError::BadSignature { .. })));
    a.reached.insert(NodeId(1));
    assert!(matches!(a.validate_shape(&c), Err(ValidationError::Attester { .. })));
}

#[test]
fn shapes_a_voter_refuses() {
    let (c, s) = committee(4);
    let wrong_len = BlockHealth { timeouts: VoterBitmap::empty(9), ..BlockHealth::default() };
    assert!(matches!(wrong_len.validate_shape(&c), Err(ValidationError::Bitmap { .. })));
    for failed in [vec![(NodeId(4), 1)], vec![(NodeId(1), 0)], vec![(NodeId(2), 1), (NodeId(1), 1)]]
    {
        let h = BlockHealth { failed, ..BlockHealth::default() };
        assert!(matches!(h.validate_shape(&c), Err(ValidationError::FailedRounds { .. })));
    }
    let mut unordered = late(&c, &s, &[1, 3]);
    unordered.votes.swap(0, 1);
    let h = BlockHealth { late: Some(unordered), ..BlockHealth::default() };
    assert!(matches!(h.validate_shape(&c), Err(ValidationError::LateVoter { .. })));
    let mut sm = summary(&c);
    sm.members.swap(0, 1);
    let h = BlockHealth { summary: Some(sm), ..BlockHealth::default() };
    assert!(matches!(h.validate_shape(&c), Err(ValidationError::SummaryMembers { .. })));
}

#[test]
fn h4_summaries_every_sixteen_blocks() {
    let due: Vec<u64> = (0..50).filter(|&h| summary_due(Height(h))).collect();
    assert_eq!(due, [16, 32, 48]);
}
