//! The node's event loop: one consensus engine (HotStuff or Raft, chosen at genesis in the
//! committee file), driven by the transport, the clock, the API, the verifier and the storage
//! writer. Everything engine-specific is behind [`crate::engine::Engine`]; this file opens the
//! node's store, starts the threads and tasks, and hands each event to the engine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{error, info};
use warpnet_core::{Core, CoreParams, StartError};
use warpnet_net::{Peer, Transport, TransportConfig};
use warpnet_raft::{EngineConfig, Membership, RaftEngine, RaftParams, Recovery};
use warpnet_storage::{RaftStore, Store, StoreError};
use warpnet_types::PublicKey;

use crate::api;
use crate::committee::{CommitteeDriver, Event};
use crate::engine::hotstuff::HotStuff;
use crate::engine::raft::{Raft, RaftSettings};
use crate::engine::{Engine, Io};
use crate::files::{Consensus, FileError, Loaded};
use crate::handle::{Committed, Shared, Snapshot};
use crate::membership::Policy;
use crate::metrics::Metrics;
use crate::persist::{DurableStore, Persister, Written};
use crate::verifier::Verifier;

/// Requests waiting for the consensus loop; beyond this the API answers `overloaded`.
const SUBMIT_QUEUE_MAX: usize = 16_384;
/// Most requests taken in one loop turn (and shared in one frame, or proposed together).
const SUBMIT_BATCH_MAX: usize = 1_024;
/// Default bound on how long a claim waits for its commit.
pub const CLAIM_TIMEOUT_DEFAULT_MS: u64 = 5_000;
/// Raft mode's default tick.
pub const RAFT_TICK_DEFAULT_MS: u64 = 100;
/// How long a removed member serves proofs and blocks before it stops, by default (EP5).
const LINGER_DEFAULT_MS: u64 = 30_000;
/// Committee requests from the API waiting for the loop.
const CONTROL_QUEUE_MAX: usize = 64;
/// Raft mode's default compaction interval, in entries.
pub const RAFT_COMPACT_ENTRIES_DEFAULT: u64 = 4_096;

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Files(#[from] FileError),
    // Not `#[from]`: the message already holds the cause, so `main`'s one line (which prints
    // the source chain) would say it twice.
    #[error("storage: {0}")]
    Store(StoreError),
    #[error("consensus could not start: {0}")]
    Start(StartError),
    #[error("the Raft log on disk does not hold together: {0}")]
    RaftRecovery(#[from] warpnet_raft::RecoveryError),
    #[error("raft: {detail}")]
    Raft { detail: String },
    #[error("{path} holds a {found} store, but the committee file says consensus = \"{expected}\": the consensus is chosen at genesis and fixed for the network's life")]
    WrongConsensus { path: std::path::PathBuf, found: &'static str, expected: &'static str },
    #[error("no database at {path}, and this is not the node's first start: starting again from genesis could make it sign twice. Restore the data directory (README: moving or mounting a data directory); a brand-new node is created with `node init`")]
    MissingDatabase { path: std::path::PathBuf },
    #[error("this node's key was removed from the committee (it is retired as of epoch {epoch}) and can never be a member again: create a new key (node init) and ask to join")]
    Retired { epoch: u64 },
    #[error("cannot listen on {address}")]
    Bind { address: String, source: std::io::Error },
    #[error("cannot start the {what} thread: {source}")]
    Thread { what: &'static str, source: std::io::Error },
    #[error("the claim verifier thread stopped unexpectedly")]
    VerifierStopped,
    #[error("the storage writer thread stopped unexpectedly")]
    WriterStopped,
}

impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        NodeError::Store(e)
    }
}

impl From<StartError> for NodeError {
    fn from(e: StartError) -> Self {
        NodeError::Start(e)
    }
}

/// The engine's clock: wall-clock milliseconds at the start, then monotonic (a wall-clock jump
/// never fires or stalls a round timer).
pub struct Clock {
    start_ms: u64,
    start: Instant,
}

impl Clock {
    fn new() -> Self {
        let start_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Self { start_ms, start: Instant::now() }
    }

    pub fn now_ms(&self) -> u64 {
        self.start_ms + self.start.elapsed().as_millis() as u64
    }

    fn instant(&self, at_ms: u64) -> tokio::time::Instant {
        let after = Duration::from_millis(at_ms.saturating_sub(self.start_ms));
        tokio::time::Instant::from_std(self.start + after)
    }
}

/// The operator's admission policy from `node.toml`.
fn policy_of(loaded: &Files) -> Result<Policy, NodeError> {
    let path = loaded.dir.join("node.toml");
    let invalid =
        |detail: String| NodeError::Files(FileError::Invalid { path: path.clone(), detail });
    match loaded.node.admission_policy.as_deref().unwrap_or("manual") {
        "manual" => Ok(Policy::Manual),
        "open" => {
            Ok(Policy::Open { interval_ms: loaded.node.admission_interval_ms.unwrap_or(60_000) })
        }
        "allowlist" => {
            let file = loaded.node.admission_allowlist.as_ref().ok_or_else(|| {
                invalid("admission_policy = \"allowlist\" needs admission_allowlist (a file of hex keys)".into())
            })?;
            let file = loaded.dir.join(file);
            let text = std::fs::read_to_string(&file)
                .map_err(|source| FileError::Io { path: file.clone(), source })?;
            let mut keys = std::collections::BTreeSet::new();
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                keys.insert(PublicKey::from_hex(line).map_err(|_| {
                    invalid(format!("{}: {line:?} is not a hex public key", file.display()))
                })?);
            }
            Ok(Policy::Allowlist(keys))
        }
        other => Err(invalid(format!(
            "admission_policy must be manual, allowlist or open, not {other:?}"
        ))),
    }
}

/// The bootstrap peers `node join` wrote.
fn bootstrap_of(loaded: &Files) -> Result<Vec<Peer>, NodeError> {
    loaded
        .node
        .bootstrap
        .iter()
        .map(|b| {
            let key = PublicKey::from_hex(&b.public_key).map_err(|_| {
                NodeError::Files(FileError::Invalid {
                    path: loaded.dir.join("node.toml"),
                    detail: format!("bootstrap key {:?} is not a hex public key", b.public_key),
                })
            })?;
            Ok(Peer { key, address: b.p2p_address.clone() })
        })
        .collect()
}

/// Name of the marker `node init` leaves in a new node's directory (beside `node.toml`, not in
/// the data directory, so an empty volume mounted there is still a first start): the one case
/// in which `node run` may create the database (at genesis).
pub const FIRST_START_MARKER: &str = "FIRST_START";

/// HotStuff mode's database file in the data directory.
const HOTSTUFF_DB: &str = "node.redb";
/// Raft mode's database file.
const RAFT_DB: &str = "raft.redb";

/// Opens the node's database of the chosen consensus; creates it only on a first start (the
/// marker in the node's directory, or inside the data directory where older versions of `node
/// init` left it). A missing database otherwise is refused: starting again from genesis could
/// make the node sign (or vote) twice. The marker is removed (durably) before the node can
/// sign anything. A data directory of the other consensus is refused too.
fn open_db<S>(
    node_dir: &std::path::Path,
    data_dir: &std::path::Path,
    consensus: Consensus,
    open: impl FnOnce(&std::path::Path) -> Result<S, StoreError>,
    create: impl FnOnce(&std::path::Path) -> Result<S, StoreError>,
) -> Result<S, NodeError> {
    let (mine, other, other_name) = match consensus {
        Consensus::Hotstuff => (HOTSTUFF_DB, RAFT_DB, "raft"),
        Consensus::Raft => (RAFT_DB, HOTSTUFF_DB, "hotstuff"),
    };
    let path = data_dir.join(mine);
    let foreign = data_dir.join(other);
    if foreign.exists() {
        return Err(NodeError::WrongConsensus {
            path: foreign,
            found: other_name,
            expected: consensus.as_str(),
        });
    }
    if path.exists() {
        return Ok(open(&path)?);
    }
    let markers = [node_dir, data_dir].map(|d| d.join(FIRST_START_MARKER));
    if !markers.iter().any(|m| m.exists()) {
        return Err(NodeError::MissingDatabase { path });
    }
    let store = create(&path)?;
    for marker in markers.iter().filter(|m| m.exists()) {
        std::fs::remove_file(marker)
            .map_err(|source| FileError::Io { path: marker.clone(), source })?;
        if let Some(dir) = marker.parent() {
            warpnet_storage::sync_dir(dir)?;
        }
    }
    info!(path = %path.display(), consensus = consensus.as_str(), "created the database (first start)");
    Ok(store)
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The node's configuration files, as loaded.
struct Files {
    dir: std::path::PathBuf,
    node: crate::files::NodeFile,
    committee: crate::files::CommitteeFile,
}

/// What every engine is started with.
struct Common {
    /// The genesis committee (HotStuff mode starts from the latest its store holds).
    config: Arc<warpnet_types::ConsensusConfig>,
    signer: Arc<dyn warpnet_types::Signer>,
    node_dir: std::path::PathBuf,
    data_dir: std::path::PathBuf,
    durable_tx: mpsc::UnboundedSender<Result<crate::persist::Written, StoreError>>,
}

/// The storage writer thread; `synced`: whether the engine acts on `Written::Synced` (W4).
fn writer<S: DurableStore>(
    store: Arc<S>,
    c: &Common,
    synced: bool,
) -> Result<Persister<S>, NodeError> {
    Persister::start(store, c.durable_tx.clone(), synced)
        .map_err(|source| NodeError::Thread { what: "storage writer", source })
}

/// HotStuff mode: the core on the block store.
fn hotstuff(
    loaded: &Files,
    c: &Common,
    probes: mpsc::UnboundedSender<Event>,
) -> Result<(HotStuff, Committed, Duration), NodeError> {
    let genesis = &c.config;
    let store = Arc::new(open_db(
        &c.node_dir,
        &c.data_dir,
        Consensus::Hotstuff,
        |p| Store::open(p, genesis),
        |p| Store::create(p, genesis),
    )?);
    // The committee of the latest epoch this node reached (genesis if none ended yet).
    let config = store.committee(genesis)?;
    let me = c.signer.public_key();
    if config.is_retired(&me) {
        return Err(NodeError::Retired { epoch: config.epoch().0 });
    }
    let recovery = store.recovery(&config)?;
    let mut params = CoreParams::default();
    if let Some(ms) = loaded.node.round_timeout_base_ms {
        params.round_timeout_base_ms = ms;
        params.round_timeout_max_ms = params.round_timeout_max_ms.max(ms);
    }
    let sync_blocks_max = usize::from(params.sync_blocks_max);
    let live_window = Duration::from_millis(params.round_timeout_base_ms * 3);
    let core = Core::recover(config.clone(), c.signer.clone(), params, recovery)?;
    match config.node_id_of(&me) {
        Some(id) => info!(epoch = %config.epoch(), node = %id, "member of the committee"),
        None => tracing::warn!(
            epoch = %config.epoch(),
            key = %me.to_hex(),
            "this node is not a member of the committee it knows: it follows the chain (joining, or removed) and votes once a committee that includes it starts"
        ),
    }
    let since =
        crate::committee::member_since(&config, genesis, |e| store.committee_at(e).ok().flatten());
    let committee = CommitteeDriver::new(
        config.clone(),
        c.signer.clone(),
        policy_of(loaded)?,
        loaded.node.linger_ms.unwrap_or(LINGER_DEFAULT_MS),
        bootstrap_of(loaded)?,
        since,
        TransportConfig::new(config.clone(), c.signer.clone()),
        probes,
    );
    // W4 measured for HotStuff: feeding `Persisted` at the sync instead of after redb's commit
    // gave 1.04× the claims/s at 1 client but 0.95× at 256 (docs/benchmarks.md; a gap of the
    // size the runs' order can give), so its core hears `Persisted` once the write is
    // readable, as before (the conservative choice), and the writer reports only that.
    let persister = writer(store.clone(), c, false)?;
    let mut engine = HotStuff::new(core, store.clone(), persister, sync_blocks_max, committee);
    if std::env::var_os(crate::engine::hotstuff::EQUIVOCATE_ENV).is_some_and(|v| v == "1") {
        engine = engine.equivocate_with(c.signer.clone());
    }
    Ok((engine, Committed::Hotstuff(store), live_window))
}

/// Raft mode: the engine on the Raft store. Founding voters start from the genesis snapshot,
/// standbys (`voter = false`) from nothing until a leader adds them.
fn raft(
    loaded: &Files,
    c: &Common,
    events: mpsc::UnboundedSender<crate::engine::raft::RaftEvent>,
) -> Result<(Raft, Committed, Duration), NodeError> {
    let config = &c.config;
    // RV5: a member of the committee file has its index; a member added later (`node join`)
    // an id derived from its key, so it knows it before the leader adds it.
    let me = crate::engine::raft_roster::id_of(config, &c.signer.public_key());
    let identity = config.digest();
    let founders = Membership::new(
        (0..config.total_nodes())
            .filter(|&i| loaded.committee.is_founding_voter(i))
            .map(|i| warpnet_raft::Member {
                id: warpnet_types::NodeId(i as u16),
                public: config.participants()[i].public,
            })
            .collect(),
    );
    let initial =
        if founders.contains(me) { Recovery::genesis(founders) } else { Recovery::joining() };
    let store = Arc::new(open_db(
        &c.node_dir,
        &c.data_dir,
        Consensus::Raft,
        |p| RaftStore::open(p, identity.as_bytes()),
        |p| RaftStore::create(p, identity.as_bytes(), &initial),
    )?);
    let recovery = store.recovery()?;
    let durable_applied = recovery.applied;
    let settings = RaftSettings {
        tick_ms: loaded.node.raft_tick_ms.unwrap_or(RAFT_TICK_DEFAULT_MS).max(1),
        compact_entries: loaded.node.raft_compact_entries.unwrap_or(RAFT_COMPACT_ENTRIES_DEFAULT),
        voters_min: loaded.committee.voters_min.unwrap_or(1).max(1),
    };
    let params = RaftParams {
        command_bytes_max: crate::engine::raft_entry_bytes_max(),
        voters_min: settings.voters_min,
        ..RaftParams::default()
    };
    let live_window = Duration::from_millis(settings.tick_ms * params.election_ticks as u64 * 2);
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| NodeError::Raft {
        detail: format!("no randomness for the election timer: {e}"),
    })?;
    let engine_config = EngineConfig { me, params, seed: u64::from_le_bytes(seed) };
    let engine = RaftEngine::new(engine_config, recovery)?;
    let persister = writer(store.clone(), c, true)?;
    let node = Raft::new(
        engine,
        store.clone(),
        persister,
        config.clone(),
        settings,
        durable_applied,
        events,
        crate::engine::raft_voters::VoterChanges::new(policy_of(loaded)?, bootstrap_of(loaded)?),
        TransportConfig::new(config.clone(), c.signer.clone()),
    );
    Ok((node, Committed::Raft(store), live_window))
}

/// Runs a node until `shutdown` completes or a fatal error (storage) stops it.
pub async fn run(
    loaded: Loaded,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let Loaded { dir, node, committee, config, signer } = loaded;
    let config = Arc::new(config);
    let signer: Arc<dyn warpnet_types::Signer> = Arc::new(signer);
    let loaded = Files { dir: dir.clone(), node, committee };
    let data_dir = dir.join(&loaded.node.data_dir);
    std::fs::create_dir_all(&data_dir)
        .map_err(|source| FileError::Io { path: data_dir.clone(), source })?;
    let (durable_tx, durable_rx) = mpsc::unbounded_channel();
    let common = Common { config, signer, node_dir: dir, data_dir, durable_tx };
    let consensus = loaded.committee.consensus;
    match consensus {
        Consensus::Hotstuff => {
            let (events_tx, events_rx) = mpsc::unbounded_channel();
            let (engine, committed, live) = hotstuff(&loaded, &common, events_tx)?;
            drive(loaded, common, engine, committed, live, durable_rx, events_rx, shutdown).await
        }
        Consensus::Raft => {
            let (events_tx, events_rx) = mpsc::unbounded_channel();
            let (engine, committed, live) = raft(&loaded, &common, events_tx)?;
            drive(loaded, common, engine, committed, live, durable_rx, events_rx, shutdown).await
        }
    }
}

/// One report of the writer thread (W4): durable (a crash keeps it), then readable; now and
/// then a checkpoint after them (W5).
fn on_written<E: Engine>(engine: &mut E, io: &mut Io, written: Written) -> Result<(), NodeError> {
    match written {
        Written::Synced { seq } => engine.on_synced(io, seq),
        Written::Durable(durable) => {
            let m = &io.shared.metrics;
            m.fsync(durable.synced_after.as_secs_f64());
            m.db_commit(durable.commit.as_secs_f64());
            m.writes.inc_by(durable.merged as u64);
            engine.on_durable(io, durable)
        }
        Written::Checkpointed(took) => {
            io.shared.metrics.db_checkpoint(took.as_secs_f64());
            Ok(())
        }
    }
}

/// The loop: every event goes to the engine; after each, the engine refreshes what it
/// publishes. A storage error stops the node with the error.
#[allow(clippy::too_many_arguments)]
async fn drive<E: Engine>(
    loaded: Files,
    common: Common,
    mut engine: E,
    committed: Committed,
    live_window: Duration,
    mut durable_rx: mpsc::UnboundedReceiver<Result<crate::persist::Written, StoreError>>,
    mut events: mpsc::UnboundedReceiver<E::Event>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let Common { signer, .. } = common;
    // The committee the engine runs now (HotStuff: the latest epoch; Raft: genesis).
    let config = engine.committee();
    let me = signer.public_key();
    let bind = |address: String| async move {
        TcpListener::bind(&address).await.map_err(|source| NodeError::Bind { address, source })
    };
    let p2p = bind(loaded.node.p2p_listen.clone()).await?;
    let api_listener = bind(loaded.node.api_listen.clone()).await?;
    let clock = Clock::new();
    let (transport, mut inbound) = Transport::start(
        TransportConfig::new(config.clone(), signer),
        engine.peers(clock.now_ms()),
        p2p,
    );
    let (control_tx, mut control_rx) = mpsc::channel(CONTROL_QUEUE_MAX);
    let metrics = Arc::new(Metrics::default());
    let (checked_tx, mut checked_rx) = mpsc::channel(64);
    let verifier = Verifier::start(config.network().clone(), metrics.clone(), checked_tx)
        .map_err(|source| NodeError::Thread { what: "claim verifier", source })?;
    let (requests_tx, mut requests_rx) = mpsc::channel(SUBMIT_QUEUE_MAX);
    let claim_timeout = Duration::from_millis(
        loaded.node.claim_timeout_ms.unwrap_or(CLAIM_TIMEOUT_DEFAULT_MS).max(1),
    );
    let consensus = loaded.committee.consensus;
    let shared = Arc::new(Shared {
        committee: std::sync::RwLock::new(config.clone()),
        key: me,
        members: Mutex::new(engine.committee_view(&[])),
        control: control_tx,
        consensus,
        snapshot: Mutex::new(Snapshot::default()),
        metrics,
        live_window,
        store: committed,
        verifier: verifier.clone(),
        requests: requests_tx,
        claim_timeout,
    });
    if let Ok(mut s) = shared.snapshot.lock() {
        s.node_id = config.node_id_of(&me).map_or(u16::MAX, |n| n.0);
        s.epoch = config.epoch().0;
        s.voters = (0..config.total_nodes())
            .filter(|&i| loaded.committee.is_founding_voter(i))
            .map(|i| i as u16)
            .collect();
        s.quorum = match consensus {
            Consensus::Hotstuff => config.quorum_threshold(),
            Consensus::Raft => s.voters.len() / 2 + 1,
        };
    }
    let limits = api::Limits::of(&loaded.node);
    let api_task = tokio::spawn(api::serve(api_listener, shared.clone(), limits));
    info!(
        key = %me,
        consensus = consensus.as_str(),
        p2p = %loaded.node.p2p_listen,
        api = %loaded.node.api_listen,
        "node running"
    );
    let mut io = Io { me, clock, transport, shared, verifier, started: Instant::now() };
    let mut prune = tokio::time::interval(Duration::from_secs(1));
    let connection_changes = io.transport.connection_changes();
    let result = async {
        engine.start(&mut io)?;
        tokio::pin!(shutdown);
        loop {
            let wake = match engine.deadline_ms() {
                Some(at) => io.clock.instant(at),
                None => tokio::time::Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                m = inbound.recv() => {
                    let Some((from, message)) = m else { break };
                    engine.on_message(&mut io, from, message)?;
                }
                r = requests_rx.recv() => {
                    let Some(first) = r else { break };
                    let mut batch = vec![first];
                    while batch.len() < SUBMIT_BATCH_MAX {
                        match requests_rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    engine.on_requests(&mut io, batch)?;
                }
                c = checked_rx.recv() => {
                    // The thread holds the only sender: it ended (a panic), so stop loudly.
                    let Some(checked) = c else { return Err(NodeError::VerifierStopped) };
                    engine.on_checked(&mut io, checked)?;
                }
                d = durable_rx.recv() => {
                    // A write error is final (a full disk, a failed fsync): stop the node.
                    let Some(written) = d else { return Err(NodeError::WriterStopped) };
                    on_written(&mut engine, &mut io, written?)?;
                    // The reports already queued (usually a write's `Durable`, a few µs after
                    // its `Synced`) in this turn: one `after_event` for all of them.
                    while let Ok(written) = durable_rx.try_recv() {
                        on_written(&mut engine, &mut io, written?)?;
                    }
                }
                Some(e) = events.recv() => engine.on_event(&mut io, e)?,
                c = control_rx.recv() => {
                    let Some(c) = c else { break };
                    engine.on_control(&mut io, c)?;
                }
                _ = prune.tick() => {
                    engine.prune(&mut io)?;
                    // EP5: a removed member stops once it lingered.
                    if engine.finished(io.clock.now_ms()) {
                        info!("removed from the committee and lingered: stopping");
                        break;
                    }
                }
                // A member connected or went away (or fell silent): the engine and the API
                // see it now (`after_event`).
                _ = connection_changes.notified() => {}
                _ = tokio::time::sleep_until(wake) => engine.on_deadline(&mut io)?,
                _ = &mut shutdown => {
                    info!("shutting down");
                    break;
                }
            }
            engine.after_event(&mut io)?;
        }
        Ok::<(), NodeError>(())
    }
    .await;
    // The writer reports its error on `durable_rx`, then stops; a write queued in between
    // meets the stopped thread before the loop has read that report. The error it reported is
    // the cause (a failed fsync, a full disk): report that, not the thread's absence.
    let result = match result {
        Err(NodeError::WriterStopped) => {
            let mut cause = None;
            while let Ok(d) = durable_rx.try_recv() {
                if let Err(e) = d {
                    cause = Some(e);
                    break;
                }
            }
            Err(cause.map_or(NodeError::WriterStopped, NodeError::Store))
        }
        r => r,
    };
    api_task.abort();
    // Writes already queued become durable (or fail) before the process ends.
    engine.stop();
    if let Err(e) = &result {
        error!(error = %e, "node stopped");
    }
    result
}
