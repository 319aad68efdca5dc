//! Findings of the core's safety review, each pinned by a test: P2 with the QC a TC carries,
//! the exact-QC shortcut, P6 catch-up from far-future timeouts, replayed timeouts, the timeout
//! collector's memory, E1 bookkeeping only after certificates hold, E1 evidence once, PM0's
//! restart round and the committed certificate on restart, and Y1 asking the certificate's
//! source.

use warpnet_core::{Recovery, Rejection, SafetyData, Timer};
use warpnet_types::{
    Height, Message, NodeId, QuorumCertificate, Round, SyncRequest, SyncResponse, Timeout,
    TimeoutCertificate, TimeoutMsg, ValidationError,
};

use crate::fixtures::*;

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
        let acts = core.handle(10 + i as u64, msg(v, Message::Vote(c.vote(&b, v))));
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
        let step = core.step(t, msg(p.proposer(), Message::Proposal(c.proposal(p.clone(), None))));
        if let Some(write) = step.write {
            let _ = core.handle(t + 1, persisted(write.seq));
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
    let acts = core.handle(30, msg(x, message));
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
    let acts = core.handle(10, msg(x, message.clone()));
    assert_eq!(core.status().round, Round(far), "{acts:?}");
    // The same message again teaches nothing and costs nothing.
    assert_eq!(core.handle(11, msg(x, message)), []);
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
        assert_eq!(core.handle(t, msg(x, m.clone())), []);
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
    let c = Committee::new(7);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    // Round 3's leader after b1 with round 2 failed (LR5), which never saw round 1's QC (nor
    // proposed b1).
    let l3 = c.leader_after(&b1, 3);
    assert_ne!(l3, b1.proposer());
    let (mut core, _) = c.start(l3);
    let qc1 = c.qc(&b1);
    // Round 2 timed out; its TC's highest entry is round 1, and the TC carries qc1.
    let timeouts: Vec<Timeout> =
        c.ids().into_iter().take(c.q()).map(|id| c.timeout(2, &qc1, id)).collect();
    let refs: Vec<&Timeout> = timeouts.iter().collect();
    let tc2 = TimeoutCertificate::from_timeouts(&c.config, &refs).unwrap();
    assert_eq!(tc2.high_qc(), &qc1);
    let x = c.other_than(&[l3])[0];
    let (verdicts, _) = core.submit(5, vec![cmd("p")]);
    assert_eq!(verdicts, [Ok(())]);
    let message = Message::Timeout(TimeoutMsg {
        timeout: c.timeout(3, &qc1, x),
        last_round_tc: Some(tc2.clone()),
    });
    let acts = core.handle(10, msg(x, message));
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
    let mut acts = core.handle(20, msg(x, Message::SyncResponse(response)));
    let (seq, _) = the_persist(&acts);
    acts.extend(core.handle(21, persisted(seq)));
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

/// The timeout collector's memory: timeouts are kept for our round and the next two only, so
/// a peer cannot grow the collector with rounds far ahead. A quorum of timeouts three rounds
/// ahead (teaching no certificate) forms nothing; the same quorum two rounds ahead forms a TC.
#[test]
fn timeouts_beyond_the_collection_window_are_not_kept() {
    let c = Committee::new(4);
    let r = c.ids()[0];
    let (mut core, _) = c.start(r);
    let g = c.genesis_qc();
    let others = c.other_than(&[r]);
    for (t, &x) in (10..).zip(&others) {
        assert_eq!(core.handle(t, msg(x, c.timeout_msg(4, &g, x))), []);
    }
    assert_eq!(core.status().round, Round(1), "no TC from timeouts it does not keep");
    for (t, &x) in (20..).zip(&others) {
        let _ = core.handle(t, msg(x, c.timeout_msg(3, &g, x)));
    }
    let s = core.status();
    assert_eq!((s.round, s.high_tc_round), (Round(4), Some(Round(3))));
}

/// E1 bookkeeping only after the certificates hold: a leader's proposal carrying a forged QC is
/// refused and not remembered (so such proposals cannot grow the map of seen proposals), and
/// the leader's valid proposal for that round is then voted on, not taken for equivocation.
#[test]
fn e1_a_proposal_whose_certificate_fails_is_not_remembered() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2, 3]);
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let _ = core.handle(10, c.propose(&b1, None));
    let forged = QuorumCertificate::from_parts(
        c.config.epoch(),
        Round(1),
        b1.id(),
        qc1.voters().clone(),
        vec![warpnet_types::Signature([9; 64]); qc1.signatures().len()],
    );
    let bad = c.block(2, 2, &forged, vec![cmd("bad")]);
    assert_eq!(
        core.handle(20, c.propose(&bad, None)),
        [Act::Rejected(
            Some(c.leader(2)),
            Rejection::Invalid(ValidationError::BadSignature {
                kind: "quorum certificate",
                signer: qc1.voters().iter().next().unwrap()
            })
        )]
    );
    let b2 = c.block(2, 2, &qc1, vec![]);
    let acts = core.handle(21, c.propose(&b2, None));
    assert_eq!(the_persist(&acts).1.last_vote, Some(c.vote(&b2, r)));
    assert!(core.evidence().is_empty());
}

/// PM0 with the committed block's certificate: after a crash between applying a commit and the
/// next safety write, the stored high QC can be older than the committed block's QC. The
/// restarted replica counts that QC as observed (its lock is never below what it committed),
/// resumes after it, and writes it at start.
#[test]
fn pm0_restart_observes_the_committed_blocks_certificate() {
    let c = Committee::new(4);
    let r = c.follower(&[2]);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let recovery = Recovery {
        committed: b1.clone(),
        committed_certificate: qc1.clone(),
        ..Recovery::genesis(&c.config)
    };
    let mut core = c.core(r, recovery);
    assert_eq!((core.status().round, core.high_qc()), (Round(2), &qc1));
    assert_eq!(
        core.start(0),
        [
            Act::Write(1),
            Act::PersistSafety(SafetyData { high_qc: qc1, ..SafetyData::initial(&c.config) }),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
        ]
    );
    assert_eq!(core.status().committed_block, b1.id());
}

/// Y1 asks the member a certificate came with first (it holds the block), not merely some
/// signer of the certificate.
#[test]
fn y1_sync_asks_the_member_the_certificate_came_with() {
    let c = Committee::new(4);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let voters: Vec<NodeId> = qc1.voters().iter().collect();
    let x = c.other_than(&voters)[0];
    let r = c.other_than(&[x])[0];
    let (mut core, _) = c.start(r);
    let acts = core.handle(10, msg(x, c.timeout_msg(2, &qc1, x)));
    let request = SyncRequest {
        epoch: c.config.epoch(),
        target: b1.id(),
        above: Height(0),
        max_blocks: SYNC_BLOCKS_MAX,
    };
    assert_eq!(
        acts,
        [
            Act::Write(1),
            Act::PersistSafety(SafetyData { high_qc: qc1, ..SafetyData::initial(&c.config) }),
            Act::Send(x, Message::SyncRequest(request)),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
        ]
    );
}
