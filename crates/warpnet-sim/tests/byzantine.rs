//! Every Byzantine behavior, with as many Byzantine replicas as the committee tolerates: the
//! invariants hold, and each adversary visibly did what it is meant to do (so none of these
//! tests can pass because the adversary was idle).

use warpnet_sim::config::{Behavior, Overrides, SimConfig};
use warpnet_sim::{Report, World};

fn runs(behavior: Behavior, nodes: usize, seeds: std::ops::Range<u64>) -> Vec<Report> {
    let o = Overrides {
        nodes: Some(nodes),
        byzantine: Some((nodes - 1) / 3),
        behavior: Some(behavior),
        ..Overrides::default()
    };
    seeds
        .map(|seed| {
            let r = World::new(SimConfig::random(seed, &o), None).run();
            assert!(r.violations.is_empty(), "{behavior:?} seed {seed}: {:?}", r.violations);
            r
        })
        .collect()
}

fn total(reports: &[Report], f: impl Fn(&Report) -> u64) -> u64 {
    reports.iter().map(f).sum()
}

fn rejected(reports: &[Report], kind: &str) -> u64 {
    total(reports, |r| r.stats.rejected_by_kind.get(kind).copied().unwrap_or(0))
}

#[test]
fn silent_replicas_do_not_stop_the_committee() {
    let r = runs(Behavior::Silent, 7, 0..20);
    assert!(total(&r, |r| r.stats.commits) > 0);
}

#[test]
fn equivocating_proposers_are_caught_with_evidence() {
    let r = runs(Behavior::EquivocatingProposer, 4, 0..30);
    assert!(total(&r, |r| r.stats.evidence) > 0);
}

#[test]
fn double_votes_are_caught_with_evidence_and_never_counted_twice() {
    let r = runs(Behavior::DoubleVoter, 7, 0..30);
    assert!(total(&r, |r| r.stats.evidence) > 0);
}

#[test]
fn invalid_signatures_are_refused() {
    let r = runs(Behavior::InvalidSignatures, 4, 0..20);
    assert!(rejected(&r, "bad_signature") > 0);
}

#[test]
fn votes_on_conflicting_forks_do_not_break_agreement() {
    // One equivocating leader and one member voting for everything it sees, at n = 7.
    let mut evidence = 0;
    for seed in 0..30 {
        let mut cfg = SimConfig::random(
            seed,
            &Overrides { nodes: Some(7), byzantine: Some(2), ..Overrides::default() },
        );
        cfg.behaviors = vec![Behavior::EquivocatingProposer, Behavior::ConflictingVoter];
        let r = World::new(cfg, None).run();
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        evidence += r.stats.evidence;
    }
    assert!(evidence > 0, "the conflicting voter's votes on both forks are evidence");
}

#[test]
fn replayed_messages_are_refused() {
    let r = runs(Behavior::Replayer, 4, 0..20);
    assert!(rejected(&r, "wrong_sender") > 0);
}

#[test]
fn future_round_floods_are_dropped_unverified() {
    let r = runs(Behavior::FutureFlooder, 4, 0..20);
    assert!(rejected(&r, "far_future") > 0);
}

#[test]
fn malformed_and_oversized_frames_are_dropped() {
    let r = runs(Behavior::Malformed, 4, 0..20);
    assert!(total(&r, |r| r.stats.malformed_frames) > 0);
}

#[test]
fn withheld_votes_do_not_stop_the_committee() {
    let r = runs(Behavior::Withholder, 7, 0..20);
    assert!(total(&r, |r| r.stats.commits) > 0);
}

#[test]
fn impersonation_is_refused() {
    let r = runs(Behavior::Impersonator, 4, 0..20);
    assert!(rejected(&r, "wrong_sender") > 0);
}

#[test]
fn proposals_from_non_leaders_are_refused() {
    let r = runs(Behavior::RogueProposer, 4, 0..20);
    assert!(rejected(&r, "not_leader") > 0);
}

#[test]
fn forged_certificates_are_refused() {
    let r = runs(Behavior::Forger, 4, 0..20);
    assert!(rejected(&r, "bad_signature") + rejected(&r, "invalid") > 0);
}

#[test]
fn proposals_over_the_limits_are_refused() {
    let r = runs(Behavior::Overstepper, 4, 0..40);
    assert!(rejected(&r, "future_timestamp") > 0, "P7");
    assert!(rejected(&r, "invalid") > 0, "P4");
}
