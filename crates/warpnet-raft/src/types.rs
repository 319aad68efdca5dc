//! The engine's own data model: what the runtime persists, applies and reports. raft-rs's
//! protobuf types stay inside the engine; storage, simulator and node see only these.

use std::sync::Arc;

use warpnet_types::NodeId;

/// Raft ids are `NodeId + 1` (raft-rs reserves 0 for "none").
pub(crate) fn raft_id(node: NodeId) -> u64 {
    u64::from(node.0) + 1
}

/// The member behind a raft id, if it is one of ours.
pub(crate) fn node_of(id: u64) -> Option<NodeId> {
    id.checked_sub(1).and_then(|i| u16::try_from(i).ok()).map(NodeId)
}

/// Log index (1-based; 0 means "nothing").
pub type Index = u64;
/// Raft term.
pub type Term = u64;

/// What must survive a crash besides the log: the current term, the vote cast in it, and the
/// highest index known committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: Index,
}

/// What a log entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A client command (opaque bytes) or, when empty, the no-op a new leader appends.
    Normal,
    /// A single-voter membership change (raft-rs `ConfChange`, protobuf bytes, with the
    /// member's description in the context).
    Membership,
    /// raft-rs's joint-consensus change (`ConfChangeV2`). The engine never proposes one; it is
    /// stored faithfully should raft-rs ever write one.
    MembershipV2,
}

/// One log entry, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub index: Index,
    pub term: Term,
    pub kind: EntryKind,
    pub data: Vec<u8>,
    pub context: Vec<u8>,
}

/// A voter and whether it is publicly reachable (seed 000: only public members lead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member {
    pub id: NodeId,
    pub public: bool,
}

/// The voters, sorted by id. Changed one voter at a time through the log (RF4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    voters: Vec<Member>,
}

impl Membership {
    /// Sorts and de-duplicates by id (the first description of an id wins).
    pub fn new(mut voters: Vec<Member>) -> Self {
        voters.sort_by_key(|m| m.id);
        voters.dedup_by_key(|m| m.id);
        Self { voters }
    }

    pub fn voters(&self) -> &[Member] {
        &self.voters
    }

    pub fn get(&self, id: NodeId) -> Option<Member> {
        self.voters.iter().copied().find(|m| m.id == id)
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.get(id).is_some()
    }

    pub fn is_public(&self, id: NodeId) -> bool {
        self.get(id).is_some_and(|m| m.public)
    }

    pub fn public_voters(&self) -> impl Iterator<Item = Member> + '_ {
        self.voters.iter().copied().filter(|m| m.public)
    }

    pub fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    pub fn len(&self) -> usize {
        self.voters.len()
    }

    /// A majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub(crate) fn with(&self, m: Member) -> Self {
        let mut v = self.voters.clone();
        v.retain(|x| x.id != m.id);
        v.push(m);
        Self::new(v)
    }

    pub(crate) fn without(&self, id: NodeId) -> Self {
        Self { voters: self.voters.iter().copied().filter(|m| m.id != id).collect() }
    }
}

/// Where a snapshot sits in the log, and the membership as of its index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
    pub membership: Membership,
}

/// A snapshot: its place in the log and the state machine's opaque bytes at that index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Arc<[u8]>,
}

/// Everything a replica's disk holds, loaded at start.
///
/// `membership` is the membership as of `applied` (stored with the state machine's writes);
/// `entries` are the log after the snapshot's index, contiguous.
#[derive(Clone, Debug)]
pub struct Recovery {
    pub hard_state: HardState,
    pub membership: Membership,
    pub applied: Index,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<LogEntry>,
}

/// Index of the genesis snapshot. A log never holds entries at or below it, so a member that
/// joins later with an empty disk always catches up from a snapshot (which carries the
/// membership), never from entries it could not place in a configuration.
pub const GENESIS_INDEX: Index = 1;
/// Term of the genesis snapshot.
pub const GENESIS_TERM: Term = 1;

impl Recovery {
    /// A founding member's first start: the genesis snapshot (empty state machine, the
    /// founding voters), applied and committed.
    pub fn genesis(membership: Membership) -> Self {
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                index: GENESIS_INDEX,
                term: GENESIS_TERM,
                membership: membership.clone(),
            },
            data: Arc::from(Vec::new()),
        };
        Self {
            hard_state: HardState { term: GENESIS_TERM, vote: None, commit: GENESIS_INDEX },
            membership,
            applied: GENESIS_INDEX,
            snapshot: Some(snapshot),
            entries: Vec::new(),
        }
    }

    /// A member added later, on its first start: nothing at all; it learns everything from
    /// the leader's snapshot.
    pub fn joining() -> Self {
        Self {
            hard_state: HardState::default(),
            membership: Membership::default(),
            applied: 0,
            snapshot: None,
            entries: Vec::new(),
        }
    }

    /// The last index the log (or its snapshot) covers.
    pub fn last_index(&self) -> Index {
        self.entries
            .last()
            .map(|e| e.index)
            .or_else(|| self.snapshot.as_ref().map(|s| s.meta.index))
            .unwrap_or(0)
    }
}

/// Identifies one durable write the engine asked for; acknowledged with `Input::Persisted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteId(pub u64);

/// Identifies one linearizable read of this replica (unique per replica incarnation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadId(pub u64);

/// A replica's role in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}
