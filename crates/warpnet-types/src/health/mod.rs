//! What a block records about the committee's health (rules H1, H2, H4, LR2): the late votes
//! its proposer received for the block's grandparent, the signers of the timeout certificate
//! that justified its round, members' signed reachability attestations, whom the chain blames
//! for the rounds that failed just before it, and, every [`SUMMARY_INTERVAL`] blocks and in a
//! block that carries a committee change, the health summary a client checks from that one
//! committed block and its [`crate::epoch::CommitProof`].
//!
//! Everything here is either signed by the member it speaks for (late votes, attestations), or
//! follows from the block's ancestry and proposal (timeout signers, blame, summary): voters
//! check the signatures here ([`BlockHealth::validate_signatures`]) and the rest against their
//! own computation (`warpnet-core`'s `core/reputation.rs`) before they vote, so nothing in a
//! certified block is one proposer's unchecked word.
//!
//! Encoding: a block without health records encodes exactly as before they existed (its id is
//! unchanged). A block with records sets the top bit of its payload count (a count is at most
//! 2^16, so no earlier block has it) and appends [`HEALTH_VERSION`] and the records after the
//! payload.

mod attestation;
mod summary;

pub use attestation::{
    fresh, reach_signing_bytes, Attestation, ATTESTATION_AGE_MS_MAX, ATTESTATION_AHEAD_MS_MAX,
    ATTESTATION_REFRESH_MS,
};
pub use summary::{HealthSummary, MemberHealth, Reputation};

use crate::bitmap::VoterBitmap;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::config::COMMITTEE_SIZE_MAX;
use crate::crypto::{verify_all, Signature, SignedItem};
use crate::{BlockId, ConsensusConfig, Height, NodeId, Round, ValidationError};

/// H4: a block at a height divisible by this carries the health summary.
pub const SUMMARY_INTERVAL: u64 = 16;
/// Version of the health section of a block's encoding.
pub const HEALTH_VERSION: u8 = 1;

/// H1: valid votes for one block (the grandparent of the block recording them) that its
/// proposer received but that are not in the parent's QC, by ascending voter. Each signature
/// is a vote signature, checkable with the block alone: `(network, epoch, round, block_id)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateVotes {
    pub round: Round,
    pub block_id: BlockId,
    pub votes: Vec<(NodeId, Signature)>,
}

/// What a block says about health. Part of the block's canonical encoding, so its id, its QC
/// and its proposer's signature cover every field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockHealth {
    /// H1: late votes for the block's grandparent.
    pub late: Option<LateVotes>,
    /// H1: the signers of the TC that justified the block's round (the proposal's TC); empty
    /// (zero bytes) when the round followed a QC.
    pub timeouts: VoterBitmap,
    /// H2: reachability attestations, by ascending attester, at most one each.
    pub attestations: Vec<Attestation>,
    /// LR2: the leaders of the rounds between the parent's round and this block's (none of
    /// them produced a block this chain kept), with how many rounds each, by ascending id.
    pub failed: Vec<(NodeId, u32)>,
    /// H4: the committee's health seen from this block's grandparent, when due.
    pub summary: Option<HealthSummary>,
}

impl BlockHealth {
    /// Whether the block records nothing (then it encodes as a block without records).
    pub fn is_empty(&self) -> bool {
        self.late.is_none()
            && self.timeouts.as_bytes().is_empty()
            && self.attestations.is_empty()
            && self.failed.is_empty()
            && self.summary.is_none()
    }

    /// H1, H2, LR2, H4: the shape a voter checks before anything else (members, order,
    /// bitmap lengths, the summary's member list).
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        let n = config.total_nodes();
        if let Some(late) = &self.late {
            if late.votes.is_empty() || late.round == Round(0) {
                return Err(ValidationError::LateVoter { id: NodeId(0), total: n });
            }
            ascending_members(late.votes.iter().map(|(id, _)| *id), n)
                .map_err(|id| ValidationError::LateVoter { id, total: n })?;
        }
        if !self.timeouts.as_bytes().is_empty() {
            self.timeouts
                .check(n)
                .map_err(|source| ValidationError::Bitmap { kind: "timeout signers", source })?;
        }
        ascending_members(self.attestations.iter().map(|a| a.attester), n)
            .map_err(|id| ValidationError::Attester { id, total: n })?;
        for a in &self.attestations {
            a.validate_shape(config)?;
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

    /// H1, H2: every late vote and attestation is signed by the member it names (one batch).
    pub fn validate_signatures(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        let mut messages: Vec<(NodeId, &'static str, Vec<u8>, &Signature)> = Vec::new();
        if let Some(late) = &self.late {
            let bytes = crate::certs::vote_signing_bytes(
                config.network(),
                config.epoch(),
                late.round,
                late.block_id,
            );
            for (id, sig) in &late.votes {
                messages.push((*id, "late vote", bytes.clone(), sig));
            }
        }
        for a in &self.attestations {
            messages.push((a.attester, "attestation", a.signing_bytes(config), &a.signature));
        }
        if messages.is_empty() {
            return Ok(());
        }
        let mut items = Vec::with_capacity(messages.len());
        for (id, kind, bytes, signature) in &messages {
            let key = config.public_key(*id).map_err(|_| ValidationError::UnknownNode {
                kind,
                id: *id,
                total: config.total_nodes(),
            })?;
            items.push(SignedItem { key, message: bytes, signature });
        }
        verify_all(config.scheme(), &items).map_err(|i| ValidationError::BadSignature {
            kind: messages[i].1,
            signer: messages[i].0,
        })
    }

    /// The members whose late votes are recorded.
    pub fn late_voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.late.iter().flat_map(|l| l.votes.iter().map(|(id, _)| *id))
    }

    /// Exact size of the health section's encoding (version byte included).
    pub fn encoded_len(&self) -> usize {
        let late = self.late.as_ref().map_or(0, |l| 8 + 32 + 4 + l.votes.len() * (2 + 64));
        let attestations: usize = self.attestations.iter().map(Attestation::encoded_len).sum();
        let summary = self.summary.as_ref().map_or(0, HealthSummary::encoded_len);
        1 + 1
            + late
            + 4
            + self.timeouts.as_bytes().len()
            + 4
            + attestations
            + 4
            + 6 * self.failed.len()
            + 1
            + summary
    }
}

/// Checks ids are members in strictly ascending order; returns the first offending id.
fn ascending_members(ids: impl Iterator<Item = NodeId>, n: usize) -> Result<(), NodeId> {
    let mut last: Option<NodeId> = None;
    for id in ids {
        if id.index() >= n || last.is_some_and(|l| l >= id) {
            return Err(id);
        }
        last = Some(id);
    }
    Ok(())
}

impl Encode for LateVotes {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.round).put(&self.block_id).len(self.votes.len());
        for (id, sig) in &self.votes {
            w.put(id).put(sig);
        }
    }
}

impl Decode for LateVotes {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            round: r.get()?,
            block_id: r.get()?,
            votes: r.list("late votes", COMMITTEE_SIZE_MAX, |r| Ok((r.get()?, r.get()?)))?,
        })
    }
}

impl Encode for BlockHealth {
    fn encode(&self, w: &mut Writer) {
        w.u8(HEALTH_VERSION).put(&self.late).put(&self.timeouts);
        w.len(self.attestations.len());
        for a in &self.attestations {
            w.put(a);
        }
        w.len(self.failed.len());
        for (id, count) in &self.failed {
            w.put(id).u32(*count);
        }
        w.put(&self.summary);
    }
}

impl Decode for BlockHealth {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let version = r.u8("health version")?;
        if version != HEALTH_VERSION {
            return Err(CodecError::UnsupportedVersion { got: version, supported: HEALTH_VERSION });
        }
        // Bitmaps decode unchecked; `validate_shape` checks them against the committee.
        let late = r.get()?;
        let timeouts = r.get()?;
        let attestations = r.list("attestations", COMMITTEE_SIZE_MAX, Reader::get)?;
        let failed =
            r.list("failed rounds", COMMITTEE_SIZE_MAX, |r| Ok((r.get()?, r.u32("failed")?)))?;
        let summary = r.get()?;
        Ok(Self { late, timeouts, attestations, failed, summary })
    }
}

/// H4: whether a block at `height` carries the summary on schedule (a block carrying a
/// committee change carries it too, see `warpnet-core`).
pub fn summary_due(height: Height) -> bool {
    height.0 > 0 && height.0.is_multiple_of(SUMMARY_INTERVAL)
}

#[cfg(test)]
mod tests;
