//! Q1, batched quorum verification, and E1, equivocation evidence.

use warpnet_core::{Equivocation, Rejection, Statement, Timer};
use warpnet_types::{Message, NodeId, Proposal, Round, Vote};

use crate::fixtures::*;

/// Q1: votes are verified in one batch when they reach a quorum; a bad signature in the batch is
/// found and dropped (no QC from it), and the next valid vote completes the quorum.
#[test]
fn q1_bad_vote_signature_in_a_quorum_is_dropped_and_the_quorum_completes_later() {
    let c = Committee::new(4);
    let (l1, l2) = (c.leader(1), c.leader(2));
    let (mut core, _) = c.start(l2);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let acts = core.handle(10, msg(l1, Message::Proposal(c.proposal(b1.clone(), None))));
    let (seq, _) = the_persist(&acts);
    let _ = core.handle(11, persisted(seq));
    let [a, bad, d] = c.other_than(&[l2])[..] else { unreachable!() };
    assert_eq!(core.handle(12, msg(a, Message::Vote(c.vote(&b1, a)))), []);
    let forged = Vote { signature: c.vote(&b1, a).signature, ..c.vote(&b1, bad) };
    assert_eq!(
        core.handle(13, msg(bad, Message::Vote(forged))),
        [Act::Rejected(Some(bad), Rejection::BadSignatures(vec![bad]))]
    );
    assert_eq!(core.status().round, Round(1), "no QC from a bad signature");
    let acts = core.handle(14, msg(d, Message::Vote(c.vote(&b1, d))));
    // The QC moves it to round 2 (which it leads, with nothing to propose yet: PM1, P5) and is
    // written with the step.
    assert_eq!(
        timers(&acts),
        [(Timer::Round(Round(2)), BASE_MS), (Timer::Propose(Round(2)), IDLE_MS)]
    );
    let (_, data) = the_persist(&acts);
    assert_eq!(&data.high_qc, core.high_qc());
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
    let l1 = c.leader(1);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let pa = c.proposal(c.block(1, 1, &c.genesis_qc(), vec![cmd("a")]), None);
    let pb = c.proposal(c.block(1, 1, &c.genesis_qc(), vec![cmd("b")]), None);

    let acts = core.handle(10, msg(l1, Message::Proposal(pa.clone())));
    let (seq, _) = the_persist(&acts);
    // A forged second proposal: no evidence, nothing at all.
    let x = c.other_than(&[l1])[0];
    let forged = Proposal::sign(&c.config, pb.block.clone(), None, c.signer(x));
    assert_eq!(core.handle(11, msg(l1, Message::Proposal(forged))), []);
    assert!(core.evidence().is_empty());

    let acts = core.handle(12, msg(l1, Message::Proposal(pb.clone())));
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
    assert_eq!(core.handle(13, persisted(seq)), c.vote_sends(&c.vote(&pa.block, r)));
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
    assert_eq!(core.handle(10, msg(v, Message::Vote(va.clone()))), []);
    let ev = Equivocation {
        signer: v,
        epoch: c.config.epoch(),
        round: Round(1),
        first: Statement::Vote { block_id: ba.id(), signature: va.signature },
        second: Statement::Vote { block_id: bb.id(), signature: vb.signature },
    };
    assert!(ev.verify(&c.config));
    assert_eq!(
        core.handle(11, msg(v, Message::Vote(vb))),
        [
            Act::Evidence(ev),
            Act::Rejected(Some(v), Rejection::Equivocation { signer: v, round: Round(1) })
        ]
    );
}
