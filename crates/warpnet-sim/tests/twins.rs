//! Twins: a member's key on two replicas, scripted per-round partitions, real Ed25519.

use warpnet_sim::twins::{n5_fork_schedule, random_schedule, run};
use warpnet_types::QuorumRule;

/// The ADR-006 quorum of 2f+1 forks at n = 5: two partitions of three (each with one twin)
/// both certify and commit different blocks at the same height. Whether a run forks depends on
/// who leads each round (drawn from the blocks' ancestry, LR3) and on message timing, so the
/// schedule runs under several seeds; the simulator is deterministic, so the count is stable.
#[test]
fn adr_quorum_2f_plus_1_forks_at_n5() {
    let forks = (0..30)
        .filter(|&seed| {
            let r = run(seed, 5, n5_fork_schedule(), QuorumRule::AdrTwoFPlusOneUnsafe, false);
            r.violations.iter().any(|v| v.invariant == "agreement")
        })
        .count();
    assert!(forks > 0, "expected a fork under 2f+1 in some of 30 seeds");
}

/// The same schedule under n - f = 4, with the seeds that fork under 2f+1 among them: no
/// partition can certify anything, so no fork; once the network heals, the committee commits
/// again (liveness).
#[test]
fn n_minus_f_quorum_does_not_fork_on_the_same_schedule() {
    for seed in 0..12 {
        let r = run(seed, 5, n5_fork_schedule(), QuorumRule::NMinusF, true);
        assert!(r.violations.is_empty(), "seed {seed}: {:?}", r.violations);
        assert!(r.committed_height.0 > 0, "seed {seed}: commits resume after the partition heals");
    }
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
