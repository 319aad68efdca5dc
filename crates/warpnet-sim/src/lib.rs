//! Deterministic simulator of WarpNet Consensus.
//!
//! Seeded randomness and virtual time; 4 to 64 replicas; message delay, loss, duplication and
//! reordering; partitions that heal at the global stabilization time (GST); crashes that lose
//! every write not yet durable, and restarts from disk; Byzantine replicas (up to f) with the
//! behaviors of [`Behavior`]; Twins. Invariant checkers (one per file in `invariants/`) watch
//! every run: a safety phase with faults until GST, then a liveness phase without them.
//!
//! Any failing run replays exactly from its seed: `warpnet-consensus sim --seed S`.

#![forbid(unsafe_code)]

pub mod byzantine;
pub mod config;
pub mod events;
pub mod invariants;
pub mod raft;
pub mod rng;
pub mod storage;
pub mod twins;
pub mod world;

pub use config::{Behavior, Overrides, SimConfig};
pub use invariants::Violation;
pub use world::{Report, Stats, World};

/// Runs the seed with the given overrides.
pub fn run_seed(seed: u64, overrides: &Overrides) -> Report {
    World::new(SimConfig::random(seed, overrides), None).run()
}

/// The command that replays one seed exactly.
pub fn replay_command(seed: u64, o: &Overrides) -> String {
    let mut cmd = format!("cargo run --release -- sim --seed {seed}");
    if let Some(n) = o.nodes {
        cmd += &format!(" --nodes {n}");
    }
    if let Some(b) = o.byzantine {
        cmd += &format!(" --byzantine {b}");
    }
    if let Some(s) = o.steps {
        cmd += &format!(" --steps {s}");
    }
    if o.scheme == Some(warpnet_types::SchemeId::Ed25519) {
        cmd += " --ed25519";
    }
    if o.changes == Some(true) {
        cmd += " --changes";
    }
    cmd
}

/// Totals of many runs.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub runs: u64,
    pub commits: u64,
    /// Committee changes that took effect (epochs ended).
    pub epochs: u64,
    pub failed: Vec<Report>,
}

/// Runs seeds `first..first + count` on `threads` threads; deterministic per seed.
pub fn run_many(first: u64, count: u64, overrides: &Overrides, threads: usize) -> Summary {
    let mut total = events::sweep(
        first,
        count,
        threads,
        |seed| run_seed(seed, overrides),
        |sum: &mut Summary, r: Report| {
            sum.runs += 1;
            sum.commits += r.stats.commits;
            sum.epochs += r.stats.epochs;
            if !r.violations.is_empty() {
                sum.failed.push(r);
            }
        },
        |total, part| {
            total.runs += part.runs;
            total.commits += part.commits;
            total.epochs += part.epochs;
            total.failed.extend(part.failed);
        },
    );
    total.failed.sort_by_key(|r| r.seed);
    total
}
