//! P1–P7: what a proposal, vote or timeout must satisfy before it is processed, and P5,
//! when a leader proposes; also the transport's sender and the epoch, checked first.

use warpnet_core::{Input, Rejection, SafetyData, Timer};
use warpnet_types::{
    Block, Epoch, Height, Message, Proposal, QuorumCertificate, Round, SyncRequest, SyncResponse,
    ValidationError,
};

use crate::fixtures::*;
use warpnet_types::EpochRequest;

/// P1: a proposal signed by a member that does not lead its round is refused.
#[test]
fn p1_proposal_from_a_non_leader_is_rejected_not_leader() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let x = c.other_than(&[l1])[0];
    let r = c.other_than(&[l1, x])[0];
    let (mut core, _) = c.start(r);
    let b = c.block_by(x, 1, 1, &c.genesis_qc(), vec![]);
    assert_eq!(
        core.handle(10, msg(x, Message::Proposal(c.proposal(b, None)))),
        [Act::Rejected(Some(x), Rejection::NotLeader { round: Round(1), proposer: x, leader: l1 })]
    );
}

/// P2: a proposal whose round follows neither its QC nor a TC is refused before any vote.
#[test]
fn p2_unjustified_round_is_rejected() {
    let c = Committee::new(4);
    let l3 = c.leader(3);
    let r = c.other_than(&[l3])[0];
    let (mut core, _) = c.start(r);
    let b = c.block(3, 1, &c.genesis_qc(), vec![]);
    assert_eq!(
        core.handle(10, msg(l3, Message::Proposal(c.proposal(b, None)))),
        [Act::Rejected(
            Some(l3),
            Rejection::Invalid(ValidationError::NoJustification {
                round: Round(3),
                qc_round: Round(0)
            })
        )]
    );
}

/// P3: a proposal whose signature is not the proposer's is refused.
#[test]
fn p3_badly_signed_proposal_is_rejected() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let x = c.other_than(&[l1])[0];
    let r = c.other_than(&[l1, x])[0];
    let (mut core, _) = c.start(r);
    let b = c.block(1, 1, &c.genesis_qc(), vec![]);
    let forged = Proposal::sign(&c.config, b, None, c.signer(x));
    let acts = core.handle(10, msg(l1, Message::Proposal(forged)));
    assert_eq!(
        acts,
        [Act::Rejected(
            Some(l1),
            Rejection::Invalid(ValidationError::BadSignature { kind: "proposal", signer: l1 })
        )]
    );
}

/// P4: a proposal over the configured payload limits (count or bytes) is refused: not stored,
/// not voted for. One exactly at the limits is accepted.
#[test]
fn p4_payload_over_limits_is_rejected_payload_too_large() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let r = c.follower(&[1, 2]);
    let too_many: Vec<Vec<u8>> = (0..=PAYLOAD_COUNT_MAX).map(|k| vec![k as u8]).collect();
    let too_big: Vec<Vec<u8>> = (0..3).map(|k| vec![k as u8; 30]).collect();
    for (payload, count, bytes) in
        [(too_many, PAYLOAD_COUNT_MAX + 1, PAYLOAD_COUNT_MAX + 1), (too_big, 3, 90)]
    {
        let (mut core, _) = c.start(r);
        let b = c.block(1, 1, &c.genesis_qc(), payload);
        assert_eq!(
            core.handle(10, msg(l1, Message::Proposal(c.proposal(b, None)))),
            [Act::Rejected(
                Some(l1),
                Rejection::Invalid(ValidationError::PayloadTooLarge {
                    count,
                    bytes,
                    count_max: PAYLOAD_COUNT_MAX,
                    bytes_max: PAYLOAD_BYTES_MAX,
                })
            )]
        );
    }
    let (mut core, _) = c.start(r);
    let at_limit: Vec<Vec<u8>> = (0..PAYLOAD_COUNT_MAX)
        .map(|k| vec![k as u8; PAYLOAD_BYTES_MAX / PAYLOAD_COUNT_MAX])
        .collect();
    let b = c.block(1, 1, &c.genesis_qc(), at_limit);
    let acts = core.handle(10, msg(l1, Message::Proposal(c.proposal(b.clone(), None))));
    let (seq, _) = the_persist(&acts);
    let vote = c.vote(&b, r);
    assert_eq!(
        acts,
        [
            Act::Write(seq),
            Act::PersistBlock(b),
            Act::PersistSafety(c.voted(vote.clone(), c.genesis_qc()))
        ]
    );
    assert_eq!(core.handle(11, persisted(seq)), c.vote_sends(&vote));
}

/// P5: the next leader proposes as soon as its votes form a QC, when it has something to
/// propose (a payload arrived first): the new block extends the QC at once, and is broadcast
/// with the leader's vote only after the safety data is durable (S4).
#[test]
fn p5_qc_at_the_next_leader_makes_it_propose_at_once_when_it_has_payload() {
    let c = Committee::new(4);
    let (l1, l2) = (c.leader(1), c.leader(2));
    let (mut core, _) = c.start(l2);
    let (verdicts, acts) = core.submit(1, vec![cmd("tx")]);
    assert_eq!(verdicts, [Ok(())]);
    assert_eq!(acts, [Act::Broadcast(c.commands(&["tx"]))], "not its round yet: only shared (M1)");

    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let acts = core.handle(10, msg(l1, Message::Proposal(c.proposal(b1.clone(), None))));
    let (seq, _) = the_persist(&acts);
    let own = c.vote(&b1, l2);
    assert_eq!(
        core.handle(11, persisted(seq)),
        c.vote_sends(&own),
        "its own vote is counted, not sent to itself (only to the recorder, H1)"
    );

    let voters = c.other_than(&[l2]);
    let (a, b) = (voters[0], voters[1]);
    assert_eq!(core.handle(12, msg(a, Message::Vote(c.vote(&b1, a))))[..], []);
    let acts = core.handle(20, msg(b, Message::Vote(c.vote(&b1, b))));

    let votes = [c.vote(&b1, l2), c.vote(&b1, a), c.vote(&b1, b)];
    let qc1 = QuorumCertificate::from_votes(&c.config, &votes.iter().collect::<Vec<_>>()).unwrap();
    let b2 =
        Block::new(c.config.epoch(), Round(2), Height(2), l2, qc1.clone(), 20, vec![cmd("tx")]);
    let my_vote = c.vote(&b2, l2);
    let (seq, data) = the_persist(&acts);
    assert_eq!(data, c.voted(my_vote.clone(), qc1));
    // S4: its vote for b1 (round 1) raised its proposal floor to round 2, which it leads, and
    // that write is durable: the proposal leaves at once, without waiting for a write. Its own
    // vote for b2 waits for the write that records it.
    assert_eq!(
        acts,
        [
            Act::Write(seq),
            Act::PersistBlock(b2.clone()),
            Act::PersistSafety(data),
            Act::Broadcast(Message::Proposal(c.proposal(b2, None))),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
        ]
    );
    assert_eq!(core.handle(21, persisted(seq)), c.vote_sends(&my_vote));
}

/// P5 without payload: a QC makes an idle next leader arm its propose timer instead; when it
/// fires, it proposes an empty block.
#[test]
fn p5_idle_next_leader_waits_for_its_propose_timer() {
    let c = Committee::new(4);
    let l2 = c.leader(2);
    let (mut core, _) = c.start(l2);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    // The QC arrives inside a timeout of round 2 (so no vote counting is involved).
    let signer = c.other_than(&[l2])[0];
    let acts = core.handle(20, msg(signer, c.timeout_msg(2, &qc1, signer)));
    let (seq, _) = the_persist(&acts);
    assert_eq!(
        acts,
        [
            Act::Write(seq),
            Act::PersistSafety(SafetyData {
                high_qc: qc1.clone(),
                ..SafetyData::initial(&c.config)
            }),
            Act::Send(
                qc1.voters().iter().find(|&id| id != l2).unwrap(),
                Message::SyncRequest(SyncRequest {
                    epoch: c.config.epoch(),
                    target: b1.id(),
                    above: Height(0),
                    max_blocks: SYNC_BLOCKS_MAX,
                })
            ),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
        ],
        "it lacks the block, so it fetches it (Y1) and cannot propose yet"
    );
    // Y3: the block arrives; now it could propose, but has nothing to: it arms the timer.
    let acts = core.handle(
        21,
        msg(
            signer,
            Message::SyncResponse(SyncResponse {
                epoch: c.config.epoch(),
                blocks: vec![b1.clone()],
            }),
        ),
    );
    assert_eq!(
        acts,
        [
            Act::Write(seq + 1),
            Act::PersistBlock(b1),
            Act::SetTimer(Timer::Propose(Round(2)), IDLE_MS)
        ]
    );
    let at = 21 + IDLE_MS;
    assert_eq!(core.handle(at - 1, Input::Tick), [], "not before its deadline");
    let acts = core.handle(at, Input::Tick);
    let b2 = c.block_at(2, 2, &qc1, at, vec![]);
    let (seq, data) = the_persist(&acts);
    assert_eq!(data, c.voted(c.vote(&b2, l2), qc1));
    assert_eq!(acts, [Act::Write(seq), Act::PersistBlock(b2.clone()), Act::PersistSafety(data)]);
    let mut want = vec![Act::Broadcast(Message::Proposal(c.proposal(b2.clone(), None)))];
    want.extend(c.vote_sends(&c.vote(&b2, l2)));
    assert_eq!(core.handle(at + 1, persisted(seq)), want);
}

/// P6: votes and timeouts further ahead than `future_rounds_max` are dropped unverified; one
/// exactly at the limit is not refused.
#[test]
fn p6_vote_beyond_future_rounds_max_is_rejected_far_future() {
    let c = Committee::new(4);
    let r = c.ids()[0];
    let v = c.ids()[1];
    let (mut core, _) = c.start(r);
    let far = 1 + FUTURE_ROUNDS_MAX + 1;
    let b = c.block(far, 1, &c.genesis_qc(), vec![]);
    assert_eq!(
        core.handle(10, msg(v, Message::Vote(c.vote(&b, v)))),
        [Act::Rejected(Some(v), Rejection::FarFuture { round: Round(far), current: Round(1) })]
    );
    assert_eq!(
        core.handle(11, msg(v, c.timeout_msg(far, &c.genesis_qc(), v))),
        [Act::Rejected(Some(v), Rejection::FarFuture { round: Round(far), current: Round(1) })]
    );
    let at_limit = c.block(far - 1, 1, &c.genesis_qc(), vec![]);
    assert_eq!(core.handle(12, msg(v, Message::Vote(c.vote(&at_limit, v)))), []);
}

/// The transport authenticates senders: a vote, timeout or proposal signed as one member but
/// arriving from another is refused.
#[test]
fn wrong_sender_is_rejected() {
    let c = Committee::new(4);
    let [r, v, w, _] = c.ids()[..] else { unreachable!() };
    let (mut core, _) = c.start(r);
    let b = c.block(1, 1, &c.genesis_qc(), vec![]);
    let wrong = Rejection::WrongSender { claimed: v, from: w };
    assert_eq!(
        core.handle(10, msg(w, Message::Vote(c.vote(&b, v)))),
        [Act::Rejected(Some(w), wrong.clone())]
    );
    assert_eq!(
        core.handle(11, msg(w, c.timeout_msg(1, &c.genesis_qc(), v))),
        [Act::Rejected(Some(w), wrong)]
    );
    let l1 = c.leader(1);
    let relay = c.other_than(&[l1, r])[0];
    assert_eq!(
        core.handle(12, msg(relay, Message::Proposal(c.proposal(b, None)))),
        [Act::Rejected(Some(relay), Rejection::WrongSender { claimed: l1, from: relay })]
    );
}

/// EP4: messages of another epoch are refused before anything else. From a later epoch, the
/// member is asked for the proof of the epochs since ours (once per peer and round); from an
/// earlier one, the runtime is asked to send that peer the proof of the epochs since its own.
#[test]
fn wrong_epoch_is_rejected() {
    let c = Committee::new(4);
    let r = c.follower(&[1]);
    let v = c.other_than(&[r])[0];
    let (mut core, _) = c.start(r);
    let b = c.block(1, 1, &c.genesis_qc(), vec![]);
    let mut vote = c.vote(&b, v);
    vote.epoch = Epoch(2);
    let ask = Message::EpochRequest(EpochRequest { epoch: Epoch(1), from: Epoch(1) });
    let refused = Rejection::WrongEpoch { got: Epoch(2), expected: Epoch(1) };
    assert_eq!(
        core.handle(10, msg(v, Message::Vote(vote))),
        [Act::Send(v, ask), Act::Rejected(Some(v), refused.clone())]
    );
    let other = Block::new(Epoch(2), Round(1), Height(1), c.leader(1), c.genesis_qc(), 0, vec![]);
    let from_leader = core.handle(11, msg(c.leader(1), Message::Proposal(c.proposal(other, None))));
    let expected: Vec<Act> = if c.leader(1) == v {
        vec![Act::Rejected(Some(v), refused)] // asked already this round
    } else {
        let ask = Message::EpochRequest(EpochRequest { epoch: Epoch(1), from: Epoch(1) });
        vec![Act::Send(c.leader(1), ask), Act::Rejected(Some(c.leader(1)), refused)]
    };
    assert_eq!(from_leader, expected);
    let mut old = c.vote(&b, v);
    old.epoch = Epoch(0);
    assert_eq!(
        core.handle(12, msg(v, Message::Vote(old))),
        [
            Act::ServeEpochs(v, Epoch(0)),
            Act::Rejected(Some(v), Rejection::WrongEpoch { got: Epoch(0), expected: Epoch(1) })
        ]
    );
}

/// P7: a proposal stamped more than `clock_skew_max_ms` ahead of the member's clock is refused
/// (a Byzantine leader cannot drag block time into the future), one exactly at the limit is
/// voted for, and a block stamped before its parent is refused by the tree.
#[test]
fn p7_timestamp_too_far_ahead_or_before_the_parent_is_rejected() {
    let c = Committee::new(4);
    let (l1, l2) = (c.leader(1), c.leader(2));
    let r = c.follower(&[1, 2]);
    let skew = params().clock_skew_max_ms;
    let now = 1_000;
    let (mut core, _) = c.start(r);
    let ahead = c.block_at(1, 1, &c.genesis_qc(), now + skew + 1, vec![]);
    assert_eq!(
        core.handle(now, c.propose(&ahead, None)),
        [Act::Rejected(
            Some(l1),
            Rejection::FutureTimestamp { timestamp_ms: now + skew + 1, now_ms: now }
        )]
    );
    let b1 = c.block_at(1, 1, &c.genesis_qc(), now + skew, vec![]);
    let acts = core.handle(now, c.propose(&b1, None));
    let vote = c.vote(&b1, r);
    assert_eq!(the_persist(&acts).1, c.voted(vote.clone(), c.genesis_qc()), "at the limit");

    let qc1 = c.qc(&b1);
    let early = c.block_at(2, 2, &qc1, now + skew - 1, vec![]);
    let acts = core.handle(now + 1, c.propose(&early, None));
    assert_eq!(
        acts,
        [
            Act::Write(2),
            Act::PersistSafety(SafetyData { high_qc: qc1, ..c.voted(vote, c.genesis_qc()) }),
            Act::Rejected(
                Some(l2),
                Rejection::Tree(warpnet_core::tree::TreeError::Timestamp {
                    timestamp_ms: now + skew - 1,
                    parent_ms: now + skew
                })
            ),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
        ]
    );
}
