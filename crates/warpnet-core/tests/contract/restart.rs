//! S3, S4 and PM0 across restarts: a member rebuilt from what its writes made durable signs
//! nothing that conflicts with what it signed before, and resumes in the round it was in.

use warpnet_core::{Input, Rejection, SafetyData, SafetyError, Timer};
use warpnet_types::{Decode, Encode, Message, Round};

use crate::fixtures::*;

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
    let acts = core.handle(10, msg(l1, Message::Proposal(p1.clone())));
    let (seq, data) = the_persist(&acts);
    let sent = core.handle(11, persisted(seq));
    let [Act::Send(to, Message::Vote(first)), ..] = sent.as_slice() else {
        panic!("expected a vote, got {sent:#?}")
    };
    assert_eq!(*to, l2);
    assert_eq!(sent, c.vote_sends(first), "to the next leader and the recorder (H1)");
    let first = first.clone();
    drop(core); // crash

    // Restart with the block store and the safety data.
    let mut core = c.core(r, c.recovery(data.clone(), vec![b1.clone()]));
    assert_eq!(core.start(20), [Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]);
    let acts = core.handle(21, msg(l1, Message::Proposal(p1.clone())));
    assert_eq!(acts, c.vote_sends(&first), "no new signature, no write");
    let Act::Send(_, again) = &acts[0] else { unreachable!() };
    assert_eq!(again.to_frame(), Message::Vote(first.clone()).to_frame(), "byte-identical");

    // Restart again (the block store lost the block): same vote, after storing the block. The
    // vote need not wait for that write: the safety data it depends on is already durable.
    let mut core = c.core(r, c.recovery(data.clone(), vec![]));
    let _ = core.start(30);
    let mut want = vec![Act::Write(1), Act::PersistBlock(b1)];
    want.extend(c.vote_sends(&first));
    assert_eq!(core.handle(31, msg(l1, Message::Proposal(p1))), want);

    // A different block for round 1 (the first this incarnation sees, so not equivocation
    // evidence to it): refused by the safety rules, nothing sent, nothing signed.
    let mut core = c.core(r, c.recovery(data, vec![]));
    let _ = core.start(40);
    let other = c.block(1, 1, &c.genesis_qc(), vec![cmd("b")]);
    let acts = core.handle(41, msg(l1, Message::Proposal(c.proposal(other.clone(), None))));
    assert_eq!(
        acts,
        [
            Act::Write(1),
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
/// signed timeout when its round timer fires (its data is durable by definition), without a
/// new write.
#[test]
fn s3_restarted_member_resends_the_identical_timeout() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let acts = core.handle(BASE_MS, Input::Tick);
    let (seq, data) = the_persist(&acts);
    let sent = core.handle(BASE_MS + 1, persisted(seq));
    drop(core);

    let mut core = c.core(r, c.recovery(data, vec![]));
    assert_eq!(core.start(200), [Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]);
    let again = core.handle(200 + BASE_MS, Input::Tick);
    let mut expected = sent;
    expected.push(Act::SetTimer(Timer::Round(Round(1)), BASE_MS));
    assert_eq!(again, expected);
}

/// S3 through storage: what the runtime writes for a write's safety data is the encoded
/// safety data; decoding it must give the same data back (the highest TC included), or a
/// restarted member forgets what it signed.
#[test]
fn s3_persisted_safety_data_survives_encoding() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let acts = core.handle(10, msg(c.leader(1), Message::Proposal(c.proposal(b1, None))));
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
/// command arrives (it only shares it, M1), and it arms no propose timer that could.
#[test]
fn s4_restarted_leader_does_not_propose_twice_in_a_round() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let (mut core, _) = c.start(l1);
    let (_, acts) = core.submit(5, vec![cmd("tx-1")]);
    let (seq, data) = the_persist(&acts);
    let _ = core.handle(6, persisted(seq));
    drop(core);

    for blocks in [vec![], vec![acts_block(&acts)]] {
        let mut core = c.core(l1, c.recovery(data.clone(), blocks));
        assert_eq!(core.start(10), [Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]);
        assert_eq!(core.status().round, Round(1));
        let (verdicts, acts) = core.submit(11, vec![cmd("tx-2")]);
        assert_eq!(verdicts, [Ok(())]);
        assert_eq!(acts, [Act::Broadcast(c.commands(&["tx-2"]))]);
        // The old API fed a propose timer from outside; now the core keeps its timers, and a
        // leader that may not propose arms none.
        assert_eq!(core.timers(), [(Timer::Round(Round(1)), 10 + BASE_MS)]);
        assert_eq!(core.handle(10 + IDLE_MS, Input::Tick), []);
    }
}

/// PM0: a member restarted after voting in round r resumes in round r (not 1), so its timer
/// and its timeouts are for the round it was in; S2 lets it time out there when the round was
/// entered through a TC (the TC is persisted with the vote).
#[test]
fn pm0_restarted_member_resumes_in_the_round_it_voted_in() {
    let c = Committee::new(4);
    let tc1 = c.tc(1, &c.genesis_qc());
    let b2 = c.block(2, 1, &c.genesis_qc(), vec![]);
    // A member leading none of rounds 1, 2 (after round 1 failed, LR5) and 3 (after b2).
    let r = c.other_than(&[c.leader(1), b2.proposer(), c.leader_after(&b2, 3)])[0];
    let (mut core, _) = c.start(r);
    let acts = core.handle(
        10,
        msg(b2.proposer(), Message::Proposal(c.proposal(b2.clone(), Some(tc1.clone())))),
    );
    let (_, data) = the_persist(&acts);
    assert_eq!(data.high_tc.as_ref(), Some(&tc1));
    assert_eq!(data.last_voted_round, Round(2));
    drop(core);

    let mut core = c.core(r, c.recovery(data, vec![b2]));
    let acts = core.start(20);
    assert_eq!(core.status().round, Round(2));
    assert_eq!(acts, [Act::SetTimer(Timer::Round(Round(2)), BASE_MS)]);
    let acts = core.handle(20 + BASE_MS, Input::Tick);
    let (seq, data) = the_persist(&acts);
    assert_eq!(data.last_timeout.as_ref().map(|t| t.round), Some(Round(2)));
    let out = core.handle(21 + BASE_MS, persisted(seq));
    let [Act::Broadcast(Message::Timeout(t))] = out.as_slice() else { panic!("{out:#?}") };
    assert_eq!((t.timeout.round, t.last_round_tc.as_ref()), (Round(2), Some(&tc1)));
}
