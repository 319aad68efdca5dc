//! Election safety: at most one leader per term.

use std::collections::HashMap;

use warpnet_types::NodeId;

use super::Violation;

#[derive(Default)]
pub struct ElectionSafety {
    leaders: HashMap<u64, NodeId>,
}

impl ElectionSafety {
    pub fn on_leader(&mut self, term: u64, node: NodeId, now: u64) -> Option<Violation> {
        let &mut first = self.leaders.entry(term).or_insert(node);
        (first != node).then(|| Violation {
            invariant: "election-safety",
            at_ms: now,
            detail: format!("term {term} has two leaders: {first} and {node}"),
        })
    }

    /// Terms that had a leader.
    pub fn terms(&self) -> usize {
        self.leaders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_two_leaders_in_a_term() {
        let mut e = ElectionSafety::default();
        assert!(e.on_leader(2, NodeId(0), 0).is_none());
        assert!(e.on_leader(2, NodeId(0), 0).is_none());
        assert!(e.on_leader(2, NodeId(1), 0).is_some());
    }
}
