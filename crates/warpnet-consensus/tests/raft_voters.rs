//! Raft-mode voter changes between real processes, from the built binary, through the same
//! commands as HotStuff mode: a committee of 3 grows to 5 (`node join --via`, approved by one
//! operator's `member endorse`: operators trust each other in Raft mode) and shrinks to 4
//! (`member remove` of the current leader), under claim load whose whole history is checked
//! (linearizable, every acknowledged claim on every remaining member). The removed member
//! stops on its own, and its key is refused afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::load::{check_after_heal, http, tally, Live, Load};
use common::members::{members, output, Node};
use common::raft::{raft_view, start_raft};
use common::wait_until;
use serde_json::Value;

/// The voters' keys a member lists (learners excluded).
fn voters(port: u16) -> Option<Vec<String>> {
    let v = members(port)?;
    let learners: Vec<u64> = v["learners"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let keys = v["members"]
        .as_array()?
        .iter()
        .filter(|m| !learners.contains(&m["node_id"].as_u64().unwrap_or(u64::MAX)))
        .filter_map(|m| m["public_key"].as_str().map(str::to_owned))
        .collect();
    Some(keys)
}

#[test]
fn a_raft_committee_grows_from_3_to_5_and_removes_its_leader_under_load() {
    let started = Instant::now();
    let mut c = start_raft(3, &[], "");
    let mut nodes: Vec<Node> = (0..3).map(|i| Node::founder(&c, i)).collect();
    let joiner_ports: Vec<(u16, u16)> =
        (0..2).map(|_| (common::free_port(), common::free_port())).collect();
    let mut apis: Vec<String> = (0..3).map(|i| c.api_address(i)).collect();
    apis.extend(joiner_ports.iter().map(|(a, _)| format!("127.0.0.1:{a}")));
    // Clients send to members only (a joiner once it votes; a removed member no more).
    let up = Live::new(5);
    (3..5).for_each(|i| up.set(i, false));
    let load = Load::start(apis.clone(), 4, "rv", Duration::from_secs(4), up.check());

    for (j, &ports) in joiner_ports.iter().enumerate() {
        let joiner = Node::join(&c, &format!("joiner-{j}"), ports);
        let key = joiner.key.clone();
        wait_until("node 0 dialed the candidate back", 30, || {
            members(c.api[0]).is_some_and(|v| {
                v["pending"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["public_key"] == key.as_str() && p["dial_back"] == "passed")
            })
        });
        // One operator's approval is enough in Raft mode.
        let (ok, text) =
            output(&["member", "endorse", &key, "--dir", nodes[0].dir.to_str().unwrap()]);
        assert!(ok, "{text}");
        let size = nodes.len() + 1;
        wait_until("every member lists the joiner as a voter", 30, || {
            nodes
                .iter()
                .chain([&joiner])
                .all(|n| voters(n.api).is_some_and(|v| v.len() == size && v.contains(&key)))
        });
        up.set(3 + j, true);
        nodes.push(joiner);
    }
    let grown = members(nodes[0].api).unwrap();
    assert_eq!(grown["quorum_threshold"].as_u64(), Some(3), "{grown}");

    // The current leader is removed, through another member's operator: it hands leadership
    // over (RF6), the new leader removes it, and it stops on its own (RV7).
    let leader_id = raft_view(nodes[0].api).unwrap()["leader"].as_u64().unwrap();
    let leader_key = members(nodes[0].api).unwrap()["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["node_id"].as_u64() == Some(leader_id))
        .unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = nodes.iter().position(|n| n.key == leader_key).unwrap();
    let operator = (gone + 1) % nodes.len();
    let (ok, text) = output(&[
        "member",
        "remove",
        &leader_key,
        "--reason",
        "decommissioned",
        "--dir",
        nodes[operator].dir.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let removed = nodes.remove(gone);
    let index = apis.iter().position(|a| *a == format!("127.0.0.1:{}", removed.api)).unwrap();
    wait_until("the remaining members list 4 voters, without the old leader", 30, || {
        nodes.iter().all(|n| {
            members(n.api).is_some_and(|v| {
                v["members"].as_array().unwrap().len() == 4
                    && v["retired"].as_array().unwrap().iter().any(|k| k == leader_key.as_str())
            })
        })
    });
    up.set(index, false);
    let mut removed = removed;
    let mut status = None;
    wait_until("the removed member stops on its own", 30, || {
        status = match removed.child.as_mut() {
            Some(ch) => ch.try_wait().unwrap(),
            None => c.exited(index),
        };
        status.is_some()
    });
    assert!(status.unwrap().success(), "the removed member stops cleanly: {status:?}");
    eprintln!("removed the leader, member {index}, after {:?}", started.elapsed());

    // Its key is refused afterwards: an admission with it is a typed refusal.
    let body = serde_json::json!({
        "public_key": leader_key,
        "p2p_address": "127.0.0.1:1",
        "api_address": "127.0.0.1:2",
        "public": true,
        "nonce": "00".repeat(16),
        "proof": "00".repeat(64),
    });
    let answer = http(
        &format!("127.0.0.1:{}", nodes[0].api),
        "POST",
        "/v1/admissions",
        Some(&serde_json::to_vec(&body).unwrap()),
        Duration::from_secs(5),
    );
    let (status, v) = answer.expect("a member answers");
    assert_eq!((status, v["error"].as_str()), (422, Some("membership_refused")), "{v}");
    assert!(v.to_string().contains("removed"), "{v}");

    let records = load.stop();
    let t = tally(&records);
    assert!(t.acked > 20, "the load made progress: {t:?}");
    let survivors: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.api)).collect();
    check_after_heal(&survivors, &records).unwrap();
    // `member list` shows the four voters.
    let (ok, text) = output(&["member", "list", "--node", &format!("http://{}", survivors[0])]);
    assert!(ok && text.contains("4 members"), "{text}");
    eprintln!("{t:?} in {:?}", started.elapsed());
}
