//! A redb database kept behind the write-ahead log (the etcd WAL + bbolt design), for the
//! HotStuff store: what a step must not lose is made durable by one log append (one
//! `fdatasync`), and the database takes the same step without an fsync of its own.
//!
//! - **W1 (log first).** A step is checked by its store against what the store keeps in
//!   memory (a commit that does not extend the chain, an append that leaves a gap: refused,
//!   nothing written), appended to the log as ONE record (all-or-nothing on replay), and only
//!   then applied to a redb write transaction and committed with `Durability::None`: visible
//!   to every later read of this process, not synced. Building the transaction (about 0.1 ms
//!   a step on the project's machine) so runs after the `fdatasync`, off the path to
//!   durability. The transaction can then fail only as storage fails (I/O, a corrupt page):
//!   the store is poisoned, and the next open replays the record (W3), or refuses to open
//!   with the same error.
//! - **W4 (durable before visible).** The step is durable, and the caller may act on what
//!   depends only on its durability (a vote, an acknowledgement), once the append returned:
//!   `write` reports that (`synced`) before the redb commit, which then runs while the
//!   caller goes on. What reads the database (lookups, sync serving, read barriers) must wait
//!   for `write` to return; until then the caller serves the step from memory.
//! - **W2 (checkpoint).** Each logged step's transaction also records the sequence number of
//!   its record (the `wal` table), so redb's durable state always says which records it
//!   holds. Every `checkpoint_every` records a durable redb commit makes the state durable and
//!   the log's segments below it are released. A step too large for one record (or one its
//!   store does not log) goes straight into redb with a durable commit, which checkpoints
//!   every record before it too.
//! - **W5 (checkpoint after the step's reports).** A write never takes a *due* checkpoint
//!   (a step that is not logged is itself a durable commit, W2): the caller asks for it
//!   ([`Logged::checkpoint_if_due`]) after it has acted on the write (the node's writer
//!   thread: once it reported the write durable and readable). A checkpoint flushes every page the steps since the last one wrote (on the project's
//!   machine at 1 client: 2.7 ms every 32 steps, 5.7 ms every 128, a log append 0.45 ms),
//!   so it delays the writes queued behind it, never the step that made it due. Durability
//!   is unchanged: the step's record was synced before either report (W1), and a crash
//!   during the checkpoint replays it (W3).
//! - **W3 (replay).** Opening reads the checkpoint from redb (after a crash: the last durable
//!   commit) and replays the log's records after it, in order, onto that state in one durable
//!   transaction: exactly the steps redb lost. A log that ends before the checkpoint, or
//!   whose first record after it is not the next one, has been lost or damaged: the open is
//!   refused rather than carrying on with acknowledged steps missing.
//!
//! Failed writes are final: after a failed append or commit every later write fails.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, Durability, ReadableDatabase, TableDefinition, WriteTransaction};

use crate::error::{db, StoreError};
use crate::wal::{Wal, WalOptions, WalRecord, MAX_RECORD_BYTES};

const WAL_TABLE: TableDefinition<&str, u64> = TableDefinition::new("wal");
const KEY_CHECKPOINT: &str = "checkpoint";

/// How a logged store keeps its log and checkpoints its database.
#[derive(Debug, Clone, Copy)]
pub struct LogOptions {
    pub wal: WalOptions,
    /// W2: a durable redb checkpoint after this many logged steps. 32: a checkpoint then
    /// flushes about a round's worth of time (2.7 ms at 1 client, 5.7 ms every 128), which W5
    /// hides behind the round; docs/benchmarks.md, "Checkpoints after the write's reports".
    pub checkpoint_every: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self { wal: WalOptions::default(), checkpoint_every: 32 }
    }
}

/// The log directory of the database at `path` (`node.redb` -> `node.wal`).
pub fn wal_dir(path: &Path) -> PathBuf {
    path.with_extension("wal")
}

/// The writer's side of a logged database: its log, and how far redb's durable state lags.
pub(crate) struct Logged {
    state: Mutex<LogState>,
}

struct LogState {
    wal: Wal,
    checkpoint: u64,
    every: u64,
    poisoned: Option<String>,
}

fn lost_log(detail: String) -> StoreError {
    StoreError::Corrupt { what: "write-ahead log", detail }
}

/// A writer panicked holding a lock: every later write is refused.
pub(crate) fn lock_poisoned() -> StoreError {
    StoreError::Poisoned { first: "the storage writer panicked".into() }
}

fn set_checkpoint(txn: &WriteTransaction, seq: u64) -> Result<(), StoreError> {
    let mut t = txn.open_table(WAL_TABLE).map_err(db("open wal table"))?;
    t.insert(KEY_CHECKPOINT, seq).map_err(db("write checkpoint"))?;
    Ok(())
}

/// W2: the last record redb's state holds; `None` for a database that has never had a log (new,
/// or written before the log existed).
fn read_checkpoint(database: &Database) -> Result<Option<u64>, StoreError> {
    let txn = database.begin_read().map_err(db("begin read"))?;
    let table = match txn.open_table(WAL_TABLE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(db("open wal table")(e)),
    };
    Ok(Some(table.get(KEY_CHECKPOINT).map_err(db("read checkpoint"))?.map_or(0, |v| v.value())))
}

impl Logged {
    /// Opens the log beside the database at `path` and replays onto it, with `apply`, every
    /// record its durable state lacks (W3).
    pub(crate) fn open(
        database: &Database,
        path: &Path,
        opts: LogOptions,
        apply: impl Fn(&WriteTransaction, &[u8]) -> Result<(), StoreError>,
    ) -> Result<Self, StoreError> {
        let dir = wal_dir(path);
        let known = read_checkpoint(database)?;
        // A database that has had a log cannot go on without it: the steps since its last
        // checkpoint (all of them, before the first) exist nowhere else.
        if let (Some(c), false) = (known, dir.exists()) {
            return Err(lost_log(format!("{} is missing (checkpoint {c})", dir.display())));
        }
        let (wal, records) = Wal::open(&dir, opts.wal)?;
        let checkpoint = match known {
            Some(c) => c,
            // The log starts now (it exists on disk by now), and the database says so durably
            // before any step is logged.
            None => {
                let txn = database.begin_write().map_err(db("begin write"))?;
                set_checkpoint(&txn, 0)?;
                txn.commit().map_err(db("commit"))?;
                0
            }
        };
        if wal.next_seq() <= checkpoint {
            return Err(lost_log(format!(
                "the log ends at record {} but the database holds records up to {checkpoint}",
                wal.next_seq() - 1
            )));
        }
        let after: Vec<WalRecord> = records.into_iter().filter(|r| r.seq > checkpoint).collect();
        let first = after.first().map_or(wal.next_seq(), |r| r.seq);
        if first != checkpoint + 1 {
            return Err(lost_log(format!(
                "the records after checkpoint {checkpoint} start at {first}"
            )));
        }
        let mut state =
            LogState { wal, checkpoint, every: opts.checkpoint_every.max(1), poisoned: None };
        if let Some(last) = after.last().map(|r| r.seq) {
            let txn = database.begin_write().map_err(db("begin write"))?;
            for r in &after {
                apply(&txn, &r.data)?;
            }
            set_checkpoint(&txn, last)?;
            txn.commit().map_err(db("commit"))?;
            state.checkpoint = last;
            state.wal.release_before(last + 1)?;
        }
        Ok(Self { state: Mutex::new(state) })
    }

    /// One step, already checked by the caller (W1): `record` (`None`: a step not to be
    /// logged, committed durably instead) is made durable, `synced` is called (W4), then
    /// `fill` applies the step to a write transaction, readable from the database when this
    /// returns. It never takes a due checkpoint (W5: [`Logged::checkpoint_if_due`]; a step
    /// not logged is itself a durable commit, W2). `synced` is called at most once, and never
    /// for a step that failed to become durable.
    pub(crate) fn write(
        &self,
        database: &Database,
        record: Option<Vec<u8>>,
        fill: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
        synced: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        let mut state = self.state.lock().map_err(|_| lock_poisoned())?;
        if let Some(first) = &state.poisoned {
            return Err(StoreError::Poisoned { first: first.clone() });
        }
        let result = Self::write_locked(&mut state, database, record, fill, synced);
        if let Err(e) = &result {
            state.poisoned.get_or_insert_with(|| e.to_string());
        }
        result
    }

    fn write_locked(
        state: &mut LogState,
        database: &Database,
        record: Option<Vec<u8>>,
        fill: impl FnOnce(&WriteTransaction) -> Result<(), StoreError>,
        synced: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        let Some(record) = record.filter(|r| r.len() <= MAX_RECORD_BYTES) else {
            // W2: not logged (too large for a record, or the caller's choice): durable in
            // redb, with every record before it.
            let txn = database.begin_write().map_err(db("begin write"))?;
            fill(&txn)?;
            Self::checkpoint(state, txn)?;
            synced();
            return Ok(());
        };
        // W1: the record is made durable first.
        let seq = state.wal.append(&[&record])?;
        // W4: durable now (W3 replays the record if redb never gets it); readable below.
        synced();
        // The transaction names the record it holds, and commits without an fsync.
        let mut txn = database.begin_write().map_err(db("begin write"))?;
        fill(&txn)?;
        set_checkpoint(&txn, seq)?;
        txn.set_durability(Durability::None).map_err(db("set durability"))?;
        txn.commit().map_err(db("commit"))?;
        // W5: a checkpoint this step made due waits for the caller's `checkpoint_if_due`.
        Ok(())
    }

    /// W2, W5: the durable checkpoint, when `checkpoint_every` records have been logged since
    /// the last one; called by the writer after it acted on the write that made it due.
    /// Returns whether it checkpointed. A failure poisons the store, as a failed write does.
    pub(crate) fn checkpoint_if_due(&self, database: &Database) -> Result<bool, StoreError> {
        let mut state = self.state.lock().map_err(|_| lock_poisoned())?;
        if let Some(first) = &state.poisoned {
            return Err(StoreError::Poisoned { first: first.clone() });
        }
        let last = state.wal.next_seq().saturating_sub(1);
        if last.saturating_sub(state.checkpoint) < state.every {
            return Ok(false);
        }
        let result = database
            .begin_write()
            .map_err(db("begin write"))
            .and_then(|txn| Self::checkpoint(&mut state, txn));
        if let Err(e) = &result {
            state.poisoned.get_or_insert_with(|| e.to_string());
        }
        result.map(|()| true)
    }

    /// The last log record redb holds durably (W2).
    pub(crate) fn checkpointed(&self) -> Result<u64, StoreError> {
        Ok(self.state.lock().map_err(|_| lock_poisoned())?.checkpoint)
    }

    /// W2: a durable redb commit covering every logged step, then the log released below it.
    fn checkpoint(state: &mut LogState, txn: WriteTransaction) -> Result<(), StoreError> {
        let seq = state.wal.next_seq() - 1;
        set_checkpoint(&txn, seq)?;
        // Durability::Immediate (redb's default): fsynced before it returns.
        txn.commit().map_err(db("commit"))?;
        state.checkpoint = seq;
        state.wal.release_before(seq + 1)
    }

    /// Test-only: the `n`-th log append from now fails as a failed fsync would.
    pub(crate) fn fail_sync_after(&self, n: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.wal.fail_sync_after(n);
        }
    }
}
