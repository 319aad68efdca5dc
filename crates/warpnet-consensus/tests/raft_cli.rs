//! Raft mode's commands from the built binary: `dev --consensus raft` with the README's claim
//! and lookup commands, and `committee create --consensus raft`'s rule on public members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::raft::raft_view;
use common::{cluster_view, free_port, run_ok, temp_dir, wait_until, BIN};

/// `dev --consensus raft` starts three members; the README's claim and lookup commands work
/// against it; `/v1/cluster` says Raft, with the term, the leader and the commit index, and
/// `cluster status` prints them.
#[test]
fn dev_consensus_raft_runs_three_members_that_serve_the_readme_commands() {
    let dir = temp_dir();
    // Three consecutive free API ports and three p2p ports (dev uses base + i).
    let base = |avoid: u16| {
        (0..200)
            .map(|_| free_port())
            .find(|&p| {
                p.abs_diff(avoid) > 3
                    && (1..3).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok())
            })
            .unwrap()
    };
    let api = base(0);
    let p2p = base(api);
    let mut dev = std::process::Command::new(BIN)
        .args(["dev", "--consensus", "raft", "--dir"])
        .arg(dir.join("dev"))
        .args(["--api-port", &api.to_string(), "--p2p-port", &p2p.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stop = |dev: &mut std::process::Child| {
        let _ = std::process::Command::new("kill").args(["-TERM", &dev.id().to_string()]).status();
        let _ = dev.wait();
    };
    let result = std::panic::catch_unwind(|| {
        wait_until("three members with a leader", 30, || {
            (0..3).all(|i| {
                raft_view(api + i)
                    .is_some_and(|r| r["leader"].is_u64() && r["commit_index"].as_u64() >= Some(1))
            })
        });
        let committee = std::fs::read_to_string(dir.join("dev/committee.toml")).unwrap();
        assert!(committee.contains("consensus = \"raft\""), "{committee}");
        let v = cluster_view(api).unwrap();
        assert_eq!(v["consensus"], "raft");
        assert_eq!(v["total_nodes"], 3);
        assert_eq!(v["faulty_nodes"], 1);
        assert_eq!(v["quorum_threshold"], 2);
        assert!(v["raft"]["term"].as_u64().unwrap() >= 1);
        assert!(v["members"].as_array().unwrap().iter().all(|m| m["voter"] == true));
        let node = |i: u16| format!("http://127.0.0.1:{}", api + i);
        let key = dir.join("alice.key");
        let out = |args: &[&str]| {
            let o = std::process::Command::new(BIN).args(args).current_dir(&dir).output().unwrap();
            assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        out(&["user", "keygen", "--out", key.to_str().unwrap()]);
        let claimed =
            out(&["user", "claim", "@alice", "--key", key.to_str().unwrap(), "--node", &node(1)]);
        assert!(claimed.contains("claimed @alice"), "{claimed}");
        let looked = out(&["user", "lookup", "@alice", "--linearizable", "--node", &node(2)]);
        assert!(looked.contains("@alice is owned by key"), "{looked}");
        let again =
            out(&["user", "claim", "@alice", "--key", key.to_str().unwrap(), "--node", &node(0)]);
        assert!(again.contains("@alice"), "a retry gets the recorded result: {again}");
        let status = out(&["cluster", "status", "--node", &node(0)]);
        assert!(status.contains("consensus raft") && status.contains("term"), "{status}");
        assert!(status.contains("commit index"), "{status}");
    });
    stop(&mut dev);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// A Raft committee needs a public voter (only public members lead): `committee create
/// --consensus raft` refuses one without, naming the rule, and writes nothing.
#[test]
fn committee_create_refuses_a_raft_committee_without_a_public_member() {
    let dir = temp_dir();
    let mut members = Vec::new();
    for i in 0..3 {
        let node = dir.join(format!("node-{i}"));
        let (p, a) = (format!("127.0.0.1:{}", 40_000 + i), format!("127.0.0.1:{}", 41_000 + i));
        run_ok(&["node", "init", "--dir", node.to_str().unwrap(), "--p2p", &p, "--api", &a]);
        members.push(node.join("member.toml").to_str().unwrap().to_owned());
    }
    let out = dir.join("committee.toml");
    let mut args = vec!["committee", "create", "--network", "test", "--consensus", "raft"];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(members.iter().map(String::as_str));
    let o = std::process::Command::new(BIN).args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("public"), "{stderr}");
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
