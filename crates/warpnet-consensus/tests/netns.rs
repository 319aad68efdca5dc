//! Faults between machines: four members, each on its own network host (a Linux network
//! namespace, see `common/hosts.rs`), under steady claim load with the client history
//! recorded. Each scenario: 3 s of steady load, the fault, the heal, 5 s of recovery; then the
//! history must be linearizable (write-once register per ID), committed heights converge, and
//! every acknowledged claim reads back identically on every node. The bounds checked are the
//! ones docs/reliability.md states.
//!
//! Needs root (namespaces, veth, bridge, iptables): `ignored` by default, run by `.ci/run`:
//! `cargo nextest run -p warpnet-consensus --test netns --run-ignored only -j 1`. Where the
//! hosts cannot be made, each test says SKIPPED and why.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::hosts::Hosts;
use common::load::{check_after_heal, http, tally, Heights, Load, Monitor, Record};
use serde_json::Value;
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::SchemeId;

/// How long a claim waits for its commit (node.toml `claim_timeout_ms`).
const CLAIM_TIMEOUT_MS: u64 = 2_000;
/// A silent member is declared unreachable within this (1 s of silence, a heartbeat period,
/// and the loop's turn), by every member that lost it.
const DETECT_BOUND: Duration = Duration::from_millis(2_500);
/// With one member cut off, the other three commit with no gap longer than this.
const STALL_BOUND: Duration = Duration::from_secs(5);
/// After a heal, commits resume within this.
const HEAL_BOUND: Duration = Duration::from_secs(5);
/// How long each fault is held.
const FAULT: Duration = Duration::from_secs(6);

struct Run {
    name: &'static str,
    hosts: Hosts,
    load: Load,
    monitor: Monitor,
}

fn connected_count(address: &str) -> Option<usize> {
    let (s, v) = http(address, "GET", "/v1/cluster", None, Duration::from_secs(2))?;
    (s == 200).then(|| {
        let me = v["node_id"].as_u64();
        v["members"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter(|m| m["connected"] == Value::Bool(true) && m["node_id"].as_u64() != me)
                    .count()
            })
            .unwrap_or(0)
    })
}

fn wait_for(what: &str, bound: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < bound {
        if f() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within {bound:?}");
}

/// Makes the hosts, starts the committee and the load, and runs 3 s of steady load.
fn begin(name: &'static str) -> Option<Run> {
    let mut hosts = match Hosts::new(4, CLAIM_TIMEOUT_MS) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("SKIPPED {name}: cannot create network namespaces here (needs root, iproute2, iptables): {e}");
            return None;
        }
    };
    for i in 0..4 {
        hosts.start(i);
    }
    let apis = hosts.apis();
    let up = Duration::from_secs(30);
    wait_for("every member connected to every other", up, || {
        apis.iter().all(|a| connected_count(a) == Some(3))
    });
    wait_for("first commits", up, || {
        apis.iter().all(|a| common::load::height_of(a).is_some_and(|h| h >= 2))
    });
    let wait = Duration::from_millis(CLAIM_TIMEOUT_MS + 3_000);
    let load = Load::start(
        apis.clone(),
        6,
        &format!("{}_", &name[..2]),
        wait,
        std::sync::Arc::new(|_| true),
    );
    let monitor = Monitor::start(apis, load.began);
    std::thread::sleep(Duration::from_secs(3));
    Some(Run { name, hosts, load, monitor })
}

impl Run {
    fn now(&self) -> Duration {
        self.load.began.elapsed()
    }

    fn leader(&self) -> usize {
        let (_, v) = http(&self.hosts.api(0), "GET", "/v1/cluster", None, Duration::from_secs(2))
            .expect("node 0 answers");
        v["leader"].as_u64().unwrap() as usize
    }

    /// Heals, runs 5 s of recovery, stops the load, checks everything, prints the figures.
    /// `fault` is when the fault was on; `majority` the members that should have kept
    /// committing meanwhile (empty when none could).
    fn finish(self, fault: (Duration, Duration), majority: &[usize]) -> (Vec<Record>, Heights) {
        let Run { name, hosts, load, monitor } = self;
        hosts.heal();
        let healed = load.began.elapsed();
        let apis = hosts.apis();
        let reconnected =
            wait_for("every member connected again after the heal", HEAL_BOUND, || {
                apis.iter().all(|a| connected_count(a) == Some(3))
            });
        std::thread::sleep(Duration::from_secs(5));
        let records = load.stop();
        let heights = monitor.stop();
        let end = heights.0.last().map_or(Duration::ZERO, |s| s.0);
        let checked = check_after_heal(&apis, &records);
        let all = [0, 1, 2, 3];
        let stall_during = heights.longest_stall(majority, fault.0, fault.1);
        let resumed = heights.resumed_after(&all, healed);
        let stall_overall = heights.longest_stall(&all, Duration::ZERO, end);
        let t = tally(&records);
        eprintln!(
            "FIGURES {{\"scenario\": \"{name}\", \"duration_s\": {:.1}, \"fault_s\": {:.1}, \"done\": {}, \"acked\": {}, \"failed\": {}, \"unknown\": {}, \"linearizable\": {}, \"longest_stall_majority_during_fault_ms\": {}, \"commits_resumed_after_heal_ms\": {}, \"reconnected_after_heal_ms\": {}, \"longest_stall_overall_ms\": {}}}",
            end.as_secs_f64(),
            (fault.1 - fault.0).as_secs_f64(),
            t.done,
            t.acked,
            t.failed,
            t.unknown,
            checked.is_ok(),
            if majority.is_empty() { "null".into() } else { stall_during.as_millis().to_string() },
            resumed.map_or("null".into(), |d| d.as_millis().to_string()),
            reconnected.as_millis(),
            stall_overall.as_millis(),
        );
        checked.unwrap_or_else(|e| panic!("{name}: {e}"));
        if !majority.is_empty() {
            assert!(stall_during <= STALL_BOUND, "{name}: the majority stalled {stall_during:?}");
        }
        let resumed = resumed.unwrap_or_else(|| panic!("{name}: commits never resumed"));
        assert!(resumed <= HEAL_BOUND, "{name}: commits resumed {resumed:?} after the heal");
        assert!(t.acked > 0, "{name}: nothing acknowledged");
        drop(hosts);
        (records, heights)
    }
}

/// Every member other than `cut` sees `cut` gone, and `cut` sees `expect_left` members,
/// within the detection bound; a log says which member is unreachable.
fn detected(run: &Run, cut: usize, expect_left: usize, since: Instant) -> Duration {
    let apis = run.hosts.apis();
    wait_for("the members notice the silence", DETECT_BOUND * 2, || {
        connected_count(&apis[cut]) == Some(expect_left)
    });
    let took = since.elapsed();
    assert!(took <= DETECT_BOUND, "{}: detected after {took:?}", run.name);
    let logged = (0..4).any(|i| run.hosts.log(i).contains("member unreachable"));
    assert!(logged, "{}: no log says a member is unreachable", run.name);
    took
}

/// A claim on node `i` during a fault that leaves it without a quorum: 503 `no_quorum`, not
/// submitted, naming the reachable count, answered at once; a lookup there still answers.
fn refused_at_once(run: &Run, i: usize, reachable: u64, probe: u64) {
    let key = signer_from_seed(SchemeId::Ed25519, 50_000 + probe);
    let id = format!("probe_{}_{probe}", run.hosts.tag());
    let body = common::load::claim_body(key.as_ref(), &id, &format!("p{probe}"));
    let started = Instant::now();
    let (status, v) =
        http(&run.hosts.api(i), "POST", "/v1/claims", Some(&body), Duration::from_secs(10))
            .expect("the node answers");
    let took = started.elapsed();
    assert_eq!(
        (status, v["error"].as_str(), v["outcome"].as_str()),
        (503, Some("no_quorum"), Some("not_submitted")),
        "{}: node {i}: {v}",
        run.name
    );
    assert_eq!(v["reachable"].as_u64(), Some(reachable), "{}: node {i}: {v}", run.name);
    assert!(took < Duration::from_secs(1), "{}: answered after {took:?}", run.name);
    let (status, v) =
        http(&run.hosts.api(i), "GET", "/v1/users/probe_none", None, Duration::from_secs(5))
            .expect("lookups keep answering");
    assert_eq!(status, 404, "{}: node {i}: {v}", run.name);
}

#[test]
#[ignore = "needs root: network namespaces (run by .ci/run)"]
fn isolating_the_leader_the_others_carry_on_and_it_rejoins() {
    let Some(run) = begin("isolate_leader") else { return };
    let leader = run.leader();
    let from = run.now();
    let since = Instant::now();
    run.hosts.isolate(leader);
    detected(&run, leader, 0, since);
    refused_at_once(&run, leader, 1, 1);
    std::thread::sleep(FAULT.saturating_sub(since.elapsed()));
    let to = run.now();
    let majority: Vec<usize> = (0..4).filter(|&i| i != leader).collect();
    run.finish((from, to), &majority);
}

#[test]
#[ignore = "needs root: network namespaces (run by .ci/run)"]
fn isolating_a_follower_the_others_carry_on_and_it_rejoins() {
    let Some(run) = begin("isolate_follower") else { return };
    let follower = (run.leader() + 2) % 4;
    let from = run.now();
    let since = Instant::now();
    run.hosts.isolate(follower);
    detected(&run, follower, 0, since);
    refused_at_once(&run, follower, 1, 1);
    std::thread::sleep(FAULT.saturating_sub(since.elapsed()));
    let to = run.now();
    let majority: Vec<usize> = (0..4).filter(|&i| i != follower).collect();
    run.finish((from, to), &majority);
}

/// 2 | 2: no side has a quorum. Claims on every node are refused at once, not submitted,
/// saying 2 members are reachable; lookups answer on both sides; after the heal, commits
/// resume and everything converges.
#[test]
#[ignore = "needs root: network namespaces (run by .ci/run)"]
fn a_two_two_split_refuses_claims_at_once_lookups_answer_and_it_heals() {
    let Some(run) = begin("split_2_2") else { return };
    let from = run.now();
    let since = Instant::now();
    run.hosts.split(&[&[0, 1], &[2, 3]]);
    for i in 0..4 {
        detected(&run, i, 1, since);
    }
    for i in 0..4 {
        refused_at_once(&run, i, 2, i as u64);
    }
    std::thread::sleep(FAULT.saturating_sub(since.elapsed()));
    let to = run.now();
    let (records, _) = run.finish((from, to), &[]);
    // Claims sent once the split was detected were refused, not left unknown.
    let refused =
        records.iter().filter(|r| r.status == 503 && r.body["outcome"] == "not_submitted").count();
    assert!(refused > 0, "some claims met the split and were refused at once");
}

/// A member that can send but not receive (its firewall drops what the others send it).
#[test]
#[ignore = "needs root: network namespaces (run by .ci/run)"]
fn a_member_that_cannot_hear_the_others_costs_them_little_and_rejoins() {
    let Some(run) = begin("one_way") else { return };
    let deaf = (run.leader() + 1) % 4;
    let from = run.now();
    run.hosts.deafen(deaf);
    std::thread::sleep(FAULT);
    let to = run.now();
    let majority: Vec<usize> = (0..4).filter(|&i| i != deaf).collect();
    run.finish((from, to), &majority);
}

/// A member whose link goes down and up every second, four times.
#[test]
#[ignore = "needs root: network namespaces (run by .ci/run)"]
fn a_flapping_link_costs_the_others_little_and_the_member_rejoins() {
    let Some(run) = begin("flapping") else { return };
    let flapping = (run.leader() + 3) % 4;
    let from = run.now();
    for _ in 0..4 {
        run.hosts.link(flapping, false);
        std::thread::sleep(Duration::from_secs(1));
        run.hosts.link(flapping, true);
        std::thread::sleep(Duration::from_secs(1));
    }
    let to = run.now();
    let majority: Vec<usize> = (0..4).filter(|&i| i != flapping).collect();
    run.finish((from, to), &majority);
}

/// A member killed with -9 and restarted 3 s later rejoins: connected to every member and
/// caught up within MISSION's 2 s of its process starting (plus the process's own start).
#[test]
#[ignore = "needs root: network namespaces (run by .ci/run)"]
fn a_restarted_member_rejoins_the_quorum_within_two_seconds() {
    let Some(mut run) = begin("restart") else { return };
    let victim = (run.leader() + 2) % 4;
    let from = run.now();
    run.hosts.kill(victim);
    std::thread::sleep(Duration::from_secs(3));
    let apis = run.hosts.apis();
    let others: Vec<usize> = (0..4).filter(|&i| i != victim).collect();
    let target = others.iter().filter_map(|&i| common::load::height_of(&apis[i])).max().unwrap();
    run.hosts.start(victim);
    let answering = wait_for("the restarted node answers", Duration::from_secs(10), || {
        common::load::height_of(&apis[victim]).is_some()
    });
    let rejoined =
        wait_for("connected to every member and caught up", Duration::from_secs(10), || {
            connected_count(&apis[victim]) == Some(3)
                && others.iter().all(|&i| connected_count(&apis[i]) == Some(3))
                && common::load::height_of(&apis[victim]).is_some_and(|h| h >= target)
        });
    eprintln!(
        "FIGURES {{\"scenario\": \"restart_rejoin\", \"api_up_ms\": {}, \"rejoined_ms\": {}}}",
        answering.as_millis(),
        rejoined.as_millis()
    );
    assert!(
        rejoined.saturating_sub(answering) <= Duration::from_secs(2),
        "rejoined {rejoined:?} after the spawn, its API up after {answering:?}"
    );
    let to = run.now();
    run.finish((from, to), &others);
}
