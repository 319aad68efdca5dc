//! The store on its own, and under four real cores with a replica restarted from disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;
use std::sync::Arc;

use common::{chain, committee, TempDir};
use warpnet_core::{Committed, Core, CoreParams, Input, SafetyData, Step, Target};
use warpnet_storage::{Batch, Store, StoreError};
use warpnet_types::{
    Block, ConsensusConfig, Epoch, Height, Message, NodeId, QuorumCertificate, Round, Signer,
    SyncRequest,
};

#[test]
fn a_new_store_starts_at_genesis() {
    let (c, _) = committee();
    let dir = TempDir::new("store");
    let store = Store::create(&dir.db(), &c).unwrap();
    let r = store.recovery(&c).unwrap();
    assert_eq!(r.committed, Block::genesis(&c));
    assert_eq!(r.committed_certificate, QuorumCertificate::genesis(&c));
    assert_eq!(r.safety, SafetyData::initial(&c));
    assert!(r.blocks.is_empty());
    assert_eq!(store.committed_height().unwrap(), Height(0));
}

#[test]
fn a_batch_survives_reopening() {
    let (c, s) = committee();
    let dir = TempDir::new("store");
    let ch = chain(&c, &s, 3);
    let safety = SafetyData {
        last_voted_round: Round(3),
        high_qc: ch[1].1.clone(),
        ..SafetyData::initial(&c)
    };
    {
        let store = Store::create(&dir.db(), &c).unwrap();
        let batch = Batch {
            blocks: ch.iter().map(|(b, _)| b.clone()).collect(),
            safety: Some(safety.clone()),
            ..Batch::default()
        };
        store.write(&batch).unwrap();
    }
    let store = Store::open(&dir.db(), &c).unwrap();
    let r = store.recovery(&c).unwrap();
    assert_eq!(r.safety, safety);
    let mut heights: Vec<u64> = r.blocks.iter().map(|b| b.height().0).collect();
    heights.sort_unstable();
    assert_eq!(heights, [1, 2, 3]);
}

/// fsyncgate: a durable write that fails (here the test-only switch, standing for a failed
/// fsync) makes the store refuse every later write instead of retrying and carrying on; what
/// it made durable before is intact. Whether the failed write's log record survives is
/// unknown, as after a real failed fsync (the kernel may still write the page back): if it
/// does, it is replayed whole, never in part.
#[test]
fn a_failed_fsync_is_final_the_store_takes_no_more_writes() {
    let (c, s) = committee();
    let dir = TempDir::new("store");
    let ch = chain(&c, &s, 3);
    let block = |i: usize| Batch { blocks: vec![ch[i].0.clone()], ..Batch::default() };
    {
        let store = Store::create(&dir.db(), &c).unwrap();
        store.write(&block(0)).unwrap();
        store.fail_sync_after(1);
        let e = store.write(&block(1)).unwrap_err();
        assert!(matches!(e, StoreError::SyncFailed { .. }), "{e}");
        assert!(e.to_string().contains("fsync failed"), "{e}");
        let again = store.write(&block(2)).unwrap_err();
        assert!(
            matches!(&again, StoreError::Poisoned { first } if first.contains("fsync")),
            "{again}"
        );
    }
    let store = Store::open(&dir.db(), &c).unwrap();
    let mut heights: Vec<u64> =
        store.recovery(&c).unwrap().blocks.iter().map(|b| b.height().0).collect();
    heights.sort_unstable();
    assert!(heights == [1] || heights == [1, 2], "the durable prefix, whole steps: {heights:?}");
    store.write(&block(1)).unwrap();
}

#[test]
fn commits_extend_the_chain_keep_their_certificates_and_prune_forks() {
    let (c, s) = committee();
    let dir = TempDir::new("store");
    let store = Store::create(&dir.db(), &c).unwrap();
    let ch = chain(&c, &s, 3);
    // A fork at height 1, never committed.
    let fork = Block::new(
        c.epoch(),
        Round(2),
        Height(1),
        c.leader(Round(2)),
        QuorumCertificate::genesis(&c),
        9,
        vec![b"fork".to_vec()],
    );
    let mut blocks: Vec<Block> = ch.iter().map(|(b, _)| b.clone()).collect();
    blocks.push(fork.clone());
    store.write(&Batch { blocks, ..Batch::default() }).unwrap();
    assert_eq!(store.pending_len().unwrap(), 4);
    let commits = ch[..2]
        .iter()
        .map(|(b, qc)| Committed { block: b.clone(), certificate: qc.clone() })
        .collect();
    store
        .write(&Batch { commits, app: vec![(b"k".to_vec(), b"v".to_vec())], ..Batch::default() })
        .unwrap();
    assert_eq!(store.committed_height().unwrap(), Height(2));
    assert_eq!(store.committed(Height(1)).unwrap(), Some(ch[0].clone()));
    assert_eq!(store.committed(Height(2)).unwrap(), Some(ch[1].clone()));
    assert_eq!(store.block(&fork.id()).unwrap(), None, "the fork below the tip is pruned");
    assert_eq!(store.pending_len().unwrap(), 1, "only height 3 is still pending");
    assert_eq!(store.app_get(b"k").unwrap(), Some(b"v".to_vec()));
    let r = store.recovery(&c).unwrap();
    assert_eq!((r.committed.clone(), r.committed_certificate.clone()), ch[1].clone());
    assert_eq!(r.blocks, vec![ch[2].0.clone()]);
    assert_eq!(
        r.recent_commands,
        vec![vec![1u8], vec![2u8]],
        "M2: the committed blocks' commands, oldest first (not the fork's, not pending ones)"
    );
}

#[test]
fn a_commit_that_does_not_extend_the_chain_is_refused_and_writes_nothing() {
    let (c, s) = committee();
    let dir = TempDir::new("store");
    let store = Store::create(&dir.db(), &c).unwrap();
    let ch = chain(&c, &s, 3);
    let skip = vec![Committed { block: ch[1].0.clone(), certificate: ch[1].1.clone() }];
    let safety = SafetyData { last_voted_round: Round(9), ..SafetyData::initial(&c) };
    let err = store
        .write(&Batch { commits: skip, safety: Some(safety), ..Batch::default() })
        .unwrap_err();
    assert!(matches!(err, StoreError::NotExtending { height: 2, tip: 0, .. }), "{err}");
    assert_eq!(
        store.recovery(&c).unwrap().safety,
        SafetyData::initial(&c),
        "the whole batch was refused"
    );
}

#[test]
fn a_store_of_another_committee_is_refused() {
    let (c, _) = committee();
    let dir = TempDir::new("store");
    drop(Store::create(&dir.db(), &c).unwrap());
    let other =
        ConsensusConfig::new(c.network().clone(), Epoch(2), c.scheme(), c.participants().to_vec())
            .unwrap();
    let err = Store::open(&dir.db(), &other).err().expect("refused");
    assert!(matches!(err, StoreError::CommitteeMismatch { .. }), "{err}");
}

#[test]
fn corrupt_safety_data_stops_recovery_with_a_clear_error() {
    let (c, _) = committee();
    let dir = TempDir::new("store");
    drop(Store::create(&dir.db(), &c).unwrap());
    {
        let db = redb::Database::create(dir.db()).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta =
                txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("meta")).unwrap();
            meta.insert("safety", b"garbage".as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&dir.db(), &c).unwrap();
    let err = store.recovery(&c).expect_err("refused");
    assert!(matches!(err, StoreError::Corrupt { what: "safety data", .. }), "{err}");
}

#[test]
fn sync_is_served_across_committed_and_pending_blocks() {
    let (c, s) = committee();
    let dir = TempDir::new("store");
    let store = Store::create(&dir.db(), &c).unwrap();
    let ch = chain(&c, &s, 5);
    store
        .write(&Batch { blocks: ch.iter().map(|(b, _)| b.clone()).collect(), ..Batch::default() })
        .unwrap();
    let commits = ch[..3]
        .iter()
        .map(|(b, qc)| Committed { block: b.clone(), certificate: qc.clone() })
        .collect();
    store.write(&Batch { commits, ..Batch::default() }).unwrap();
    let req =
        SyncRequest { epoch: c.epoch(), target: ch[4].0.id(), above: Height(1), max_blocks: 10 };
    let heights: Vec<u64> =
        store.serve_sync(&req, 10).unwrap().blocks.iter().map(|b| b.height().0).collect();
    assert_eq!(heights, [2, 3, 4, 5]);
}

// ---------------------------------------------------------------------------------------------
// Four cores on four stores; one restarts from its disk.
// ---------------------------------------------------------------------------------------------

struct Replica {
    core: Option<Core>,
    store: Option<Store>,
    dir: TempDir,
    deadline: Option<u64>,
}

struct Cluster {
    config: Arc<ConsensusConfig>,
    signers: Vec<Arc<dyn Signer>>,
    replicas: Vec<Replica>,
    queue: VecDeque<(usize, NodeId, Message)>,
    now: u64,
}

fn params() -> CoreParams {
    CoreParams {
        round_timeout_base_ms: 100,
        round_timeout_max_ms: 400,
        idle_propose_delay_ms: 10,
        ..CoreParams::default()
    }
}

impl Cluster {
    fn new() -> Self {
        let (c, s) = committee();
        let config = Arc::new(c);
        let mut cluster =
            Self { config, signers: s, replicas: Vec::new(), queue: VecDeque::new(), now: 0 };
        for _ in 0..4 {
            cluster.replicas.push(Replica {
                core: None,
                store: None,
                dir: TempDir::new("store"),
                deadline: None,
            });
        }
        for i in 0..4 {
            cluster.boot(i);
        }
        cluster
    }

    /// Opens the replica's store and starts its core from what the store recovers.
    fn boot(&mut self, i: usize) {
        let path = self.replicas[i].dir.db();
        let store = if path.exists() {
            Store::open(&path, &self.config)
        } else {
            Store::create(&path, &self.config)
        }
        .unwrap();
        let recovery = store.recovery(&self.config).unwrap();
        let mut core = Core::new(
            self.config.clone(),
            NodeId(i as u16),
            self.signers[i].clone(),
            params(),
            recovery,
        )
        .unwrap();
        let actions = core.start(self.now);
        self.replicas[i].core = Some(core);
        self.replicas[i].store = Some(store);
        self.execute(i, actions);
    }

    fn crash(&mut self, i: usize) {
        self.replicas[i].core = None;
        self.replicas[i].store = None;
        self.replicas[i].deadline = None;
    }

    /// Runs one step: its write is made durable at once (and reported), its messages queued.
    fn execute(&mut self, i: usize, step: Step) {
        let from = NodeId(i as u16);
        for out in step.messages {
            match out.to {
                Target::One(to) => self.queue.push_back((self.index_of(&to), from, out.message)),
                Target::All => {
                    for j in (0..4).filter(|&j| j != i) {
                        self.queue.push_back((j, from, out.message.clone()));
                    }
                }
            }
        }
        for (to, request) in step.serve_sync {
            let store = self.replicas[i].store.as_ref().unwrap();
            let response = store.serve_sync(&request, 64).unwrap();
            let to = self.index_of(&to);
            self.queue.push_back((to, from, Message::SyncResponse(response)));
        }
        assert!(step.evidence.is_empty(), "honest cluster produced evidence: {:?}", step.evidence);
        self.replicas[i].deadline = step.deadline_ms;
        if let Some(w) = step.write {
            let batch = Batch {
                blocks: w.blocks,
                safety: w.safety,
                commits: w.commits,
                app: vec![],
                epochs: w.epoch.into_iter().collect(),
            };
            self.replicas[i].store.as_ref().unwrap().write(&batch).unwrap();
            self.input(i, Input::Persisted { seq: w.seq });
        }
    }

    fn index_of(&self, key: &warpnet_types::PublicKey) -> usize {
        self.config.node_id_of(key).unwrap().index()
    }

    fn submit(&mut self, i: usize, cmd: &[u8]) {
        self.now += 1;
        let now = self.now;
        let Some(core) = self.replicas[i].core.as_mut() else { return };
        let (verdicts, step) = core.submit(now, vec![cmd.to_vec()]);
        assert!(verdicts.iter().all(Result::is_ok), "{verdicts:?}");
        self.execute(i, step);
    }

    fn input(&mut self, i: usize, input: Input) {
        self.now += 1;
        let now = self.now;
        let Some(core) = self.replicas[i].core.as_mut() else { return };
        let actions = core.handle(now, input);
        self.execute(i, actions);
    }

    /// Delivers messages; when none are left, wakes the replica with the earliest deadline.
    fn run_until(&mut self, done: impl Fn(&Self) -> bool) {
        for _ in 0..200_000 {
            if done(self) {
                return;
            }
            if let Some((to, from, m)) = self.queue.pop_front() {
                let from = *self.config.public_key(from).unwrap();
                self.input(to, Input::Message { from, message: m });
                continue;
            }
            // Nothing in flight: the clock jumps to the earliest deadline.
            let next = (0..4)
                .filter(|&i| self.replicas[i].core.is_some())
                .filter_map(|i| self.replicas[i].deadline.map(|at| (at, i)))
                .min();
            if let Some((at, i)) = next {
                self.now = self.now.max(at.saturating_sub(1));
                self.input(i, Input::Tick);
            }
        }
        panic!("the cluster did not get there");
    }

    fn height(&self, i: usize) -> u64 {
        self.replicas[i].store.as_ref().map_or(0, |s| s.committed_height().unwrap().0)
    }
}

#[test]
fn a_replica_restarted_from_disk_catches_up_with_an_identical_chain() {
    let mut c = Cluster::new();
    for i in 0..4 {
        c.submit(i, format!("cmd-{i}").as_bytes());
    }
    c.run_until(|c| (0..4).all(|i| c.height(i) >= 8));
    c.crash(2);
    c.run_until(|c| [0, 1, 3].iter().all(|&i| c.height(i) >= 20));
    c.boot(2);
    c.submit(0, b"after-restart");
    c.run_until(|c| (0..4).all(|i| c.height(i) >= 30));
    let reference = c.replicas[0].store.as_ref().unwrap();
    for i in 1..4 {
        let store = c.replicas[i].store.as_ref().unwrap();
        for h in 1..=30 {
            assert_eq!(
                store.committed(Height(h)).unwrap(),
                reference.committed(Height(h)).unwrap(),
                "replica {i} height {h}"
            );
        }
    }
}

#[test]
fn a_missing_database_is_not_silently_recreated() {
    let (c, _) = committee();
    let dir = TempDir::new("store");
    let err = Store::open(&dir.db(), &c).err().expect("refused");
    assert!(matches!(err, StoreError::Missing { .. }), "{err}");
    drop(Store::create(&dir.db(), &c).unwrap());
    let err = Store::create(&dir.db(), &c).err().expect("refused");
    assert!(matches!(err, StoreError::Exists { .. }), "{err}");
    assert!(Store::open(&dir.db(), &c).is_ok());
}
