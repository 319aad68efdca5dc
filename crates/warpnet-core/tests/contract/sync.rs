//! Y1–Y3: fetching missing blocks, serving peers' requests, and attaching only certified
//! chains. (Y4, a response within one frame, is a unit test of `sync.rs`.)

use warpnet_core::{SafetyData, Timer};
use warpnet_types::{Height, Message, Round, SyncRequest, SyncResponse};

use crate::fixtures::*;

/// Y1–Y3: a proposal whose parent is unknown is kept while the parent is fetched from a member
/// that certified it; once the response attaches the parent, the member votes. Y2: a peer's
/// request is handed to the runtime to serve, capped to `sync_blocks_max`.
#[test]
fn y1_y3_missing_parent_is_fetched_and_the_waiting_proposal_is_voted_on() {
    let c = Committee::new(4);
    let r = c.follower(&[2, 3]);
    let (mut core, _) = c.start(r);
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let b2 = c.block(2, 2, &qc1, vec![]);
    let l2 = c.leader(2);
    let acts = core.handle(20, msg(l2, Message::Proposal(c.proposal(b2.clone(), None))));
    let peer = qc1.voters().iter().find(|&id| id != r).unwrap();
    let request = SyncRequest {
        epoch: c.config.epoch(),
        target: b1.id(),
        above: Height(0),
        max_blocks: SYNC_BLOCKS_MAX,
    };
    let (seq, data) = the_persist(&acts);
    assert_eq!(data, SafetyData { high_qc: qc1, ..SafetyData::initial(&c.config) });
    assert_eq!(
        acts,
        [
            Act::Write(seq),
            Act::PersistSafety(data),
            Act::Send(peer, Message::SyncRequest(request.clone())),
            Act::SetTimer(Timer::Round(Round(2)), BASE_MS),
        ]
    );
    let _ = core.handle(21, persisted(seq));
    let response = SyncResponse { epoch: c.config.epoch(), blocks: vec![b1.clone()] };
    let acts = core.handle(22, msg(peer, Message::SyncResponse(response)));
    let (seq, data) = the_persist(&acts);
    let vote = c.vote(&b2, r);
    assert_eq!(data.last_vote.as_ref(), Some(&vote));
    assert_eq!(
        acts,
        [Act::Write(seq), Act::PersistBlock(b1), Act::PersistBlock(b2), Act::PersistSafety(data)]
    );
    assert_eq!(core.handle(23, persisted(seq)), c.vote_sends(&vote));

    // Y2.
    let greedy = SyncRequest { max_blocks: u16::MAX, ..request };
    assert_eq!(
        core.handle(30, msg(peer, Message::SyncRequest(greedy.clone()))),
        [Act::ServeSync(peer, SyncRequest { max_blocks: SYNC_BLOCKS_MAX, ..greedy })]
    );
}

/// Y3: a sync response attaches only certified blocks. Synced blocks carry no proposer
/// signature, so a block that no QC we hold certifies is never stored: a peer cannot fill the
/// tree or the disk with fabricated blocks.
#[test]
fn y3_uncertified_blocks_from_a_peer_are_never_stored() {
    let c = Committee::new(4);
    let r = c.follower(&[1, 2]);
    let (mut core, _) = c.start(r);
    let peer = c.other_than(&[r])[0];
    // Fabricated children of genesis: well formed, a valid parent QC, but no QC of their own.
    for i in 0..5u64 {
        let fake = c.block(1, 1, &c.genesis_qc(), vec![cmd(&format!("fake{i}"))]);
        let response = SyncResponse { epoch: c.config.epoch(), blocks: vec![fake] };
        let acts = core.handle(10 + i, msg(peer, Message::SyncResponse(response)));
        assert!(!acts.iter().any(|a| matches!(a, Act::PersistBlock(_))), "{acts:?}");
    }
    assert_eq!(core.status().tree_blocks, 1, "only genesis");
    // A chain certified link by link is attached, except its last block, which nothing we
    // hold certifies.
    let b1 = c.block(1, 1, &c.genesis_qc(), vec![]);
    let qc1 = c.qc(&b1);
    let b2 = c.block(2, 2, &qc1, vec![]);
    let response = SyncResponse { epoch: c.config.epoch(), blocks: vec![b1.clone(), b2.clone()] };
    let acts = core.handle(20, msg(peer, Message::SyncResponse(response)));
    assert!(acts.contains(&Act::PersistBlock(b1)), "{acts:?}");
    assert!(!acts.contains(&Act::PersistBlock(b2)), "{acts:?}");
    assert_eq!(core.status().high_qc_round, Round(1));
}
