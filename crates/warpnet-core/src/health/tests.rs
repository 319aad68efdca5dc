use super::*;
use warpnet_types::{Digest, SchemeId};

fn committee(n: usize) -> ConsensusConfig {
    ConsensusConfig::for_testing(n, SchemeId::InsecureSimulation, 0).unwrap().0
}

fn bitmap(n: usize, ids: &[u16]) -> VoterBitmap {
    VoterBitmap::from_ids(n, &ids.iter().map(|&i| NodeId(i)).collect::<Vec<_>>()).unwrap()
}

/// A block at `height` in round `height` (no failures) by `proposer`, whose QC holds `voters`.
fn rec(n: usize, height: u64, proposer: u16, voters: &[u16]) -> Record {
    Record {
        id: Digest([height as u8; 32]),
        parent: Digest([height as u8 - 1; 32]),
        epoch: Epoch(1),
        height: Height(height),
        round: Round(height),
        parent_round: Round(height - 1),
        proposer: NodeId(proposer),
        voters: bitmap(n, voters),
        late: Vec::new(),
        late_round: Round(0),
        timeouts: VoterBitmap::default(),
        attestations: Vec::new(),
        failed: Vec::new(),
        summary: None,
    }
}

/// `len` blocks by members 0..3 in turn, each QC holding 0, 1, 2 (member 3 never recorded).
fn chain_without_3(n: usize, len: u64) -> Vec<Record> {
    (1..=len).map(|h| rec(n, h, (h % 3) as u16, &[0, 1, 2])).collect()
}

fn compute(c: &ConsensusConfig, w: &[Record]) -> Health {
    Health::compute(c, w, w.last().map_or(Height(0), |r| r.height), None)
}

#[test]
fn h3_online_needs_a_signature_in_the_last_blocks() {
    let c = committee(4);
    let mut w = chain_without_3(4, 20);
    // Member 3's vote is recorded once, long ago: offline.
    w[2].voters = bitmap(4, &[0, 1, 3]);
    let h = compute(&c, &w);
    let m = &h.summary.members;
    assert!(m[0].online && m[1].online && m[2].online && !m[3].online);
    assert_eq!(m[3].last_seen, Some(Height(3)));
    assert_eq!(m[3].votes, 1);
    assert_eq!(m[3].reputation, Reputation::Offline);
    assert_eq!(h.eligible, [NodeId(0), NodeId(1), NodeId(2)]);
    // H1: a late vote counts like a vote in a QC.
    let last = w.len() - 1;
    w[last].late = vec![NodeId(3)];
    w[last].late_round = Round(19);
    let h = compute(&c, &w);
    assert!(h.summary.members[3].online);
    assert_eq!(h.eligible.len(), 4, "LR2a: it leads again once a vote of it is recorded");
}

#[test]
fn lr2b_a_leader_that_failed_after_its_last_signature_is_skipped() {
    let c = committee(4);
    let mut w: Vec<Record> = (1..=10).map(|h| rec(4, h, (h % 4) as u16, &[0, 1, 2, 3])).collect();
    // The block at height 10 comes after rounds 10..12 failed: member 3 is blamed, and its last
    // recorded signature is its vote for round 9 (in the same block's QC).
    let last = w.len() - 1;
    w[last].round = Round(12);
    w[last].failed = vec![(NodeId(3), 2)];
    let h = compute(&c, &w);
    assert_eq!(h.summary.members[3].reputation, Reputation::Failed);
    assert!(!h.eligible.contains(&NodeId(3)));
    // A timeout of it in the TC that justified round 12 shows it alive after the failure.
    w[last].timeouts = bitmap(4, &[0, 1, 3]);
    let h = compute(&c, &w);
    assert_eq!(h.summary.members[3].reputation, Reputation::Leader);
}

#[test]
fn lr2c_failing_more_often_than_succeeding_is_skipped() {
    let c = committee(4);
    let mut w: Vec<Record> = (1..=12).map(|h| rec(4, h, (h % 3) as u16, &[0, 1, 2, 3])).collect();
    for r in w.iter_mut().take(FAILURES_MAX as usize) {
        r.failed = vec![(NodeId(3), 1)];
    }
    let h = compute(&c, &w);
    assert_eq!(h.summary.members[3].failed, FAILURES_MAX);
    assert_eq!(h.summary.members[3].reputation, Reputation::Failing);
    // A member that succeeds more often than it fails is not.
    for r in w.iter_mut().skip(4).take(4) {
        r.proposer = NodeId(3);
    }
    assert_eq!(compute(&c, &w).summary.members[3].reputation, Reputation::Leader);
}

#[test]
fn lr1_verified_public_members_lead_and_the_fallback_needs_none() {
    let c = committee(4);
    let mut w: Vec<Record> = (1..=12).map(|h| rec(4, h, (h % 4) as u16, &[0, 1, 2, 3])).collect();
    let h = compute(&c, &w);
    assert!(h.summary.fallback, "nobody attested: the self-declared public members lead");
    assert_eq!(h.eligible.len(), 4);
    // Members 1 and 2 reach 0; 0 and 2 reach 1: each has quorum - 1 = 2 attesters.
    w[3].attestations = vec![(NodeId(1), 10, bitmap(4, &[0])), (NodeId(2), 10, bitmap(4, &[0, 1]))];
    w[5].attestations = vec![(NodeId(0), 10, bitmap(4, &[1]))];
    let h = compute(&c, &w);
    assert!(!h.summary.fallback);
    assert_eq!(h.eligible, [NodeId(0), NodeId(1)]);
    assert_eq!(h.summary.members[0].attested_by, 2);
    assert_eq!(h.summary.members[2].reputation, Reputation::Unverified);
    assert_eq!(h.attested_at[2], Some((10, Height(4))));
    // An attester's latest attestation replaces its earlier one (by when it was signed, not
    // where it is recorded).
    w[8].attestations = vec![(NodeId(2), 20, bitmap(4, &[1]))];
    let h = compute(&c, &w);
    assert_eq!(h.eligible, [NodeId(1)]);
    w[10].attestations = vec![(NodeId(2), 15, bitmap(4, &[0, 1]))];
    assert_eq!(compute(&c, &w).eligible, [NodeId(1)], "an older copy recorded later");
}

#[test]
fn lr2_never_leaves_nobody_to_lead() {
    let c = committee(4);
    let mut w = chain_without_3(4, 12);
    for r in &mut w {
        // Only member 1 is ever recorded, and it fails twice as often as it succeeds.
        r.voters = VoterBitmap::empty(4);
        r.proposer = NodeId(1);
        r.failed = vec![(NodeId(1), 2)];
    }
    let h = compute(&c, &w);
    assert_eq!(h.eligible.len(), 4, "every self-declared public member, as L1");
}

#[test]
fn lr3_lr4_leaders_rotate_over_the_eligible_until_the_escape() {
    let c = committee(4);
    let h = compute(&c, &chain_without_3(4, 20));
    assert_eq!(h.anchor, Round(20));
    // A block of round 21 extending a block of round r - 1 (no failed round between).
    let leader = |r: u64| h.leader(&c, Since::clean(Round(r - 1)), Round(r));
    for r in 21..=20 + escape_rounds(3) {
        assert_ne!(leader(r), NodeId(3));
    }
    let far = Round(21 + escape_rounds(3));
    assert_eq!(leader(far.0), c.leader(far), "LR4: L1 over all public members");
    // LR2: blame names the leaders of the failed rounds, counted per member.
    let blame = h.blame(&c, Since::clean(Round(20)), Round(24));
    assert_eq!(blame.iter().map(|(_, k)| k).sum::<u32>(), 3);
    for (id, _) in &blame {
        assert!((21..24).any(|r| h.leader(&c, Since::clean(Round(20)), Round(r)) == *id));
    }
}

#[test]
fn lr5_a_leader_that_failed_since_the_health_was_seen_is_skipped() {
    let c = committee(4);
    let chain: Vec<Record> = (1..=20).map(|r| rec(4, r, (r % 4) as u16, &[0, 1, 2, 3])).collect();
    let h = compute(&c, &chain);
    assert_eq!(h.eligible.len(), 4);
    // Rounds up to the escape (LR4 takes over after 20 + escape_rounds(4) = 32).
    for parent in 20..29u64 {
        // The leader of the round after the parent fails: the next round skips it.
        let clean = Since::clean(Round(parent));
        let failed = h.leader(&c, clean, Round(parent + 1));
        let next = h.leader(&c, clean, Round(parent + 2));
        assert_ne!(next, failed, "LR5: a leader that failed after the parent");
        assert_eq!(h.blame(&c, clean, Round(parent + 2)), [(failed, 1)]);
        // Blamed by the parent's own record: skipped in every round after it, unless it
        // signed since (the parent's proposer, a signer of its TC).
        let blamed = [(NodeId(2), 1)];
        let since = Since { failed: &blamed, proposer: Some(NodeId(0)), ..clean };
        for r in parent + 1..parent + 4 {
            assert_ne!(h.leader(&c, since, Round(r)), NodeId(2));
        }
        let timeouts = bitmap(4, &[1, 2, 3]);
        let signed = Since { timeouts: Some(&timeouts), ..since };
        assert!((parent + 1..parent + 4)
            .all(|r| h.leader(&c, signed, Round(r)) == h.leader(&c, clean, Round(r))));
    }
    // Everyone blamed: one member is left to lead, the oldest failure forgiven first; as
    // rounds fail, each member leads in turn (nobody is left out for good).
    let all = [(NodeId(0), 1), (NodeId(1), 1), (NodeId(2), 1), (NodeId(3), 1)];
    let since = Since { failed: &all, ..Since::clean(Round(20)) };
    let leaders: Vec<NodeId> = (21..25).map(|r| h.leader(&c, since, Round(r))).collect();
    assert_eq!(leaders, [NodeId(0), NodeId(1), NodeId(2), NodeId(3)]);
}

#[test]
fn lr5_a_member_silent_at_a_recent_tc_is_skipped_until_it_signs_again() {
    let c = committee(4);
    let mut chain: Vec<Record> = (1..=20).map(|r| rec(4, r, (r % 3) as u16, &[0, 1, 2])).collect();
    // Member 3's vote in the QC of block 17, then a TC of round 19 without it (block 20).
    chain[16].voters = bitmap(4, &[0, 1, 3]);
    chain[19].timeouts = bitmap(4, &[0, 1, 2]);
    let h = compute(&c, &chain);
    assert!(h.summary.members[3].online, "still online: signed in the last blocks");
    assert_eq!(h.silent_since_tc, [NodeId(3)]);
    for r in 21..30 {
        assert_ne!(h.leader(&c, Since::clean(Round(r - 1)), Round(r)), NodeId(3));
    }
    // A signature of it recorded after the TC's round: no longer skipped.
    let mut later = chain.clone();
    later.push(rec(4, 21, 1, &[0, 1, 3]));
    assert!(compute(&c, &later).silent_since_tc.is_empty());
}

#[test]
fn h5_an_offline_member_of_the_last_epoch_stays_skipped_until_seen() {
    let c = committee(4);
    let before = compute(&c, &chain_without_3(4, 20)).summary;
    assert!(!before.members[3].online);
    let short = chain_without_3(4, 2);
    let h = Health::compute(&c, &short, Height(22), Some(&before));
    assert!(!h.eligible.contains(&NodeId(3)));
    assert!(h.summary.members[0].online, "carried while the window cannot tell");
    let mut seen = short.clone();
    seen[1].voters = bitmap(4, &[0, 1, 3]);
    let h = Health::compute(&c, &seen, Height(22), Some(&before));
    assert!(h.eligible.contains(&NodeId(3)));
}
