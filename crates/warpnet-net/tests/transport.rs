//! The transport between real sockets on 127.0.0.1. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::Receiver;
use warpnet_net::{
    handshake, probe, HandshakeError, Peer, Purpose, Role, Side, Stats, Transport, TransportConfig,
};
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::message::MESSAGE_BYTES_MAX;
use warpnet_types::{
    Block, ConsensusConfig, Epoch, Height, Message, NetworkId, NodeId, Participant, PublicKey,
    QuorumCertificate, Round, SchemeId, Signer, Vote,
};

struct Net {
    config: Arc<ConsensusConfig>,
    signers: Vec<Arc<dyn Signer>>,
    listeners: Vec<Option<TcpListener>>,
}

/// A committee of `n` whose addresses are freshly bound loopback ports. Members are indexed in
/// key order, so the member with the lower index is the one that dials.
async fn net(n: usize) -> Net {
    let mut signers: Vec<Arc<dyn Signer>> =
        (0..n as u64).map(|i| Arc::from(signer_from_seed(SchemeId::Ed25519, 900 + i))).collect();
    signers.sort_by_key(|s| s.public_key());
    let mut listeners = Vec::new();
    let mut participants = Vec::new();
    for s in &signers {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        participants.push(Participant {
            public_key: s.public_key(),
            address: l.local_addr().unwrap().to_string(),
            api_address: String::new(),
            public: true,
        });
        listeners.push(Some(l));
    }
    let config = ConsensusConfig::new(
        NetworkId::new("test").unwrap(),
        Epoch(1),
        SchemeId::Ed25519,
        participants,
    )
    .unwrap();
    Net { config: Arc::new(config), signers, listeners }
}

/// The committee's members as peers.
fn peers(config: &ConsensusConfig) -> Vec<Peer> {
    config
        .participants()
        .iter()
        .map(|p| Peer { key: p.public_key, address: p.address.clone() })
        .collect()
}

fn start(net: &mut Net, i: usize) -> (Transport, Receiver<(PublicKey, Message)>) {
    let mut cfg = TransportConfig::new(net.config.clone(), net.signers[i].clone());
    cfg.backoff_max = Duration::from_millis(200);
    Transport::start(cfg, peers(&net.config), net.listeners[i].take().unwrap())
}

/// Member `i`'s index from its key (tests speak of members by index).
fn index(net: &Net, key: &PublicKey) -> usize {
    net.signers.iter().position(|s| s.public_key() == *key).expect("a member's key")
}

fn key(net: &Net, i: usize) -> PublicKey {
    net.signers[i].public_key()
}

/// A dialer's side of a handshake (tests play members and strangers on the wire).
fn dialer<'a>(
    config: &'a ConsensusConfig,
    signer: &'a dyn Signer,
    expected: PublicKey,
    admits: &'a dyn warpnet_net::Admits,
) -> Side<'a> {
    Side {
        role: Role::Dialer,
        config,
        signer,
        purpose: Purpose::Connect,
        expected: Some(expected),
        admits,
    }
}

fn vote(net: &Net, voter: usize) -> Message {
    let b = Block::new(
        Epoch(1),
        Round(1),
        Height(1),
        NodeId(0),
        QuorumCertificate::genesis(&net.config),
        0,
        vec![],
    );
    Message::Vote(Vote::sign(&net.config, &b, NodeId(voter as u16), net.signers[voter].as_ref()))
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn recv(net: &Net, rx: &mut Receiver<(PublicKey, Message)>) -> (usize, Message) {
    let (from, m) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a message within 5 s")
        .expect("open");
    (index(net, &from), m)
}

/// The members `t` is connected to, by index.
fn connected_in(net: &Net, t: &Transport) -> Vec<usize> {
    let mut v: Vec<usize> = t.stats().connected.iter().map(|k| index(net, k)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn members_exchange_messages_over_authenticated_channels() {
    let mut net = net(3).await;
    let (t0, mut r0) = start(&mut net, 0);
    let (t1, mut r1) = start(&mut net, 1);
    let (t2, mut r2) = start(&mut net, 2);
    wait_for("full mesh", || {
        connected_in(&net, &t0).len() == 2
            && connected_in(&net, &t1).len() == 2
            && connected_in(&net, &t2).len() == 2
    })
    .await;
    let m = vote(&net, 0);
    t0.broadcast(&m);
    assert_eq!(recv(&net, &mut r1).await, (0, m.clone()));
    assert_eq!(recv(&net, &mut r2).await, (0, m));
    let m2 = vote(&net, 2);
    assert!(t2.send(&key(&net, 0), &m2));
    assert_eq!(recv(&net, &mut r0).await, (2, m2));
    let s: Stats = t1.stats();
    assert_eq!((s.rejected_connections, s.malformed_frames), (0, 0));
}

#[tokio::test]
async fn a_key_outside_the_committee_is_refused() {
    let mut net = net(2).await;
    let (t1, mut r1) = start(&mut net, 1);
    let address = net.config.participant(NodeId(1)).unwrap().address.clone();
    let stranger = signer_from_seed(SchemeId::Ed25519, 12345);
    let stream = TcpStream::connect(&address).await.unwrap();
    // The stranger completes its side (member 1 is a real member), then is cut off.
    let anyone = |_: &PublicKey| true;
    let side = dialer(&net.config, stranger.as_ref(), key(&net, 1), &anyone);
    let outcome = handshake(stream, side, 1 << 20).await;
    if let Ok((_, _, mut w)) = outcome {
        let _ = w.send(&vote(&net, 0).to_frame()).await;
    }
    wait_for("the refusal", || t1.stats().rejected_connections >= 1).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), r1.recv()).await.is_err(),
        "nothing delivered"
    );
    assert!(connected_in(&net, &t1).is_empty());
}

#[tokio::test]
async fn garbage_and_oversized_frames_do_not_harm_the_node() {
    // Members 1 and 2 run; the test plays member 0 (a real key) and strangers on the wire.
    let mut net = net(3).await;
    let (t1, mut r1) = start(&mut net, 1);
    let (t2, _r2) = start(&mut net, 2);
    wait_for("1 and 2 connected", || connected_in(&net, &t1) == [2]).await;
    let address = net.config.participant(NodeId(1)).unwrap().address.clone();

    // Garbage instead of a handshake.
    let mut raw = TcpStream::connect(&address).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n and then some garbage").await.unwrap();
    drop(raw);
    wait_for("garbage refused", || t1.stats().rejected_connections >= 1).await;

    // An authenticated member sending a frame that is not a message, then an oversized one.
    let stream = TcpStream::connect(&address).await.unwrap();
    let anyone = |_: &PublicKey| true;
    let side = dialer(&net.config, net.signers[0].as_ref(), key(&net, 1), &anyone);
    let (_, _, mut w) = handshake(stream, side, 1 << 20).await.unwrap();
    w.send(b"not a consensus frame").await.unwrap();
    wait_for("malformed frame counted", || t1.stats().malformed_frames >= 1).await;
    let _ = w.send(&vec![0u8; MESSAGE_BYTES_MAX + 1]).await;
    wait_for("oversized sender cut off", || !connected_in(&net, &t1).contains(&0)).await;

    // The node still works.
    let m = vote(&net, 2);
    assert!(t2.send(&key(&net, 1), &m));
    assert_eq!(recv(&net, &mut r1).await, (2, m));
}

#[tokio::test]
async fn a_restarted_member_is_reconnected_and_reached_again() {
    let mut net = net(2).await;
    let address = net.config.participant(NodeId(1)).unwrap().address.clone();
    let (t0, _r0) = start(&mut net, 0);
    let (t1, r1) = start(&mut net, 1);
    wait_for("connected", || connected_in(&net, &t0) == [1]).await;
    drop(t1);
    drop(r1);
    wait_for("0 notices", || connected_in(&net, &t0).is_empty()).await;
    // Member 1 comes back on the same address.
    net.listeners[1] = Some(TcpListener::bind(&address).await.unwrap());
    let (t1, mut r1) = start(&mut net, 1);
    wait_for("reconnected", || connected_in(&net, &t0) == [1] && connected_in(&net, &t1) == [0])
        .await;
    let m = vote(&net, 0);
    assert!(t0.send(&key(&net, 1), &m));
    assert_eq!(recv(&net, &mut r1).await, (0, m));
}

/// Two members whose genesis files differ (here: another address for one member) never
/// connect: the hello signs the network's genesis digest.
#[tokio::test]
async fn members_with_different_genesis_files_do_not_connect() {
    let mut net = net(2).await;
    let (t1, _r1) = start(&mut net, 1);
    let mut participants = net.config.participants().to_vec();
    participants[1].address = format!("{} ", participants[1].address.trim()).trim().to_owned();
    participants[0].address = "127.0.0.1:1".into(); // member 0's own entry differs
    let other = ConsensusConfig::new(
        net.config.network().clone(),
        Epoch(1),
        SchemeId::Ed25519,
        participants,
    )
    .unwrap();
    assert_ne!(other.digest(), net.config.digest());
    let other = Arc::new(other);
    let mut cfg = TransportConfig::new(other.clone(), net.signers[0].clone());
    cfg.backoff_max = Duration::from_millis(100);
    let (t0, _r0) = Transport::start(cfg, peers(&other), net.listeners[0].take().unwrap());
    wait_for("the refusal", || t1.stats().rejected_connections >= 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(connected_in(&net, &t0).is_empty() && connected_in(&net, &t1).is_empty());
}

/// A TCP relay that can freeze: while frozen it forwards nothing in either direction and keeps
/// every socket open, like a link that silently drops packets (no reset, no FIN).
struct Relay {
    address: String,
    frozen: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    async fn start(target: String) -> Self {
        use std::sync::atomic::AtomicBool;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let frozen = Arc::new(AtomicBool::new(false));
        let f = frozen.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(&target).await else { continue };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pump(ri, wo, f.clone()));
                tokio::spawn(pump(ro, wi, f.clone()));
            }
        });
        Self { address, frozen }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        // Frozen: hold the bytes (and the sockets) without a sign of life in either direction.
        while frozen.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while frozen.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A link that goes silent (packets dropped, no reset) is detected by the heartbeats: both
/// sides declare the connection dead within `silence_max` plus a heartbeat, and reconnect once
/// the link carries packets again.
#[tokio::test]
async fn a_silent_link_is_declared_dead_within_the_bound_and_heals() {
    let mut net = net(2).await;
    // Member 1's committee address is a relay in front of its real listener.
    let real = net.listeners[1].as_ref().unwrap().local_addr().unwrap().to_string();
    let relay = Relay::start(real).await;
    let mut participants = net.config.participants().to_vec();
    participants[1].address = relay.address.clone();
    net.config = Arc::new(
        ConsensusConfig::new(
            net.config.network().clone(),
            Epoch(1),
            SchemeId::Ed25519,
            participants,
        )
        .unwrap(),
    );
    let (t0, _r0) = start(&mut net, 0);
    let (t1, _r1) = start(&mut net, 1);
    wait_for("connected", || connected_in(&net, &t0) == [1] && connected_in(&net, &t1) == [0])
        .await;
    // Idle for several heartbeat periods: an idle link is not mistaken for a dead one.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!((connected_in(&net, &t0), connected_in(&net, &t1)), (vec![1], vec![0]));

    relay.freeze(true);
    let frozen_at = std::time::Instant::now();
    wait_for("both sides notice", || {
        connected_in(&net, &t0).is_empty() && connected_in(&net, &t1).is_empty()
    })
    .await;
    let took = frozen_at.elapsed();
    // SILENCE_MAX, plus at most one heartbeat period and scheduling slack.
    assert!(took < Duration::from_millis(2_000), "detected after {took:?}");
    assert!(took >= Duration::from_millis(800), "not before the bound: {took:?}");

    relay.freeze(false);
    wait_for("reconnected", || connected_in(&net, &t0) == [1] && connected_in(&net, &t1) == [0])
        .await;
}

/// A member that restarts while its dialer's backoff has grown long (it was down for seconds)
/// is dialed again within MISSION's 2 s: its fresh incarnation wakes the dialer, whose backoff
/// belonged to the old one.
#[tokio::test]
async fn a_restarted_member_is_redialed_at_once_whatever_the_backoff() {
    let mut net = net(2).await;
    let address = net.config.participant(NodeId(1)).unwrap().address.clone();
    // Default backoff (50 ms doubling to 5 s): after 3.3 s of refused dials, the dialer sleeps
    // until about 6.35 s; without a wake it would redial ~3 s after the restart.
    let (t0, _r0) = Transport::start(
        TransportConfig::new(net.config.clone(), net.signers[0].clone()),
        peers(&net.config),
        net.listeners[0].take().unwrap(),
    );
    let (t1, r1) = start(&mut net, 1);
    wait_for("connected", || connected_in(&net, &t0) == [1]).await;
    drop(t1);
    drop(r1);
    wait_for("0 notices", || connected_in(&net, &t0).is_empty()).await;
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    net.listeners[1] = Some(TcpListener::bind(&address).await.unwrap());
    let restarted = std::time::Instant::now();
    let (t1, _r1) = start(&mut net, 1);
    wait_for("reconnected", || connected_in(&net, &t0) == [1] && connected_in(&net, &t1) == [0])
        .await;
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(2), "rejoined after {took:?}");
}

/// The peer set follows the committee at run time: a key is refused until it becomes a peer,
/// then connects and is heard; removed, its connection closes and it is refused again.
#[tokio::test]
async fn peers_added_and_removed_at_run_time_connect_and_disconnect() {
    let mut net = net(3).await;
    let first_two: Vec<Peer> = peers(&net.config).into_iter().take(2).collect();
    let mut cfg = TransportConfig::new(net.config.clone(), net.signers[0].clone());
    cfg.backoff_max = Duration::from_millis(200);
    let (mut t0, mut r0) =
        Transport::start(cfg, first_two.clone(), net.listeners[0].take().unwrap());
    let (t1, _r1) = start(&mut net, 1);
    let (t2, _r2) = start(&mut net, 2);
    wait_for("0 and 1 connected", || connected_in(&net, &t0) == [1]).await;
    // Member 2 knows member 0, but member 0 does not admit it (yet): refused, not connected.
    wait_for("2 refused", || {
        t0.stats().rejected_connections >= 1 || t2.stats().rejected_connections >= 1
    })
    .await;
    assert_eq!(connected_in(&net, &t0), [1]);
    assert!(!t0.send(&key(&net, 2), &vote(&net, 0)), "not a peer: nothing queued");

    t0.set_peers(peers(&net.config));
    wait_for("0 and 2 connected", || connected_in(&net, &t0) == [1, 2]).await;
    let m = vote(&net, 2);
    assert!(t2.send(&key(&net, 0), &m));
    assert_eq!(recv(&net, &mut r0).await, (2, m));

    t0.set_peers(first_two);
    wait_for("2 dropped", || {
        connected_in(&net, &t0) == [1] && !connected_in(&net, &t2).contains(&0)
    })
    .await;
    let rejected = t0.stats().rejected_connections;
    t2.send(&key(&net, 0), &vote(&net, 2));
    wait_for("2 refused again", || t0.stats().rejected_connections > rejected).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), r0.recv()).await.is_err(),
        "nothing from a key that is no longer a peer"
    );
    assert_eq!(t0.peers(), {
        let mut k = vec![key(&net, 0), key(&net, 1)];
        k.retain(|k| *k != net.signers[0].public_key());
        k
    });
    drop(t1);
}

/// Dial-back: a probe proves that the holder of a key answers at an address; another key at
/// that address, no one listening, or a prober the node does not admit all fail, and a probe is
/// not a connection.
#[tokio::test]
async fn a_probe_proves_the_key_answers_at_the_address() {
    let mut net = net(2).await;
    let address = net.config.participant(NodeId(1)).unwrap().address.clone();
    let (t1, _r1) = start(&mut net, 1);
    let cfg0 = TransportConfig::new(net.config.clone(), net.signers[0].clone());
    probe(&cfg0, &address, key(&net, 1)).await.expect("member 1 answers at its address");

    let stranger: Arc<dyn Signer> = Arc::from(signer_from_seed(SchemeId::Ed25519, 4242));
    let wrong = probe(&cfg0, &address, stranger.public_key()).await;
    assert!(matches!(wrong, Err(HandshakeError::UnexpectedPeer { .. })), "{wrong:?}");

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    assert!(probe(&cfg0, &closed, key(&net, 1)).await.is_err(), "no one listens there");

    let unknown = TransportConfig::new(net.config.clone(), stranger);
    assert!(probe(&unknown, &address, key(&net, 1)).await.is_err(), "a stranger is not answered");
    assert!(connected_in(&net, &t1).is_empty(), "a probe is not a connection");
}
