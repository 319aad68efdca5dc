//! H3, H4: the committee's health as computed from a window of committed blocks, one entry
//! per member, and how leader reputation (LR1, LR2) sees each member.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::config::COMMITTEE_SIZE_MAX;
use crate::{Height, NodeId, PublicKey};

/// How leader reputation sees a member (LR1, LR2). Only `Leader` members lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reputation {
    /// Eligible to lead.
    Leader,
    /// Declared itself not publicly reachable: never leads.
    NotPublic,
    /// LR1: declared public, but not enough members reached it at its advertised address.
    Unverified,
    /// LR2a: no signature of it is recorded in the window's last blocks.
    Offline,
    /// LR2b: its leadership failed after its last recorded signature.
    Failed,
    /// LR2c: its leadership failed often in the window, more often than it succeeded.
    Failing,
}

impl Reputation {
    pub const ALL: [Reputation; 6] = [
        Reputation::Leader,
        Reputation::NotPublic,
        Reputation::Unverified,
        Reputation::Offline,
        Reputation::Failed,
        Reputation::Failing,
    ];

    /// A stable name for the API and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Reputation::Leader => "leader",
            Reputation::NotPublic => "not_public",
            Reputation::Unverified => "unverified",
            Reputation::Offline => "offline",
            Reputation::Failed => "failed",
            Reputation::Failing => "failing",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Reputation::Leader => 0,
            Reputation::NotPublic => 1,
            Reputation::Unverified => 2,
            Reputation::Offline => 3,
            Reputation::Failed => 4,
            Reputation::Failing => 5,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, CodecError> {
        Reputation::ALL
            .into_iter()
            .find(|r| r.tag() == tag)
            .ok_or(CodecError::InvalidTag { what: "reputation", tag })
    }
}

/// One member's health, as the chain says (see docs/architecture.md, "Agreed health").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberHealth {
    pub public_key: PublicKey,
    /// H3: a signature of it (vote, late vote, timeout, proposal, attestation) is recorded in
    /// the window's last blocks.
    pub online: bool,
    /// H2: declared public, and a quorum with it (it and `quorum - 1` others) attests that
    /// those others reached it at its advertised address.
    pub verified_public: bool,
    /// The height of the last block in the window that records a signature of it.
    pub last_seen: Option<Height>,
    /// Blocks in the window that record its vote (in their QC or late votes).
    pub votes: u32,
    /// Blocks in the window it proposed.
    pub proposals: u32,
    /// Rounds of its leadership that failed, in the window (LR2).
    pub failed: u32,
    /// Other members whose latest attestation in the window says they reached it (H2).
    pub attested_by: u16,
    pub reputation: Reputation,
}

/// The committee's health computed from a window of blocks (H3, H4): one entry per member,
/// in committee order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSummary {
    /// The last block of the window it was computed over.
    pub window_end: Height,
    /// Blocks of the epoch in the window (fewer than a full window early in an epoch, when
    /// the previous epoch's summary fills in, H5).
    pub window_blocks: u32,
    /// LR1: no verified-public member is fit to lead, so leaders are drawn from the
    /// self-declared public members.
    pub fallback: bool,
    pub members: Vec<MemberHealth>,
}

impl HealthSummary {
    /// The member holding `key`, if listed.
    pub fn member(&self, key: &PublicKey) -> Option<&MemberHealth> {
        self.members.iter().find(|m| m.public_key == *key)
    }

    /// The members a client should route through: online and verified public (or, under the
    /// fallback, online and eligible to lead).
    pub fn routable(&self) -> impl Iterator<Item = (NodeId, &MemberHealth)> {
        let fallback = self.fallback;
        self.members.iter().enumerate().filter_map(move |(i, m)| {
            let public = m.verified_public || (fallback && m.reputation == Reputation::Leader);
            (m.online && public).then_some((NodeId(i as u16), m))
        })
    }

    pub fn encoded_len(&self) -> usize {
        let member =
            |m: &MemberHealth| 32 + 1 + 1 + 1 + 8 * m.last_seen.is_some() as usize + 12 + 2 + 1;
        8 + 4 + 1 + 4 + self.members.iter().map(member).sum::<usize>()
    }
}

impl Encode for MemberHealth {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.public_key).bool(self.online).bool(self.verified_public);
        w.put(&self.last_seen).u32(self.votes).u32(self.proposals).u32(self.failed);
        w.u16(self.attested_by).u8(self.reputation.tag());
    }
}

impl Decode for MemberHealth {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            public_key: r.get()?,
            online: r.bool("online")?,
            verified_public: r.bool("verified public")?,
            last_seen: r.get()?,
            votes: r.u32("votes")?,
            proposals: r.u32("proposals")?,
            failed: r.u32("failed")?,
            attested_by: r.u16("attested by")?,
            reputation: Reputation::from_tag(r.u8("reputation")?)?,
        })
    }
}

impl Encode for HealthSummary {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.window_end).u32(self.window_blocks).bool(self.fallback);
        w.len(self.members.len());
        for m in &self.members {
            w.put(m);
        }
    }
}

impl Decode for HealthSummary {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            window_end: r.get()?,
            window_blocks: r.u32("window blocks")?,
            fallback: r.bool("fallback")?,
            members: r.list("summary members", COMMITTEE_SIZE_MAX, Reader::get)?,
        })
    }
}
