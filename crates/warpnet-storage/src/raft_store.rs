//! The durable store of a Raft-mode replica (its own redb file, beside nothing of HotStuff's,
//! and its own write-ahead log directory beside it): the log, the hard state, the snapshot
//! (metadata and the state machine's bytes), the applied index with the membership as of it,
//! and the state machine's key/values.
//!
//! **Crash-safe ordering.** The runtime gathers one step's `LogWrite`s (in the order the
//! engine emitted them) and the state machine's writes of that step's `Apply`s into one
//! [`RaftBatch`]; [`RaftStore::write`] makes it durable before it returns, so only then may
//! the runtime feed `Input::Persisted`. A crash leaves a prefix of the steps, which is what
//! the engine's contract asks for. How (the etcd WAL + bbolt design):
//! - RF16: a step is applied to a redb transaction (which checks it: gaps, decoding), then
//!   appended to the write-ahead log as ONE record ([`crate::wal`], one `fdatasync`), then
//!   committed to redb with `Durability::None` (visible to readers, not synced). A step the
//!   transaction refuses never reaches the log.
//! - RF17: each logged step's transaction records its log sequence number (`wal_checkpoint`);
//!   every [`RaftStoreOptions::checkpoint_writes`] logged steps a durable redb commit makes
//!   that state durable, and the log's segments below it are released. Opening replays the records after the checkpoint, in
//!   order, onto the checkpointed redb state: exactly the steps redb lost, so the result is
//!   the state after the last durable record. A log that ends before the checkpoint, or
//!   whose records after it do not start right after it, was lost: the open is refused.
//! - RF18: a step that installs a snapshot or resets the state machine (or would not fit in
//!   a record) is not logged: it is committed to redb durably, which checkpoints every
//!   logged step before it too.
//!
//! **Trust.** Reads check what they decode; an append that would leave a gap in the log, a
//! record that does not decode, or a store of another committee is a [`StoreError`]. After a
//! failed write every later one fails ([`StoreError::Poisoned`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use warpnet_raft::{
    HardState, Index, LogEntry, LogWrite, Membership, Recovery, Snapshot, SnapshotMeta,
};
use warpnet_types::codec::{Decode, Encode};

use crate::error::{db, StoreError};
use crate::raft_record;
use crate::store::{sync_dir, AppSnapshot, CACHE_BYTES};
use crate::wal::{Wal, WalOptions, MAX_RECORD_BYTES};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
const APP: TableDefinition<&[u8], &[u8]> = TableDefinition::new("app");

const SCHEMA_VERSION: u8 = 1;
const KEY_SCHEMA: &str = "schema";
const KEY_IDENTITY: &str = "identity";
const KEY_HARD_STATE: &str = "hard_state";
const KEY_APPLIED: &str = "applied";
const KEY_MEMBERSHIP: &str = "membership";
const KEY_SNAPSHOT_META: &str = "snapshot_meta";
const KEY_SNAPSHOT_DATA: &str = "snapshot_data";
/// RF17: the last write-ahead log record the redb state holds (written with every logged
/// step, durable at each checkpoint).
const KEY_WAL_CHECKPOINT: &str = "wal_checkpoint";

/// How the store keeps its log and checkpoints redb.
#[derive(Debug, Clone, Copy)]
pub struct RaftStoreOptions {
    pub wal: WalOptions,
    /// RF17: a durable redb checkpoint after this many logged steps.
    pub checkpoint_writes: u64,
}

impl Default for RaftStoreOptions {
    fn default() -> Self {
        Self { wal: WalOptions::default(), checkpoint_writes: 1_024 }
    }
}

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

/// One Raft-mode replica's database.
pub struct RaftStore {
    db: Database,
    log: Mutex<LogState>,
}

/// The writer's side: the log, and how far redb's durable state lags it.
struct LogState {
    wal: Wal,
    checkpoint: u64,
    checkpoint_writes: u64,
    poisoned: Option<String>,
}

/// The log directory of the database at `path` (`raft.redb` -> `raft.wal`).
pub fn wal_dir(path: &Path) -> PathBuf {
    path.with_extension("wal")
}

fn corrupt(what: &'static str) -> impl Fn(warpnet_types::CodecError) -> StoreError {
    move |e| StoreError::Corrupt { what, detail: e.to_string() }
}

impl RaftStore {
    /// Creates the database at `path` holding `initial` (`Recovery::genesis` for a founding
    /// member, `Recovery::joining` for a member added later). `identity` names the committee
    /// (its digest): a store of another committee is refused on open.
    pub fn create(path: &Path, identity: &[u8], initial: &Recovery) -> Result<Self, StoreError> {
        Self::create_with(path, identity, initial, RaftStoreOptions::default())
    }

    /// [`RaftStore::create`] with options.
    pub fn create_with(
        path: &Path,
        identity: &[u8],
        initial: &Recovery,
        opts: RaftStoreOptions,
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
            let write = LogWrite {
                snapshot: initial.snapshot.clone(),
                discard_log: true,
                entries: initial.entries.clone(),
                hard_state: Some(initial.hard_state),
                ..LogWrite::default()
            };
            apply_write(&mut meta, &mut log, &write)?;
            put_applied(&mut meta, initial.applied, Some(&initial.membership))?;
            meta.insert(KEY_WAL_CHECKPOINT, 0u64.to_le_bytes().as_slice())
                .map_err(db("write checkpoint"))?;
        }
        txn.commit().map_err(db("commit"))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(dir)?;
        Self::with_log(database, path, opts)
    }

    /// Opens an existing database of the committee named by `identity`.
    pub fn open(path: &Path, identity: &[u8]) -> Result<Self, StoreError> {
        Self::open_with(path, identity, RaftStoreOptions::default())
    }

    /// [`RaftStore::open`] with options: replays the log after redb's checkpoint (RF17).
    pub fn open_with(
        path: &Path,
        identity: &[u8],
        opts: RaftStoreOptions,
    ) -> Result<Self, StoreError> {
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
    fn with_log(
        database: Database,
        path: &Path,
        opts: RaftStoreOptions,
    ) -> Result<Self, StoreError> {
        let checkpoint = read_checkpoint(&database)?;
        let dir = wal_dir(path);
        if checkpoint > 0 && !dir.exists() {
            return Err(lost_log(format!(
                "{} is missing (checkpoint {checkpoint})",
                dir.display()
            )));
        }
        let (wal, records) = Wal::open(&dir, opts.wal)?;
        if wal.next_seq() <= checkpoint {
            return Err(lost_log(format!(
                "the log ends at {} but redb's checkpoint is {checkpoint}",
                wal.next_seq() - 1
            )));
        }
        let after: Vec<_> = records.into_iter().filter(|r| r.seq > checkpoint).collect();
        let first = after.first().map_or(wal.next_seq(), |r| r.seq);
        if first != checkpoint + 1 {
            return Err(lost_log(format!(
                "the records after checkpoint {checkpoint} start at {first}"
            )));
        }
        let store = Self {
            db: database,
            log: Mutex::new(LogState {
                wal,
                checkpoint,
                checkpoint_writes: opts.checkpoint_writes.max(1),
                poisoned: None,
            }),
        };
        if let Some(last) = after.last().map(|r| r.seq) {
            let txn = store.db.begin_write().map_err(db("begin write"))?;
            for r in &after {
                let batch = raft_record::decode(&r.data).map_err(corrupt("log record"))?;
                apply_batch(&txn, &batch)?;
            }
            set_checkpoint(&txn, last)?;
            txn.commit().map_err(db("commit"))?;
            store.log.lock().map_err(|_| lock_poisoned())?.checkpoint = last;
        }
        Ok(store)
    }

    /// Writes one step durably: RF16 (logged) or RF18 (straight into redb, durably).
    pub fn write(&self, batch: &RaftBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut log = self.log.lock().map_err(|_| lock_poisoned())?;
        if let Some(first) = &log.poisoned {
            return Err(StoreError::Poisoned { first: first.clone() });
        }
        let result = self.write_locked(&mut log, batch);
        if let Err(e) = &result {
            log.poisoned.get_or_insert_with(|| e.to_string());
        }
        result
    }

    fn write_locked(&self, log: &mut LogState, batch: &RaftBatch) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(db("begin write"))?;
        apply_batch(&txn, batch)?;
        let record = raft_record::loggable(batch).then(|| raft_record::encode(batch));
        match record.filter(|r| r.len() <= MAX_RECORD_BYTES) {
            Some(record) => {
                // RF16: durable in the log before redb commits (unsynced). The transaction
                // names the record it holds (RF17), so whatever redb's durable state turns out
                // to be (a checkpoint, or a close that made later commits durable), it says
                // which records it already holds.
                set_checkpoint(&txn, log.wal.next_seq())?;
                let seq = log.wal.append(&[&record])?;
                txn.set_durability(Durability::None).map_err(db("set durability"))?;
                txn.commit().map_err(db("commit"))?;
                if seq - log.checkpoint >= log.checkpoint_writes {
                    self.checkpoint(log, None)?;
                }
                Ok(())
            }
            // RF18: durable in redb with the checkpoint of every logged step before it.
            None => self.checkpoint(log, Some(txn)),
        }
    }

    /// RF17: a durable redb commit covering every logged step, then the log released below it.
    fn checkpoint(
        &self,
        log: &mut LogState,
        txn: Option<redb::WriteTransaction>,
    ) -> Result<(), StoreError> {
        let txn = match txn {
            Some(t) => t,
            None => self.db.begin_write().map_err(db("begin write"))?,
        };
        let seq = log.wal.next_seq() - 1;
        set_checkpoint(&txn, seq)?;
        // Durability::Immediate (redb's default): fsynced before it returns.
        txn.commit().map_err(db("commit"))?;
        log.checkpoint = seq;
        log.wal.release_before(seq + 1)
    }

    /// Test-only: the `n`-th log append from now fails as a failed fsync would.
    #[doc(hidden)]
    pub fn fail_sync_after(&self, n: u64) {
        if let Ok(mut log) = self.log.lock() {
            log.wal.fail_sync_after(n);
        }
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
                data: Arc::from(get(KEY_SNAPSHOT_DATA)?.unwrap_or_default()),
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
fn apply_write(meta: &mut Meta<'_>, log: &mut Log<'_>, w: &LogWrite) -> Result<(), StoreError> {
    if let Some(s) = &w.snapshot {
        meta.insert(KEY_SNAPSHOT_META, s.meta.to_bytes().as_slice())
            .map_err(db("write snapshot"))?;
        meta.insert(KEY_SNAPSHOT_DATA, &*s.data).map_err(db("write snapshot"))?;
        let index = s.meta.index;
        if w.discard_log {
            log.retain(|_, _| false).map_err(db("discard log"))?;
        } else {
            log.retain(|k, _| k > index).map_err(db("compact log"))?;
        }
    }
    if let Some(first) = w.entries.first() {
        let snapshot_index = match meta.get(KEY_SNAPSHOT_META).map_err(db("read snapshot"))? {
            Some(v) => {
                SnapshotMeta::from_bytes(v.value()).map_err(corrupt("snapshot metadata"))?.index
            }
            None => 0,
        };
        let last =
            log.last().map_err(db("read raft log"))?.map_or(snapshot_index, |(k, _)| k.value());
        if first.index <= snapshot_index || first.index > last + 1 {
            return Err(StoreError::LogGap { index: first.index, last, snapshot: snapshot_index });
        }
        log.retain(|k, _| k < first.index).map_err(db("truncate log"))?;
        for e in &w.entries {
            log.insert(e.index, e.to_bytes().as_slice()).map_err(db("append log"))?;
        }
    }
    if let Some(hs) = &w.hard_state {
        meta.insert(KEY_HARD_STATE, hs.to_bytes().as_slice()).map_err(db("write hard state"))?;
    }
    Ok(())
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
        apply_write(&mut meta, &mut log, w)?;
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

fn set_checkpoint(txn: &redb::WriteTransaction, seq: u64) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(db("open raft meta"))?;
    meta.insert(KEY_WAL_CHECKPOINT, seq.to_le_bytes().as_slice())
        .map_err(db("write checkpoint"))?;
    Ok(())
}

/// RF17: the checkpoint (0 for a store written before the log existed).
fn read_checkpoint(database: &Database) -> Result<u64, StoreError> {
    let txn = database.begin_read().map_err(db("begin read"))?;
    let meta = txn.open_table(META).map_err(db("open raft meta"))?;
    match meta.get(KEY_WAL_CHECKPOINT).map_err(db("read checkpoint"))? {
        Some(v) => {
            Ok(u64::from_le_bytes(v.value().try_into().map_err(|_| StoreError::Corrupt {
                what: "log checkpoint",
                detail: format!("{} bytes", v.value().len()),
            })?))
        }
        None => Ok(0),
    }
}

fn lost_log(detail: String) -> StoreError {
    StoreError::Corrupt { what: "write-ahead log", detail }
}

fn lock_poisoned() -> StoreError {
    StoreError::Poisoned { first: "the storage writer panicked".into() }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().take(32).map(|b| format!("{b:02x}")).collect()
}
