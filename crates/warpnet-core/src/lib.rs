//! The pure 2-chain HotStuff core (Jolteon / DiemBFT-v4 rules) of WarpNet Consensus.
//!
//! No tokio, no clock, no randomness, no I/O: [`Input`]s in, [`Action`]s out.
//!
//! # Contract
//!
//! The runtime (node or simulator) owns storage, network and timers and drives one [`Core`]:
//!
//! 1. Build it from storage with [`Core::new`] ([`Recovery::genesis`] on first start), then call
//!    [`Core::start`].
//! 2. Feed every event through [`Core::handle`] with the current time in milliseconds (only used
//!    for block timestamps). Inputs are handled one at a time.
//! 3. Execute the returned [`Action`]s **in order**:
//!    - `PersistBlock` and `PersistSafety` MUST be made durable in that order; after a
//!      `PersistSafety { version }` is durable, feed `Input::SafetyPersisted { version }`.
//!      Group them: one durable write per step is enough.
//!    - `Commit` MUST be applied in the order given; each height arrives exactly once.
//!    - `SetTimer` replaces the earlier timer of the same kind.
//!    - `ServeSync` is answered from the block store with [`sync::respond`].
//!    - `Send`/`Broadcast` are best effort; `Rejected` and `Evidence` are for logs and metrics.
//!
//! A vote or timeout never appears in the actions before the safety data it depends on is
//! durable: the core seals it ([`safety::Sealed`]) and releases it only after
//! `SafetyPersisted` reports that version. A crash in between loses an unsent vote, never safety.
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

#![forbid(unsafe_code)]

pub mod collect;
mod core;
pub mod evidence;
pub mod io;
pub mod mempool;
pub mod params;
pub mod safety;
pub mod sync;
pub mod tree;

pub use crate::core::{Core, Recovery, StartError, Status, RECENT_COMMITTED_BLOCKS};
pub use evidence::{Equivocation, Statement};
pub use io::{Action, Input, Rejection, Timer};
pub use params::CoreParams;
#[cfg(feature = "mutations")]
pub use params::Mutation;
pub use safety::{SafetyData, SafetyError};
pub use tree::Committed;
