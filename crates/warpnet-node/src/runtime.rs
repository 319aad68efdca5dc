//! The node's event loop: the pure core, driven by the transport, timers and the store.
//!
//! One consensus step = one input to the core. Its actions are executed in order: everything
//! it asks to persist goes into one `Batch`, written durably (one fsync); then its messages are
//! queued on the transport (never blocking); then, if it asked for safety data to be persisted,
//! `SafetyPersisted` is fed back and the released votes and timeouts are executed the same way.
//!
//! Committed blocks are applied to the registry while the batch is built: their state-machine
//! writes go into the same transaction as the commit, and the requests waiting for their
//! commands are answered only after that transaction is durable (nothing acknowledged is lost).
//!
//! Client commands come from the API (already checked), enter the core's mempool, and are
//! shared with every other member in one `Commands` frame per loop turn (M1), so they reach a
//! proposal whoever leads next.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};
use warpnet_core::mempool::command_digest;
use warpnet_core::{Action, Core, CoreParams, Input, Rejection, StartError, Timer};
use warpnet_net::{Transport, TransportConfig};
use warpnet_storage::{Batch, Store, StoreError};
use warpnet_types::message::SHARED_COMMANDS_MAX;
use warpnet_types::{Digest, Message, NetworkId, NodeId, SharedCommands};

use crate::api::{self, Refused, Shared, Snapshot, Submission};
use crate::app;
use crate::files::{FileError, Loaded};
use crate::metrics::Metrics;
use crate::verifier::{Checked, Verifier};

/// Submissions waiting for the consensus loop; beyond this the API answers `overloaded`.
const SUBMIT_QUEUE_MAX: usize = 16_384;
/// Most submissions taken in one loop turn (and shared in one frame).
const SUBMIT_BATCH_MAX: usize = 1_024;
/// Default bound on how long a claim waits for its commit.
pub const CLAIM_TIMEOUT_DEFAULT_MS: u64 = 5_000;

type Waiter = oneshot::Sender<Result<warpnet_state::Outcome, Refused>>;

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Files(#[from] FileError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("consensus could not start: {0}")]
    Start(#[from] StartError),
    #[error("no database at {path}, and this is not the node's first start: starting again from genesis could make it sign twice. Restore the data directory (README: moving or mounting a data directory); a brand-new node is created with `node init`")]
    MissingDatabase { path: std::path::PathBuf },
    #[error("cannot listen on {address}")]
    Bind { address: String, source: std::io::Error },
    #[error("cannot start the claim verifier thread: {0}")]
    Verifier(std::io::Error),
    #[error("the claim verifier thread stopped unexpectedly")]
    VerifierStopped,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn timer_key(t: &Timer) -> u8 {
    match t {
        Timer::Round(_) => 0,
        Timer::Propose(_) => 1,
    }
}

struct Node {
    me: NodeId,
    network: NetworkId,
    core: Core,
    store: Arc<Store>,
    transport: Transport,
    shared: Arc<Shared>,
    verifier: Verifier,
    timers: HashMap<u8, (tokio::time::Instant, Timer)>,
    sync_blocks_max: usize,
    high_qc_round: u64,
    /// Requests waiting for their command to commit, by command digest.
    waiters: HashMap<Digest, Vec<Waiter>>,
    /// R1 verdicts of blocks not yet committed, computed by the verifier thread.
    verdicts: app::Verdicts,
    /// What the core was last told about each member's reachability (PM7), by node index.
    reachable: Vec<bool>,
    /// The transport's connected members, as of the last step (`publish`).
    connected: Vec<NodeId>,
    started: Instant,
}

/// After a start, members not yet connected are not reported unreachable for this long (they
/// are usually still being dialed).
const REACHABILITY_GRACE: Duration = Duration::from_secs(2);

/// Most blocks whose verdicts are kept waiting for their commit (forks never commit; past this
/// the oldest are forgotten and computed at commit if ever needed).
const VERDICTS_MAX: usize = 256;

impl Node {
    /// Executes a step's actions, and the steps they lead to (`SafetyPersisted`).
    fn execute(&mut self, mut actions: Vec<Action>) -> Result<(), NodeError> {
        while !actions.is_empty() {
            let mut batch = Batch::default();
            let mut version = None;
            let mut outgoing: Vec<(Option<NodeId>, Message)> = Vec::new();
            for action in actions {
                match action {
                    Action::Send { to, message } => outgoing.push((Some(to), message)),
                    Action::Broadcast { message } => outgoing.push((None, message)),
                    Action::PersistBlock(b) => {
                        // R1's verdicts, off the loop, before the block can commit.
                        if !b.payload().is_empty()
                            && self.verifier.block(b.id(), b.payload().clone()).is_err()
                        {
                            debug!("verifier busy; this block's verdicts are left to its commit");
                        }
                        batch.blocks.push(b);
                    }
                    Action::PersistSafety { version: v, data } => {
                        batch.safety = Some(data);
                        version = Some(v);
                    }
                    Action::Commit(c) => batch.commits.push(c),
                    Action::SetTimer { timer, after_ms } => {
                        let at = tokio::time::Instant::now() + Duration::from_millis(after_ms);
                        self.timers.insert(timer_key(&timer), (at, timer));
                    }
                    Action::ServeSync { to, request } => {
                        let response = self.store.serve_sync(&request, self.sync_blocks_max)?;
                        outgoing.push((Some(to), Message::SyncResponse(response)));
                    }
                    Action::Evidence(ev) => {
                        self.shared.metrics.evidence.fetch_add(1, Ordering::Relaxed);
                        warn!(signer = %ev.signer, round = %ev.round, "equivocation proven");
                    }
                    Action::Rejected { from, reason } => {
                        self.shared.metrics.rejected(reason.kind());
                        debug!(from = ?from, %reason, "input refused");
                    }
                }
            }
            // The registry's writes join the commits' transaction: state and height never
            // diverge, and a crash loses both or neither.
            let mut applied = app::Applied::default();
            if !batch.commits.is_empty() {
                let snapshot = self.store.app_snapshot()?;
                applied = app::apply(&self.network, &snapshot, &batch.commits, &mut self.verdicts)?;
                batch.app = std::mem::take(&mut applied.writes);
                let m = &self.shared.metrics;
                m.verdicts("ahead", applied.ahead as u64);
                m.verdicts("commit", applied.at_commit as u64);
            }
            if !batch.is_empty() {
                let started = Instant::now();
                self.store.write(&batch)?;
                let m = &self.shared.metrics;
                m.fsync(started.elapsed().as_secs_f64());
                // Counted once durable: /metrics never shows a height the disk does not hold.
                m.commits.fetch_add(batch.commits.len() as u64, Ordering::Relaxed);
            }
            // Durable: now the waiting requests may hear their outcome.
            for (digest, outcome) in applied.outcomes {
                self.shared.metrics.applied(app::outcome_name(&outcome));
                for waiter in self.waiters.remove(&digest).into_iter().flatten() {
                    let _ = waiter.send(Ok(outcome.clone()));
                }
            }
            for (to, message) in &outgoing {
                self.shared.metrics.message_out(message.kind());
                match to {
                    Some(to) => {
                        self.transport.send(*to, message);
                    }
                    None => self.transport.broadcast(message),
                }
            }
            actions = match version {
                Some(v) => self.core.handle(now_ms(), Input::SafetyPersisted { version: v }),
                None => Vec::new(),
            };
        }
        self.publish();
        Ok(())
    }

    fn publish(&mut self) {
        let status = self.core.status();
        let m = &self.shared.metrics;
        m.round.store(status.round.0, Ordering::Relaxed);
        m.committed_height.store(status.committed_height.0, Ordering::Relaxed);
        let stats = self.transport.stats();
        self.shared.rejected_connections.store(stats.rejected_connections, Ordering::Relaxed);
        self.shared.malformed_frames.store(stats.malformed_frames, Ordering::Relaxed);
        self.shared.dropped_sends.store(stats.dropped_sends, Ordering::Relaxed);
        let fresh = status.high_qc_round.0 > self.high_qc_round;
        self.high_qc_round = self.high_qc_round.max(status.high_qc_round.0);
        if let Ok(mut s) = self.shared.snapshot.lock() {
            s.node_id = self.me.0;
            s.epoch = self.shared.config.epoch().0;
            s.round = status.round.0;
            s.committed_height = status.committed_height.0;
            s.leader = status.leader.0;
            s.connected = stats.connected.iter().map(|n| n.0).collect();
            if fresh {
                s.last_certificate = Some(Instant::now());
            }
        }
        self.connected = stats.connected;
    }

    /// Takes client submissions into the mempool and shares the new ones with every member.
    fn submit(&mut self, submissions: Vec<Submission>) -> Result<(), NodeError> {
        let mut fresh = Vec::new();
        for Submission { command, done } in submissions {
            let digest = command_digest(&command);
            let actions = self.core.handle(now_ms(), Input::Payload(command.clone()));
            let refused = actions.iter().find_map(|a| match a {
                Action::Rejected { from: None, reason } => Some(reason.clone()),
                _ => None,
            });
            match refused {
                Some(Rejection::MempoolFull { .. }) => {
                    let _ = done.send(Err(Refused::Overloaded));
                }
                // M2: committed since the API looked; its outcome is in committed state.
                Some(Rejection::AlreadyCommitted) => {
                    let _ = done.send(Err(Refused::AlreadyCommitted));
                }
                Some(Rejection::CommandTooLarge { bytes, max }) => {
                    let _ = done.send(Err(Refused::Invalid(format!(
                        "command of {bytes} bytes exceeds the limit of {max}"
                    ))));
                }
                // Already pending (a retry, or shared by a member): wait for the same commit.
                Some(_) => self.waiters.entry(digest).or_default().push(done),
                None => {
                    self.waiters.entry(digest).or_default().push(done);
                    fresh.push(command);
                }
            }
            self.execute(actions)?;
        }
        // M1: share the new commands so they reach a proposal whoever leads next.
        for chunk in fresh.chunks(SHARED_COMMANDS_MAX) {
            let message = Message::Commands(SharedCommands {
                epoch: self.shared.config.epoch(),
                commands: chunk.to_vec(),
            });
            self.shared.metrics.message_out(message.kind());
            self.transport.broadcast(&message);
        }
        Ok(())
    }

    /// A member's message: shared commands go to the verifier first, all else to the core.
    fn on_message(&mut self, from: NodeId, message: Message) -> Result<(), NodeError> {
        self.shared.metrics.message_in(message.kind());
        match message {
            Message::Commands(c) if c.epoch == self.shared.config.epoch() => {
                if self.verifier.shared(from, c.commands).is_err() {
                    self.shared.metrics.rejected("shared_commands_dropped");
                }
                Ok(())
            }
            message => {
                let actions = self.core.handle(now_ms(), Input::Message { from, message });
                self.execute(actions)
            }
        }
    }

    /// Shared commands whose signatures checked out enter the mempool (M1); a block's verdicts
    /// wait for its commit.
    fn on_checked(&mut self, checked: Checked) -> Result<(), NodeError> {
        match checked {
            Checked::Shared(from, commands) => {
                let epoch = self.shared.config.epoch();
                let message = Message::Commands(SharedCommands { epoch, commands });
                let actions = self.core.handle(now_ms(), Input::Message { from, message });
                self.execute(actions)
            }
            Checked::Block(id, verdicts) => {
                if self.verdicts.len() >= VERDICTS_MAX {
                    self.verdicts.clear();
                }
                self.verdicts.insert(id, verdicts);
                Ok(())
            }
        }
    }

    /// PM7: tells the core which members the transport lost or regained. A member not yet
    /// connected after a start counts as unreachable only after [`REACHABILITY_GRACE`].
    fn refresh_reachability(&mut self) -> Result<(), NodeError> {
        for i in 0..self.reachable.len() {
            let peer = NodeId(i as u16);
            if peer == self.me {
                continue;
            }
            let now = self.connected.contains(&peer);
            if now == self.reachable[i] || (!now && self.started.elapsed() < REACHABILITY_GRACE) {
                continue;
            }
            self.reachable[i] = now;
            if now {
                info!(peer = %peer, "member reachable again");
            } else {
                warn!(peer = %peer, "member unreachable");
            }
            let actions = self.core.handle(now_ms(), Input::Reachability { peer, reachable: now });
            self.execute(actions)?;
        }
        Ok(())
    }

    /// Forgets requests that stopped waiting (timed out or hung up).
    fn prune_waiters(&mut self) {
        self.waiters.retain(|_, ws| {
            ws.retain(|w| !w.is_closed());
            !ws.is_empty()
        });
    }

    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        self.timers.values().map(|(at, _)| *at).min()
    }

    /// Fires due timers one at a time, looking again after each: firing one may replace the
    /// other with a timer that is not due yet, which must not fire early.
    fn fire_due_timers(&mut self) -> Result<(), NodeError> {
        loop {
            let now = tokio::time::Instant::now();
            let Some(key) = self.timers.iter().find(|(_, (at, _))| *at <= now).map(|(k, _)| *k)
            else {
                return Ok(());
            };
            if let Some((_, timer)) = self.timers.remove(&key) {
                if matches!(timer, Timer::Round(_)) {
                    self.shared.metrics.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                let actions = self.core.handle(now_ms(), Input::Timer(timer));
                self.execute(actions)?;
            }
        }
    }
}

/// Name of the marker `node init` leaves in a new node's directory (beside `node.toml`, not in
/// the data directory, so an empty volume mounted there is still a first start): the one case
/// in which `node run` may create the database (at genesis).
pub const FIRST_START_MARKER: &str = "FIRST_START";

/// Opens the node's database; creates it only on a first start (the marker in the node's
/// directory, or inside the data directory where older versions of `node init` left it). A
/// missing database otherwise is refused: starting again from genesis could make the node sign
/// twice. The marker is removed (durably) before the node can sign anything.
fn open_store(
    node_dir: &std::path::Path,
    data_dir: &std::path::Path,
    config: &warpnet_types::ConsensusConfig,
) -> Result<Store, NodeError> {
    let path = data_dir.join("node.redb");
    if path.exists() {
        return Ok(Store::open(&path, config)?);
    }
    let markers = [node_dir, data_dir].map(|d| d.join(FIRST_START_MARKER));
    if !markers.iter().any(|m| m.exists()) {
        return Err(NodeError::MissingDatabase { path });
    }
    let store = Store::create(&path, config)?;
    for marker in markers.iter().filter(|m| m.exists()) {
        std::fs::remove_file(marker)
            .map_err(|source| FileError::Io { path: marker.clone(), source })?;
        if let Some(dir) = marker.parent() {
            warpnet_storage::sync_dir(dir)?;
        }
    }
    info!(path = %path.display(), "created the database (first start)");
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

/// Runs a node until `shutdown` completes or a fatal error (storage) stops it.
pub async fn run(
    loaded: Loaded,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let config = Arc::new(loaded.config.clone());
    let signer: Arc<dyn warpnet_types::Signer> = Arc::new(loaded.signer);
    let me = config.node_id_of(&signer.public_key()).ok_or_else(|| {
        NodeError::Files(FileError::Invalid {
            path: loaded.dir.clone(),
            detail: "key not in committee".into(),
        })
    })?;
    let data_dir = loaded.dir.join(&loaded.node.data_dir);
    std::fs::create_dir_all(&data_dir)
        .map_err(|source| FileError::Io { path: data_dir.clone(), source })?;
    let store = Arc::new(open_store(&loaded.dir, &data_dir, &config)?);
    let recovery = store.recovery(&config)?;
    let mut params = CoreParams::default();
    if let Some(ms) = loaded.node.round_timeout_base_ms {
        params.round_timeout_base_ms = ms;
        params.round_timeout_max_ms = params.round_timeout_max_ms.max(ms);
    }
    let sync_blocks_max = usize::from(params.sync_blocks_max);
    let live_window = Duration::from_millis(params.round_timeout_base_ms * 3);
    let core = Core::new(config.clone(), me, signer.clone(), params, recovery)?;

    let bind = |address: String| async move {
        TcpListener::bind(&address).await.map_err(|source| NodeError::Bind { address, source })
    };
    let p2p = bind(loaded.node.p2p_listen.clone()).await?;
    let api_listener = bind(loaded.node.api_listen.clone()).await?;
    let (transport, mut inbound) =
        Transport::start(TransportConfig::new(config.clone(), me, signer), p2p);
    let metrics = Arc::new(Metrics::default());
    let (checked_tx, mut checked_rx) = mpsc::channel(64);
    let verifier = Verifier::start(config.network().clone(), metrics.clone(), checked_tx)
        .map_err(NodeError::Verifier)?;
    let (submit_tx, mut submit_rx) = mpsc::channel(SUBMIT_QUEUE_MAX);
    let claim_timeout = Duration::from_millis(
        loaded.node.claim_timeout_ms.unwrap_or(CLAIM_TIMEOUT_DEFAULT_MS).max(1),
    );
    let shared = Arc::new(Shared {
        config: config.clone(),
        snapshot: Mutex::new(Snapshot::default()),
        metrics,
        rejected_connections: AtomicU64::default(),
        malformed_frames: AtomicU64::default(),
        dropped_sends: AtomicU64::default(),
        live_window,
        store: store.clone(),
        verifier: verifier.clone(),
        submit: submit_tx,
        claim_timeout,
        barriers: Mutex::new(api::Barriers::default()),
    });
    if let Ok(mut s) = shared.snapshot.lock() {
        s.node_id = me.0;
        s.epoch = config.epoch().0;
    }
    let api_task = tokio::spawn(api::serve(api_listener, shared.clone()));
    info!(node = %me, p2p = %loaded.node.p2p_listen, api = %loaded.node.api_listen, "node running");

    let high_qc_round = core.status().high_qc_round.0;
    let mut node = Node {
        me,
        network: config.network().clone(),
        core,
        store,
        transport,
        shared,
        verifier,
        timers: HashMap::new(),
        sync_blocks_max,
        high_qc_round,
        waiters: HashMap::new(),
        verdicts: HashMap::new(),
        reachable: vec![true; config.total_nodes()],
        connected: Vec::new(),
        started: Instant::now(),
    };
    let mut prune = tokio::time::interval(Duration::from_secs(1));
    let connection_changes = node.transport.connection_changes();
    let start = node.core.start(now_ms());
    let result = async {
        node.execute(start)?;
        tokio::pin!(shutdown);
        loop {
            let deadline = node.next_deadline();
            tokio::select! {
                m = inbound.recv() => {
                    let Some((from, message)) = m else { break };
                    node.on_message(from, message)?;
                }
                s = submit_rx.recv() => {
                    let Some(first) = s else { break };
                    let mut batch = vec![first];
                    while batch.len() < SUBMIT_BATCH_MAX {
                        match submit_rx.try_recv() {
                            Ok(s) => batch.push(s),
                            Err(_) => break,
                        }
                    }
                    node.submit(batch)?;
                }
                c = checked_rx.recv() => {
                    // The thread holds the only sender: it ended (a panic), so stop loudly.
                    let Some(checked) = c else { return Err(NodeError::VerifierStopped) };
                    node.on_checked(checked)?;
                }
                _ = prune.tick() => node.prune_waiters(),
                // A member connected or went away (or fell silent): PM7 and the API see it now.
                _ = connection_changes.notified() => node.publish(),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600))) => {
                    node.fire_due_timers()?;
                }
                _ = &mut shutdown => {
                    info!("shutting down");
                    break;
                }
            }
            node.refresh_reachability()?;
        }
        Ok::<(), NodeError>(())
    }
    .await;
    api_task.abort();
    if let Err(e) = &result {
        error!(error = %e, "node stopped");
    }
    result
}
