//! A replica's durable storage, on redb (pure Rust, ACID, copy-on-write B-trees, no C++ build).
//!
//! What it holds, in five tables:
//! - `meta`: schema version, the committee's digest (a store belongs to one committee), and the
//!   safety data (canonical encoding, see `warpnet_core::SafetyData`);
//! - `pending`: blocks received but not committed, by id;
//! - `blocks`: committed blocks, by id;
//! - `chain`: the committed chain by height: block id and the QC certifying that block;
//! - `app`: the state machine's key/values, written in the same transaction as the commits
//!   that produced them (the user-ID registry of `warpnet-state`).
//!
//! **Group commit.** The runtime gathers what one step of the core asks to persist into a
//! [`Batch`] and writes it with [`Store::write`]: one record of the write-ahead log, made
//! durable (one `fdatasync`) before `write` returns, then one redb transaction without an
//! fsync of its own, checkpointed now and then (`logged.rs`, rules W1–W3). One durable write
//! per step, not per message; only then may the runtime feed `Persisted` to the core.
//!
//! Raft mode has its own store in its own file, [`RaftStore`] (`raft_store.rs`), with its
//! log on the write-ahead log below (records: `raft_record.rs`).
//!
//! **Write-ahead log.** [`Wal`] (`wal.rs`) is an append-only record log with one `fdatasync`
//! per append, torn-tail recovery and segment release; `logged.rs` keeps either store's redb
//! behind it (the HotStuff store's records: `store_record.rs`).
//!
//! **Trust.** Every read checks what it decodes; a record that does not decode, a commit that
//! does not extend the stored chain, or a store of another committee is a [`StoreError`], and
//! the node stops rather than carry on with state it cannot trust.
//!
//! **Failed writes are final.** A full disk is [`StoreError::DiskFull`]; after any failed
//! durable write the store refuses every later one ([`StoreError::Poisoned`]): an fsync that
//! failed is never retried. A test-only switch ([`FAIL_SYNC_ENV`]) fails one write as a failed
//! fsync would.

#![forbid(unsafe_code)]

mod error;
mod logged;
mod raft_record;
mod raft_store;
mod store;
mod store_record;
pub mod wal;

pub use error::StoreError;
pub use logged::{wal_dir, LogOptions};
pub use raft_store::{RaftBatch, RaftStore};
pub use store::{sync_dir, AppSnapshot, Batch, Store, FAIL_SYNC_ENV};
pub use wal::{Wal, WalCut, WalOptions, WalRecord};
