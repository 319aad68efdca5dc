//! The transport: a task per peer (`peer.rs`), the listener, bounded queues, counters.
//!
//! Peers are named by public key. The set of peers changes at run time
//! ([`Transport::set_peers`]): at an epoch change the committee changes, a candidate being
//! admitted is a peer while its request is pending, and a removed member stays one while it
//! lingers.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use warpnet_types::message::MESSAGE_BYTES_MAX;
use warpnet_types::{ConsensusConfig, Message, PublicKey, Signer};

use crate::handshake::{handshake, HandshakeError, Identity, Purpose, Role, Side};
use crate::wire::{FrameReader, FrameWriter};

/// A node we keep a connection to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub key: PublicKey,
    /// Its p2p address (`host:port`).
    pub address: String,
}

/// How a transport runs.
#[derive(Clone)]
pub struct TransportConfig {
    /// Any epoch's configuration of the network: its id, genesis digest and signature scheme
    /// (the same in every epoch) are what hellos sign and check.
    pub config: Arc<ConsensusConfig>,
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
    /// declared dead: closed, logged, and the peer no longer counts as connected.
    pub silence_max: Duration,
    /// A peer that must dial us but has not within this long is asked to (a "wake": we
    /// dial it, it sees our fresh incarnation, resets its backoff and dials at once); then
    /// again with exponential backoff up to `wake_max`.
    pub wake_min: Duration,
    pub wake_max: Duration,
}

impl TransportConfig {
    pub fn new(config: Arc<ConsensusConfig>, signer: Arc<dyn Signer>) -> Self {
        Self {
            config,
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

    /// Our side of a handshake, admitting `admits`.
    pub(crate) fn side<'a>(
        &'a self,
        role: Role,
        purpose: Purpose,
        expected: Option<PublicKey>,
        admits: &'a dyn crate::handshake::Admits,
    ) -> Side<'a> {
        Side { role, config: &self.config, signer: self.signer.as_ref(), purpose, expected, admits }
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
    /// Peers connected now, sorted.
    pub connected: Vec<PublicKey>,
}

/// What the listener and a peer's task share about one peer.
pub(crate) struct PeerHandle {
    pub(crate) key: PublicKey,
    /// Its address; an update (a member moved) applies from the next dial.
    pub(crate) address: Mutex<String>,
    /// Signalled when the peer asks to be dialed (a wake).
    pub(crate) wake: Notify,
    /// Connections the listener accepted from it.
    pub(crate) accepted: mpsc::Sender<Connection>,
}

impl PeerHandle {
    pub(crate) fn address(&self) -> String {
        self.address.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

pub(crate) struct Shared {
    pub(crate) cfg: TransportConfig,
    pub(crate) me: PublicKey,
    pub(crate) counters: Counters,
    pub(crate) connected: Mutex<HashSet<PublicKey>>,
    /// Signalled on every connection and disconnection (the runtime re-reads `connected`).
    pub(crate) changed: Arc<Notify>,
    /// The peers now, for the listener.
    pub(crate) peers: RwLock<HashMap<PublicKey, Arc<PeerHandle>>>,
    pub(crate) inbound: mpsc::Sender<(PublicKey, Message)>,
}

impl Shared {
    pub(crate) fn set_connected(&self, j: PublicKey, up: bool) {
        if let Ok(mut set) = self.connected.lock() {
            if up {
                set.insert(j);
            } else {
                set.remove(&j);
            }
        }
        self.changed.notify_one();
    }

    pub(crate) fn peer(&self, key: &PublicKey) -> Option<Arc<PeerHandle>> {
        self.peers.read().ok()?.get(key).cloned()
    }

    /// Whether `key` is one of our peers now (the listener admits only those).
    pub(crate) fn admits(&self, key: &PublicKey) -> bool {
        self.peers.read().is_ok_and(|p| p.contains_key(key))
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

/// A peer's send queue and its task.
struct Outbox {
    tx: mpsc::Sender<Arc<[u8]>>,
    task: JoinHandle<()>,
}

/// The running transport. Dropping it stops every task and closes every connection.
pub struct Transport {
    shared: Arc<Shared>,
    outboxes: HashMap<PublicKey, Outbox>,
    listener: JoinHandle<()>,
}

impl Transport {
    /// Accepts `peers` on `listener` and connects to them; incoming messages arrive on the
    /// returned receiver, named by the sender's key. Must be called within a tokio runtime.
    pub fn start(
        cfg: TransportConfig,
        peers: Vec<Peer>,
        listener: TcpListener,
    ) -> (Self, mpsc::Receiver<(PublicKey, Message)>) {
        let (inbound, rx) = mpsc::channel(cfg.inbound_len);
        let me = cfg.signer.public_key();
        let shared = Arc::new(Shared {
            cfg,
            me,
            counters: Counters::default(),
            connected: Mutex::default(),
            changed: Arc::new(Notify::new()),
            peers: RwLock::default(),
            inbound,
        });
        let listener = tokio::spawn(listen(shared.clone(), listener));
        let mut transport = Self { shared, outboxes: HashMap::new(), listener };
        transport.set_peers(peers);
        (transport, rx)
    }

    /// Makes `peers` the set of peers: a new key gets a connection (and a send queue), a key
    /// no longer present loses its own (closed at once), a changed address applies from the
    /// next dial. Ourselves, if listed, are skipped.
    pub fn set_peers(&mut self, peers: Vec<Peer>) {
        let wanted: HashMap<PublicKey, String> = peers
            .into_iter()
            .filter(|p| p.key != self.shared.me)
            .map(|p| (p.key, p.address))
            .collect();
        let Ok(mut table) = self.shared.peers.write() else { return };
        let gone: Vec<PublicKey> =
            table.keys().filter(|k| !wanted.contains_key(k)).copied().collect();
        for key in gone {
            table.remove(&key);
            if let Some(outbox) = self.outboxes.remove(&key) {
                outbox.task.abort();
            }
            self.shared.set_connected(key, false);
            info!(peer = %key, "no longer a peer: connection closed");
        }
        for (key, address) in wanted {
            if let Some(handle) = table.get(&key) {
                if let Ok(mut a) = handle.address.lock() {
                    if *a != address {
                        info!(peer = %key, from = %a, to = %address, "peer moved");
                        *a = address;
                    }
                }
                continue;
            }
            let (tx, out_rx) = mpsc::channel(self.shared.cfg.queue_len);
            let (acc_tx, acc_rx) = mpsc::channel(4);
            let handle = Arc::new(PeerHandle {
                key,
                address: Mutex::new(address),
                wake: Notify::new(),
                accepted: acc_tx,
            });
            table.insert(key, handle.clone());
            let task =
                tokio::spawn(crate::peer::peer_task(self.shared.clone(), handle, out_rx, acc_rx));
            self.outboxes.insert(key, Outbox { tx, task });
        }
    }

    /// The peers now, sorted by key.
    pub fn peers(&self) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self.outboxes.keys().copied().collect();
        keys.sort();
        keys
    }

    fn enqueue(&self, to: &PublicKey, frame: Arc<[u8]>) -> bool {
        let Some(outbox) = self.outboxes.get(to) else { return false };
        match outbox.tx.try_send(frame) {
            Ok(()) => true,
            Err(_) => {
                // Full (slow or unreachable peer): drop the newest; consensus re-sends.
                self.shared.counters.dropped_sends.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues a message for one peer; false if it was dropped (queue full or not a peer).
    pub fn send(&self, to: &PublicKey, message: &Message) -> bool {
        self.enqueue(to, message.to_frame().into())
    }

    /// Queues a message for each of `to` that is a peer (encoded once).
    pub fn multicast<'a>(&self, to: impl IntoIterator<Item = &'a PublicKey>, message: &Message) {
        let frame: Arc<[u8]> = message.to_frame().into();
        for key in to {
            self.enqueue(key, frame.clone());
        }
    }

    /// Queues a message for every peer (encoded once).
    pub fn broadcast(&self, message: &Message) {
        let frame: Arc<[u8]> = message.to_frame().into();
        for key in self.outboxes.keys() {
            self.enqueue(key, frame.clone());
        }
    }

    /// Signalled (one stored permit) whenever a peer connects or disconnects, so the caller
    /// can re-read [`Transport::stats`] at once instead of at its next event.
    pub fn connection_changes(&self) -> Arc<Notify> {
        self.shared.changed.clone()
    }

    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let mut connected: Vec<PublicKey> =
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
        self.listener.abort();
        for outbox in self.outboxes.values() {
            outbox.task.abort();
        }
    }
}

/// Dial-back: checks that the holder of `expected` answers an authenticated handshake at
/// `address` (within the handshake timeout), then closes the connection. What members check
/// before they endorse a candidate.
pub async fn probe(
    cfg: &TransportConfig,
    address: &str,
    expected: PublicKey,
) -> Result<(), HandshakeError> {
    let admits = |k: &PublicKey| *k == expected;
    let attempt = async {
        let stream = TcpStream::connect(address).await?;
        handshake(stream, cfg.side(Role::Dialer, Purpose::Probe, Some(expected), &admits), 1 << 10)
            .await
    };
    match tokio::time::timeout(cfg.handshake_timeout, attempt).await {
        Ok(r) => r.map(|_| ()),
        Err(_) => Err(HandshakeError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no handshake at {address} within {:?}", cfg.handshake_timeout),
        ))),
    }
}

/// Accepts connections, authenticates them, and hands each to its peer's task.
async fn listen(shared: Arc<Shared>, listener: TcpListener) {
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
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let cfg = &shared.cfg;
            let admits = |k: &PublicKey| shared.admits(k);
            let side = cfg.side(Role::Listener, Purpose::Connect, None, &admits);
            let result = tokio::time::timeout(
                cfg.handshake_timeout,
                handshake(stream, side, MESSAGE_BYTES_MAX),
            )
            .await;
            let refuse = |reason: String| {
                shared.counters.rejected_connections.fetch_add(1, Ordering::Relaxed);
                warn!(%addr, %reason, "refused a connection");
            };
            let conn = match result {
                Err(_) => return refuse("handshake timed out".into()),
                Ok(Err(e)) => return refuse(e.to_string()),
                Ok(Ok(conn)) => conn,
            };
            let Identity { public_key: key, purpose } = conn.0;
            if purpose == Purpose::Probe {
                debug!(peer = %key, "answered a reachability probe");
                return;
            }
            let Some(peer) = shared.peer(&key) else { return };
            if key > shared.me {
                // The lower key dials: one connection per pair. A higher key that dials us is
                // a wake: it is up (perhaps a new incarnation) and not connected to us, so our
                // dialer for it resets its backoff and dials now.
                debug!(peer = %key, "peer asks to be dialed");
                peer.wake.notify_one();
            } else {
                let _ = peer.accepted.send(conn).await;
            }
        });
    }
}
