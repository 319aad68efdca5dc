//! WarpNet Consensus types: the ADR-006 data model with the quorum fixed to `n - f`, the one
//! canonical encoding for hashing, signing and the wire, and signature schemes behind a trait.
//!
//! Nothing here does I/O or keeps mutable state; every type validates itself against a
//! [`ConsensusConfig`] and says why it refuses with a typed error.

#![forbid(unsafe_code)]

pub mod bitmap;
pub mod block;
pub mod certs;
pub mod codec;
pub mod config;
pub mod crypto;
pub mod epoch;
pub mod error;
pub mod evidence;
pub mod health;
pub mod ids;
pub mod membership;
pub mod message;
pub mod timeout;

pub use bitmap::{BitmapError, VoterBitmap};
pub use block::{Block, Payload};
pub use certs::{QuorumCertificate, Timeout, TimeoutCertificate, Vote};
pub use codec::{CodecError, Decode, Encode};
pub use config::{ConfigError, ConsensusConfig, EpochStart, Participant, QuorumRule};
pub use crypto::{PublicKey, SchemeId, Signature, Signer};
pub use error::ValidationError;
pub use health::{Attestation, BlockHealth, HealthSummary, LateVotes, MemberHealth, Reputation};
pub use ids::{BlockId, Digest, Epoch, Height, NetworkId, NodeId, Round};
pub use message::{
    EpochProofMsg, EpochRequest, MembershipGossip, MembershipMsg, Message, Proposal, RaftFrame,
    SharedCommands, SyncRequest, SyncResponse, TimeoutMsg,
};
