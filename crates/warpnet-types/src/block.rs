//! Blocks: the unit the committee certifies and commits. A block's id is the digest of its
//! canonical encoding, so a QC for the id certifies every field, payload included.

use crate::certs::QuorumCertificate;
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::domain;
use crate::error::ValidationError;
use crate::health::BlockHealth;
use crate::{BlockId, ConsensusConfig, Digest, Epoch, Height, NodeId, Round};

/// Hard wire limits on a payload (the core's configured limits are usually smaller).
pub const PAYLOAD_ITEMS_MAX: usize = 1 << 16;
pub const PAYLOAD_ITEM_BYTES_MAX: usize = 64 << 10;
/// The payload count's top bit: health records follow the payload (never set by a block
/// without records, whose encoding is unchanged).
const HEALTH_FLAG: u32 = 1 << 31;

/// The commands a block orders: opaque to consensus, interpreted by the state machine.
pub type Payload = Vec<Vec<u8>>;

/// A proposed block. Immutable: its id is computed once, when it is built or decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    id: BlockId,
    epoch: Epoch,
    round: Round,
    height: Height,
    parent: BlockId,
    proposer: NodeId,
    justify: QuorumCertificate,
    timestamp_ms: u64,
    payload: Payload,
    /// What the block records about the committee's health (H1, H2, H4, LR2); boxed, as it is
    /// usually empty.
    health: Box<BlockHealth>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Block({} e{} r{} h{} by {} on {}@r{}, {} cmds)",
            self.id,
            self.epoch,
            self.round,
            self.height,
            self.proposer,
            self.parent,
            self.justify.round(),
            self.payload.len()
        )
    }
}

impl Block {
    /// A block extending the block `justify` certifies, at `parent height + 1`.
    pub fn new(
        epoch: Epoch,
        round: Round,
        height: Height,
        proposer: NodeId,
        justify: QuorumCertificate,
        timestamp_ms: u64,
        payload: Payload,
    ) -> Self {
        let parent = justify.block_id();
        Self::with_parent(epoch, round, height, parent, proposer, justify, timestamp_ms, payload)
    }

    /// Like `new` but with an explicit parent, which validation then checks; for decoding and
    /// for the simulator's Byzantine proposers.
    #[allow(clippy::too_many_arguments)]
    pub fn with_parent(
        epoch: Epoch,
        round: Round,
        height: Height,
        parent: BlockId,
        proposer: NodeId,
        justify: QuorumCertificate,
        timestamp_ms: u64,
        payload: Payload,
    ) -> Self {
        let mut b = Self {
            id: Digest::ZERO,
            epoch,
            round,
            height,
            parent,
            proposer,
            justify,
            timestamp_ms,
            payload,
            health: Box::default(),
        };
        b.id = b.compute_id();
        b
    }

    fn compute_id(&self) -> BlockId {
        let mut w = Writer::with_capacity(256 + self.payload_bytes());
        self.encode_fields(&mut w);
        Digest::hash(domain::TAG_BLOCK, w.as_slice())
    }

    /// The same block with these health records (H1–H5); the id covers them.
    #[must_use]
    pub fn with_health(mut self, health: BlockHealth) -> Self {
        self.health = Box::new(health);
        self.id = self.compute_id();
        self
    }

    /// The genesis block of a committee: round 0, empty, committed by definition. For the
    /// network's first committee: height 0, its parent the configuration's digest. For a later
    /// epoch (EP3): the child of the block that ended the previous epoch (height + 1, same
    /// timestamp), committing to the new configuration through the QC it carries. Either way
    /// every committee (network, epoch, members) has its own genesis.
    pub fn genesis(config: &ConsensusConfig) -> Self {
        let pre = QuorumCertificate::pre_genesis(config);
        let (height, parent, timestamp_ms) = match config.start() {
            None => (Height(0), config.digest(), 0),
            Some(s) => (s.height.next(), s.after, s.timestamp_ms),
        };
        Self::with_parent(
            config.epoch(),
            Round(0),
            height,
            parent,
            NodeId(0),
            pre,
            timestamp_ms,
            Vec::new(),
        )
    }

    pub fn id(&self) -> BlockId {
        self.id
    }
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
    pub fn round(&self) -> Round {
        self.round
    }
    pub fn height(&self) -> Height {
        self.height
    }
    pub fn parent(&self) -> BlockId {
        self.parent
    }
    pub fn proposer(&self) -> NodeId {
        self.proposer
    }
    pub fn justify(&self) -> &QuorumCertificate {
        &self.justify
    }
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }
    pub fn payload(&self) -> &Payload {
        &self.payload
    }
    pub fn health(&self) -> &BlockHealth {
        &self.health
    }

    /// Total bytes of the payload's commands.
    pub fn payload_bytes(&self) -> usize {
        self.payload.iter().map(Vec::len).sum()
    }

    /// Exact size of the canonical encoding, without encoding.
    pub fn encoded_len(&self) -> usize {
        let qc = 8
            + 8
            + 32
            + 4
            + self.justify.voters().as_bytes().len()
            + 4
            + 64 * self.justify.signatures().len();
        let health = if self.health.is_empty() { 0 } else { self.health.encoded_len() };
        8 + 8
            + 8
            + 32
            + 2
            + qc
            + 8
            + 4
            + self.payload.iter().map(|c| 4 + c.len()).sum::<usize>()
            + health
    }

    /// Everything but the justifying QC's signatures: epoch, proposer, shape, parent link.
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        const KIND: &str = "block";
        if self.epoch != config.epoch() {
            return Err(ValidationError::WrongEpoch {
                kind: KIND,
                expected: config.epoch(),
                got: self.epoch,
            });
        }
        if !config.contains(self.proposer) {
            return Err(ValidationError::UnknownNode {
                kind: KIND,
                id: self.proposer,
                total: config.total_nodes(),
            });
        }
        if self.round == Round(0) || self.height == Height(0) {
            return Err(ValidationError::GenesisShape);
        }
        if self.justify.round() >= self.round {
            return Err(ValidationError::JustifyNotLower {
                round: self.round,
                justify_round: self.justify.round(),
            });
        }
        if self.parent != self.justify.block_id() {
            return Err(ValidationError::ParentMismatch {
                parent: self.parent,
                justify: self.justify.block_id(),
            });
        }
        self.health.validate_shape(config)?;
        self.justify.validate_shape(config)
    }

    /// Full validation: shape plus every signature of the justifying QC.
    pub fn validate(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.validate_shape(config)?;
        self.justify.validate(config)
    }

    fn encode_fields(&self, w: &mut Writer) {
        w.put(&self.epoch).put(&self.round).put(&self.height).put(&self.parent);
        w.put(&self.proposer).put(&self.justify).u64(self.timestamp_ms);
        // A block with health records flags them in the payload count's top bit and appends
        // them; one without encodes as blocks did before records existed (same id).
        let flag = if self.health.is_empty() { 0 } else { HEALTH_FLAG };
        w.u32(self.payload.len() as u32 | flag);
        for cmd in &self.payload {
            w.bytes(cmd);
        }
        if flag != 0 {
            w.put(self.health.as_ref());
        }
    }
}

impl Encode for Block {
    fn encode(&self, w: &mut Writer) {
        self.encode_fields(w);
    }
}

impl Decode for Block {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let epoch = r.get()?;
        let round = r.get()?;
        let height = r.get()?;
        let parent = r.get()?;
        let proposer = r.get()?;
        let justify = r.get()?;
        let timestamp_ms = r.u64("timestamp")?;
        let raw = r.u32("payload")?;
        let flagged = raw & HEALTH_FLAG != 0;
        let count = (raw & !HEALTH_FLAG) as usize;
        if count > PAYLOAD_ITEMS_MAX {
            let len = raw as usize;
            return Err(CodecError::TooLong { what: "payload", len, max: PAYLOAD_ITEMS_MAX });
        }
        let mut payload = Vec::with_capacity(count.min(r.remaining()));
        for _ in 0..count {
            payload.push(r.bytes("command", PAYLOAD_ITEM_BYTES_MAX)?.to_vec());
        }
        let health: BlockHealth = if flagged { r.get()? } else { BlockHealth::default() };
        if flagged && health.is_empty() {
            // One encoding per block: empty records are never flagged.
            return Err(CodecError::Invalid {
                what: "block health",
                reason: "flagged but empty".into(),
            });
        }
        let mut b = Self {
            id: Digest::ZERO,
            epoch,
            round,
            height,
            parent,
            proposer,
            justify,
            timestamp_ms,
            payload,
            health: Box::new(health),
        };
        b.id = b.compute_id();
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SchemeId;

    #[test]
    fn encoded_len_is_exact() {
        let (c, _) = ConsensusConfig::for_testing(7, SchemeId::InsecureSimulation, 0).unwrap();
        let qc = QuorumCertificate::genesis(&c);
        for payload in [vec![], vec![vec![1u8; 10]], vec![vec![2u8; 100]; 50]] {
            let b = Block::new(c.epoch(), Round(1), Height(1), NodeId(0), qc.clone(), 5, payload);
            assert_eq!(b.encoded_len(), b.to_bytes().len());
            let with = b.clone().with_health(crate::BlockHealth {
                timeouts: crate::VoterBitmap::empty(7),
                failed: vec![(NodeId(2), 3)],
                ..crate::BlockHealth::default()
            });
            assert_eq!(with.encoded_len(), with.to_bytes().len());
            assert_ne!(with.id(), b.id(), "the id covers the health records");
            assert_eq!(Block::from_bytes(&with.to_bytes()).unwrap(), with);
        }
    }
}
