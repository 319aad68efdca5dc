//! The step contract itself: one numbered write per step carrying its blocks, commits and
//! safety data together; `Persisted { seq }` releasing only what writes up to `seq` sealed;
//! timers kept in the core and fired by `Tick`; `deadline_ms`; and `Core::submit`'s verdicts.
//! (The fixtures also check after every step of every test that `Core::validate` holds, that
//! `deadline_ms` is the earliest of `Core::timers` and that writes are numbered without a gap.)

use warpnet_core::{Committed, CoreParams, Input, Recovery, Rejection, SafetyData, Timer, Write};
use warpnet_types::{Message, Round, TimeoutMsg};

use crate::fixtures::*;

/// Writes are numbered 1, 2, 3, ... in the order they are handed out; a step that has nothing
/// to persist hands out no write and takes no number. A restarted member numbers its writes
/// from 1 again (the numbers belong to one incarnation).
#[test]
fn writes_are_numbered_one_two_three_and_only_steps_that_write_take_a_number() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2, 3]);
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let b2 = c.block(2, 2, &c.qc(&b1), vec![]);
    let seq = |step: warpnet_core::Step| step.write.map(|w| w.seq);

    assert_eq!(seq(core.step(10, c.propose(&b1, None))), Some(1));
    assert_eq!(seq(core.step(11, persisted(1))), None, "releasing a vote writes nothing");
    assert_eq!(seq(core.step(12, c.propose(&b1, None))), None, "a duplicate writes nothing");
    assert_eq!(seq(core.step(13, c.propose(&b2, None))), Some(2));
    let at = core.deadline(Timer::Round(Round(2))).unwrap();
    assert_eq!(seq(core.step(at, Input::Tick)), Some(3), "the timeout's safety data");
    assert_eq!(core.status().writes_in_flight, 2, "writes 2 and 3 are not durable yet");
    assert_eq!(seq(core.step(at + 1, persisted(3))), None);
    assert_eq!(core.status().writes_in_flight, 0);

    let safety = c.voted(c.vote(&b2, r), c.qc(&b1));
    let mut core = c.core(r, c.recovery(safety, vec![b1, b2.clone()]));
    let _ = core.start(500);
    let b3 = c.block(3, 3, &c.qc(&b2), vec![]);
    assert_eq!(seq(core.step(501, c.propose(&b3, None))), Some(1), "a new incarnation");
}

/// `Persisted { seq }` makes durable only the writes up to `seq`: a vote sealed behind write 2
/// stays held after `Persisted { 1 }` (which releases write 1's vote alone) and leaves after
/// `Persisted { 2 }`. One acknowledgement covering both releases both, in order.
#[test]
fn persisted_releases_only_what_the_writes_up_to_seq_sealed() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2, 3]);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let b2 = c.block(2, 2, &c.qc(&b1), vec![]);
    let (v1, v2) = (c.vote(&b1, r), c.vote(&b2, r));

    let (mut core, _) = c.start(r);
    assert_eq!(the_persist(&core.handle(10, c.propose(&b1, None))).0, 1);
    assert_eq!(the_persist(&core.handle(20, c.propose(&b2, None))).0, 2);
    assert_eq!(core.handle(21, persisted(1)), c.vote_sends(&v1));
    assert_eq!(core.handle(22, persisted(1)), [], "write 2 is not durable yet");
    assert_eq!(core.handle(23, persisted(2)), c.vote_sends(&v2));
    assert_eq!(core.handle(24, persisted(2)), []);

    let (mut core, _) = c.start(r);
    let _ = core.handle(10, c.propose(&b1, None));
    let _ = core.handle(20, c.propose(&b2, None));
    let mut both = c.vote_sends(&v1);
    both.extend(c.vote_sends(&v2));
    assert_eq!(core.handle(21, persisted(2)), both);
}

/// A write without safety data (blocks only) makes nothing sealed durable: a vote sealed
/// behind a later write waits for that write.
#[test]
fn persisted_for_a_write_without_safety_data_releases_nothing() {
    let c = Committee::new(4);
    let r = c.follower(&[2, 3]);
    let x = c.other_than(&[r])[0];
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let b2 = c.block(2, 2, &qc1, vec![]);
    let (mut core, _) = c.start(r);
    // A timeout teaches it round 1's QC (write 1); the block follows by sync (write 2, the
    // block alone); then the round-2 proposal (write 3, its block and the vote's safety data).
    assert_eq!(the_persist(&core.handle(10, msg(x, c.timeout_msg(2, &qc1, x)))).0, 1);
    let _ = core.handle(11, persisted(1));
    let sync = warpnet_types::SyncResponse { epoch: c.config.epoch(), blocks: vec![b1.clone()] };
    let step = core.step(12, msg(x, Message::SyncResponse(sync)));
    let expected = Write { seq: 2, blocks: vec![b1], ..Write::default() };
    assert_eq!(step.write, Some(expected));
    let acts = core.handle(13, c.propose(&b2, None));
    assert_eq!(the_persist(&acts).0, 3);
    assert_eq!(core.handle(14, persisted(2)), [], "the vote's write is not durable yet");
    let vote = c.vote(&b2, r);
    assert_eq!(core.handle(15, persisted(3)), c.vote_sends(&vote));
}

/// One step, one write: the blocks a step stores, the blocks it commits (C1) and the safety
/// data it changed travel together, so a crash keeps all of them or none.
#[test]
fn a_steps_write_carries_its_blocks_commits_and_safety_data_together() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2, 3]);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![cmd("a")]);
    let qc1 = c.qc(&b1);
    let b2 = c.block(2, 2, &qc1, vec![]);
    let qc2 = c.qc(&b2);
    let b3 = c.block(3, 3, &qc2, vec![]);

    let (mut core, _) = c.start(r);
    let _ = core.handle(10, c.propose(&b1, None));
    let _ = core.handle(20, c.propose(&b2, None));
    let step = core.step(30, c.propose(&b3, None));
    let expected = Write {
        seq: 3,
        blocks: vec![b3.clone()],
        commits: vec![Committed { block: b1.clone(), certificate: qc1.clone() }],
        safety: Some(c.voted(c.vote(&b3, r), qc2.clone())),
        epoch: None,
    };
    assert_eq!(step.write, Some(expected));

    // A chain fetched and committed in one step: the fetched blocks, the commit among them and
    // the vote on the proposal that waited for them, in one write.
    let (mut core, _) = c.start(r);
    let acts = core.handle(30, c.propose(&b3, None));
    let (seq, data) = the_persist(&acts);
    assert_eq!(
        (seq, data),
        (1, SafetyData { high_qc: qc2.clone(), ..SafetyData::initial(&c.config) })
    );
    let chain = warpnet_types::SyncResponse {
        epoch: c.config.epoch(),
        blocks: vec![b1.clone(), b2.clone()],
    };
    let step = core.step(31, msg(c.leader(3), Message::SyncResponse(chain)));
    let expected = Write {
        seq: 2,
        blocks: vec![b1.clone(), b2, b3.clone()],
        commits: vec![Committed { block: b1, certificate: qc1 }],
        safety: Some(c.voted(c.vote(&b3, r), qc2)),
        epoch: None,
    };
    assert_eq!(step.write, Some(expected));
}

/// The core keeps its timers: a `Tick` before the earliest deadline does nothing; at it, the
/// due timer fires once and is re-armed from the tick's time, so it does not fire again in the
/// same tick; a late tick fires it once (no catching up on missed periods).
#[test]
fn tick_fires_only_due_timers_once_and_a_re_armed_timer_waits_for_its_new_deadline() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    assert_eq!(core.timers(), [(Timer::Round(Round(1)), BASE_MS)]);

    let step = core.step(BASE_MS - 1, Input::Tick);
    assert!(step.write.is_none() && step.messages.is_empty() && step.rejected.is_empty());
    assert_eq!(step.deadline_ms, Some(BASE_MS), "nothing due: the deadline stands");

    let timeout = c.timeout(1, &c.genesis_qc(), r);
    let step = core.step(BASE_MS, Input::Tick);
    let write = step.write.expect("the timeout's safety data");
    assert_eq!(write.safety, Some(c.timed_out(timeout.clone())));
    assert_eq!(step.deadline_ms, Some(2 * BASE_MS), "re-armed from the tick's time");
    assert_eq!(core.handle(BASE_MS, Input::Tick), [], "the re-armed timer is not due yet");
    let out = Message::Timeout(TimeoutMsg { timeout, last_round_tc: None });
    assert_eq!(core.handle(BASE_MS, persisted(write.seq)), [Act::Broadcast(out.clone())]);

    // Three and a half periods late: one expiry (the same timeout, S3), re-armed from now.
    let late = 2 * BASE_MS + 3 * BASE_MS + BASE_MS / 2;
    assert_eq!(
        core.handle(late, Input::Tick),
        [Act::Broadcast(out), Act::SetTimer(Timer::Round(Round(1)), BASE_MS)]
    );
    assert_eq!(core.status().round_timeouts, 2);
}

/// Due timers fire one at a time, earliest first: a leader woken after both its propose timer
/// and its round timer are due first proposes (the earlier deadline), then times out. Fired
/// the other way round, the timeout would forbid the proposal (S4).
#[test]
fn tick_fires_due_timers_earliest_first() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let (mut core, _) = c.start(l1);
    assert_eq!(
        core.timers(),
        [(Timer::Round(Round(1)), BASE_MS), (Timer::Propose(Round(1)), IDLE_MS)]
    );
    let acts = core.handle(BASE_MS, Input::Tick);
    let b1 = c.block_at(1, 1, &c.genesis_qc(), BASE_MS, vec![]);
    let vote = c.vote(&b1, l1);
    let timeout = c.timeout(1, &c.genesis_qc(), l1);
    let data =
        SafetyData { last_timeout: Some(timeout.clone()), ..c.voted(vote.clone(), c.genesis_qc()) };
    assert_eq!(
        acts,
        [
            Act::Write(1),
            Act::PersistBlock(b1.clone()),
            Act::PersistSafety(data),
            Act::SetTimer(Timer::Round(Round(1)), BASE_MS),
        ]
    );
    let mut want = vec![Act::Broadcast(Message::Proposal(c.proposal(b1, None)))];
    want.extend(c.vote_sends(&vote));
    want.push(Act::Broadcast(Message::Timeout(TimeoutMsg { timeout, last_round_tc: None })));
    assert_eq!(core.handle(BASE_MS + 1, persisted(1)), want);
}

/// `deadline_ms` is always the earliest armed timer: the idle leader's propose timer first,
/// then, once that fired, its round timer; `None` never while a round runs (PM1).
#[test]
fn deadline_ms_is_the_earliest_armed_timer() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let mut core = c.core(l1, Recovery::genesis(&c.config));
    let step = core.start_step(0);
    assert_eq!(step.deadline_ms, Some(IDLE_MS));
    let step = core.step(IDLE_MS, Input::Tick);
    assert!(step.write.is_some(), "the idle leader proposed an empty block");
    assert_eq!(core.timers(), [(Timer::Round(Round(1)), BASE_MS)]);
    assert_eq!(step.deadline_ms, Some(BASE_MS));
    let step = core.step(IDLE_MS + 1, persisted(1));
    assert_eq!(step.deadline_ms, Some(BASE_MS));
}

/// `submit` answers each command in order: taken, or refused with why (over the size limit,
/// already pending, the mempool full, committed recently: M2), a refused one changing nothing.
/// Only the accepted ones are shared (M1), in one `Commands` broadcast; nothing accepted,
/// nothing sent.
#[test]
fn submit_returns_a_verdict_per_command_and_shares_only_the_accepted_ones() {
    let c = Committee::new(4);
    let r = c.follower(&[1]);
    let params = CoreParams { mempool_max: 3, ..params() };
    let recovery = Recovery { recent_commands: vec![cmd("old")], ..Recovery::genesis(&c.config) };
    let mut core = c.core_with(r, params, recovery);
    let _ = core.start(0);
    let big = "x".repeat(COMMAND_BYTES_MAX + 1);
    let (verdicts, acts) =
        core.submit(1, ["a", &big, "a", "old", "b", "c", "d"].iter().map(|s| cmd(s)).collect());
    assert_eq!(
        verdicts,
        [
            Ok(()),
            Err(Rejection::CommandTooLarge {
                bytes: COMMAND_BYTES_MAX + 1,
                max: COMMAND_BYTES_MAX
            }),
            Err(Rejection::DuplicateCommand),
            Err(Rejection::AlreadyCommitted),
            Ok(()),
            Ok(()),
            Err(Rejection::MempoolFull { capacity: 3 }),
        ]
    );
    assert_eq!(acts, [Act::Broadcast(c.commands(&["a", "b", "c"]))]);
    assert_eq!(core.status().mempool, 3);

    let (verdicts, acts) = core.submit(2, vec![cmd("a"), cmd("e")]);
    assert_eq!(
        verdicts,
        [Err(Rejection::DuplicateCommand), Err(Rejection::MempoolFull { capacity: 3 })]
    );
    assert_eq!(acts, [], "nothing accepted, nothing shared");
}
