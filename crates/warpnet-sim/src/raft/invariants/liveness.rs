//! Liveness after GST: every command submitted after GST is applied by every voter of the
//! committed membership within the bound.

use std::collections::{BTreeMap, BTreeSet};

use super::Violation;

#[derive(Default)]
pub struct Liveness {
    /// Commands that must be applied, and the replicas that applied each.
    waiting: BTreeMap<Vec<u8>, BTreeSet<usize>>,
    pub deadline_ms: u64,
}

impl Liveness {
    pub fn expect(&mut self, cmd: Vec<u8>) {
        self.waiting.insert(cmd, BTreeSet::new());
    }

    pub fn on_apply(&mut self, replica: usize, cmd: &[u8]) {
        if let Some(set) = self.waiting.get_mut(cmd) {
            set.insert(replica);
        }
    }

    pub fn armed(&self) -> bool {
        self.deadline_ms > 0
    }

    /// Done when every voter applied every command.
    pub fn done(&self, voters: &[usize]) -> bool {
        self.armed() && self.waiting.values().all(|s| voters.iter().all(|v| s.contains(v)))
    }

    pub fn check(&self, voters: &[usize], now: u64) -> Option<Violation> {
        if !self.armed() || now < self.deadline_ms || self.done(voters) {
            return None;
        }
        let missing: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, s)| voters.iter().any(|v| !s.contains(v)))
            .map(|(c, s)| {
                format!("{} (applied by {s:?} of voters {voters:?})", String::from_utf8_lossy(c))
            })
            .collect();
        Some(Violation {
            invariant: "liveness",
            at_ms: now,
            detail: format!(
                "{} commands not applied by the deadline: {}",
                missing.len(),
                missing.join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_commands_missing_at_the_deadline() {
        let mut l = Liveness { deadline_ms: 100, ..Liveness::default() };
        l.expect(b"a".to_vec());
        l.on_apply(0, b"a");
        assert!(l.check(&[0, 1], 50).is_none());
        assert!(l.check(&[0, 1], 100).is_some());
        l.on_apply(1, b"a");
        assert!(l.done(&[0, 1]) && l.check(&[0, 1], 200).is_none());
    }
}
