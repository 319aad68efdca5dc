//! Opening a connection: magic, Noise NN, then signed hellos bound to the handshake hash.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warpnet_types::codec::{Reader, Writer};
pub use warpnet_types::crypto::domain::TAG_TRANSPORT;
use warpnet_types::crypto::{domain, SignedItem};
use warpnet_types::{ConsensusConfig, Digest, NetworkId, PublicKey, Signature, Signer};

use crate::wire::{FrameReader, FrameWriter, WireError, MAGIC, NOISE_MESSAGE_MAX};

const NOISE_PARAMS: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
/// Version 2: hellos sign the network's genesis digest (the same in every epoch) instead of
/// the current committee's, name peers by key, and say why the dialer connects.
const HELLO_VERSION: u8 = 2;
const HELLO_BYTES_MAX: usize = 1 << 10;

/// Which side of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Dialer,
    Listener,
}

/// Why a dialer connects (signed in its hello, so it cannot be changed on the way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A connection that carries consensus messages.
    Connect,
    /// A reachability check (dial-back): the handshake proves the key answers at the address,
    /// then the connection closes.
    Probe,
}

/// The authenticated peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub public_key: PublicKey,
    pub purpose: Purpose,
}

/// Why a handshake failed. The connection is closed and the reason logged.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("noise: {0}")]
    Noise(String),
    #[error("not a WarpNet peer (bad magic)")]
    BadMagic,
    #[error("malformed hello: {0}")]
    Malformed(String),
    #[error("peer speaks hello version {0}")]
    Version(u8),
    #[error("peer is on network {got}, we are on {expected}")]
    WrongNetwork { got: String, expected: String },
    #[error(
        "peer's network started from genesis {got}, ours from {expected} (different genesis files)"
    )]
    WrongGenesis { got: String, expected: String },
    #[error("key {key} is not a member, a candidate or a recent member of the committee")]
    NotAPeer { key: String },
    #[error("the hello's signature does not verify")]
    BadSignature,
    #[error("the peer is ourselves")]
    SelfConnection,
    #[error("expected key {expected}, got key {got}")]
    UnexpectedPeer { expected: String, got: String },
}

fn noise_err(e: snow::Error) -> HandshakeError {
    HandshakeError::Noise(e.to_string())
}

async fn write_noise(stream: &mut TcpStream, msg: &[u8]) -> Result<(), HandshakeError> {
    stream.write_all(&(msg.len() as u16).to_le_bytes()).await?;
    stream.write_all(msg).await?;
    Ok(())
}

async fn read_noise(stream: &mut TcpStream) -> Result<Vec<u8>, HandshakeError> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut msg = vec![0u8; u16::from_le_bytes(len) as usize];
    stream.read_exact(&mut msg).await?;
    Ok(msg)
}

/// What a hello signs: the network and its genesis digest (nodes of different networks, or of
/// different genesis files, never connect; the digest is the same in every epoch, so members
/// of two epochs still connect and exchange epoch proofs), the signer's role (a hello cannot
/// be reflected back), the purpose, and the Noise handshake hash (it cannot be relayed to
/// another channel).
fn signed_bytes(config: &ConsensusConfig, role: Role, purpose: Purpose, hash: &[u8]) -> Vec<u8> {
    let mut w = domain::signing_writer(TAG_TRANSPORT, config.network());
    w.put(&config.genesis_digest()).u8(role_tag(role)).u8(purpose_tag(purpose)).fixed(hash);
    w.finish()
}

fn role_tag(role: Role) -> u8 {
    match role {
        Role::Dialer => 1,
        Role::Listener => 2,
    }
}

fn purpose_tag(purpose: Purpose) -> u8 {
    match purpose {
        Purpose::Connect => 1,
        Purpose::Probe => 2,
    }
}

fn other(role: Role) -> Role {
    match role {
        Role::Dialer => Role::Listener,
        Role::Listener => Role::Dialer,
    }
}

/// The hello `signer` sends as `role` for `purpose` on the channel whose Noise handshake hash
/// is `hash` (public for tests and the fuzz targets). `config` is any epoch's configuration
/// of the network (only its network id, genesis digest and scheme are used).
pub fn hello_bytes(
    config: &ConsensusConfig,
    signer: &dyn Signer,
    role: Role,
    purpose: Purpose,
    hash: &[u8],
) -> Vec<u8> {
    hello(config, signer, role, purpose, hash).finish()
}

fn hello(
    config: &ConsensusConfig,
    signer: &dyn Signer,
    role: Role,
    purpose: Purpose,
    hash: &[u8],
) -> Writer {
    let mut w = Writer::new();
    w.u8(HELLO_VERSION).put(config.network()).put(&config.genesis_digest());
    w.put(&signer.public_key()).u8(purpose_tag(purpose));
    w.put(&signer.sign(&signed_bytes(config, role, purpose, hash)));
    w
}

/// Who may complete a handshake with us: the current committee, candidates, recent members.
pub trait Admits: Sync {
    fn admits(&self, key: &PublicKey) -> bool;
}

impl<F: Fn(&PublicKey) -> bool + Sync> Admits for F {
    fn admits(&self, key: &PublicKey) -> bool {
        self(key)
    }
}

/// One side of a handshake.
pub struct Side<'a> {
    pub role: Role,
    /// The network (any epoch's configuration: network id, genesis digest, scheme).
    pub config: &'a ConsensusConfig,
    pub signer: &'a dyn Signer,
    /// For a dialer: why it connects, and the key it means to reach.
    pub purpose: Purpose,
    pub expected: Option<PublicKey>,
    /// Keys we complete a handshake with (a listener refuses others before answering).
    pub admits: &'a dyn Admits,
}

/// Runs the handshake on a fresh stream; on success returns the authenticated peer and the
/// encrypted halves.
pub async fn handshake(
    mut stream: TcpStream,
    side: Side<'_>,
    max_frame: usize,
) -> Result<(Identity, FrameReader, FrameWriter), HandshakeError> {
    let Side { role, config, signer, purpose, expected, admits } = side;
    stream.set_nodelay(true)?;
    let params = NOISE_PARAMS.parse().map_err(noise_err)?;
    let builder = snow::Builder::new(params);
    let mut buf = vec![0u8; NOISE_MESSAGE_MAX];
    let hs = match role {
        Role::Dialer => {
            stream.write_all(MAGIC).await?;
            let mut hs = builder.build_initiator().map_err(noise_err)?;
            let n = hs.write_message(&[], &mut buf).map_err(noise_err)?;
            write_noise(&mut stream, &buf[..n]).await?;
            let reply = read_noise(&mut stream).await?;
            hs.read_message(&reply, &mut buf).map_err(noise_err)?;
            hs
        }
        Role::Listener => {
            let mut magic = [0u8; 8];
            stream.read_exact(&mut magic).await?;
            if &magic != MAGIC {
                return Err(HandshakeError::BadMagic);
            }
            let mut hs = builder.build_responder().map_err(noise_err)?;
            let first = read_noise(&mut stream).await?;
            hs.read_message(&first, &mut buf).map_err(noise_err)?;
            let n = hs.write_message(&[], &mut buf).map_err(noise_err)?;
            write_noise(&mut stream, &buf[..n]).await?;
            hs
        }
    };
    if !hs.is_handshake_finished() {
        return Err(HandshakeError::Noise("handshake not finished".into()));
    }
    let hash = hs.get_handshake_hash().to_vec();
    let noise = Arc::new(hs.into_stateless_transport_mode().map_err(noise_err)?);
    let (r, w) = stream.into_split();
    let mut reader = FrameReader::new(r, noise.clone(), HELLO_BYTES_MAX);
    let mut writer = FrameWriter::new(w, noise);

    // The dialer speaks first and the listener answers only a valid hello from a key it
    // admits, so a refused dialer learns nothing and fails its handshake (and backs off)
    // instead of being cut off later.
    let identity = match role {
        Role::Dialer => {
            writer.send(hello(config, signer, role, purpose, &hash).as_slice()).await?;
            let peer =
                check_hello(&reader.recv().await?, config, signer, other(role), &hash, expected)?;
            Identity { purpose, ..peer }
        }
        Role::Listener => {
            let peer =
                check_hello(&reader.recv().await?, config, signer, other(role), &hash, expected)?;
            if !admits.admits(&peer.public_key) {
                return Err(HandshakeError::NotAPeer { key: peer.public_key.to_hex() });
            }
            // The listener's own hello carries the dialer's purpose back.
            writer.send(hello(config, signer, role, peer.purpose, &hash).as_slice()).await?;
            peer
        }
    };
    reader.set_max_frame(max_frame);
    Ok((identity, reader, writer))
}

/// Checks a peer's hello (decrypted): version, network, genesis digest, and the signature over
/// this channel's handshake hash; `expected` is the key a dialer meant to reach. Whether the
/// key is one we talk to is the caller's question ([`Admits`]). Public for the fuzz targets.
pub fn check_hello(
    bytes: &[u8],
    config: &ConsensusConfig,
    signer: &dyn Signer,
    their_role: Role,
    hash: &[u8],
    expected: Option<PublicKey>,
) -> Result<Identity, HandshakeError> {
    let bad = |e: warpnet_types::CodecError| HandshakeError::Malformed(e.to_string());
    let mut r = Reader::new(bytes);
    let version = r.u8("hello version").map_err(bad)?;
    if version != HELLO_VERSION {
        return Err(HandshakeError::Version(version));
    }
    let network: NetworkId = r.get().map_err(bad)?;
    let genesis: Digest = r.get().map_err(bad)?;
    let key: PublicKey = r.get().map_err(bad)?;
    let purpose = match r.u8("hello purpose").map_err(bad)? {
        1 => Purpose::Connect,
        2 => Purpose::Probe,
        other => return Err(HandshakeError::Malformed(format!("unknown purpose {other}"))),
    };
    let signature: Signature = r.get().map_err(bad)?;
    r.finish().map_err(bad)?;
    if network != *config.network() {
        return Err(HandshakeError::WrongNetwork {
            got: network.to_string(),
            expected: config.network().to_string(),
        });
    }
    if genesis != config.genesis_digest() {
        return Err(HandshakeError::WrongGenesis {
            got: genesis.to_hex(),
            expected: config.genesis_digest().to_hex(),
        });
    }
    let message = signed_bytes(config, their_role, purpose, hash);
    let item = SignedItem { key: &key, message: &message, signature: &signature };
    config.scheme().scheme().verify(item).map_err(|_| HandshakeError::BadSignature)?;
    if key == signer.public_key() {
        return Err(HandshakeError::SelfConnection);
    }
    if let Some(expected) = expected.filter(|e| *e != key) {
        return Err(HandshakeError::UnexpectedPeer {
            expected: expected.to_hex(),
            got: key.to_hex(),
        });
    }
    Ok(Identity { public_key: key, purpose })
}
