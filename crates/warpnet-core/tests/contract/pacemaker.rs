//! The pacemaker: PM1 round timers, PM3 backoff, PM4 expiry, PM5 TCs, PM6 joining a timeout,
//! PM7 unreachable leaders. (PM0, the round after a restart, is in `restart` and `review`.)

use warpnet_core::{Input, SafetyData, Timer};
use warpnet_types::{Message, Round, TimeoutMsg};

use crate::fixtures::*;

/// PM1: a member starts in round 1 with the base round timeout; the round-1 leader also arms
/// its idle-proposal timer (it has nothing to propose yet).
#[test]
fn pm1_start_arms_the_round_timer_and_the_idle_leader_its_propose_timer() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let (_, acts) = c.start(l1);
    assert_eq!(
        acts,
        [
            Act::SetTimer(Timer::Round(Round(1)), BASE_MS),
            Act::SetTimer(Timer::Propose(Round(1)), IDLE_MS)
        ]
    );
    let r = c.follower(&[1]);
    let (core, acts) = c.start(r);
    assert_eq!(acts, [Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]);
    assert_eq!(core.status().round, Round(1));
}

/// PM3: the round timeout keeps the base for the first two consecutive rounds entered through
/// a TC (a crashed member fails its round and the one before it), then doubles with each
/// further one, and goes back to the base once a round is entered through a QC. The timer
/// re-armed on expiry uses the current backoff (PM4). S1c: blocks justified by a TC are voted
/// for.
#[test]
fn pm3_timeout_backs_off_after_two_tcs_and_resets_after_a_qc() {
    let c = Committee::new(7);
    let r = c.follower(&[2, 3, 4, 5, 6]);
    let (mut core, _) = c.start(r);
    let g = c.genesis_qc();

    // Rounds 2, 3 and 4, each entered through a TC for the round before.
    let mut last = None;
    for (round, expected) in [(2, BASE_MS), (3, BASE_MS), (4, 2 * BASE_MS)] {
        let b = c.block(round, 1, &g, vec![]);
        let acts = core.handle(
            10 * round,
            msg(b.proposer(), Message::Proposal(c.proposal(b.clone(), Some(c.tc(round - 1, &g))))),
        );
        assert_eq!(timers(&acts), [(Timer::Round(Round(round)), expected)], "round {round}");
        let (seq, _) = the_persist(&acts);
        let sent = core.handle(10 * round + 1, persisted(seq));
        // The vote goes to the next round's leader after this block (LR5: the leaders of the
        // failed rounds it blames and the members silent at its TC are skipped), or is
        // counted here if that is this member (then only the recorder gets it, H1).
        let collector = c.leader_after(&b, round + 1);
        let vote = c.vote(&b, r);
        assert!(
            sent.iter().any(|a| matches!(a, Act::Send(_, Message::Vote(v)) if *v == vote)),
            "S1c vote in round {round}: {sent:?}"
        );
        let sent_to_collector = sent.contains(&Act::Send(collector, Message::Vote(vote)));
        assert_eq!(sent_to_collector, collector != r, "round {round}: {sent:?}");
        last = Some(b);
    }
    assert_eq!(core.status().consecutive_timeouts, 3);
    // PM4: expiry re-arms with the current backoff.
    let at = core.deadline(Timer::Round(Round(4))).unwrap();
    assert_eq!(at, 40 + 2 * BASE_MS);
    let acts = core.handle(at, Input::Tick);
    assert_eq!(timers(&acts), [(Timer::Round(Round(4)), 2 * BASE_MS)]);

    // Round 5, entered through a QC for round 4: back to the base.
    let b5 = c.block(5, 2, &c.qc(&last.unwrap()), vec![]);
    let acts = core.handle(600, msg(c.leader(5), Message::Proposal(c.proposal(b5, None))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(5)), BASE_MS)]);
    assert_eq!(core.status().consecutive_timeouts, 0);
    let acts = core.handle(600 + BASE_MS, Input::Tick);
    assert_eq!(timers(&acts), [(Timer::Round(Round(5)), BASE_MS)]);
}

/// PM6: f + 1 timeouts for the current round make a member time out too (it cannot be the
/// only one waiting); f do not. PM5: with its own, the quorum forms a TC, which moves it to
/// the next round (with the base timeout: PM3 backs off from the third failure).
#[test]
fn pm6_f_plus_1_timeouts_make_a_member_time_out_and_pm5_a_quorum_forms_a_tc() {
    let c = Committee::new(4);
    let r = c.follower_through_a_timeout();
    let (mut core, _) = c.start(r);
    let g = c.genesis_qc();
    let [a, b, _] = c.other_than(&[r])[..] else { unreachable!() };
    assert_eq!(c.config.faulty_nodes(), 1);

    assert_eq!(core.handle(10, msg(a, c.timeout_msg(1, &g, a))), [], "f timeouts: wait");
    let acts = core.handle(11, msg(b, c.timeout_msg(1, &g, b)));
    let mine = c.timeout(1, &g, r);
    let (seq, data) = the_persist(&acts);
    assert_eq!(data, c.timed_out(mine.clone()));
    assert_eq!(
        acts,
        [Act::Write(seq), Act::PersistSafety(data.clone())],
        "joins, but sends nothing before persisting"
    );

    let acts = core.handle(12, persisted(seq));
    // The TC changes the safety data too: the same step writes it, so a restart resumes in
    // round 2 (PM0).
    let (next, with_tc) = the_persist(&acts);
    let tc = with_tc.high_tc.clone().expect("the TC is written");
    assert_eq!((tc.round(), tc.validate_signatures(&c.config)), (Round(1), Ok(())));
    assert_eq!(with_tc, SafetyData { high_tc: Some(tc), ..data });
    assert_eq!(
        acts,
        [
            Act::Write(next),
            Act::PersistSafety(with_tc),
            Act::Broadcast(Message::Timeout(TimeoutMsg { timeout: mine, last_round_tc: None })),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
        ]
    );
    let s = core.status();
    assert_eq!((s.round, s.high_tc_round, s.consecutive_timeouts), (Round(2), Some(Round(1)), 1));
}

/// PM7: a round whose leader, or whose vote collector (the next round's leader), is unreachable
/// cannot produce a QC, so its timer is short: re-armed at once when that member goes away
/// mid-round, and armed short when such a round is entered. Other members going away, repeated
/// reports, members coming back, or a member flapping (down, up, down) never push the deadline
/// back; the next round with both reachable gets the normal timeout again.
#[test]
fn pm7_an_unreachable_leader_or_vote_collector_shortens_the_round() {
    let c = Committee::new(7);
    let me = c.follower(&[1, 2, 3, 4]);
    let (mut core, acts) = c.start(me);
    assert_eq!(timers(&acts), [(Timer::Round(Round(1)), BASE_MS)]);
    let down = |peer| Input::Reachability { peer: key(peer), reachable: false };
    let up = |peer| Input::Reachability { peer: key(peer), reachable: true };
    // Neither round 1's leader nor its collector: nothing changes.
    let bystander =
        c.other_than(&[me, c.leader(1), c.leader(2)]).into_iter().next().expect("a bystander");
    assert_eq!(core.handle(1, down(bystander)), []);
    // Round 1's vote collector goes away: round 1 is hopeless.
    let acts = core.handle(2, down(c.leader(2)));
    assert_eq!(timers(&acts), [(Timer::Round(Round(1)), UNREACHABLE_MS)]);
    assert_eq!(core.handle(3, down(c.leader(2))), [], "a repeated report changes nothing");
    assert_eq!(core.handle(4, up(c.leader(2))), [], "coming back changes nothing now");
    assert_eq!(core.handle(5, up(bystander)), []);
    assert_eq!(
        core.handle(5, down(c.leader(2))),
        [],
        "a flapping member never pushes the deadline (2 + 7 ms) back"
    );
    assert_eq!(core.handle(5, up(c.leader(2))), []);
    assert_eq!(core.handle(6, down(me)), [], "never ourselves");

    // Round 2 entered through a QC while round 3's leader (round 2's collector) is away: short.
    let _ = core.handle(7, down(c.leader(3)));
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let b2 = c.block(2, 2, &c.qc(&b1), vec![]);
    let _ = core.handle(8, msg(c.leader(1), Message::Proposal(c.proposal(b1, None))));
    let acts = core.handle(9, msg(c.leader(2), Message::Proposal(c.proposal(b2.clone(), None))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(2)), UNREACHABLE_MS)]);
    // It came back; round 3 (leader and collector reachable) has the normal timeout.
    let _ = core.handle(10, up(c.leader(3)));
    let b3 = c.block(3, 3, &c.qc(&b2), vec![]);
    let acts = core.handle(11, msg(c.leader(3), Message::Proposal(c.proposal(b3, None))));
    assert_eq!(timers(&acts), [(Timer::Round(Round(3)), BASE_MS)]);
}

/// PM7 + PM4: once a round PM7 cut short has expired, the timeout is re-broadcast at the PM3
/// pace, not every `unreachable_leader_timeout_ms` (a round that cannot gather a TC must not
/// flood).
#[test]
fn pm7_an_expired_short_round_re_arms_at_the_normal_pace() {
    let c = Committee::new(4);
    let me = c.follower(&[1, 2]);
    let (mut core, _) = c.start(me);
    let acts = core.handle(1, Input::Reachability { peer: key(c.leader(1)), reachable: false });
    assert_eq!(timers(&acts), [(Timer::Round(Round(1)), UNREACHABLE_MS)]);
    assert_eq!(core.handle(UNREACHABLE_MS, Input::Tick), [], "due at 1 + 7 ms, not before");
    let acts = core.handle(1 + UNREACHABLE_MS, Input::Tick);
    assert_eq!(timers(&acts), [(Timer::Round(Round(1)), BASE_MS)]);
}
