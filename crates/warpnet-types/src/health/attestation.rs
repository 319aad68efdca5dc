//! H2: a member's signed statement of which members it reached by dialing their advertised
//! p2p address and completing an authenticated handshake.

use crate::bitmap::VoterBitmap;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::{domain, Signature, Signer};
use crate::{ConsensusConfig, Epoch, NetworkId, NodeId, ValidationError};

/// H2: a block may carry an attestation signed at most this long before the block's timestamp
/// (block time, so every voter judges it alike). Members re-sign well within it.
pub const ATTESTATION_AGE_MS_MAX: u64 = 60_000;
/// H2: ... and at most this long after it (an attester's clock may run ahead; one far ahead
/// would keep its attestation fresh long after the attester stopped).
pub const ATTESTATION_AHEAD_MS_MAX: u64 = 30_000;
/// H2: a member signs a new attestation when what it reached changes, or this long after its
/// last one (well within [`ATTESTATION_AGE_MS_MAX`]).
pub const ATTESTATION_REFRESH_MS: u64 = 20_000;

/// H2: whether an attestation signed at `at_ms` may be recorded in a block stamped `block_ms`.
pub fn fresh(at_ms: u64, block_ms: u64) -> bool {
    at_ms.saturating_add(ATTESTATION_AGE_MS_MAX) >= block_ms
        && at_ms <= block_ms.saturating_add(ATTESTATION_AHEAD_MS_MAX)
}

/// Bytes an attestation's signature covers.
pub fn reach_signing_bytes(
    network: &NetworkId,
    epoch: Epoch,
    attester: NodeId,
    at_ms: u64,
    reached: &VoterBitmap,
) -> Vec<u8> {
    let mut w = domain::signing_writer(domain::TAG_REACH, network);
    w.put(&epoch).put(&attester).u64(at_ms).put(reached);
    w.finish()
}

/// One member's reachability attestation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    pub epoch: Epoch,
    pub attester: NodeId,
    /// When the attester signed it (its clock, milliseconds since the Unix epoch).
    pub at_ms: u64,
    /// The members it reached at their advertised address (never itself).
    pub reached: VoterBitmap,
    pub signature: Signature,
}

impl Attestation {
    pub fn sign(
        config: &ConsensusConfig,
        attester: NodeId,
        at_ms: u64,
        reached: VoterBitmap,
        signer: &dyn Signer,
    ) -> Self {
        let bytes =
            reach_signing_bytes(config.network(), config.epoch(), attester, at_ms, &reached);
        Self { epoch: config.epoch(), attester, at_ms, reached, signature: signer.sign(&bytes) }
    }

    pub fn signing_bytes(&self, config: &ConsensusConfig) -> Vec<u8> {
        reach_signing_bytes(config.network(), self.epoch, self.attester, self.at_ms, &self.reached)
    }

    /// Epoch, attester, bitmap length, and that it does not attest itself.
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        crate::certs::check_epoch("attestation", config, self.epoch)?;
        crate::certs::check_member("attestation", config, self.attester)?;
        self.reached
            .check(config.total_nodes())
            .map_err(|source| ValidationError::Bitmap { kind: "attestation", source })?;
        if self.reached.contains(self.attester) {
            return Err(ValidationError::Attester {
                id: self.attester,
                total: config.total_nodes(),
            });
        }
        Ok(())
    }

    /// Shape and signature.
    pub fn validate(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.validate_shape(config)?;
        let bytes = self.signing_bytes(config);
        crate::certs::check_signatures(
            "attestation",
            config,
            std::iter::once((self.attester, bytes.as_slice(), &self.signature)),
        )
    }

    pub fn encoded_len(&self) -> usize {
        8 + 2 + 8 + 4 + self.reached.as_bytes().len() + 64
    }
}

impl Encode for Attestation {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.epoch).put(&self.attester).u64(self.at_ms).put(&self.reached);
        w.put(&self.signature);
    }
}

impl Decode for Attestation {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self {
            epoch: r.get()?,
            attester: r.get()?,
            at_ms: r.u64("attested at")?,
            reached: r.get()?,
            signature: r.get()?,
        })
    }
}
