//! What one simulated run looks like: committee, adversaries, faults, workload, limits.

use warpnet_core::CoreParams;
use warpnet_types::{QuorumRule, SchemeId};

use crate::rng::Rng;

/// What a Byzantine replica does (it runs the honest core underneath to know the protocol
/// state, and distorts or adds to what it sends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behavior {
    /// Sends nothing.
    Silent,
    /// As leader, sends two different proposals for its round to two halves of the committee.
    EquivocatingProposer,
    /// Every vote is followed by a second vote, for another block, in the same round.
    DoubleVoter,
    /// Every signature it sends is corrupted.
    InvalidSignatures,
    /// Votes for every proposal it sees, ignoring the safety rules (votes on conflicting forks).
    ConflictingVoter,
    /// Re-sends old messages, its own and others', to random members.
    Replayer,
    /// Floods signed votes, timeouts and proposals for rounds far in the future.
    FutureFlooder,
    /// Sends garbage, truncated, wrongly versioned, over-long and oversized frames.
    Malformed,
    /// Sends its votes and timeouts only to some members.
    Withholder,
    /// Signs messages as another member (with its own key).
    Impersonator,
    /// Proposes in rounds it does not lead.
    RogueProposer,
    /// Sends QCs and TCs whose bitmaps and signatures disagree.
    Forger,
    /// As leader, oversteps the proposal limits: a timestamp an hour ahead (P7) or a payload
    /// over the configured limits (P4), validly signed.
    Overstepper,
    /// As leader, proposes membership changes it cannot justify (EP1): one removal endorsed by
    /// itself alone, or two of them in one block.
    Reconfigurer,
    /// As leader, leaves out of its blocks every late vote it received (H1): honest members'
    /// votes are recorded only by the QCs and late votes of other leaders.
    VoteDropper,
    /// As leader, writes false health records: blames a member that did not fail, records a
    /// late vote with a forged signature, or a summary that is not its ancestry's (H1, LR2, H4).
    HealthLiar,
    /// Attests that it reached every member, reachable or not (H2).
    FalseAttester,
}

impl Behavior {
    pub const ALL: [Behavior; 17] = [
        Behavior::Silent,
        Behavior::EquivocatingProposer,
        Behavior::DoubleVoter,
        Behavior::InvalidSignatures,
        Behavior::ConflictingVoter,
        Behavior::Replayer,
        Behavior::FutureFlooder,
        Behavior::Malformed,
        Behavior::Withholder,
        Behavior::Impersonator,
        Behavior::RogueProposer,
        Behavior::Forger,
        Behavior::Overstepper,
        Behavior::Reconfigurer,
        Behavior::VoteDropper,
        Behavior::HealthLiar,
        Behavior::FalseAttester,
    ];
}

/// Network, disk and crash faults before the global stabilization time (GST). After GST the
/// network delivers every message within `delay_after_gst_ms_max`, partitions are healed and
/// every crashed replica has restarted.
#[derive(Clone, Debug)]
pub struct Faults {
    pub loss: f64,
    pub duplicate: f64,
    pub delay_ms_max: u64,
    pub delay_after_gst_ms_max: u64,
    pub partitions: bool,
    pub crashes: usize,
    pub disk_latency_ms_max: u64,
    pub gst_ms: u64,
}

/// A committee change, by replica index (spares come after the first committee).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add(usize),
    Remove(usize),
    /// The member changes its own address (its key stays): an epoch change with the same
    /// members.
    Update(usize),
}

/// A committee change and when its operators first try it. Changes are tried in order, each
/// retried in later epochs until it takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub at_ms: u64,
    pub op: Op,
}

/// A fault that starts at GST and lasts into the liveness phase, for leader reputation's
/// scenarios (LR2): the committee must keep committing, stop giving the member rounds to lead
/// after a bounded number of failures, and take it back once it votes again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LateFault {
    /// The replica stops for good at GST (killed, or stopped with SIGSTOP: it never sends
    /// again).
    Stop(usize),
    /// Every message to and from the replica is dropped from GST for `for_ms` (a silent
    /// partition: no connection is reset, no member is told), then the links heal.
    Cut { replica: usize, for_ms: u64 },
}

impl LateFault {
    pub fn replica(self) -> usize {
        match self {
            LateFault::Stop(r) | LateFault::Cut { replica: r, .. } => r,
        }
    }
}

/// One run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: usize,
    /// Behaviors of the Byzantine replicas, whose ids are `byzantine_ids` (drawn from the seed).
    pub behaviors: Vec<Behavior>,
    pub byzantine_ids: Vec<u16>,
    pub scheme: SchemeId,
    pub quorum_rule: QuorumRule,
    pub faults: Faults,
    pub params: CoreParams,
    /// Client commands submitted before GST.
    pub payloads: usize,
    /// Client commands submitted after GST, each of which every honest replica must commit
    /// within `liveness_bound_ms` of GST.
    pub liveness_payloads: usize,
    pub liveness_bound_ms: u64,
    /// The liveness commands are submitted evenly over this long after GST.
    pub liveness_spread_ms: u64,
    /// A fault from GST on (leader reputation's scenarios); `None` in random runs.
    pub late_fault: Option<LateFault>,
    /// Replicas no one can dial at their advertised address (behind a NAT, a wrong address):
    /// they dial out and take part, but are never attested reachable (H2).
    pub undialable: Vec<usize>,
    pub max_steps: u64,
    /// Replicas outside the first committee, following the chain until admitted.
    pub spares: usize,
    /// Committee changes (EP1–EP5), in order.
    pub membership: Vec<Change>,
    /// The first committee's floor for removals.
    pub members_min: usize,
    /// Faults around epoch changes: a member leaving the committee stops for good as soon as
    /// it has switched (it may be the last to hold the proof of the epoch's end), and the first
    /// leader of each new epoch crashes as the epoch begins.
    pub handover_faults: bool,
}

/// Choices a caller can pin; everything else is drawn from the seed.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub nodes: Option<usize>,
    pub byzantine: Option<usize>,
    pub steps: Option<u64>,
    pub scheme: Option<SchemeId>,
    pub behavior: Option<Behavior>,
    /// `Some(true)`: always draw committee changes; `Some(false)`: never.
    pub changes: Option<bool>,
}

/// Core parameters used in simulation: short timeouts, so runs cover many rounds.
pub fn sim_params() -> CoreParams {
    CoreParams {
        round_timeout_base_ms: 100,
        round_timeout_max_ms: 1_600,
        // PM7 well below the base, so the simulator tells the two apart.
        unreachable_leader_timeout_ms: 20,
        idle_propose_delay_ms: 20,
        future_rounds_max: 100,
        payload_count_max: 64,
        payload_bytes_max: 64 << 10,
        command_bytes_max: 1 << 10,
        mempool_max: 10_000,
        sync_blocks_max: 16,
        pending_proposals_max: 8,
        evidence_max: 64,
        // M3: a few round timeouts.
        reshare_after_ms: 400,
        ..CoreParams::default()
    }
}

impl SimConfig {
    /// A run drawn from `seed`, with `o` pinning what it names.
    pub fn random(seed: u64, o: &Overrides) -> Self {
        let mut rng = Rng::new(seed ^ 0x5EED_C0F1_6000_0000);
        let nodes = o.nodes.unwrap_or_else(|| [4, 4, 4, 5, 5, 6, 7, 7, 8, 10][rng.index(10)]);
        let f = warpnet_types::config::faulty_nodes(nodes);
        let byz = o.byzantine.unwrap_or_else(|| rng.range(0, f as u64) as usize).min(f);
        let mut ids: Vec<u16> = (0..nodes as u16).collect();
        let mut byzantine_ids = Vec::new();
        for _ in 0..byz {
            byzantine_ids.push(ids.remove(rng.index(ids.len())));
        }
        byzantine_ids.sort_unstable();
        let behaviors = (0..byz)
            .map(|_| o.behavior.unwrap_or(Behavior::ALL[rng.index(Behavior::ALL.len())]))
            .collect();
        let faulty_net = rng.chance(0.7);
        let faults = Faults {
            loss: if faulty_net { [0.0, 0.01, 0.05, 0.2][rng.index(4)] } else { 0.0 },
            duplicate: if faulty_net { [0.0, 0.02, 0.1][rng.index(3)] } else { 0.0 },
            delay_ms_max: [2, 10, 50, 200][rng.index(4)],
            delay_after_gst_ms_max: 10,
            partitions: faulty_net && rng.chance(0.5),
            crashes: if rng.chance(0.5) { rng.range(1, 4) as usize } else { 0 },
            disk_latency_ms_max: rng.range(0, 3),
            gst_ms: rng.range(500, 4_000),
        };
        let (spares, membership) = if o.changes.unwrap_or_else(|| rng.chance(0.35)) {
            changes(&mut rng, nodes, &byzantine_ids, faults.gst_ms)
        } else {
            (0, Vec::new())
        };
        Self {
            seed,
            nodes,
            behaviors,
            byzantine_ids,
            scheme: o.scheme.unwrap_or(warpnet_types::SchemeId::InsecureSimulation),
            quorum_rule: QuorumRule::NMinusF,
            faults,
            params: sim_params(),
            payloads: rng.range(0, 40) as usize,
            liveness_payloads: 4,
            liveness_bound_ms: 60_000,
            liveness_spread_ms: 20,
            late_fault: None,
            undialable: Vec::new(),
            max_steps: o.steps.unwrap_or(400_000),
            spares,
            membership,
            members_min: warpnet_types::config::MEMBERS_MIN_DEFAULT,
            handover_faults: false,
        }
        .with_handover_faults_if_tolerated(rng.chance(0.2))
        .with_undialable(&mut rng)
    }

    /// H2: one member no one can dial in a fifth of the runs, every member in one in twenty
    /// (then no member is verified public: LR1's fallback).
    fn with_undialable(mut self, rng: &mut Rng) -> Self {
        let draw = rng.range(0, 99);
        self.undialable = match draw {
            0..=4 => (0..self.nodes).collect(),
            5..=24 => vec![rng.index(self.nodes)],
            _ => Vec::new(),
        };
        self
    }

    /// The smallest committee the changes leave on the way (the first included).
    pub fn smallest_committee(&self) -> usize {
        let mut n = self.nodes;
        let mut smallest = n;
        for c in &self.membership {
            match c.op {
                Op::Add(_) => n += 1,
                Op::Remove(_) => n -= 1,
                Op::Update(_) => {}
            }
            smallest = smallest.min(n);
        }
        smallest
    }

    /// Turns on `handover_faults` if asked and the committees tolerate them: a member leaving
    /// for good is a crash in the epoch it leaves, on top of the Byzantine members, so it needs
    /// room for one more fault in every committee on the way.
    pub fn with_handover_faults_if_tolerated(mut self, wanted: bool) -> Self {
        let f = warpnet_types::config::faulty_nodes(self.smallest_committee());
        self.handover_faults = wanted && self.byzantine_ids.len() < f;
        self
    }
}

/// Up to three committee changes before GST, admitting up to two spares and removing members,
/// such that every committee on the way keeps at least the floor of members and at most `f` of
/// them Byzantine.
fn changes(rng: &mut Rng, nodes: usize, byzantine: &[u16], gst_ms: u64) -> (usize, Vec<Change>) {
    let spares = rng.range(0, 2) as usize;
    let mut members: Vec<usize> = (0..nodes).collect();
    let mut unused: Vec<usize> = (nodes..nodes + spares).collect();
    let mut out = Vec::new();
    let byz = |m: &[usize]| m.iter().filter(|&&i| byzantine.contains(&(i as u16))).count();
    // Times in the order the changes were drawn: each was checked against the committee the
    // ones before it leave.
    let count = rng.range(1, 3) as usize;
    let mut times: Vec<u64> = (0..count).map(|_| rng.range(0, gst_ms)).collect();
    times.sort_unstable();
    for at_ms in times {
        if rng.chance(0.15) {
            let idx = members[rng.index(members.len())];
            out.push(Change { at_ms, op: Op::Update(idx) });
            continue;
        }
        let add = !unused.is_empty() && rng.chance(0.5);
        if add {
            let idx = unused.remove(rng.index(unused.len()));
            members.push(idx);
            out.push(Change { at_ms, op: Op::Add(idx) });
            continue;
        }
        let candidates: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| {
                let left: Vec<usize> = members.iter().copied().filter(|&m| m != i).collect();
                left.len() >= warpnet_types::config::MEMBERS_MIN_DEFAULT
                    && byz(&left) <= warpnet_types::config::faulty_nodes(left.len())
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let idx = candidates[rng.index(candidates.len())];
        members.retain(|&m| m != idx);
        out.push(Change { at_ms, op: Op::Remove(idx) });
    }
    (spares, out)
}
