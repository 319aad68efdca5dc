//! The Raft store on its write-ahead log (RF16–RF18): a crash keeps exactly the durable prefix
//! of the steps, whatever the torn last append left; checkpoints release the log; a lost log
//! is refused.

use std::path::{Path, PathBuf};

use warpnet_raft::{EntryKind, HardState, LogEntry, LogWrite, Member, Membership, Recovery};
use warpnet_storage::{LogOptions, RaftBatch, RaftStore, StoreError, WalOptions};
use warpnet_types::NodeId;

const ID: &[u8] = b"test-committee";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warpnet-raft-wal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn genesis() -> Recovery {
    Recovery::genesis(Membership::new(
        (0..3).map(|i| Member { id: NodeId(i), public: true }).collect(),
    ))
}

/// Step `i` (from 2): appends entry `i`, commits and applies `i - 1`, writes key `k{i % 3}`.
fn step(i: u64) -> RaftBatch {
    let entry = LogEntry {
        index: i,
        term: 2,
        kind: EntryKind::Normal,
        data: vec![i as u8; 40],
        context: Vec::new(),
    };
    RaftBatch {
        writes: vec![LogWrite {
            entries: vec![entry],
            hard_state: Some(HardState { term: 2, vote: Some(NodeId(0)), commit: i - 1 }),
            ..LogWrite::default()
        }],
        app_reset: false,
        app: vec![(format!("k{}", i % 3).into_bytes(), format!("v{i}").into_bytes())],
        applied: Some((i - 1, None)),
    }
}

/// Everything a reopened store gives back, comparable.
fn state(store: &RaftStore) -> String {
    format!("{:?} {:?}", store.recovery().expect("recovery"), store.app_entries().expect("app"))
}

/// What the disk holds right now, as a crash (kill -9) would leave it: the files as written,
/// with redb's unsynced commits not made durable by a clean close.
fn crash_copy(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to.join("raft.wal")).expect("dir");
    std::fs::copy(from.join("raft.redb"), to.join("raft.redb")).expect("copy db");
    for f in std::fs::read_dir(from.join("raft.wal")).expect("wal dir") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, to.join("raft.wal").join(f.file_name().expect("name"))).expect("copy");
    }
}

/// The only segment of the log in `d`, and where its last record starts and ends.
fn last_record(d: &Path) -> (PathBuf, usize, usize) {
    let mut segs: Vec<_> = std::fs::read_dir(d.join("raft.wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .collect();
    segs.sort();
    let seg = segs.pop().expect("a segment");
    let bytes = std::fs::read(&seg).expect("read");
    let (mut at, mut last) = (16usize, None);
    loop {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
        if len == 0 {
            break;
        }
        last = Some((at, at + 8 + len));
        at += 8 + len;
    }
    let (start, end) = last.expect("a record");
    (seg, start, end)
}

/// A way a crash can leave the last record.
type Damage = Box<dyn Fn(&mut Vec<u8>)>;

fn opts(checkpoint_every: u64, segment_bytes: u64) -> LogOptions {
    LogOptions { wal: WalOptions { segment_bytes }, checkpoint_every }
}

#[test]
fn a_torn_last_append_recovers_exactly_the_durable_prefix() {
    let d = dir("torn");
    let o = opts(1_000, 64 << 20);
    let store = RaftStore::create_with(&d.join("raft.redb"), ID, &genesis(), o).expect("create");
    for i in 2..6 {
        store.write(&step(i)).expect("write");
    }
    let before = state(&store);
    store.write(&step(6)).expect("write");
    let after = state(&store);
    let (pristine, crashed) = (d.join("pristine"), d.join("crashed"));
    crash_copy(&d, &pristine);
    drop(store);
    crash_copy(&pristine, &crashed);
    let (seg, start, end) = last_record(&crashed);
    let intact = std::fs::read(&seg).expect("read");

    // The whole last record on disk: all of it comes back.
    let s = RaftStore::open_with(&crashed.join("raft.redb"), ID, o).expect("open");
    assert_eq!(state(&s), after);
    drop(s);

    // A torn last append, every way a crash can leave it: cut short, zeroed, a flipped byte.
    let torn: [(&str, Damage); 5] = [
        ("cut in its frame", Box::new(move |b| b.truncate(start + 6))),
        ("cut in its data", Box::new(move |b| b.truncate(end - 3))),
        ("zeroed", Box::new(move |b| b[start..end].fill(0))),
        ("a flipped data byte", Box::new(move |b| b[end - 5] ^= 0x40)),
        ("a flipped length", Box::new(move |b| b[start] ^= 0x01)),
    ];
    for (what, damage) in torn {
        crash_copy(&pristine, &crashed);
        let mut bytes = intact.clone();
        damage(&mut bytes);
        std::fs::write(&seg, &bytes).expect("write");
        let s = RaftStore::open_with(&crashed.join("raft.redb"), ID, o).expect(what);
        assert_eq!(state(&s), before, "{what}: the durable prefix, nothing more or less");
        // The cut is final: the next step lands where the torn one was, and survives.
        s.write(&step(6)).expect("write after the cut");
        drop(s);
        let s = RaftStore::open_with(&crashed.join("raft.redb"), ID, o).expect(what);
        assert_eq!(state(&s), after, "{what}: rewritten after the cut");
    }
}

#[test]
fn checkpoints_release_the_log_and_a_crash_replays_only_after_them() {
    let d = dir("checkpoint");
    // A checkpoint every 3 steps; segments of about 2 records.
    let o = opts(3, 300);
    let store = RaftStore::create_with(&d.join("raft.redb"), ID, &genesis(), o).expect("create");
    for i in 2..40 {
        store.write(&step(i)).expect("write");
    }
    let expected = state(&store);
    let crashed = d.join("crashed");
    crash_copy(&d, &crashed);
    drop(store);
    let segments = std::fs::read_dir(crashed.join("raft.wal")).expect("dir").count();
    assert!(segments <= 3, "released segments behind the checkpoints, {segments} left");
    let s = RaftStore::open_with(&crashed.join("raft.redb"), ID, o).expect("open");
    assert_eq!(state(&s), expected);
    drop(s);
    let s = RaftStore::open_with(&d.join("raft.redb"), ID, o).expect("open after a clean close");
    assert_eq!(state(&s), expected);
}

#[test]
fn a_lost_log_is_refused() {
    let d = dir("lost");
    let o = opts(2, 64 << 20);
    let store = RaftStore::create_with(&d.join("raft.redb"), ID, &genesis(), o).expect("create");
    for i in 2..6 {
        store.write(&step(i)).expect("write");
    }
    drop(store);
    std::fs::remove_dir_all(d.join("raft.wal")).expect("remove log");
    let err = RaftStore::open_with(&d.join("raft.redb"), ID, o).err().expect("refused");
    assert!(matches!(err, StoreError::Corrupt { what: "write-ahead log", .. }), "{err}");
}

#[test]
fn a_failed_log_sync_poisons_the_store_and_loses_nothing_acknowledged() {
    let d = dir("poison");
    let o = opts(1_000, 64 << 20);
    let store = RaftStore::create_with(&d.join("raft.redb"), ID, &genesis(), o).expect("create");
    store.write(&step(2)).expect("write");
    let acknowledged = state(&store);
    store.fail_sync_after(1);
    assert!(matches!(store.write(&step(3)), Err(StoreError::SyncFailed { .. })));
    assert!(matches!(store.write(&step(3)), Err(StoreError::Poisoned { .. })));
    // The failed step never reached redb's committed state.
    assert_eq!(state(&store), acknowledged);
}

/// W5, Raft mode's store: `write_reporting` leaves a due checkpoint to its caller; `write`
/// takes it.
#[test]
fn a_due_checkpoint_waits_for_the_caller() {
    let d = dir("w5");
    let o = opts(3, 64 << 20);
    let store = RaftStore::create_with(&d.join("raft.redb"), ID, &genesis(), o).expect("create");
    let start = store.checkpointed().expect("checkpoint");
    for i in 2..5 {
        store.write_reporting(&step(i), &mut || ()).expect("write");
    }
    assert_eq!(store.checkpointed().expect("checkpoint"), start, "none taken by the writes");
    assert!(store.checkpoint_if_due().expect("checkpoint"), "due after three records");
    assert_eq!(store.checkpointed().expect("checkpoint"), start + 3);
    for i in 5..8 {
        store.write(&step(i)).expect("write");
    }
    assert_eq!(store.checkpointed().expect("checkpoint"), start + 6, "write takes it");
}
