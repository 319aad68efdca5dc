//! Raft-mode helpers of the multi-process tests (`raft_faults.rs`, `raft_cli.rs`,
//! `raft_voters.rs`): a running Raft cluster with a leader, the leader every member agrees on,
//! which members the load may use, and the checks every scenario under load ends with.

use std::time::Duration;

use serde_json::Value;
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::SchemeId;

use super::load::claim_body;
use super::{cluster_view, wait_until, Cluster};

/// Short ticks so elections cost little test time: heartbeats every 50 ms, an election after
/// 0.5-1 s without a leader.
pub const RAFT_EXTRA: &str = "raft_tick_ms = 50";

pub fn raft_view(port: u16) -> Option<Value> {
    cluster_view(port).map(|v| v["raft"].clone()).filter(Value::is_object)
}

/// The member every live member names as leader, once they agree and it says it leads.
pub fn agreed_leader(c: &Cluster) -> Option<usize> {
    let live = c.live();
    let views: Vec<Value> = live.iter().map(|&i| raft_view(c.api[i])).collect::<Option<_>>()?;
    let leader = views[0]["leader"].as_u64()? as usize;
    let agree = views.iter().all(|v| v["leader"].as_u64() == Some(leader as u64));
    let leads = live.iter().zip(&views).any(|(&i, v)| i == leader && v["role"] == "leader");
    (agree && leads).then_some(leader)
}

pub fn wait_leader(c: &Cluster, secs: u64) -> usize {
    let mut found = None;
    wait_until("a leader every live member follows", secs, || {
        found = agreed_leader(c);
        found.is_some()
    });
    found.unwrap()
}

/// A running Raft cluster of `n`, every member connected to every other, with a leader.
pub fn start_raft(n: usize, private: &[usize], extra: &str) -> Cluster {
    let mut c = Cluster::raft(n, private, &format!("{RAFT_EXTRA}\n{extra}"));
    for i in 0..n {
        c.start(i);
    }
    wait_until("every member connected to every other", 30, || {
        (0..n).all(|i| {
            cluster_view(c.api[i]).is_some_and(|v| {
                v["members"].as_array().unwrap().iter().all(|m| m["connected"] == Value::Bool(true))
            })
        })
    });
    wait_leader(&c, 30);
    c
}

pub fn run_signal(sig: &str, pid: &str) {
    let ok = std::process::Command::new("kill").args([sig, pid]).status().unwrap();
    assert!(ok.success());
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn body(id: &str) -> Vec<u8> {
    let key = signer_from_seed(SchemeId::Ed25519, 77);
    claim_body(key.as_ref(), id, &format!("req-{id}"))
}
