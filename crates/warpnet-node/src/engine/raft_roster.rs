//! Who is who in Raft mode (RV5): a member's id (its index in the committee file, or for a
//! member added later one derived from its key), the roster of keys and addresses (the file's
//! members and those the membership describes), and the voter request entries through which an
//! approved change reaches the leader (`u8 2 ‖ kind ‖ participant or key`).

use std::collections::HashMap;

use warpnet_net::Peer;
use warpnet_raft::Membership;
use warpnet_types::codec::{CodecError, Decode, Reader, Writer};
use warpnet_types::{ConsensusConfig, Digest, NodeId, Participant, PublicKey};

/// The version byte of a voter request entry (client command entries are version 1).
pub const VOTER_REQUEST_VERSION: u8 = 2;
/// Ids of members added later start here (the committee file's indices stay below).
pub const DERIVED_ID_FIRST: u16 = 1_024;

/// RV5: a member's id: its index in the committee file, else derived from its key.
pub fn id_of(config: &ConsensusConfig, key: &PublicKey) -> NodeId {
    if let Some(id) = config.node_id_of(key) {
        return id;
    }
    let d = Digest::hash(b"warpnet/v1/raft-member-id", &key.0);
    let x = u16::from_le_bytes([d.as_bytes()[0], d.as_bytes()[1]]);
    NodeId(DERIVED_ID_FIRST + x % (u16::MAX - DERIVED_ID_FIRST))
}

/// What a voter request asks the leader to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoterRequest {
    /// AddVoter (as a learner first, RV1).
    Add(Participant),
    /// RemoveServer.
    Remove { key: PublicKey },
}

impl VoterRequest {
    pub fn key(&self) -> PublicKey {
        match self {
            VoterRequest::Add(p) => p.public_key,
            VoterRequest::Remove { key } => *key,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VOTER_REQUEST_VERSION);
        match self {
            VoterRequest::Add(p) => w.u8(1).put(p),
            VoterRequest::Remove { key } => w.u8(2).put(key),
        };
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let v = r.u8("voter request version")?;
        if v != VOTER_REQUEST_VERSION {
            return Err(CodecError::UnsupportedVersion {
                got: v,
                supported: VOTER_REQUEST_VERSION,
            });
        }
        let request = match r.u8("voter request kind")? {
            1 => VoterRequest::Add(r.get()?),
            2 => VoterRequest::Remove { key: r.get()? },
            tag => return Err(CodecError::InvalidTag { what: "voter request kind", tag }),
        };
        r.finish()?;
        Ok(request)
    }

    /// Whether `membership` shows the change made.
    pub(super) fn done(&self, config: &ConsensusConfig, membership: &Membership) -> bool {
        let id = id_of(config, &self.key());
        match self {
            VoterRequest::Add(_) => membership.contains(id) || membership.is_retired(id),
            VoterRequest::Remove { .. } => !membership.knows(id),
        }
    }
}

/// Who is who: the committee file's members and those the membership describes.
#[derive(Default)]
pub struct Roster {
    by_id: HashMap<NodeId, Participant>,
    by_key: HashMap<PublicKey, NodeId>,
}

impl Roster {
    /// The committee file's members, the members `membership` describes, and the bootstrap
    /// peers (whose ids follow from their keys).
    pub fn new(config: &ConsensusConfig, membership: &Membership, bootstrap: &[Peer]) -> Self {
        Self::after(&Roster::default(), config, membership, bootstrap)
    }

    /// As [`Roster::new`], keeping whom `previous` knew (a removed member's key is still known
    /// for its last heartbeat, RV7).
    pub fn after(
        previous: &Roster,
        config: &ConsensusConfig,
        membership: &Membership,
        bootstrap: &[Peer],
    ) -> Self {
        let mut r = Roster::default();
        for (id, p) in &previous.by_id {
            r.insert(*id, p.clone());
        }
        for (i, p) in config.participants().iter().enumerate() {
            r.insert(NodeId(i as u16), p.clone());
        }
        for (id, d) in membership.descriptions() {
            if let Ok(p) = Participant::from_bytes(d) {
                r.insert(*id, p);
            }
        }
        for b in bootstrap {
            let id = id_of(config, &b.key);
            if !r.by_id.contains_key(&id) {
                let p = Participant {
                    public_key: b.key,
                    address: b.address.clone(),
                    api_address: String::new(),
                    public: false,
                };
                r.insert(id, p);
            }
        }
        r
    }

    fn insert(&mut self, id: NodeId, p: Participant) {
        self.by_key.insert(p.public_key, id);
        self.by_id.insert(id, p);
    }

    pub fn get(&self, id: NodeId) -> Option<&Participant> {
        self.by_id.get(&id)
    }

    pub fn id(&self, key: &PublicKey) -> Option<NodeId> {
        self.by_key.get(key).copied()
    }

    pub fn key(&self, id: NodeId) -> Option<PublicKey> {
        self.by_id.get(&id).map(|p| p.public_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Voter requests round-trip; another version or kind is refused.
    #[test]
    fn voter_requests_round_trip() {
        let p = Participant {
            public_key: PublicKey([7; 32]),
            address: "127.0.0.1:1".into(),
            api_address: "127.0.0.1:2".into(),
            public: true,
        };
        for r in [VoterRequest::Add(p), VoterRequest::Remove { key: PublicKey([9; 32]) }] {
            assert_eq!(VoterRequest::decode(&r.encode()), Ok(r));
        }
        assert!(VoterRequest::decode(&[1, 1]).is_err());
        assert!(VoterRequest::decode(&[2, 9]).is_err());
    }
}
