//! Opening a connection: magic, Noise NN, then signed hellos bound to the handshake hash.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warpnet_types::codec::{Reader, Writer};
pub use warpnet_types::crypto::domain::TAG_TRANSPORT;
use warpnet_types::crypto::{domain, SignedItem};
use warpnet_types::{
    ConsensusConfig, Digest, Epoch, NetworkId, NodeId, PublicKey, Signature, Signer,
};

use crate::wire::{FrameReader, FrameWriter, WireError, MAGIC, NOISE_MESSAGE_MAX};

const NOISE_PARAMS: &str = "Noise_NN_25519_ChaChaPoly_BLAKE2s";
const HELLO_VERSION: u8 = 1;
const HELLO_BYTES_MAX: usize = 1 << 10;

/// Which side of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Dialer,
    Listener,
}

/// The authenticated peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub node: NodeId,
    pub public_key: PublicKey,
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
    #[error("peer is in epoch {got}, we are in {expected}")]
    WrongEpoch { got: Epoch, expected: Epoch },
    #[error("peer runs committee {got}, we run {expected} (different committee files)")]
    WrongCommittee { got: String, expected: String },
    #[error("key {key} is not a member of the committee")]
    NotInCommittee { key: String },
    #[error("the hello's signature does not verify")]
    BadSignature,
    #[error("the peer is ourselves")]
    SelfConnection,
    #[error("expected member {expected}, got member {got}")]
    UnexpectedPeer { expected: NodeId, got: NodeId },
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

/// What a hello signs: the network, epoch and committee digest (two members with different
/// committee files never connect), the signer's role (a hello cannot be reflected back), and
/// the Noise handshake hash (it cannot be relayed to another channel).
fn signed_bytes(config: &ConsensusConfig, role: Role, handshake_hash: &[u8]) -> Vec<u8> {
    let mut w = domain::signing_writer(TAG_TRANSPORT, config.network());
    w.put(&config.epoch()).put(&config.digest()).u8(role_tag(role)).fixed(handshake_hash);
    w.finish()
}

fn role_tag(role: Role) -> u8 {
    match role {
        Role::Dialer => 1,
        Role::Listener => 2,
    }
}

fn other(role: Role) -> Role {
    match role {
        Role::Dialer => Role::Listener,
        Role::Listener => Role::Dialer,
    }
}

/// The hello `signer` sends as `role` on the channel whose Noise handshake hash is `hash`
/// (public for tests and the fuzz targets).
pub fn hello_bytes(
    config: &ConsensusConfig,
    signer: &dyn Signer,
    role: Role,
    hash: &[u8],
) -> Vec<u8> {
    hello(config, signer, role, hash).finish()
}

fn hello(config: &ConsensusConfig, signer: &dyn Signer, role: Role, hash: &[u8]) -> Writer {
    let mut w = Writer::new();
    w.u8(HELLO_VERSION).put(config.network()).put(&config.epoch()).put(&config.digest());
    w.put(&signer.public_key()).put(&signer.sign(&signed_bytes(config, role, hash)));
    w
}

/// Runs the handshake on a fresh stream; on success returns the authenticated peer and the
/// encrypted halves. `expected` (for a dialer) is the member we meant to reach.
pub async fn handshake(
    mut stream: TcpStream,
    role: Role,
    config: &ConsensusConfig,
    signer: &dyn Signer,
    expected: Option<NodeId>,
    max_frame: usize,
) -> Result<(Identity, FrameReader, FrameWriter), HandshakeError> {
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

    // The dialer speaks first and the listener answers only a valid hello, so a refused dialer
    // learns nothing and fails its handshake (and backs off) instead of being cut off later.
    let identity = match role {
        Role::Dialer => {
            writer.send(hello(config, signer, role, &hash).as_slice()).await?;
            check_hello(&reader.recv().await?, config, signer, other(role), &hash, expected)?
        }
        Role::Listener => {
            let identity =
                check_hello(&reader.recv().await?, config, signer, other(role), &hash, expected)?;
            writer.send(hello(config, signer, role, &hash).as_slice()).await?;
            identity
        }
    };
    reader.set_max_frame(max_frame);
    Ok((identity, reader, writer))
}

/// Checks a peer's hello (decrypted): version, network, epoch, committee digest, membership,
/// and the signature over this channel's handshake hash. Public for the fuzz targets.
pub fn check_hello(
    bytes: &[u8],
    config: &ConsensusConfig,
    signer: &dyn Signer,
    their_role: Role,
    hash: &[u8],
    expected: Option<NodeId>,
) -> Result<Identity, HandshakeError> {
    let bad = |e: warpnet_types::CodecError| HandshakeError::Malformed(e.to_string());
    let mut r = Reader::new(bytes);
    let version = r.u8("hello version").map_err(bad)?;
    if version != HELLO_VERSION {
        return Err(HandshakeError::Version(version));
    }
    let network: NetworkId = r.get().map_err(bad)?;
    let epoch: Epoch = r.get().map_err(bad)?;
    let digest: Digest = r.get().map_err(bad)?;
    let key: PublicKey = r.get().map_err(bad)?;
    let signature: Signature = r.get().map_err(bad)?;
    r.finish().map_err(bad)?;
    if network != *config.network() {
        return Err(HandshakeError::WrongNetwork {
            got: network.to_string(),
            expected: config.network().to_string(),
        });
    }
    if epoch != config.epoch() {
        return Err(HandshakeError::WrongEpoch { got: epoch, expected: config.epoch() });
    }
    if digest != config.digest() {
        return Err(HandshakeError::WrongCommittee {
            got: digest.to_hex(),
            expected: config.digest().to_hex(),
        });
    }
    let node = config
        .node_id_of(&key)
        .ok_or_else(|| HandshakeError::NotInCommittee { key: key.to_hex() })?;
    let message = signed_bytes(config, their_role, hash);
    let item = SignedItem { key: &key, message: &message, signature: &signature };
    config.scheme().scheme().verify(item).map_err(|_| HandshakeError::BadSignature)?;
    if key == signer.public_key() {
        return Err(HandshakeError::SelfConnection);
    }
    if let Some(expected) = expected.filter(|&e| e != node) {
        return Err(HandshakeError::UnexpectedPeer { expected, got: node });
    }
    Ok(Identity { node, public_key: key })
}
