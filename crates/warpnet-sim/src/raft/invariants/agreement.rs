//! Agreement (state-machine safety): every replica that applies index i has applied the same
//! entries up to i, compared through the state machine's hash chain at i (a snapshot install
//! is compared at its index too).

use std::collections::HashMap;

use super::Violation;

#[derive(Default)]
pub struct Agreement {
    /// The chain at each index, and which replica applied it first.
    by_index: HashMap<u64, (u64, usize)>,
    max_index: u64,
}

impl Agreement {
    pub fn on_apply(
        &mut self,
        replica: usize,
        index: u64,
        chain: u64,
        now: u64,
    ) -> Option<Violation> {
        self.max_index = self.max_index.max(index);
        let &mut (first, by) = self.by_index.entry(index).or_insert((chain, replica));
        (first != chain).then(|| Violation {
            invariant: "agreement",
            at_ms: now,
            detail: format!("index {index}: replica {by} has state {first:016x}, replica {replica} {chain:016x}"),
        })
    }

    /// Highest index any replica applied.
    pub fn max_index(&self) -> u64 {
        self.max_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_two_states_at_one_index() {
        let mut a = Agreement::default();
        assert!(a.on_apply(0, 3, 7, 0).is_none());
        assert!(a.on_apply(1, 3, 7, 0).is_none());
        assert!(a.on_apply(2, 3, 8, 0).is_some());
    }
}
