//! What one Raft-mode step costs the storage writer on this disk, by phase: a closed loop of
//! steps shaped like a 1-client claim's (one ~300-byte entry, the hard state, a registry write
//! and the applied index), each timed from `write_reporting`'s start to its `synced` call (the
//! step applied to a redb transaction, its record appended and `fdatasync`ed: W1) and from
//! there to its return, with the checkpoint the writer takes after it every 32 steps
//! (redb's unsynced commit, then `checkpoint_if_due`: W2, W4, W5);
//! beside it, the log alone: the same records appended to a bare `Wal`.
//!
//!     cargo run --release -p warpnet-storage --example step_cost [steps]
//!
//! Prints medians and means in microseconds. A figure, not a test: compare runs side by side.

use std::time::Instant;

use warpnet_raft::{EntryKind, HardState, LogEntry, LogWrite, Member, Membership, Recovery};
use warpnet_storage::wal::{Wal, WalOptions};
use warpnet_storage::{RaftBatch, RaftStore};
use warpnet_types::NodeId;

fn step(i: u64) -> RaftBatch {
    let entry = LogEntry {
        index: i,
        term: 2,
        kind: EntryKind::Normal,
        data: vec![7; 300],
        context: vec![],
    };
    RaftBatch {
        writes: vec![LogWrite {
            entries: vec![entry],
            hard_state: Some(HardState { term: 2, vote: Some(NodeId(0)), commit: i - 1 }),
            ..LogWrite::default()
        }],
        app_reset: false,
        app: vec![(format!("user/{i:08}").into_bytes(), vec![9; 80])],
        applied: Some((i - 1, None)),
    }
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<28} p50 {:>7.1}  p90 {:>7.1}  p99 {:>7.1}  mean {mean:>7.1}",
        p(0.5),
        p(0.9),
        p(0.99)
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: u64 = std::env::args().nth(1).map_or(Ok(3000), |s| s.parse())?;
    let dir = std::env::temp_dir().join(format!("warpnet-step-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let genesis = Recovery::genesis(Membership::new(
        (0..3).map(|i| Member { id: NodeId(i), public: true }).collect(),
    ));
    let store = RaftStore::create(&dir.join("raft.redb"), b"step-cost", &genesis)?;
    let (mut synced, mut committed) = (Vec::new(), Vec::new());
    for i in 2..steps + 2 {
        let start = Instant::now();
        let mut at = None;
        store.write_reporting(&step(i), &mut || at = Some(Instant::now()))?;
        store.checkpoint_if_due()?;
        let end = Instant::now();
        let at = at.unwrap_or(end);
        synced.push((at - start).as_secs_f64() * 1e6);
        committed.push((end - at).as_secs_f64() * 1e6);
    }
    drop(store);
    let (mut wal, _) = Wal::open(&dir.join("bare.wal"), WalOptions::default())?;
    let record = vec![5u8; 420];
    let mut bare = Vec::new();
    for _ in 0..steps {
        let start = Instant::now();
        wal.append(&[&record])?;
        bare.push(start.elapsed().as_secs_f64() * 1e6);
    }
    println!("{steps} steps, microseconds:");
    summary("step until synced (W1)", synced);
    summary("redb commit after (W4)", committed);
    summary("bare log append + fdatasync", bare);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
