//! The Raft-mode store: writes and recovery, the log's rules, engines restarting from their
//! disks, and a process killed with SIGKILL in the middle of its writes.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use warpnet_raft::{
    Action, Applied, EngineConfig, EntryKind, HardState, Input, LogEntry, LogWrite, Member,
    Membership, RaftEngine, RaftMessage, RaftParams, Recovery, Role, Snapshot, SnapshotMeta,
};
use warpnet_storage::{RaftBatch, RaftStore, StoreError};
use warpnet_types::NodeId;

const ID: &[u8] = b"test-committee";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warpnet-raft-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn membership(n: u16) -> Membership {
    Membership::new((0..n).map(|i| Member { id: NodeId(i), public: true }).collect())
}

fn entry(index: u64, term: u64, data: &[u8]) -> LogEntry {
    LogEntry { index, term, kind: EntryKind::Normal, data: data.to_vec(), context: Vec::new() }
}

fn append(entries: Vec<LogEntry>, commit: u64, term: u64) -> RaftBatch {
    RaftBatch {
        writes: vec![LogWrite {
            entries,
            hard_state: Some(HardState { term, vote: Some(NodeId(0)), commit }),
            ..LogWrite::default()
        }],
        ..RaftBatch::default()
    }
}

#[test]
fn writes_survive_a_reopen_exactly() {
    let d = dir("reopen");
    let path = d.join("raft.redb");
    let store = RaftStore::create(&path, ID, &Recovery::genesis(membership(3))).expect("create");
    store.write(&append(vec![entry(2, 2, b"a"), entry(3, 2, b"b")], 3, 2)).expect("write");
    let mut b = RaftBatch { applied: Some((3, None)), ..RaftBatch::default() };
    b.app.push((b"k".to_vec(), b"v".to_vec()));
    store.write(&b).expect("write");
    drop(store);
    let store = RaftStore::open(&path, ID).expect("open");
    let r = store.recovery().expect("recovery");
    assert_eq!(r.entries, vec![entry(2, 2, b"a"), entry(3, 2, b"b")]);
    assert_eq!(r.hard_state, HardState { term: 2, vote: Some(NodeId(0)), commit: 3 });
    assert_eq!((r.applied, r.membership.clone()), (3, membership(3)));
    assert_eq!(store.app_get(b"k").expect("read"), Some(b"v".to_vec()));
    RaftEngine::new(config(0), r).expect("the engine takes what the store gives back");
    drop(store);
    assert!(matches!(RaftStore::open(&path, b"other"), Err(StoreError::CommitteeMismatch { .. })));
    assert!(matches!(
        RaftStore::create(&path, ID, &Recovery::joining()),
        Err(StoreError::Exists { .. })
    ));
}

#[test]
fn an_append_replaces_the_conflicting_suffix_and_a_gap_is_refused() {
    let d = dir("suffix");
    let store = RaftStore::create(&d.join("raft.redb"), ID, &Recovery::genesis(membership(3)))
        .expect("create");
    store
        .write(&append(vec![entry(2, 2, b"a"), entry(3, 2, b"b"), entry(4, 2, b"c")], 2, 2))
        .expect("write");
    store.write(&append(vec![entry(3, 3, b"x")], 2, 3)).expect("write");
    let r = store.recovery().expect("recovery");
    assert_eq!(r.entries, vec![entry(2, 2, b"a"), entry(3, 3, b"x")]);
    assert!(matches!(
        store.write(&append(vec![entry(9, 3, b"gap")], 2, 3)),
        Err(StoreError::LogGap { index: 9, last: 3, snapshot: 1 })
    ));
    // The refused batch changed nothing, and never reached the write-ahead log (RF16):
    // a reopen replays the log and finds the same two entries.
    assert_eq!(store.recovery().expect("recovery").entries.len(), 2);
    drop(store);
    let store = RaftStore::open(&d.join("raft.redb"), ID).expect("open");
    assert_eq!(store.recovery().expect("recovery").entries, r.entries);
    store.write(&append(vec![entry(4, 3, b"y")], 2, 3)).expect("the next index is taken");
    assert_eq!(store.recovery().expect("recovery").entries.len(), 3);
}

#[test]
fn a_snapshot_compacts_or_replaces_the_log() {
    let d = dir("snapshot");
    let store = RaftStore::create(&d.join("raft.redb"), ID, &Recovery::genesis(membership(3)))
        .expect("create");
    store.write(&append((2..=6).map(|i| entry(i, 2, b"e")).collect(), 6, 2)).expect("write");
    let snap = |index: u64| Snapshot {
        meta: SnapshotMeta { index, term: 2, membership: membership(3) },
        data: Arc::from(b"state".to_vec()),
    };
    let compact = LogWrite { snapshot: Some(snap(4)), ..LogWrite::default() };
    store.write(&RaftBatch { writes: vec![compact], ..RaftBatch::default() }).expect("compact");
    let r = store.recovery().expect("recovery");
    assert_eq!(r.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![5, 6]);
    assert_eq!(
        r.snapshot.as_ref().map(|s| (s.meta.index, s.data.to_vec())),
        Some((4, b"state".to_vec()))
    );
    let install = LogWrite { snapshot: Some(snap(9)), discard_log: true, ..LogWrite::default() };
    let b = RaftBatch {
        writes: vec![install],
        app_reset: true,
        app: vec![(b"s".to_vec(), b"1".to_vec())],
        applied: Some((9, Some(membership(3)))),
    };
    // The log's bounds after a compaction: entries 5 and 6 stay.
    assert!(matches!(
        store.write(&append(vec![entry(8, 2, b"gap")], 6, 2)),
        Err(StoreError::LogGap { index: 8, last: 6, snapshot: 4 })
    ));
    assert!(matches!(
        store.write(&append(vec![entry(4, 2, b"old")], 6, 2)),
        Err(StoreError::LogGap { index: 4, last: 6, snapshot: 4 })
    ));
    store.write(&append(vec![], 6, 2)).expect("noop");
    store.write(&b).expect("install");
    let r = store.recovery().expect("recovery");
    assert!(r.entries.is_empty());
    assert_eq!((r.applied, r.snapshot.map(|s| s.meta.index)), (9, Some(9)));
    assert_eq!(store.app_entries().expect("app"), vec![(b"s".to_vec(), b"1".to_vec())]);
    // After an installed snapshot the log starts after it, and so after a reopen.
    assert!(matches!(
        store.write(&append(vec![entry(9, 2, b"in")], 9, 2)),
        Err(StoreError::LogGap { index: 9, last: 9, snapshot: 9 })
    ));
    store.write(&append(vec![entry(10, 2, b"next")], 9, 2)).expect("append after it");
    drop(store);
    let store = RaftStore::open(&d.join("raft.redb"), ID).expect("open");
    assert!(matches!(
        store.write(&append(vec![entry(12, 2, b"gap")], 9, 2)),
        Err(StoreError::LogGap { index: 12, last: 10, snapshot: 9 })
    ));
    store.write(&append(vec![entry(11, 2, b"next")], 9, 2)).expect("append after it");
    let r = store.recovery().expect("recovery");
    assert_eq!(r.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![10, 11]);
}

fn config(i: u16) -> EngineConfig {
    EngineConfig { me: NodeId(i), params: RaftParams::default(), seed: 3 }
}

/// One replica as a node runs it: each input's actions become one durable batch.
struct Replica {
    engine: Option<RaftEngine>,
    store: RaftStore,
}

impl Replica {
    fn handle(&mut self, input: Input, out: &mut VecDeque<RaftMessage>) {
        let Some(engine) = self.engine.as_mut() else { return };
        let Ok(actions) = engine.handle(input) else { return };
        let mut batch = RaftBatch::default();
        let mut last = None;
        for a in actions {
            match a {
                Action::Send(m) => out.push_back(m),
                Action::Persist(w) => {
                    last = Some(w.id);
                    batch.writes.push(w);
                }
                Action::Apply(Applied::Command { index, data, .. }) => {
                    batch.app.push((format!("c/{index:08}").into_bytes(), data));
                    batch.applied = Some((index, None));
                }
                Action::Apply(Applied::Membership { index, membership, .. }) => {
                    batch.applied = Some((index, Some(membership)));
                }
                Action::Apply(a) => {
                    batch.applied = Some((a.index(), batch.applied.and_then(|x| x.1)))
                }
                _ => {}
            }
        }
        self.store.write(&batch).expect("durable write");
        if let Some(id) = last {
            self.handle(Input::Persisted(id), out);
        }
    }
}

#[test]
fn engines_on_real_stores_restart_from_disk_and_catch_up() {
    let d = dir("engines");
    let m = membership(3);
    let mut nodes: Vec<Replica> = (0..3u16)
        .map(|i| {
            let store =
                RaftStore::create(&d.join(format!("n{i}.redb")), ID, &Recovery::genesis(m.clone()))
                    .expect("create");
            Replica {
                engine: Some(
                    RaftEngine::new(config(i), store.recovery().expect("r")).expect("engine"),
                ),
                store,
            }
        })
        .collect();
    let mut q = VecDeque::new();
    let run = |nodes: &mut Vec<Replica>, q: &mut VecDeque<RaftMessage>, ticks: usize| {
        for _ in 0..ticks {
            for n in nodes.iter_mut() {
                n.handle(Input::Tick, q);
            }
            while let Some(msg) = q.pop_front() {
                let (Some(to), Some(from)) = (msg.to(), msg.from()) else { continue };
                nodes[to.index()].handle(Input::Message { from, message: msg }, q);
            }
        }
    };
    run(&mut nodes, &mut q, 40);
    let leader = (0..3)
        .find(|&i| nodes[i].engine.as_ref().is_some_and(|e| e.status().role == Role::Leader))
        .expect("leader");
    let victim = (leader + 1) % 3;
    for i in 0..5u8 {
        nodes[leader].handle(Input::Propose(vec![b'a', i]), &mut q);
    }
    run(&mut nodes, &mut q, 3);
    nodes[victim].engine = None; // crash: everything it acknowledged is on its disk
    for i in 0..5u8 {
        nodes[leader].handle(Input::Propose(vec![b'b', i]), &mut q);
    }
    run(&mut nodes, &mut q, 3);
    let r = nodes[victim].store.recovery().expect("recovery");
    assert!(r.applied >= 6, "applied {} before the crash", r.applied);
    nodes[victim].engine = Some(RaftEngine::new(config(victim as u16), r).expect("restart"));
    run(&mut nodes, &mut q, 5);
    let commands = |s: &RaftStore| {
        s.app_entries().expect("app").into_iter().map(|(_, v)| v).collect::<Vec<_>>()
    };
    let want = commands(&nodes[leader].store);
    assert_eq!(want.len(), 10);
    assert_eq!(commands(&nodes[victim].store), want);
}

/// Child mode of the kill test: append one entry per durable batch, say so after each write.
fn child_writes(path: &Path) {
    let store = RaftStore::open(path, ID).expect("open");
    let mut out = std::io::stdout();
    let first = store.recovery().expect("recovery").last_index() + 1;
    for i in first.. {
        let mut b = append(vec![entry(i, 2, &[7; 512])], i, 2);
        b.applied = Some((i, None));
        b.app.push((format!("k{i:08}").into_bytes(), vec![1; 64]));
        store.write(&b).expect("write");
        if writeln!(out, "ack {i}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

#[test]
fn a_kill_9_mid_writes_loses_nothing_acknowledged() {
    if let Ok(p) = std::env::var("WARPNET_RAFT_STORE_CHILD") {
        return child_writes(Path::new(&p));
    }
    let d = dir("kill9");
    let path = d.join("raft.redb");
    drop(RaftStore::create(&path, ID, &Recovery::genesis(membership(1))).expect("create"));
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "a_kill_9_mid_writes_loses_nothing_acknowledged", "--nocapture"])
            .env("WARPNET_RAFT_STORE_CHILD", &path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut acked = 0u64;
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        for line in lines {
            let line = line.expect("line");
            if let Some(n) = line.strip_prefix("ack ") {
                acked = n.parse().expect("index");
                if acked >= 60 + 40 * round {
                    break;
                }
            }
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let store = RaftStore::open(&path, ID).expect("reopen after kill -9");
        let r = store.recovery().expect("recovery");
        assert!(r.last_index() >= acked, "acknowledged {acked}, disk holds {}", r.last_index());
        assert!(r.applied >= acked && r.hard_state.commit >= acked);
        assert_eq!(
            store.app_get(format!("k{acked:08}").as_bytes()).expect("read"),
            Some(vec![1; 64])
        );
        RaftEngine::new(config(0), r).expect("the disk holds together");
    }
}
