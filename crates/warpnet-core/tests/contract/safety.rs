//! S1, S2, S4 and persist-before-release: what a member signs, and that nothing it signs
//! leaves before the write carrying its safety data is durable.

use warpnet_core::{Input, Rejection, SafetyError, Timer};
use warpnet_types::{Message, Round, TimeoutMsg};

use crate::fixtures::*;

/// S1b + persist-before-release: a vote for a valid round-1 proposal is signed, the block and
/// the safety data go out in one write, and the vote leaves only once that write is reported
/// durable, addressed to the leader of round 2.
#[test]
fn s1b_vote_is_released_only_after_its_safety_data_is_persisted() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);

    let b1 = c.block(1, 1, &c.genesis_qc(), vec![cmd("a")]);
    let acts = core.handle(10, msg(l1, Message::Proposal(c.proposal(b1.clone(), None))));
    let vote = c.vote(&b1, r);
    let (seq, data) = the_persist(&acts);
    assert_eq!(data, c.voted(vote.clone(), c.genesis_qc()));
    assert_eq!(acts, [Act::Write(seq), Act::PersistBlock(b1.clone()), Act::PersistSafety(data)]);
    assert!(!sends_anything(&acts), "no vote before its safety data is durable");

    // An earlier write being durable is not enough.
    assert_eq!(core.handle(11, persisted(seq - 1)), []);
    // Once durable, the vote goes out, to the next leader only.
    assert_eq!(core.handle(12, persisted(seq)), c.vote_sends(&vote));
    // And only once.
    assert_eq!(core.handle(13, persisted(seq)), []);
}

/// S2 + PM4 + persist-before-release: the round timer makes the member sign a timeout carrying
/// its highest QC and re-arm the timer; the timeout is broadcast only after its safety data is
/// durable. Firing again re-sends the same timeout (S3) without a new write. A tick before the
/// re-armed deadline does nothing.
#[test]
fn s2_timeout_is_broadcast_only_after_its_safety_data_is_persisted() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);

    let acts = core.handle(BASE_MS, Input::Tick);
    let timeout = c.timeout(1, &c.genesis_qc(), r);
    let expected = c.timed_out(timeout.clone());
    let (seq, _) = the_persist(&acts);
    assert_eq!(
        acts,
        [
            Act::Write(seq),
            Act::PersistSafety(expected),
            Act::SetTimer(Timer::Round(Round(1)), BASE_MS)
        ]
    );
    let out = Message::Timeout(TimeoutMsg { timeout, last_round_tc: None });
    assert_eq!(core.handle(BASE_MS + 1, persisted(seq)), [Act::Broadcast(out.clone())]);

    // PM4/S3: fires again in the same round: the very same timeout, nothing new to persist.
    assert_eq!(
        core.handle(2 * BASE_MS, Input::Tick),
        [Act::Broadcast(out), Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]
    );
    // Before the re-armed deadline, a tick does nothing (the old API's "stale timer": a timer
    // of another round can no longer reach the core, which keeps its timers itself).
    assert_eq!(core.handle(2 * BASE_MS + 1, Input::Tick), []);

    // S2: having timed out in round 1, it never votes in round 1.
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let acts = core
        .handle(2 * BASE_MS + 2, msg(c.leader(1), Message::Proposal(c.proposal(b1.clone(), None))));
    assert!(!sends_anything(&acts));
    assert_eq!(
        acts,
        [
            Act::Write(seq + 1),
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
/// neither before the safety data recording that vote (hence the round) is durable. The
/// client command is shared at once (M1): sharing it depends on no safety data.
#[test]
fn s4_leaders_proposal_is_held_until_its_safety_data_is_persisted() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let (mut core, _) = c.start(l1);

    let (verdicts, acts) = core.submit(5, vec![cmd("tx-1")]);
    assert_eq!(verdicts, [Ok(())]);
    let b1 = c.block_at(1, 1, &c.genesis_qc(), 5, vec![cmd("tx-1")]);
    let vote = c.vote(&b1, l1);
    let (seq, _) = the_persist(&acts);
    assert_eq!(
        acts,
        [
            Act::Write(seq),
            Act::PersistBlock(b1.clone()),
            Act::PersistSafety(c.voted(vote.clone(), c.genesis_qc())),
            Act::Broadcast(c.commands(&["tx-1"])),
        ]
    );
    assert!(!sends_anything(&acts), "no proposal before the leader's safety data is durable");

    let mut want = vec![Act::Broadcast(Message::Proposal(c.proposal(b1, None)))];
    want.extend(c.vote_sends(&vote));
    assert_eq!(core.handle(6, persisted(seq)), want);
}
