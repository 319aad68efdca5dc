//! HA1: a command is answered once its block's commit is in a step and it is applied in
//! memory, not before. The `acknowledged-lost` checker holds every answer to the block it came
//! from; these tests show it holds at the node's answer point through crashes that lose
//! unflushed writes, and fires when the answer moves one chain link earlier.

use warpnet_sim::config::{Overrides, SimConfig};
use warpnet_sim::invariants::AnswerPoint;
use warpnet_sim::World;

fn run(seed: u64, point: AnswerPoint) -> Vec<String> {
    let mut cfg = SimConfig::random(seed, &Overrides::default());
    // Slow disks and crashes: a crash loses the commit's registry write HA1 answered before.
    cfg.faults.disk_latency_ms_max = 40;
    cfg.faults.crashes = 6;
    World::new(cfg, None)
        .answering_at(point)
        .run()
        .violations
        .iter()
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn ha1_answers_at_commit_survive_crashes_that_lose_unflushed_writes() {
    for seed in 0..150 {
        let v = run(seed, AnswerPoint::Commit);
        assert!(v.is_empty(), "seed {seed}: {v:?}");
    }
}

#[test]
fn ha1_broken_answering_at_a_certificate_is_caught() {
    let found = (0..1_500).find_map(|seed| {
        let v = run(seed, AnswerPoint::Certificate);
        (!v.is_empty()).then_some((seed, v))
    });
    let (seed, v) = found.expect("the simulator must catch answers before the commit is certain");
    eprintln!("seed {seed}: {v:?}");
    assert!(v.iter().any(|v| v.contains("acknowledged-lost")), "seed {seed}: {v:?}");
}
