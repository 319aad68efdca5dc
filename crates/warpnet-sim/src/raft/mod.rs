//! Raft mode in the deterministic simulator: the Raft engine (`warpnet-raft`) under the same
//! seeded PRNG, virtual clock, network faults (loss, duplication, reordering, partitions) and
//! crashes that lose unflushed writes as HotStuff mode, with its own invariant checkers
//! (agreement, committed once, log growth, election safety, only public members lead,
//! linearizable reads, liveness after GST). Crash faults only: Raft does not tolerate
//! Byzantine members. Any run replays from its seed:
//! `warpnet-consensus sim --consensus raft --seed S`.

pub mod app;
pub mod config;
pub mod disk;
mod exec;
pub mod invariants;
pub mod report;
pub mod world;

pub use config::{RaftOverrides, RaftSimConfig};
pub use report::{RaftReport, RaftStats};
pub use world::RaftWorld;

/// Runs one seed.
pub fn run_seed(seed: u64, o: &RaftOverrides) -> RaftReport {
    RaftWorld::new(RaftSimConfig::random(seed, o)).run()
}

/// The command that replays one seed exactly.
pub fn replay_command(seed: u64, o: &RaftOverrides) -> String {
    let mut cmd = format!("cargo run --release -- sim --consensus raft --seed {seed}");
    if let Some(n) = o.nodes {
        cmd += &format!(" --nodes {n}");
    }
    if let Some(s) = o.steps {
        cmd += &format!(" --steps {s}");
    }
    if o.changes {
        cmd += " --changes";
    }
    cmd
}

/// Totals of many runs.
#[derive(Clone, Debug, Default)]
pub struct RaftSummary {
    pub runs: u64,
    pub applied_commands: u64,
    pub snapshots_installed: u64,
    pub membership_changes: u64,
    pub failed: Vec<RaftReport>,
}

/// Runs seeds `first..first + count` on `threads` threads; deterministic per seed.
pub fn run_many(first: u64, count: u64, o: &RaftOverrides, threads: usize) -> RaftSummary {
    let mut total = crate::events::sweep(
        first,
        count,
        threads,
        |seed| run_seed(seed, o),
        |sum: &mut RaftSummary, r: RaftReport| {
            sum.runs += 1;
            sum.applied_commands += r.stats.applied_commands;
            sum.snapshots_installed += r.stats.snapshots_installed;
            sum.membership_changes += r.stats.membership_changes;
            if !r.violations.is_empty() {
                sum.failed.push(r);
            }
        },
        |total, part| {
            total.runs += part.runs;
            total.applied_commands += part.applied_commands;
            total.snapshots_installed += part.snapshots_installed;
            total.membership_changes += part.membership_changes;
            total.failed.extend(part.failed);
        },
    );
    total.failed.sort_by_key(|r| r.seed);
    total
}
