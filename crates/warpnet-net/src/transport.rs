//! The transport: a task per member (`peer.rs`), the listener, bounded queues, counters.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use warpnet_types::message::MESSAGE_BYTES_MAX;
use warpnet_types::{ConsensusConfig, Message, NodeId, Signer};

use crate::handshake::{handshake, Identity, Role};
use crate::wire::{FrameReader, FrameWriter};

/// How a transport runs.
#[derive(Clone)]
pub struct TransportConfig {
    pub config: Arc<ConsensusConfig>,
    pub me: NodeId,
    pub signer: Arc<dyn Signer>,
    /// Frames queued per peer; when full the newest is dropped (and counted).
    pub queue_len: usize,
    /// Messages queued for the consensus loop; when full, readers wait (backpressure).
    pub inbound_len: usize,
    pub handshake_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// An idle connection carries a heartbeat (an empty frame) this often.
    pub heartbeat_interval: Duration,
    /// A connection on which nothing arrives for this long (no frame, no heartbeat) is
    /// declared dead: closed, logged, and the member no longer counts as connected.
    pub silence_max: Duration,
    /// A member that must dial us but has not within this long is asked to (a "wake": we
    /// dial it, it sees our fresh incarnation, resets its backoff and dials at once); then
    /// again with exponential backoff up to `wake_max`.
    pub wake_min: Duration,
    pub wake_max: Duration,
}

impl TransportConfig {
    pub fn new(config: Arc<ConsensusConfig>, me: NodeId, signer: Arc<dyn Signer>) -> Self {
        Self {
            config,
            me,
            signer,
            queue_len: 1_024,
            inbound_len: 1_024,
            handshake_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            heartbeat_interval: HEARTBEAT_INTERVAL,
            silence_max: SILENCE_MAX,
            wake_min: Duration::from_millis(100),
            wake_max: Duration::from_secs(1),
        }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) rejected_connections: AtomicU64,
    pub(crate) malformed_frames: AtomicU64,
    pub(crate) dropped_sends: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
}

/// Transport counters and who is connected now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rejected_connections: u64,
    pub malformed_frames: u64,
    pub dropped_sends: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub connected: Vec<NodeId>,
}

pub(crate) struct Shared {
    pub(crate) cfg: TransportConfig,
    pub(crate) counters: Counters,
    pub(crate) connected: Mutex<HashSet<NodeId>>,
    /// Signalled on every connection and disconnection (the runtime re-reads `connected`).
    pub(crate) changed: Arc<Notify>,
    /// Per member we dial: signalled when that member asks to be dialed (a wake).
    pub(crate) wakes: Vec<Notify>,
    pub(crate) inbound: mpsc::Sender<(NodeId, Message)>,
}

impl Shared {
    pub(crate) fn set_connected(&self, j: NodeId, up: bool) {
        if let Ok(mut set) = self.connected.lock() {
            if up {
                set.insert(j);
            } else {
                set.remove(&j);
            }
        }
        self.changed.notify_one();
    }
}

pub(crate) type Connection = (Identity, FrameReader, FrameWriter);

/// Handshakes in progress at once; further connections are refused at once, so a flood of idle
/// connections costs a bounded amount of memory.
const HANDSHAKES_MAX: usize = 64;
/// A write that takes longer closes the connection (a dead peer whose buffers are full).
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that lived this long resets the dialer's backoff.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Default heartbeat period on an idle connection.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(200);
/// Default silence after which a connection is declared dead (five missed heartbeats).
pub const SILENCE_MAX: Duration = Duration::from_secs(1);
/// A wake from a member we are connected to is honoured (the connection dropped and redialed)
/// only once the connection is this old: a younger one is most likely the answer to it.
pub(crate) const WAKE_IGNORED_UNDER: Duration = Duration::from_secs(1);

/// A task aborted when its handle is dropped.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The running transport. Dropping it stops every task and closes every connection.
pub struct Transport {
    shared: Arc<Shared>,
    outboxes: Vec<Option<mpsc::Sender<Arc<[u8]>>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Transport {
    /// Accepts members on `listener` and connects to the others; incoming messages arrive on
    /// the returned receiver. Must be called within a tokio runtime.
    pub fn start(
        cfg: TransportConfig,
        listener: TcpListener,
    ) -> (Self, mpsc::Receiver<(NodeId, Message)>) {
        let (inbound, rx) = mpsc::channel(cfg.inbound_len);
        let n = cfg.config.total_nodes();
        let me = cfg.me;
        let shared = Arc::new(Shared {
            cfg,
            counters: Counters::default(),
            connected: Mutex::default(),
            changed: Arc::new(Notify::new()),
            wakes: (0..n).map(|_| Notify::new()).collect(),
            inbound,
        });
        let mut outboxes = Vec::with_capacity(n);
        let mut accepted = Vec::with_capacity(n);
        let mut tasks = Vec::new();
        for j in (0..n).map(|j| NodeId(j as u16)) {
            if j == me {
                outboxes.push(None);
                accepted.push(None);
                continue;
            }
            let (tx, out_rx) = mpsc::channel(shared.cfg.queue_len);
            let (acc_tx, acc_rx) = mpsc::channel(4);
            outboxes.push(Some(tx));
            accepted.push(Some(acc_tx));
            tasks.push(tokio::spawn(crate::peer::peer_task(shared.clone(), j, out_rx, acc_rx)));
        }
        tasks.push(tokio::spawn(listen(shared.clone(), listener, accepted)));
        (Self { shared, outboxes, tasks }, rx)
    }

    fn enqueue(&self, to: NodeId, frame: Arc<[u8]>) -> bool {
        let Some(Some(tx)) = self.outboxes.get(to.index()) else { return false };
        match tx.try_send(frame) {
            Ok(()) => true,
            Err(_) => {
                // Full (slow or unreachable peer): drop the newest; consensus re-sends.
                self.shared.counters.dropped_sends.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues a message for one member; false if it was dropped (queue full or unknown peer).
    pub fn send(&self, to: NodeId, message: &Message) -> bool {
        self.enqueue(to, message.to_frame().into())
    }

    /// Queues a message for every other member (encoded once).
    pub fn broadcast(&self, message: &Message) {
        let frame: Arc<[u8]> = message.to_frame().into();
        for j in 0..self.outboxes.len() {
            self.enqueue(NodeId(j as u16), frame.clone());
        }
    }

    /// Signalled (one stored permit) whenever a member connects or disconnects, so the caller
    /// can re-read [`Transport::stats`] at once instead of at its next event.
    pub fn connection_changes(&self) -> Arc<Notify> {
        self.shared.changed.clone()
    }

    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let mut connected: Vec<NodeId> =
            self.shared.connected.lock().map(|s| s.iter().copied().collect()).unwrap_or_default();
        connected.sort();
        Stats {
            rejected_connections: c.rejected_connections.load(Ordering::Relaxed),
            malformed_frames: c.malformed_frames.load(Ordering::Relaxed),
            dropped_sends: c.dropped_sends.load(Ordering::Relaxed),
            frames_in: c.frames_in.load(Ordering::Relaxed),
            frames_out: c.frames_out.load(Ordering::Relaxed),
            connected,
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Accepts connections, authenticates them, and hands each to its peer's task.
async fn listen(
    shared: Arc<Shared>,
    listener: TcpListener,
    accepted: Vec<Option<mpsc::Sender<Connection>>>,
) {
    let accepted = Arc::new(accepted);
    let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_MAX));
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            shared.counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
            warn!(%addr, "refused a connection: too many handshakes in progress");
            continue;
        };
        let (shared, accepted) = (shared.clone(), accepted.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let cfg = &shared.cfg;
            let result = tokio::time::timeout(
                cfg.handshake_timeout,
                handshake(
                    stream,
                    Role::Listener,
                    &cfg.config,
                    cfg.signer.as_ref(),
                    None,
                    MESSAGE_BYTES_MAX,
                ),
            )
            .await;
            let refuse = |reason: String| {
                shared.counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
                warn!(%addr, %reason, "refused a connection");
            };
            match result {
                Err(_) => refuse("handshake timed out".into()),
                Ok(Err(e)) => refuse(e.to_string()),
                // The lower id dials: one connection per pair. A higher id that dials us is a
                // wake: it is up (perhaps a new incarnation) and not connected to us, so our
                // dialer for it resets its backoff and dials now.
                Ok(Ok(conn)) if conn.0.node > cfg.me => {
                    debug!(peer = %conn.0.node, "member asks to be dialed");
                    if let Some(wake) = shared.wakes.get(conn.0.node.index()) {
                        wake.notify_one();
                    }
                }
                Ok(Ok(conn)) => {
                    if let Some(Some(tx)) = accepted.get(conn.0.node.index()) {
                        let _ = tx.send(conn).await;
                    }
                }
            }
        });
    }
}
