//! `cluster status`: the committee and a node's view of its progress.

use anyhow::bail;
use clap::Subcommand;
use serde_json::Value;

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Consensus, committee, progress (HotStuff: epoch, round, committed height; Raft: term,
    /// role, commit and applied index), quorum, leader, and connections.
    Status {
        /// The node's API URL.
        #[arg(long, default_value = "http://127.0.0.1:7000")]
        node: String,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// The healthy, verified-public members to route through, verified (not trusted): the
    /// committee is proven from the genesis file, the summary's commit proof with its keys.
    Routing {
        /// The node's API URL.
        #[arg(long, default_value = "http://127.0.0.1:7000")]
        node: String,
        /// The network's genesis committee file.
        #[arg(long)]
        genesis: std::path::PathBuf,
        /// Print the raw JSON (after verifying it).
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(c: ClusterCommand) -> anyhow::Result<()> {
    let (node, json) = match c {
        ClusterCommand::Status { node, json } => (node, json),
        ClusterCommand::Routing { node, genesis, json } => {
            return crate::routing::run(&node, &genesis, json).await;
        }
    };
    let url = format!("{}/v1/cluster", node.trim_end_matches('/'));
    let (status, body) = warpnet_client::get(&url).await?;
    if status != 200 {
        bail!("{url} answered {status}: {body}");
    }
    if json {
        println!("{body}");
        return Ok(());
    }
    let v: Value = serde_json::from_str(&body)?;
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let consensus = v.get("consensus").and_then(Value::as_str).unwrap_or("hotstuff");
    match v.get("raft").filter(|r| r.is_object()) {
        Some(r) => {
            let r_n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
            let r_s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
            let leader =
                r.get("leader").and_then(Value::as_u64).map_or("none".into(), |l| l.to_string());
            println!(
                "node {} — consensus raft ({}), term {}, leader {leader}, commit index {}, applied index {}, snapshot index {}",
                n("node_id"),
                r_s("role"),
                r_n("term"),
                r_n("commit_index"),
                r_n("applied_index"),
                r_n("snapshot_index")
            );
            println!(
                "voters: {} (tolerates {} crashed), majority {}; health: {}",
                n("total_nodes"),
                n("faulty_nodes"),
                n("quorum_threshold"),
                r_s("health")
            );
        }
        None => {
            println!(
                "node {} — consensus {consensus}, epoch {}, round {}, committed height {}, leader {}",
                n("node_id"),
                n("epoch"),
                n("round"),
                n("committed_height"),
                n("leader")
            );
            println!(
                "committee: {} members, tolerates {} faulty, quorum {}",
                n("total_nodes"),
                n("faulty_nodes"),
                n("quorum_threshold")
            );
        }
    }
    println!(
        "{:<5} {:<22} {:<7} {:<6} {:<10} public key",
        "id", "p2p address", "public", "voter", "connected"
    );
    for m in v.get("members").and_then(Value::as_array).into_iter().flatten() {
        let s = |k: &str| {
            m.get(k).map(|x| x.to_string().trim_matches('"').to_owned()).unwrap_or_default()
        };
        println!(
            "{:<5} {:<22} {:<7} {:<6} {:<10} {}",
            s("node_id"),
            s("p2p_address"),
            s("public"),
            s("voter"),
            s("connected"),
            s("public_key")
        );
    }
    Ok(())
}
