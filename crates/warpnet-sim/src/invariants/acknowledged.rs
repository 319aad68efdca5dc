//! Acknowledged is kept (HA1): a command a replica answered (its client heard "claimed") stays
//! in the block it was answered from, on every honest replica, through crashes that lose every
//! write not yet durable. The node answers when its step commits the block and the command is
//! applied in memory, before the write holding the registry's change is durable; the world
//! answers at the same point ([`AnswerPoint::Commit`]) and feeds every commit here.

use std::collections::{HashMap, HashSet};

use warpnet_types::{BlockId, Height};

use super::Violation;

/// Where the simulated node answers a command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AnswerPoint {
    /// HA1: when an honest replica's step commits its block.
    #[default]
    Commit,
    /// Broken on purpose (for the test that shows this checker firing): when an honest leader
    /// proposes on a certificate of its block, before the 2-chain makes the commit certain.
    Certificate,
}

#[derive(Default)]
pub struct Acknowledged {
    /// Each answered command: the block and height it was answered from, and by which replica.
    answered: HashMap<Vec<u8>, (BlockId, Height, usize)>,
    /// Commands some honest replica committed.
    committed: HashSet<Vec<u8>>,
}

impl Acknowledged {
    /// `replica` answered every command of `block` (at `height`).
    pub fn on_answer(
        &mut self,
        replica: usize,
        height: Height,
        block: BlockId,
        payload: &[Vec<u8>],
    ) {
        for cmd in payload {
            self.answered.entry(cmd.clone()).or_insert((block, height, replica));
        }
    }

    /// An honest replica committed `block`: an answered command in it must have been answered
    /// from this very block (same outcome, same place in the order).
    pub fn on_commit(
        &mut self,
        replica: usize,
        height: Height,
        block: BlockId,
        payload: &[Vec<u8>],
        now: u64,
    ) -> Option<Violation> {
        let mut violation = None;
        for cmd in payload {
            self.committed.insert(cmd.clone());
            if let Some(&(answered, h, by)) = self.answered.get(cmd) {
                if answered != block && violation.is_none() {
                    violation = Some(Violation {
                        invariant: "acknowledged-lost",
                        at_ms: now,
                        detail: format!(
                            "command {:?} answered by replica {by} from block {answered} at height {h}, committed by replica {replica} in block {block} at height {height}",
                            String::from_utf8_lossy(cmd)
                        ),
                    });
                }
            }
        }
        violation
    }

    /// At the end of a run that met liveness: every answered command was committed somewhere.
    pub fn check_end(&self, now: u64) -> Option<Violation> {
        let mut lost: Vec<String> = self
            .answered
            .iter()
            .filter(|(cmd, _)| !self.committed.contains(*cmd))
            .map(|(cmd, (block, h, by))| {
                format!(
                    "{:?} (replica {by}, block {block}, height {h})",
                    String::from_utf8_lossy(cmd)
                )
            })
            .collect();
        lost.sort();
        (!lost.is_empty()).then(|| Violation {
            invariant: "acknowledged-lost",
            at_ms: now,
            detail: format!(
                "{} answered commands never committed: {}",
                lost.len(),
                lost.join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::Digest;

    #[test]
    fn catches_an_answered_command_committed_elsewhere_or_never() {
        let mut a = Acknowledged::default();
        let p = vec![b"x".to_vec()];
        a.on_answer(0, Height(3), Digest([1; 32]), &p);
        assert!(a.check_end(0).is_some(), "answered, committed nowhere");
        assert!(a.on_commit(1, Height(3), Digest([1; 32]), &p, 0).is_none());
        assert!(a.check_end(0).is_none());
        assert!(a.on_commit(2, Height(4), Digest([2; 32]), &p, 0).is_some());
    }
}
