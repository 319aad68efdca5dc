//! Members on their own network hosts: each node runs in its own Linux network namespace,
//! joined to the others by a veth pair on a bridge the harness creates (and removes when
//! dropped). The committee lists the hosts' addresses (10.x.y.i), never 127.0.0.1; the test
//! process reaches every API through the bridge's own address, which no fault touches.
//!
//! Faults are what a host can do without `tc netem`: firewall rules inside a member's
//! namespace (iptables: drop packets from or to chosen members, silently, without a reset) and
//! link state (the veth taken down and up).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{run_ok, temp_dir, BIN};

/// Runs a command; Err with its stderr when it fails.
fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub const P2P_PORT: u16 = 7100;
pub const API_PORT: u16 = 7000;

pub struct Hosts {
    pub n: usize,
    pub dir: PathBuf,
    tag: String,
    subnet: String,
    netns: Vec<String>,
    veth: Vec<String>,
    bridge: String,
    children: Vec<Option<Child>>,
}

impl Hosts {
    /// Creates the namespaces, links and node directories, or says why it cannot (not root,
    /// no `ip`, no namespaces); nothing is left behind on failure.
    pub fn new(n: usize, claim_timeout_ms: u64) -> Result<Self, String> {
        Self::with_consensus(n, claim_timeout_ms, "hotstuff", "")
    }

    /// The same, for a committee of `consensus` (`committee create --consensus`), with
    /// `extra` in every `node.toml`.
    pub fn with_consensus(
        n: usize,
        claim_timeout_ms: u64,
        consensus: &str,
        extra: &str,
    ) -> Result<Self, String> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{}", pid % 100_000, seq);
        let subnet = format!("10.{}.{}", 100 + pid % 100, (pid / 100 % 50) * 5 + seq as u32 % 5);
        let hosts = Self {
            n,
            dir: temp_dir(),
            netns: (0..n).map(|i| format!("wn{tag}n{i}")).collect(),
            veth: (0..n).map(|i| format!("wv{tag}n{i}")).collect(),
            bridge: format!("wb{tag}"),
            tag,
            subnet,
            children: (0..n).map(|_| None).collect(),
        };
        hosts.plumb()?;
        hosts.init_nodes(claim_timeout_ms, consensus, extra);
        Ok(hosts)
    }

    fn plumb(&self) -> Result<(), String> {
        for tool in ["ip", "iptables"] {
            sh("sh", &["-c", &format!("command -v {tool}")])
                .map_err(|_| format!("`{tool}` is not installed"))?;
        }
        let bridge = self.bridge.as_str();
        sh("ip", &["link", "add", bridge, "type", "bridge"])?;
        sh("ip", &["addr", "add", &format!("{}.254/24", self.subnet), "dev", bridge])?;
        sh("ip", &["link", "set", bridge, "up"])?;
        for i in 0..self.n {
            let (ns, host_end) = (self.netns[i].as_str(), self.veth[i].as_str());
            let inner = format!("eth{i}");
            sh("ip", &["netns", "add", ns])?;
            sh(
                "ip",
                &["link", "add", host_end, "type", "veth", "peer", "name", &inner, "netns", ns],
            )?;
            sh("ip", &["link", "set", host_end, "master", bridge])?;
            sh("ip", &["link", "set", host_end, "up"])?;
            self.in_ns(i, &["ip", "addr", "add", &format!("{}/24", self.ip(i)), "dev", &inner])?;
            self.in_ns(i, &["ip", "link", "set", &inner, "up"])?;
            self.in_ns(i, &["ip", "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    fn in_ns(&self, i: usize, args: &[&str]) -> Result<(), String> {
        let mut all = vec!["netns", "exec", self.netns[i].as_str()];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    pub fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    pub fn api(&self, i: usize) -> String {
        format!("{}:{API_PORT}", self.ip(i))
    }

    pub fn apis(&self) -> Vec<String> {
        (0..self.n).map(|i| self.api(i)).collect()
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{i}"))
    }

    fn init_nodes(&self, claim_timeout_ms: u64, consensus: &str, extra: &str) {
        let mut members = Vec::new();
        for i in 0..self.n {
            let node = self.node_dir(i);
            run_ok(&[
                "node",
                "init",
                "--dir",
                node.to_str().unwrap(),
                "--p2p",
                &format!("{}:{P2P_PORT}", self.ip(i)),
                "--api",
                &self.api(i),
                "--public",
                "--committee-file",
                "../committee.toml",
            ]);
            let mut f =
                std::fs::OpenOptions::new().append(true).open(node.join("node.toml")).unwrap();
            writeln!(f, "claim_timeout_ms = {claim_timeout_ms}\n{extra}").unwrap();
            members.push(node.join("member.toml").to_str().unwrap().to_owned());
        }
        let out = self.dir.join("committee.toml");
        let mut args = vec!["committee", "create", "--network", "test", "--consensus", consensus];
        args.extend(["--out", out.to_str().unwrap()]);
        args.extend(members.iter().map(String::as_str));
        run_ok(&args);
    }

    /// Starts node `i` inside its namespace.
    pub fn start(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.node_dir(i).join("node.log"))
            .unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns[i], BIN, "node", "run", "--config"])
            .arg(self.node_dir(i).join("node.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.children[i] = Some(child);
    }

    /// kill -9 (`ip netns exec` runs the node in its own process: the pid is the node's).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_dir(i).join("node.log")).unwrap_or_default()
    }

    fn drop_rule(&self, i: usize, chain: &str, peer: usize) -> Result<(), String> {
        let flag = if chain == "INPUT" { "-s" } else { "-d" };
        self.in_ns(i, &["iptables", "-A", chain, flag, &self.ip(peer), "-j", "DROP"])
    }

    /// Member `i` and member `j` no longer exchange packets (silently dropped both ways).
    pub fn cut(&self, i: usize, j: usize) {
        for (a, b) in [(i, j), (j, i)] {
            self.drop_rule(a, "INPUT", b).unwrap();
            self.drop_rule(a, "OUTPUT", b).unwrap();
        }
    }

    /// Member `i` is cut from every other member (clients still reach it).
    pub fn isolate(&self, i: usize) {
        for j in (0..self.n).filter(|&j| j != i) {
            self.cut(i, j);
        }
    }

    /// Members in different groups are cut from each other.
    pub fn split(&self, groups: &[&[usize]]) {
        for (g, a) in groups.iter().enumerate() {
            for b in &groups[g + 1..] {
                for &i in a.iter() {
                    for &j in b.iter() {
                        self.cut(i, j);
                    }
                }
            }
        }
    }

    /// Member `i` sends to the others, but nothing from them reaches it.
    pub fn deafen(&self, i: usize) {
        for j in (0..self.n).filter(|&j| j != i) {
            self.drop_rule(i, "INPUT", j).unwrap();
        }
    }

    /// Member `i`'s link up or down (clients lose it too while it is down).
    pub fn link(&self, i: usize, up: bool) {
        sh("ip", &["link", "set", &self.veth[i], if up { "up" } else { "down" }]).unwrap();
    }

    /// Removes every fault: firewall rules flushed, links up.
    pub fn heal(&self) {
        for i in 0..self.n {
            self.in_ns(i, &["iptables", "-F"]).unwrap();
            self.link(i, true);
        }
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for i in 0..self.n {
            self.kill(i);
        }
        for i in 0..self.n {
            let _ = sh("ip", &["netns", "del", &self.netns[i]]);
            let _ = sh("ip", &["link", "del", &self.veth[i]]);
        }
        let _ = sh("ip", &["link", "del", &self.bridge]);
        if std::env::var_os("WARPNET_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
