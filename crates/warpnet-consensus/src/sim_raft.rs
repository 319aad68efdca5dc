//! `warpnet-consensus sim --consensus raft`: runs Raft-mode seeds, prints one summary line and
//! the replay command of every failing seed, and exits non-zero on any violation.

use std::time::Instant;

use warpnet_sim::raft::{replay_command, run_many, run_seed, RaftOverrides};

use crate::sim::{print_failures, seed_range, threads as sim_threads};

pub fn run(
    seeds: Option<u64>,
    seed: Option<u64>,
    nodes: Option<u64>,
    steps: Option<u64>,
    threads: Option<usize>,
    changes: bool,
    byzantine_options: bool,
) -> anyhow::Result<()> {
    if byzantine_options {
        anyhow::bail!("--byzantine and --ed25519 do not apply to Raft mode (crash faults only)");
    }
    let o = RaftOverrides { nodes: nodes.map(|n| n as usize), steps, changes };
    let started = Instant::now();
    let (first, count) = seed_range(seeds, seed);
    if count == 1 {
        let r = run_seed(first, &o);
        println!(
            "seed {}: raft, {} founders ({} public), {} spares, applied index {}, {} commands applied, {} terms with a leader, {} steps, {} ms virtual, {} messages ({} dropped), {} refused, {} crashes, {} compactions, {} snapshots installed, {} membership changes, reads {} served / {} failed",
            r.seed,
            r.nodes,
            r.publics,
            r.spares,
            r.applied_index,
            r.stats.applied_commands,
            r.terms_with_leader,
            r.stats.steps,
            r.virtual_ms,
            r.stats.messages_sent,
            r.stats.messages_dropped,
            r.stats.refused,
            r.stats.crashes,
            r.stats.compactions,
            r.stats.snapshots_installed,
            r.stats.membership_changes,
            r.reads_served,
            r.reads_failed,
        );
        for (i, s) in r.statuses.iter().enumerate() {
            println!("  replica {i}: {s:?}");
        }
    }
    let summary = run_many(first, count, &o, sim_threads(threads));
    let failed = summary.failed.iter().map(|r| (r.seed, &r.violations[..]));
    let violations = print_failures(failed, |seed| replay_command(seed, &o));
    println!(
        "sim raft: runs={} applied_commands={} snapshots_installed={} membership_changes={} violations={} failed_seeds={} elapsed={:.1}s",
        summary.runs,
        summary.applied_commands,
        summary.snapshots_installed,
        summary.membership_changes,
        violations,
        summary.failed.len(),
        started.elapsed().as_secs_f64()
    );
    if violations > 0 {
        std::process::exit(1);
    }
    Ok(())
}
