//! Messages between members: one versioned, length-limited frame format for all of them.
//!
//! Frame = `u8 WIRE_VERSION || u8 kind || body`. Every message carries its epoch.

use crate::certs::{Timeout, TimeoutCertificate, Vote};
use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::{domain, Signature, Signer};
use crate::error::ValidationError;
use crate::{Block, BlockId, ConsensusConfig, Epoch, Height, NetworkId, Round};

/// Version of the frame format; a frame of another version is refused. Version 2: blocks may
/// carry health records and leaders follow reputation (H1–H5, LR1–LR4). Version 3: leaders
/// skip the failures recorded since their health was seen (LR5). A member of an older version
/// would name other leaders; members upgrade together (stored chains decode unchanged).
pub const WIRE_VERSION: u8 = 3;
/// Largest frame a member sends or accepts, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 8 << 20;
/// Most blocks one sync response carries.
pub const SYNC_BLOCKS_MAX: usize = 256;
/// Room for everything in a frame but its blocks (version, kind, epoch, counts).
pub const FRAME_OVERHEAD_BYTES: usize = 64 << 10;
/// Most client commands one `Commands` message carries.
pub const SHARED_COMMANDS_MAX: usize = 4_096;
/// Largest client command a `Commands` message may carry, in bytes. Today's commands (a claim,
/// at most about 210 bytes; a barrier, 18) fit well; a frame of them stays near 4 MiB.
pub const SHARED_COMMAND_BYTES_MAX: usize = 1 << 10;

/// Bytes a proposer's signature covers.
pub fn proposal_signing_bytes(
    network: &NetworkId,
    epoch: Epoch,
    round: Round,
    block: BlockId,
) -> Vec<u8> {
    let mut w = domain::signing_writer(domain::TAG_PROPOSAL, network);
    w.put(&epoch).put(&round).put(&block);
    w.finish()
}

/// A leader's signed proposal of a block, with the TC that justifies its round when the
/// previous round did not produce a QC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub block: Block,
    pub tc: Option<TimeoutCertificate>,
    pub signature: Signature,
}

impl Proposal {
    pub fn sign(
        config: &ConsensusConfig,
        block: Block,
        tc: Option<TimeoutCertificate>,
        signer: &dyn Signer,
    ) -> Self {
        let bytes =
            proposal_signing_bytes(config.network(), block.epoch(), block.round(), block.id());
        Self { block, tc, signature: signer.sign(&bytes) }
    }

    pub fn signing_bytes(&self, config: &ConsensusConfig) -> Vec<u8> {
        proposal_signing_bytes(
            config.network(),
            self.block.epoch(),
            self.block.round(),
            self.block.id(),
        )
    }

    /// Shape of block and TC, and P2: the round is justified by the QC (`round == qc.round + 1`)
    /// or by a TC of the previous round.
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.block.validate_shape(config)?;
        let round = self.block.round();
        if let Some(tc) = &self.tc {
            tc.validate_shape(config)?;
            if tc.round().next() != round {
                return Err(ValidationError::TcRound { round, tc_round: tc.round() });
            }
            // P2 (with S1c): after a TC the block must extend a QC at least as high as every
            // signer's highest QC, or honest members could not vote for it.
            let (qc_round, tc_max) = (self.block.justify().round(), tc.max_high_qc_round());
            if qc_round < tc_max {
                return Err(ValidationError::StaleHighQc { qc_round, tc_max });
            }
        } else if self.block.justify().round().next() != round {
            return Err(ValidationError::NoJustification {
                round,
                qc_round: self.block.justify().round(),
            });
        }
        Ok(())
    }

    /// The proposer's own signature.
    pub fn validate_signature(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        let key =
            config.public_key(self.block.proposer()).map_err(|_| ValidationError::UnknownNode {
                kind: "proposal",
                id: self.block.proposer(),
                total: config.total_nodes(),
            })?;
        let bytes = self.signing_bytes(config);
        let item = crate::crypto::SignedItem { key, message: &bytes, signature: &self.signature };
        config.scheme().scheme().verify(item).map_err(|_| ValidationError::BadSignature {
            kind: "proposal",
            signer: self.block.proposer(),
        })
    }

    /// Everything: shape, proposer signature, the block's QC and the TC.
    pub fn validate(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.validate_shape(config)?;
        self.validate_signature(config)?;
        self.block.justify().validate(config)?;
        match &self.tc {
            Some(tc) => tc.validate(config),
            None => Ok(()),
        }
    }
}

/// A timeout, with the TC that moved the signer into its round (helps laggards catch up).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeoutMsg {
    pub timeout: Timeout,
    pub last_round_tc: Option<TimeoutCertificate>,
}

impl TimeoutMsg {
    /// Shapes of the timeout and of the TC, which must be of the round before the timeout's.
    pub fn validate_shape(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.timeout.validate_shape(config)?;
        if let Some(tc) = &self.last_round_tc {
            tc.validate_shape(config)?;
            if tc.round().next() != self.timeout.round {
                return Err(ValidationError::TimeoutTcRound {
                    round: self.timeout.round,
                    tc_round: tc.round(),
                });
            }
        }
        Ok(())
    }

    /// Shape, the timeout's signature and high QC, and the TC.
    pub fn validate(&self, config: &ConsensusConfig) -> Result<(), ValidationError> {
        self.validate_shape(config)?;
        self.timeout.validate(config)?;
        self.last_round_tc.as_ref().map_or(Ok(()), |tc| tc.validate(config))
    }
}

/// Asks a peer for the blocks on the chain ending at `target`, above height `above`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    pub epoch: Epoch,
    pub target: BlockId,
    /// The requester already has (committed) this height; send only blocks above it.
    pub above: Height,
    pub max_blocks: u16,
}

/// Blocks in ascending height, each justified by the QC inside the next (the last by the QC
/// the requester already holds for `target`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    pub epoch: Epoch,
    pub blocks: Vec<Block>,
}

/// Client commands a member received and shares with every other member, so they reach a
/// proposal whoever leads next. Not signed by the member: each command carries its own
/// client signature, which receivers check before their mempool takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedCommands {
    pub epoch: Epoch,
    pub commands: Vec<Vec<u8>>,
}

/// Asks a peer for the ends of the epochs from `from` on (EP4): the sender is in epoch
/// `epoch` and saw a message of a later one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRequest {
    pub epoch: Epoch,
    pub from: Epoch,
}

/// The ends of consecutive epochs, answering an [`EpochRequest`] or a message from an earlier
/// epoch, and the proof of the sender's latest commit; `epoch` is the sender's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochProofMsg {
    pub epoch: Epoch,
    /// The ends of the epochs from the one asked for to the sender's (empty if the same).
    pub ends: Vec<crate::epoch::EpochEnd>,
    /// The sender's latest commit in its epoch, if it holds its proof.
    pub latest: Option<crate::epoch::CommitProof>,
}

/// Largest piece of a Raft message one frame carries: a larger message (a snapshot) travels in
/// consecutive pieces on one connection and is put together by the receiver.
pub const RAFT_PIECE_BYTES_MAX: usize = 4 << 20;
/// Most pieces of one Raft message (so at most 1 GiB reassembled).
pub const RAFT_PIECES_MAX: u32 = 256;

/// Raft mode's message (kind 7): the Raft engine's encoded message, or one piece of it. The
/// epoch is the committee's (Raft mode has one); the engine's own term is inside `bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftFrame {
    pub epoch: Epoch,
    /// This piece's number, from 0, and how many make the message (1 when whole).
    pub piece: u32,
    pub pieces: u32,
    pub bytes: Vec<u8>,
}

/// Committee-change gossip between nodes (not consensus: the consensus core ignores it). A
/// candidate's admission request, or a member's endorsement of a change, passed on so every
/// member can check it, apply its operator's policy and count endorsements; a member holding a
/// quorum of them submits the change as a command (EP1 checks it again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipGossip {
    Admission(crate::membership::Admission),
    Endorsement { what: crate::membership::Endorsed, endorsement: crate::membership::Endorsement },
}

/// [`MembershipGossip`] for one epoch (endorsements are signed for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipMsg {
    pub epoch: Epoch,
    pub gossip: MembershipGossip,
}

/// Everything members send each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Proposal(Proposal),
    Vote(Vote),
    Timeout(TimeoutMsg),
    SyncRequest(SyncRequest),
    SyncResponse(SyncResponse),
    Commands(SharedCommands),
    EpochRequest(EpochRequest),
    EpochProof(EpochProofMsg),
    /// Raft mode only; a HotStuff node drops it.
    Raft(RaftFrame),
    Membership(MembershipMsg),
    /// H2: a member's signed reachability attestation, sent to every member (leaders record
    /// it in blocks).
    Attestation(crate::health::Attestation),
}

impl Message {
    pub fn epoch(&self) -> Epoch {
        match self {
            Message::Proposal(p) => p.block.epoch(),
            Message::Vote(v) => v.epoch,
            Message::Timeout(t) => t.timeout.epoch,
            Message::SyncRequest(r) => r.epoch,
            Message::SyncResponse(r) => r.epoch,
            Message::Commands(c) => c.epoch,
            Message::EpochRequest(r) => r.epoch,
            Message::EpochProof(p) => p.epoch,
            Message::Raft(r) => r.epoch,
            Message::Membership(m) => m.epoch,
            Message::Attestation(a) => a.epoch,
        }
    }

    /// Whether the message is taken whatever the receiver's epoch: sync and epoch proofs let a
    /// member in another epoch catch up (EP4), and client commands are valid in any epoch (M1).
    pub fn is_epoch_agnostic(&self) -> bool {
        matches!(
            self,
            Message::SyncRequest(_)
                | Message::SyncResponse(_)
                | Message::EpochRequest(_)
                | Message::EpochProof(_)
                | Message::Commands(_)
        )
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Proposal(_) => "proposal",
            Message::Vote(_) => "vote",
            Message::Timeout(_) => "timeout",
            Message::SyncRequest(_) => "sync_request",
            Message::SyncResponse(_) => "sync_response",
            Message::Commands(_) => "commands",
            Message::EpochRequest(_) => "epoch_request",
            Message::EpochProof(_) => "epoch_proof",
            Message::Raft(_) => "raft",
            Message::Membership(_) => "membership",
            Message::Attestation(_) => "attestation",
        }
    }

    /// Encodes a frame.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(512);
        w.u8(WIRE_VERSION);
        self.encode(&mut w);
        w.finish()
    }

    /// Decodes a frame, refusing oversized input before reading it.
    pub fn from_frame(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(CodecError::TooLong {
                what: "message",
                len: bytes.len(),
                max: MESSAGE_BYTES_MAX,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("wire version")?;
        if version != WIRE_VERSION {
            return Err(CodecError::UnsupportedVersion { got: version, supported: WIRE_VERSION });
        }
        let m = Self::decode(&mut r)?;
        r.finish()?;
        Ok(m)
    }
}

impl Encode for Message {
    fn encode(&self, w: &mut Writer) {
        match self {
            Message::Proposal(p) => {
                w.u8(1).put(&p.block).put(&p.tc).put(&p.signature);
            }
            Message::Vote(v) => {
                w.u8(2).put(v);
            }
            Message::Timeout(t) => {
                w.u8(3).put(&t.timeout).put(&t.last_round_tc);
            }
            Message::SyncRequest(s) => {
                w.u8(4).put(&s.epoch).put(&s.target).put(&s.above).u16(s.max_blocks);
            }
            Message::SyncResponse(s) => {
                w.u8(5).put(&s.epoch).len(s.blocks.len());
                for b in &s.blocks {
                    w.put(b);
                }
            }
            Message::Commands(c) => {
                w.u8(6).put(&c.epoch).len(c.commands.len());
                for cmd in &c.commands {
                    w.bytes(cmd);
                }
            }
            Message::Raft(r) => {
                w.u8(7).put(&r.epoch).u32(r.piece).u32(r.pieces).bytes(&r.bytes);
            }
            Message::EpochRequest(e) => {
                w.u8(8).put(&e.epoch).put(&e.from);
            }
            Message::EpochProof(p) => {
                w.u8(9).put(&p.epoch).len(p.ends.len());
                for e in &p.ends {
                    w.put(e);
                }
                w.put(&p.latest);
            }
            Message::Membership(m) => {
                w.u8(10).put(&m.epoch);
                match &m.gossip {
                    MembershipGossip::Admission(a) => {
                        w.u8(1).put(a);
                    }
                    MembershipGossip::Endorsement { what, endorsement } => {
                        w.u8(2).put(what).put(endorsement);
                    }
                }
            }
            Message::Attestation(a) => {
                w.u8(11).put(a);
            }
        }
    }
}

impl Decode for Message {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(match r.u8("message kind")? {
            1 => Message::Proposal(Proposal { block: r.get()?, tc: r.get()?, signature: r.get()? }),
            2 => Message::Vote(r.get()?),
            3 => Message::Timeout(TimeoutMsg { timeout: r.get()?, last_round_tc: r.get()? }),
            4 => Message::SyncRequest(SyncRequest {
                epoch: r.get()?,
                target: r.get()?,
                above: r.get()?,
                max_blocks: r.u16("max blocks")?,
            }),
            5 => Message::SyncResponse(SyncResponse {
                epoch: r.get()?,
                blocks: r.list("sync blocks", SYNC_BLOCKS_MAX, Reader::get)?,
            }),
            6 => Message::Commands(SharedCommands {
                epoch: r.get()?,
                commands: r.list("shared commands", SHARED_COMMANDS_MAX, |r| {
                    r.bytes("shared command", SHARED_COMMAND_BYTES_MAX).map(<[u8]>::to_vec)
                })?,
            }),
            7 => {
                let epoch = r.get()?;
                let (piece, pieces) = (r.u32("raft piece")?, r.u32("raft pieces")?);
                if pieces == 0 || pieces > RAFT_PIECES_MAX || piece >= pieces {
                    return Err(CodecError::Invalid {
                        what: "raft frame",
                        reason: format!("piece {piece} of {pieces} (at most {RAFT_PIECES_MAX})"),
                    });
                }
                let bytes = r.bytes("raft message", RAFT_PIECE_BYTES_MAX)?.to_vec();
                Message::Raft(RaftFrame { epoch, piece, pieces, bytes })
            }
            8 => Message::EpochRequest(EpochRequest { epoch: r.get()?, from: r.get()? }),
            9 => Message::EpochProof(EpochProofMsg {
                epoch: r.get()?,
                ends: r.list("epoch ends", crate::epoch::EPOCH_PROOF_ENDS_MAX, Reader::get)?,
                latest: r.get()?,
            }),
            10 => Message::Membership(MembershipMsg {
                epoch: r.get()?,
                gossip: match r.u8("membership gossip kind")? {
                    1 => MembershipGossip::Admission(r.get()?),
                    2 => MembershipGossip::Endorsement { what: r.get()?, endorsement: r.get()? },
                    tag => {
                        return Err(CodecError::InvalidTag { what: "membership gossip kind", tag })
                    }
                },
            }),
            11 => Message::Attestation(r.get()?),
            tag => return Err(CodecError::InvalidTag { what: "message kind", tag }),
        })
    }
}
