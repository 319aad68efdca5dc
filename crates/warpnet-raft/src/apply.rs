//! Committed entries and snapshots to the state machine (RF3), and compaction (RF7).

use std::sync::Arc;

use raft::eraftpb::Entry;

use crate::convert;
use crate::engine::LogWrite;
use crate::engine::{Action, Applied, Pending, RaftEngine};
use crate::error::RaftError;
use crate::types::{EntryKind, Index, Snapshot, SnapshotMeta, WriteId};

impl RaftEngine {
    pub(crate) fn apply_snapshot(&mut self, s: &raft::eraftpb::Snapshot) {
        let meta = convert::snapshot_of(s);
        self.membership = meta.meta.membership.clone();
        self.membership_index = meta.meta.index;
        self.snapshot_membership = meta.meta.membership.clone();
        self.history.clear();
        self.applied = meta.meta.index;
        self.out.push(Action::Apply(Applied::Snapshot {
            index: meta.meta.index,
            term: meta.meta.term,
            membership: meta.meta.membership,
            data: meta.data,
        }));
    }

    pub(crate) fn apply_entry(&mut self, e: Entry) {
        let (index, term) = (e.index, e.term);
        if index <= self.applied {
            return; // RF3: each index once (a snapshot may have covered it)
        }
        let applied = match convert::kind_of(&e) {
            EntryKind::Normal if e.data.is_empty() => Applied::Noop { index, term },
            EntryKind::Normal => Applied::Command { index, term, data: e.data.to_vec() },
            EntryKind::Membership => self.apply_membership(&e),
            EntryKind::MembershipV2 => Applied::Noop { index, term },
        };
        self.applied = index;
        self.raw.advance_apply_to(index);
        self.out.push(Action::Apply(applied));
    }

    /// The compaction the state machine asked for (RF7).
    pub(crate) fn compact(&mut self, index: Index, data: Vec<u8>) -> Result<(), RaftError> {
        let store = self.raw.store();
        let snapshot = store.snapshot.get_metadata().index;
        if index <= snapshot || index > self.applied || index > store.last() {
            return Err(RaftError::BadCompaction { index, snapshot, applied: self.applied });
        }
        let term = raft::Storage::term(store, index)
            .map_err(|e| RaftError::Refused { detail: e.to_string() })?;
        let membership = self
            .history
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(|| self.snapshot_membership.clone(), |(_, m)| m.clone());
        let snap = Snapshot {
            meta: SnapshotMeta { index, term, membership: membership.clone() },
            data: Arc::from(data),
        };
        self.raw.mut_store().compact(convert::raft_snapshot(&snap));
        self.history.retain(|(i, _)| *i > index);
        self.snapshot_membership = membership;
        let id = WriteId(self.next_write);
        self.next_write += 1;
        self.unacked.push_back(Pending {
            write: id,
            ready: None,
            held: Vec::new(),
            snapshot_index: None,
            vouched_for: true,
        });
        self.out.push(Action::Persist(LogWrite {
            id,
            snapshot: Some(snap),
            ..LogWrite::default()
        }));
        Ok(())
    }
}
