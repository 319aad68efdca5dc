//! Equivocation evidence: two different signed statements by one member for one round.
//!
//! Proposal and vote signatures cover `(epoch, round, block id)` and timeout signatures cover
//! `(epoch, round, highest QC round)`, so a pair of them is self-contained proof that anyone can
//! check with [`Equivocation::verify`], without the blocks themselves.

use crate::certs::{timeout_signing_bytes, vote_signing_bytes};
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::{verify_all, SignedItem};
use crate::message::proposal_signing_bytes;
use crate::{BlockId, ConsensusConfig, Epoch, NodeId, Round, Signature};

/// One signed statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statement {
    Proposal { block_id: BlockId, signature: Signature },
    Vote { block_id: BlockId, signature: Signature },
    Timeout { high_qc_round: Round, signature: Signature },
}

/// Two conflicting statements of one kind, by one signer, in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    pub signer: NodeId,
    pub epoch: Epoch,
    pub round: Round,
    pub first: Statement,
    pub second: Statement,
}

impl Statement {
    fn signing_bytes(
        &self,
        config: &ConsensusConfig,
        epoch: Epoch,
        round: Round,
    ) -> (Vec<u8>, &Signature) {
        let net = config.network();
        match self {
            Statement::Proposal { block_id, signature } => {
                (proposal_signing_bytes(net, epoch, round, *block_id), signature)
            }
            Statement::Vote { block_id, signature } => {
                (vote_signing_bytes(net, epoch, round, *block_id), signature)
            }
            Statement::Timeout { high_qc_round, signature } => {
                (timeout_signing_bytes(net, epoch, round, *high_qc_round), signature)
            }
        }
    }
}

impl Equivocation {
    /// True if both statements are of the same kind, differ, and carry valid signatures.
    pub fn verify(&self, config: &ConsensusConfig) -> bool {
        let same_kind = std::mem::discriminant(&self.first) == std::mem::discriminant(&self.second);
        let Ok(key) = config.public_key(self.signer) else {
            return false;
        };
        if !same_kind || self.first == self.second || self.epoch != config.epoch() {
            return false;
        }
        let (m1, s1) = self.first.signing_bytes(config, self.epoch, self.round);
        let (m2, s2) = self.second.signing_bytes(config, self.epoch, self.round);
        if m1 == m2 {
            return false;
        }
        let items = [
            SignedItem { key, message: &m1, signature: s1 },
            SignedItem { key, message: &m2, signature: s2 },
        ];
        verify_all(config.scheme(), &items).is_ok()
    }
}

impl Encode for Statement {
    fn encode(&self, w: &mut Writer) {
        match self {
            Statement::Proposal { block_id, signature } => w.u8(1).put(block_id).put(signature),
            Statement::Vote { block_id, signature } => w.u8(2).put(block_id).put(signature),
            Statement::Timeout { high_qc_round, signature } => {
                w.u8(3).put(high_qc_round).put(signature)
            }
        };
    }
}

impl Decode for Statement {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(match r.u8("statement kind")? {
            1 => Statement::Proposal { block_id: r.get()?, signature: r.get()? },
            2 => Statement::Vote { block_id: r.get()?, signature: r.get()? },
            3 => Statement::Timeout { high_qc_round: r.get()?, signature: r.get()? },
            tag => return Err(CodecError::InvalidTag { what: "statement kind", tag }),
        })
    }
}

impl Encode for Equivocation {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.signer).put(&self.epoch).put(&self.round).put(&self.first).put(&self.second);
    }
}

impl Decode for Equivocation {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            signer: r.get()?,
            epoch: r.get()?,
            round: r.get()?,
            first: r.get()?,
            second: r.get()?,
        })
    }
}
