//! The Raft store's write-ahead log record: one step's [`RaftBatch`] (log entries, with the
//! truncation they imply, hard state, state-machine writes, applied index), in a versioned
//! canonical encoding.
//!
//! **One record per step** (RF16): a crash keeps a prefix of the log's records, never part of
//! one, so a step is all-or-nothing on replay, as it was in one redb transaction. Steps that
//! install a snapshot (or reset the state machine) are never logged: they go straight into
//! redb with a durable commit (RF18), so a record never carries a registry's worth of bytes.
//!
//! ```text
//! version: u8 (RECORD_VERSION)
//! writes: list of { entries: list of LogEntry, hard_state: bool + HardState }
//! app: list of { key: bytes, value: bytes (empty: delete) }
//! applied: bool + { index: u64, membership: bool + Membership }
//! ```

use warpnet_raft::{HardState, LogEntry, LogWrite, Membership};
use warpnet_types::codec::{CodecError, Reader, Writer};

use crate::raft_store::RaftBatch;
use crate::wal::MAX_RECORD_BYTES;

/// The record format this build writes and reads.
pub const RECORD_VERSION: u8 = 1;

/// Whether `batch` may be logged: no snapshot, no state-machine reset (those take RF18).
pub fn loggable(batch: &RaftBatch) -> bool {
    !batch.app_reset && batch.writes.iter().all(|w| w.snapshot.is_none() && !w.discard_log)
}

/// Encodes a [`loggable`] batch.
pub fn encode(batch: &RaftBatch) -> Vec<u8> {
    debug_assert!(loggable(batch));
    let mut w = Writer::new();
    w.u8(RECORD_VERSION).len(batch.writes.len());
    for lw in &batch.writes {
        w.len(lw.entries.len());
        for e in &lw.entries {
            w.put(e);
        }
        w.bool(lw.hard_state.is_some());
        if let Some(hs) = &lw.hard_state {
            w.put(hs);
        }
    }
    w.len(batch.app.len());
    for (k, v) in &batch.app {
        w.bytes(k).bytes(v);
    }
    w.bool(batch.applied.is_some());
    if let Some((index, membership)) = &batch.applied {
        w.u64(*index).bool(membership.is_some());
        if let Some(m) = membership {
            w.put(m);
        }
    }
    w.finish()
}

/// Decodes a record written by [`encode`]; another version or trailing bytes are an error.
pub fn decode(bytes: &[u8]) -> Result<RaftBatch, CodecError> {
    let mut r = Reader::new(bytes);
    let version = r.u8("raft record version")?;
    if version != RECORD_VERSION {
        return Err(CodecError::InvalidTag { what: "raft record version", tag: version });
    }
    let writes = r.list("raft record writes", MAX_RECORD_BYTES, |r| {
        let entries = r.list("raft record entries", MAX_RECORD_BYTES, |r| r.get::<LogEntry>())?;
        let hard_state =
            if r.bool("raft record hard state")? { Some(r.get::<HardState>()?) } else { None };
        Ok(LogWrite { entries, hard_state, ..LogWrite::default() })
    })?;
    let app = r.list("raft record app writes", MAX_RECORD_BYTES, |r| {
        let k = r.bytes("app key", MAX_RECORD_BYTES)?.to_vec();
        let v = r.bytes("app value", MAX_RECORD_BYTES)?.to_vec();
        Ok((k, v))
    })?;
    let applied = if r.bool("raft record applied")? {
        let index = r.u64("applied index")?;
        let membership =
            if r.bool("raft record membership")? { Some(r.get::<Membership>()?) } else { None };
        Some((index, membership))
    } else {
        None
    };
    r.finish()?;
    Ok(RaftBatch { writes, app_reset: false, app, applied })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_raft::{EntryKind, Member};
    use warpnet_types::NodeId;

    fn batch() -> RaftBatch {
        let e = |index| LogEntry {
            index,
            term: 3,
            kind: EntryKind::Normal,
            data: vec![index as u8; 5],
            context: vec![1],
        };
        let m = Membership::new(vec![Member { id: NodeId(0), public: true }]);
        RaftBatch {
            writes: vec![
                LogWrite { entries: vec![e(4), e(5)], ..LogWrite::default() },
                LogWrite {
                    hard_state: Some(HardState { term: 3, vote: Some(NodeId(1)), commit: 4 }),
                    ..LogWrite::default()
                },
            ],
            app_reset: false,
            app: vec![(b"k".to_vec(), b"v".to_vec()), (b"gone".to_vec(), vec![])],
            applied: Some((4, Some(m))),
        }
    }

    fn same(a: &RaftBatch, b: &RaftBatch) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn a_record_decodes_to_the_batch_it_encodes() {
        let b = batch();
        assert!(same(&decode(&encode(&b)).unwrap(), &b));
        let empty = RaftBatch::default();
        assert!(same(&decode(&encode(&empty)).unwrap(), &empty));
    }

    #[test]
    fn another_version_or_a_cut_record_is_refused() {
        let mut bytes = encode(&batch());
        bytes[0] = RECORD_VERSION + 1;
        assert!(decode(&bytes).is_err());
        let bytes = encode(&batch());
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn snapshot_steps_are_not_loggable() {
        let mut b = batch();
        assert!(loggable(&b));
        b.app_reset = true;
        assert!(!loggable(&b));
        let mut b = batch();
        b.writes[0].discard_log = true;
        assert!(!loggable(&b));
    }
}
