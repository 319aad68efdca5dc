//! Twins (Bano et al., 2020): a member's key runs on two replicas, and scripted per-round
//! partitions decide which replicas hear which. An honest protocol must keep agreement among
//! the honest replicas whatever the schedule; a quorum of `2f + 1` at `n = 5` does not.

use warpnet_types::{QuorumRule, Round, SchemeId};

use crate::config::{sim_params, Faults, SimConfig};
use crate::rng::Rng;
use crate::world::{Report, World};

/// Which partition each replica is in, round by round. Replica indices are the member ids,
/// then the twin's second replica last.
#[derive(Clone, Debug)]
pub struct TwinsSchedule {
    /// The member whose key runs twice.
    pub twin: u16,
    /// `rounds[r - 1][replica]` is the group of `replica` for messages of round `r`.
    pub rounds: Vec<Vec<u8>>,
    /// After this time the network is whole again (GST).
    pub until_ms: u64,
}

impl TwinsSchedule {
    /// The groups for messages of `round` at time `now`, if partitioned.
    pub fn groups(&self, round: Round, now: u64) -> Option<&[u8]> {
        if now >= self.until_ms || round.0 == 0 {
            return None;
        }
        self.rounds.get(round.0 as usize - 1).map(Vec::as_slice)
    }
}

/// A Twins run: `n` members, `schedule`, the given quorum rule, real Ed25519.
pub fn run(
    seed: u64,
    n: usize,
    schedule: TwinsSchedule,
    quorum_rule: QuorumRule,
    check_liveness: bool,
) -> Report {
    let cfg = config(seed, n, &schedule, quorum_rule, check_liveness);
    World::new(cfg, Some(schedule)).run()
}

/// The configuration of a Twins run (no random faults: the schedule is the adversary).
pub fn config(
    seed: u64,
    n: usize,
    schedule: &TwinsSchedule,
    quorum_rule: QuorumRule,
    check_liveness: bool,
) -> SimConfig {
    let gst = schedule.until_ms;
    SimConfig {
        seed,
        nodes: n,
        behaviors: Vec::new(),
        byzantine_ids: Vec::new(),
        scheme: SchemeId::Ed25519,
        quorum_rule,
        faults: Faults {
            loss: 0.0,
            duplicate: 0.0,
            delay_ms_max: 5,
            delay_after_gst_ms_max: 5,
            partitions: false,
            crashes: 0,
            disk_latency_ms_max: 1,
            gst_ms: gst,
        },
        params: sim_params(),
        payloads: 8,
        liveness_payloads: if check_liveness { 2 } else { 0 },
        liveness_bound_ms: 60_000,
        liveness_spread_ms: 10,
        late_fault: None,
        undialable: Vec::new(),
        max_steps: 300_000,
        spares: 0,
        membership: Vec::new(),
        members_min: warpnet_types::config::MEMBERS_MIN_DEFAULT,
        handover_faults: false,
    }
}

/// The schedule that forks a `2f + 1` quorum at `n = 5`: member 4 is twinned; for the first
/// rounds, {0, 1, twin A} and {2, 3, twin B} cannot hear each other. Each side has three
/// replicas, a quorum under `2f + 1 = 3`: side B certifies rounds 2 and 3 (leaders 2, 3) and
/// commits; side A times out to round 4 (leader 4, twin A), certifies rounds 4 and 5 (leaders
/// 4, 0) and commits a different block at the same height. Under `n - f = 4` neither side can
/// form any certificate.
pub fn n5_fork_schedule() -> TwinsSchedule {
    let split = vec![0, 0, 1, 1, 0, 1]; // replicas 0..=4, then the twin's second replica (5)
    TwinsSchedule { twin: 4, rounds: vec![split; 12], until_ms: 4_000 }
}

/// A random Twins schedule: random twin, random two-way partitions for each of `rounds` rounds.
pub fn random_schedule(seed: u64, n: usize, rounds: usize) -> TwinsSchedule {
    let mut rng = Rng::new(seed ^ 0x7715_0000);
    let twin = rng.index(n) as u16;
    let schedule = (0..rounds)
        .map(|_| {
            if rng.chance(0.2) {
                vec![0; n + 1]
            } else {
                (0..=n).map(|_| rng.range(0, 1) as u8).collect()
            }
        })
        .collect();
    TwinsSchedule { twin, rounds: schedule, until_ms: rng.range(1_000, 4_000) }
}
