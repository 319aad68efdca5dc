//! What a block records about the committee's health (rules H1–H5): whose late votes its
//! proposer received, which members its proposer reached by dialing their advertised address,
//! whom the chain blames for the rounds that failed just before it, and, every
//! [`SUMMARY_INTERVAL`] blocks and in every block that ends an epoch, the health summary that
//! a client checks from that one committed block (its [`crate::epoch::CommitProof`]).
//!
//! Voters check the shape of these records here and the parts that follow from the chain
//! (blame, summary) against their own computation (`warpnet-core`'s `health.rs`); the
//! participation and reachability bitmaps are the proposer's word, which health only counts
//! when enough distinct proposers say the same.

use crate::bitmap::VoterBitmap;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::config::COMMITTEE_SIZE_MAX;
use crate::{ConsensusConfig, Height, NodeId, PublicKey, ValidationError};

/// H4: a block at a height divisible by this carries the health summary.
pub const SUMMARY_INTERVAL: u64 = 16;

/// What a block says about health. Part of the block's canonical encoding, so its id, its QC
/// and its proposer's signature cover every field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockHealth {
    /// H1: members whose valid votes for the block's grandparent the proposer received (late
    /// votes included). Empty (zero bytes) when nothing is recorded.
    pub participation: VoterBitmap,
    /// H2: members whose advertised p2p address the proposer's node dialed successfully (an
    /// authenticated handshake) recently. Empty when nothing is recorded.
    pub reached: VoterBitmap,
    /// LR2: for the rounds between the parent's round and this block's, with no block in the
    /// chain, the leaders of those rounds and how many each failed, by ascending id.
    pub failed: Vec<(NodeId, u32)>,
    /// H4: the committee's health as computed from this block's ancestry, when due.
    pub summary: Option<HealthSummary>,
}

/// How leader reputation sees a member (LR1, LR2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reputation {
    /// Eligible to lead.
    Leader,
    /// Declared itself not publicly reachable: never leads.
    NotPublic,
    /// Declared public but not verified by enough members while others are (LR1).
    Unverified,
    /// Skipped: no vote or proposal of it is recorded in the last blocks (LR2).
    Silent,
    /// Skipped: its leadership failed too often in the window (LR2).
    Failing,
}

impl Reputation {
    pub const ALL: [Reputation; 5] = [
        Reputation::Leader,
        Reputation::NotPublic,
        Reputation::Unverified,
        Reputation::Silent,
        Reputation::Failing,
    ];

    /// A stable name for the API and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Reputation::Leader => "leader",
            Reputation::NotPublic => "not_public",
            Reputation::Unverified => "unverified",
            Reputation::Silent => "silent",
            Reputation::Failing => "failing",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Reputation::Leader => 0,
            Reputation::NotPublic => 1,
            Reputation::Unverified => 2,
            Reputation::Silent => 3,
            Reputation::Failing => 4,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, CodecError> {
        Reputation::ALL
            .into_iter()
            .find(|r| r.tag() == tag)
            .ok_or(CodecError::InvalidTag { what: "reputation", tag })
    }
}

/// One member's health, as the chain says (see docs/architecture.md, H3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberHealth {
    pub public_key: PublicKey,
    /// Proposed a block in the window, or enough distinct proposers recorded its votes.
    pub online: bool,
    /// Declared public, and enough distinct proposers reached it at its advertised address.
    pub verified_public: bool,
    /// The last height at which the chain records it proposing or voting.
    pub last_seen: Option<Height>,
    /// Blocks in the window that record its vote (in their QC or participation).
    pub votes: u32,
    /// Blocks in the window it proposed.
    pub proposals: u32,
    /// Failed rounds of its leadership in the window.
    pub failed: u32,
    pub reputation: Reputation,
}

/// The committee's health computed from a block's ancestry (H3, H4): one entry per member,
/// in committee order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSummary {
    /// The last block of the window it was computed over.
    pub window_end: Height,
    /// Blocks of the epoch in the window (fewer than the window's length early in an epoch,
    /// when the previous epoch's summary fills in, H5).
    pub window_blocks: u32,
    /// LR1: too few verified-public members, so leaders are drawn from the self-declared
    /// public members.
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
            let ok = m.online && (m.verified_public || (fallback && m.reputation == Reputation::Leader));
            ok.then_some((NodeId(i as u16), m))
        })
    }
}

/// H1, H2, LR2: the shape a voter checks (the truth of `failed` and `summary` is checked
/// against its own computation; the bitmaps are the proposer's word).
impl BlockHealth {
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        let n = config.total_nodes();
        for (what, bitmap) in [("participation", &self.participation), ("reached", &self.reached)]
        {
            if !bitmap.as_bytes().is_empty() {
                bitmap
                    .check(n)
                    .map_err(|source| ValidationError::Bitmap { kind: what, source })?;
            }
        }
        let mut last = None;
        for &(id, count) in &self.failed {
            if id.index() >= n || count == 0 || last.is_some_and(|l| l >= id) {
                return Err(ValidationError::FailedRounds { id, count, total: n });
            }
            last = Some(id);
        }
        if let Some(s) = &self.summary {
            let keys = config.participants().iter().map(|p| &p.public_key);
            if s.members.len() != n || !s.members.iter().map(|m| &m.public_key).eq(keys) {
                return Err(ValidationError::SummaryMembers { got: s.members.len(), total: n });
            }
        }
        Ok(())
    }

    /// Exact size of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        let member = |m: &MemberHealth| 32 + 2 + 1 + 8 * m.last_seen.is_some() as usize + 12 + 1;
        let summary =
            self.summary.as_ref().map_or(0, |s| 8 + 4 + 1 + 4 + s.members.iter().map(member).sum::<usize>());
        4 + self.participation.as_bytes().len()
            + 4
            + self.reached.as_bytes().len()
            + 4
            + 6 * self.failed.len()
            + 1
            + summary
    }
}

impl Encode for BlockHealth {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.participation).put(&self.reached);
        w.len(self.failed.len());
        for (id, count) in &self.failed {
            w.put(id).u32(*count);
        }
        w.put(&self.summary);
    }
}

impl Decode for BlockHealth {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        // Bitmaps decode unchecked; `validate_shape` checks them against the committee.
        let participation = r.get()?;
        let reached = r.get()?;
        let failed = r.list("failed rounds", COMMITTEE_SIZE_MAX, |r| Ok((r.get()?, r.u32("failed")?)))?;
        let summary = r.get()?;
        Ok(Self { participation, reached, failed, summary })
    }
}

impl Encode for MemberHealth {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.public_key).bool(self.online).bool(self.verified_public);
        w.put(&self.last_seen).u32(self.votes).u32(self.proposals).u32(self.failed);
        w.u8(self.reputation.tag());
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

/// H4: whether a block at `height` carries the summary (a block that ends an epoch always
/// does, H5).
pub fn summary_due(height: Height) -> bool {
    height.0 > 0 && height.0 % SUMMARY_INTERVAL == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SchemeId;

    fn summary(c: &ConsensusConfig) -> HealthSummary {
        HealthSummary {
            window_end: Height(31),
            window_blocks: 32,
            fallback: false,
            members: c
                .participants()
                .iter()
                .enumerate()
                .map(|(i, p)| MemberHealth {
                    public_key: p.public_key,
                    online: i != 2,
                    verified_public: i % 2 == 0,
                    last_seen: (i != 3).then_some(Height(30 - i as u64)),
                    votes: 20 + i as u32,
                    proposals: i as u32,
                    failed: (i == 2) as u32 * 3,
                    reputation: Reputation::ALL[i % 5],
                })
                .collect(),
        }
    }

    #[test]
    fn block_health_roundtrips_and_its_length_is_exact() {
        let (c, _) = ConsensusConfig::for_testing(4, SchemeId::InsecureSimulation, 0).unwrap();
        let h = BlockHealth {
            participation: VoterBitmap::from_ids(4, &[NodeId(0), NodeId(3)]).unwrap(),
            reached: VoterBitmap::empty(4),
            failed: vec![(NodeId(1), 2), (NodeId(2), 1)],
            summary: Some(summary(&c)),
        };
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), h.encoded_len());
        assert_eq!(BlockHealth::from_bytes(&bytes).unwrap(), h);
        assert_eq!(h.validate_shape(&c), Ok(()));
        let none = BlockHealth::default();
        assert_eq!(none.to_bytes().len(), none.encoded_len());
        assert_eq!(none.validate_shape(&c), Ok(()));
    }

    #[test]
    fn shapes_a_voter_refuses() {
        let (c, _) = ConsensusConfig::for_testing(4, SchemeId::InsecureSimulation, 0).unwrap();
        let wrong_len = BlockHealth {
            reached: VoterBitmap::empty(9),
            ..BlockHealth::default()
        };
        assert!(matches!(wrong_len.validate_shape(&c), Err(ValidationError::Bitmap { .. })));
        for failed in [vec![(NodeId(4), 1)], vec![(NodeId(1), 0)], vec![(NodeId(2), 1), (NodeId(1), 1)]]
        {
            let h = BlockHealth { failed, ..BlockHealth::default() };
            assert!(matches!(h.validate_shape(&c), Err(ValidationError::FailedRounds { .. })));
        }
        let mut s = summary(&c);
        s.members.swap(0, 1);
        let h = BlockHealth { summary: Some(s), ..BlockHealth::default() };
        assert!(matches!(h.validate_shape(&c), Err(ValidationError::SummaryMembers { .. })));
    }

    #[test]
    fn h4_summaries_every_sixteen_blocks() {
        let due: Vec<u64> = (0..50).filter(|&h| summary_due(Height(h))).collect();
        assert_eq!(due, [16, 32, 48]);
    }
}
