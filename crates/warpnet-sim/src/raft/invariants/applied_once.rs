//! Committed once (RF3): within one incarnation a replica applies index after index, each once,
//! with no gap (a snapshot may jump forward, never back); after a restart it resumes right
//! after its durable applied index.

use std::collections::HashMap;

use super::Violation;

#[derive(Default)]
pub struct AppliedOnce {
    last: HashMap<usize, u64>,
}

impl AppliedOnce {
    pub fn on_start(&mut self, replica: usize, applied: u64) {
        self.last.insert(replica, applied);
    }

    pub fn on_apply(
        &mut self,
        replica: usize,
        index: u64,
        snapshot: bool,
        now: u64,
    ) -> Option<Violation> {
        let last = self.last.insert(replica, index).unwrap_or(0);
        let ok = if snapshot { index > last } else { index == last + 1 };
        (!ok).then(|| Violation {
            invariant: "committed-once",
            at_ms: now,
            detail: format!(
                "replica {replica} applied {} {index} after {last}",
                if snapshot { "a snapshot at" } else { "entry" }
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_a_repeat_and_a_gap() {
        let mut a = AppliedOnce::default();
        a.on_start(0, 1);
        assert!(a.on_apply(0, 2, false, 0).is_none());
        assert!(a.on_apply(0, 2, false, 0).is_some());
        assert!(a.on_apply(0, 4, false, 0).is_some());
        assert!(a.on_apply(0, 9, true, 0).is_none());
    }
}
