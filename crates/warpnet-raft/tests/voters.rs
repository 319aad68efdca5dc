//! Contract tests of voter changes (RV1-RV4), on the small synchronous cluster: new members
//! learn before they vote, one change at a time, a minimum of voters, removed ids retired.

mod common;

use common::{member, Cluster};
use warpnet_raft::{Input, RaftError, RaftParams};
use warpnet_types::NodeId;

fn elected(c: &mut Cluster) -> usize {
    c.run(40);
    c.leader().expect("a leader within 40 rounds")
}

fn add(c: &mut Cluster, l: usize, id: u16) -> Result<(), RaftError> {
    let input = Input::AddVoter {
        member: member(id, true),
        description: format!("member {id}").into_bytes(),
        expected_index: None,
    };
    c.input(l, input)
}

/// Grows a committee of three public founders by a fourth member that stays down (it never
/// catches up), then takes one founder down: the two founders left must still commit.
fn commits_with_an_empty_newcomer_and_a_founder_down(params: RaftParams) -> bool {
    let mut c = Cluster::with_params(&[true, true, true], params);
    let l = elected(&mut c);
    c.add_joining(3);
    c.nodes[3].up = false;
    add(&mut c, l, 3).expect("the leader takes the change");
    c.run(10);
    let down = (l + 1) % 3;
    c.nodes[down].up = false;
    let _ = c.input(l, Input::Propose(b"still".to_vec()));
    c.run(10);
    c.commands(l).contains(&b"still".to_vec())
}

#[test]
fn rv1_a_new_member_learns_first_and_is_promoted_once_caught_up() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    for i in 0..5u8 {
        c.input(l, Input::Propose(vec![i + 1])).expect("proposal");
    }
    c.run(2);
    add(&mut c, l, 3).expect("the leader takes the change");
    c.run(2);
    // Applied everywhere as a learner: it neither votes nor counts in a quorum yet.
    let s = c.nodes[l].engine.status();
    assert_eq!(s.membership.learners(), &[member(3, true)]);
    assert_eq!(s.membership.len(), 3);
    assert_eq!(s.membership.description(NodeId(3)), Some(&b"member 3"[..]));
    // It joins, catches up from the leader's snapshot, and the leader promotes it.
    c.add_joining(3);
    c.run(10);
    for i in 0..4 {
        let s = c.nodes[i].engine.status();
        assert_eq!(s.membership.len(), 4, "node {i}: {s:?}");
        assert!(s.membership.learners().is_empty(), "node {i}: {s:?}");
        assert_eq!(s.membership.description(NodeId(3)), Some(&b"member 3"[..]), "node {i}");
    }
    let applied = |i: usize| c.nodes[i].engine.status().applied;
    assert_eq!(applied(3), applied(l));
}

#[test]
fn rv1_an_empty_newcomer_never_costs_the_committee_its_quorum() {
    assert!(commits_with_an_empty_newcomer_and_a_founder_down(RaftParams::default()));
}

/// The test above fails when RV1 is removed: a newcomer promoted before it caught up counts in
/// every quorum, and the committee of four with two members down stalls.
#[cfg(feature = "mutations")]
#[test]
fn rv1_broken_promoting_at_once_stalls_the_committee() {
    let params = RaftParams {
        mutation: Some(warpnet_raft::Mutation::PromoteAtOnce),
        ..RaftParams::default()
    };
    assert!(!commits_with_an_empty_newcomer_and_a_founder_down(params));
}

#[test]
fn rv2_a_second_change_waits_for_the_learner_and_only_its_removal_is_accepted() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    add(&mut c, l, 3).expect("first change");
    c.run(3);
    // Member 3 never starts: it stays a learner, and every other change is refused.
    assert_eq!(add(&mut c, l, 4), Err(RaftError::LearnerPending { id: NodeId(3) }));
    let other = NodeId(((l + 1) % 3) as u16);
    assert_eq!(
        c.input(l, Input::RemoveServer { id: other, expected_index: None }),
        Err(RaftError::LearnerPending { id: NodeId(3) })
    );
    assert_eq!(add(&mut c, l, 3), Err(RaftError::LearnerPending { id: NodeId(3) }));
    // Its own removal cancels it, and the next change goes through.
    c.input(l, Input::RemoveServer { id: NodeId(3), expected_index: None }).expect("cancel");
    c.run(3);
    assert!(c.nodes[l].engine.status().membership.learners().is_empty());
    add(&mut c, l, 4).expect("the next change");
}

#[test]
fn rv3_a_removal_never_leaves_fewer_voters_than_the_minimum() {
    let params = RaftParams { voters_min: 3, ..RaftParams::default() };
    let mut c = Cluster::with_params(&[true, true, true, true], params);
    let l = elected(&mut c);
    c.run(3);
    let victims: Vec<u16> = (0..4u16).filter(|&i| i as usize != l).collect();
    c.input(l, Input::RemoveServer { id: NodeId(victims[0]), expected_index: None })
        .expect("four voters become three");
    c.run(3);
    assert_eq!(
        c.input(l, Input::RemoveServer { id: NodeId(victims[1]), expected_index: None }),
        Err(RaftError::BelowMinimum { voters: 2, min: 3 })
    );
    assert_eq!(c.nodes[l].engine.status().membership.len(), 3);
}

#[test]
fn rv4_a_removed_member_is_never_added_again() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    c.run(3);
    let gone = NodeId(((l + 1) % 3) as u16);
    c.input(l, Input::RemoveServer { id: gone, expected_index: None }).expect("removal");
    c.run(3);
    for i in (0..3).filter(|&i| i != gone.index()) {
        assert!(c.nodes[i].engine.status().membership.is_retired(gone), "node {i}");
    }
    assert_eq!(add(&mut c, l, gone.0), Err(RaftError::Retired { id: gone }));
}

#[test]
fn rv7_a_removed_member_learns_of_its_removal_from_the_leaders_last_append() {
    let mut c = Cluster::new(&[true, true, true]);
    let l = elected(&mut c);
    c.run(3);
    let gone = NodeId(((l + 1) % 3) as u16);
    c.input(l, Input::RemoveServer { id: gone, expected_index: None }).expect("removal");
    let removal = c.nodes[l].engine.status().last_index;
    // Every empty append to the removed member after it holds its removal is lost (the
    // leader's commit broadcast): only the leader's last append, with the removal entry and
    // the commit index, can tell it.
    let mut budget = 10_000;
    while let Some(m) = c.queue.pop_front() {
        budget -= 1;
        assert!(budget > 0, "messages never settle");
        let (Some(to), Some(from)) = (m.to(), m.from()) else { continue };
        let held = c.nodes[gone.index()].engine.status().last_index >= removal;
        if to == gone && m.kind() == "append" && m.entries() == 0 && held {
            continue;
        }
        let _ = c.input(to.index(), Input::Message { from, message: m });
    }
    let s = c.nodes[gone.index()].engine.status();
    assert!(s.membership.is_retired(gone), "{s:?}");
    assert!(!s.may_campaign);
}
