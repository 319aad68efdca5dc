//! Agreed health and leader reputation in the simulator (H1-H5, LR1-LR5). Every run here is
//! also held to the invariants every run is: health agreement (every honest replica computes
//! the same health from the same committed block), health records (what a committed block
//! records is what its ancestry gives), reputation fairness (no honest member kept from
//! leading for more than a window after GST), reputation bound (a member that went away costs
//! at most `FAILED_ROUNDS_MAX` failed rounds of its own leadership) and liveness.

use warpnet_sim::config::{Behavior, LateFault, Overrides, SimConfig};
use warpnet_sim::invariants::FAILED_ROUNDS_MAX;
use warpnet_sim::{Report, World};

/// A calm run (a fault-free network before GST too) of `nodes` members whose liveness phase
/// lasts `spread_ms`, with `fault` from GST on.
fn calm(
    seed: u64,
    nodes: usize,
    fault: impl Fn(&SimConfig) -> LateFault,
    spread_ms: u64,
) -> Report {
    World::new(calm_config(seed, nodes, fault, spread_ms), None).run()
}

/// The configuration of [`calm`].
fn calm_config(
    seed: u64,
    nodes: usize,
    fault: impl Fn(&SimConfig) -> LateFault,
    spread_ms: u64,
) -> SimConfig {
    let o = Overrides {
        nodes: Some(nodes),
        byzantine: Some(0),
        changes: Some(false),
        ..Overrides::default()
    };
    let mut cfg = SimConfig::random(seed, &o);
    cfg.faults.loss = 0.0;
    cfg.faults.partitions = false;
    cfg.faults.crashes = 0;
    cfg.handover_faults = false;
    cfg.liveness_payloads = 40;
    cfg.liveness_spread_ms = spread_ms;
    cfg.late_fault = Some(fault(&cfg));
    cfg
}

/// LR2a/LR2b/LR5: a member that stops for good at GST (killed, or SIGSTOP'd: it never sends
/// again) costs at most one failed round of its own leadership; then the chain skips it and
/// keeps committing (liveness with reputation on), and it stays skipped.
#[test]
fn lr2_lr5_a_stopped_member_costs_at_most_one_failed_round_of_its_leadership() {
    let (mut worst, mut skipped_blocks, mut blocks) = (0, 0, 0);
    for nodes in [4, 5, 7] {
        for seed in 0..30 {
            let r = calm(seed, nodes, |c| LateFault::Stop((seed as usize) % c.nodes), 3_000);
            assert!(r.violations.is_empty(), "n={nodes} seed {seed}: {:?}", r.violations);
            let s = &r.stats;
            assert!(s.late_fault_blocks > 50, "n={nodes} seed {seed}: the chain went on");
            worst = worst.max(s.late_fault_failed_rounds);
            blocks += s.late_fault_blocks;
            skipped_blocks += s.late_fault_blocks - s.late_fault_led_after;
        }
    }
    assert!(worst <= FAILED_ROUNDS_MAX);
    // It was eligible only in the few blocks before its failure showed in the chain.
    assert!(skipped_blocks * 10 > blocks * 9, "skipped in {skipped_blocks} of {blocks} blocks");
}

/// LR2a: a member cut off silently (its packets dropped, nothing reset) costs a bounded number
/// of failed rounds, and leads again once the links heal and its votes are recorded.
#[test]
fn lr2_a_member_cut_off_is_skipped_and_comes_back_when_it_votes_again() {
    for nodes in [4, 5] {
        for seed in 0..20 {
            let cut = |c: &SimConfig| LateFault::Cut {
                replica: (seed as usize + 1) % c.nodes,
                for_ms: 1_500,
            };
            let r = calm(seed, nodes, cut, 4_000);
            assert!(r.violations.is_empty(), "n={nodes} seed {seed}: {:?}", r.violations);
            assert!(r.stats.late_fault_failed_rounds <= FAILED_ROUNDS_MAX);
        }
    }
}

/// LR2 under Byzantine members, at the most the committee tolerates, with a member stopped
/// on top where the committee tolerates one more fault (n = 7, f = 2): the chain goes on.
#[test]
fn liveness_with_reputation_on_under_byzantine_members_and_a_crash() {
    for behavior in [Behavior::Silent, Behavior::Withholder, Behavior::VoteDropper] {
        for seed in 0..10 {
            let o = Overrides {
                nodes: Some(7),
                byzantine: Some(1),
                behavior: Some(behavior),
                changes: Some(false),
                ..Overrides::default()
            };
            let mut cfg = SimConfig::random(seed, &o);
            let honest = (0..7).find(|i| !cfg.byzantine_ids.contains(&(*i as u16))).unwrap();
            cfg.late_fault = Some(LateFault::Stop(honest));
            cfg.liveness_spread_ms = 2_000;
            cfg.liveness_payloads = 20;
            let r = World::new(cfg, None).run();
            assert!(r.violations.is_empty(), "{behavior:?} seed {seed}: {:?}", r.violations);
        }
    }
}

/// H1 and fairness: leaders that leave every late vote out of their blocks cannot get an
/// honest member skipped for long: other leaders' QCs and late votes record it.
#[test]
fn vote_dropping_leaders_cannot_keep_an_honest_member_from_leading() {
    let mut longest = 0;
    for nodes in [4, 7] {
        let o = Overrides {
            nodes: Some(nodes),
            byzantine: Some((nodes - 1) / 3),
            behavior: Some(Behavior::VoteDropper),
            ..Overrides::default()
        };
        for seed in 0..30 {
            let mut cfg = SimConfig::random(seed, &o);
            cfg.liveness_payloads = 20;
            cfg.liveness_spread_ms = 2_000;
            let r = World::new(cfg, None).run();
            assert!(r.violations.is_empty(), "n={nodes} seed {seed}: {:?}", r.violations);
            assert!(r.stats.health_checked_blocks > 0);
            longest = longest.max(r.stats.longest_skip);
        }
    }
    assert!(longest <= warpnet_core::health::window_len(7), "longest skip {longest}");
}

/// H1, LR2, H4: a leader writing false health records (a blame, a forged late vote, a
/// summary) is refused by every honest voter, so none of it reaches the chain.
#[test]
fn false_health_records_are_refused_by_voters() {
    let mut refused = 0;
    for nodes in [4, 7] {
        let o = Overrides {
            nodes: Some(nodes),
            byzantine: Some((nodes - 1) / 3),
            behavior: Some(Behavior::HealthLiar),
            ..Overrides::default()
        };
        for seed in 0..20 {
            let r = World::new(SimConfig::random(seed, &o), None).run();
            assert!(r.violations.is_empty(), "n={nodes} seed {seed}: {:?}", r.violations);
            let by_kind = &r.stats.rejected_by_kind;
            refused += ["health_record", "bad_signature", "invalid"]
                .iter()
                .map(|k| by_kind.get(k).copied().unwrap_or(0))
                .sum::<u64>();
        }
    }
    assert!(refused > 0, "the liar's blocks were refused");
}

/// A fault-free run of `nodes` members (none Byzantine unless `byzantine` says), whose
/// liveness phase lasts two seconds, with the replicas in `undialable` unreachable at their
/// advertised address.
fn reachability(
    seed: u64,
    nodes: usize,
    byzantine: Option<Behavior>,
    undialable: Vec<usize>,
) -> Report {
    let o = Overrides {
        nodes: Some(nodes),
        byzantine: Some(usize::from(byzantine.is_some())),
        behavior: byzantine,
        changes: Some(false),
        ..Overrides::default()
    };
    let mut cfg = SimConfig::random(seed, &o);
    cfg.faults.loss = 0.0;
    cfg.faults.partitions = false;
    cfg.faults.crashes = 0;
    cfg.handover_faults = false;
    cfg.liveness_payloads = 20;
    cfg.liveness_spread_ms = 2_000;
    cfg.undialable =
        undialable.into_iter().filter(|i| !cfg.byzantine_ids.contains(&(*i as u16))).collect();
    World::new(cfg, None).run()
}

/// H2, LR1: a member no other member can dial at its advertised address (its `public` flag
/// is only a request) is never attested by a quorum, so it does not lead while others are
/// verified; a Byzantine member attesting everyone cannot make it verified alone.
#[test]
fn lr1_a_member_no_one_can_dial_does_not_lead() {
    for byzantine in [None, Some(Behavior::FalseAttester)] {
        for seed in 0..10 {
            let r = reachability(seed, 4, byzantine, vec![(seed as usize) % 4]);
            assert!(r.violations.is_empty(), "{byzantine:?} seed {seed}: {:?}", r.violations);
            let s = &r.stats;
            assert!(
                s.settled_blocks > 20,
                "{byzantine:?} seed {seed}: {} blocks",
                s.settled_blocks
            );
            assert_eq!(s.fallback_blocks, 0, "{byzantine:?} seed {seed}: others are verified");
            assert_eq!(s.undialable_led, 0, "{byzantine:?} seed {seed}: it never led");
        }
    }
}

/// H2, LR1: a committee in which no member can be dialed (every one behind a NAT) has no
/// verified-public member: leaders come from the self-declared public members (the
/// fallback, which the summary says), and the chain keeps committing.
#[test]
fn lr1_with_no_verified_public_member_the_fallback_keeps_committing() {
    for seed in 0..10 {
        let r = reachability(seed, 4, None, (0..4).collect());
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        let s = &r.stats;
        assert!(s.settled_blocks > 20, "seed {seed}: {} blocks", s.settled_blocks);
        assert_eq!(s.fallback_blocks, s.settled_blocks, "seed {seed}: every block in fallback");
    }
}

/// M3 (with LR1, LR2): a member no one can dial never leads, and while it is cut off at GST
/// the commands its clients send it cannot be shared (M1's one share is lost). Once the cut
/// heals, it shares them again and they commit: liveness holds for every seed.
fn m3_run(seed: u64, nodes: usize) -> Report {
    let cut = seed as usize % nodes;
    let fault = |_: &SimConfig| LateFault::Cut { replica: cut, for_ms: 1_500 };
    let mut cfg = calm_config(seed, nodes, fault, 1_000);
    cfg.undialable = vec![cut];
    World::new(cfg, None).run()
}

#[test]
fn m3_commands_held_by_a_member_that_never_leads_commit_after_its_cut_heals() {
    for nodes in [4, 5] {
        for seed in 0..12 {
            let r = m3_run(seed, nodes);
            assert!(r.violations.is_empty(), "n={nodes} seed {seed}: {:?}", r.violations);
        }
    }
}
