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
    /// Each command with the time it was last shared with the committee (M1 on arrival,
    /// M3 again while it stays pending).
    queue: VecDeque<(Digest, Vec<u8>, u64)>,
    /// The time of the last call to `add` or `stale` (the core's clock).
    now_ms: u64,
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
            now_ms: 0,
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

    /// Sets the clock `add` stamps new commands with (they count as shared when they arrive:
    /// a client's member shares them at once, M1, and a shared copy was shared by its sender).
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
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
        self.queue.push_back((d, cmd, self.now_ms));
        Ok(())
    }

    /// Keeps only the pending commands `keep` accepts (e.g. membership changes still valid in a
    /// new epoch).
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let index = &mut self.index;
        self.queue.retain(|(d, cmd, _)| {
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
        for (d, cmd, _) in &self.queue {
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
            self.queue.retain(|(d, _, _)| !gone.contains(d));
        }
    }

    /// M3: the oldest commands last shared at least `after_ms` before `now_ms`, at most
    /// `count_max` of them and `bytes_max` bytes, stamped as shared now.
    pub fn stale(
        &mut self,
        now_ms: u64,
        after_ms: u64,
        count_max: usize,
        bytes_max: usize,
    ) -> Vec<Vec<u8>> {
        self.set_now(now_ms);
        let mut out = Vec::new();
        let mut bytes = 0;
        for (_, cmd, shared_at) in self.queue.iter_mut() {
            if out.len() >= count_max || bytes + cmd.len() > bytes_max {
                break;
            }
            if now_ms.saturating_sub(*shared_at) < after_ms {
                continue;
            }
            *shared_at = now_ms;
            bytes += cmd.len();
            out.push(cmd.clone());
        }
        out
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
