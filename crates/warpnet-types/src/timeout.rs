//! Timeouts and timeout certificates (Jolteon): a member's signed statement that its round
//! timed out, carrying its highest QC, and a quorum of them, carrying the QC of its highest
//! entry.

use crate::bitmap::VoterBitmap;
use crate::certs::{check_epoch, check_member, check_signatures, check_signers, QuorumCertificate};
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::config::COMMITTEE_SIZE_MAX;
use crate::crypto::{domain, Signature, Signer};
use crate::error::ValidationError;
use crate::{ConsensusConfig, Epoch, NetworkId, NodeId, Round};

/// Bytes a timeout's signature covers.
pub fn timeout_signing_bytes(
    network: &NetworkId,
    epoch: Epoch,
    round: Round,
    high_qc_round: Round,
) -> Vec<u8> {
    let mut w = domain::signing_writer(domain::TAG_TIMEOUT, network);
    w.put(&epoch).put(&round).put(&high_qc_round);
    w.finish()
}

/// A member's signed statement that its round timed out, with its highest QC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeout {
    pub epoch: Epoch,
    pub round: Round,
    pub high_qc: QuorumCertificate,
    pub signer: NodeId,
    pub signature: Signature,
}

impl Timeout {
    pub fn sign(
        config: &ConsensusConfig,
        round: Round,
        high_qc: QuorumCertificate,
        id: NodeId,
        signer: &dyn Signer,
    ) -> Self {
        let bytes = timeout_signing_bytes(config.network(), config.epoch(), round, high_qc.round());
        Self { epoch: config.epoch(), round, high_qc, signer: id, signature: signer.sign(&bytes) }
    }

    /// The signer's highest QC round, the value its signature covers.
    pub fn high_qc_round(&self) -> Round {
        self.high_qc.round()
    }

    pub fn signing_bytes(&self, config: &ConsensusConfig) -> Vec<u8> {
        timeout_signing_bytes(config.network(), self.epoch, self.round, self.high_qc.round())
    }

    /// Everything but signatures (the timeout's own and its high QC's).
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        check_epoch("timeout", config, self.epoch)?;
        check_member("timeout", config, self.signer)?;
        if self.high_qc.round() >= self.round {
            return Err(ValidationError::HighQcNotLower {
                kind: "timeout",
                round: self.round,
                high_qc_round: self.high_qc.round(),
            });
        }
        self.high_qc.validate_shape(config)
    }

    /// The timeout's own signature only (the high QC is checked separately, or is known).
    pub fn validate_signature(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        let bytes = self.signing_bytes(config);
        check_signatures(
            "timeout",
            config,
            std::iter::once((self.signer, bytes.as_slice(), &self.signature)),
        )
    }

    pub fn validate(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.validate_shape(config)?;
        self.validate_signature(config)?;
        self.high_qc.validate(config)
    }
}

impl Encode for Timeout {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.epoch)
            .put(&self.round)
            .put(&self.high_qc)
            .put(&self.signer)
            .put(&self.signature);
    }
}

impl Decode for Timeout {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            epoch: r.get()?,
            round: r.get()?,
            high_qc: r.get()?,
            signer: r.get()?,
            signature: r.get()?,
        })
    }
}

/// A quorum of timeouts for one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutCertificate {
    epoch: Epoch,
    round: Round,
    signers: VoterBitmap,
    high_qc_rounds: Vec<Round>,
    signatures: Vec<Signature>,
    /// The QC of the highest entry in `high_qc_rounds`. A signer's claimed round is only a
    /// number under its signature; carrying the QC proves the maximum, so a Byzantine signer
    /// cannot claim a QC nobody holds and keep the next leader from proposing (P2).
    high_qc: QuorumCertificate,
}

impl TimeoutCertificate {
    /// Assembles a TC from verified timeouts of one round.
    pub fn from_timeouts(config: &ConsensusConfig, timeouts: &[&Timeout]) -> Option<Self> {
        let first = timeouts.first()?;
        let mut sorted: Vec<&Timeout> = timeouts.to_vec();
        sorted.sort_by_key(|t| t.signer);
        let ids: Vec<NodeId> = sorted.iter().map(|t| t.signer).collect();
        Some(Self {
            epoch: first.epoch,
            round: first.round,
            signers: VoterBitmap::from_ids(config.total_nodes(), &ids).ok()?,
            high_qc_rounds: sorted.iter().map(|t| t.high_qc_round()).collect(),
            signatures: sorted.iter().map(|t| t.signature).collect(),
            high_qc: sorted.iter().map(|t| &t.high_qc).max_by_key(|qc| qc.round())?.clone(),
        })
    }

    /// Raw parts, unchecked (`validate` checks them): used by the core's timeout collector,
    /// which keeps only (round, signature) per signer and the round's highest QC, and by the
    /// simulator's forgeries. Signatures and rounds go in signer-id order.
    pub fn from_parts(
        epoch: Epoch,
        round: Round,
        signers: VoterBitmap,
        high_qc_rounds: Vec<Round>,
        signatures: Vec<Signature>,
        high_qc: QuorumCertificate,
    ) -> Self {
        Self { epoch, round, signers, high_qc_rounds, signatures, high_qc }
    }

    /// The QC of the highest signer's entry.
    pub fn high_qc(&self) -> &QuorumCertificate {
        &self.high_qc
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
    pub fn round(&self) -> Round {
        self.round
    }
    pub fn signers(&self) -> &VoterBitmap {
        &self.signers
    }
    pub fn high_qc_rounds(&self) -> &[Round] {
        &self.high_qc_rounds
    }

    /// The highest QC round among the signers: a proposal justified by this TC must extend a
    /// QC at least this high (S1b).
    pub fn max_high_qc_round(&self) -> Round {
        self.high_qc_rounds.iter().copied().max().unwrap_or_default()
    }

    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        const KIND: &str = "timeout certificate";
        check_epoch(KIND, config, self.epoch)?;
        check_signers(KIND, config, &self.signers, self.signatures.len())?;
        if self.high_qc_rounds.len() != self.signatures.len() {
            return Err(ValidationError::HighQcRoundCount {
                signers: self.signers.count(),
                rounds: self.high_qc_rounds.len(),
            });
        }
        if let Some(&bad) = self.high_qc_rounds.iter().find(|&&r| r >= self.round) {
            return Err(ValidationError::HighQcNotLower {
                kind: KIND,
                round: self.round,
                high_qc_round: bad,
            });
        }
        let (tc_max, qc_round) = (self.max_high_qc_round(), self.high_qc.round());
        if tc_max != qc_round {
            return Err(ValidationError::TcHighQcMismatch { tc_max, qc_round });
        }
        self.high_qc.validate_shape(config)
    }

    /// Shape, the signers' signatures, and the carried QC's signatures.
    pub fn validate(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.validate_shape(config)?;
        self.validate_signatures(config)?;
        self.high_qc.validate(config)
    }

    /// The signers' signatures only (the carried QC is checked separately, or is known).
    pub fn validate_signatures(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        let messages: Vec<Vec<u8>> = self
            .high_qc_rounds
            .iter()
            .map(|&hqc| timeout_signing_bytes(config.network(), self.epoch, self.round, hqc))
            .collect();
        let items = self
            .signers
            .iter()
            .zip(&messages)
            .zip(&self.signatures)
            .map(|((id, m), s)| (id, m.as_slice(), s));
        check_signatures("timeout certificate", config, items)
    }
}

impl Encode for TimeoutCertificate {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.epoch).put(&self.round).put(&self.signers);
        w.len(self.high_qc_rounds.len());
        for r in &self.high_qc_rounds {
            w.put(r);
        }
        w.len(self.signatures.len());
        for s in &self.signatures {
            w.put(s);
        }
        w.put(&self.high_qc);
    }
}

impl Decode for TimeoutCertificate {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let epoch = r.get()?;
        let round = r.get()?;
        let signers = r.get()?;
        let high_qc_rounds = r.list("tc high qc rounds", COMMITTEE_SIZE_MAX, Reader::get)?;
        let signatures = r.list("tc signatures", COMMITTEE_SIZE_MAX, Reader::get)?;
        let high_qc = r.get()?;
        Ok(Self { epoch, round, signers, high_qc_rounds, signatures, high_qc })
    }
}
