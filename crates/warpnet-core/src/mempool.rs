//! Commands waiting to be proposed: bounded, de-duplicated, in arrival order.

use std::collections::{HashSet, VecDeque};

use warpnet_types::Digest;

use crate::io::Rejection;

/// Domain tag of command digests (not signed; only used to de-duplicate).
const TAG_COMMAND: &[u8] = b"warpnet/v1/command";

pub fn command_digest(cmd: &[u8]) -> Digest {
    Digest::hash(TAG_COMMAND, cmd)
}

/// A bounded FIFO of commands. Commands stay until committed, so a failed proposal loses none.
///
/// M2: the digests of the last `capacity` committed commands are remembered, and such a command
/// is refused (`AlreadyCommitted`): with M1 a member's copy of a command can arrive after the
/// command committed, and must not be proposed and committed a second time.
pub struct Mempool {
    queue: VecDeque<(Digest, Vec<u8>)>,
    index: HashSet<Digest>,
    capacity: usize,
    command_bytes_max: usize,
    committed: HashSet<Digest>,
    committed_order: VecDeque<Digest>,
}

impl Mempool {
    pub fn new(capacity: usize, command_bytes_max: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            index: HashSet::new(),
            capacity,
            command_bytes_max,
            committed: HashSet::new(),
            committed_order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn add(&mut self, cmd: Vec<u8>) -> Result<(), Rejection> {
        if cmd.len() > self.command_bytes_max {
            return Err(Rejection::CommandTooLarge {
                bytes: cmd.len(),
                max: self.command_bytes_max,
            });
        }
        // A command already pending or committed is answered so even when the mempool is
        // full: its client waits for (or reads) the outcome instead of being told to retry.
        let d = command_digest(&cmd);
        if self.committed.contains(&d) {
            return Err(Rejection::AlreadyCommitted);
        }
        if self.index.contains(&d) {
            return Err(Rejection::DuplicateCommand);
        }
        if self.queue.len() >= self.capacity {
            return Err(Rejection::MempoolFull { capacity: self.capacity });
        }
        self.index.insert(d);
        self.queue.push_back((d, cmd));
        Ok(())
    }

    /// Keeps only the pending commands `keep` accepts (e.g. membership changes still valid in a
    /// new epoch).
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let index = &mut self.index;
        self.queue.retain(|(d, cmd)| {
            let k = keep(cmd);
            if !k {
                index.remove(d);
            }
            k
        });
    }

    /// The oldest commands within the limits, skipping those in `exclude` (already in an
    /// uncommitted ancestor). Nothing is removed until it commits.
    pub fn batch(
        &self,
        count_max: usize,
        bytes_max: usize,
        exclude: &HashSet<Digest>,
    ) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (d, cmd) in &self.queue {
            if out.len() >= count_max {
                break;
            }
            if exclude.contains(d) {
                continue;
            }
            if bytes + cmd.len() > bytes_max {
                break;
            }
            bytes += cmd.len();
            out.push(cmd.clone());
        }
        out
    }

    /// Removes committed commands, and remembers them (M2).
    pub fn remove_committed<'a>(&mut self, cmds: impl Iterator<Item = &'a Vec<u8>>) {
        let mut gone = HashSet::new();
        for c in cmds {
            let d = command_digest(c);
            if self.index.remove(&d) {
                gone.insert(d);
            }
            if self.committed.insert(d) {
                self.committed_order.push_back(d);
                if self.committed_order.len() > self.capacity {
                    if let Some(old) = self.committed_order.pop_front() {
                        self.committed.remove(&old);
                    }
                }
            }
        }
        if !gone.is_empty() {
            self.queue.retain(|(d, _)| !gone.contains(d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_deduplicated_and_kept_until_committed() {
        let mut m = Mempool::new(2, 4);
        assert!(m.add(b"a".to_vec()).is_ok());
        assert_eq!(m.add(b"a".to_vec()), Err(Rejection::DuplicateCommand));
        assert_eq!(
            m.add(b"toolong".to_vec()),
            Err(Rejection::CommandTooLarge { bytes: 7, max: 4 })
        );
        assert!(m.add(b"b".to_vec()).is_ok());
        assert_eq!(m.add(b"c".to_vec()), Err(Rejection::MempoolFull { capacity: 2 }));
        assert_eq!(
            m.add(b"a".to_vec()),
            Err(Rejection::DuplicateCommand),
            "a pending command is answered as pending, even when the mempool is full"
        );
        let ex: HashSet<_> = [command_digest(b"a")].into();
        assert_eq!(m.batch(10, 100, &ex), vec![b"b".to_vec()]);
        assert_eq!(m.batch(1, 100, &HashSet::new()), vec![b"a".to_vec()]);
        m.remove_committed([b"a".to_vec()].iter());
        assert_eq!(m.len(), 1);
        assert_eq!(
            m.add(b"a".to_vec()),
            Err(Rejection::AlreadyCommitted),
            "M2: a recently committed command is not taken again"
        );
        // The memory of committed commands is bounded: the oldest are forgotten.
        m.remove_committed([b"x".to_vec(), b"y".to_vec()].iter());
        assert!(m.add(b"a".to_vec()).is_ok(), "forgotten after `capacity` newer commits");
    }
}
