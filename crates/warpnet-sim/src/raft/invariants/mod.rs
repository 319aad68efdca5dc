//! Raft-mode invariant checkers, one per file, fed by the Raft world as events happen.

pub mod acknowledged;
mod agreement;
mod applied_once;
mod election_safety;
mod liveness;
mod log_growth;
mod public_leader;
mod reads;

pub use agreement::Agreement;
pub use applied_once::AppliedOnce;
pub use election_safety::ElectionSafety;
pub use liveness::Liveness;
pub use log_growth::LogGrowth;
pub use public_leader::PublicLeader;
pub use reads::LinearizableReads;

pub use crate::invariants::Violation;

/// All checkers together.
#[derive(Default)]
pub struct RaftInvariants {
    pub agreement: Agreement,
    pub applied_once: AppliedOnce,
    pub election_safety: ElectionSafety,
    pub log_growth: LogGrowth,
    pub public_leader: PublicLeader,
    pub reads: LinearizableReads,
    pub liveness: Liveness,
    pub violations: Vec<Violation>,
}

impl RaftInvariants {
    pub fn record(&mut self, v: Option<Violation>) {
        if let Some(v) = v {
            if self.violations.len() < 32 {
                self.violations.push(v);
            }
        }
    }
}
