//! `member list | pending | endorse | remove` (an operator and its own node) and `node join`
//! (a new bootstrap node asking to enter a running committee).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;
use warpnet_node::api::AdmissionBody;
use warpnet_node::files::{read_toml, write_toml, BootstrapPeer, CommitteeFile, Loaded, NodeFile};
use warpnet_node::membership::operator::{self, Action};
use warpnet_types::membership::{Admission, NONCE_BYTES};
use warpnet_types::{Participant, Signer};

#[derive(Subcommand)]
pub enum MemberCommand {
    /// The committee of the current epoch, and the changes pending.
    List {
        /// The node's API URL.
        #[arg(long, default_value = "http://127.0.0.1:7000")]
        node: String,
        #[arg(long)]
        json: bool,
    },
    /// Changes pending at a node (candidates and removals, with their endorsements).
    Pending {
        #[arg(long, default_value = "http://127.0.0.1:7000")]
        node: String,
    },
    /// Endorse a pending candidate, as this node's operator (signed with the node's key).
    Endorse {
        /// The candidate's public key (hex).
        key: String,
        /// The node's directory (its key signs the instruction; its API receives it).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Ask for a member's removal, as this node's operator (signed with the node's key).
    Remove {
        key: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        dir: PathBuf,
    },
}

async fn get_json(url: &str) -> anyhow::Result<Value> {
    let (status, body) = warpnet_client::get(url).await?;
    if status != 200 {
        bail!("{url} answered {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).map(|x| x.to_string().trim_matches('"').to_owned()).unwrap_or_default()
}

fn print_pending(v: &Value) {
    let pending = v.get("pending").and_then(Value::as_array).cloned().unwrap_or_default();
    if pending.is_empty() {
        println!("no change pending");
        return;
    }
    println!(
        "{:<7} {:<18} {:<12} {:<22} public key / reason",
        "change", "endorsements", "by this node", "dial-back"
    );
    for p in &pending {
        let what = match p.get("reason").and_then(Value::as_str) {
            Some(r) => format!("{} ({r})", s(p, "public_key")),
            None => format!("{} at {}", s(p, "public_key"), s(p, "p2p_address")),
        };
        println!(
            "{:<7} {:<18} {:<12} {:<22} {}",
            s(p, "kind"),
            format!("{} of {}", s(p, "endorsements"), s(p, "quorum")),
            s(p, "endorsed_by_this_node"),
            s(p, "dial_back"),
            what
        );
    }
}

pub async fn run(c: MemberCommand) -> anyhow::Result<()> {
    match c {
        MemberCommand::List { node, json } => {
            let v = get_json(&format!("{}/v1/members", node.trim_end_matches('/'))).await?;
            if json {
                println!("{v}");
                return Ok(());
            }
            let me = v.get("node_id").and_then(Value::as_u64);
            println!(
                "epoch {} — {} members, quorum {}, minimum {}; this node: {}",
                s(&v, "epoch"),
                v["members"].as_array().map_or(0, Vec::len),
                s(&v, "quorum_threshold"),
                s(&v, "members_min"),
                me.map_or("not a member".to_owned(), |id| format!("member {id}"))
            );
            println!(
                "{:<4} {:<22} {:<22} {:<7} {:<6} {:<10} public key",
                "id", "p2p address", "api address", "public", "since", "connected"
            );
            for m in v["members"].as_array().into_iter().flatten() {
                println!(
                    "{:<4} {:<22} {:<22} {:<7} {:<6} {:<10} {}",
                    s(m, "node_id"),
                    s(m, "p2p_address"),
                    s(m, "api_address"),
                    s(m, "public"),
                    s(m, "member_since_epoch"),
                    s(m, "connected"),
                    s(m, "public_key")
                );
            }
            let learners: Vec<String> =
                v["learners"].as_array().into_iter().flatten().map(|l| l.to_string()).collect();
            if !learners.is_empty() {
                println!(
                    "learners (Raft mode: catching up, promoted to voters by the leader): {}",
                    learners.join(", ")
                );
            }
            print_pending(&v);
            Ok(())
        }
        MemberCommand::Pending { node } => {
            let v = get_json(&format!("{}/v1/admissions", node.trim_end_matches('/'))).await?;
            print_pending(&v);
            Ok(())
        }
        MemberCommand::Endorse { key, dir } => {
            instruct(&dir, Action::Endorse { public_key: key.to_lowercase() }).await
        }
        MemberCommand::Remove { key, reason, dir } => {
            instruct(&dir, Action::Remove { public_key: key.to_lowercase(), reason }).await
        }
    }
}

/// Signs `action` with the key in the node's directory and posts it to that node's API.
async fn instruct(dir: &Path, action: Action) -> anyhow::Result<()> {
    let loaded = Loaded::from_node_file(&dir.join("node.toml"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let instruction = operator::sign(loaded.config.network(), action, now, &loaded.signer);
    let url = format!("http://{}/v1/operator", loaded.node.api_listen);
    let (status, body) =
        warpnet_client::post_json(&url, &serde_json::to_value(&instruction)?).await?;
    if status != 200 {
        bail!("{url} answered {status}: {body}");
    }
    let v: Value = serde_json::from_str(&body)?;
    println!(
        "endorsed by this node: {} of {} endorsements (the change is submitted at {})",
        s(&v, "endorsements"),
        s(&v, "quorum"),
        s(&v, "quorum")
    );
    Ok(())
}

#[derive(Args)]
pub struct JoinArgs {
    /// A running node's API URL (any member).
    #[arg(long)]
    pub via: String,
    /// The new node's directory (created with its key and config if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Address for member-to-member traffic (host:port).
    #[arg(long)]
    pub p2p: String,
    /// Address of the HTTP API (host:port).
    #[arg(long)]
    pub api: String,
    /// The node is publicly reachable.
    #[arg(long)]
    pub public: bool,
    /// The network's genesis committee file (pinned: everything the node learns is verified
    /// from it).
    #[arg(long)]
    pub genesis: PathBuf,
}

/// The committee now, proven from `genesis`: `via`'s epoch proof, checked link by link (the
/// node that answers is not trusted).
pub async fn proven_committee(
    via: &str,
    genesis: &warpnet_types::ConsensusConfig,
) -> anyhow::Result<warpnet_types::ConsensusConfig> {
    let proof = get_json(&format!("{via}/v1/epochs/{}/proof", genesis.epoch().0)).await?;
    let mut config = genesis.clone();
    if let Some(hex) = proof.get("proof").and_then(Value::as_str).filter(|h| !h.is_empty()) {
        use warpnet_types::Decode;
        let bytes = hex::decode(hex).context("the epoch proof is not hex")?;
        let proof = warpnet_types::epoch::EpochProof::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("the epoch proof does not decode: {e}"))?;
        let configs = proof.verify(genesis).map_err(|e| {
            anyhow::anyhow!(
                "the epoch proof from {via} does not verify from the genesis committee: {e}"
            )
        })?;
        if let Some(last) = configs.last() {
            config = last.clone();
        }
    }
    Ok(config)
}

/// `node join`, before the node runs: key and config (if missing), the current committee from
/// `--via` (verified from the pinned genesis through the epoch proof) as bootstrap peers, and
/// the signed admission request (none if the node is a member already). Returns node.toml's
/// path and the request.
pub async fn prepare(a: &JoinArgs) -> anyhow::Result<(PathBuf, Option<Admission>)> {
    let genesis_file: CommitteeFile = read_toml(&a.genesis)?;
    let genesis = genesis_file.to_config(&a.genesis)?;
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let committee_path = a.dir.join("committee.toml");
    if !committee_path.exists() {
        write_toml(&committee_path, &genesis_file)?;
    }
    if !a.dir.join("node.key").exists() {
        crate::node::init(&crate::node::InitArgs {
            dir: a.dir.clone(),
            p2p: a.p2p.clone(),
            api: a.api.clone(),
            public: a.public,
            committee_file: "committee.toml".into(),
        })?;
    }
    let via = a.via.trim_end_matches('/');
    if genesis_file.consensus == warpnet_node::files::Consensus::Raft {
        return prepare_raft(a, via, &genesis).await;
    }
    let config = proven_committee(via, &genesis).await?;
    println!(
        "verified the committee of epoch {} from genesis ({} members)",
        config.epoch(),
        config.total_nodes()
    );
    // Bootstrap peers: the proven committee.
    let node_path = a.dir.join("node.toml");
    let mut node: NodeFile = read_toml(&node_path)?;
    node.bootstrap = config
        .participants()
        .iter()
        .map(|p| BootstrapPeer {
            public_key: p.public_key.to_hex(),
            p2p_address: p.address.clone(),
        })
        .collect();
    write_toml(&node_path, &node)?;
    let loaded = Loaded::from_node_file(&node_path)?;
    if config.node_id_of(&loaded.signer.public_key()).is_some() {
        println!("this node is a member already (epoch {})", config.epoch());
        return Ok((node_path, None));
    }
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let candidate = Participant {
        public_key: loaded.signer.public_key(),
        address: node.p2p_listen.clone(),
        api_address: node.api_listen.clone(),
        public: a.public,
    };
    let admission = Admission::sign(genesis.network(), candidate, nonce, &loaded.signer);
    Ok((node_path, Some(admission)))
}

/// `node join` in Raft mode: operators trust each other, so the voters `via` lists (`GET
/// /v1/members`) are the bootstrap peers (no epoch proof: Raft mode has no epochs); the new
/// node learns the membership from its leader's snapshot as a learner (RV1).
async fn prepare_raft(
    a: &JoinArgs,
    via: &str,
    genesis: &warpnet_types::ConsensusConfig,
) -> anyhow::Result<(PathBuf, Option<Admission>)> {
    let v = get_json(&format!("{via}/v1/members")).await?;
    let members = v["members"].as_array().cloned().unwrap_or_default();
    println!("Raft mode: {} voters and learners listed by {via}", members.len());
    let node_path = a.dir.join("node.toml");
    let mut node: NodeFile = read_toml(&node_path)?;
    node.bootstrap = members
        .iter()
        .filter_map(|m| {
            Some(BootstrapPeer {
                public_key: m["public_key"].as_str()?.to_owned(),
                p2p_address: m["p2p_address"].as_str()?.to_owned(),
            })
        })
        .collect();
    write_toml(&node_path, &node)?;
    let loaded = Loaded::from_node_file(&node_path)?;
    let me = loaded.signer.public_key().to_hex();
    if members.iter().any(|m| m["public_key"].as_str() == Some(me.as_str())) {
        println!("this node is a member already");
        return Ok((node_path, None));
    }
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let candidate = Participant {
        public_key: loaded.signer.public_key(),
        address: node.p2p_listen.clone(),
        api_address: node.api_listen.clone(),
        public: a.public,
    };
    let admission = Admission::sign(genesis.network(), candidate, nonce, &loaded.signer);
    Ok((node_path, Some(admission)))
}

/// Posts the admission request to `via` and says what the candidate waits for.
pub async fn request(via: &str, admission: &Admission) -> anyhow::Result<()> {
    let url = format!("{}/v1/admissions", via.trim_end_matches('/'));
    let body = serde_json::to_value(AdmissionBody::of(admission))?;
    let (status, body) = warpnet_client::post_json(&url, &body).await?;
    if status != 202 {
        bail!("{url} refused the admission request ({status}): {body}");
    }
    let v: Value = serde_json::from_str(&body)?;
    let key = admission.candidate.public_key.to_hex();
    println!(
        "admission requested for key {key}: dial-back {}, endorsements {} of {} needed",
        s(&v, "dial_back"),
        s(&v, "endorsements"),
        s(&v, "quorum")
    );
    println!("each member's operator approves with: warpnet-consensus member endorse {key} --dir <member dir>");
    println!("(members whose policy is allowlist or open endorse by themselves); this node catches up meanwhile and votes from the first epoch that includes it");
    Ok(())
}
