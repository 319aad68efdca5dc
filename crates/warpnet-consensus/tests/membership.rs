//! Committee changes between real processes, from the built binary: a node joins a running
//! committee (`node join`, endorsed by the members' operators with `member endorse`), a member
//! is removed (`member remove`), both under claim load whose whole history is checked
//! (linearizable, no acknowledged claim lost, every node answers alike); the removed member
//! lingers, stops, is refused if it comes back, and its key can never rejoin.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::load::{check_after_heal, http, tally, Load};
use common::{get, run_ok, start_all_with, wait_until, BIN};
use serde_json::Value;
use warpnet_node::membership::operator;

fn members(port: u16) -> Option<Value> {
    let (status, body) = get(port, "/v1/members")?;
    (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

fn key_of(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(dir.join("member.toml")).unwrap();
    let m: toml::Value = toml::from_str(&text).unwrap();
    m["public_key"].as_str().unwrap().to_owned()
}

fn output(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

struct Joiner(Child);

impl Drop for Joiner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_joins_and_a_member_leaves_under_load_without_losing_a_claim() {
    let mut c = start_all_with(4, "linger_ms = 3000");
    let genesis_epoch = members(c.api[0]).unwrap()["epoch"].as_u64().unwrap();

    // Claim load on the four members (and on the joiner once it is one), history recorded.
    let (ja, jp) = (common::free_port(), common::free_port());
    let mut nodes: Vec<String> = (0..4).map(|i| c.api_address(i)).collect();
    nodes.push(format!("127.0.0.1:{ja}"));
    let up: Arc<Vec<AtomicBool>> = Arc::new((0..5).map(|i| AtomicBool::new(i < 4)).collect());
    let live = {
        let up = up.clone();
        Arc::new(move |i: usize| up[i].load(Ordering::Relaxed))
    };
    let load = Load::start(nodes.clone(), 4, "m", Duration::from_secs(4), live);

    // The candidate: key, config, the committee verified from genesis, its request; it runs.
    let jdir = c.dir.join("joiner");
    let log = std::fs::File::create(c.dir.join("joiner.log")).unwrap();
    let via = format!("http://{}", c.api_address(0));
    let genesis = c.dir.join("committee.toml");
    let child = Command::new(BIN)
        .args(["node", "join", "--via", &via, "--dir", jdir.to_str().unwrap()])
        .args(["--p2p", &format!("127.0.0.1:{jp}"), "--api", &format!("127.0.0.1:{ja}")])
        .args(["--public", "--genesis", genesis.to_str().unwrap()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let _joiner = Joiner(child);
    wait_until("the candidate's request reached node 0", 30, || {
        std::fs::metadata(jdir.join("member.toml")).is_ok()
    });
    let candidate = key_of(&jdir);
    wait_until("every member dialed the candidate back", 30, || {
        (0..4).all(|i| {
            members(c.api[i]).is_some_and(|v| {
                v["pending"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["public_key"] == candidate.as_str() && p["dial_back"] == "passed")
            })
        })
    });

    // An instruction to node 0 signed by another node's key is refused, and changes nothing.
    let other = warpnet_node::files::read_key(&c.node_dir(1).join("node.key")).unwrap();
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as u64;
    let action = operator::Action::Endorse { public_key: candidate.clone() };
    let forged = operator::sign(&common::load::network(), action, now_ms, &other);
    let body = serde_json::to_vec(&forged).unwrap();
    let answer = http(&nodes[0], "POST", "/v1/operator", Some(&body), Duration::from_secs(5));
    let (status, v) = answer.expect("node 0 answers");
    assert_eq!((status, v["error"].as_str()), (403, Some("forbidden")), "{v}");
    // Operators of three of four members endorse: a quorum.
    for i in [1, 0, 2] {
        let (ok, text) =
            output(&["member", "endorse", &candidate, "--dir", c.node_dir(i).to_str().unwrap()]);
        assert!(ok, "member endorse on node {i}: {text}");
    }
    wait_until("the committee has five members, the joiner among them", 60, || {
        (0..4)
            .all(|i| members(c.api[i]).is_some_and(|v| v["members"].as_array().unwrap().len() == 5))
            && members(ja).is_some_and(|v| v["node_id"].is_u64())
    });
    let after_add = members(c.api[0]).unwrap();
    assert_eq!(after_add["epoch"].as_u64(), Some(genesis_epoch + 1), "{after_add}");
    assert_eq!(after_add["quorum_threshold"], 4);
    up[4].store(true, Ordering::Relaxed);
    wait_until("the joiner commits with the others", 60, || {
        let h0 = c.height(0);
        common::cluster_view(ja)
            .and_then(|v| v["committed_height"].as_u64())
            .is_some_and(|h| h + 2 >= h0 && h > 0)
    });

    // Removal of member 1, asked by the operators of four of five members.
    let removed = key_of(&c.node_dir(1));
    for dir in [c.node_dir(0), c.node_dir(2), c.node_dir(3), jdir.clone()] {
        let (ok, text) = output(&[
            "member",
            "remove",
            &removed,
            "--reason",
            "decommissioned",
            "--dir",
            dir.to_str().unwrap(),
        ]);
        assert!(ok, "member remove from {}: {text}", dir.display());
    }
    wait_until("member 1 is out of the committee", 60, || {
        [0, 2, 3].iter().all(|&i| {
            members(c.api[i]).is_some_and(|v| {
                v["members"].as_array().unwrap().len() == 4
                    && v["retired"].as_array().unwrap().iter().any(|k| k == removed.as_str())
            })
        })
    });
    up[1].store(false, Ordering::Relaxed);
    // EP5: it lingers (3 s here), then stops on its own, successfully.
    wait_until("the removed member stops after lingering", 30, || c.exited(1).is_some());
    // More commits in the new committee, under load.
    c.wait_progress(3, "commits after the removal");

    let records = load.stop();
    let t = tally(&records);
    assert!(t.acked > 20, "the load made progress: {t:?}");
    let survivors: Vec<String> = [0, 2, 3, 4].iter().map(|&i| nodes[i].clone()).collect();
    check_after_heal(&survivors, &records).unwrap();

    // The removed key is retired: it can never run as a member again.
    let (ok, text) =
        output(&["node", "run", "--config", c.node_dir(1).join("node.toml").to_str().unwrap()]);
    assert!(!ok && text.contains("removed from the committee"), "{text}");
    // `member list` shows the epoch and the new committee.
    let (ok, text) = output(&["member", "list", "--node", &format!("http://{}", c.api_address(0))]);
    assert!(ok && text.contains(&format!("epoch {}", genesis_epoch + 2)), "{text}");
    run_ok(&["cluster", "status", "--node", &format!("http://{}", c.api_address(2))]);
}
