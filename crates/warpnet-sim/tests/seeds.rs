//! The CI seed sweep: hundreds of random runs (faults, crashes, Byzantine replicas) with the
//! simulator's cheap signatures, a slice with real Ed25519, and replay determinism.

use warpnet_sim::{run_many, run_seed, Overrides};
use warpnet_types::SchemeId;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn five_hundred_random_seeds_hold_every_invariant() {
    let s = run_many(0, 500, &Overrides::default(), threads());
    let failed: Vec<_> = s.failed.iter().map(|r| (r.seed, r.violations.clone())).collect();
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
    assert_eq!(s.runs, 500);
    assert!(s.commits > 10_000, "{} commits", s.commits);
}

#[test]
fn forty_seeds_with_real_ed25519() {
    let o = Overrides { scheme: Some(SchemeId::Ed25519), ..Overrides::default() };
    let s = run_many(1_000_000, 40, &o, threads());
    let failed: Vec<_> = s.failed.iter().map(|r| (r.seed, r.violations.clone())).collect();
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
}

#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 77, 1234] {
        let (a, b) = (run_seed(seed, &Overrides::default()), run_seed(seed, &Overrides::default()));
        assert_eq!(
            (a.stats.steps, a.virtual_ms, a.committed_height),
            (b.stats.steps, b.virtual_ms, b.committed_height)
        );
        assert_eq!(a.stats.messages_sent, b.stats.messages_sent);
    }
}

#[test]
fn large_committees_hold_every_invariant() {
    let o = Overrides { nodes: Some(31), ..Overrides::default() };
    let s = run_many(500, 4, &o, threads());
    assert!(
        s.failed.is_empty(),
        "{:?}",
        s.failed.iter().map(|r| &r.violations).collect::<Vec<_>>()
    );
}
