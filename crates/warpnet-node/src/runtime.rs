//! The node's event loop: the pure core, driven by the transport, the clock, the API and the
//! storage writer.
//!
//! One input = one step of the core, executed as `warpnet_core::Step` says, exactly as the
//! simulator executes it: the step's write is queued for the storage writer thread
//! (`persist.rs`) and the loop goes on; its messages are sent at once (the core holds back
//! what depends on a write until `Input::Persisted`); sync requests are answered from the
//! blocks in flight, the core's tree and the store; the loop wakes the core at its deadline.
//!
//! Committed blocks are applied to the registry when their step runs: their state-machine
//! writes join the same write (one transaction with the commit: state and height never
//! diverge), and the requests waiting for their commands are answered only once that write is
//! durable (nothing acknowledged is lost). Until then, later steps read the registry through
//! the writes still in flight (`InFlight`), so every commit is applied to the state all the
//! earlier ones produced.
//!
//! Client commands come from the API (already checked) and go to the core's `submit`, which
//! shares the accepted ones with every other member (M1).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};
use warpnet_core::mempool::command_digest;
use warpnet_core::{Core, CoreParams, Input, Rejection, StartError, Step, Target, Write};
use warpnet_net::{Transport, TransportConfig};
use warpnet_storage::{Batch, Store, StoreError};
use warpnet_types::{Block, BlockId, Digest, Message, NetworkId, NodeId};

use crate::api;
use crate::app;
use crate::files::{FileError, Loaded};
use crate::handle::{Refused, Shared, Snapshot, Submission};
use crate::metrics::Metrics;
use crate::persist::{Durable, Persister};
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
    // Not `#[from]`: the message already holds the cause, so `main`'s one line (which prints
    // the source chain) would say it twice.
    #[error("storage: {0}")]
    Store(StoreError),
    #[error("consensus could not start: {0}")]
    Start(StartError),
    #[error("no database at {path}, and this is not the node's first start: starting again from genesis could make it sign twice. Restore the data directory (README: moving or mounting a data directory); a brand-new node is created with `node init`")]
    MissingDatabase { path: std::path::PathBuf },
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

/// The core's clock: wall-clock milliseconds at the start, then monotonic (a wall-clock jump
/// never fires or stalls a round timer).
struct Clock {
    start_ms: u64,
    start: Instant,
}

impl Clock {
    fn new() -> Self {
        let start_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Self { start_ms, start: Instant::now() }
    }

    fn now_ms(&self) -> u64 {
        self.start_ms + self.start.elapsed().as_millis() as u64
    }

    fn instant(&self, at_ms: u64) -> tokio::time::Instant {
        let after = Duration::from_millis(at_ms.saturating_sub(self.start_ms));
        tokio::time::Instant::from_std(self.start + after)
    }
}

/// A write queued for the storage writer and not yet durable: what waits for it.
struct InFlight {
    seq: u64,
    /// The committed commands' outcomes, for the requests waiting for them.
    outcomes: Vec<(Digest, warpnet_state::Outcome)>,
    /// The registry keys it writes (see `Node::overlay`).
    keys: Vec<Vec<u8>>,
    /// The blocks it stores (see `Node::blocks_in_flight`).
    blocks: Vec<BlockId>,
    commits: u64,
}

struct Node {
    me: NodeId,
    network: NetworkId,
    clock: Clock,
    core: Core,
    store: Arc<Store>,
    persister: Persister,
    transport: Transport,
    shared: Arc<Shared>,
    verifier: Verifier,
    /// When to feed the core `Input::Tick` (the last step's deadline).
    deadline_ms: Option<u64>,
    sync_blocks_max: usize,
    high_qc_round: u64,
    /// Requests waiting for their command to commit, by command digest.
    waiters: HashMap<Digest, Vec<Waiter>>,
    /// R1 verdicts of blocks not yet committed, computed by the verifier thread.
    verdicts: app::Verdicts,
    /// Writes queued and not yet durable, oldest first.
    in_flight: VecDeque<InFlight>,
    /// Registry writes not yet durable (key → write seq, value): applying a later commit reads
    /// them before the store.
    overlay: app::Overlay,
    /// Commands whose outcome is in a write in flight, by digest → that write's seq.
    outcomes_in_flight: HashMap<Digest, u64>,
    /// Blocks in writes not yet durable, so sync can serve them meanwhile.
    blocks_in_flight: HashMap<BlockId, Block>,
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
    fn handle(&mut self, input: Input) -> Result<(), NodeError> {
        let step = self.core.handle(self.clock.now_ms(), input);
        self.execute(step)
    }

    /// Executes a step as `warpnet_core::Step` says (the simulator does the same).
    fn execute(&mut self, step: Step) -> Result<(), NodeError> {
        let Step { write, messages, serve_sync, serve_epochs, evidence, rejected, deadline_ms } =
            step;
        if let Some(w) = write {
            self.persist(w)?;
        }
        for out in messages {
            match out.to {
                Target::One(to) => self.send(&to, &out.message),
                Target::All => {
                    self.shared.metrics.message_out(out.message.kind());
                    self.transport.broadcast(&out.message);
                }
            }
        }
        for (to, request) in serve_sync {
            let response = self.serve_sync(&request)?;
            self.send(&to, &Message::SyncResponse(response));
        }
        for (to, from) in serve_epochs {
            // EP4: the ends on disk from `from` on, and the core's latest commit.
            let ends = self.store.epoch_ends(from, warpnet_types::epoch::EPOCH_PROOF_ENDS_MAX)?;
            let latest = self.core.latest_commit().cloned();
            let epoch = self.core.config().epoch();
            let proof = warpnet_types::EpochProofMsg { epoch, ends, latest };
            self.send(&to, &Message::EpochProof(proof));
        }
        for ev in evidence {
            self.shared.metrics.evidence.inc();
            warn!(signer = %ev.signer, round = %ev.round, "equivocation proven");
        }
        for (from, reason) in rejected {
            self.shared.metrics.rejected(reason.kind());
            debug!(from = ?from, %reason, "input refused");
        }
        self.deadline_ms = deadline_ms;
        Ok(())
    }

    /// To the peer holding `key`. The transport names the epoch's members by index.
    fn send(&self, key: &warpnet_types::PublicKey, message: &Message) {
        match self.core.config().node_id_of(key) {
            Some(to) => {
                self.shared.metrics.message_out(message.kind());
                self.transport.send(to, message);
            }
            None => debug!(kind = message.kind(), "no connection to a peer outside the committee"),
        }
    }

    /// Queues a step's write. Its commits are applied to the registry now, on the state the
    /// earlier commits left (store + writes in flight); their writes join the same transaction.
    fn persist(&mut self, w: Write) -> Result<(), NodeError> {
        let Write { seq, blocks, commits, safety, epoch } = w;
        if let Some(change) = &epoch {
            // EP3: durable with the commits below; the transport still serves the committee
            // it started with until the node restarts (see the known limits).
            info!(
                epoch = %change.next.epoch(),
                members = change.next.total_nodes(),
                "the committee changed"
            );
        }
        for b in &blocks {
            // R1's verdicts, off the loop, before the block can commit.
            if !b.payload().is_empty() && self.verifier.block(b.id(), b.payload().clone()).is_err()
            {
                debug!("verifier busy; this block's verdicts are left to its commit");
            }
        }
        let mut applied = app::Applied::default();
        if !commits.is_empty() {
            let snapshot = self.store.app_snapshot()?;
            applied =
                app::apply(&self.network, &snapshot, &self.overlay, &commits, &mut self.verdicts)?;
            let m = &self.shared.metrics;
            m.verdicts("ahead", applied.ahead as u64);
            m.verdicts("commit", applied.at_commit as u64);
        }
        let keys: Vec<Vec<u8>> = applied.writes.iter().map(|(k, _)| k.clone()).collect();
        for (k, v) in &applied.writes {
            self.overlay.insert(k.clone(), (seq, v.clone()));
        }
        for (digest, _) in &applied.outcomes {
            self.outcomes_in_flight.insert(*digest, seq);
        }
        let stored = blocks.iter().chain(commits.iter().map(|c| &c.block));
        let ids = stored.map(|b| (b.id(), b.clone())).collect::<Vec<_>>();
        let block_ids = ids.iter().map(|(id, _)| *id).collect();
        self.blocks_in_flight.extend(ids);
        self.in_flight.push_back(InFlight {
            seq,
            outcomes: applied.outcomes,
            keys,
            blocks: block_ids,
            commits: commits.len() as u64,
        });
        let epochs = epoch.into_iter().collect();
        let batch = Batch { blocks, safety, commits, app: applied.writes, epochs };
        self.persister.write(seq, batch).map_err(|_| NodeError::WriterStopped)
    }

    /// Writes up to `durable.seq` are on disk: answer what waited for them, forget them from
    /// the in-flight views, and tell the core (which releases what it sealed behind them).
    fn on_durable(&mut self, durable: Durable) -> Result<(), NodeError> {
        let m = self.shared.metrics.clone();
        m.fsync(durable.elapsed.as_secs_f64());
        m.writes.inc_by(durable.merged as u64);
        while self.in_flight.front().is_some_and(|w| w.seq <= durable.seq) {
            let Some(w) = self.in_flight.pop_front() else { break };
            // Counted once durable: /metrics never shows a commit the disk does not hold.
            m.commits.inc_by(w.commits);
            for key in w.keys {
                if self.overlay.get(&key).is_some_and(|(s, _)| *s <= w.seq) {
                    self.overlay.remove(&key);
                }
            }
            for id in w.blocks {
                self.blocks_in_flight.remove(&id);
            }
            for (digest, outcome) in w.outcomes {
                if self.outcomes_in_flight.get(&digest).is_some_and(|s| *s <= w.seq) {
                    self.outcomes_in_flight.remove(&digest);
                }
                m.applied(app::outcome_name(&outcome));
                for waiter in self.waiters.remove(&digest).into_iter().flatten() {
                    let _ = waiter.send(Ok(outcome.clone()));
                }
            }
        }
        self.handle(Input::Persisted { seq: durable.seq })
    }

    /// Y2: a peer's sync request, from the blocks in flight, the core's tree and the store. A
    /// read error stops the node; it is never taken for a missing block.
    fn serve_sync(
        &self,
        request: &warpnet_types::SyncRequest,
    ) -> Result<warpnet_types::SyncResponse, NodeError> {
        let mut failure = None;
        let response = warpnet_core::sync::respond(request, self.sync_blocks_max, |id| {
            if let Some(b) = self.blocks_in_flight.get(id).or_else(|| self.core.block(id)) {
                return Some(b.clone());
            }
            self.store.block(id).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                None
            })
        });
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(response),
        }
    }

    fn publish(&mut self) {
        let status = self.core.status();
        let m = &self.shared.metrics;
        m.round.set(status.round.0);
        m.committed_height.set(status.committed_height.0);
        m.timeouts(status.round_timeouts);
        let stats = self.transport.stats();
        m.transport(stats.rejected_connections, stats.malformed_frames, stats.dropped_sends);
        m.connected_peers.set(stats.connected.len() as u64);
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

    /// Takes client submissions into the core, which shares the new ones with every member
    /// (M1), and keeps each request waiting for its command's commit.
    fn submit(&mut self, submissions: Vec<Submission>) -> Result<(), NodeError> {
        let commands = submissions.iter().map(|s| s.command.clone()).collect();
        let (verdicts, step) = self.core.submit(self.clock.now_ms(), commands);
        for (Submission { command, done }, verdict) in submissions.into_iter().zip(verdicts) {
            let digest = command_digest(&command);
            match verdict {
                // Fresh, or already pending (a retry, or shared by a member): wait for the
                // commit.
                Ok(()) | Err(Rejection::DuplicateCommand) => {
                    self.waiters.entry(digest).or_default().push(done)
                }
                // M2: committed since the API looked. Its outcome is in committed state once
                // the write holding it is durable; until then, wait for that write.
                Err(Rejection::AlreadyCommitted) => {
                    if self.outcomes_in_flight.contains_key(&digest) {
                        self.waiters.entry(digest).or_default().push(done);
                    } else {
                        let _ = done.send(Err(Refused::AlreadyCommitted));
                    }
                }
                Err(Rejection::MempoolFull { .. }) => {
                    let _ = done.send(Err(Refused::Overloaded));
                }
                Err(reason) => {
                    let _ = done.send(Err(Refused::Invalid(reason.to_string())));
                }
            }
        }
        self.execute(step)
    }

    /// A member's message: shared commands go to the verifier first, all else to the core.
    fn on_message(&mut self, from: NodeId, message: Message) -> Result<(), NodeError> {
        self.shared.metrics.message_in(message.kind());
        match message {
            // M1: every shared command's signature is checked before the mempool takes it,
            // whatever the epoch the frame names (commands are valid in any epoch).
            Message::Commands(c) => {
                if self.verifier.shared(from, c.commands).is_err() {
                    self.shared.metrics.rejected("shared_commands_dropped");
                }
                Ok(())
            }
            message => match self.key_of(from) {
                Some(from) => self.handle(Input::Message { from, message }),
                None => Ok(()),
            },
        }
    }

    /// Shared commands whose signatures checked out enter the mempool (M1); a block's verdicts
    /// wait for its commit.
    fn on_checked(&mut self, checked: Checked) -> Result<(), NodeError> {
        match checked {
            Checked::Shared(from, commands) => {
                let epoch = self.shared.config.epoch();
                let message = Message::Commands(warpnet_types::SharedCommands { epoch, commands });
                match self.key_of(from) {
                    Some(from) => self.handle(Input::Message { from, message }),
                    None => Ok(()),
                }
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
            if let Some(peer) = self.key_of(peer) {
                self.handle(Input::Reachability { peer, reachable: now })?;
            }
        }
        Ok(())
    }

    /// The key of the epoch's member the transport names `id`.
    fn key_of(&self, id: NodeId) -> Option<warpnet_types::PublicKey> {
        self.core.config().public_key(id).ok().copied()
    }

    /// Forgets requests that stopped waiting (timed out or hung up).
    fn prune_waiters(&mut self) {
        self.waiters.retain(|_, ws| {
            ws.retain(|w| !w.is_closed());
            !ws.is_empty()
        });
    }

    fn next_wake(&self) -> tokio::time::Instant {
        match self.deadline_ms {
            Some(at) => self.clock.instant(at),
            None => tokio::time::Instant::now() + Duration::from_secs(3600),
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
        .map_err(|source| NodeError::Thread { what: "claim verifier", source })?;
    let (durable_tx, mut durable_rx) = mpsc::unbounded_channel();
    let persister = Persister::start(store.clone(), durable_tx)
        .map_err(|source| NodeError::Thread { what: "storage writer", source })?;
    let (submit_tx, mut submit_rx) = mpsc::channel(SUBMIT_QUEUE_MAX);
    let claim_timeout = Duration::from_millis(
        loaded.node.claim_timeout_ms.unwrap_or(CLAIM_TIMEOUT_DEFAULT_MS).max(1),
    );
    let shared = Arc::new(Shared {
        config: config.clone(),
        snapshot: Mutex::new(Snapshot::default()),
        metrics,
        live_window,
        store: store.clone(),
        verifier: verifier.clone(),
        submit: submit_tx,
        claim_timeout,
    });
    if let Ok(mut s) = shared.snapshot.lock() {
        s.node_id = me.0;
        s.epoch = config.epoch().0;
    }
    let limits = api::Limits::of(&loaded.node);
    let api_task = tokio::spawn(api::serve(api_listener, shared.clone(), limits));
    info!(node = %me, p2p = %loaded.node.p2p_listen, api = %loaded.node.api_listen, "node running");

    let high_qc_round = core.status().high_qc_round.0;
    let mut node = Node {
        me,
        network: config.network().clone(),
        clock: Clock::new(),
        core,
        store,
        persister,
        transport,
        shared,
        verifier,
        deadline_ms: None,
        sync_blocks_max,
        high_qc_round,
        waiters: HashMap::new(),
        verdicts: HashMap::new(),
        in_flight: VecDeque::new(),
        overlay: app::Overlay::new(),
        outcomes_in_flight: HashMap::new(),
        blocks_in_flight: HashMap::new(),
        reachable: vec![true; config.total_nodes()],
        connected: Vec::new(),
        started: Instant::now(),
    };
    let mut prune = tokio::time::interval(Duration::from_secs(1));
    let connection_changes = node.transport.connection_changes();
    let start = node.core.start(node.clock.now_ms());
    let result = async {
        node.execute(start)?;
        node.publish();
        tokio::pin!(shutdown);
        loop {
            let wake = node.next_wake();
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
                d = durable_rx.recv() => {
                    // A write error is final (a full disk, a failed fsync): stop the node.
                    let Some(durable) = d else { return Err(NodeError::WriterStopped) };
                    node.on_durable(durable?)?;
                }
                _ = prune.tick() => node.prune_waiters(),
                // A member connected or went away (or fell silent): PM7 and the API see it now.
                _ = connection_changes.notified() => node.publish(),
                _ = tokio::time::sleep_until(wake) => node.handle(Input::Tick)?,
                _ = &mut shutdown => {
                    info!("shutting down");
                    break;
                }
            }
            node.refresh_reachability()?;
            node.publish();
        }
        Ok::<(), NodeError>(())
    }
    .await;
    api_task.abort();
    // Writes already queued become durable (or fail) before the process ends.
    node.persister.stop();
    if let Err(e) = &result {
        error!(error = %e, "node stopped");
    }
    result
}
