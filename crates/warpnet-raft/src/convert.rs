//! Conversions between the engine's types and raft-rs's, and the checks a recovered disk
//! passes before raft-rs sees it (raft-rs panics on an inconsistent state; we refuse it with a
//! typed error instead).

use std::sync::Arc;

use raft::eraftpb::{self, ConfState, Entry, EntryType};
use warpnet_types::NodeId;

use crate::codec::{decode_member, decode_payload, encode_payload};
use crate::error::{RaftError, RecoveryError};
use crate::mirror::Mirror;
use crate::types::{
    node_of, raft_id, EntryKind, HardState, Index, LogEntry, Membership, ReadId, Recovery,
    Snapshot, SnapshotMeta,
};

pub(crate) fn conf_state_of(m: &Membership) -> ConfState {
    let mut cs = ConfState::default();
    cs.voters = m.voters().iter().map(|v| raft_id(v.id)).collect();
    cs.learners = m.learners().iter().map(|v| raft_id(v.id)).collect();
    cs
}

pub(crate) fn hard_state_of(hs: &eraftpb::HardState) -> HardState {
    HardState { term: hs.term, vote: node_of(hs.vote), commit: hs.commit }
}

fn raft_hard_state(hs: &HardState) -> eraftpb::HardState {
    let mut r = eraftpb::HardState::default();
    r.term = hs.term;
    r.vote = hs.vote.map_or(0, raft_id);
    r.commit = hs.commit;
    r
}

pub(crate) fn kind_of(e: &Entry) -> EntryKind {
    match e.get_entry_type() {
        EntryType::EntryNormal => EntryKind::Normal,
        EntryType::EntryConfChange => EntryKind::Membership,
        EntryType::EntryConfChangeV2 => EntryKind::MembershipV2,
    }
}

pub(crate) fn log_entry_of(e: &Entry) -> LogEntry {
    LogEntry {
        index: e.index,
        term: e.term,
        kind: kind_of(e),
        data: e.data.to_vec(),
        context: e.context.to_vec(),
    }
}

fn raft_entry(e: &LogEntry) -> Entry {
    let mut r = Entry::default();
    r.set_entry_type(match e.kind {
        EntryKind::Normal => EntryType::EntryNormal,
        EntryKind::Membership => EntryType::EntryConfChange,
        EntryKind::MembershipV2 => EntryType::EntryConfChangeV2,
    });
    r.index = e.index;
    r.term = e.term;
    r.data = e.data.clone().into();
    r.context = e.context.clone().into();
    r
}

/// Our snapshot as raft-rs carries it: the membership travels inside the data.
pub(crate) fn raft_snapshot(s: &Snapshot) -> eraftpb::Snapshot {
    let mut r = eraftpb::Snapshot::default();
    r.mut_metadata().index = s.meta.index;
    r.mut_metadata().term = s.meta.term;
    r.mut_metadata().set_conf_state(conf_state_of(&s.meta.membership));
    r.data = encode_payload(&s.meta.membership, &s.data).into();
    r
}

/// A raft-rs snapshot as ours. Snapshots reach the engine only through
/// `check_snapshot_message` or from our own compaction, so the payload decodes; should it not,
/// the ids raft-rs holds are kept (as non-public, so nobody campaigns on a guess).
pub(crate) fn snapshot_of(s: &eraftpb::Snapshot) -> Snapshot {
    let md = s.get_metadata();
    let (membership, data) = decode_payload(&s.data).unwrap_or_else(|_| {
        let voters = md
            .get_conf_state()
            .voters
            .iter()
            .filter_map(|id| node_of(*id))
            .map(|id| crate::types::Member { id, public: false })
            .collect();
        (Membership::new(voters), Vec::new())
    });
    Snapshot {
        meta: SnapshotMeta { index: md.index, term: md.term, membership },
        data: Arc::from(data),
    }
}

/// A snapshot from the leader must hold together: its payload decodes and names exactly the
/// voters and learners of raft-rs's metadata, with no joint sets (which we never create).
pub(crate) fn check_snapshot_message(s: &eraftpb::Snapshot) -> Result<(), RaftError> {
    let (membership, _) =
        decode_payload(&s.data).map_err(|e| RaftError::BadSnapshot { detail: e.to_string() })?;
    let cs = s.get_metadata().get_conf_state();
    let mut voters = cs.voters.clone();
    voters.sort_unstable();
    let mut learners = cs.learners.clone();
    learners.sort_unstable();
    let ours = conf_state_of(&membership);
    if voters != ours.voters
        || learners != ours.learners
        || !cs.voters_outgoing.is_empty()
        || !cs.learners_next.is_empty()
    {
        return Err(RaftError::BadSnapshot {
            detail: format!(
                "voters {:?} and learners {:?} do not match the payload's membership",
                cs.voters, cs.learners
            ),
        });
    }
    Ok(())
}

pub(crate) fn read_context(me: NodeId, id: ReadId) -> Vec<u8> {
    let mut ctx = me.0.to_le_bytes().to_vec();
    ctx.extend_from_slice(&id.0.to_le_bytes());
    ctx
}

pub(crate) fn read_id(me: NodeId, ctx: &[u8]) -> Option<ReadId> {
    let (node, id) = ctx.split_at_checked(2)?;
    (u16::from_le_bytes(node.try_into().ok()?) == me.0)
        .then(|| id.try_into().ok().map(|b| ReadId(u64::from_le_bytes(b))))
        .flatten()
}

/// Applies one membership entry's change to `m` (the change is a raft-rs `ConfChange` in the
/// data, the member's description in the context).
pub(crate) fn membership_after(m: &Membership, e: &LogEntry) -> Result<Membership, String> {
    let mut cc = eraftpb::ConfChange::default();
    protobuf::Message::merge_from_bytes(&mut cc, &e.data).map_err(|e| e.to_string())?;
    let id = node_of(cc.node_id).ok_or("node id 0")?;
    match cc.get_change_type() {
        eraftpb::ConfChangeType::AddNode => {
            let (member, description) = decode_member(&e.context, id).map_err(|e| e.to_string())?;
            Ok(m.with_described(
                member,
                Some(&description).filter(|d| !d.is_empty()).map(|d| d.as_slice()),
            ))
        }
        eraftpb::ConfChangeType::RemoveNode => Ok(m.without(id)),
        eraftpb::ConfChangeType::AddLearnerNode => {
            let (member, description) = decode_member(&e.context, id).map_err(|e| e.to_string())?;
            Ok(m.with_learner(member, &description))
        }
    }
}

/// Checks a recovered disk; returns the index of the membership in force at `applied`.
pub(crate) fn check_recovery(r: &Recovery) -> Result<Index, RecoveryError> {
    let snap = r.snapshot.as_ref().map_or((0, 0), |s| (s.meta.index, s.meta.term));
    let (mut prev, mut prev_term) = snap;
    for e in &r.entries {
        if e.index != prev + 1 {
            return Err(RecoveryError::Gap { after: prev, found: e.index });
        }
        if e.term < prev_term {
            return Err(RecoveryError::TermDecreases {
                index: e.index,
                term: e.term,
                previous: prev_term,
            });
        }
        (prev, prev_term) = (e.index, e.term);
    }
    let hs = &r.hard_state;
    if hs.commit > prev {
        return Err(RecoveryError::CommitBeyondLog { commit: hs.commit, last: prev });
    }
    if hs.commit < snap.0 {
        return Err(RecoveryError::CommitBelowSnapshot { commit: hs.commit, snapshot: snap.0 });
    }
    if r.applied > hs.commit {
        return Err(RecoveryError::AppliedBeyondCommit { applied: r.applied, commit: hs.commit });
    }
    if r.applied < snap.0 {
        return Err(RecoveryError::AppliedBelowSnapshot { applied: r.applied, snapshot: snap.0 });
    }
    // The membership the log gives at `applied` must be the one stored with it.
    let mut derived = r.snapshot.as_ref().map(|s| s.meta.membership.clone()).unwrap_or_default();
    let mut index = snap.0;
    for e in r.entries.iter().filter(|e| e.kind == EntryKind::Membership && e.index <= r.applied) {
        derived = membership_after(&derived, e)
            .map_err(|detail| RecoveryError::Membership { index: e.index, detail })?;
        index = e.index;
    }
    if derived != r.membership {
        return Err(RecoveryError::MembershipMismatch {
            stored: format!("{:?}", r.membership.voters()),
            derived: format!("{:?}", derived.voters()),
        });
    }
    Ok(index)
}

/// Memberships set by entries in (snapshot, applied], for compaction below `applied`.
pub(crate) fn history_after_snapshot(r: &Recovery) -> Vec<(Index, Membership)> {
    let mut m = r.snapshot.as_ref().map(|s| s.meta.membership.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for e in r.entries.iter().filter(|e| e.kind == EntryKind::Membership && e.index <= r.applied) {
        if let Ok(next) = membership_after(&m, e) {
            m = next;
            out.push((e.index, m.clone()));
        }
    }
    out
}

/// The mirror raft-rs starts from, and the snapshot's membership.
pub(crate) fn mirror_of(r: &Recovery) -> (Mirror, Membership) {
    let mut mirror = Mirror {
        hard_state: raft_hard_state(&r.hard_state),
        conf_state: conf_state_of(&r.membership),
        ..Mirror::default()
    };
    let mut snapshot_membership = Membership::default();
    if let Some(s) = &r.snapshot {
        mirror.snapshot = raft_snapshot(s);
        snapshot_membership = s.meta.membership.clone();
    }
    mirror.entries = r.entries.iter().map(raft_entry).collect();
    (mirror, snapshot_membership)
}
