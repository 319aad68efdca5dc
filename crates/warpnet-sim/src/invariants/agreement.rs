//! Agreement: no two honest replicas commit different blocks at the same height.

use std::collections::HashMap;

use warpnet_types::{BlockId, Height};

use super::Violation;

#[derive(Default)]
pub struct Agreement {
    /// The first block committed at each height, and by which replica.
    by_height: HashMap<Height, (BlockId, usize)>,
}

impl Agreement {
    pub fn on_commit(
        &mut self,
        replica: usize,
        height: Height,
        block: BlockId,
        now: u64,
    ) -> Option<Violation> {
        let &mut (first, by) = self.by_height.entry(height).or_insert((block, replica));
        (first != block).then(|| Violation {
            invariant: "agreement",
            at_ms: now,
            detail: format!("height {height}: replica {by} committed {first}, replica {replica} committed {block}"),
        })
    }

    /// Highest height any honest replica committed.
    pub fn max_height(&self) -> Height {
        self.by_height.keys().copied().max().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::Digest;

    #[test]
    fn catches_two_blocks_at_one_height() {
        let mut a = Agreement::default();
        assert!(a.on_commit(0, Height(1), Digest([1; 32]), 0).is_none());
        assert!(a.on_commit(1, Height(1), Digest([1; 32]), 0).is_none());
        assert!(a.on_commit(2, Height(1), Digest([2; 32]), 5).is_some());
    }
}
