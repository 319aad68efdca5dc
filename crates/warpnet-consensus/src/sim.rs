//! `warpnet-consensus sim`: runs seeds, prints one summary line and the replay command of every
//! failing seed, and exits non-zero on any violation.

use std::time::Instant;

use clap::Args;
use warpnet_sim::{replay_command, run_many, run_seed, Overrides, Violation};
use warpnet_types::SchemeId;

#[derive(Args, Debug)]
pub struct SimArgs {
    /// How many seeds to run (from --seed, default 0). Without --seeds, --seed runs one seed.
    #[arg(long)]
    seeds: Option<u64>,
    /// The first seed (or the only one, without --seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Committee size (4 to 64; Raft: 1 to 64); drawn from the seed if absent.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    nodes: Option<u64>,
    /// Byzantine replicas (at most f); drawn from the seed if absent.
    #[arg(long)]
    byzantine: Option<usize>,
    /// Step budget per run (events processed).
    #[arg(long)]
    steps: Option<u64>,
    /// Sign with real Ed25519 instead of the simulator's cheap scheme.
    #[arg(long)]
    ed25519: bool,
    /// Draw committee changes (admissions, removals, updates: epochs) in every run, not in
    /// about a third of them. Raft mode: 2-3 spares and 10-40 voter changes in every run.
    #[arg(long)]
    changes: bool,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Which engine to simulate: `hotstuff` (default) or `raft` (crash faults only; 1 to 64
    /// founding members, `--byzantine` and `--ed25519` do not apply).
    #[arg(long, value_enum, default_value_t = Consensus::Hotstuff)]
    consensus: Consensus,
}

pub use crate::node::Consensus;

pub fn run(args: SimArgs) -> anyhow::Result<()> {
    if args.consensus == Consensus::Raft {
        return crate::sim_raft::run(
            args.seeds,
            args.seed,
            args.nodes,
            args.steps,
            args.threads,
            args.changes,
            args.byzantine.is_some() || args.ed25519,
        );
    }
    let overrides = Overrides {
        nodes: args.nodes.map(|n| n as usize),
        byzantine: args.byzantine,
        steps: args.steps,
        scheme: args.ed25519.then_some(SchemeId::Ed25519),
        behavior: None,
        changes: args.changes.then_some(true),
    };
    if let Some(n) = overrides.nodes.filter(|&n| n < 4) {
        anyhow::bail!("--nodes {n}: a HotStuff committee has at least 4 members");
    }
    if let Some(n) = overrides.nodes {
        let f = warpnet_types::config::faulty_nodes(n);
        if args.byzantine.is_some_and(|b| b > f) {
            anyhow::bail!(
                "--byzantine {} exceeds f = {f} for {n} nodes",
                args.byzantine.unwrap_or(0)
            );
        }
    }
    let started = Instant::now();
    let (first, count) = seed_range(args.seeds, args.seed);
    if count == 1 {
        let r = run_seed(first, &overrides);
        println!(
            "seed {}: {} nodes, byzantine {:?}, committed height {}, {} commits, {} steps, {} ms virtual, {} messages ({} dropped, {} malformed), {} rejected, {} evidence, {} crashes, {} epochs",
            r.seed,
            r.nodes,
            r.byzantine,
            r.committed_height,
            r.stats.commits,
            r.stats.steps,
            r.virtual_ms,
            r.stats.messages_sent,
            r.stats.messages_dropped,
            r.stats.malformed_frames,
            r.stats.rejected,
            r.stats.evidence,
            r.stats.crashes,
            r.stats.epochs
        );
        for (i, (node, role, status)) in r.replicas.iter().enumerate() {
            let name = node.map_or_else(|| format!("spare {i}"), |n| n.to_string());
            println!("  replica {name} {role:?}: {status:?}");
        }
    }
    let summary = run_many(first, count, &overrides, threads(args.threads));
    let failed = summary.failed.iter().map(|r| (r.seed, &r.violations[..]));
    let violations = print_failures(failed, |seed| replay_command(seed, &overrides));
    println!(
        "sim: runs={} commits={} epochs={} violations={} failed_seeds={} elapsed={:.1}s",
        summary.runs,
        summary.commits,
        summary.epochs,
        violations,
        summary.failed.len(),
        started.elapsed().as_secs_f64()
    );
    if violations > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// The seeds `--seeds N [--seed S]` names (`S..S + N`), or the one `--seed S`: (first, count).
pub fn seed_range(seeds: Option<u64>, seed: Option<u64>) -> (u64, u64) {
    match (seeds, seed) {
        (Some(n), s) => (s.unwrap_or(0), n),
        (None, Some(s)) => (s, 1),
        (None, None) => (0, 1),
    }
}

/// `--threads`, or one per CPU.
pub fn threads(asked: Option<usize>) -> usize {
    asked.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Prints each violation of the failed seeds, each seed's replay command after them, and
/// returns how many violations there were.
pub fn print_failures<'a>(
    failed: impl Iterator<Item = (u64, &'a [Violation])>,
    replay: impl Fn(u64) -> String,
) -> usize {
    let mut count = 0;
    for (seed, violations) in failed {
        for v in violations {
            println!("seed {seed} VIOLATION {v}");
        }
        count += violations.len();
        println!("  replay: {}", replay(seed));
    }
    count
}
