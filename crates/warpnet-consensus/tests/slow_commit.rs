//! W4 (durable before readable) from the built binary: every node's database commit comes
//! `DELAY_MS` after its log sync (the test-only switch `WARPNET_TEST_COMMIT_DELAY_MS`), so each
//! write sits durable but not yet readable for that long. The nodes vote and acknowledge at the
//! sync, and serve such writes from memory until the commit:
//! - claims are answered, and a second claim of the same ID by another key is `taken`;
//! - a linearizable lookup sent right after a claim's answer, to the same node or another,
//!   finds the claim (Raft mode: a ReadIndex read is served once the node's *readable* applied
//!   index reaches it; served at the sync instead, the lookup reads a database without the
//!   claim and this test fails);
//! - after a kill -9 of every node and a restart, every answered claim is still there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::load::{claim_body, http};
use common::raft::{wait_leader, RAFT_EXTRA};
use common::{cluster_view, wait_until, Cluster};
use serde_json::Value;
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::SchemeId;

const DELAY_MS: &str = "40";
const ENV: [(&str, &str); 1] = [("WARPNET_TEST_COMMIT_DELAY_MS", DELAY_MS)];
const CLAIMS: usize = 8;

fn start(c: &mut Cluster, n: usize, raft: bool) {
    for i in 0..n {
        c.start_env(i, &ENV);
    }
    wait_until("every member connected to every other", 60, || {
        (0..n).all(|i| {
            cluster_view(c.api[i]).is_some_and(|v| {
                v["members"].as_array().unwrap().iter().all(|m| m["connected"] == Value::Bool(true))
            })
        })
    });
    if raft {
        wait_leader(c, 30);
    }
}

fn claim(c: &Cluster, node: usize, id: &str, seed: u64) -> (u16, Value) {
    let key = signer_from_seed(SchemeId::Ed25519, seed);
    let body = claim_body(key.as_ref(), id, &format!("req-{id}-{seed}"));
    http(&c.api_address(node), "POST", "/v1/claims", Some(&body), Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no answer to the claim of {id} at node {node}"))
}

fn lookup(c: &Cluster, node: usize, id: &str, linearizable: bool) -> (u16, Value) {
    let query = if linearizable { "?consistency=linearizable" } else { "" };
    let path = format!("/v1/users/{id}{query}");
    http(&c.api_address(node), "GET", &path, None, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no answer to the lookup of {id} at node {node}"))
}

fn run(n: usize, raft: bool) {
    // Rounds and elections slow enough for a write that takes the delay on every node.
    let extra = "round_timeout_base_ms = 2000\nclaim_timeout_ms = 10000\n";
    let mut c = if raft {
        Cluster::raft(n, &[], &format!("{RAFT_EXTRA}\n{extra}"))
    } else {
        Cluster::with_config(n, extra)
    };
    start(&mut c, n, raft);
    let mut owners = Vec::new();
    for k in 0..CLAIMS {
        let id = format!("w4_{k}");
        let at = k % n;
        let (status, v) = claim(&c, at, &id, 100 + k as u64);
        assert_eq!((status, v["status"].as_str()), (200, Some("claimed")), "{id}: {v}");
        let owner = v["owner_key"].as_str().unwrap().to_owned();
        // Right after the answer: the same node, then another, linearizable.
        for node in [at, (at + 1) % n] {
            let (status, found) = lookup(&c, node, &id, true);
            assert_eq!(status, 200, "{id} at node {node} right after its claim: {found}");
            assert_eq!(found["owner_key"].as_str(), Some(owner.as_str()), "{found}");
        }
        // Another key, another node: the ID is taken.
        let (status, v) = claim(&c, (at + 2) % n, &id, 900 + k as u64);
        assert_eq!((status, v["status"].as_str()), (409, Some("taken")), "{id}: {v}");
        owners.push((id, owner));
    }
    // A crash of every node at once loses nothing answered.
    for i in 0..n {
        c.kill(i);
    }
    start(&mut c, n, raft);
    for (id, owner) in &owners {
        for node in 0..n {
            let (status, found) = lookup(&c, node, id, true);
            assert_eq!(status, 200, "{id} at node {node} after the restart: {found}");
            assert_eq!(found["owner_key"].as_str(), Some(owner.as_str()), "{found}");
        }
    }
}

#[test]
fn hotstuff_serves_writes_from_memory_until_the_database_has_them() {
    run(4, false);
}

#[test]
fn raft_serves_writes_from_memory_until_the_database_has_them() {
    run(3, true);
}
