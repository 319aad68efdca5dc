//! The durable store of a Raft-mode replica (its own redb file, beside nothing of HotStuff's,
//! and its own write-ahead log directory beside it): the log, the hard state, the snapshot
//! (metadata and the state machine's bytes), the applied index with the membership as of it,
//! and the state machine's key/values.
//!
//! **Crash-safe ordering.** The runtime gathers one step's `LogWrite`s (in the order the
//! engine emitted them) and the state machine's writes of that step's `Apply`s into one
//! [`RaftBatch`]; [`RaftStore::write`] makes it durable before it returns, so only then may
//! the runtime feed `Input::Persisted`. A crash leaves a prefix of the steps, which is what
//! the engine's contract asks for. How: on the shared logged-redb layer (`logged.rs`, W1–W3;
//! the etcd WAL + bbolt design), with Raft's own record (`raft_record.rs`):
//! - RF16 (W1): a step is checked against the log's bounds kept in memory ([`LogBounds`]: an
//!   append that would leave a gap is refused, nothing written), appended to the write-ahead
//!   log as ONE record (one `fdatasync`), then applied to a redb transaction and committed
//!   unsynced.
//! - RF17 (W2, W3): each logged step's transaction records its record's sequence number; every
//!   [`LogOptions::checkpoint_every`] steps a durable redb commit checkpoints them and the log
//!   is released below; opening replays the records after redb's checkpoint, in order, and
//!   refuses a log that was lost.
//! - RF18: a step that installs a snapshot or resets the state machine is not logged
//!   ([`raft_record`]'s `loggable`): it is committed to redb durably, which checkpoints every
//!   logged step before it too.
//!
//! **Trust.** Reads check what they decode; an append that would leave a gap in the log, a
//! record that does not decode, or a store of another committee is a [`StoreError`]. After a
//! failed write every later one fails ([`StoreError::Poisoned`]).

use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use warpnet_raft::{
    HardState, Index, LogEntry, LogWrite, Membership, Recovery, Snapshot, SnapshotMeta,
};
use warpnet_types::codec::{Decode, Encode};

use crate::error::{db, StoreError};
use crate::logged::{lock_poisoned, wal_dir, LogOptions, Logged};
use crate::raft_record;
use crate::store::{sync_dir, AppSnapshot, CACHE_BYTES};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const APP: TableDefinition<&[u8], &[u8]> = TableDefinition::new("app");
/// The snapshot's data (the registry at its index), in a table of its own: in `raft_meta` it
/// shared a leaf page with the hard state and the applied index, which every step rewrites,
/// and copy-on-write then copied the whole snapshot (a registry's size) on every step. Stores
/// written before keep it under `raft_meta`'s `snapshot_data` until their next snapshot.
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");

const SCHEMA_VERSION: u8 = 1;
const KEY_SCHEMA: &str = "schema";
const KEY_IDENTITY: &str = "identity";
const KEY_HARD_STATE: &str = "hard_state";
const KEY_APPLIED: &str = "applied";
const KEY_MEMBERSHIP: &str = "membership";
const KEY_SNAPSHOT_META: &str = "snapshot_meta";
/// The snapshot's data: in [`SNAPSHOT`]; in `raft_meta` only in stores written before.
const KEY_SNAPSHOT_DATA: &str = "snapshot_data";
/// What one step asks to make durable, in one transaction, applied in this order: the log
/// writes (each: snapshot, log truncation, entries, hard state), then the state machine.
#[derive(Debug, Default, Clone)]
pub struct RaftBatch {
    pub writes: Vec<LogWrite>,
    /// Clear the state machine's table first (a snapshot from the leader replaces it).
    pub app_reset: bool,
    /// State-machine writes (key, value; an empty value deletes).
    pub app: Vec<(Vec<u8>, Vec<u8>)>,
    /// The applied index after this step's applies, with the membership if it changed.
    pub applied: Option<(Index, Option<Membership>)>,
}

impl RaftBatch {
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && !self.app_reset && self.app.is_empty() && self.applied.is_none()
    }
}

/// State-machine key/values, in key order.
pub type AppEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// One Raft-mode replica's database, behind its write-ahead log.
pub struct RaftStore {
    db: Database,
    log: Logged,
    /// RF16: the log's bounds after the last write, which the next one is checked against
    /// before it is logged (held for the whole write: writes are serial).
    bounds: Mutex<LogBounds>,
}

/// Where the stored log starts and ends: the snapshot's index and the last entry's (the
/// snapshot's when the log holds no entry after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogBounds {
    snapshot: Index,
    last: Index,
}

impl LogBounds {
    fn read(
        meta: &impl ReadableTable<&'static str, &'static [u8]>,
        log: &impl ReadableTable<u64, &'static [u8]>,
    ) -> Result<Self, StoreError> {
        let snapshot = match meta.get(KEY_SNAPSHOT_META).map_err(db("read snapshot"))? {
            Some(v) => {
                SnapshotMeta::from_bytes(v.value()).map_err(corrupt("snapshot metadata"))?.index
            }
            None => 0,
        };
        let last = log.last().map_err(db("read raft log"))?.map_or(snapshot, |(k, _)| k.value());
        Ok(Self { snapshot, last: last.max(snapshot) })
    }

    /// The bounds after `w` (what [`apply_write`] does to the log), or the gap it would
    /// leave: an entry at index i must follow the snapshot and at most the last entry.
    fn after(mut self, w: &LogWrite) -> Result<Self, StoreError> {
        if let Some(s) = &w.snapshot {
            self.snapshot = s.meta.index;
            // Compaction keeps the entries after the snapshot; `discard_log` keeps none.
            self.last = if w.discard_log { s.meta.index } else { self.last.max(s.meta.index) };
        }
        if let (Some(first), Some(last)) = (w.entries.first(), w.entries.last()) {
            if first.index <= self.snapshot || first.index > self.last + 1 {
                return Err(StoreError::LogGap {
                    index: first.index,
                    last: self.last,
                    snapshot: self.snapshot,
                });
            }
            self.last = last.index;
        }
        Ok(self)
    }
}

fn corrupt(what: &'static str) -> impl Fn(warpnet_types::CodecError) -> StoreError {
    move |e| StoreError::Corrupt { what, detail: e.to_string() }
}

impl RaftStore {
    /// Creates the database at `path` holding `initial` (`Recovery::genesis` for a founding
    /// member, `Recovery::joining` for a member added later). `identity` names the committee
    /// (its digest): a store of another committee is refused on open.
    pub fn create(path: &Path, identity: &[u8], initial: &Recovery) -> Result<Self, StoreError> {
        Self::create_with(path, identity, initial, LogOptions::default())
    }

    /// [`RaftStore::create`] with options.
    pub fn create_with(
        path: &Path,
        identity: &[u8],
        initial: &Recovery,
        opts: LogOptions,
    ) -> Result<Self, StoreError> {
        for p in [path.to_path_buf(), wal_dir(path)] {
            if p.exists() {
                return Err(StoreError::Exists { path: p });
            }
        }
        let database = Self::open_db(path)?;
        let txn = database.begin_write().map_err(db("begin write"))?;
        {
            let mut meta = txn.open_table(META).map_err(db("open raft meta"))?;
            meta.insert(KEY_SCHEMA, [SCHEMA_VERSION].as_slice()).map_err(db("write schema"))?;
            meta.insert(KEY_IDENTITY, identity).map_err(db("write identity"))?;
            let mut log = txn.open_table(LOG).map_err(db("open raft log"))?;
            txn.open_table(APP).map_err(db("open app"))?;
            txn.open_table(SNAPSHOT).map_err(db("open raft snapshot"))?;
            let write = LogWrite {
                snapshot: initial.snapshot.clone(),
                discard_log: true,
                entries: initial.entries.clone(),
                hard_state: Some(initial.hard_state),
                ..LogWrite::default()
            };
            apply_write(&txn, &mut meta, &mut log, &write)?;
            put_applied(&mut meta, initial.applied, Some(&initial.membership))?;
        }
        txn.commit().map_err(db("commit"))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(dir)?;
        Self::with_log(database, path, opts)
    }

    /// Opens an existing database of the committee named by `identity`.
    pub fn open(path: &Path, identity: &[u8]) -> Result<Self, StoreError> {
        Self::open_with(path, identity, LogOptions::default())
    }

    /// [`RaftStore::open`] with options: replays the log after redb's checkpoint (RF17).
    pub fn open_with(path: &Path, identity: &[u8], opts: LogOptions) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        let database = Self::open_db(path)?;
        let txn = database.begin_read().map_err(db("begin read"))?;
        let meta = txn.open_table(META).map_err(db("open raft meta"))?;
        let schema = meta.get(KEY_SCHEMA).map_err(db("read schema"))?.map(|v| v.value().to_vec());
        let found = schema.and_then(|s| s.first().copied()).unwrap_or(0);
        if found != SCHEMA_VERSION {
            return Err(StoreError::Schema { found, supported: SCHEMA_VERSION });
        }
        let stored =
            meta.get(KEY_IDENTITY).map_err(db("read identity"))?.map(|v| v.value().to_vec());
        if stored.as_deref() != Some(identity) {
            return Err(StoreError::CommitteeMismatch {
                stored: stored.map_or_else(|| "none".into(), |s| hex(&s)),
                expected: hex(identity),
            });
        }
        drop(meta);
        drop(txn);
        Self::with_log(database, path, opts)
    }

    fn open_db(path: &Path) -> Result<Database, StoreError> {
        redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| StoreError::Open { path: path.to_path_buf(), detail: e.to_string() })
    }

    /// Opens the log beside the database and replays what redb lost (RF17).
    fn with_log(database: Database, path: &Path, opts: LogOptions) -> Result<Self, StoreError> {
        let log = Logged::open(&database, path, opts, |txn, data| {
            apply_batch(txn, &raft_record::decode(data).map_err(corrupt("log record"))?)
        })?;
        let bounds = {
            let txn = database.begin_read().map_err(db("begin read"))?;
            let meta = txn.open_table(META).map_err(db("open raft meta"))?;
            let log = txn.open_table(LOG).map_err(db("open raft log"))?;
            LogBounds::read(&meta, &log)?
        };
        Ok(Self { db: database, log, bounds: Mutex::new(bounds) })
    }

    /// Writes one step durably: RF16 (one log record) or RF18 (a snapshot step, straight
    /// into redb durably); RF17's checkpoints now and then (`logged.rs`, W1–W3).
    pub fn write(&self, batch: &RaftBatch) -> Result<(), StoreError> {
        self.write_reporting(batch, &mut || ())?;
        self.checkpoint_if_due().map(drop)
    }

    /// [`RaftStore::write`], calling `synced` as soon as the batch is durable, before the
    /// database has it (W4): what reads the store waits for the return. It takes no
    /// due checkpoint (a step not logged is itself a durable commit): the caller calls
    /// [`RaftStore::checkpoint_if_due`] once it has acted on the write (W5).
    pub fn write_reporting(
        &self,
        batch: &RaftBatch,
        synced: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            synced();
            return Ok(());
        }
        let mut bounds = self.bounds.lock().map_err(|_| lock_poisoned())?;
        // RF16: checked before anything is written.
        let after = batch.writes.iter().try_fold(*bounds, LogBounds::after)?;
        let record = raft_record::loggable(batch).then(|| raft_record::encode(batch));
        self.log.write(&self.db, record, |txn| apply_batch(txn, batch), synced)?;
        *bounds = after;
        Ok(())
    }

    /// W2, W5: the durable redb checkpoint, when `checkpoint_every` steps were logged since
    /// the last (the log's segments below it are then released). Returns whether it ran.
    pub fn checkpoint_if_due(&self) -> Result<bool, StoreError> {
        self.log.checkpoint_if_due(&self.db)
    }

    /// The last log record the database holds durably (W2): what a crash now would not replay.
    pub fn checkpointed(&self) -> Result<u64, StoreError> {
        self.log.checkpointed()
    }

    /// Test-only: the `n`-th log append from now fails as a failed fsync would.
    #[doc(hidden)]
    pub fn fail_sync_after(&self, n: u64) {
        self.log.fail_sync_after(n);
    }

    /// What the engine restarts from.
    pub fn recovery(&self) -> Result<Recovery, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let meta = txn.open_table(META).map_err(db("open raft meta"))?;
        let get = |key: &str| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(meta.get(key).map_err(db("read raft meta"))?.map(|v| v.value().to_vec()))
        };
        let hard_state = match get(KEY_HARD_STATE)? {
            Some(b) => HardState::from_bytes(&b).map_err(corrupt("hard state"))?,
            None => HardState::default(),
        };
        let applied = read_applied(&meta)?;
        let membership = match get(KEY_MEMBERSHIP)? {
            Some(b) => Membership::from_bytes(&b).map_err(corrupt("membership"))?,
            None => Membership::default(),
        };
        let snapshot = match get(KEY_SNAPSHOT_META)? {
            Some(b) => Some(Snapshot {
                meta: SnapshotMeta::from_bytes(&b).map_err(corrupt("snapshot metadata"))?,
                data: Arc::from(read_snapshot_data(&txn, get(KEY_SNAPSHOT_DATA)?)?),
            }),
            None => None,
        };
        let log = txn.open_table(LOG).map_err(db("open raft log"))?;
        let mut entries = Vec::new();
        for row in log.iter().map_err(db("read raft log"))? {
            let (k, v) = row.map_err(db("read raft log"))?;
            let e = LogEntry::from_bytes(v.value()).map_err(corrupt("log entry"))?;
            if e.index != k.value() {
                return Err(StoreError::Corrupt {
                    what: "log entry",
                    detail: format!("entry {} stored under key {}", e.index, k.value()),
                });
            }
            entries.push(e);
        }
        Ok(Recovery { hard_state, membership, applied, snapshot, entries })
    }

    /// A state-machine value (committed state).
    pub fn app_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let app = txn.open_table(APP).map_err(db("open app"))?;
        Ok(app.get(key).map_err(db("read app"))?.map(|v| v.value().to_vec()))
    }

    /// Committed state for reads: one read transaction's view of the state machine, with the
    /// applied index it reflects (written in the same transactions, so the two always agree).
    /// Readers never block the writer.
    pub fn app_snapshot(&self) -> Result<AppSnapshot, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let applied = read_applied(&txn.open_table(META).map_err(db("open raft meta"))?)?;
        let table = txn.open_table(APP).map_err(db("open app"))?;
        Ok(AppSnapshot::new(table, warpnet_types::Height(applied)))
    }

    /// Visits every state-machine key/value in key order, as of one read transaction, and
    /// returns the applied index that state reflects: what a snapshot for compaction holds,
    /// read without blocking the writer and without a second copy of the state.
    pub fn app_visit(&self, mut visit: impl FnMut(&[u8], &[u8])) -> Result<Index, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let applied = read_applied(&txn.open_table(META).map_err(db("open raft meta"))?)?;
        let app = txn.open_table(APP).map_err(db("open app"))?;
        for row in app.iter().map_err(db("read app"))? {
            let (k, v) = row.map_err(db("read app"))?;
            visit(k.value(), v.value());
        }
        Ok(applied)
    }

    /// Every state-machine key/value, in key order (what a snapshot of the state holds).
    pub fn app_entries(&self) -> Result<AppEntries, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let app = txn.open_table(APP).map_err(db("open app"))?;
        let mut out = Vec::new();
        for row in app.iter().map_err(db("read app"))? {
            let (k, v) = row.map_err(db("read app"))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

/// The applied index as stored (0 before anything was applied).
fn read_applied(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Index, StoreError> {
    match meta.get(KEY_APPLIED).map_err(db("read applied"))? {
        Some(v) => {
            let b = v.value();
            Ok(u64::from_le_bytes(b.try_into().map_err(|_| StoreError::Corrupt {
                what: "applied index",
                detail: format!("{} bytes", b.len()),
            })?))
        }
        None => Ok(0),
    }
}

type Meta<'t> = redb::Table<'t, &'static str, &'static [u8]>;
type Log<'t> = redb::Table<'t, u64, &'static [u8]>;

/// One `LogWrite`: the snapshot (dropping the entries it covers, or all with `discard_log`),
/// then the entries (each replacing the log from its index on), then the hard state.
fn apply_write(
    txn: &redb::WriteTransaction,
    meta: &mut Meta<'_>,
    log: &mut Log<'_>,
    w: &LogWrite,
) -> Result<(), StoreError> {
    if let Some(s) = &w.snapshot {
        meta.insert(KEY_SNAPSHOT_META, s.meta.to_bytes().as_slice())
            .map_err(db("write snapshot"))?;
        let mut data = txn.open_table(SNAPSHOT).map_err(db("open raft snapshot"))?;
        data.insert(KEY_SNAPSHOT_DATA, &*s.data).map_err(db("write snapshot"))?;
        // A store written before the table existed kept it here.
        meta.remove(KEY_SNAPSHOT_DATA).map_err(db("write snapshot"))?;
        let index = s.meta.index;
        if w.discard_log {
            log.retain(|_, _| false).map_err(db("discard log"))?;
        } else {
            // A range, not `retain`: `retain` visits every entry of the table.
            log.retain_in(..=index, |_, _| false).map_err(db("compact log"))?;
        }
    }
    if let Some(first) = w.entries.first() {
        // Checked again here (the write checked it against its bounds, replay did not).
        let LogBounds { snapshot, last } = LogBounds::read(meta, log)?;
        if first.index <= snapshot || first.index > last + 1 {
            return Err(StoreError::LogGap { index: first.index, last, snapshot });
        }
        // An entry at index i replaces the log from i on: a conflicting suffix, rare (a new
        // leader's log wins). Removed as a range, and only when there is one: `retain` would
        // visit every entry of the log on every append (it was most of the writer's CPU).
        if first.index <= last {
            log.retain_in(first.index.., |_, _| false).map_err(db("truncate log"))?;
        }
        for e in &w.entries {
            log.insert(e.index, e.to_bytes().as_slice()).map_err(db("append log"))?;
        }
    }
    if let Some(hs) = &w.hard_state {
        meta.insert(KEY_HARD_STATE, hs.to_bytes().as_slice()).map_err(db("write hard state"))?;
    }
    Ok(())
}

/// The snapshot's data: from [`SNAPSHOT`], or `legacy` (what `raft_meta` holds under
/// `snapshot_data`) in a store written before that table existed.
fn read_snapshot_data(
    txn: &redb::ReadTransaction,
    legacy: Option<Vec<u8>>,
) -> Result<Vec<u8>, StoreError> {
    let table = match txn.open_table(SNAPSHOT) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(legacy.unwrap_or_default()),
        Err(e) => return Err(db("open raft snapshot")(e)),
    };
    let data = table.get(KEY_SNAPSHOT_DATA).map_err(db("read snapshot"))?;
    Ok(data.map(|v| v.value().to_vec()).or(legacy).unwrap_or_default())
}

fn put_applied(
    meta: &mut Meta<'_>,
    index: Index,
    membership: Option<&Membership>,
) -> Result<(), StoreError> {
    meta.insert(KEY_APPLIED, index.to_le_bytes().as_slice()).map_err(db("write applied"))?;
    if let Some(m) = membership {
        meta.insert(KEY_MEMBERSHIP, m.to_bytes().as_slice()).map_err(db("write membership"))?;
    }
    Ok(())
}

/// One step into a write transaction: the log writes in order, then the state machine.
fn apply_batch(txn: &redb::WriteTransaction, batch: &RaftBatch) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(db("open raft meta"))?;
    let mut log = txn.open_table(LOG).map_err(db("open raft log"))?;
    for w in &batch.writes {
        apply_write(txn, &mut meta, &mut log, w)?;
    }
    let mut app = txn.open_table(APP).map_err(db("open app"))?;
    if batch.app_reset {
        app.retain(|_, _| false).map_err(db("clear app"))?;
    }
    for (k, v) in &batch.app {
        if v.is_empty() {
            app.remove(k.as_slice()).map_err(db("delete app"))?;
        } else {
            app.insert(k.as_slice(), v.as_slice()).map_err(db("write app"))?;
        }
    }
    if let Some((index, membership)) = &batch.applied {
        put_applied(&mut meta, *index, membership.as_ref())?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(32).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::NodeId;

    fn snapshot(index: Index, data: &[u8]) -> Snapshot {
        let membership = Membership::new(
            (0..3).map(|i| warpnet_raft::Member { id: NodeId(i), public: true }).collect(),
        );
        Snapshot { meta: SnapshotMeta { index, term: 1, membership }, data: Arc::from(data) }
    }

    fn meta_data(path: &Path) -> Option<Vec<u8>> {
        let db = Database::open(path).expect("open");
        let txn = db.begin_read().expect("read");
        let meta = txn.open_table(META).expect("meta");
        let v = meta.get(KEY_SNAPSHOT_DATA).expect("get").map(|v| v.value().to_vec());
        v
    }

    /// The snapshot's data lives in its own table, never beside the hard state every step
    /// rewrites; a store that kept it in `raft_meta` (written before) still reads it, and
    /// moves it at its next snapshot.
    #[test]
    fn snapshot_data_is_kept_apart_from_what_every_step_rewrites() {
        let d = std::env::temp_dir().join(format!("warpnet-raft-snapdata-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("dir");
        let path = d.join("raft.redb");
        let genesis = Recovery::genesis(snapshot(1, b"").meta.membership);
        let store = RaftStore::create(&path, b"id", &genesis).expect("create");
        let write = |s: Snapshot| RaftBatch {
            writes: vec![LogWrite { snapshot: Some(s), discard_log: true, ..LogWrite::default() }],
            ..RaftBatch::default()
        };
        store.write(&write(snapshot(5, b"registry at 5"))).expect("snapshot");
        drop(store);
        assert_eq!(meta_data(&path), None, "not in raft_meta");
        // The layout before: the data under raft_meta, no snapshot table.
        {
            let db = Database::open(&path).expect("open");
            let txn = db.begin_write().expect("write");
            txn.delete_table(SNAPSHOT).expect("drop the table");
            txn.open_table(META)
                .expect("meta")
                .insert(KEY_SNAPSHOT_DATA, b"old layout".as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        let store = RaftStore::open(&path, b"id").expect("open");
        let data = store.recovery().expect("recovery").snapshot.expect("snapshot").data;
        assert_eq!(&*data, b"old layout");
        store.write(&write(snapshot(9, b"registry at 9"))).expect("snapshot");
        let data = store.recovery().expect("recovery").snapshot.expect("snapshot").data;
        assert_eq!(&*data, b"registry at 9");
        drop(store);
        assert_eq!(meta_data(&path), None, "moved out of raft_meta");
        let _ = std::fs::remove_dir_all(&d);
    }
}
