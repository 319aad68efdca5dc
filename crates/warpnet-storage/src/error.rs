//! Why the store refused to open, read or write.

use std::path::PathBuf;

/// A storage failure. Every variant means the node must stop: its disk can no longer be trusted
/// to hold what it acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}: {detail}")]
    Open { path: PathBuf, detail: String },
    #[error("no database at {path}")]
    Missing { path: PathBuf },
    #[error("a database already exists at {path}")]
    Exists { path: PathBuf },
    #[error("database {operation} failed: {detail}")]
    Db { operation: &'static str, detail: String },
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("the database belongs to committee {stored}, this node runs committee {expected}")]
    CommitteeMismatch { stored: String, expected: String },
    #[error("database schema version {found}; this build reads version {supported}")]
    Schema { found: u8, supported: u8 },
    #[error(
        "commit of height {height} does not extend the stored chain (tip {tip}, parent {parent})"
    )]
    NotExtending { height: u64, tip: u64, parent: String },
    #[error("raft log append at {index} leaves a gap (last {last}, snapshot {snapshot})")]
    LogGap { index: u64, last: u64, snapshot: u64 },
}

/// Wraps a redb error with the operation that failed.
pub(crate) fn db<E: std::fmt::Display>(operation: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Db { operation, detail: e.to_string() }
}
