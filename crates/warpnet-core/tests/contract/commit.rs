//! C1, the 2-chain commit rule: on the block tree itself, and in a network of honest cores
//! (where every commit is checked as it happens, see `net`).

use warpnet_core::tree::{BlockTree, TreeError};
use warpnet_core::Committed;
use warpnet_types::{
    Block, BlockId, Height, Message, NodeId, QuorumCertificate, Round, VoterBitmap,
};

use crate::fixtures::*;
use crate::net::Net;

fn fake_qc(c: &Committee, b: &Block) -> QuorumCertificate {
    // The tree does not verify signatures (the core does before it records a QC).
    QuorumCertificate::from_parts(
        c.config.epoch(),
        b.round(),
        b.id(),
        VoterBitmap::empty(c.config.total_nodes()),
        vec![],
    )
}

/// C1 on the tree itself: a QC for B1 commits B1's parent B0 exactly when their rounds are
/// consecutive; a round gap (a TC in between) commits nothing; the next consecutive pair
/// commits the whole uncommitted prefix at once, in height order, each block once; forks that
/// no longer extend the committed chain are pruned; blocks are refused if they do not extend
/// their parent.
#[test]
fn c1_block_tree_commits_consecutive_rounds_only_and_ancestors_together_in_order() {
    let c = Committee::new(4);
    let g = c.genesis();
    let mut tree = BlockTree::new(g.clone(), c.genesis_qc());
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let b2 = c.block(2, 2, &fake_qc(&c, &b1), vec![]);
    let b3 = c.block(3, 3, &fake_qc(&c, &b2), vec![]);
    // Rounds 4 and 5 fail (TCs); b6 extends b3.
    let b6 = c.block(6, 4, &fake_qc(&c, &b3), vec![]);
    let b7 = c.block(7, 5, &fake_qc(&c, &b6), vec![]);
    // A fork from b2 in round 4.
    let fork = c.block(4, 3, &fake_qc(&c, &b2), vec![cmd("fork")]);
    for b in [&b1, &b2, &b3, &fork, &b6, &b7] {
        assert_eq!(tree.insert(b.clone()), Ok(true));
    }
    assert_eq!(tree.insert(b1.clone()), Ok(false), "already present");

    // A QC for b1: its parent is the committed root; nothing new.
    assert_eq!(tree.commit_for(&fake_qc(&c, &b1)), []);
    // A QC for b2 (round 2 = round(b1) + 1) commits b1, certified by b2's justify.
    assert_eq!(
        tree.commit_for(&fake_qc(&c, &b2)),
        [Committed { block: b1.clone(), certificate: b2.justify().clone() }]
    );
    assert_eq!(tree.root().id(), b1.id());
    // Again: nothing (each height once).
    assert_eq!(tree.commit_for(&fake_qc(&c, &b2)), []);
    // A QC for b6 (round 6) does not commit b3 (round 3): rounds are not consecutive.
    assert_eq!(tree.commit_for(&fake_qc(&c, &b6)), []);
    assert_eq!(tree.root().id(), b1.id());
    // A QC for b7 (round 7 = round(b6) + 1) commits b6 and, with it, b2 and b3, in order.
    let qc7 = fake_qc(&c, &b7);
    let committed = tree.commit_for(&qc7);
    let ids: Vec<(BlockId, Height)> =
        committed.iter().map(|x| (x.block.id(), x.block.height())).collect();
    assert_eq!(
        ids,
        [(b2.id(), Height(2)), (b3.id(), Height(3)), (b6.id(), Height(4))],
        "the whole uncommitted prefix, lowest first"
    );
    for x in &committed {
        let cert = tree_cert_of(&x.block, [&b2, &b3, &b6, &b7]);
        assert_eq!(x.certificate, cert, "each block comes with the QC its child carries");
    }
    assert_eq!(tree.root().id(), b6.id());
    assert!(!tree.contains(&fork.id()), "the fork no longer extends the committed chain");
    assert!(!tree.contains(&b3.id()), "committed ancestors below the root are pruned");
    assert!(tree.contains(&b7.id()));
    assert_eq!(tree.commit_for(&qc7), [], "each height exactly once");

    // Blocks that do not extend their parent are refused.
    let orphan_parent = c.block(9, 9, &fake_qc(&c, &fork), vec![]);
    assert!(matches!(tree.insert(orphan_parent), Err(TreeError::UnknownParent { .. })));
    let low = c.block(8, 3, &fake_qc(&c, &b2), vec![]);
    assert!(matches!(tree.insert(low), Err(TreeError::BelowRoot { .. })));
    let same_round = c.block(7, 6, &fake_qc(&c, &b7), vec![]);
    assert!(matches!(tree.insert(same_round), Err(TreeError::Round { .. })));
}

/// The QC certifying `b`: the justify of its child among `chain`.
fn tree_cert_of<'a>(b: &Block, chain: impl IntoIterator<Item = &'a Block>) -> QuorumCertificate {
    chain.into_iter().find(|x| x.parent() == b.id()).map(|x| x.justify().clone()).expect("a child")
}

/// C1 in a network of four honest members with a steady supply of commands: every member
/// commits the same chain, heights in order, each once, each block only when it holds a QC for
/// a child in the next round; commands commit exactly once.
#[test]
fn c1_network_commits_in_height_order_exactly_once_on_certified_two_chains() {
    let mut net = Net::new(4);
    net.start();
    let cmds: Vec<Vec<u8>> = (0..10).map(|k| cmd(&format!("cmd-{k}"))).collect();
    for k in &cmds {
        net.submit_everywhere(k);
    }
    net.run();
    for _ in 0..4 {
        net.fire_propose_timers();
    }
    let heights: Vec<usize> = net.c.ids().iter().map(|&id| net.committed_chain(id).len()).collect();
    assert!(heights.iter().all(|&h| h >= 5), "progress: committed heights {heights:?}");
    for id in net.c.ids() {
        let s = net.members[id.index()].status();
        assert_eq!(s.committed_height, Height(heights[id.index()] as u64));
        assert_eq!(s.consecutive_timeouts, 0);
    }
    // With no failure, every committed block is of the round after its parent.
    for b in net.committed_chain(NodeId(0)).windows(2) {
        assert_eq!(b[1].round(), b[0].round().next());
    }
    net.check_agreement_and_payloads(&cmds);
    assert_eq!(net.rejections, [], "an honest synchronous run refuses nothing");
}

/// C1 across a failed round: the round-3 proposal is lost, everyone times out (PM4), a TC
/// forms (PM5) and round 4 extends the round-2 block. The round-2 block does not commit on the
/// QC of its round-4 child (rounds not consecutive); it commits together with that child once a
/// round-5 block certifies the child, in one step, lowest first. The lost block never commits.
#[test]
fn c1_network_commits_across_a_timeout_only_on_consecutive_rounds() {
    let mut net = Net::new(4);
    net.drop = Box::new(|_, _, m| matches!(m, Message::Proposal(p) if p.block.round() == Round(3)));
    net.start();
    let cmds: Vec<Vec<u8>> = (0..10).map(|k| cmd(&format!("cmd-{k}"))).collect();
    for k in &cmds {
        net.submit_everywhere(k);
    }
    net.run();
    for id in net.c.ids() {
        let round = net.members[id.index()].status().round;
        assert!(round == Round(2) || round == Round(3), "{id}: stuck before round 4");
    }
    // The QC of round 2 travelled only with the lost proposal: the round-3 leader's timeout
    // carries it to the others (round 3), and their round-3 timeouts then form the TC.
    for _ in 0..3 {
        if net.c.ids().iter().all(|id| net.members[id.index()].status().round >= Round(4)) {
            break;
        }
        net.fire_round_timers();
    }
    for id in net.c.ids() {
        let s = net.members[id.index()].status();
        assert!(s.round >= Round(4), "{id}: a TC moved it on");
        assert_eq!(s.high_tc_round, Some(Round(3)));
    }
    for _ in 0..6 {
        net.fire_propose_timers();
    }
    net.check_agreement_and_payloads(&cmds);
    for id in net.c.ids() {
        let chain = net.committed_chain(id);
        assert!(chain.len() >= 5, "{id}: progress after the TC, committed {}", chain.len());
        assert!(chain.iter().all(|b| b.round() != Round(3)), "the lost block never commits");
        let r2 = chain.iter().find(|b| b.round() == Round(2)).expect("round 2 committed");
        let r4 = chain.iter().find(|b| b.round() == Round(4)).expect("round 4 committed");
        assert_eq!(r4.parent(), r2.id());
        let step = net.commits[id.index()]
            .iter()
            .find(|s| s.iter().any(|x| x.block.id() == r2.id()))
            .unwrap();
        let in_step: Vec<Round> = step.iter().map(|x| x.block.round()).collect();
        assert_eq!(in_step, [Round(2), Round(4)], "{id}: the gap commits with its certified child");
    }
}
