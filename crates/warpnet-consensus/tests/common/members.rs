//! Committee-change helpers of the multi-process tests (`membership.rs`, `raft_voters.rs`,
//! `health.rs`): a member's view of the committee, a member's key, the CLI's output, and a
//! candidate that runs `node join --via` node 0 of a test cluster.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::{get, wait_until, Cluster, BIN};

/// `GET /v1/members` of the node at `port`, if it answers 200 with JSON.
pub fn members(port: u16) -> Option<Value> {
    let (status, body) = get(port, "/v1/members")?;
    (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

/// The public key in a node directory's `member.toml`.
pub fn key_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("member.toml")).unwrap();
    let m: toml::Value = toml::from_str(&text).unwrap();
    m["public_key"].as_str().unwrap().to_owned()
}

/// Runs the binary; whether it succeeded, and its stdout and stderr together.
pub fn output(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A member of a test: its directory, API port, key, and its process if the test started it
/// (killed when the test drops it).
pub struct Node {
    pub dir: PathBuf,
    pub api: u16,
    pub key: String,
    pub child: Option<Child>,
}

impl Node {
    /// Founding member `i` of `c` (its process belongs to the cluster).
    pub fn founder(c: &Cluster, i: usize) -> Self {
        Self { dir: c.node_dir(i), api: c.api[i], key: key_of(&c.node_dir(i)), child: None }
    }

    /// A candidate in `c.dir/<name>` that asks node 0 to join (`node join --via`, public,
    /// verifying the committee from genesis) on the given API and p2p ports, its output in
    /// `c.dir/<name>.log`; returned once it has written its key.
    pub fn join(c: &Cluster, name: &str, (api, p2p): (u16, u16)) -> Self {
        let dir = c.dir.join(name);
        let log = std::fs::File::create(c.dir.join(format!("{name}.log"))).unwrap();
        let via = format!("http://{}", c.api_address(0));
        let genesis = c.dir.join("committee.toml");
        let child = Command::new(BIN)
            .args(["node", "join", "--via", &via, "--dir", dir.to_str().unwrap()])
            .args(["--p2p", &format!("127.0.0.1:{p2p}"), "--api", &format!("127.0.0.1:{api}")])
            .args(["--public", "--genesis", genesis.to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut node = Self { dir, api, key: String::new(), child: Some(child) };
        wait_until("the candidate's files", 30, || node.dir.join("member.toml").exists());
        node.key = key_of(&node.dir);
        node
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
