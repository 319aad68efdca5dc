//! What one simulated Raft run looks like: committee (who is public), spare members that join,
//! faults, workload, compaction, limits. Drawn from the seed.

use warpnet_raft::RaftParams;

use crate::config::Faults;
use crate::rng::Rng;

/// One Raft run.
#[derive(Clone, Debug)]
pub struct RaftSimConfig {
    pub seed: u64,
    /// Founding voters; `publics[i]` says whether member i is public (at least one is).
    pub publics: Vec<bool>,
    /// Members that start empty and may be added (ids after the founders; each public or not).
    pub spares: Vec<bool>,
    pub faults: Faults,
    pub params: RaftParams,
    /// Virtual milliseconds per engine tick.
    pub tick_ms: u64,
    /// Client commands before GST.
    pub payloads: usize,
    /// Client commands after GST that every voter must apply within `liveness_bound_ms`.
    pub liveness_payloads: usize,
    pub liveness_bound_ms: u64,
    /// Linearizable reads issued before and after GST.
    pub reads: usize,
    /// AddVoter / RemoveServer attempts before GST.
    pub membership_changes: usize,
    /// A replica compacts when it has applied this many entries past its snapshot.
    pub compact_every: u64,
    pub max_steps: u64,
    /// RF13 broken, for the mutation test only: clients count a command answered once a
    /// replica appends it to its log, before it is committed.
    pub answer_at_append: bool,
}

/// Choices a caller can pin; everything else is drawn from the seed.
#[derive(Clone, Debug, Default)]
pub struct RaftOverrides {
    pub nodes: Option<usize>,
    pub steps: Option<u64>,
    /// Voter changes in every run: 2-3 spare members and 10-40 AddVoter / RemoveServer
    /// attempts under the run's crashes and partitions.
    pub changes: bool,
}

/// Engine parameters in simulation: 10 ms ticks, so an election timeout is 100-200 ms.
pub fn sim_raft_params() -> RaftParams {
    RaftParams {
        election_ticks: 10,
        heartbeat_ticks: 1,
        message_bytes_max: 64 << 10,
        inflight_messages_max: 64,
        read_timeout_ticks: 30,
        ..RaftParams::default()
    }
}

impl RaftSimConfig {
    pub fn random(seed: u64, o: &RaftOverrides) -> Self {
        let mut rng = Rng::new(seed ^ 0x4AF7_0000_5EED_0000);
        let nodes = o.nodes.unwrap_or_else(|| [3, 3, 3, 5, 5, 1, 2, 4, 7][rng.index(9)]);
        let mut publics: Vec<bool> = (0..nodes).map(|_| rng.chance(0.6)).collect();
        if !publics.contains(&true) {
            let i = rng.index(nodes);
            publics[i] = true;
        }
        let spares = (0..rng.range(0, 2)).map(|_| rng.chance(0.5)).collect();
        let faulty_net = rng.chance(0.7);
        let faults = Faults {
            loss: if faulty_net { [0.0, 0.01, 0.05, 0.2][rng.index(4)] } else { 0.0 },
            duplicate: if faulty_net { [0.0, 0.02, 0.1][rng.index(3)] } else { 0.0 },
            delay_ms_max: [2, 10, 50, 200][rng.index(4)],
            delay_after_gst_ms_max: 10,
            partitions: faulty_net && rng.chance(0.5),
            crashes: if rng.chance(0.6) { rng.range(1, 5) as usize } else { 0 },
            disk_latency_ms_max: rng.range(0, 5),
            gst_ms: rng.range(500, 4_000),
        };
        let mut cfg = Self {
            seed,
            publics,
            spares,
            faults,
            params: sim_raft_params(),
            tick_ms: 10,
            payloads: rng.range(0, 60) as usize,
            liveness_payloads: 4,
            liveness_bound_ms: 60_000,
            reads: rng.range(0, 12) as usize,
            membership_changes: rng.range(0, 4) as usize,
            compact_every: [8, 16, 64][rng.index(3)],
            max_steps: o.steps.unwrap_or(400_000),
            answer_at_append: false,
        };
        if o.changes {
            cfg.spares = (0..rng.range(2, 3)).map(|_| rng.chance(0.6)).collect();
            cfg.membership_changes = rng.range(10, 40) as usize;
        }
        cfg
    }

    pub fn members(&self) -> usize {
        self.publics.len() + self.spares.len()
    }

    pub fn is_public(&self, i: usize) -> bool {
        self.publics.iter().chain(&self.spares).nth(i).copied().unwrap_or(false)
    }
}
