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
    #[error("the disk is full ({operation}: {detail}): nothing more can be made durable; free space, then restart the node")]
    DiskFull { operation: &'static str, detail: String },
    #[error("fsync failed ({detail}): what the disk holds is unknown, so the store takes no more writes (an fsync is never retried)")]
    SyncFailed { detail: String },
    #[error("a durable write failed earlier ({first}): the store takes no more writes")]
    Poisoned { first: String },
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
    #[error(
        "a write-ahead log record of {bytes} bytes is larger than the {max} bytes the log takes"
    )]
    RecordTooLarge { bytes: usize, max: usize },
    #[error("raft log append at {index} leaves a gap (last {last}, snapshot {snapshot})")]
    LogGap { index: u64, last: u64, snapshot: u64 },
}

/// Wraps a redb error with the operation that failed; a full disk says so.
pub(crate) fn db<E: Into<redb::Error>>(operation: &'static str) -> impl Fn(E) -> StoreError {
    move |e| {
        let e: redb::Error = e.into();
        let full =
            matches!(&e, redb::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull);
        let detail = e.to_string();
        if full {
            StoreError::DiskFull { operation, detail }
        } else {
            StoreError::Db { operation, detail }
        }
    }
}
