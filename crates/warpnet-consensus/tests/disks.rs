//! Disks that fail, under claim load with the client history checked: a member whose data
//! directory fills up, and a member whose fsync fails. Each stops with a one-line error that
//! says why, acknowledges nothing it has not made durable, the others carry on, and once the
//! disk is fixed and the member restarted it catches up with nothing lost.
//!
//! The full-disk test mounts a size-limited tmpfs (root only); elsewhere it says it skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::load::{check_after_heal, tally, Load, Monitor};
use common::{cluster_view, wait_until, Cluster, CLAIM_TIMEOUT_MS};
use serde_json::Value;

/// A size-limited tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, bytes: u64) -> Result<Self, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self(at.to_path_buf()))
    }

    fn available(&self) -> u64 {
        let out = Command::new("df").args(["-B1", "--output=avail"]).arg(&self.0).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn start_all(mut c: Cluster, env3: &[(&str, &str)]) -> Cluster {
    let n = c.api.len();
    for i in 0..n {
        if i == 3 {
            c.start_env(i, env3);
        } else {
            c.start(i);
        }
    }
    c.wait_progress(2, "first commits");
    wait_until("every node connected to every other", 30, || {
        (0..n).all(|i| {
            cluster_view(c.api[i]).is_some_and(|v| {
                v["members"].as_array().unwrap().iter().all(|m| m["connected"] == Value::Bool(true))
            })
        })
    });
    c
}

/// Runs claim load on all four nodes until node 3 stops on its own, then a few seconds more
/// on the other three; returns the history, node 3's last log line, and figures.
fn load_until_node_3_stops(
    c: Cluster,
    prefix: &str,
) -> (Cluster, Vec<common::load::Record>, String) {
    let addresses: Vec<String> = (0..4).map(|i| c.api_address(i)).collect();
    let c = Arc::new(Mutex::new(c));
    let live = {
        let c = c.clone();
        Arc::new(move |i: usize| c.lock().map(|c| c.children[i].is_some()).unwrap_or(true))
    };
    let wait = Duration::from_millis(CLAIM_TIMEOUT_MS + 3_000);
    let load = Load::start(addresses.clone(), 6, prefix, wait, live);
    let monitor = Monitor::start(addresses.clone(), load.began);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = c.lock().unwrap().exited(3) {
            break s;
        }
        assert!(Instant::now() < deadline, "node 3 never stopped");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopped_at = load.began.elapsed();
    assert!(!status.success(), "node 3 exits non-zero: {status:?}");
    // The other three carry on under the load.
    std::thread::sleep(Duration::from_secs(4));
    let records = load.stop();
    let heights = monitor.stop();
    let after = heights.longest_stall(&[0, 1, 2], stopped_at, stopped_at + Duration::from_secs(4));
    assert!(after < Duration::from_secs(3), "the others stalled {after:?} after node 3 stopped");
    let c = Arc::try_unwrap(c).ok().unwrap().into_inner().unwrap();
    let log = std::fs::read_to_string(c.node_dir(3).join("node.log")).unwrap();
    let last = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_owned();
    let t = tally(&records);
    eprintln!(
        "FIGURES {prefix}: node 3 stopped at {stopped_at:?}; ops done {} acked {} failed {} unknown {}; longest stall of the others after it {after:?}; its last line: {last}",
        t.done, t.acked, t.failed, t.unknown
    );
    (c, records, last)
}

/// Restarts node 3 and checks the history and every acknowledged claim on all four nodes.
fn restart_and_check(mut c: Cluster, records: &[common::load::Record]) -> Cluster {
    let restarted = Instant::now();
    c.start(3);
    let addresses: Vec<String> = (0..4).map(|i| c.api_address(i)).collect();
    check_after_heal(&addresses, records).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.exited(3).is_none(), "node 3 keeps running");
    eprintln!("FIGURES node 3 caught up and checked {:?} after its restart", restarted.elapsed());
    c
}

/// A member whose data directory (a 16 MiB tmpfs, nearly filled first) runs out of space under
/// load stops with one line saying the disk is full; the others carry on; with space freed
/// and the member restarted, it catches up and every acknowledged claim is on every node.
#[test]
fn a_full_disk_stops_the_member_with_a_clear_error_and_it_catches_up_once_space_is_freed() {
    let c = Cluster::new(4);
    let data = c.node_dir(3).join("data");
    // Mounted over the data directory `node init` made: the first start still works, since
    // the first-start marker lives beside node.toml.
    let mount = match Tmpfs::mount(&data, 16 << 20) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIPPED: cannot mount a tmpfs for the full-disk test (needs root): {e}");
            return;
        }
    };
    let c = start_all(c, &[]);
    // Leave 512 KiB: a few seconds of load.
    let ballast = data.join("ballast");
    let size = mount.available().saturating_sub(512 << 10);
    std::fs::write(&ballast, vec![0u8; size as usize]).unwrap();
    let (c, records, last) = load_until_node_3_stops(c, "df");
    assert!(
        last.starts_with("error:") && last.matches("disk is full").count() == 1,
        "node 3's last line says the disk is full: {last}"
    );
    std::fs::remove_file(&ballast).unwrap();
    let c = restart_and_check(c, &records);
    // Unmounted first, so that removing the cluster's directory finds no mount point in it.
    drop(mount);
    drop(c);
}

/// A member whose fsync fails (the storage's test-only switch fails its 150th durable write,
/// under load) stops at once with one line saying so, never retrying; the others carry on;
/// restarted (the disk "fixed"), it catches up and every acknowledged claim is everywhere.
#[test]
fn a_failed_fsync_stops_the_member_at_once_and_it_catches_up_after_a_restart() {
    let c = start_all(Cluster::new(4), &[(warpnet_storage::FAIL_SYNC_ENV, "150")]);
    let (c, records, last) = load_until_node_3_stops(c, "fs");
    assert!(
        last.starts_with("error:") && last.matches("fsync failed").count() == 1,
        "node 3's last line says the fsync failed: {last}"
    );
    drop(restart_and_check(c, &records));
}
