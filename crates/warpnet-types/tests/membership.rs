//! Committee changes and epoch proofs: what is accepted, and a typed refusal for everything
//! else (a forged proof of possession, endorsements from non-members, from another epoch, too
//! few or out of order, a duplicate admission, a retired key, the floor, the last public member,
//! a proof with a broken link or a wrong certificate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use warpnet_types::crypto::signer_from_seed;
use warpnet_types::epoch::{CommitProof, EpochProof, ProofError};
use warpnet_types::membership::{
    Admission, Change, Endorsed, Endorsement, Grounds, MembershipError, Update,
};
use warpnet_types::{
    Block, ConsensusConfig, Decode, Encode, Epoch, EpochStart, Height, NodeId, Participant,
    QuorumCertificate, Round, SchemeId, Signer, Vote,
};

struct Net {
    config: ConsensusConfig,
    signers: Vec<Box<dyn Signer>>,
}

fn net(n: usize) -> Net {
    let (config, signers) = ConsensusConfig::for_testing(n, SchemeId::Ed25519, 40).unwrap();
    Net { config, signers }
}

fn candidate(seed: u64) -> (Participant, Box<dyn Signer>) {
    let s = signer_from_seed(SchemeId::Ed25519, seed);
    let p = Participant {
        public_key: s.public_key(),
        address: format!("10.0.0.{seed}:7100"),
        api_address: format!("10.0.0.{seed}:7000"),
        public: true,
    };
    (p, s)
}

impl Net {
    fn endorse(&self, what: &Endorsed, ids: &[u16]) -> Vec<Endorsement> {
        ids.iter()
            .map(|&i| {
                Endorsement::sign(&self.config, NodeId(i), what, self.signers[i as usize].as_ref())
            })
            .collect()
    }

    fn admission(&self, seed: u64) -> Admission {
        let (p, s) = candidate(seed);
        Admission::sign(self.config.network(), p, [seed as u8; 16], s.as_ref())
    }

    fn add(&self, seed: u64, ids: &[u16]) -> Change {
        let admission = self.admission(seed);
        let endorsements = self.endorse(&Endorsed::Add(admission.digest()), ids);
        Change::Add { admission, endorsements }
    }

    fn remove(&self, victim: u16, ids: &[u16]) -> Change {
        let key = *self.config.public_key(NodeId(victim)).unwrap();
        let reason = "decommissioned".to_string();
        let endorsements = self.endorse(&Endorsed::Remove { key, reason: reason.clone() }, ids);
        Change::Remove { key, reason, grounds: Grounds::Endorsed(endorsements) }
    }
}

#[test]
fn an_admission_endorsed_by_a_quorum_adds_the_candidate_at_the_end() {
    let n = net(4);
    let change = n.add(90, &[0, 1, 3]);
    let (members, retired) = change.apply(&n.config).unwrap();
    assert_eq!(members.len(), 5);
    assert_eq!(members[4].public_key, candidate(90).0.public_key);
    assert_eq!(retired, None);
    // The command round-trips and is recognised as a membership command.
    let cmd = change.to_command();
    assert_eq!(Change::from_command(&cmd), Some(Ok(change)));
    assert_eq!(Change::from_command(&[1, 1, 0]), None, "a claim is not a membership command");
}

#[test]
fn a_forged_proof_of_possession_is_refused() {
    let n = net(4);
    let mut admission = n.admission(91);
    admission.candidate.address = "10.9.9.9:7100".into(); // signed for another address
    let endorsements = n.endorse(&Endorsed::Add(admission.digest()), &[0, 1, 2]);
    let err = Change::Add { admission, endorsements }.apply(&n.config).unwrap_err();
    assert_eq!(err, MembershipError::BadProofOfPossession);
}

#[test]
fn endorsements_must_be_a_quorum_of_distinct_current_members_in_order() {
    let n = net(4);
    let e = Epoch(1);
    assert_eq!(
        n.add(92, &[0, 1]).apply(&n.config).unwrap_err(),
        MembershipError::TooFewEndorsements { got: 2, need: 3, epoch: e }
    );
    let mut dup = n.add(92, &[0, 1, 2]);
    if let Change::Add { endorsements, .. } = &mut dup {
        endorsements[2] = endorsements[1];
    }
    assert_eq!(
        dup.apply(&n.config).unwrap_err(),
        MembershipError::EndorsementOrder { id: NodeId(1) }
    );
    // A stranger's signature in a member's slot does not verify.
    let mut forged = n.add(92, &[0, 1, 2]);
    if let Change::Add { admission, endorsements } = &mut forged {
        let stranger = signer_from_seed(SchemeId::Ed25519, 999);
        let what = Endorsed::Add(admission.digest());
        endorsements[2] = Endorsement::sign(&n.config, NodeId(2), &what, stranger.as_ref());
    }
    assert_eq!(
        forged.apply(&n.config).unwrap_err(),
        MembershipError::BadEndorsement { id: NodeId(2), epoch: e }
    );
    let mut outsider = n.add(92, &[0, 1, 2]);
    if let Change::Add { endorsements, .. } = &mut outsider {
        endorsements[2].member = NodeId(9);
    }
    assert_eq!(
        outsider.apply(&n.config).unwrap_err(),
        MembershipError::EndorserNotMember { id: NodeId(9), epoch: e }
    );
}

#[test]
fn endorsements_of_an_older_epoch_do_not_count() {
    let n = net(4);
    let change = n.add(93, &[0, 1, 2]);
    let later = n
        .config
        .next_epoch(
            n.config.participants().to_vec(),
            None,
            EpochStart {
                after: Block::genesis(&n.config).id(),
                height: Height(5),
                timestamp_ms: 1,
            },
        )
        .unwrap();
    assert!(matches!(change.apply(&later), Err(MembershipError::BadEndorsement { .. })));
}

#[test]
fn a_member_cannot_be_admitted_twice_and_a_removed_key_never_returns() {
    let n = net(5);
    let (p, s) = (n.config.participants()[2].clone(), &n.signers[2]);
    let admission = Admission::sign(n.config.network(), p.clone(), [7; 16], s.as_ref());
    let endorsements = n.endorse(&Endorsed::Add(admission.digest()), &[0, 1, 3, 4]);
    assert_eq!(
        Change::Add { admission, endorsements }.apply(&n.config).unwrap_err(),
        MembershipError::AlreadyMember { key: p.public_key, id: NodeId(2) }
    );
    // Remove member 2, then try to admit it again in the next epoch.
    let (members, retired) = n.remove(2, &[0, 1, 3, 4]).apply(&n.config).unwrap();
    assert_eq!(retired, Some(p.public_key));
    let start =
        EpochStart { after: Block::genesis(&n.config).id(), height: Height(3), timestamp_ms: 1 };
    let next = n.config.next_epoch(members, retired, start).unwrap();
    assert!(next.is_retired(&p.public_key));
    let admission = Admission::sign(next.network(), p.clone(), [8; 16], s.as_ref());
    let signers: Vec<&dyn Signer> = [0usize, 1, 3].iter().map(|&i| n.signers[i].as_ref()).collect();
    let endorsements = (0..3)
        .map(|i| {
            Endorsement::sign(
                &next,
                NodeId(i as u16),
                &Endorsed::Add(admission.digest()),
                signers[i],
            )
        })
        .collect();
    assert_eq!(
        Change::Add { admission, endorsements }.apply(&next).unwrap_err(),
        MembershipError::Retired { key: p.public_key }
    );
}

#[test]
fn removals_keep_the_floor_and_a_public_member() {
    let n = net(4);
    assert_eq!(
        n.remove(1, &[0, 1, 2]).apply(&n.config).unwrap_err(),
        MembershipError::BelowMinimum { left: 3, min: 4 }
    );
    // Five members, one of them public: removing it leaves nobody to lead.
    let five = net(5);
    let config = five.config.clone().with_public(&[false, false, true, false, false]).unwrap();
    let key = *config.public_key(NodeId(2)).unwrap();
    let reason = "r".to_string();
    let what = Endorsed::Remove { key, reason: reason.clone() };
    let endorsements = [0u16, 1, 3, 4]
        .iter()
        .map(|&i| Endorsement::sign(&config, NodeId(i), &what, five.signers[i as usize].as_ref()))
        .collect();
    let change = Change::Remove { key, reason, grounds: Grounds::Endorsed(endorsements) };
    assert_eq!(change.apply(&config).unwrap_err(), MembershipError::LastPublicMember);
}

#[test]
fn a_member_updates_its_own_addresses_and_no_one_else_can() {
    let n = net(4);
    let mut me = n.config.participants()[1].clone();
    me.address = "10.1.1.1:7100".into();
    let update = Update::sign(&n.config, me.clone(), [1; 16], n.signers[1].as_ref());
    let (members, _) = Change::Update(update).apply(&n.config).unwrap();
    assert_eq!(members[1], me);
    let forged = Update::sign(&n.config, me.clone(), [1; 16], n.signers[2].as_ref());
    assert_eq!(
        Change::Update(forged).apply(&n.config).unwrap_err(),
        MembershipError::BadUpdateSignature { key: me.public_key }
    );
}

/// A reconfiguration block, an empty child in the next round, and a QC for the child.
fn epoch_end(n: &Net, change: &Change) -> CommitProof {
    let g = QuorumCertificate::genesis(&n.config);
    let b1 = Block::new(
        n.config.epoch(),
        Round(1),
        Height(1),
        n.config.leader(Round(1)),
        g,
        10,
        vec![change.to_command()],
    );
    let qc = |b: &Block| {
        let votes: Vec<Vote> = (0..3)
            .map(|i| Vote::sign(&n.config, b, NodeId(i), n.signers[i as usize].as_ref()))
            .collect();
        QuorumCertificate::from_votes(&n.config, &votes.iter().collect::<Vec<_>>()).unwrap()
    };
    let b2 = Block::new(
        n.config.epoch(),
        Round(2),
        Height(2),
        n.config.leader(Round(2)),
        qc(&b1),
        11,
        vec![],
    );
    CommitProof { certificate: qc(&b2), blocks: vec![b1, b2] }
}

#[test]
fn an_epoch_end_proves_the_next_committee_and_refuses_broken_links() {
    let n = net(4);
    let end = epoch_end(&n, &n.add(94, &[0, 1, 2]));
    let next = end.next_epoch(&n.config).unwrap();
    assert_eq!((next.epoch(), next.total_nodes()), (Epoch(2), 5));
    assert_eq!(next.start().unwrap().after, end.blocks[0].id());
    assert_eq!(next.genesis_digest(), n.config.genesis_digest());
    // The committee survives its canonical encoding.
    assert_eq!(ConsensusConfig::from_bytes(&next.to_bytes()).unwrap(), next);
    let chain = EpochProof { ends: vec![end.clone()] };
    assert_eq!(chain.verify(&n.config).unwrap(), vec![next]);

    let mut broken = end.clone();
    broken.blocks.swap(0, 1);
    assert!(matches!(
        broken.next_epoch(&n.config),
        Err(ProofError::Link { .. } | ProofError::NotConsecutive)
    ));
    let mut wrong_qc = end.clone();
    wrong_qc.certificate = epoch_end(&n, &n.add(95, &[0, 1, 2])).certificate;
    assert_eq!(wrong_qc.next_epoch(&n.config).unwrap_err(), ProofError::CertificateTarget);
    let mut suffix = end.clone();
    let b1 = suffix.blocks[0].clone();
    let child = &suffix.blocks[1];
    suffix.blocks[1] = Block::new(
        child.epoch(),
        child.round(),
        child.height(),
        child.proposer(),
        child.justify().clone(),
        child.timestamp_ms(),
        vec![b"claim".to_vec()],
    );
    assert_eq!(suffix.blocks[0], b1);
    assert!(
        suffix.next_epoch(&n.config).is_err(),
        "a suffix with a payload, or its QC no longer fits"
    );
    let no_change = epoch_end(
        &n,
        &Change::Update(Update::sign(
            &n.config,
            n.config.participants()[0].clone(),
            [0; 16],
            n.signers[1].as_ref(),
        )),
    );
    assert!(matches!(no_change.next_epoch(&n.config), Err(ProofError::Change(_))));
    let mut other = end;
    other.certificate = QuorumCertificate::genesis(&n.config);
    assert!(other.next_epoch(&n.config).is_err());
}
