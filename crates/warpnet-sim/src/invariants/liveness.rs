//! Liveness: once faults stop (GST), every honest replica commits every command submitted after
//! GST within the stated bound.

use std::collections::{HashMap, HashSet};

use super::Violation;

#[derive(Default)]
pub struct Liveness {
    /// Commands that must commit, and the replicas that still have to commit each.
    waiting: HashMap<Vec<u8>, HashSet<usize>>,
    pub deadline_ms: u64,
}

impl Liveness {
    pub fn expect(&mut self, cmd: Vec<u8>, replicas: impl IntoIterator<Item = usize>) {
        self.waiting.insert(cmd, replicas.into_iter().collect());
    }

    pub fn on_commit(&mut self, replica: usize, payload: &[Vec<u8>]) {
        for cmd in payload {
            if let Some(set) = self.waiting.get_mut(cmd) {
                set.remove(&replica);
                if set.is_empty() {
                    self.waiting.remove(cmd);
                }
            }
        }
    }

    pub fn done(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The violation if the deadline passed with commands still waiting.
    pub fn check(&self, now: u64) -> Option<Violation> {
        if self.waiting.is_empty() || now < self.deadline_ms {
            return None;
        }
        let mut missing: Vec<String> = self
            .waiting
            .iter()
            .map(|(c, r)| {
                format!("{} (replicas {:?})", String::from_utf8_lossy(c), {
                    let mut v: Vec<_> = r.iter().collect();
                    v.sort();
                    v
                })
            })
            .collect();
        missing.sort();
        Some(Violation {
            invariant: "liveness",
            at_ms: now,
            detail: format!(
                "{} commands not committed by the deadline: {}",
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
        l.expect(b"a".to_vec(), [0, 1]);
        l.on_commit(0, &[b"a".to_vec()]);
        assert!(l.check(50).is_none());
        assert!(l.check(100).is_some());
        l.on_commit(1, &[b"a".to_vec()]);
        assert!(l.done() && l.check(200).is_none());
    }
}
