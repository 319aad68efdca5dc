//! M1, commands shared between members, and M2, recently committed commands refused. (What
//! `Core::submit` answers a client, and the `Commands` message it sends, are in `step`.)

use warpnet_core::{Recovery, Rejection};
use warpnet_types::{Epoch, Message, SharedCommands};

use crate::fixtures::*;

/// M1: commands a member shares reach the leader's proposal exactly as a local client's do;
/// duplicates (of the mempool or within the message) are dropped, and a received command is not
/// shared again. Client commands are valid in any epoch: a `Commands` message naming another
/// epoch (from a member catching up, or one leaving the committee) is taken as well.
#[test]
fn m1_shared_commands_enter_the_mempool_and_the_leaders_proposal() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let peer = c.ids().into_iter().find(|&i| i != l1).unwrap();
    let (mut core, _) = c.start(l1);
    let other_epoch = SharedCommands { epoch: Epoch(9), commands: vec![cmd("tx-1")] };
    let acts = core.handle(4, msg(peer, Message::Commands(other_epoch)));
    let b1 = c.block_at(1, 1, &c.genesis_qc(), 4, vec![cmd("tx-1")]);
    let vote = c.vote(&b1, l1);
    assert_eq!(
        acts,
        [Act::Write(1), Act::PersistBlock(b1), Act::PersistSafety(c.voted(vote, c.genesis_qc()))],
        "the leader proposes the shared command, and shares nothing itself"
    );
    assert_eq!(core.status().mempool, 1);

    let acts = core.handle(5, msg(peer, c.commands(&["tx-1", "tx-2", "tx-1"])));
    assert_eq!(acts, [], "a duplicate is dropped; tx-2 waits: the round's proposal is made");
    assert_eq!(core.status().mempool, 2);
}

/// M1 keeps the mempool's limits: a shared command over `command_bytes_max`, or one that finds
/// the mempool full, is refused with the rest of its message, and the sender is named.
#[test]
fn m1_shared_commands_over_the_limits_refuse_the_rest_of_the_message() {
    let c = Committee::new(4);
    let r = c.follower(&[1]);
    let peer = c.other_than(&[r])[0];
    let small = warpnet_core::CoreParams { mempool_max: 2, ..params() };
    let mut core = c.core_with(r, small, Recovery::genesis(&c.config));
    let _ = core.start(0);
    let big = "x".repeat(COMMAND_BYTES_MAX + 1);
    assert_eq!(
        core.handle(1, msg(peer, c.commands(&["a", &big, "b"]))),
        [Act::Rejected(
            Some(peer),
            Rejection::CommandTooLarge { bytes: COMMAND_BYTES_MAX + 1, max: COMMAND_BYTES_MAX }
        )]
    );
    assert_eq!(core.status().mempool, 1, "the command before it was taken, none after");
    assert_eq!(
        core.handle(2, msg(peer, c.commands(&["a", "b", "c", "d"]))),
        [Act::Rejected(Some(peer), Rejection::MempoolFull { capacity: 2 })]
    );
    assert_eq!(core.status().mempool, 2);
}

/// M2: a command committed in the last blocks (remembered across a restart through
/// `Recovery::recent_commands`) is not taken again: a late shared copy is dropped without a
/// word (members share in good faith, M1), a client's copy is answered `AlreadyCommitted`, and
/// neither reaches a proposal.
#[test]
fn m2_a_recently_committed_command_is_not_taken_again_after_a_restart() {
    let c = Committee::new(4);
    let l1 = c.leader(1);
    let peer = c.other_than(&[l1])[0];
    let recovery = Recovery { recent_commands: vec![cmd("done")], ..Recovery::genesis(&c.config) };
    let mut core = c.core(l1, recovery);
    let _ = core.start(0);
    assert_eq!(core.handle(1, msg(peer, c.commands(&["done"]))), []);
    let (verdicts, acts) = core.submit(2, vec![cmd("done")]);
    assert_eq!((verdicts, acts), (vec![Err(Rejection::AlreadyCommitted)], vec![]));
    assert_eq!(core.status().mempool, 0);
}

/// M2 in a running member: once a block commits, a shared copy of one of its commands arriving
/// late is dropped, so it can never be proposed and committed a second time.
#[test]
fn m2_a_late_shared_copy_of_a_committed_command_is_dropped() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2, 3]);
    let peer = c.other_than(&[r])[0];
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![cmd("x")]);
    let b2 = c.block(2, 2, &c.qc(&b1), vec![]);
    let b3 = c.block(3, 3, &c.qc(&b2), vec![]);
    for (t, b) in [(10, &b1), (20, &b2), (30, &b3)] {
        let _ = core.handle(t, c.propose(b, None));
    }
    assert_eq!(core.status().committed_block, b1.id());
    assert_eq!(core.handle(40, msg(peer, c.commands(&["x"]))), []);
    assert_eq!(core.status().mempool, 0);
    let (verdicts, _) = core.submit(41, vec![cmd("x")]);
    assert_eq!(verdicts, [Err(Rejection::AlreadyCommitted)]);
}
