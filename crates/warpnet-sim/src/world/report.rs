//! What a run reports.

use warpnet_types::{Height, NodeId};

use super::Role;
use crate::config::Behavior;
use crate::invariants::Violation;

/// Counters of one run.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub steps: u64,
    pub messages_sent: u64,
    pub messages_dropped: u64,
    pub malformed_frames: u64,
    pub rejected: u64,
    /// Rejections by kind (`Rejection::kind`), received by honest replicas.
    pub rejected_by_kind: std::collections::BTreeMap<&'static str, u64>,
    pub evidence: u64,
    pub crashes: u64,
    pub commits: u64,
    /// Epochs that ended (committee changes that took effect).
    pub epochs: u64,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub nodes: usize,
    pub byzantine: Vec<(NodeId, Behavior)>,
    pub committed_height: Height,
    pub virtual_ms: u64,
    pub stats: Stats,
    pub violations: Vec<Violation>,
    /// Each replica's role and final core status (None if down), for diagnosis.
    /// The latest committee an honest replica reached, as replica indices (a twin's member
    /// counts once, by its first replica).
    pub committee: Vec<usize>,
    /// Replicas are named by their index in the first committee (`None`: a spare).
    pub replicas: Vec<(Option<NodeId>, Role, Option<warpnet_core::Status>)>,
}
