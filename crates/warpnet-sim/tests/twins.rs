//! Twins: a member's key on two replicas, scripted per-round partitions, real Ed25519.

use warpnet_sim::twins::{n5_fork_schedule, random_schedule, run};
use warpnet_types::QuorumRule;

/// The ADR-006 quorum of 2f+1 forks at n = 5: two partitions of three (each with one twin)
/// both certify and commit different blocks at the same height.
#[test]
fn adr_quorum_2f_plus_1_forks_at_n5() {
    let r = run(1, 5, n5_fork_schedule(), QuorumRule::AdrTwoFPlusOneUnsafe, false);
    assert!(
        r.violations.iter().any(|v| v.invariant == "agreement"),
        "expected a fork under 2f+1, got {:?} (committed height {})",
        r.violations,
        r.committed_height
    );
}

/// The same schedule under n - f = 4: no partition can certify anything, so no fork; once the
/// network heals, the committee commits again (liveness).
#[test]
fn n_minus_f_quorum_does_not_fork_on_the_same_schedule() {
    let r = run(1, 5, n5_fork_schedule(), QuorumRule::NMinusF, true);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.committed_height.0 > 0, "commits resume after the partition heals");
}

fn random_twins(n: usize, seeds: std::ops::Range<u64>) {
    let mut commits = 0;
    for seed in seeds {
        let schedule = random_schedule(seed, n, 20);
        let r = run(seed, n, schedule, QuorumRule::NMinusF, true);
        assert!(r.violations.is_empty(), "n={n} seed={seed}: {:?}", r.violations);
        commits += r.stats.commits;
    }
    assert!(commits > 0);
}

/// Random Twins schedules over 20 rounds at n = 4 keep agreement and recover.
#[test]
fn random_twins_schedules_n4() {
    random_twins(4, 0..40);
}

/// Random Twins schedules over 20 rounds at n = 5 keep agreement and recover.
#[test]
fn random_twins_schedules_n5() {
    random_twins(5, 100..140);
}
