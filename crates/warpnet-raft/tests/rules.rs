//! Contract tests, one or more per rule (RF1-RF12), on a small synchronous cluster.

mod common;

use common::{member, Cluster};
use warpnet_raft::{
    Action, Applied, Health, Input, RaftError, RaftMessage, ReadId, Recovery, Role,
};
use warpnet_types::NodeId;

fn elected(c: &mut Cluster) -> usize {
    c.run(40);
    c.leader().expect("a leader within 40 ticks")
}

#[test]
fn rf1_only_the_public_member_is_ever_elected() {
    let mut c = Cluster::new(&[false, true, false]);
    for _ in 0..10 {
        let l = elected(&mut c);
        assert_eq!(l, 1);
        for i in [0, 2] {
            assert_ne!(c.nodes[i].engine.status().role, Role::Candidate);
            assert!(!c.nodes[i].engine.status().may_campaign);
        }
    }
}

#[test]
fn rf1_private_members_never_campaign_and_rf11_say_why() {
    let mut c = Cluster::new(&[false, true, false]);
    assert_eq!(elected(&mut c), 1);
    c.nodes[1].up = false;
    c.run(200);
    for i in [0, 2] {
        let s = c.nodes[i].engine.status();
        assert_eq!(s.role, Role::Follower, "node {i} must never campaign");
        assert_eq!(s.leader, None);
        assert_eq!(s.health, Health::NoPublicVoterReachable, "node {i}: {s:?}");
    }
    // Nothing a private member sends asks for votes.
    let kinds: Vec<_> =
        c.nodes[0].sent.iter().chain(&c.nodes[2].sent).map(RaftMessage::kind).collect();
    assert!(!kinds.iter().any(|k| *k == "vote" || *k == "pre_vote"), "{kinds:?}");
    // The public member comes back: it is elected again and the others say so.
    c.nodes[1].up = true;
    assert_eq!(elected(&mut c), 1);
    assert_eq!(c.nodes[0].engine.status().health, Health::Following(NodeId(1)));
}

#[test]
fn rf1_leadership_moves_only_to_a_public_member() {
    let mut c = Cluster::new(&[true, true, false]);
    let l = elected(&mut c);
    assert_eq!(
        c.input(l, Input::TransferLeadership(NodeId(2))),
        Err(RaftError::NotPublic { id: NodeId(2) })
    );
    let other = 1 - l;
    c.input(l, Input::TransferLeadership(NodeId(other as u16))).expect("a public voter");
    c.deliver();
    c.run(3);
    assert_eq!(c.leader(), Some(other));
}

#[test]
fn rf2_a_follower_acknowledges_an_append_only_once_it_is_durable() {
    let mut c = Cluster::new(&[true, false, false]);
    assert_eq!(elected(&mut c), 0);
    c.nodes[1].auto_persist = false;
    c.nodes[1].sent.clear();
    c.input(0, Input::Propose(b"cmd".to_vec())).expect("leader proposes");
    c.deliver();
    let acks =
        |c: &Cluster| c.nodes[1].sent.iter().filter(|m| m.kind() == "append_response").count();
    assert_eq!(acks(&c), 0, "acknowledged before durable");
    assert!(!c.nodes[1].unpersisted.is_empty());
    c.flush(1);
    assert!(acks(&c) >= 1);
}

/// RF2b: once a majority has an entry, the leader's commit reaches the followers (which apply
/// it) before the leader's own write of the commit index is durable; that write vouches for
/// nothing. Its write of the entry itself still holds its appends to the private member back
/// (RF2, RF12), so nothing commits before it.
#[test]
fn rf2b_a_leaders_commit_leaves_before_its_commit_index_is_durable() {
    let mut c = Cluster::new(&[true, true, false]);
    let l = elected(&mut c);
    c.run(2);
    c.nodes[l].auto_persist = false;
    c.input(l, Input::Propose(b"cmd".to_vec())).expect("leader proposes");
    c.deliver();
    for i in (0..3).filter(|&i| i != l) {
        assert!(c.commands(i).is_empty(), "node {i}: committed before the leader's write");
    }
    c.flush(l);
    c.deliver();
    assert!(!c.nodes[l].unpersisted.is_empty(), "the leader's commit index is not durable yet");
    for i in (0..3).filter(|&i| i != l) {
        assert_eq!(c.commands(i), vec![b"cmd".to_vec()], "follower {i} applied the commit");
    }
}

/// Appends from `from` to `to` that carry entries.
fn appends_with_entries(c: &Cluster, from: usize, to: usize) -> usize {
    c.nodes[from]
        .sent
        .iter()
        .filter(|m| m.kind() == "append" && m.to() == Some(NodeId(to as u16)))
        .filter(|m| m.entry_count() > 0)
        .count()
}

/// RF12: with every voter public, the leader's appends leave before its own write: the
/// followers' writes make the entry committed, and they apply it, while the leader's write is
/// still in flight (the leader itself applies it only once it is durable here, RF3).
#[test]
fn rf12_a_leader_replicates_to_public_voters_while_it_writes() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    c.run(2);
    c.nodes[l].auto_persist = false;
    c.input(l, Input::Propose(b"cmd".to_vec())).expect("leader proposes");
    c.deliver();
    assert!(!c.nodes[l].unpersisted.is_empty(), "the leader's write is still in flight");
    for i in (0..3).filter(|&i| i != l) {
        assert_eq!(c.commands(i), vec![b"cmd".to_vec()], "follower {i} applied the entry");
    }
    assert!(c.commands(l).is_empty(), "the leader applies only what it holds durably");
    c.flush(l);
    assert_eq!(c.commands(l), vec![b"cmd".to_vec()]);
}

/// RF12: a private member gets an entry only once its leader holds it durably (a public
/// follower gets it at once), so a leader's crash cannot leave entries only private members
/// hold.
#[test]
fn rf12_a_leaders_appends_to_a_private_member_wait_for_its_write() {
    let mut c = Cluster::new(&[true, true, false]);
    let l = elected(&mut c);
    c.run(2);
    let public = 1 - l;
    let (to_private, to_public) =
        (appends_with_entries(&c, l, 2), appends_with_entries(&c, l, public));
    c.nodes[l].auto_persist = false;
    c.input(l, Input::Propose(b"cmd".to_vec())).expect("leader proposes");
    c.deliver();
    assert_eq!(appends_with_entries(&c, l, 2), to_private, "sent to the private member early");
    assert!(appends_with_entries(&c, l, public) > to_public, "the public follower gets it at once");
    c.flush(l);
    c.deliver();
    assert!(appends_with_entries(&c, l, 2) > to_private);
    assert_eq!(c.commands(2), vec![b"cmd".to_vec()]);
}

/// RF12: a follower forwards a proposal at once, even while a write of its own is in flight
/// (the proposal vouches for nothing), and the command commits.
#[test]
fn rf12_a_follower_forwards_a_proposal_while_it_writes() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    c.run(2);
    let f = (l + 1) % 3;
    c.nodes[f].auto_persist = false;
    c.input(l, Input::Propose(b"first".to_vec())).expect("leader proposes");
    c.deliver();
    assert!(!c.nodes[f].unpersisted.is_empty(), "the follower's write is in flight");
    let before = c.nodes[f].sent.len();
    c.input(f, Input::Propose(b"second".to_vec())).expect("the follower forwards");
    assert!(
        c.nodes[f].sent[before..].iter().any(|m| m.kind() == "propose"),
        "the proposal waited for the follower's write"
    );
    c.deliver();
    c.flush(f);
    c.run(2);
    assert_eq!(c.commands(f), vec![b"first".to_vec(), b"second".to_vec()]);
}

#[test]
fn rf3_every_replica_applies_the_same_commands_in_order_once() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    for i in 0..20u8 {
        c.input(l, Input::Propose(vec![b'c', i])).expect("leader proposes");
        if i % 3 == 0 {
            c.run(1);
        }
    }
    c.run(5);
    let want: Vec<Vec<u8>> = (0..20u8).map(|i| vec![b'c', i]).collect();
    for i in 0..3 {
        assert_eq!(c.commands(i), want, "node {i}");
        let idx: Vec<u64> = c.nodes[i].applied.iter().map(Applied::index).collect();
        assert!(idx.windows(2).all(|w| w[1] == w[0] + 1), "node {i}: {idx:?}");
    }
}

#[test]
fn rf4_membership_changes_go_one_at_a_time_through_the_leader() {
    let mut c = Cluster::new(&[true, true, false]);
    let l = elected(&mut c);
    c.run(3);
    let f = (l + 1) % 3;
    assert!(matches!(
        c.input(
            f,
            Input::AddVoter { member: member(3, false), description: vec![], expected_index: None }
        ),
        Err(RaftError::NotLeader { .. })
    ));
    let idx = c.nodes[l].engine.status().membership_index;
    assert_eq!(
        c.input(
            l,
            Input::AddVoter {
                member: member(3, false),
                description: vec![],
                expected_index: Some(idx + 5)
            }
        ),
        Err(RaftError::MembershipChanged { expected: idx + 5, current: idx })
    );
    c.input(
        l,
        Input::AddVoter {
            member: member(3, false),
            description: vec![],
            expected_index: Some(idx),
        },
    )
    .expect("first change");
    assert!(matches!(
        c.input(l, Input::RemoveServer { id: NodeId(2), expected_index: None }),
        Err(RaftError::MembershipChangePending { .. })
    ));
    c.add_joining(3);
    c.run(10);
    for i in 0..4 {
        let s = c.nodes[i].engine.status();
        assert_eq!(s.membership.len(), 4, "node {i}: {s:?}");
    }
    // The new member caught up from the leader's snapshot (the genesis one at least).
    assert!(matches!(c.nodes[3].applied.first(), Some(Applied::Snapshot { .. })));
    c.input(l, Input::RemoveServer { id: NodeId(2), expected_index: None }).expect("second change");
    c.run(5);
    assert!(!c.nodes[l].engine.status().membership.contains(NodeId(2)));
}

#[test]
fn rf5_the_last_public_voter_stays() {
    let mut c = Cluster::new(&[true, false, false]);
    let l = elected(&mut c);
    assert_eq!(l, 0);
    c.run(3);
    for id in [1u16, 2] {
        c.input(0, Input::RemoveServer { id: NodeId(id), expected_index: None }).expect("removal");
        c.run(3);
    }
    let s = c.nodes[0].engine.status();
    assert_eq!(s.membership.voters(), &[member(0, true)]);
    // The only public voter leads, so it is never removed (RF6), and RF5 holds.
    assert_eq!(
        c.input(0, Input::RemoveServer { id: NodeId(0), expected_index: None }),
        Err(RaftError::RemoveLeader { id: NodeId(0) })
    );
    c.input(0, Input::Propose(b"alone".to_vec())).expect("a single voter commits alone");
    c.run(1);
    assert_eq!(c.commands(0), vec![b"alone".to_vec()]);
}

#[test]
fn rf6_a_leader_hands_over_before_it_is_removed() {
    let mut c = Cluster::new(&[true, true, false]);
    let l = elected(&mut c);
    c.run(3);
    let me = NodeId(l as u16);
    assert_eq!(
        c.input(l, Input::RemoveServer { id: me, expected_index: None }),
        Err(RaftError::RemoveLeader { id: me })
    );
    let other = 1 - l;
    c.input(l, Input::TransferLeadership(NodeId(other as u16))).expect("transfer");
    c.run(5);
    assert_eq!(c.leader(), Some(other));
    c.input(other, Input::RemoveServer { id: me, expected_index: None }).expect("removal");
    c.run(5);
    assert!(!c.nodes[2].engine.status().membership.contains(me));
    c.input(other, Input::Propose(b"after".to_vec())).expect("proposal");
    c.run(3);
    assert_eq!(c.commands(2), vec![b"after".to_vec()]);
    // The removed member, still running, never campaigns (it is no voter any more).
    c.run(50);
    assert_eq!(c.leader(), Some(other));
}

#[test]
fn rf7_a_lagging_voter_catches_up_from_a_compacted_leader() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    let lagging = (l + 1) % 3;
    c.nodes[lagging].up = false;
    for i in 0..10u8 {
        c.input(l, Input::Propose(vec![i + 1])).expect("proposal");
    }
    c.run(3);
    let applied = c.nodes[l].engine.status().applied;
    for i in 0..3 {
        if c.nodes[i].up {
            c.input(i, Input::Compact { index: applied, data: b"state".to_vec() })
                .expect("compaction");
        }
    }
    assert_eq!(c.nodes[l].engine.status().snapshot_index, applied);
    assert!(matches!(
        c.input(l, Input::Compact { index: applied, data: vec![] }),
        Err(RaftError::BadCompaction { .. })
    ));
    c.nodes[lagging].up = true;
    c.run(10);
    let got = c.nodes[lagging].applied.iter().find_map(|a| match a {
        Applied::Snapshot { index, data, .. } if *index == applied => Some(data.to_vec()),
        _ => None,
    });
    assert_eq!(got, Some(b"state".to_vec()));
    assert_eq!(c.nodes[lagging].engine.status().applied, c.nodes[l].engine.status().applied);
}

#[test]
fn rf8_a_read_index_covers_every_commit_before_it() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    c.input(l, Input::Propose(b"x".to_vec())).expect("proposal");
    c.run(2);
    let committed = c.nodes[l].engine.status().commit;
    let f = (l + 1) % 3;
    c.input(f, Input::Read(ReadId(1))).expect("read");
    c.deliver();
    let (id, index) = c.nodes[f].reads[0];
    assert_eq!(id, ReadId(1));
    assert!(index.expect("read ready") >= committed);
}

#[test]
fn rf8_a_read_without_a_leader_is_refused_or_fails() {
    let mut c = Cluster::new(&[true, false, false]);
    assert_eq!(c.input(1, Input::Read(ReadId(1))), Err(RaftError::NoLeader));
    let l = elected(&mut c);
    assert_eq!(l, 0);
    c.nodes[0].up = false;
    c.input(1, Input::Read(ReadId(2))).expect("a leader is still believed in");
    c.run(30);
    assert!(c.nodes[1].reads.contains(&(ReadId(2), None)), "{:?}", c.nodes[1].reads);
}

#[test]
fn rf9_the_same_seed_gives_the_same_elections() {
    let run = || {
        let mut c = Cluster::new(&[true, true, true, true, true]);
        c.run(60);
        c.nodes.iter().map(|n| (n.engine.status().term, n.engine.status().role)).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn rf10_messages_from_the_wrong_member_or_of_local_kinds_are_refused() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    c.nodes[l].sent.clear();
    c.input(l, Input::Propose(b"x".to_vec())).expect("proposal");
    let m = c.nodes[l].sent.first().cloned().expect("an append");
    let to = m.to().expect("to").index();
    let liar = (0..3).find(|&i| i != l && i != to).expect("a third member");
    assert!(matches!(
        c.input(
            to,
            Input::Message { from: warpnet_types::NodeId(liar as u16), message: m.clone() }
        ),
        Err(RaftError::WrongSender { .. })
    ));
    assert!(matches!(
        c.input(liar, Input::Message { from: warpnet_types::NodeId(l as u16), message: m }),
        Err(RaftError::WrongRecipient { .. })
    ));
    assert_eq!(c.input(l, Input::Propose(Vec::new())), Err(RaftError::EmptyCommand));
    assert!(matches!(
        c.input(l, Input::Propose(vec![0; 1 << 20])),
        Err(RaftError::CommandTooLarge { .. })
    ));
}

#[test]
fn a_disk_that_does_not_hold_together_is_refused() {
    let membership = warpnet_raft::Membership::new(vec![member(0, true)]);
    let mut r = Recovery::genesis(membership);
    r.hard_state.commit = 5;
    let e = warpnet_raft::RaftEngine::new(common::config(0, 1), r).err();
    assert!(matches!(e, Some(warpnet_raft::RecoveryError::CommitBeyondLog { commit: 5, last: 1 })));
}

#[test]
fn persist_actions_come_before_the_applies_they_cover() {
    let mut c = Cluster::new(&[true]);
    c.run(30);
    assert_eq!(c.leader(), Some(0));
    let actions = c.nodes[0].engine.handle(Input::Propose(b"a".to_vec())).expect("proposal");
    assert!(actions.iter().all(|a| !matches!(a, Action::Apply(_))), "applied before durable");
    let id = common::last_write(&actions).expect("a write");
    let after = c.nodes[0].engine.handle(Input::Persisted(id)).expect("ack");
    assert!(after.iter().any(|a| matches!(a, Action::Apply(Applied::Command { .. }))));
}

#[test]
fn rf6_a_member_whose_removal_is_in_its_log_does_not_campaign() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    c.run(3);
    let (b, other) = ((l + 1) % 3, (l + 2) % 3);
    c.nodes[other].up = false;
    c.input(l, Input::RemoveServer { id: NodeId(b as u16), expected_index: None })
        .expect("removal");
    // Only b gets the entry; the leader goes down before it learns b has it.
    c.queue.retain(|m| m.to() == Some(NodeId(b as u16)) && m.kind() == "append");
    let appends: Vec<RaftMessage> = c.queue.drain(..).collect();
    for m in appends {
        c.input(b, Input::Message { from: NodeId(l as u16), message: m }).expect("append");
    }
    c.nodes[l].up = false;
    c.nodes[other].up = true;
    c.queue.clear();
    c.nodes[b].sent.clear();
    c.run(100);
    let asked: Vec<_> = c.nodes[b]
        .sent
        .iter()
        .map(RaftMessage::kind)
        .filter(|k| *k == "vote" || *k == "pre_vote")
        .collect();
    assert!(
        asked.is_empty(),
        "b campaigned: as leader it would commit its own removal ({asked:?})"
    );
    // The old leader (whose log holds the entry too) comes back, leads, and b is removed.
    c.nodes[l].up = true;
    c.run(60);
    let new = c.leader().expect("a leader");
    assert_ne!(new, b);
    assert!(!c.nodes[new].engine.status().membership.contains(NodeId(b as u16)));
}
