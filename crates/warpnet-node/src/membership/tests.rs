//! The operators' side of committee changes, member by member: requests, dial-back, policies,
//! endorsements to a quorum, epochs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use warpnet_types::crypto::signer_from_seed;
use warpnet_types::membership::{Admission, Change, Endorsed};
use warpnet_types::{ConsensusConfig, MembershipGossip, Participant, SchemeId, Signer};

use super::*;

fn committee() -> (Arc<ConsensusConfig>, Vec<Arc<dyn Signer>>) {
    let (c, s) = ConsensusConfig::for_testing(4, SchemeId::Ed25519, 60).unwrap();
    (Arc::new(c), s.into_iter().map(Arc::from).collect())
}

fn request(config: &ConsensusConfig, seed: u64) -> Admission {
    let s = signer_from_seed(SchemeId::Ed25519, seed);
    let candidate = Participant {
        public_key: s.public_key(),
        address: format!("10.0.0.{seed}:7100"),
        api_address: String::new(),
        public: true,
    };
    Admission::sign(config.network(), candidate, [3; 16], s.as_ref())
}

fn endorsements(out: &Outputs) -> Vec<(Endorsed, Endorsement)> {
    out.gossip
        .iter()
        .filter_map(|m| match &m.gossip {
            MembershipGossip::Endorsement { what, endorsement } => {
                Some((what.clone(), *endorsement))
            }
            MembershipGossip::Admission(_) => None,
        })
        .collect()
}

#[test]
fn a_candidate_is_dialed_back_endorsed_by_the_operators_and_submitted_at_a_quorum() {
    let (config, signers) = committee();
    let mut nodes: Vec<Membership> = signers
        .iter()
        .map(|s| Membership::new(config.clone(), s.clone(), Policy::Manual))
        .collect();
    let req = request(&config, 70);
    let key = req.candidate.public_key;
    let out = nodes[0].on_admission(1, req.clone()).unwrap();
    assert_eq!(out.dial_back, vec![(key, req.candidate.address.clone())]);
    assert_eq!(out.gossip.len(), 1, "passed on to every member");
    assert_eq!(nodes[0].on_admission(2, req.clone()).unwrap(), Outputs::default(), "once");
    assert_eq!(nodes[0].endorse_candidate(&key), Err(Refusal::DialBackPending));
    for n in nodes.iter_mut().skip(1) {
        n.on_admission(3, req.clone()).unwrap();
    }
    // Manual: passing the dial-back endorses nothing by itself.
    let mut gossip = Vec::new();
    for n in nodes.iter_mut() {
        assert_eq!(n.on_dial_back(4, &key, Ok(())), Outputs::default());
    }
    for n in nodes.iter_mut().take(3) {
        let out = n.endorse_candidate(&key).unwrap();
        gossip.extend(endorsements(&out));
    }
    // Node 3 hears the three endorsements: at the third it holds a quorum and submits.
    let mut commands = Vec::new();
    for (what, e) in gossip {
        commands.extend(nodes[3].on_endorsement(5, 1, what, e).unwrap().commands);
    }
    assert_eq!(commands.len(), 1);
    let change = Change::from_command(&commands[0]).unwrap().unwrap();
    let (members, _) = change.apply(&config).unwrap();
    assert_eq!(members.len(), 5);
    let view = &nodes[3].pending()[0];
    assert_eq!((view.kind, view.endorsements, view.quorum), ("add", 3, 3));
}

#[test]
fn policies_allowlist_and_open_endorse_after_the_dial_back_only() {
    let (config, signers) = committee();
    let req = request(&config, 71);
    let key = req.candidate.public_key;
    let mut allow =
        Membership::new(config.clone(), signers[0].clone(), Policy::Allowlist([key].into()));
    allow.on_admission(1, req.clone()).unwrap();
    let failed = allow.on_dial_back(2, &key, Err("connection refused".into()));
    assert_eq!(failed, Outputs::default(), "a failed dial-back is never endorsed");
    assert!(matches!(allow.endorse_candidate(&key), Err(Refusal::DialBackFailed { .. })));
    assert_eq!(endorsements(&allow.on_dial_back(3, &key, Ok(()))).len(), 1);

    let mut open =
        Membership::new(config.clone(), signers[1].clone(), Policy::Open { interval_ms: 1_000 });
    open.on_admission(1, req).unwrap();
    assert_eq!(endorsements(&open.on_dial_back(2, &key, Ok(()))).len(), 1);
    let second = request(&config, 72);
    let key2 = second.candidate.public_key;
    open.on_admission(3, second).unwrap();
    assert_eq!(open.on_dial_back(4, &key2, Ok(())), Outputs::default(), "one per interval");
}

#[test]
fn bad_requests_and_endorsements_are_refused_with_a_reason() {
    let (config, signers) = committee();
    let mut m = Membership::new(config.clone(), signers[0].clone(), Policy::Manual);
    let mut forged = request(&config, 73);
    forged.candidate.public = false;
    assert_eq!(
        m.on_admission(1, forged),
        Err(Refusal::Invalid(MembershipError::BadProofOfPossession))
    );
    let member = Admission::sign(
        config.network(),
        config.participants()[2].clone(),
        [1; 16],
        signers[2].as_ref(),
    );
    assert!(matches!(
        m.on_admission(1, member),
        Err(Refusal::Invalid(MembershipError::AlreadyMember { .. }))
    ));
    let what = Endorsed::Add(request(&config, 74).digest());
    let e = Endorsement::sign(&config, NodeId(1), &what, signers[2].as_ref());
    assert!(matches!(
        m.on_endorsement(1, 1, what.clone(), e),
        Err(Refusal::Invalid(MembershipError::BadEndorsement { .. }))
    ));
    assert_eq!(m.on_endorsement(1, 7, what, e), Err(Refusal::WrongEpoch { got: 7, ours: 1 }));
    assert!(matches!(
        m.remove(1, signer_from_seed(SchemeId::Ed25519, 5).public_key(), "x".into()),
        Err(Refusal::Invalid(MembershipError::NotMember { .. }))
    ));
}

#[test]
fn removals_reach_a_quorum_and_a_new_epoch_re_endorses_what_was_approved() {
    let (config, signers) = committee();
    let mut a = Membership::new(config.clone(), signers[0].clone(), Policy::Manual);
    let victim = config.participants()[3].public_key;
    let out = a.remove(1, victim, "retired hardware".into()).unwrap();
    let mine = endorsements(&out);
    assert_eq!(mine.len(), 1);
    // A 4-member committee is at its floor: a quorum of endorsements submits nothing.
    let what = mine[0].0.clone();
    for i in 1..3 {
        let e = Endorsement::sign(&config, NodeId(i), &what, signers[i as usize].as_ref());
        assert!(a.on_endorsement(2, 1, what.clone(), e).unwrap().commands.is_empty());
    }
    // A new epoch (same members): old endorsements are dropped, ours is signed again.
    let next = Arc::new(
        config
            .next_epoch(
                config.participants().to_vec(),
                None,
                warpnet_types::EpochStart {
                    after: warpnet_types::Block::genesis(&config).id(),
                    height: warpnet_types::Height(9),
                    timestamp_ms: 1,
                },
            )
            .unwrap(),
    );
    let out = a.on_epoch(next.clone());
    assert_eq!(out.gossip.len(), 1);
    assert_eq!(out.gossip[0].epoch, next.epoch());
    assert_eq!(a.pending()[0].endorsements, 1);
}
