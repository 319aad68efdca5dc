//! `dev`: a local cluster on 127.0.0.1, each node its own OS process (so any one can be killed
//! and restarted), created on first use and brought back with its data afterwards.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use tokio::process::Command;
use tokio::sync::mpsc;
use warpnet_node::files::{read_toml, CommitteeFile};

use crate::node::{create_committee, init, Consensus, InitArgs};
use crate::pidfile;

#[derive(Args)]
pub struct DevArgs {
    /// Number of nodes (default: 4 for HotStuff, which then tolerates one faulty member; 3 for
    /// Raft, which then tolerates one crashed member).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub nodes: Option<u16>,
    /// The cluster's consensus, fixed when the cluster is created: `hotstuff` or `raft`.
    #[arg(long, value_enum, default_value_t = Consensus::Hotstuff)]
    pub consensus: Consensus,
    /// Directory holding the nodes' keys, configs, data and logs.
    #[arg(long, default_value = ".warpnet-dev", global = true)]
    pub dir: PathBuf,
    /// API port of node 0 (node i uses api-port + i).
    #[arg(long, default_value_t = 7000)]
    pub api_port: u16,
    /// Member-to-member port of node 0 (node i uses p2p-port + i).
    #[arg(long, default_value_t = 7100)]
    pub p2p_port: u16,
    /// Grow or shrink the cluster `dev` runs (in another terminal).
    #[command(subcommand)]
    pub action: Option<DevAction>,
}

#[derive(Subcommand)]
pub enum DevAction {
    /// A new node joins the running cluster (its request, the members' endorsements).
    Add,
    /// The members remove node N; it lingers, then stops.
    Remove {
        /// The node's index (its directory is node-N).
        n: u16,
    },
}

/// Starts node `i` of a prepared cluster as a child process, its output in `node-i/node.log`.
pub fn spawn_node(exe: &Path, dir: &Path, i: u16) -> anyhow::Result<tokio::process::Child> {
    let dir = node_dir(dir, i);
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("node.log"))?;
    Command::new(exe)
        .args(["node", "run", "--config"])
        .arg(dir.join("node.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting node {i}"))
}

fn node_dir(dir: &Path, i: u16) -> PathBuf {
    dir.join(format!("node-{i}"))
}

impl DevArgs {
    /// The number of nodes asked for, or the consensus's default.
    pub fn node_count(&self) -> u16 {
        self.nodes.unwrap_or(match self.consensus {
            Consensus::Hotstuff => 4,
            Consensus::Raft => 3,
        })
    }
}

/// Creates the cluster's files, or checks the existing ones match the request.
pub fn prepare(a: &DevArgs) -> anyhow::Result<()> {
    let committee_path = a.dir.join("committee.toml");
    let nodes = a.node_count();
    if committee_path.exists() {
        let c: CommitteeFile = read_toml(&committee_path)?;
        let consensus: warpnet_node::files::Consensus = a.consensus.into();
        if c.consensus != consensus {
            bail!(
                "{} holds a {} cluster (fixed at its creation); run `dev --consensus {}` or pick another --dir",
                a.dir.display(),
                c.consensus.as_str(),
                c.consensus.as_str()
            );
        }
        if c.members.len() != usize::from(nodes) {
            bail!(
                "{} holds a cluster of {} nodes; run `dev --nodes {}` or pick another --dir",
                a.dir.display(),
                c.members.len(),
                c.members.len()
            );
        }
        return Ok(());
    }
    let mut members = Vec::new();
    for i in 0..nodes {
        let dir = node_dir(&a.dir, i);
        init(&InitArgs {
            dir: dir.clone(),
            p2p: format!("127.0.0.1:{}", a.p2p_port + i),
            api: format!("127.0.0.1:{}", a.api_port + i),
            public: true,
            committee_file: "../committee.toml".into(),
        })
        .with_context(|| format!("creating node {i}"))?;
        members.push(dir.join("member.toml"));
    }
    create_committee("dev", 1, a.consensus, &members, &committee_path)?;
    Ok(())
}

/// Asks the process to stop. One already gone is what was wanted: Ctrl-C in a terminal reaches
/// the nodes `dev` started too (one process group), so they often exit before this runs, and
/// kill's "No such process" would only be noise.
pub async fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
}

pub async fn run(a: DevArgs) -> anyhow::Result<()> {
    match a.action {
        Some(DevAction::Add) => return crate::dev_members::add(&a.dir).await,
        Some(DevAction::Remove { n }) => return crate::dev_members::remove(&a.dir, n).await,
        None => {}
    }
    let nodes = a.node_count();
    let (api_last, p2p_last) = (
        u32::from(a.api_port) + u32::from(nodes) - 1,
        u32::from(a.p2p_port) + u32::from(nodes) - 1,
    );
    if api_last > u32::from(u16::MAX) || p2p_last > u32::from(u16::MAX) {
        bail!("ports {}..{api_last} or {}..{p2p_last} go past 65535", a.api_port, a.p2p_port);
    }
    if u32::from(a.api_port) <= p2p_last && u32::from(a.p2p_port) <= api_last {
        bail!(
            "the API ports ({}..={api_last}) and p2p ports ({}..={p2p_last}) overlap",
            a.api_port,
            a.p2p_port
        );
    }
    if !a.dir.join("committee.toml").exists() && node_dir(&a.dir, 0).exists() {
        bail!("{} holds nodes but no committee.toml (an interrupted setup?): remove it and run dev again", a.dir.display());
    }
    prepare(&a)?;
    let exe = std::env::current_exe().context("finding this executable")?;
    let committee: CommitteeFile = read_toml(&a.dir.join("committee.toml"))?;
    let (exited_tx, mut exited) = mpsc::channel(64);
    let mut children = Vec::new();
    println!("{:<5} {:<24} {:<8} log", "node", "api", "pid");
    // The genesis members, and any node `dev add` added since.
    for (i, dir) in crate::dev_members::node_dirs(&a.dir) {
        let api = match committee.members.get(usize::from(i)) {
            Some(m) => m.api_address.clone().unwrap_or_default(),
            None => read_toml::<warpnet_node::files::NodeFile>(&dir.join("node.toml"))?.api_listen,
        };
        let log = dir.join("node.log");
        if let Some(pid) = pidfile::running(&dir) {
            println!(
                "{i:<5} {:<24} {pid:<8} {} (already running, not started here)",
                format!("http://{api}"),
                log.display()
            );
            continue;
        }
        let mut child = spawn_node(&exe, &a.dir, i)?;
        let pid = child.id().unwrap_or(0);
        children.push((i, pid));
        println!("{i:<5} {:<24} {pid:<8} {}", format!("http://{api}"), log.display());
        let tx = exited_tx.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = tx
                .send((i, pid, status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())))
                .await;
        });
    }
    drop(exited_tx);
    println!();
    println!("status:     {} cluster status --node http://127.0.0.1:{}", exe.display(), a.api_port);
    println!(
        "restart i:  {} node run --config {}",
        exe.display(),
        node_dir(&a.dir, 0).join("node.toml").display().to_string().replace("node-0", "node-<i>")
    );
    println!(
        "Ctrl-C stops every node of {}: those started here and any started by hand with `node run` on its directories (found through each node's {}).",
        a.dir.display(),
        pidfile::NAME
    );
    let mut running = children.len();
    let mut gone = std::collections::HashSet::new();
    let shutdown = warpnet_node::shutdown_signal();
    tokio::pin!(shutdown);
    let mut children_left = running > 0;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            e = exited.recv(), if children_left => match e {
                Some((i, pid, status)) => {
                    running -= 1;
                    gone.insert(pid);
                    println!("node {i} (pid {pid}) exited: {status}; {running} started here still running");
                }
                None => {
                    children_left = false;
                    let others = by_hand(&a, &[]);
                    if others.is_empty() {
                        println!("every node has exited");
                        return Ok(());
                    }
                    println!("every node started here has exited; {} started by hand still run: Ctrl-C stops them", others.len());
                }
            },
        }
    }
    // Only children still running: an exited child's pid may belong to another process now.
    let mut stopping: Vec<(u16, u32, &str)> = children
        .iter()
        .filter(|(_, pid)| !gone.contains(pid))
        .map(|&(i, pid)| (i, pid, "started here"))
        .collect();
    let mine: Vec<u32> = stopping.iter().map(|(_, pid, _)| *pid).collect();
    let others = by_hand(&a, &mine);
    stopping.extend(others.iter().map(|&(i, pid)| (i, pid, "started by hand")));
    let list: Vec<String> =
        stopping.iter().map(|(i, pid, how)| format!("node {i} (pid {pid}, {how})")).collect();
    println!("stopping {} nodes: {}", stopping.len(), list.join(", "));
    for (_, pid, _) in &stopping {
        terminate(*pid).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while running > 0 {
        match tokio::time::timeout_at(deadline, exited.recv()).await {
            Ok(Some(_)) => running -= 1,
            _ => break,
        }
    }
    while others.iter().any(|(_, pid)| pidfile::alive(*pid))
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (i, pid) in others.iter().filter(|(_, pid)| pidfile::alive(*pid)) {
        println!("node {i} (pid {pid}) did not stop within 10 s");
    }
    Ok(())
}

/// Nodes of the cluster running now, found through their pid files, other than `mine` (the
/// children still running).
fn by_hand(a: &DevArgs, mine: &[u32]) -> Vec<(u16, u32)> {
    // Every node directory: `dev add` makes more than the cluster started with.
    crate::dev_members::node_dirs(&a.dir)
        .into_iter()
        .filter_map(|(i, d)| pidfile::running(&d).map(|pid| (i, pid)))
        .filter(|(_, pid)| !mine.contains(pid))
        .collect()
}
