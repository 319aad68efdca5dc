//! Invariant checkers, one per file, fed by the world as events happen. Only honest replicas
//! are held to them (twins and Byzantine replicas are the adversary).

mod acknowledged;
mod agreement;
mod chain_growth;
mod committed_once;
mod fairness;
mod health_agreement;
mod liveness;
mod no_double_vote;
pub mod reachability;
mod reputation;

pub use acknowledged::{Acknowledged, AnswerPoint};
pub use agreement::Agreement;
pub use chain_growth::ChainGrowth;
pub use committed_once::CommittedOnce;
pub use fairness::Fairness;
pub use health_agreement::HealthAgreement;
pub use liveness::Liveness;
pub use no_double_vote::NoDoubleVote;
pub use reputation::{ReputationBound, FAILED_ROUNDS_MAX, FAILED_ROUNDS_MAX_BYZANTINE};

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub at_ms: u64,
    pub detail: String,
}

impl Violation {
    /// A run that used its whole step budget before its liveness check completed.
    pub fn step_budget(max_steps: u64, at_ms: u64) -> Self {
        Self {
            invariant: "step-budget",
            at_ms,
            detail: format!("step budget of {max_steps} exhausted before liveness completed"),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] at {} ms: {}", self.invariant, self.at_ms, self.detail)
    }
}

/// All checkers together.
#[derive(Default)]
pub struct Invariants {
    pub acknowledged: Acknowledged,
    pub agreement: Agreement,
    pub chain_growth: ChainGrowth,
    pub committed_once: CommittedOnce,
    pub health_agreement: HealthAgreement,
    pub fairness: Fairness,
    pub reputation: ReputationBound,
    pub no_double_vote: NoDoubleVote,
    pub liveness: Liveness,
    pub violations: Vec<Violation>,
}

impl Invariants {
    pub fn record(&mut self, v: Option<Violation>) {
        if let Some(v) = v {
            if self.violations.len() < 32 {
                self.violations.push(v);
            }
        }
    }
}
