//! `dev add` and `dev remove N`: grow and shrink a running local cluster through the log, as
//! operators would (a candidate's request, endorsements from the members' operators: `dev` holds
//! every member's key), without restarting it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::Value;
use warpnet_node::files::{read_toml, Loaded, MemberEntry, NodeFile};
use warpnet_node::membership::operator::{self, Action};

use crate::member::{prepare, request, JoinArgs};

/// The cluster's node directories (`node-0`, `node-1`, ...), by index.
pub fn node_dirs(dir: &Path) -> Vec<(u16, PathBuf)> {
    let mut out: Vec<(u16, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let i = name.strip_prefix("node-")?.parse().ok()?;
            Some((i, e.path()))
        })
        .collect();
    out.sort();
    out
}

fn key_of(dir: &Path) -> anyhow::Result<String> {
    let m: MemberEntry = read_toml(&dir.join("member.toml"))?;
    Ok(m.public_key)
}

async fn members(api: &str) -> anyhow::Result<Value> {
    let (status, body) = warpnet_client::get(&format!("http://{api}/v1/members")).await?;
    if status != 200 {
        bail!("http://{api}/v1/members answered {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// The API address of a running member, and the directories of the current members.
async fn committee(dir: &Path) -> anyhow::Result<(String, Vec<PathBuf>)> {
    let mut last = None;
    for (_, d) in node_dirs(dir) {
        let node: NodeFile = read_toml(&d.join("node.toml"))?;
        match members(&node.api_listen).await {
            Ok(v) => {
                let keys: Vec<String> = v["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m["public_key"].as_str().map(str::to_owned))
                    .collect();
                let dirs = node_dirs(dir)
                    .into_iter()
                    .map(|(_, d)| d)
                    .filter(|d| key_of(d).is_ok_and(|k| keys.contains(&k)))
                    .collect();
                return Ok((node.api_listen, dirs));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no node in {}", dir.display())))
        .context("no node of the cluster answers: is `dev` running?")
}

/// Each member's operator (dev holds their keys) signs `action` for its own node.
async fn instruct_all(dirs: &[PathBuf], action: &Action) -> anyhow::Result<usize> {
    let mut done = 0;
    for d in dirs {
        let loaded = Loaded::from_node_file(&d.join("node.toml"))?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
        let i = operator::sign(loaded.config.network(), action.clone(), now, &loaded.signer);
        let url = format!("http://{}/v1/operator", loaded.node.api_listen);
        match warpnet_client::post_json(&url, &serde_json::to_value(&i)?).await {
            Ok((200, _)) => done += 1,
            // The change may have reached its quorum and committed already.
            Ok((status, body)) => println!("  {}: {status} {body}", d.display()),
            Err(e) => println!("  {}: {e}", d.display()),
        }
    }
    Ok(done)
}

async fn wait_for(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("timed out after {secs} s waiting for {what}")
}

/// `dev add`: a new node joins the running cluster.
pub async fn add(dir: &Path) -> anyhow::Result<()> {
    let (api, members_dirs) = committee(dir).await?;
    let k = node_dirs(dir).last().map_or(0, |(i, _)| i + 1);
    let first: NodeFile = read_toml(&dir.join("node-0").join("node.toml"))?;
    let port = |addr: &str| -> anyhow::Result<u16> {
        addr.rsplit(':').next().unwrap_or_default().parse().context("a port")
    };
    let (api_port, p2p_port) = (port(&first.api_listen)? + k, port(&first.p2p_listen)? + k);
    let node_dir = dir.join(format!("node-{k}"));
    let args = JoinArgs {
        via: format!("http://{api}"),
        dir: node_dir.clone(),
        p2p: format!("127.0.0.1:{p2p_port}"),
        api: format!("127.0.0.1:{api_port}"),
        public: true,
        genesis: dir.join("committee.toml"),
    };
    let (node_path, admission) = prepare(&args).await?;
    let Some(admission) = admission else { bail!("{} is a member already", node_dir.display()) };
    let log =
        std::fs::OpenOptions::new().create(true).append(true).open(node_dir.join("node.log"))?;
    let exe = std::env::current_exe()?;
    let child = std::process::Command::new(exe)
        .args(["node", "run", "--config"])
        .arg(&node_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting the new node")?;
    println!(
        "node {k}: pid {}, api http://{}, log {}",
        child.id(),
        args.api,
        node_dir.join("node.log").display()
    );
    let health = format!("http://{}/v1/health", args.api);
    wait_for("the new node to listen", 15, async || {
        matches!(warpnet_client::get(&health).await, Ok((200, _)))
    })
    .await?;
    request(&args.via, &admission).await?;
    let key = admission.candidate.public_key.to_hex();
    wait_for("the members to dial the new node back", 20, async || {
        members(&api).await.is_ok_and(|v| {
            v["pending"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["public_key"] == key.as_str() && p["dial_back"] == "passed")
        })
    })
    .await?;
    let n = instruct_all(&members_dirs, &Action::Endorse { public_key: key.clone() }).await?;
    println!("{n} members' operators endorsed it");
    wait_for("the committee to include the new node", 30, async || {
        members(&api).await.is_ok_and(|v| {
            v["members"].as_array().into_iter().flatten().any(|m| m["public_key"] == key.as_str())
        })
    })
    .await?;
    let v = members(&api).await?;
    println!(
        "node {k} is a member: epoch {}, {} members",
        v["epoch"],
        v["members"].as_array().map_or(0, Vec::len)
    );
    println!("(the `dev` that runs the cluster stops it with the others on Ctrl-C)");
    Ok(())
}

/// `dev remove N`: the members' operators remove node N; it lingers, then stops.
pub async fn remove(dir: &Path, n: u16) -> anyhow::Result<()> {
    let (api, members_dirs) = committee(dir).await?;
    let target = dir.join(format!("node-{n}"));
    let key = key_of(&target).with_context(|| format!("no node {n} in {}", dir.display()))?;
    let action = Action::Remove { public_key: key.clone(), reason: "dev remove".into() };
    let done = instruct_all(&members_dirs, &action).await?;
    if done == 0 {
        bail!("no member took the removal (see the answers above)");
    }
    let api = if key_of(&members_dirs[0]).is_ok_and(|k| k == key) {
        let other: NodeFile = read_toml(&members_dirs[1].join("node.toml"))?;
        other.api_listen
    } else {
        api
    };
    wait_for("node to leave the committee", 30, async || {
        members(&api).await.is_ok_and(|v| {
            !v["members"].as_array().into_iter().flatten().any(|m| m["public_key"] == key.as_str())
        })
    })
    .await?;
    let v = members(&api).await?;
    println!(
        "node {n} left the committee: epoch {}, {} members; it stops (HotStuff mode: after serving epoch proofs for its linger period)",
        v["epoch"],
        v["members"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}
