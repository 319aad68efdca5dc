//! The store: opening, one-transaction batches, recovery, and reads for sync.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::sync::{Arc, Mutex};

use warpnet_core::{Committed, EpochChange, Recovery, SafetyData};
use warpnet_types::codec::{Decode, Encode, Reader, Writer};
use warpnet_types::epoch::EpochEnd;
use warpnet_types::{
    Block, BlockId, ConsensusConfig, Digest, Epoch, Height, QuorumCertificate, SyncRequest,
    SyncResponse,
};

use crate::error::{db, StoreError};
use crate::logged::{lock_poisoned, wal_dir, LogOptions, Logged};
use crate::store_record;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending");
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");
const CHAIN: TableDefinition<u64, &[u8]> = TableDefinition::new("chain");
const APP: TableDefinition<&[u8], &[u8]> = TableDefinition::new("app");
/// Each epoch after the first: its committee (canonical encoding), by epoch number.
const COMMITTEES: TableDefinition<u64, &[u8]> = TableDefinition::new("committees");
/// Each ended epoch: the proof of its end (EP3, EP4), by epoch number.
const EPOCH_ENDS: TableDefinition<u64, &[u8]> = TableDefinition::new("epoch_ends");

const SCHEMA_VERSION: u8 = 1;
/// redb's page cache (its default is 1 GiB, which a node with a million IDs fills: 640 MiB of
/// RSS measured). Reads beyond it come from the OS page cache, which does not count against
/// the process.
pub const CACHE_BYTES: usize = 32 << 20;
const KEY_SCHEMA: &str = "schema";
const KEY_COMMITTEE: &str = "committee";
const KEY_SAFETY: &str = "safety";

/// What one step asks to persist, written in one durable transaction.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Blocks to keep (uncommitted until a commit names them).
    pub blocks: Vec<Block>,
    /// The latest safety data, if it changed.
    pub safety: Option<SafetyData>,
    /// Newly committed blocks, in height order.
    pub commits: Vec<Committed>,
    /// State-machine writes produced by applying `commits` (key, value; empty value deletes).
    pub app: Vec<(Vec<u8>, Vec<u8>)>,
    /// Epochs that ended with these commits, in order, with the committees that follow.
    pub epochs: Vec<EpochChange>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
            && self.safety.is_none()
            && self.commits.is_empty()
            && self.app.is_empty()
            && self.epochs.is_empty()
    }
}

/// The test-only switch that makes a durable write fail as a failed fsync would: set to N, the
/// N-th call of [`Store::write`] in this process writes its log record without syncing it,
/// aborts its transaction and fails (whether the record survives is then unknown, as after a
/// real failed fsync). Only tests set it; `warpnet-consensus/tests/disks.rs` starts a node
/// process with it.
pub const FAIL_SYNC_ENV: &str = "WARPNET_TEST_FAIL_FSYNC_AT";

/// One replica's database, behind its write-ahead log (`logged.rs`: W1-W3).
pub struct Store {
    db: Database,
    /// The log every step goes through first. After a failed durable write every write is
    /// refused: an fsync that failed is never retried (the kernel may have dropped the dirty
    /// pages and a retry would "succeed" without them: PostgreSQL's fsyncgate).
    log: Logged,
    /// W1: the committed chain's tip (height, block) after the last write, which the next
    /// write's commits are checked against before it is logged (held for the whole write).
    tip: Mutex<(u64, BlockId)>,
}

fn chain_record(id: &BlockId, qc: &QuorumCertificate) -> Vec<u8> {
    let mut w = Writer::with_capacity(64 + 64 * qc.signatures().len());
    w.put(id).put(qc);
    w.finish()
}

fn decode_chain_record(bytes: &[u8]) -> Result<(BlockId, QuorumCertificate), StoreError> {
    let corrupt = |e: warpnet_types::CodecError| StoreError::Corrupt {
        what: "chain record",
        detail: e.to_string(),
    };
    let mut r = Reader::new(bytes);
    let id: Digest = r.get().map_err(corrupt)?;
    let qc = r.get().map_err(corrupt)?;
    r.finish().map_err(corrupt)?;
    Ok((id, qc))
}

fn decode_block(bytes: &[u8]) -> Result<Block, StoreError> {
    Block::from_bytes(bytes)
        .map_err(|e| StoreError::Corrupt { what: "block", detail: e.to_string() })
}

impl Store {
    /// Creates a new database at `path`, at the committee's genesis, and makes its directory
    /// entry durable. Refuses an existing path.
    pub fn create(path: &Path, config: &ConsensusConfig) -> Result<Self, StoreError> {
        Self::create_with(path, config, LogOptions::default())
    }

    /// [`Store::create`] with options for its log. A log left beside the path (by a store
    /// removed without it) is refused: its records belong to another store.
    pub fn create_with(
        path: &Path,
        config: &ConsensusConfig,
        opts: LogOptions,
    ) -> Result<Self, StoreError> {
        for p in [path.to_path_buf(), wal_dir(path)] {
            if p.exists() {
                return Err(StoreError::Exists { path: p });
            }
        }
        let store = Self::open_or_create(path, config, opts)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(dir)?;
        Ok(store)
    }

    /// Opens an existing database of `config`'s committee. A missing one is an error: a node
    /// that starts again from genesis could sign twice.
    pub fn open(path: &Path, config: &ConsensusConfig) -> Result<Self, StoreError> {
        Self::open_with(path, config, LogOptions::default())
    }

    /// [`Store::open`] with options for its log: replays what redb lost (W3).
    pub fn open_with(
        path: &Path,
        config: &ConsensusConfig,
        opts: LogOptions,
    ) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing { path: path.to_path_buf() });
        }
        Self::open_or_create(path, config, opts)
    }

    fn open_or_create(
        path: &Path,
        config: &ConsensusConfig,
        opts: LogOptions,
    ) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| StoreError::Open { path: path.to_path_buf(), detail: e.to_string() })?;
        init(&db, config)?;
        let log = Logged::open(&db, path, opts, |txn, record| {
            let batch = store_record::decode(record).map_err(|e| StoreError::Corrupt {
                what: "write-ahead log record",
                detail: e.to_string(),
            })?;
            apply_batch(txn, &batch)
        })?;
        if let Some(n) = std::env::var(FAIL_SYNC_ENV).ok().and_then(|v| v.trim().parse().ok()) {
            log.fail_sync_after(n);
        }
        let tip = read_tip(&db)?;
        Ok(Self { db, log, tip: Mutex::new(tip) })
    }
}

fn init(database: &Database, config: &ConsensusConfig) -> Result<(), StoreError> {
    let txn = database.begin_write().map_err(db("begin write"))?;
    {
        let mut meta = txn.open_table(META).map_err(db("open meta"))?;
        let schema = meta.get(KEY_SCHEMA).map_err(db("read schema"))?.map(|v| v.value().to_vec());
        // A store belongs to one network: its first committee (later epochs' committees
        // are in the `committees` table).
        let expected = config.genesis_digest();
        match schema {
            Some(v) => {
                let found = v.first().copied().unwrap_or(0);
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { found, supported: SCHEMA_VERSION });
                }
                let stored = meta
                    .get(KEY_COMMITTEE)
                    .map_err(db("read committee"))?
                    .map(|v| v.value().to_vec());
                if stored.as_deref() != Some(expected.as_bytes().as_slice()) {
                    return Err(StoreError::CommitteeMismatch {
                        stored: stored.map_or_else(|| "none".into(), |s| hex_short(&s)),
                        expected: expected.to_hex(),
                    });
                }
            }
            None => {
                meta.insert(KEY_SCHEMA, [SCHEMA_VERSION].as_slice()).map_err(db("write schema"))?;
                meta.insert(KEY_COMMITTEE, expected.as_bytes().as_slice())
                    .map_err(db("write committee"))?;
                let genesis = Block::genesis(config);
                let mut blocks = txn.open_table(BLOCKS).map_err(db("open blocks"))?;
                blocks
                    .insert(genesis.id().as_bytes().as_slice(), genesis.to_bytes().as_slice())
                    .map_err(db("write genesis"))?;
                let mut chain = txn.open_table(CHAIN).map_err(db("open chain"))?;
                let record = chain_record(&genesis.id(), &QuorumCertificate::genesis(config));
                chain.insert(0, record.as_slice()).map_err(db("write genesis"))?;
            }
        }
        // Make sure every table exists, so readers never meet a missing one.
        txn.open_table(PENDING).map_err(db("open pending"))?;
        txn.open_table(APP).map_err(db("open app"))?;
        txn.open_table(COMMITTEES).map_err(db("open committees"))?;
        txn.open_table(EPOCH_ENDS).map_err(db("open epoch ends"))?;
    }
    txn.commit().map_err(db("commit"))
}

/// The chain's tip after `c`, if `c` extends the tip `(tip, tip_id)`.
fn extend(tip: u64, tip_id: BlockId, c: &Committed) -> Result<(u64, BlockId), StoreError> {
    let (h, parent) = (c.block.height().0, c.block.parent());
    if h != tip + 1 || parent != tip_id {
        return Err(StoreError::NotExtending { height: h, tip, parent: parent.to_hex() });
    }
    Ok((h, c.block.id()))
}

/// The committed chain's tip (height, block), as the database holds it.
fn read_tip(database: &Database) -> Result<(u64, BlockId), StoreError> {
    let txn = database.begin_read().map_err(db("begin read"))?;
    let chain = txn.open_table(CHAIN).map_err(db("open chain"))?;
    let tip = match chain.last().map_err(db("read tip"))? {
        Some((h, v)) => (h.value(), decode_chain_record(v.value())?.0),
        None => return Err(StoreError::Corrupt { what: "chain", detail: "empty".into() }),
    };
    Ok(tip)
}

/// One step into a write transaction: new blocks, safety data, commits (which must extend the
/// stored chain one height at a time; forks at or below the new tip are pruned), ended epochs,
/// state-machine writes. Used for a new step and for a replayed one alike.
fn apply_batch(txn: &redb::WriteTransaction, batch: &Batch) -> Result<(), StoreError> {
    {
        let mut pending = txn.open_table(PENDING).map_err(db("open pending"))?;
        for b in &batch.blocks {
            pending
                .insert(b.id().as_bytes().as_slice(), b.to_bytes().as_slice())
                .map_err(db("write block"))?;
        }
        if let Some(s) = &batch.safety {
            let mut meta = txn.open_table(META).map_err(db("open meta"))?;
            meta.insert(KEY_SAFETY, s.to_bytes().as_slice()).map_err(db("write safety data"))?;
        }
        if !batch.commits.is_empty() {
            let mut chain = txn.open_table(CHAIN).map_err(db("open chain"))?;
            let mut blocks = txn.open_table(BLOCKS).map_err(db("open blocks"))?;
            let (mut tip, mut tip_id) = match chain.last().map_err(db("read tip"))? {
                Some((h, v)) => (h.value(), decode_chain_record(v.value())?.0),
                None => return Err(StoreError::Corrupt { what: "chain", detail: "empty".into() }),
            };
            for c in &batch.commits {
                // Checked again here (the write checked it against its tip, replay did not).
                let (h, id) = extend(tip, tip_id, c)?;
                blocks
                    .insert(id.as_bytes().as_slice(), c.block.to_bytes().as_slice())
                    .map_err(db("write committed block"))?;
                chain
                    .insert(h, chain_record(&id, &c.certificate).as_slice())
                    .map_err(db("write chain"))?;
                pending.remove(id.as_bytes().as_slice()).map_err(db("remove pending"))?;
                (tip, tip_id) = (h, id);
            }
            // Forks at or below the tip can never commit.
            let mut stale = Vec::new();
            for entry in pending.iter().map_err(db("scan pending"))? {
                let (k, v) = entry.map_err(db("scan pending"))?;
                if decode_block(v.value())?.height().0 <= tip {
                    stale.push(k.value().to_vec());
                }
            }
            for k in stale {
                pending.remove(k.as_slice()).map_err(db("prune pending"))?;
            }
        }
        if !batch.epochs.is_empty() {
            let mut committees = txn.open_table(COMMITTEES).map_err(db("open committees"))?;
            let mut ends = txn.open_table(EPOCH_ENDS).map_err(db("open epoch ends"))?;
            for e in &batch.epochs {
                let next = e.next.epoch().0;
                committees
                    .insert(next, e.next.to_bytes().as_slice())
                    .map_err(db("write committee"))?;
                ends.insert(e.end.epoch().0, e.end.to_bytes().as_slice())
                    .map_err(db("write epoch end"))?;
            }
        }
        if !batch.app.is_empty() {
            let mut app = txn.open_table(APP).map_err(db("open app"))?;
            for (k, v) in &batch.app {
                if v.is_empty() {
                    app.remove(k.as_slice()).map_err(db("delete app"))?;
                } else {
                    app.insert(k.as_slice(), v.as_slice()).map_err(db("write app"))?;
                }
            }
        }
    }
    Ok(())
}

impl Store {
    /// Writes a batch and makes it durable before returning: one log record (one
    /// `fdatasync`), then redb without an fsync (W1), checkpointed now and then (W2).
    pub fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        self.write_reporting(batch, &mut || ())?;
        self.checkpoint_if_due().map(drop)
    }

    /// [`Store::write`], calling `synced` as soon as the batch is durable, before the
    /// database has it (W4): what reads the store waits for the return. It takes no
    /// due checkpoint (a step not logged is itself a durable commit): the caller calls
    /// [`Store::checkpoint_if_due`] once it has acted on the write (W5).
    pub fn write_reporting(
        &self,
        batch: &Batch,
        synced: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        if batch.is_empty() {
            synced();
            return Ok(());
        }
        let mut tip = self.tip.lock().map_err(|_| lock_poisoned())?;
        // W1: commits must extend the chain; checked before anything is written.
        let after = batch.commits.iter().try_fold(*tip, |(h, id), c| extend(h, id, c))?;
        let record = store_record::encode(batch);
        self.log.write(&self.db, Some(record), |txn| apply_batch(txn, batch), synced)?;
        *tip = after;
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

    /// Test-only (see [`FAIL_SYNC_ENV`]): the `n`-th write from now fails as a failed fsync.
    #[doc(hidden)]
    pub fn fail_sync_after(&self, n: u64) {
        self.log.fail_sync_after(n);
    }

    /// What the core needs to resume: safety data, the last committed block with its QC, and
    /// the uncommitted blocks above it.
    pub fn recovery(&self, config: &ConsensusConfig) -> Result<Recovery, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let meta = txn.open_table(META).map_err(db("open meta"))?;
        let safety = match meta.get(KEY_SAFETY).map_err(db("read safety data"))? {
            Some(v) => SafetyData::from_bytes(v.value())
                .map_err(|e| StoreError::Corrupt { what: "safety data", detail: e.to_string() })?,
            None => SafetyData::initial(config),
        };
        let chain = txn.open_table(CHAIN).map_err(db("open chain"))?;
        let (tip_id, committed_certificate) = match chain.last().map_err(db("read tip"))? {
            Some((_, v)) => decode_chain_record(v.value())?,
            None => return Err(StoreError::Corrupt { what: "chain", detail: "empty".into() }),
        };
        let blocks = txn.open_table(BLOCKS).map_err(db("open blocks"))?;
        let committed =
            match blocks.get(tip_id.as_bytes().as_slice()).map_err(db("read tip block"))? {
                Some(v) => decode_block(v.value())?,
                None => {
                    return Err(StoreError::Corrupt {
                        what: "chain",
                        detail: format!("tip block {} missing", tip_id.to_hex()),
                    })
                }
            };
        let pending = txn.open_table(PENDING).map_err(db("open pending"))?;
        let mut uncommitted = Vec::new();
        for entry in pending.iter().map_err(db("scan pending"))? {
            let (_, v) = entry.map_err(db("scan pending"))?;
            let b = decode_block(v.value())?;
            if b.height() > committed.height() {
                uncommitted.push(b);
            }
        }
        // M2: the last committed blocks' commands, oldest first; H3: their health records.
        let tip = committed.height().0;
        let members = self.committee(config).map_or(config.total_nodes(), |c| c.total_nodes());
        let keep = warpnet_core::health::history_len(members) as u64;
        let commands_from = tip.saturating_sub(warpnet_core::RECENT_COMMITTED_BLOCKS - 1).max(1);
        let mut recent_commands = Vec::new();
        let mut history = Vec::new();
        for h in tip.saturating_sub(keep - 1).min(commands_from)..=tip {
            let missing = || StoreError::Corrupt {
                what: "chain",
                detail: format!("committed block at height {h} missing"),
            };
            let record = chain.get(h).map_err(db("read chain"))?.ok_or_else(missing)?;
            let (id, _) = decode_chain_record(record.value())?;
            let block = blocks
                .get(id.as_bytes().as_slice())
                .map_err(db("read block"))?
                .ok_or_else(missing)?;
            let block = decode_block(block.value())?;
            if h >= commands_from {
                recent_commands.extend(block.payload().iter().cloned());
            }
            if h + keep > tip {
                history.push(warpnet_core::health::Record::of(&block));
            }
        }
        Ok(Recovery {
            safety,
            committed,
            committed_certificate,
            blocks: uncommitted,
            recent_commands,
            history,
        })
    }

    /// The committee of the latest epoch the store reached: `genesis` (the network's first
    /// committee, which the store was opened with) until an epoch ended.
    pub fn committee(&self, genesis: &ConsensusConfig) -> Result<Arc<ConsensusConfig>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let t = txn.open_table(COMMITTEES).map_err(db("open committees"))?;
        let last = t.last().map_err(db("read committee"))?.map(|(_, v)| v.value().to_vec());
        match last {
            None => Ok(Arc::new(genesis.clone())),
            Some(bytes) => {
                let c = ConsensusConfig::from_bytes(&bytes).map_err(|e| StoreError::Corrupt {
                    what: "committee",
                    detail: e.to_string(),
                })?;
                if c.genesis_digest() != genesis.genesis_digest() {
                    return Err(StoreError::Corrupt {
                        what: "committee",
                        detail: "a committee of another network".into(),
                    });
                }
                Ok(Arc::new(c))
            }
        }
    }

    /// The committee of `epoch`, if it started after genesis and this node stored it.
    pub fn committee_at(&self, epoch: Epoch) -> Result<Option<Arc<ConsensusConfig>>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let t = txn.open_table(COMMITTEES).map_err(db("open committees"))?;
        let Some(v) = t.get(epoch.0).map_err(db("read committee"))? else { return Ok(None) };
        let c = ConsensusConfig::from_bytes(v.value())
            .map_err(|e| StoreError::Corrupt { what: "committee", detail: e.to_string() })?;
        Ok(Some(Arc::new(c)))
    }

    /// The proofs of the ends of the epochs from `from` on, oldest first, at most `max` (EP4).
    pub fn epoch_ends(&self, from: Epoch, max: usize) -> Result<Vec<EpochEnd>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let t = txn.open_table(EPOCH_ENDS).map_err(db("open epoch ends"))?;
        let mut out = Vec::new();
        for entry in t.range(from.0..).map_err(db("read epoch ends"))?.take(max) {
            let (_, v) = entry.map_err(db("read epoch ends"))?;
            out.push(
                EpochEnd::from_bytes(v.value()).map_err(|e| StoreError::Corrupt {
                    what: "epoch end",
                    detail: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }

    /// Any block held, committed or not.
    pub fn block(&self, id: &BlockId) -> Result<Option<Block>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        for table in [PENDING, BLOCKS] {
            let t = txn.open_table(table).map_err(db("open table"))?;
            if let Some(v) = t.get(id.as_bytes().as_slice()).map_err(db("read block"))? {
                return decode_block(v.value()).map(Some);
            }
        }
        Ok(None)
    }

    /// The committed block at `height`, with the QC certifying it.
    pub fn committed(
        &self,
        height: Height,
    ) -> Result<Option<(Block, QuorumCertificate)>, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let chain = txn.open_table(CHAIN).map_err(db("open chain"))?;
        let Some(v) = chain.get(height.0).map_err(db("read chain"))? else { return Ok(None) };
        let (id, qc) = decode_chain_record(v.value())?;
        let blocks = txn.open_table(BLOCKS).map_err(db("open blocks"))?;
        let block = match blocks.get(id.as_bytes().as_slice()).map_err(db("read block"))? {
            Some(b) => decode_block(b.value())?,
            None => {
                return Err(StoreError::Corrupt {
                    what: "chain",
                    detail: format!("block at height {height} missing"),
                })
            }
        };
        Ok(Some((block, qc)))
    }

    /// Height of the last committed block.
    pub fn committed_height(&self) -> Result<Height, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let chain = txn.open_table(CHAIN).map_err(db("open chain"))?;
        let last = chain.last().map_err(db("read tip"))?;
        Ok(Height(last.map_or(0, |(h, _)| h.value())))
    }

    /// Number of uncommitted blocks held (for status and tests).
    pub fn pending_len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let t = txn.open_table(PENDING).map_err(db("open pending"))?;
        t.len().map_err(db("count pending"))
    }

    /// A state-machine value.
    pub fn app_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.app_snapshot()?.get(key)
    }

    /// A consistent view of the state machine and the height it was committed at, from one
    /// read transaction: a batch writes the app values and the chain together, so the two can
    /// never disagree. Cheap (no copy); readers never block the writer.
    pub fn app_snapshot(&self) -> Result<AppSnapshot, StoreError> {
        let txn = self.db.begin_read().map_err(db("begin read"))?;
        let chain = txn.open_table(CHAIN).map_err(db("open chain"))?;
        let height = Height(chain.last().map_err(db("read tip"))?.map_or(0, |(h, _)| h.value()));
        let table = txn.open_table(APP).map_err(db("open app"))?;
        Ok(AppSnapshot { table, height })
    }

    /// Answers a peer's sync request (`Step::serve_sync`) from the store. A read error is
    /// returned (the node stops), never taken for a missing block.
    pub fn serve_sync(
        &self,
        request: &SyncRequest,
        max_blocks: usize,
    ) -> Result<SyncResponse, StoreError> {
        let mut failure = None;
        let response =
            warpnet_core::sync::respond(request, max_blocks, |id| match self.block(id) {
                Ok(b) => b,
                Err(e) => {
                    failure.get_or_insert(e);
                    None
                }
            });
        match failure {
            Some(e) => Err(e),
            None => Ok(response),
        }
    }
}

/// See [`Store::app_snapshot`].
pub struct AppSnapshot {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    height: Height,
}

impl AppSnapshot {
    pub(crate) fn new(
        table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
        height: Height,
    ) -> Self {
        Self { table, height }
    }

    /// The committed height this view reflects (in Raft mode, the applied log index).
    pub fn height(&self) -> Height {
        self.height
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.table.get(key).map_err(db("read app"))?.map(|v| v.value().to_vec()))
    }
}

/// Makes a directory's entries (a new file's name) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::Open {
        path: dir.to_path_buf(),
        detail: format!("syncing the directory: {e}"),
    })
}

fn hex_short(bytes: &[u8]) -> String {
    bytes.iter().take(32).map(|b| format!("{b:02x}")).collect()
}
