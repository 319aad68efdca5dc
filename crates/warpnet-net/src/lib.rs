//! The transport between committee members: TCP, encrypted and mutually authenticated.
//!
//! **Handshake** (`handshake.rs`), bounded by a timeout:
//! 1. the dialer sends the magic `WARPNET1`, then both run Noise `NN_25519_ChaChaPoly_BLAKE2s`
//!    (an encrypted channel with fresh ephemeral keys, not yet authenticated);
//! 2. the dialer, then (only if the dialer's was valid and its key admitted) the listener, sends
//!    an encrypted hello: wire version, network id, the network's genesis digest, its Ed25519
//!    public key, a purpose (connect, or probe: a dial-back check that closes at once), and its
//!    signature over (`TAG_TRANSPORT`, network, genesis digest, its role, the purpose, the
//!    Noise handshake hash). The hash binds the signature to this very channel, so a man in
//!    the middle, who runs two handshakes with two different hashes, cannot relay it; the role
//!    stops reflection; the genesis digest keeps networks with different genesis files apart
//!    and is the same in every epoch (members of two epochs still talk, to exchange proofs).
//! 3. the listener admits only its peers' keys (the current committee, candidates whose
//!    admission is pending, members that left lately: [`Transport::set_peers`]); a dialer
//!    accepts only the key it meant to reach. Anything else is refused and logged.
//!
//! **Frames** (`wire.rs`): a consensus frame (`Message::to_frame`, at most `MESSAGE_BYTES_MAX`)
//! is sent as `u32 length ‖ bytes`, cut into Noise messages of at most 65,535 bytes, each
//! prefixed by its `u16` length. A declared length over the maximum closes the connection
//! before anything is allocated; a frame that does not decode is dropped and counted. An empty
//! frame is a heartbeat.
//!
//! **Liveness** (`peer.rs`): an idle connection carries a heartbeat every 200 ms; a
//! connection on which nothing arrives for 1 s (`SILENCE_MAX`: no frame, no heartbeat, or one
//! Noise message of at most 64 KiB taking longer) is declared dead, logged ("member
//! unreachable") and closed, so a silent partition (packets dropped, no reset) is seen within
//! 1 s. A member that must dial us but has not is woken: we dial it, it authenticates us, resets
//! its backoff (which belonged to our previous incarnation) and dials at once.
//!
//! **Connections** (`transport.rs`, `peer.rs`): the peer with the lower key dials, the other accepts, so
//! there is one connection per pair; at most 64 handshakes run at once; a write over 10 s
//! closes the connection. Each peer has a bounded send queue that survives reconnections; when
//! it is full, the newest message is dropped and counted (consensus
//! tolerates loss: timeouts are re-broadcast and missing blocks fetched). Dialing retries with
//! exponential backoff. Incoming messages go to the consensus loop through a bounded channel;
//! a slow consumer slows only the sockets feeding it, and a slow or dead peer only fills its
//! own queue: nothing here ever blocks the consensus loop.

#![forbid(unsafe_code)]

mod handshake;
mod peer;
mod transport;
mod wire;

pub use handshake::{
    check_hello, handshake, hello_bytes, Admits, HandshakeError, Identity, Purpose, Role, Side,
    TAG_TRANSPORT,
};
pub use transport::{
    probe, Peer, Stats, Transport, TransportConfig, HEARTBEAT_INTERVAL, SILENCE_MAX,
};
pub use wire::{FrameReader, FrameWriter, WireError, MAGIC};
