//! Linearizable reads (RF8): a read's index covers every entry any replica had applied (and so
//! could have acknowledged) when the read was issued.

use std::collections::HashMap;

use super::Violation;

#[derive(Default)]
pub struct LinearizableReads {
    /// (replica, read id) -> the highest index applied anywhere when it was issued.
    issued: HashMap<(usize, u64), u64>,
    pub served: u64,
    pub failed: u64,
}

impl LinearizableReads {
    pub fn on_issue(&mut self, replica: usize, id: u64, frontier: u64) {
        self.issued.insert((replica, id), frontier);
    }

    pub fn on_ready(&mut self, replica: usize, id: u64, index: u64, now: u64) -> Option<Violation> {
        let frontier = self.issued.remove(&(replica, id))?;
        self.served += 1;
        (index < frontier).then(|| Violation {
            invariant: "linearizable-reads",
            at_ms: now,
            detail: format!("replica {replica} read {id} at index {index}, but {frontier} was applied before it was issued"),
        })
    }

    pub fn on_failed(&mut self, replica: usize, id: u64) {
        self.issued.remove(&(replica, id));
        self.failed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_a_stale_read() {
        let mut r = LinearizableReads::default();
        r.on_issue(0, 1, 10);
        assert!(r.on_ready(0, 1, 10, 0).is_none());
        r.on_issue(0, 2, 10);
        assert!(r.on_ready(0, 2, 9, 0).is_some());
    }
}
