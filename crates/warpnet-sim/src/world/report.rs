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
    /// Leader reputation under the late fault (see `invariants::ReputationBound`): failed
    /// rounds the chain blamed on the faulty member and in all, in the blocks committed after
    /// the fault began, how many blocks, and after how many of them it was eligible to lead.
    pub late_fault_failed_rounds: u32,
    pub late_fault_all_failed_rounds: u32,
    pub late_fault_blocks: u32,
    pub late_fault_led_after: u32,
    /// The longest run of committed blocks an honest member was kept from leading after GST.
    pub longest_skip: usize,
    /// Blocks committed after GST (and catching up), those whose health was in LR1's fallback
    /// (no fit verified-public member), and those proposed by a member no one can dial.
    pub settled_blocks: usize,
    pub fallback_blocks: usize,
    pub undialable_led: usize,
    /// Committed blocks whose health every honest replica that computed it agreed on.
    pub health_checked_blocks: usize,
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
