//! Mutation tests: break one named rule in the core and require the simulator to catch it.
//! A checker that never fires proves nothing; these show each one firing for the rule it guards.

use warpnet_core::Mutation;
use warpnet_sim::config::{Behavior, Overrides, SimConfig};
use warpnet_sim::World;

/// Runs up to `max_seeds` seeds with the mutation; returns the first violation found.
fn first_violation(
    mutation: Mutation,
    max_seeds: u64,
    tweak: impl Fn(&mut SimConfig),
) -> Option<(u64, String)> {
    for seed in 0..max_seeds {
        let mut cfg = SimConfig::random(seed, &Overrides::default());
        cfg.params.mutation = Some(mutation);
        tweak(&mut cfg);
        let r = World::new(cfg, None).run();
        if let Some(v) = r.violations.first() {
            return Some((seed, v.to_string()));
        }
    }
    None
}

/// No Byzantine member, no committee change, no loss, partition or crash: only the fault a
/// scenario adds.
fn calm(c: &mut SimConfig) {
    c.byzantine_ids.clear();
    c.behaviors.clear();
    c.membership.clear();
    c.spares = 0;
    c.faults.loss = 0.0;
    c.faults.partitions = false;
    c.faults.crashes = 0;
    c.handover_faults = false;
}

#[test]
fn s1a_broken_is_caught_as_an_honest_double_vote() {
    let found = first_violation(Mutation::S1aVoteAgain, 1_000, |c| {
        // An equivocating leader offers its witness the second block again and again; E1 stops
        // a running member from voting for it, S1a is what stops a restarted one.
        c.nodes = 4;
        c.byzantine_ids = vec![3];
        c.behaviors = vec![Behavior::EquivocatingProposer];
        c.faults.crashes = 12;
    });
    let (seed, v) = found.expect("the simulator must catch S1a broken");
    assert!(v.contains("no-double-vote"), "seed {seed}: {v}");
}

#[test]
fn persist_before_release_broken_is_caught_after_crashes() {
    let found = first_violation(Mutation::ReleaseBeforePersist, 3_000, |c| {
        // Slow disks and many crashes: votes leave, the crash loses the safety data, and the
        // restarted member signs again in the same round.
        c.faults.disk_latency_ms_max = 40;
        c.faults.crashes = 12;
    });
    let (seed, v) = found.expect("the simulator must catch votes released before persistence");
    assert!(v.contains("no-double-vote") || v.contains("agreement"), "seed {seed}: {v}");
}

#[test]
fn persisted_out_of_order_is_caught_after_crashes() {
    // The step contract: `Persisted { seq }` covers the writes up to `seq` only. A runtime that
    // took it for every write in flight releases votes whose safety data is still queued; a
    // crash then loses it and the restarted member signs again in the same round.
    let found = first_violation(Mutation::PersistedCoversAll, 3_000, |c| {
        c.faults.disk_latency_ms_max = 40;
        c.faults.crashes = 12;
    });
    let (seed, v) = found.expect("the simulator must catch writes acknowledged out of order");
    assert!(v.contains("no-double-vote") || v.contains("agreement"), "seed {seed}: {v}");
}

#[test]
fn ep1_broken_is_caught_by_liveness() {
    // Members vote for a block carrying a membership change no quorum endorsed: it commits but
    // cannot end the epoch, the leader proposes it again (committed twice), and every later
    // block of the epoch must stay empty (EP2), so nothing else commits.
    let found = first_violation(Mutation::Ep1AnyChange, 300, |c| {
        c.nodes = 4;
        c.byzantine_ids = vec![3];
        c.behaviors = vec![Behavior::Reconfigurer];
    });
    let (seed, v) = found.expect("the simulator must catch EP1 broken");
    assert!(
        ["committed-once", "liveness", "epoch-end"].iter().any(|i| v.contains(i)),
        "seed {seed}: {v}"
    );
}

#[test]
fn ep3_broken_is_caught() {
    // Suffix blocks commit with the reconfiguration block: the next epoch's genesis then
    // follows the reconfiguration block while the replica's chain already went past it, so its
    // commits no longer extend its chain and the replicas stop agreeing on what comes next.
    let found = first_violation(Mutation::Ep3NoCut, 1_000, |c| {
        if c.membership.is_empty() {
            c.membership = vec![warpnet_sim::config::Change {
                at_ms: 100,
                op: warpnet_sim::config::Op::Update(0),
            }];
        }
    });
    let (seed, v) = found.expect("the simulator must catch EP3 broken");
    assert!(
        ["agreement", "chain-growth", "epoch-agreement", "epoch-end", "core-invariant", "liveness"]
            .iter()
            .any(|i| v.contains(i)),
        "seed {seed}: {v}"
    );
}

#[test]
fn s4_restart_floor_broken_is_caught_as_honest_equivocation() {
    // A leader's proposal leaves before its own vote is durable (the floor was raised a round
    // ahead); a restarted leader that ignored its floor proposes again in that round.
    let found = first_violation(Mutation::S4IgnoreFloor, 3_000, |c| {
        c.faults.disk_latency_ms_max = 40;
        c.faults.crashes = 12;
    });
    let (seed, v) = found.expect("the simulator must catch S4's floor ignored");
    assert!(v.contains("no-double-vote"), "seed {seed}: {v}");
}

#[test]
fn lr2_off_is_caught_as_a_stopped_member_costing_rounds_again_and_again() {
    // Leaders rotate over every public member whatever health says: a member stopped at GST
    // keeps failing its rounds until the run ends.
    let found = first_violation(Mutation::LrOff, 50, |c| {
        c.nodes = 4;
        c.byzantine_ids.clear();
        c.behaviors.clear();
        c.membership.clear();
        c.spares = 0;
        c.handover_faults = false;
        c.liveness_payloads = 40;
        c.liveness_spread_ms = 3_000;
        c.late_fault = Some(warpnet_sim::config::LateFault::Stop(1));
    });
    let (seed, v) = found.expect("the simulator must catch LR2 switched off");
    assert!(v.contains("reputation-bound"), "seed {seed}: {v}");
}

#[test]
fn lr5_off_is_caught_as_a_stopped_member_chosen_again_before_its_failure_is_recorded() {
    // Leaders come from the health two blocks back alone: a member stopped at GST fails its
    // round, and the rotation (a new cycle may start with it) or a dead vote collector's
    // round brings it back before any health records the failure.
    let found = first_violation(Mutation::Lr5Off, 200, |c| {
        let stopped = c.seed as usize % 4;
        c.nodes = 4;
        calm(c);
        c.liveness_payloads = 40;
        c.liveness_spread_ms = 3_000;
        c.late_fault = Some(warpnet_sim::config::LateFault::Stop(stopped));
    });
    let (seed, v) = found.expect("the simulator must catch LR5 switched off");
    assert!(v.contains("reputation-bound"), "seed {seed}: {v}");
}

#[test]
fn health_records_unchecked_are_caught_when_a_leader_lies() {
    // Voters accept any late votes, blame and summary: a lying leader's records commit, and
    // the audit of every committed block against its ancestry finds them.
    let found = first_violation(Mutation::HealthUnchecked, 200, |c| {
        c.nodes = 4;
        c.byzantine_ids = vec![2];
        c.behaviors = vec![Behavior::HealthLiar];
    });
    let (seed, v) = found.expect("the simulator must catch unchecked health records");
    assert!(v.contains("health-records"), "seed {seed}: {v}");
}

#[test]
fn h3_window_without_committed_history_is_caught() {
    // A window that stops at the tree's root: replicas whose roots differ compute different
    // health, leaders and records for the same blocks.
    let found = first_violation(Mutation::H3TreeOnly, 200, |_| {});
    let (seed, v) = found.expect("the simulator must catch a window cut at the root");
    assert!(v.contains("health-agreement") || v.contains("health-records"), "seed {seed}: {v}");
}

#[test]
fn h2_one_attester_is_caught_when_a_byzantine_member_attests_everyone() {
    // One attester is enough: the Byzantine member's attestation of everyone makes a member
    // no one can dial verified public, and it leads while others could.
    let found = first_violation(Mutation::H2OneAttester, 100, |c| {
        c.nodes = 4;
        c.byzantine_ids = vec![3];
        c.behaviors = vec![Behavior::FalseAttester];
        c.undialable = vec![1];
        c.membership.clear();
        c.spares = 0;
        c.handover_faults = false;
    });
    let (seed, v) = found.expect("the simulator must catch H2 weakened");
    assert!(v.contains("reachability"), "seed {seed}: {v}");
}

/// M3 off: a command whose only share was lost, at a member that never leads, never commits.
#[test]
fn m3_broken_leaves_commands_stranded_at_a_member_that_never_leads() {
    let found = first_violation(Mutation::NoReshare, 24, |c| {
        let cut = c.seed as usize % c.nodes;
        calm(c);
        c.undialable = vec![cut];
        c.liveness_payloads = 40;
        c.liveness_spread_ms = 1_000;
        c.late_fault = Some(warpnet_sim::config::LateFault::Cut { replica: cut, for_ms: 1_500 });
    });
    let (seed, v) = found.expect("the simulator must catch M3 broken");
    assert!(v.contains("liveness"), "seed {seed}: {v}");
}
