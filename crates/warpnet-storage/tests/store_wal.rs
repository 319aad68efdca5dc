//! The HotStuff store behind its write-ahead log (W1-W5): every acknowledged step is back
//! after redb lost everything since its last durable checkpoint, a torn last record leaves
//! exactly the steps before it, a step reported durable before redb has it is durable
//! already, a due checkpoint waits for the writer's call, and a log lost or cut below the
//! checkpoint is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{chain, committee, TempDir};
use warpnet_core::{Committed, SafetyData};
use warpnet_storage::wal::WalOptions;
use warpnet_storage::{wal_dir, Batch, LogOptions, Store, StoreError};
use warpnet_types::{Block, ConsensusConfig, QuorumCertificate, Round};

/// A committee and a certified chain of `len` blocks on genesis, as one step per block: the
/// block, the safety data after voting for it, and the commit of the block before it.
fn steps(len: u64) -> (ConsensusConfig, Vec<Batch>) {
    let (c, s) = committee();
    let mut out = Vec::new();
    let mut before: Option<(Block, QuorumCertificate)> = None;
    for (h, (b, qc)) in (1..).zip(chain(&c, &s, len)) {
        // The safety data after voting for block h: its justification is the highest QC.
        let safety = SafetyData {
            last_voted_round: Round(h),
            high_qc: b.justify().clone(),
            ..SafetyData::initial(&c)
        };
        let commits = before
            .take()
            .map(|(block, certificate)| vec![Committed { block, certificate }])
            .unwrap_or_default();
        let app = vec![(format!("k{h}").into_bytes(), vec![h as u8])];
        out.push(Batch {
            blocks: vec![b.clone()],
            safety: Some(safety),
            commits,
            app,
            epochs: vec![],
        });
        before = Some((b, qc));
    }
    (c, out)
}

/// What a store holds that the steps wrote: committed height, safety data, app values.
fn state(store: &Store, c: &ConsensusConfig, upto: u64) -> (u64, Round, Vec<Option<Vec<u8>>>) {
    let r = store.recovery(c).unwrap();
    let app = (1..=upto).map(|h| store.app_get(format!("k{h}").as_bytes()).unwrap()).collect();
    (store.committed_height().unwrap().0, r.safety.last_voted_round, app)
}

/// Opens a fresh store, closes it, and keeps a copy of its database as it is on disk then:
/// restoring that copy later stands for redb losing everything written after it.
fn create_and_save(dir: &TempDir, c: &ConsensusConfig, opts: LogOptions) {
    drop(Store::create_with(&dir.db(), c, opts).unwrap());
    std::fs::copy(dir.db(), dir.join("saved.redb")).unwrap();
}

const NO_CHECKPOINT: LogOptions =
    LogOptions { wal: WalOptions { segment_bytes: 64 << 20 }, checkpoint_every: 1_000_000 };

#[test]
fn w3_every_acknowledged_step_is_replayed_after_redb_lost_it() {
    let dir = TempDir::new("store-wal");
    let (c, steps) = steps(6);
    create_and_save(&dir, &c, NO_CHECKPOINT);
    let before = {
        let store = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).unwrap();
        for b in &steps {
            store.write(b).unwrap();
        }
        state(&store, &c, 6)
    };
    assert_eq!(before.0, 5);
    std::fs::copy(dir.join("saved.redb"), dir.db()).unwrap();
    let store = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).unwrap();
    assert_eq!(state(&store, &c, 6), before, "redb from genesis plus the log = every step");
    // The replay was made durable: with the log gone now, redb alone holds it.
    drop(store);
    let store = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).unwrap();
    assert_eq!(state(&store, &c, 6), before);
}

/// Copies the files of directory `from` into a new directory `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A crash as of now: the log as it is, redb as saved by `create_and_save` (it lost every step
/// since); returns the database path of that copy, under `crash/`.
fn crash_copy(dir: &TempDir) -> std::path::PathBuf {
    let crash = dir.join("crash").join("node.redb");
    copy_dir(&wal_dir(&dir.db()), &wal_dir(&crash));
    std::fs::copy(dir.join("saved.redb"), &crash).unwrap();
    crash
}

#[test]
fn w4_a_step_reported_synced_survives_a_crash_before_redb_has_it() {
    let dir = TempDir::new("store-wal-w4");
    let (c, steps) = steps(6);
    create_and_save(&dir, &c, NO_CHECKPOINT);
    let mut crash = None;
    let store = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).unwrap();
    for b in &steps[..5] {
        store.write(b).unwrap();
    }
    let mut reported = 0;
    store
        .write_reporting(&steps[5], &mut || {
            reported += 1;
            // Not readable yet: the engines serve it from memory until `write` returns.
            assert_eq!(store.app_get(b"k6").unwrap(), None, "readable before the commit");
            // A crash now: redb lost everything (its genesis copy), the log is as it is.
            crash = Some(crash_copy(&dir));
        })
        .unwrap();
    assert_eq!(reported, 1, "synced is reported once per write");
    assert_eq!(store.app_get(b"k6").unwrap(), Some(vec![6]), "readable once written");
    let after = state(&store, &c, 6);
    drop(store);
    let recovered = Store::open_with(&crash.unwrap(), &c, NO_CHECKPOINT).unwrap();
    assert_eq!(state(&recovered, &c, 6), after, "every step reported synced, step 6 too");
}

#[test]
fn w1_a_step_that_does_not_extend_the_chain_never_reaches_the_log() {
    let dir = TempDir::new("store-wal-w1-check");
    let (c, steps) = steps(5);
    create_and_save(&dir, &c, NO_CHECKPOINT);
    let store = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).unwrap();
    for b in &steps[..2] {
        store.write(b).unwrap();
    }
    let before = state(&store, &c, 5);
    // Step 4 commits block 3 on a tip at block 1: refused before anything is written.
    let mut reported = false;
    let err = store.write_reporting(&steps[3], &mut || reported = true).unwrap_err();
    assert!(matches!(err, StoreError::NotExtending { height: 3, tip: 1, .. }), "{err}");
    assert!(!reported, "a refused step is never reported synced");
    assert_eq!(state(&store, &c, 5), before, "the refused step changed nothing");
    // A crash now: had the record reached the log, replaying it would fail the open.
    let recovered = Store::open_with(&crash_copy(&dir), &c, NO_CHECKPOINT).unwrap();
    assert_eq!(state(&recovered, &c, 5), before, "exactly the two steps written");
    // And the store goes on with the steps in order.
    for b in &steps[2..] {
        store.write(b).unwrap();
    }
    assert_eq!(state(&store, &c, 5).0, 4);
}

#[test]
fn w1_a_torn_last_record_leaves_exactly_the_steps_before_it() {
    let dir = TempDir::new("store-wal");
    let (c, steps) = steps(4);
    create_and_save(&dir, &c, NO_CHECKPOINT);
    let after_three = {
        let store = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).unwrap();
        for b in &steps[..3] {
            store.write(b).unwrap();
        }
        let s = state(&store, &c, 4);
        store.write(&steps[3]).unwrap();
        s
    };
    // The crash cut the last record short, and redb had nothing since genesis.
    let segment = std::fs::read_dir(wal_dir(&dir.db())).unwrap().next().unwrap().unwrap().path();
    let bytes = std::fs::read(&segment).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    std::fs::write(&segment, &bytes[..end - 10]).unwrap();
    std::fs::copy(dir.join("saved.redb"), dir.db()).unwrap();
    let store = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).unwrap();
    assert_eq!(state(&store, &c, 4), after_three);
    // And the store goes on from there.
    store.write(&steps[3]).unwrap();
    assert_eq!(state(&store, &c, 4).0, 3);
}

#[test]
fn w2_checkpoints_release_the_log_and_a_lost_log_is_refused() {
    let dir = TempDir::new("store-wal");
    let (c, steps) = steps(9);
    let opts = LogOptions { wal: WalOptions { segment_bytes: 4096 }, checkpoint_every: 3 };
    let store = Store::create_with(&dir.db(), &c, opts).unwrap();
    for b in &steps[..8] {
        store.write(b).unwrap();
    }
    let expected = state(&store, &c, 9);
    drop(store);
    let segments = std::fs::read_dir(wal_dir(&dir.db())).unwrap().count();
    assert!(segments <= 2, "segments below the checkpoint are released: {segments}");
    // Reopening replays only what follows the last checkpoint (6): records 7 and 8.
    let store = Store::open_with(&dir.db(), &c, opts).unwrap();
    assert_eq!(state(&store, &c, 9), expected);
    store.write(&steps[8]).unwrap();
    drop(store);

    std::fs::remove_dir_all(wal_dir(&dir.db())).unwrap();
    let err = Store::open_with(&dir.db(), &c, opts).err().expect("a lost log is refused");
    assert!(matches!(err, StoreError::Corrupt { what: "write-ahead log", .. }), "{err}");
}

#[test]
fn a_lost_log_is_refused_even_before_the_first_checkpoint() {
    let dir = TempDir::new("store-wal");
    let (c, steps) = steps(2);
    create_and_save(&dir, &c, NO_CHECKPOINT);
    {
        let store = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).unwrap();
        store.write(&steps[0]).unwrap();
    }
    // A crash before the first checkpoint (redb holds nothing of the step), and the log gone:
    // the step exists nowhere, so the store must not open as if it had never been taken.
    std::fs::copy(dir.join("saved.redb"), dir.db()).unwrap();
    std::fs::remove_dir_all(wal_dir(&dir.db())).unwrap();
    let err = Store::open_with(&dir.db(), &c, NO_CHECKPOINT).err().expect("refused");
    assert!(matches!(err, StoreError::Corrupt { what: "write-ahead log", .. }), "{err}");
}

#[test]
fn a_new_store_refuses_a_log_left_beside_it() {
    let dir = TempDir::new("store-wal");
    let (c, steps) = steps(1);
    {
        let store = Store::create(&dir.db(), &c).unwrap();
        store.write(&steps[0]).unwrap();
    }
    std::fs::remove_file(dir.db()).unwrap();
    let err = Store::create(&dir.db(), &c).err().expect("refused");
    assert!(matches!(err, StoreError::Exists { .. }), "{err}");
}

/// W5: a write never checkpoints; the due checkpoint waits for its caller, and a crash before
/// it keeps every step (the log holds them).
#[test]
fn w5_a_due_checkpoint_waits_for_the_caller_and_a_crash_before_it_loses_nothing() {
    let dir = TempDir::new("store-wal-w5");
    let (c, steps) = steps(4);
    let opts = LogOptions { wal: WalOptions { segment_bytes: 64 << 20 }, checkpoint_every: 3 };
    create_and_save(&dir, &c, opts);
    let store = Store::open_with(&dir.db(), &c, opts).unwrap();
    for b in &steps[..3] {
        store.write_reporting(b, &mut || ()).unwrap();
    }
    assert_eq!(store.checkpointed().unwrap(), 0, "three steps written, none checkpointed");
    // A crash now (before the checkpoint): every step comes back from the log.
    let written = state(&store, &c, 3);
    let recovered = Store::open_with(&crash_copy(&dir), &c, opts).unwrap();
    assert_eq!(state(&recovered, &c, 3), written, "the steps before the checkpoint");
    drop(recovered);
    assert!(store.checkpoint_if_due().unwrap(), "due after three records");
    assert_eq!(store.checkpointed().unwrap(), 3);
    assert!(!store.checkpoint_if_due().unwrap(), "not due again right after");
    // `write` (no caller to leave it to) still checkpoints.
    store.write(&steps[3]).unwrap();
    assert_eq!(store.checkpointed().unwrap(), 3, "one record since: not due");
}
