//! The WarpNet Consensus node: a tokio runtime around the pure core, with the redb store, the
//! authenticated transport, the HTTP API and metrics, and the node's files.

#![forbid(unsafe_code)]

pub mod api;
mod app;
pub mod files;
pub mod http;
pub mod metrics;
mod persist;
mod runtime;
pub mod verifier;

pub use runtime::{run, shutdown_signal, NodeError, CLAIM_TIMEOUT_DEFAULT_MS, FIRST_START_MARKER};
