//! What a Raft run reports.

use warpnet_raft::RaftStatus;

use super::invariants::Violation;

#[derive(Clone, Debug, Default)]
pub struct RaftStats {
    pub steps: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    pub malformed: u64,
    /// Inputs the engine refused (no leader, a pending membership change, ...).
    pub refused: u64,
    pub crashes: u64,
    pub applied_commands: u64,
    pub compactions: u64,
    pub snapshots_installed: u64,
    pub membership_changes: u64,
}

#[derive(Clone, Debug)]
pub struct RaftReport {
    pub seed: u64,
    pub nodes: usize,
    pub publics: usize,
    pub spares: usize,
    /// Highest log index any replica applied.
    pub applied_index: u64,
    pub virtual_ms: u64,
    pub terms_with_leader: usize,
    pub reads_served: u64,
    pub reads_failed: u64,
    pub stats: RaftStats,
    /// Each replica's final status (None if down).
    pub statuses: Vec<Option<RaftStatus>>,
    pub violations: Vec<Violation>,
}
