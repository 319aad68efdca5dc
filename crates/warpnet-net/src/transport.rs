//! Connections to every other member: dialing with backoff, accepting, bounded queues.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use warpnet_types::message::MESSAGE_BYTES_MAX;
use warpnet_types::{ConsensusConfig, Message, NodeId, Signer};

use crate::handshake::{handshake, HandshakeError, Identity, Role};
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
        }
    }
}

#[derive(Default)]
struct Counters {
    rejected_connections: AtomicU64,
    malformed_frames: AtomicU64,
    dropped_sends: AtomicU64,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
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

struct Shared {
    cfg: TransportConfig,
    counters: Counters,
    connected: Mutex<HashSet<NodeId>>,
    inbound: mpsc::Sender<(NodeId, Message)>,
}

type Connection = (Identity, FrameReader, FrameWriter);

/// Handshakes in progress at once; further connections are refused at once, so a flood of idle
/// connections costs a bounded amount of memory.
const HANDSHAKES_MAX: usize = 64;
/// A write that takes longer closes the connection (a dead peer whose buffers are full).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that lived this long resets the dialer's backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// A task aborted when its handle is dropped.
struct AbortOnDrop(JoinHandle<()>);

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
            tasks.push(tokio::spawn(peer_task(shared.clone(), j, out_rx, acc_rx)));
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
                // The lower id dials: one connection per pair.
                Ok(Ok(conn)) if conn.0.node >= cfg.me => {
                    refuse(format!("member {} must be dialed, not dial us", conn.0.node));
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

/// Dials member `j` until a handshake succeeds, backing off exponentially; the backoff is the
/// caller's, so it carries across connections that do not last.
async fn dial(shared: &Shared, j: NodeId, backoff: &mut Duration) -> Connection {
    let cfg = &shared.cfg;
    loop {
        let address = cfg.config.participant(j).map(|p| p.address.clone()).unwrap_or_default();
        let attempt = async {
            let stream = TcpStream::connect(&address).await.map_err(HandshakeError::Io)?;
            handshake(
                stream,
                Role::Dialer,
                &cfg.config,
                cfg.signer.as_ref(),
                Some(j),
                MESSAGE_BYTES_MAX,
            )
            .await
        };
        match tokio::time::timeout(cfg.handshake_timeout, attempt).await {
            Ok(Ok(conn)) => return conn,
            Ok(Err(HandshakeError::Io(e))) => {
                debug!(peer = %j, %address, error = %e, "dial failed")
            }
            Ok(Err(e)) => warn!(peer = %j, %address, error = %e, "handshake with member failed"),
            Err(_) => debug!(peer = %j, %address, "dial timed out"),
        }
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(cfg.backoff_max);
    }
}

/// Owns member `j`'s send queue across connections.
async fn peer_task(
    shared: Arc<Shared>,
    j: NodeId,
    mut outbox: mpsc::Receiver<Arc<[u8]>>,
    mut accepted: mpsc::Receiver<Connection>,
) {
    let dialer = shared.cfg.me < j;
    let mut next: Option<Connection> = None;
    let mut backoff = shared.cfg.backoff_min;
    loop {
        let conn = match next.take() {
            Some(c) => c,
            None if dialer => dial(&shared, j, &mut backoff).await,
            None => match accepted.recv().await {
                Some(c) => c,
                None => return,
            },
        };
        let (_, reader, mut writer) = conn;
        info!(peer = %j, "connected");
        if let Ok(mut set) = shared.connected.lock() {
            set.insert(j);
        }
        let since = tokio::time::Instant::now();
        let mut reading = AbortOnDrop(tokio::spawn(read_loop(shared.clone(), j, reader)));
        loop {
            tokio::select! {
                frame = outbox.recv() => {
                    let Some(frame) = frame else { return };
                    match tokio::time::timeout(WRITE_TIMEOUT, writer.send(&frame)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            debug!(peer = %j, error = %e, "send failed");
                            break;
                        }
                        Err(_) => {
                            warn!(peer = %j, "send timed out: closing the connection");
                            break;
                        }
                    }
                    shared.counters.frames_out.fetch_add(1, Ordering::Relaxed);
                }
                _ = &mut reading.0 => break,
                newer = accepted.recv(), if !dialer => {
                    // The peer reconnected (it restarted): the newer connection wins.
                    next = newer;
                    break;
                }
            }
        }
        drop(reading);
        if let Ok(mut set) = shared.connected.lock() {
            set.remove(&j);
        }
        info!(peer = %j, "disconnected");
        if dialer && next.is_none() {
            if since.elapsed() >= STABLE_AFTER {
                backoff = shared.cfg.backoff_min;
            } else {
                // A connection that does not last (a refused or flapping peer) does not earn
                // an immediate redial.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.cfg.backoff_max);
            }
        }
    }
}

/// Reads frames from member `j` and hands decoded messages to consensus.
async fn read_loop(shared: Arc<Shared>, j: NodeId, mut reader: FrameReader) {
    loop {
        let frame = match reader.recv().await {
            Ok(f) => f,
            Err(e) => {
                debug!(peer = %j, error = %e, "connection closed");
                return;
            }
        };
        match Message::from_frame(&frame) {
            Ok(message) => {
                shared.counters.frames_in.fetch_add(1, Ordering::Relaxed);
                if shared.inbound.send((j, message)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                shared.counters.malformed_frames.fetch_add(1, Ordering::Relaxed);
                warn!(peer = %j, error = %e, "dropped a malformed frame");
            }
        }
    }
}
