//! The pure 2-chain HotStuff core (Jolteon / DiemBFT-v4 rules) of WarpNet Consensus.
//!
//! No tokio, no clock, no randomness, no I/O: [`Input`]s in, one [`Step`] out for each.
//!
//! # Contract
//!
//! The runtime (node or simulator) owns storage, network and the clock and drives one
//! [`Core`], in the manner of raft-rs' `Ready`: events go in, one [`Step`] comes out of each.
//!
//! 1. Build it from storage with [`Core::new`] ([`Recovery::genesis`] on first start), then call
//!    [`Core::start`].
//! 2. Feed every event through [`Core::handle`] (peer messages, [`Input::Tick`] when the clock
//!    reaches the last step's `deadline_ms`, [`Input::Persisted`] when writes became durable,
//!    reachability reports) and client commands through [`Core::submit`], with the current time
//!    in milliseconds from a clock that never goes back. Inputs are handled one at a time.
//! 3. Execute each returned [`Step`] as its documentation says, before the next input: queue
//!    its [`Write`] for durability (FIFO, atomic per write; the loop does **not** wait for it),
//!    send its messages, answer its sync requests, log its evidence and rejections, and wake
//!    the core at its deadline. When a write is durable, feed `Input::Persisted { seq }`.
//!    A write's commits MUST be applied in the order given; each height arrives exactly once.
//!
//! Nothing a step asks to send depends on a write that is not yet durable: votes, timeouts and
//! a leader's own proposal are sealed ([`safety::Sealed`]) and released only by the step that
//! follows `Persisted` for the write carrying their safety data. A crash in between loses an
//! unsent message, never safety. So the loop can keep working while writes are in flight.
//!
//! [`Core::validate`] checks the replica's own invariants; every step ends with it as a debug
//! assertion, and the simulator calls it after every step of every replica.
//!
//! # Rules, as named in the code
//!
//! - S1a/S1b/S1c vote rules, S2 timeout rule, S3 re-send after restart, S4 one proposal per
//!   round (`safety.rs`, `core/proposal.rs`)
//! - C1 2-chain commit (`tree.rs`), Q1 batched quorum verification (`collect.rs`)
//! - P1 leader, P2 justification, P3 proposer signature, P4 payload limits, P5 pipelined
//!   proposing, P6 far-future rounds, P7 timestamps (`core/proposal.rs`, `core/timeout.rs`)
//! - PM0–PM6 pacemaker (`core/mod.rs`, `core/certs.rs`, `core/timeout.rs`, `params.rs`)
//! - E1 equivocation evidence (`evidence.rs`, `collect.rs`), Y1–Y4 sync (`core/sync.rs`,
//!   `sync.rs`); L1 leader rotation lives with the committee (`warpnet_types::config`)
//! - H1–H5 agreed health and LR1–LR5 leader reputation (`health.rs`, `core/reputation.rs`)

#![forbid(unsafe_code)]

pub mod collect;
mod core;
pub mod evidence;
pub mod health;
pub mod io;
pub mod mempool;
pub mod params;
pub mod safety;
pub mod sync;
pub mod tree;

pub use crate::core::{Core, CoreInvariant, Recovery, StartError, Status, RECENT_COMMITTED_BLOCKS};
pub use evidence::{Equivocation, Statement};
pub use io::{EpochChange, Input, Outgoing, Rejection, Step, Target, Timer, Write};
pub use params::CoreParams;
#[cfg(feature = "mutations")]
pub use params::Mutation;
pub use safety::{SafetyData, SafetyError};
pub use tree::Committed;
