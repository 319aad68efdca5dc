//! Log (chain) growth: a replica's term and commit index never go back within an incarnation,
//! and its durable term and applied index never go back across a restart.

use std::collections::HashMap;

use super::Violation;

#[derive(Default)]
pub struct LogGrowth {
    /// (term, commit) last seen per replica.
    seen: HashMap<usize, (u64, u64)>,
    /// (term, applied) the replica restarted from last.
    durable: HashMap<usize, (u64, u64)>,
}

impl LogGrowth {
    pub fn on_start(
        &mut self,
        replica: usize,
        term: u64,
        applied: u64,
        now: u64,
    ) -> Option<Violation> {
        self.seen.remove(&replica);
        let before = self.durable.insert(replica, (term, applied));
        before.filter(|&(t, a)| term < t || applied < a).map(|(t, a)| Violation {
            invariant: "log-growth",
            at_ms: now,
            detail: format!("replica {replica} restarted at term {term}, applied {applied}, below term {t}, applied {a}"),
        })
    }

    pub fn on_status(
        &mut self,
        replica: usize,
        term: u64,
        commit: u64,
        now: u64,
    ) -> Option<Violation> {
        let before = self.seen.insert(replica, (term, commit));
        before.filter(|&(t, c)| term < t || commit < c).map(|(t, c)| Violation {
            invariant: "log-growth",
            at_ms: now,
            detail: format!(
                "replica {replica} went from term {t}, commit {c} to term {term}, commit {commit}"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_a_commit_going_back() {
        let mut g = LogGrowth::default();
        assert!(g.on_status(0, 2, 5, 0).is_none());
        assert!(g.on_status(0, 3, 5, 0).is_none());
        assert!(g.on_status(0, 3, 4, 0).is_some());
        assert!(g.on_start(0, 3, 4, 0).is_none());
        assert!(g.on_start(0, 3, 3, 0).is_some());
    }
}
