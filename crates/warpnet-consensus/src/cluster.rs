//! `cluster status` and `cluster members`: the committee, a node's view of its progress, and
//! each member's health.

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
    /// The committee of the current epoch (`GET /v1/members`) as a table: key, addresses,
    /// public, connected, and each member's agreed health when the node reports it.
    Members {
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
    let (node, json, path) = match c {
        ClusterCommand::Status { node, json } => (node, json, "/v1/cluster"),
        ClusterCommand::Members { node, json } => (node, json, "/v1/members"),
        ClusterCommand::Routing { node, genesis, json } => {
            return crate::routing::run(&node, &genesis, json).await;
        }
    };
    let url = format!("{}{path}", node.trim_end_matches('/'));
    let (status, body) = warpnet_client::get(&url).await?;
    if status != 200 {
        bail!("{url} answered {status}: {body}");
    }
    if json {
        println!("{body}");
        return Ok(());
    }
    let v: Value = serde_json::from_str(&body)?;
    if path == "/v1/members" {
        print!("{}", members_table(&v));
        return Ok(());
    }
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

/// A JSON value as a table cell: strings unquoted, null and absent as "—".
fn field(v: &Value, k: &str) -> String {
    match v.get(k) {
        None | Some(Value::Null) => "\u{2014}".into(),
        Some(Value::String(s)) => s.clone(),
        Some(x) => x.to_string(),
    }
}

/// The health columns of `cluster members`, and the fields of a member's `health` they show.
const HEALTH_COLUMNS: [(&str, &str); 8] = [
    ("online", "online"),
    ("last seen", "last_seen_height"),
    ("votes", "votes"),
    ("proposals", "proposals"),
    ("failed", "failed_leader_rounds"),
    ("verified", "verified_public"),
    ("attested by", "attested_by"),
    ("reputation", "reputation"),
];

/// `GET /v1/members` as `cluster members` prints it: a line about the committee and where its
/// health comes from, then one row per member (the health columns only when reported).
fn members_table(v: &Value) -> String {
    let health = v.get("health").filter(|h| h.is_object());
    let mut out = format!(
        "epoch {}, this node {}, quorum {}, at least {} members\n",
        field(v, "epoch"),
        field(v, "node_id"),
        field(v, "quorum_threshold"),
        field(v, "members_min")
    );
    out += &match health {
        Some(h) => format!(
            "health: agreed, computed at height {} over {} blocks{}\n",
            field(h, "computed_at_height"),
            field(h, "window_blocks"),
            if h.get("fallback").and_then(Value::as_bool) == Some(true) {
                " (fallback: no verified-public member)"
            } else {
                ""
            }
        ),
        None => "health: not reported by this node (`connected` is this node's own view)\n".into(),
    };
    let mut header: Vec<String> =
        ["id", "key", "p2p address", "api address", "public", "connected", "since epoch"]
            .map(String::from)
            .to_vec();
    if health.is_some() {
        header.extend(HEALTH_COLUMNS.map(|(title, _)| title.to_owned()));
    }
    let mut rows = vec![header];
    let members = v.get("members").and_then(Value::as_array).cloned().unwrap_or_default();
    for m in &members {
        let mut row = vec![
            field(m, "node_id"),
            field(m, "public_key").chars().take(16).collect(),
            field(m, "p2p_address"),
            field(m, "api_address"),
            field(m, "public"),
            field(m, "connected"),
            field(m, "member_since_epoch"),
        ];
        if health.is_some() {
            let h = m.get("health").cloned().unwrap_or(Value::Null);
            row.extend(HEALTH_COLUMNS.map(|(_, k)| field(&h, k)));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let cells: Vec<String> =
            r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    if members.is_empty() {
        out += "(no members listed: a Raft-mode node lists its voters in `cluster status`)\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn members(health: bool) -> Value {
        let h = json!({"online": false, "last_seen_height": null, "votes": 0, "proposals": 0,
            "failed_leader_rounds": 3, "verified_public": false, "attested_by": 1,
            "reputation": "offline"});
        let top = json!({"computed_at_height": 96, "window_blocks": 32, "fallback": false});
        json!({
            "epoch": 2, "node_id": 0, "quorum_threshold": 3, "members_min": 4,
            "health": if health { top } else { Value::Null },
            "members": [{"node_id": 1, "public_key": "ab".repeat(32),
                "p2p_address": "10.0.0.2:7100", "api_address": "10.0.0.2:7000", "public": true,
                "member_since_epoch": 0, "connected": true,
                "health": if health { h } else { Value::Null }}],
            "pending": [], "retired": [], "evidence": []
        })
    }

    /// Without agreed health the table has no health columns and says whose view `connected`
    /// is.
    #[test]
    fn cluster_members_without_health_prints_the_connection_view() {
        let t = members_table(&members(false));
        assert!(t.contains("health: not reported by this node"), "{t}");
        assert!(!t.contains("reputation"), "{t}");
        let row = t.lines().find(|l| l.starts_with("1 ")).expect("member 1's row");
        for cell in ["abababababababab", "10.0.0.2:7100", "10.0.0.2:7000", "true"] {
            assert!(row.contains(cell), "{cell} missing in {row}");
        }
    }

    /// With agreed health each member's health fields are columns, null as "—".
    #[test]
    fn cluster_members_with_health_prints_its_columns() {
        let t = members_table(&members(true));
        assert!(t.contains("computed at height 96 over 32 blocks"), "{t}");
        let header = t.lines().find(|l| l.starts_with("id ")).expect("header");
        assert!(header.contains("reputation") && header.contains("attested by"), "{header}");
        let row = t.lines().find(|l| l.starts_with("1 ")).expect("member 1's row");
        assert!(row.contains("\u{2014}") && row.ends_with("offline"), "{row}");
    }
}
