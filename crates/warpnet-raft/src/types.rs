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

/// The voters, sorted by id, and around them what changes of voters need (RV1–RV4): the
/// learners catching up before they are promoted, the ids removed for good, and each added
/// member's description (opaque here: the node keeps its key and addresses in it). Changed
/// one member at a time through the log (RF4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    voters: Vec<Member>,
    learners: Vec<Member>,
    retired: Vec<NodeId>,
    descriptions: Vec<(NodeId, Vec<u8>)>,
}

impl Membership {
    /// Sorts and de-duplicates by id (the first description of an id wins).
    pub fn new(mut voters: Vec<Member>) -> Self {
        voters.sort_by_key(|m| m.id);
        voters.dedup_by_key(|m| m.id);
        Self { voters, ..Self::default() }
    }

    /// Everything at once (decoding): each list sorted by id, without duplicates.
    pub(crate) fn from_parts(
        voters: Vec<Member>,
        learners: Vec<Member>,
        retired: Vec<NodeId>,
        descriptions: Vec<(NodeId, Vec<u8>)>,
    ) -> Self {
        Self { voters, learners, retired, descriptions }
    }

    pub fn voters(&self) -> &[Member] {
        &self.voters
    }

    /// Members that replicate the log without voting, until the leader promotes them (RV1).
    pub fn learners(&self) -> &[Member] {
        &self.learners
    }

    /// Ids removed from the membership: never added again (RV4).
    pub fn retired(&self) -> &[NodeId] {
        &self.retired
    }

    pub fn descriptions(&self) -> &[(NodeId, Vec<u8>)] {
        &self.descriptions
    }

    /// The description a voter or learner was added with (none for founders).
    pub fn description(&self, id: NodeId) -> Option<&[u8]> {
        self.descriptions.iter().find(|(i, _)| *i == id).map(|(_, d)| d.as_slice())
    }

    pub fn get(&self, id: NodeId) -> Option<Member> {
        self.voters.iter().copied().find(|m| m.id == id)
    }

    pub fn learner(&self, id: NodeId) -> Option<Member> {
        self.learners.iter().copied().find(|m| m.id == id)
    }

    /// Whether `id` votes.
    pub fn contains(&self, id: NodeId) -> bool {
        self.get(id).is_some()
    }

    /// Whether `id` votes or learns (the leader replicates to it).
    pub fn knows(&self, id: NodeId) -> bool {
        self.contains(id) || self.learner(id).is_some()
    }

    pub fn is_retired(&self, id: NodeId) -> bool {
        self.retired.binary_search(&id).is_ok()
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

    fn describe(&mut self, id: NodeId, description: &[u8]) {
        self.descriptions.retain(|(i, _)| *i != id);
        if !description.is_empty() {
            self.descriptions.push((id, description.to_vec()));
            self.descriptions.sort_by_key(|(i, _)| *i);
        }
    }

    /// `m` votes (a learner is promoted; a voter's description is replaced).
    pub(crate) fn with(&self, m: Member) -> Self {
        self.with_described(m, None)
    }

    pub(crate) fn with_described(&self, m: Member, description: Option<&[u8]>) -> Self {
        let mut next = self.clone();
        next.learners.retain(|x| x.id != m.id);
        next.voters.retain(|x| x.id != m.id);
        next.voters.push(m);
        next.voters.sort_by_key(|x| x.id);
        if let Some(d) = description {
            next.describe(m.id, d);
        }
        next
    }

    /// `m` learns (RV1: every new member starts so).
    pub(crate) fn with_learner(&self, m: Member, description: &[u8]) -> Self {
        let mut next = self.clone();
        next.voters.retain(|x| x.id != m.id);
        next.learners.retain(|x| x.id != m.id);
        next.learners.push(m);
        next.learners.sort_by_key(|x| x.id);
        next.describe(m.id, description);
        next
    }

    /// `id` neither votes nor learns any more, and is retired (RV4).
    pub(crate) fn without(&self, id: NodeId) -> Self {
        let mut next = self.clone();
        next.voters.retain(|m| m.id != id);
        next.learners.retain(|m| m.id != id);
        next.descriptions.retain(|(i, _)| *i != id);
        if let Err(at) = next.retired.binary_search(&id) {
            next.retired.insert(at, id);
        }
        next
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
