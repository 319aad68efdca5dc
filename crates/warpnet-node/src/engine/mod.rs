//! The engine boundary: what the node's loop asks of a consensus engine, whichever the network
//! runs. "Order these commands; tell me, durably and in order, what committed", plus read
//! barriers, membership changes and status. Two engines plug in:
//!
//! - [`hotstuff::HotStuff`]: `warpnet-core`'s `Core` (Byzantine-fault tolerant), its `Step`s
//!   executed with the writer thread and the block `Store`. Rounds, certificates, sealing,
//!   sync and epochs stay in there.
//! - [`raft::Raft`]: `warpnet-raft`'s engine (crash-fault tolerant, raft-rs inside), its
//!   actions executed with the same writer thread and the `RaftStore`. Terms, the log,
//!   ReadIndex, snapshots and voters stay in there.
//!
//! The runtime (`runtime.rs`) owns the transport, the clock, the verifier and the API's
//! queue, and hands each event to the engine with [`Io`]. Every engine keeps the node's
//! promises the same way: a committed command is applied to the registry in order, on the
//! state its predecessors left (`app::apply_commands`), its writes join the engine's own durable
//! write, and the request waiting for it is answered only once that write is durable.

pub mod hotstuff;
pub mod raft;
mod raft_apply;
mod raft_control;
mod raft_pieces;
pub mod raft_roster;
mod raft_stages;
pub mod raft_voters;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use warpnet_net::{Peer, Transport};
use warpnet_state::Outcome;
use warpnet_types::{ConsensusConfig, Digest, Message, PublicKey};

use crate::handle::{Committee, Control, Refused, Reply, Request, Shared};
use crate::persist::Durable;
use crate::runtime::{Clock, NodeError};
use crate::verifier::{Checked, Verifier};

/// What the runtime lends an engine for one event: the world it acts on, the same for both.
pub struct Io {
    /// This node's key (its index, if any, depends on the epoch: ask the engine's committee).
    pub me: PublicKey,
    pub clock: Clock,
    pub transport: Transport,
    pub shared: Arc<Shared>,
    pub verifier: Verifier,
    pub started: Instant,
}

/// A consensus engine driven by the node's loop. Each method handles one event completely
/// (its writes queued for the writer thread, its messages sent) before the loop takes the
/// next; an `Err` stops the node.
pub trait Engine {
    /// Completions of the engine's own background work (Raft: a registry snapshot read for
    /// compaction), delivered through [`Engine::on_event`].
    type Event: Send + 'static;

    /// The committee the engine runs now.
    fn committee(&self) -> Arc<ConsensusConfig>;
    /// Who the transport talks to now (the committee, and whoever else the engine needs).
    fn peers(&self, now_ms: u64) -> Vec<Peer>;
    /// The committee as `GET /v1/members` shows it.
    fn committee_view(&self, connected: &[PublicKey]) -> Committee;
    /// An operator's or a candidate's request about the committee.
    fn on_control(&mut self, io: &mut Io, control: Control) -> Result<(), NodeError>;
    /// The engine is done (a removed member that lingered, EP5): the node stops.
    fn finished(&self, _now_ms: u64) -> bool {
        false
    }
    /// The first step, once the loop runs.
    fn start(&mut self, io: &mut Io) -> Result<(), NodeError>;
    /// A peer's frame; the transport authenticated `from`.
    fn on_message(
        &mut self,
        io: &mut Io,
        from: PublicKey,
        message: Message,
    ) -> Result<(), NodeError>;
    /// Requests from the API, in arrival order.
    fn on_requests(&mut self, io: &mut Io, requests: Vec<Request>) -> Result<(), NodeError>;
    /// Work the verifier thread finished.
    fn on_checked(&mut self, io: &mut Io, checked: Checked) -> Result<(), NodeError>;
    /// Every write up to `seq` is durable, not yet readable from the store (W4): release
    /// what waits only for durability (Raft mode's acknowledgements; HotStuff mode's writer
    /// does not report this, its core hears `Persisted` at [`Engine::on_durable`]).
    fn on_synced(&mut self, io: &mut Io, seq: u64) -> Result<(), NodeError>;
    /// Every write up to `durable.seq` is durable and readable from the store: answer what
    /// reads it, and stop serving those writes from memory.
    fn on_durable(&mut self, io: &mut Io, durable: Durable) -> Result<(), NodeError>;
    /// The clock reached [`Engine::deadline_ms`].
    fn on_deadline(&mut self, io: &mut Io) -> Result<(), NodeError>;
    fn on_event(&mut self, io: &mut Io, event: Self::Event) -> Result<(), NodeError>;
    /// When to call [`Engine::on_deadline`] next.
    fn deadline_ms(&self) -> Option<u64>;
    /// After every event: tell the engine who the transport lost or regained, and publish
    /// the status the API reads.
    fn after_event(&mut self, io: &mut Io) -> Result<(), NodeError>;
    /// Once a second: forgets requests whose client stopped waiting (timed out or hung up),
    /// and whatever housekeeping the engine does (HotStuff: peers, dial-backs, the view).
    fn prune(&mut self, io: &mut Io) -> Result<(), NodeError>;
    /// Lets the queued writes become durable (or fail), then stops the writer thread.
    fn stop(&mut self);
}

/// Requests waiting for their command's outcome, by command digest (a retry of the same
/// command waits with the first).
#[derive(Default)]
pub struct Waiters(HashMap<Digest, Vec<Reply>>);

impl Waiters {
    pub fn wait(&mut self, digest: Digest, reply: Reply) {
        self.0.entry(digest).or_default().push(reply);
    }

    /// Answers every request waiting for `digest`.
    pub fn answer(&mut self, digest: &Digest, outcome: &Outcome) {
        for w in self.0.remove(digest).into_iter().flatten() {
            let _ = w.send(Ok(outcome.clone()));
        }
    }

    pub fn prune(&mut self) {
        self.0.retain(|_, ws| {
            ws.retain(|w| !w.is_closed());
            !ws.is_empty()
        });
    }
}

/// The largest entry Raft mode proposes or accepts forwarded: a batch of commands.
pub fn raft_entry_bytes_max() -> usize {
    raft_apply::ENTRY_BYTES_MAX * 2
}

/// Answers a request the engine cannot take.
pub fn refuse(reply: Reply, why: Refused) {
    let _ = reply.send(Err(why));
}
