//! The HotStuff store's write-ahead log record: one step's [`Batch`] (new blocks, safety
//! data, commits with their certificates, state-machine writes, ended epochs), in a versioned
//! encoding. One record per step (W1), so a step is all-or-nothing on replay, as it was in one
//! redb transaction.
//!
//! ```text
//! version: u8 (RECORD_VERSION)
//! blocks:  list of bytes (Block)
//! safety:  bool + bytes (SafetyData)
//! commits: list of { bytes (Block), bytes (QuorumCertificate) }
//! app:     list of { key: bytes, value: bytes (empty: delete) }
//! epochs:  list of { bytes (EpochEnd), bytes (ConsensusConfig) }
//! ```
//!
//! Each object is its own canonical encoding, so the record checks it exactly as the tables do.

use std::sync::Arc;

use warpnet_core::{Committed, EpochChange, SafetyData};
use warpnet_types::codec::{CodecError, Decode, Encode, Reader, Writer};
use warpnet_types::epoch::EpochEnd;
use warpnet_types::{Block, ConsensusConfig, QuorumCertificate};

use crate::store::Batch;
use crate::wal::MAX_RECORD_BYTES;

/// The record format this build writes and reads.
pub const RECORD_VERSION: u8 = 1;

/// Encodes one step.
pub fn encode(batch: &Batch) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(RECORD_VERSION).len(batch.blocks.len());
    for b in &batch.blocks {
        w.bytes(&b.to_bytes());
    }
    w.bool(batch.safety.is_some());
    if let Some(s) = &batch.safety {
        w.bytes(&s.to_bytes());
    }
    w.len(batch.commits.len());
    for c in &batch.commits {
        w.bytes(&c.block.to_bytes()).bytes(&c.certificate.to_bytes());
    }
    w.len(batch.app.len());
    for (k, v) in &batch.app {
        w.bytes(k).bytes(v);
    }
    w.len(batch.epochs.len());
    for e in &batch.epochs {
        w.bytes(&e.end.to_bytes()).bytes(&e.next.to_bytes());
    }
    w.finish()
}

fn object<T>(
    r: &mut Reader<'_>,
    what: &'static str,
    decode: impl Fn(&[u8]) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    decode(r.bytes(what, MAX_RECORD_BYTES)?)
}

/// Decodes a record written by [`encode`]; another version or trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<Batch, CodecError> {
    let mut r = Reader::new(bytes);
    let version = r.u8("store record version")?;
    if version != RECORD_VERSION {
        return Err(CodecError::InvalidTag { what: "store record version", tag: version });
    }
    let blocks =
        r.list("store record blocks", MAX_RECORD_BYTES, |r| object(r, "block", Block::from_bytes))?;
    let safety = if r.bool("store record safety")? {
        Some(object(&mut r, "safety data", SafetyData::from_bytes)?)
    } else {
        None
    };
    let commits = r.list("store record commits", MAX_RECORD_BYTES, |r| {
        let block = object(r, "committed block", Block::from_bytes)?;
        let certificate = object(r, "commit certificate", QuorumCertificate::from_bytes)?;
        Ok(Committed { block, certificate })
    })?;
    let app = r.list("store record app writes", MAX_RECORD_BYTES, |r| {
        let k = r.bytes("app key", MAX_RECORD_BYTES)?.to_vec();
        let v = r.bytes("app value", MAX_RECORD_BYTES)?.to_vec();
        Ok((k, v))
    })?;
    let epochs = r.list("store record epochs", MAX_RECORD_BYTES, |r| {
        let end = object(r, "epoch end", EpochEnd::from_bytes)?;
        let next = object(r, "next committee", ConsensusConfig::from_bytes)?;
        Ok(EpochChange { end, next: Arc::new(next) })
    })?;
    r.finish()?;
    Ok(Batch { blocks, safety, commits, app, epochs })
}
