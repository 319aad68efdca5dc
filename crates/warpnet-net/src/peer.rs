//! One peer's connection, over its lifetimes: dialing with backoff (or waking the member
//! that must dial us), heartbeats on an idle connection, and the reader that declares a silent
//! member dead.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use warpnet_types::message::MESSAGE_BYTES_MAX;
use warpnet_types::{Message, PublicKey};

use crate::handshake::{handshake, HandshakeError, Purpose, Role};
use crate::transport::{
    AbortOnDrop, Connection, PeerHandle, Shared, STABLE_AFTER, WAKE_IGNORED_UNDER, WRITE_TIMEOUT,
};
use crate::wire::{FrameReader, FrameWriter, WireError};

/// One connection attempt to peer `j` (connect and handshake, bounded by the handshake
/// timeout).
async fn connect(shared: &Shared, peer: &PeerHandle) -> Result<Connection, String> {
    let cfg = &shared.cfg;
    let j = peer.key;
    let address = peer.address();
    let admits = |k: &PublicKey| *k == j;
    let attempt = async {
        let stream = TcpStream::connect(&address).await.map_err(HandshakeError::Io)?;
        let side = cfg.side(Role::Dialer, Purpose::Connect, Some(j), &admits);
        handshake(stream, side, MESSAGE_BYTES_MAX).await
    };
    match tokio::time::timeout(cfg.handshake_timeout, attempt).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(HandshakeError::Io(e))) => Err(format!("dial {address}: {e}")),
        Ok(Err(e)) => {
            warn!(peer = %j, %address, error = %e, "handshake with peer failed");
            Err(e.to_string())
        }
        Err(_) => Err(format!("dial {address}: timed out")),
    }
}

/// Dials member `j` until a handshake succeeds, backing off exponentially; the backoff is the
/// caller's, so it carries across connections that do not last. A wake from `j` (it is up and
/// not connected to us: typically a restart) resets the backoff and dials at once, abandoning
/// an attempt in progress: backoff belongs to one incarnation of the peer, not the next.
async fn dial(shared: &Shared, peer: &PeerHandle, backoff: &mut Duration) -> Connection {
    let (j, wake) = (peer.key, &peer.wake);
    loop {
        tokio::select! {
            r = connect(shared, peer) => match r {
                Ok(conn) => return conn,
                Err(e) => debug!(peer = %j, error = %e, "dial failed"),
            },
            _ = wake.notified() => {
                debug!(peer = %j, "woken: dialing at once");
                *backoff = shared.cfg.backoff_min;
                continue;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(*backoff) => {
                *backoff = (*backoff * 2).min(shared.cfg.backoff_max);
            }
            _ = wake.notified() => {
                debug!(peer = %j, "woken: dialing at once");
                *backoff = shared.cfg.backoff_min;
            }
        }
    }
}

/// Waits for member `j` (a lower id) to dial us; while it does not, wakes it now and then
/// (its backoff may be long, from our previous incarnation or a partition that healed).
async fn accept_from(
    shared: &Shared,
    peer: &PeerHandle,
    accepted: &mut mpsc::Receiver<Connection>,
) -> Option<Connection> {
    let j = peer.key;
    let mut delay = shared.cfg.wake_min;
    loop {
        tokio::select! {
            c = accepted.recv() => return c,
            _ = tokio::time::sleep(delay) => {}
        }
        // A wake is a full handshake, so only a member can cause a dial; the connection is
        // dropped right after.
        tokio::select! {
            c = accepted.recv() => return c,
            r = connect(shared, peer) => match r {
                Ok(_) => debug!(peer = %j, "woke the member up: it dials us"),
                Err(e) => debug!(peer = %j, error = %e, "could not wake the member"),
            },
        }
        delay = (delay * 2).min(shared.cfg.wake_max);
    }
}

/// Why a connection ended.
enum Ended {
    /// The peer reconnected (it restarted): the newer connection replaces this one.
    Replaced(Connection),
    /// The peer woke us while we thought we were connected: dial it again at once.
    Woken,
    /// A read or write failed, or the peer fell silent.
    Lost,
}

/// Owns member `j`'s send queue across connections.
pub(crate) async fn peer_task(
    shared: Arc<Shared>,
    peer: Arc<PeerHandle>,
    mut outbox: mpsc::Receiver<Arc<[u8]>>,
    mut accepted: mpsc::Receiver<Connection>,
) {
    let j = peer.key;
    // The lower key dials: one connection per pair.
    let dialer = shared.me < j;
    let mut next: Option<Connection> = None;
    let mut backoff = shared.cfg.backoff_min;
    loop {
        let conn = match next.take() {
            Some(c) => c,
            None if dialer => dial(&shared, &peer, &mut backoff).await,
            None => match accept_from(&shared, &peer, &mut accepted).await {
                Some(c) => c,
                None => return,
            },
        };
        let (_, mut reader, writer) = conn;
        reader.set_idle_max(Some(shared.cfg.silence_max));
        info!(peer = %j, "connected");
        shared.set_connected(j, true);
        let since = tokio::time::Instant::now();
        let reading = AbortOnDrop(tokio::spawn(read_loop(shared.clone(), j, reader)));
        let ended =
            match serve(&shared, &peer, dialer, since, &mut outbox, &mut accepted, writer, reading)
                .await
            {
                Some(ended) => ended,
                None => return,
            };
        shared.set_connected(j, false);
        info!(peer = %j, "disconnected");
        match ended {
            Ended::Replaced(conn) => next = Some(conn),
            Ended::Woken => backoff = shared.cfg.backoff_min,
            Ended::Lost if !dialer => {}
            Ended::Lost if since.elapsed() >= STABLE_AFTER => backoff = shared.cfg.backoff_min,
            Ended::Lost => {
                // A connection that does not last (a refused or flapping peer) does not earn
                // an immediate redial, unless the peer wakes us.
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {
                        backoff = (backoff * 2).min(shared.cfg.backoff_max);
                    }
                    _ = peer.wake.notified() => backoff = shared.cfg.backoff_min,
                }
            }
        }
    }
}

/// Sends member `j`'s queue on one connection, with heartbeats when idle, until it ends; None
/// when the transport is shutting down.
#[allow(clippy::too_many_arguments)]
async fn serve(
    shared: &Shared,
    peer: &PeerHandle,
    dialer: bool,
    since: tokio::time::Instant,
    outbox: &mut mpsc::Receiver<Arc<[u8]>>,
    accepted: &mut mpsc::Receiver<Connection>,
    mut writer: FrameWriter,
    mut reading: AbortOnDrop,
) -> Option<Ended> {
    let heartbeat: Arc<[u8]> = Arc::from(Vec::new());
    let mut beat = tokio::time::interval(shared.cfg.heartbeat_interval);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (j, wake) = (peer.key, &peer.wake);
    loop {
        let (frame, counted) = tokio::select! {
            frame = outbox.recv() => (frame?, true),
            _ = beat.tick() => (heartbeat.clone(), false),
            _ = &mut reading.0 => return Some(Ended::Lost),
            newer = accepted.recv(), if !dialer => return newer.map(Ended::Replaced),
            _ = wake.notified(), if dialer => {
                if since.elapsed() < WAKE_IGNORED_UNDER {
                    continue;
                }
                info!(peer = %j, "member says it is not connected to us: dialing it again");
                return Some(Ended::Woken);
            }
        };
        // The write races the reader: a peer that fell silent is declared dead within
        // `silence_max` even while a write to it is stuck behind full buffers.
        tokio::select! {
            r = tokio::time::timeout(WRITE_TIMEOUT, writer.send(&frame)) => match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    debug!(peer = %j, error = %e, "send failed");
                    return Some(Ended::Lost);
                }
                Err(_) => {
                    warn!(peer = %j, "send timed out: closing the connection");
                    return Some(Ended::Lost);
                }
            },
            _ = &mut reading.0 => return Some(Ended::Lost),
        }
        if counted {
            shared.counters.frames_out.fetch_add(1, Ordering::Relaxed);
            beat.reset();
        }
    }
}

/// Reads frames from member `j` and hands decoded messages to consensus; an empty frame is a
/// heartbeat. Ends when the connection fails or the member falls silent.
async fn read_loop(shared: Arc<Shared>, j: PublicKey, mut reader: FrameReader) {
    loop {
        let frame = match reader.recv().await {
            Ok(f) => f,
            Err(WireError::Silent { ms }) => {
                warn!(peer = %j, silent_ms = ms, "member unreachable: nothing received (not even a heartbeat); connection declared dead");
                return;
            }
            Err(e) => {
                debug!(peer = %j, error = %e, "connection closed");
                return;
            }
        };
        if frame.is_empty() {
            continue;
        }
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
