//! Agreed health from the built binary (H2–H4, LR2): four members see each other online and
//! verified public, `cluster routing` verifies the routing list's proof with keys proven from
//! the genesis file, and after kill -9 of one member every live node marks it offline and the
//! next routing list leaves it out (that every honest node computes the same health at the
//! same height is the simulator's health-agreement invariant).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{get, start_all, wait_until, BIN};
use serde_json::Value;

fn members(port: u16) -> Option<Value> {
    let (status, body) = get(port, "/v1/members")?;
    (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

/// Each member's agreed `(online, verified_public)` as node `port` shows it.
fn health(port: u16) -> Option<Vec<(bool, bool)>> {
    let v = members(port)?;
    v["members"]
        .as_array()?
        .iter()
        .map(|m| {
            let h = m.get("health")?.as_object()?;
            Some((h["online"].as_bool()?, h["verified_public"].as_bool()?))
        })
        .collect()
}

fn routing(c: &common::Cluster, i: usize) -> std::process::Output {
    let genesis = c.dir.join("committee.toml");
    Command::new(BIN)
        .args(["cluster", "routing", "--node", &format!("http://{}", c.api_address(i))])
        .arg("--genesis")
        .arg(&genesis)
        .output()
        .unwrap()
}

#[test]
fn members_agree_on_health_and_the_routing_list_verifies_from_genesis() {
    let mut c = start_all(4);
    // H2: every member probes the others; a quorum's attestations make each verified public.
    wait_until("every member online and verified public on every node", 60, || {
        (0..4).all(|i| health(c.api[i]).is_some_and(|h| h.iter().all(|&(o, p)| o && p)))
    });
    wait_until("a routing list with all four members", 30, || {
        get(c.api[1], "/v1/routing").is_some_and(|(s, b)| {
            s == 200
                && serde_json::from_str::<Value>(&b)
                    .is_ok_and(|v| v["members"].as_array().is_some_and(|m| m.len() == 4))
        })
    });
    let out = routing(&c, 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("verified with the keys of epoch"), "{text}");

    // kill -9: the chain records its absence; every live node computes it offline.
    c.kill(3);
    wait_until("member 3 offline on every live node", 30, || {
        (0..3).all(|i| health(c.api[i]).is_some_and(|h| !h[3].0 && h[..3].iter().all(|x| x.0)))
    });
    wait_until("a routing list without member 3", 30, || {
        get(c.api[0], "/v1/routing").is_some_and(|(s, b)| {
            s == 200
                && serde_json::from_str::<Value>(&b)
                    .is_ok_and(|v| v["members"].as_array().is_some_and(|m| m.len() == 3))
        })
    });
    let out = routing(&c, 0);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
