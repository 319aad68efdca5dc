//! Votes and quorum certificates, and the checks every certificate shares. Timeouts and
//! timeout certificates are in [`crate::timeout`] and re-exported here.
//!
//! - A [`Vote`] signs `(network, epoch, round, block id)` under `TAG_VOTE`.
//! - A [`QuorumCertificate`] holds the voter bitmap and the votes' signatures in bitmap order.
//! - A [`Timeout`] signs `(network, epoch, round, highest QC round)` under `TAG_TIMEOUT` and
//!   carries that highest QC.
//! - A [`TimeoutCertificate`] holds a quorum of timeout signatures and each signer's highest QC
//!   round (Jolteon), so a proposal after a TC can prove it extends the highest of them.

use crate::bitmap::VoterBitmap;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::config::COMMITTEE_SIZE_MAX;
use crate::crypto::{domain, verify_all, Signature, SignedItem, Signer};
use crate::error::ValidationError;
pub use crate::timeout::{timeout_signing_bytes, Timeout, TimeoutCertificate};
use crate::{Block, BlockId, ConsensusConfig, Digest, Epoch, NetworkId, NodeId, Round};

/// Bytes a vote's signature covers.
pub fn vote_signing_bytes(
    network: &NetworkId,
    epoch: Epoch,
    round: Round,
    block: BlockId,
) -> Vec<u8> {
    let mut w = domain::signing_writer(domain::TAG_VOTE, network);
    w.put(&epoch).put(&round).put(&block);
    w.finish()
}

pub(crate) fn check_epoch(
    kind: &'static str,
    config: &ConsensusConfig,
    got: Epoch,
) -> Result<(), ValidationError> {
    if got == config.epoch() {
        Ok(())
    } else {
        Err(ValidationError::WrongEpoch { kind, expected: config.epoch(), got })
    }
}

pub(crate) fn check_member(
    kind: &'static str,
    config: &ConsensusConfig,
    id: NodeId,
) -> Result<(), ValidationError> {
    if config.contains(id) {
        Ok(())
    } else {
        Err(ValidationError::UnknownNode { kind, id, total: config.total_nodes() })
    }
}

/// Checks a certificate's bitmap, signature count and quorum.
pub(crate) fn check_signers(
    kind: &'static str,
    config: &ConsensusConfig,
    signers: &VoterBitmap,
    signatures: usize,
) -> Result<(), ValidationError> {
    signers
        .check(config.total_nodes())
        .map_err(|source| ValidationError::Bitmap { kind, source })?;
    let voters = signers.count();
    if voters != signatures {
        return Err(ValidationError::SignatureCount { kind, voters, signatures });
    }
    let need = config.quorum_threshold();
    if voters < need {
        return Err(ValidationError::NoQuorum { kind, got: voters, need });
    }
    Ok(())
}

/// Verifies signatures by the listed signers over their messages, batch first.
pub(crate) fn check_signatures<'a>(
    kind: &'static str,
    config: &ConsensusConfig,
    items: impl Iterator<Item = (NodeId, &'a [u8], &'a Signature)>,
) -> Result<(), ValidationError> {
    let mut signers = Vec::new();
    let mut batch = Vec::new();
    for (id, message, signature) in items {
        let key = config.public_key(id).map_err(|_| ValidationError::UnknownNode {
            kind,
            id,
            total: config.total_nodes(),
        })?;
        signers.push(id);
        batch.push(SignedItem { key, message, signature });
    }
    verify_all(config.scheme(), &batch)
        .map_err(|i| ValidationError::BadSignature { kind, signer: signers[i] })
}

/// One member's vote for a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub epoch: Epoch,
    pub round: Round,
    pub block_id: BlockId,
    pub voter: NodeId,
    pub signature: Signature,
}

impl Vote {
    /// Signs a vote for `block` as `voter`.
    pub fn sign(
        config: &ConsensusConfig,
        block: &Block,
        voter: NodeId,
        signer: &dyn Signer,
    ) -> Self {
        let bytes = vote_signing_bytes(config.network(), block.epoch(), block.round(), block.id());
        Self {
            epoch: block.epoch(),
            round: block.round(),
            block_id: block.id(),
            voter,
            signature: signer.sign(&bytes),
        }
    }

    pub fn signing_bytes(&self, config: &ConsensusConfig) -> Vec<u8> {
        vote_signing_bytes(config.network(), self.epoch, self.round, self.block_id)
    }

    /// Epoch and voter only: cheap checks before the signature.
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        check_epoch("vote", config, self.epoch)?;
        check_member("vote", config, self.voter)
    }

    pub fn validate(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.validate_shape(config)?;
        let bytes = self.signing_bytes(config);
        check_signatures(
            "vote",
            config,
            std::iter::once((self.voter, bytes.as_slice(), &self.signature)),
        )
    }
}

impl Encode for Vote {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.epoch)
            .put(&self.round)
            .put(&self.block_id)
            .put(&self.voter)
            .put(&self.signature);
    }
}

impl Decode for Vote {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            epoch: r.get()?,
            round: r.get()?,
            block_id: r.get()?,
            voter: r.get()?,
            signature: r.get()?,
        })
    }
}

/// A quorum of votes for one block in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumCertificate {
    epoch: Epoch,
    round: Round,
    block_id: BlockId,
    voters: VoterBitmap,
    signatures: Vec<Signature>,
}

impl QuorumCertificate {
    /// Assembles a QC from votes for the same block and round (signatures in bitmap order).
    /// Callers pass votes they have verified; `validate` re-checks everything.
    pub fn from_votes(config: &ConsensusConfig, votes: &[&Vote]) -> Option<Self> {
        let first = votes.first()?;
        let mut sorted: Vec<&Vote> = votes.to_vec();
        sorted.sort_by_key(|v| v.voter);
        let ids: Vec<NodeId> = sorted.iter().map(|v| v.voter).collect();
        let voters = VoterBitmap::from_ids(config.total_nodes(), &ids).ok()?;
        Some(Self {
            epoch: first.epoch,
            round: first.round,
            block_id: first.block_id,
            voters,
            signatures: sorted.iter().map(|v| v.signature).collect(),
        })
    }

    /// Builds a QC from raw parts, unchecked: for decoding and for forging in the simulator.
    pub fn from_parts(
        epoch: Epoch,
        round: Round,
        block_id: BlockId,
        voters: VoterBitmap,
        signatures: Vec<Signature>,
    ) -> Self {
        Self { epoch, round, block_id, voters, signatures }
    }

    /// The certificate of the genesis block: round 0, no signatures, valid by definition.
    pub fn genesis(config: &ConsensusConfig) -> Self {
        let id = Block::genesis(config).id();
        Self::from_parts(
            config.epoch(),
            Round(0),
            id,
            VoterBitmap::empty(config.total_nodes()),
            Vec::new(),
        )
    }

    /// The QC inside the genesis block itself (certifies nothing; never validated). In a later
    /// epoch's genesis it names the configuration's digest, so the block commits to it.
    pub(crate) fn pre_genesis(config: &ConsensusConfig) -> Self {
        let named = if config.start().is_some() { config.digest() } else { Digest::ZERO };
        Self::from_parts(
            config.epoch(),
            Round(0),
            named,
            VoterBitmap::empty(config.total_nodes()),
            Vec::new(),
        )
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
    pub fn round(&self) -> Round {
        self.round
    }
    pub fn block_id(&self) -> BlockId {
        self.block_id
    }
    pub fn voters(&self) -> &VoterBitmap {
        &self.voters
    }
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Everything but the signatures themselves.
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        check_epoch("quorum certificate", config, self.epoch)?;
        if self.round == Round(0) {
            // Only the genesis QC has round 0 and it carries no signatures.
            return if *self == Self::genesis(config) {
                Ok(())
            } else {
                Err(ValidationError::NotGenesis)
            };
        }
        check_signers("quorum certificate", config, &self.voters, self.signatures.len())
    }

    /// Shape, then every signature (one batch; one by one only if the batch fails).
    pub fn validate(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.validate_shape(config)?;
        if self.round == Round(0) {
            return Ok(());
        }
        let bytes = vote_signing_bytes(config.network(), self.epoch, self.round, self.block_id);
        let items =
            self.voters.iter().zip(&self.signatures).map(|(id, s)| (id, bytes.as_slice(), s));
        check_signatures("quorum certificate", config, items)
    }
}

impl Encode for QuorumCertificate {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.epoch).put(&self.round).put(&self.block_id).put(&self.voters);
        w.len(self.signatures.len());
        for s in &self.signatures {
            w.put(s);
        }
    }
}

impl Decode for QuorumCertificate {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let epoch = r.get()?;
        let round = r.get()?;
        let block_id = r.get()?;
        let voters = r.get()?;
        let signatures = r.list("qc signatures", COMMITTEE_SIZE_MAX, Reader::get)?;
        Ok(Self { epoch, round, block_id, voters, signatures })
    }
}
