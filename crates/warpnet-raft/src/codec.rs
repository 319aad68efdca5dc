//! Canonical encodings (warpnet-types' codec: little-endian, length-prefixed, strict) of what
//! the engine hands to storage: hard state, log entries, memberships, snapshot metadata, and
//! the snapshot payload (membership ‖ the state machine's bytes).

use warpnet_types::codec::{CodecError, Decode, Encode, Reader, Writer};
use warpnet_types::config::COMMITTEE_SIZE_MAX;
use warpnet_types::message::MESSAGE_BYTES_MAX;
use warpnet_types::NodeId;

use crate::types::{EntryKind, HardState, LogEntry, Member, Membership, SnapshotMeta};

impl Encode for HardState {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.term).put(&self.vote).u64(self.commit);
    }
}

impl Decode for HardState {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self { term: r.u64("term")?, vote: r.get()?, commit: r.u64("commit")? })
    }
}

impl Encode for EntryKind {
    fn encode(&self, w: &mut Writer) {
        w.u8(match self {
            EntryKind::Normal => 0,
            EntryKind::Membership => 1,
            EntryKind::MembershipV2 => 2,
        });
    }
}

impl Decode for EntryKind {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.u8("entry kind")? {
            0 => Ok(EntryKind::Normal),
            1 => Ok(EntryKind::Membership),
            2 => Ok(EntryKind::MembershipV2),
            tag => Err(CodecError::InvalidTag { what: "entry kind", tag }),
        }
    }
}

impl Encode for LogEntry {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.index).u64(self.term).put(&self.kind).bytes(&self.data).bytes(&self.context);
    }
}

impl Decode for LogEntry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            index: r.u64("entry index")?,
            term: r.u64("entry term")?,
            kind: r.get()?,
            data: r.bytes("entry data", MESSAGE_BYTES_MAX)?.to_vec(),
            context: r.bytes("entry context", MESSAGE_BYTES_MAX)?.to_vec(),
        })
    }
}

impl Encode for Member {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.id).bool(self.public);
    }
}

impl Decode for Member {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self { id: r.get()?, public: r.bool("public")? })
    }
}

/// Largest member description (the node's: key and two addresses).
pub const DESCRIPTION_BYTES_MAX: usize = 1 << 10;

fn sorted_by_id<T>(items: &[T], id: impl Fn(&T) -> NodeId) -> Result<(), CodecError> {
    if items.windows(2).any(|w| id(&w[0]) >= id(&w[1])) {
        return Err(CodecError::Invalid {
            what: "membership",
            reason: "a list not sorted by id or duplicated".into(),
        });
    }
    Ok(())
}

impl Encode for Membership {
    fn encode(&self, w: &mut Writer) {
        w.len(self.voters().len());
        for m in self.voters() {
            w.put(m);
        }
        w.len(self.learners().len());
        for m in self.learners() {
            w.put(m);
        }
        w.len(self.retired().len());
        for id in self.retired() {
            w.put(id);
        }
        w.len(self.descriptions().len());
        for (id, d) in self.descriptions() {
            w.put(id).bytes(d);
        }
    }
}

impl Decode for Membership {
    /// Strict: every list sorted by id, no duplicates (the one encoding the engine makes).
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let voters: Vec<Member> = r.list("voters", COMMITTEE_SIZE_MAX, |r| r.get())?;
        let learners: Vec<Member> = r.list("learners", COMMITTEE_SIZE_MAX, |r| r.get())?;
        let retired: Vec<NodeId> = r.list("retired", usize::from(u16::MAX), |r| r.get())?;
        let descriptions: Vec<(NodeId, Vec<u8>)> =
            r.list("descriptions", 2 * COMMITTEE_SIZE_MAX, |r| {
                Ok((r.get()?, r.bytes("description", DESCRIPTION_BYTES_MAX)?.to_vec()))
            })?;
        sorted_by_id(&voters, |m| m.id)?;
        sorted_by_id(&learners, |m| m.id)?;
        sorted_by_id(&retired, |id| *id)?;
        sorted_by_id(&descriptions, |(id, _)| *id)?;
        Ok(Membership::from_parts(voters, learners, retired, descriptions))
    }
}

impl Encode for SnapshotMeta {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.index).u64(self.term).put(&self.membership);
    }
}

impl Decode for SnapshotMeta {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            index: r.u64("snapshot index")?,
            term: r.u64("snapshot term")?,
            membership: r.get()?,
        })
    }
}

const PAYLOAD_VERSION: u8 = 1;

/// What travels in a raft-rs snapshot's data: the membership with each voter's description
/// (raft-rs's own metadata has ids only) and the state machine's bytes.
pub(crate) fn encode_payload(membership: &Membership, app: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(app.len() + 16 + 3 * membership.len());
    w.u8(PAYLOAD_VERSION).put(membership).bytes(app);
    w.finish()
}

pub(crate) fn decode_payload(bytes: &[u8]) -> Result<(Membership, Vec<u8>), CodecError> {
    let mut r = Reader::new(bytes);
    let v = r.u8("snapshot payload version")?;
    if v != PAYLOAD_VERSION {
        return Err(CodecError::UnsupportedVersion { got: v, supported: PAYLOAD_VERSION });
    }
    let membership = r.get()?;
    let app = r.bytes("snapshot data", usize::MAX)?.to_vec();
    r.finish()?;
    Ok((membership, app))
}

/// What a membership entry's context carries: the member, and its description (RV1).
pub(crate) fn encode_member(m: &Member, description: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.put(m).bytes(description);
    w.finish()
}

pub(crate) fn decode_member(bytes: &[u8], id: NodeId) -> Result<(Member, Vec<u8>), CodecError> {
    let mut r = Reader::new(bytes);
    let m: Member = r.get()?;
    let description = r.bytes("description", DESCRIPTION_BYTES_MAX)?.to_vec();
    r.finish()?;
    if m.id != id {
        return Err(CodecError::Invalid {
            what: "membership entry",
            reason: format!("context names {} but the change names {id}", m.id),
        });
    }
    Ok((m, description))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip_and_membership_is_strict() {
        let m = Membership::new(vec![
            Member { id: NodeId(2), public: false },
            Member { id: NodeId(0), public: true },
        ]);
        assert_eq!(Membership::from_bytes(&m.to_bytes()), Ok(m.clone()));
        let hs = HardState { term: 7, vote: Some(NodeId(1)), commit: 42 };
        assert_eq!(HardState::from_bytes(&hs.to_bytes()), Ok(hs));
        let e = LogEntry {
            index: 3,
            term: 2,
            kind: EntryKind::Membership,
            data: vec![1],
            context: vec![],
        };
        assert_eq!(LogEntry::from_bytes(&e.to_bytes()), Ok(e));
        // Unsorted voters are a different encoding of the same set: refused.
        let mut w = Writer::new();
        w.len(2)
            .put(&Member { id: NodeId(2), public: true })
            .put(&Member { id: NodeId(0), public: true })
            .len(0)
            .len(0)
            .len(0);
        assert!(Membership::from_bytes(&w.finish()).is_err());
        // Learners, retired ids and descriptions travel too.
        let grown =
            m.with_learner(Member { id: NodeId(9), public: true }, b"desc").without(NodeId(2));
        assert_eq!(Membership::from_bytes(&grown.to_bytes()), Ok(grown.clone()));
        assert_eq!(grown.description(NodeId(9)), Some(&b"desc"[..]));
        assert!(grown.is_retired(NodeId(2)));
        let p = encode_payload(&m, b"state");
        assert_eq!(decode_payload(&p), Ok((m, b"state".to_vec())));
    }
}
