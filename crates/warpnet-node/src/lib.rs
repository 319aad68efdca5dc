//! The WarpNet Consensus node: a tokio runtime around the pure core, with the redb store, the
//! authenticated transport, the HTTP API and metrics, and the node's files.
//!
//! The API is three layers: [`handle`] (what the consensus loop shares: state, submissions),
//! [`order`] (claims and read barriers ordered and waited for), and [`api`] (HTTP), with one
//! error type, [`error::ApiError`].

#![forbid(unsafe_code)]

pub mod api;
mod app;
pub mod committee;
mod engine;
pub mod error;
pub mod files;
pub mod handle;
mod health;
pub mod membership;
pub mod metrics;
pub mod order;
mod persist;
mod reach;
mod runtime;
pub mod verifier;

pub use runtime::{
    run, shutdown_signal, NodeError, CLAIM_TIMEOUT_DEFAULT_MS, FIRST_START_MARKER,
    RAFT_COMPACT_ENTRIES_DEFAULT, RAFT_TICK_DEFAULT_MS,
};
