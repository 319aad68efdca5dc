//! The log as raft-rs reads it: an in-memory mirror of what the runtime was asked to persist
//! (the latest snapshot and the entries after it). raft-rs requires a `Ready`'s entries to be
//! readable before `advance`; the mirror takes them at once, the disk catches up (RF2).

use std::cell::Cell;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

#[derive(Clone, Debug, Default)]
pub(crate) struct Mirror {
    pub hard_state: HardState,
    /// The configuration raft-rs restarts from (as of the applied index).
    pub conf_state: ConfState,
    /// The latest snapshot (index 0 when there is none).
    pub snapshot: Snapshot,
    /// Entries after the snapshot's index, contiguous.
    pub entries: Vec<Entry>,
    /// raft-rs asked for a snapshot for a member our snapshot does not know (RF7): the engine
    /// asks the state machine for a newer one.
    pub wanted: Cell<bool>,
}

impl Mirror {
    fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    pub fn first(&self) -> u64 {
        self.snapshot_index() + 1
    }

    pub fn last(&self) -> u64 {
        self.entries.last().map_or(self.snapshot_index(), |e| e.index)
    }

    /// Appends entries, replacing any suffix they conflict with (raft-rs only hands out
    /// entries whose first index is at most `last + 1`).
    pub fn append(&mut self, new: &[Entry]) {
        let Some(first) = new.first() else { return };
        let keep = first.index.saturating_sub(self.first()) as usize;
        self.entries.truncate(keep.min(self.entries.len()));
        self.entries.extend_from_slice(new);
    }

    /// Installs a snapshot from the leader: the whole log is replaced by it (raft-rs restores
    /// only a snapshot whose index and term our log does not hold).
    pub fn install(&mut self, snap: Snapshot) {
        let index = snap.get_metadata().index;
        self.entries.clear();
        self.conf_state = snap.get_metadata().get_conf_state().clone();
        self.snapshot = snap;
        if self.hard_state.commit < index {
            self.hard_state.commit = index;
        }
    }

    /// Compaction: a snapshot at an index we hold replaces the entries up to it.
    pub fn compact(&mut self, snap: Snapshot) {
        let index = snap.get_metadata().index;
        self.entries.retain(|e| e.index > index);
        self.snapshot = snap;
    }
}

impl raft::Storage for Mirror {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state.clone(), self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let lo = (low - self.first()) as usize;
        let hi = (high - self.first()) as usize;
        let mut out = Vec::with_capacity(hi - lo);
        let mut size = 0u64;
        let max = max_size.into().unwrap_or(u64::MAX);
        for e in &self.entries[lo..hi] {
            let len = (e.data.len() + e.context.len() + 24) as u64;
            // Always at least one entry, as raft-rs expects.
            if !out.is_empty() && size + len > max {
                break;
            }
            size += len;
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snapshot_index() {
            return Ok(self.snapshot.get_metadata().term);
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        Ok(self.entries[(idx - self.first()) as usize].term)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, _request_index: u64, to: u64) -> raft::Result<Snapshot> {
        // RF7: the latest snapshot (compaction keeps one, with its membership in its data),
        // if it names the member (as a voter, or as a learner: RV1): raft-rs refuses to
        // restore a snapshot that does not include itself, so a member added after it needs a
        // newer one.
        let cs = self.snapshot.get_metadata().get_conf_state();
        if self.snapshot_index() == 0 || !(cs.voters.contains(&to) || cs.learners.contains(&to)) {
            self.wanted.set(true);
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(self.snapshot.clone())
    }
}
