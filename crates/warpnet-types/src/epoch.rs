//! Proofs that a block committed, and that an epoch ended, checkable by anyone who knows the
//! committee of the epoch (rule EP4).
//!
//! [`CommitProof`] proves a block committed: the block, its descendants up to a block certified
//! in the round right after its parent's (each hash-linked to the one before), and the QC of
//! that last block, signed by a quorum of the epoch's committee. By the 2-chain rule (C1) the
//! parent of that last block, and so every block before it, is committed; every block the
//! proven one descends from is committed too (hash links). An epoch ends at the first
//! committed block that carries a valid membership change (EP1, EP3): an [`EpochEnd`] is a
//! commit proof of that block, whose descendants in the epoch carry no payload (EP2); the next
//! committee follows from the change. [`EpochProof`] chains ends of consecutive epochs: each
//! link is checked with the committee the previous link produced, starting from one the
//! verifier already trusts (its genesis).

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::config::EpochStart;
use crate::membership::{Change, MembershipError};
use crate::{Block, ConsensusConfig, Epoch, QuorumCertificate, ValidationError};

/// Most blocks one epoch end carries (the reconfiguration block and its suffix up to the
/// certified pair). A suffix only grows while rounds fail; past this the proof is refused and
/// a later one (after the commit) is asked for.
pub const EPOCH_END_BLOCKS_MAX: usize = 64;
/// Most epoch ends in one proof message; a longer history is fetched in pages.
pub const EPOCH_PROOF_ENDS_MAX: usize = 16;

/// Why an epoch proof is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("an epoch end needs 2 to {EPOCH_END_BLOCKS_MAX} blocks, got {got}")]
    BlockCount { got: usize },
    #[error("block {index} of the epoch end is invalid: {source}")]
    Block { index: usize, source: ValidationError },
    #[error("block {index} of the epoch end does not extend the one before")]
    Link { index: usize },
    #[error("the last two blocks are not in consecutive rounds, so nothing is proven committed")]
    NotConsecutive,
    #[error("the certificate does not certify the last block")]
    CertificateTarget,
    #[error("the certificate is invalid: {0}")]
    Certificate(ValidationError),
    #[error("the first block carries {got} membership commands, not exactly one")]
    NoChange { got: usize },
    #[error("the membership command does not decode: {0}")]
    Decode(CodecError),
    #[error("the membership change is invalid: {0}")]
    Change(#[from] MembershipError),
    #[error("block {index} follows the reconfiguration in its epoch but carries a payload (EP2)")]
    SuffixPayload { index: usize },
    #[error("the proof is for epoch {got}, expected {expected}")]
    Epoch { got: Epoch, expected: Epoch },
    #[error("an epoch proof carries 1 to {EPOCH_PROOF_ENDS_MAX} ends, got {got}")]
    EndCount { got: usize },
}

/// The proof that a block (the first) committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitProof {
    /// The proven block first, then its descendants, each the child of the one before; the
    /// last two in consecutive rounds.
    pub blocks: Vec<Block>,
    /// Certifies the last block.
    pub certificate: QuorumCertificate,
}

/// The commit proof of the block that ended an epoch.
pub type EpochEnd = CommitProof;

impl CommitProof {
    /// The proven block.
    pub fn block(&self) -> Option<&Block> {
        self.blocks.first()
    }

    pub fn epoch(&self) -> Epoch {
        self.certificate.epoch()
    }

    /// Checks that the first block committed in `config`'s epoch.
    pub fn verify(&self, config: &ConsensusConfig) -> Result<(), ProofError> {
        let n = self.blocks.len();
        if !(2..=EPOCH_END_BLOCKS_MAX).contains(&n) {
            return Err(ProofError::BlockCount { got: n });
        }
        if self.epoch() != config.epoch() {
            return Err(ProofError::Epoch { got: self.epoch(), expected: config.epoch() });
        }
        for (index, b) in self.blocks.iter().enumerate() {
            b.validate_shape(config).map_err(|source| ProofError::Block { index, source })?;
            if index > 0 && b.parent() != self.blocks[index - 1].id() {
                return Err(ProofError::Link { index });
            }
        }
        let (prev, last) = (&self.blocks[n - 2], &self.blocks[n - 1]);
        if last.round() != prev.round().next() {
            return Err(ProofError::NotConsecutive);
        }
        let qc = &self.certificate;
        if qc.block_id() != last.id() || qc.round() != last.round() {
            return Err(ProofError::CertificateTarget);
        }
        qc.validate(config).map_err(ProofError::Certificate)
    }

    /// Checks that the first block committed in `config`'s epoch and ended it (EP2, EP3), and
    /// returns the next epoch's committee.
    pub fn next_epoch(&self, config: &ConsensusConfig) -> Result<ConsensusConfig, ProofError> {
        self.verify(config)?;
        if let Some(index) = self.blocks.iter().skip(1).position(|b| !b.payload().is_empty()) {
            return Err(ProofError::SuffixPayload { index: index + 1 });
        }
        let first = &self.blocks[0];
        let change = reconfiguration(first.payload())?;
        let (members, retired) = change.apply(config)?;
        let start = EpochStart {
            after: first.id(),
            height: first.height(),
            timestamp_ms: first.timestamp_ms(),
        };
        Ok(config.next_epoch(members, retired, start).map_err(MembershipError::from)?)
    }
}

/// The one membership change a reconfiguration block's payload carries (EP1).
pub fn reconfiguration(payload: &[Vec<u8>]) -> Result<Change, ProofError> {
    let mut found = payload.iter().filter_map(|c| Change::from_command(c));
    match (found.next(), found.next()) {
        (Some(change), None) => change.map_err(ProofError::Decode),
        (None, _) => Err(ProofError::NoChange { got: 0 }),
        (Some(_), Some(_)) => Err(ProofError::NoChange { got: 2 + found.count() }),
    }
}

/// The ends of consecutive epochs, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochProof {
    pub ends: Vec<EpochEnd>,
}

impl EpochProof {
    /// Checks every link from `config` (the committee the verifier trusts) and returns the
    /// committees of the epochs that follow, in order. Ends of epochs before `config`'s are
    /// skipped (a proof may start earlier than the verifier needs).
    pub fn verify(&self, config: &ConsensusConfig) -> Result<Vec<ConsensusConfig>, ProofError> {
        if self.ends.is_empty() || self.ends.len() > EPOCH_PROOF_ENDS_MAX {
            return Err(ProofError::EndCount { got: self.ends.len() });
        }
        let mut next = Vec::new();
        let mut current = config.clone();
        for end in self.ends.iter().skip_while(|e| e.epoch() < config.epoch()) {
            let c = end.next_epoch(&current)?;
            next.push(c.clone());
            current = c;
        }
        Ok(next)
    }
}

impl Encode for CommitProof {
    fn encode(&self, w: &mut Writer) {
        w.len(self.blocks.len());
        for b in &self.blocks {
            w.put(b);
        }
        w.put(&self.certificate);
    }
}

impl Decode for CommitProof {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let blocks = r.list("epoch end blocks", EPOCH_END_BLOCKS_MAX, |r| r.get())?;
        Ok(Self { blocks, certificate: r.get()? })
    }
}

impl Encode for EpochProof {
    fn encode(&self, w: &mut Writer) {
        w.len(self.ends.len());
        for e in &self.ends {
            w.put(e);
        }
    }
}

impl Decode for EpochProof {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self { ends: r.list("epoch proof ends", EPOCH_PROOF_ENDS_MAX, |r| r.get())? })
    }
}
