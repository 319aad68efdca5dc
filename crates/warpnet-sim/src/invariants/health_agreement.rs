//! Health agreement (H3): every honest replica computes the same health, the same members
//! eligible to lead and the same summary, from the same committed block, whatever it saw
//! locally, whenever it restarted, and whichever way it reached the block (proposals, sync,
//! epoch proofs).

use std::collections::HashMap;
use std::sync::Arc;

use warpnet_core::health::Health;
use warpnet_types::BlockId;

use super::Violation;

#[derive(Default)]
pub struct HealthAgreement {
    /// The first health computed from each committed block, and by which replica.
    by_block: HashMap<BlockId, (Arc<Health>, usize)>,
}

impl HealthAgreement {
    pub fn on_commit(
        &mut self,
        replica: usize,
        block: BlockId,
        health: Arc<Health>,
        now: u64,
    ) -> Option<Violation> {
        let (first, by) = self.by_block.entry(block).or_insert((health.clone(), replica));
        (**first != *health).then(|| Violation {
            invariant: "health-agreement",
            at_ms: now,
            detail: format!(
                "block {block}: replica {by} computed {:?} leading {:?}, replica {replica} {:?} leading {:?}",
                first.summary, first.eligible, health.summary, health.eligible
            ),
        })
    }

    /// Committed blocks whose health was compared.
    pub fn blocks(&self) -> usize {
        self.by_block.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::{ConsensusConfig, Digest, Height, SchemeId};

    #[test]
    fn catches_two_healths_for_one_block() {
        let (c, _) = ConsensusConfig::for_testing(4, SchemeId::InsecureSimulation, 0).unwrap();
        let a = Arc::new(Health::compute(&c, &[], Height(3), None));
        let mut b = (*a).clone();
        b.eligible.pop();
        let mut inv = HealthAgreement::default();
        assert!(inv.on_commit(0, Digest([1; 32]), a.clone(), 0).is_none());
        assert!(inv.on_commit(1, Digest([1; 32]), a, 0).is_none());
        assert!(inv.on_commit(2, Digest([1; 32]), Arc::new(b), 5).is_some());
    }
}
