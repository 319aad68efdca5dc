//! The committed chain only grows: each replica commits height h+1 on top of the block it
//! committed at h, never skips, never goes back (after a restart it resumes from what its disk
//! kept, which agreement then holds to the same blocks).

use std::collections::HashMap;

use warpnet_types::{Block, BlockId, Height};

use super::Violation;

#[derive(Default)]
pub struct ChainGrowth {
    tips: HashMap<usize, (Height, BlockId)>,
}

impl ChainGrowth {
    /// The replica (re)starts with this committed tip.
    pub fn on_start(&mut self, replica: usize, height: Height, block: BlockId) {
        self.tips.insert(replica, (height, block));
    }

    pub fn on_commit(&mut self, replica: usize, block: &Block, now: u64) -> Option<Violation> {
        let Some(&(h, id)) = self.tips.get(&replica) else {
            return Some(Violation {
                invariant: "chain-growth",
                at_ms: now,
                detail: format!("replica {replica} committed before starting"),
            });
        };
        self.tips.insert(replica, (block.height(), block.id()));
        (block.height() != h.next() || block.parent() != id).then(|| Violation {
            invariant: "chain-growth",
            at_ms: now,
            detail: format!(
                "replica {replica} committed {:?} at height {} on parent {}, but its tip was {id} at height {h}",
                block.id(),
                block.height(),
                block.parent()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::{ConsensusConfig, Epoch, NodeId, QuorumCertificate, Round, SchemeId};

    #[test]
    fn catches_a_skipped_height_and_a_wrong_parent() {
        let (c, _) = ConsensusConfig::for_testing(4, SchemeId::InsecureSimulation, 0).unwrap();
        let g = Block::genesis(&c);
        let qc = QuorumCertificate::genesis(&c);
        let b1 = Block::new(Epoch(1), Round(1), Height(1), NodeId(1), qc.clone(), 0, vec![]);
        let b2_skip = Block::new(Epoch(1), Round(1), Height(2), NodeId(1), qc, 0, vec![]);
        let mut g_check = ChainGrowth::default();
        g_check.on_start(0, Height(0), g.id());
        assert!(g_check.on_commit(0, &b1, 0).is_none());
        g_check.on_start(1, Height(0), g.id());
        assert!(g_check.on_commit(1, &b2_skip, 0).is_some());
    }
}
