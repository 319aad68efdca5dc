//! The Raft engine of WarpNet Consensus: tikv's raft-rs (`RawNode`) inside a pure state machine
//! with no tokio, no clock and no I/O. Inputs in ([`Input`]), actions out ([`Action`]).
//!
//! # The contract
//!
//! Feed every input to [`RaftEngine::handle`]. It either refuses the input with a
//! [`RaftError`] (nothing changed) or returns actions, which the runtime MUST execute in the
//! order given, before it feeds the next input:
//!
//! 1. **`Persist(write)`**: make `write` durable. Durable effects (every `Persist` and every
//!    `Apply`'s state-machine writes) become durable **in the order they were emitted**: after
//!    a crash the disk holds a prefix of them, never a later one without an earlier one (one
//!    transaction per step does this; so does a FIFO). Once `write` and every write before it
//!    are durable, feed `Input::Persisted(write.id)`. Until then the engine holds back every
//!    message produced after the write (votes and append acknowledgements vouch for it, a
//!    leader's appends to private members carry it: RF2, RF12); DO NOT report a write durable
//!    that is not.
//! 2. **`Send(message)`**: send to `message.to()`, best effort (loss, duplication and
//!    reordering are tolerated). Every write emitted before it is already durable, except
//!    under a leader's message to a public voter (RF12: it replicates while the leader
//!    writes, unless a membership change is in flight, RF15) and a forwarded proposal or read-index request (they vouch for no write).
//! 3. **`Apply(applied)`**: committed entries, in index order, each index exactly once per
//!    incarnation, only ever entries that are durable in the local log (RF3). Apply it to the
//!    state machine and record `applied.index()` (and, for `Membership`/`Snapshot`, the
//!    membership) durably with its effects, in the same order as the other durable effects.
//!    After a restart, entries above the durable applied index are delivered again.
//! 4. **`ReadReady { id, index }`**: read `id` is linearizable once the state machine has
//!    applied `index` (RF8); **`ReadFailed { id }`**: it is not; the client may retry.
//!
//! At start, hand [`RaftEngine::new`] what the disk holds ([`Recovery`]); a disk that does not
//! hold together is a [`RecoveryError`] and the node stops.
//!
//! # Rules (named where they are enforced; see docs/architecture.md, "Raft mode")
//!
//! RF1 only public voters campaign (and receive leadership); RF2 persist before
//! acknowledging (RF2b: a write of the commit index alone vouches for nothing); RF3 apply committed, durable entries in order, once; RF4 membership changes
//! by the leader, through the log, one at a time; RF5 never without a public voter; RF6 a
//! leader never removes itself, a member being removed does not campaign, a leader that
//! applies its own removal steps down; RF7 compaction behind a durable snapshot that
//! carries the membership; RF8 reads through ReadIndex; RF9 deterministic election timeouts;
//! RF10 messages only from the authenticated sender, of kinds peers may send; RF11 a committee
//! with no reachable public voter says so; RF12 a leader replicates to public voters while it
//! writes, to private members only after (forwarded proposals and reads vouch for nothing);
//! RF15 but to nobody before its write while a membership change is in flight.

#![forbid(unsafe_code)]
// raft-rs's protobuf types are built field by field, as raft-rs itself does.
#![allow(clippy::field_reassign_with_default)]

mod apply;
pub mod codec;
mod convert;
mod election;
mod engine;
mod error;
mod membership;
pub mod message;
mod mirror;
mod params;
pub mod types;

pub use election::{Health, RaftStatus};
pub use engine::{Action, Applied, EngineConfig, Input, LogWrite, RaftEngine};
pub use error::{RaftError, RecoveryError};
pub use message::RaftMessage;
#[cfg(feature = "mutations")]
pub use params::Mutation;
pub use params::RaftParams;
pub use types::{
    EntryKind, HardState, Index, LogEntry, Member, Membership, ReadId, Recovery, Role, Snapshot,
    SnapshotMeta, Term, WriteId, GENESIS_INDEX, GENESIS_TERM,
};
