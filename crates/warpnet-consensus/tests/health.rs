//! Agreed health from the built binary (H2–H4, LR2): four members see each other online and
//! verified public, `cluster routing` verifies the routing list's proof with keys proven from
//! the genesis file, and after kill -9 of one member every live node marks it offline and the
//! next routing list leaves it out; a member and then the leader frozen with SIGSTOP
//! (connected, silent) are marked offline and skipped as leaders alike on every other node,
//! the chain goes on, and each is online again once thawed (that every honest node computes
//! the same health at the same height is the simulator's health-agreement invariant).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::members::members;
use common::{cluster_view, get, start_all, wait_until, BIN};
use serde_json::Value;

/// Each member's agreed `(online, verified_public, reputation)` as node `port` shows it.
fn health(port: u16) -> Option<Vec<(bool, bool, String)>> {
    let v = members(port)?;
    v["members"]
        .as_array()?
        .iter()
        .map(|m| {
            let h = m.get("health")?.as_object()?;
            let online = h["online"].as_bool()?;
            Some((online, h["verified_public"].as_bool()?, h["reputation"].as_str()?.to_owned()))
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
        (0..4).all(|i| health(c.api[i]).is_some_and(|h| h.iter().all(|(o, p, _)| *o && *p)))
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

#[test]
fn a_frozen_member_and_a_frozen_leader_are_marked_offline_alike_on_every_node() {
    let c = start_all(4);
    wait_until("every member online on every node", 60, || {
        (0..4).all(|i| health(c.api[i]).is_some_and(|h| h.iter().all(|(o, _, _)| *o)))
    });
    let leader = || cluster_view(c.api[0]).and_then(|v| v["leader"].as_u64()).unwrap() as usize;
    let first = leader();
    // The leader first, then a member that does not lead at that moment.
    for round in 0..2 {
        let target = if round == 0 { first } else { (0..4).find(|&i| i != leader()).unwrap() };
        let others: Vec<usize> = (0..4).filter(|&i| i != target).collect();
        c.signal(target, "-STOP");
        // H3, LR2: offline and skipped as leader on every other node, which agree.
        wait_until("the frozen member offline and skipped on every other node, alike", 30, || {
            // (online, reputation) per member, as each other node shows them.
            let views: Vec<Option<Vec<(bool, String)>>> = others
                .iter()
                .map(|&i| health(c.api[i]).map(|h| h.into_iter().map(|(o, _, r)| (o, r)).collect()))
                .collect();
            views.iter().all(|v| {
                v.as_ref().is_some_and(|v| {
                    v.iter().enumerate().all(|(x, (online, _))| *online == (x != target))
                        && v[target].1 != "leader"
                })
            }) && views.windows(2).all(|w| w[0] == w[1])
        });
        let base = others.iter().map(|&i| c.height(i)).max().unwrap_or(0);
        wait_until("the other three commit on", 30, || {
            others.iter().all(|&i| c.height(i) >= base + 5)
        });
        c.signal(target, "-CONT");
        wait_until("the thawed member online again on every node", 60, || {
            (0..4).all(|i| health(c.api[i]).is_some_and(|h| h.iter().all(|(o, _, _)| *o)))
        });
    }
}
