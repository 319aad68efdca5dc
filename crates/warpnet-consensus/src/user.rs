//! `user keygen | claim | lookup`: the registry's client commands.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::Value;
use warpnet_client::http;
use warpnet_node::files::{create_key, read_key};
use warpnet_state::{Claim, UserId};
use warpnet_types::{NetworkId, Signer};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a new Ed25519 key to own user IDs (64 hex digits, file mode 0600).
    Keygen {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Claim a user ID with your key; it stays yours for good.
    Claim {
        /// The ID, e.g. @alice (1-32 characters of a-z, 0-9 and _; case is folded).
        id: String,
        /// Your key file. Without it, ./warpnet-<id>.key is used, and created if missing.
        #[arg(long)]
        key: Option<PathBuf>,
        /// The node's API URL.
        #[arg(long, default_value = "http://127.0.0.1:7000")]
        node: String,
        /// Idempotency key: a retry with the same one gets the recorded result. Default: derived
        /// from the key and the ID, so running the same claim again is always safe.
        #[arg(long)]
        request_id: Option<String>,
        /// Print the node's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Who owns a user ID, in committed state.
    Lookup {
        id: String,
        /// The node's API URL.
        #[arg(long, default_value = "http://127.0.0.1:7000")]
        node: String,
        /// Read through consensus (sees every claim committed before the read started).
        #[arg(long)]
        linearizable: bool,
        /// Print the node's JSON answer.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(c: UserCommand) -> anyhow::Result<()> {
    match c {
        UserCommand::Keygen { out } => {
            let signer = create_key(&out)?;
            println!("created {} (public key {})", out.display(), signer.public_key().to_hex());
            Ok(())
        }
        UserCommand::Claim { id, key, node, request_id, json } => {
            claim(&id, key.as_deref(), &node, request_id, json).await
        }
        UserCommand::Lookup { id, node, linearizable, json } => {
            lookup(&id, &node, linearizable, json).await
        }
    }
}

fn base(node: &str) -> &str {
    node.trim_end_matches('/')
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("?")
}

async fn claim(
    raw_id: &str,
    key: Option<&Path>,
    node: &str,
    request_id: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let id = UserId::parse(raw_id)?;
    let signer = match key {
        Some(path) => read_key(path)?,
        None => {
            let path = PathBuf::from(format!("warpnet-{}.key", id.as_str()));
            if path.exists() {
                read_key(&path)?
            } else {
                let s = create_key(&path)?;
                eprintln!(
                    "created key {} for {id}: keep it, it is what owns the ID",
                    path.display()
                );
                s
            }
        }
    };
    let (status, body) = http::get(&format!("{}/v1/cluster", base(node))).await?;
    if status != 200 {
        bail!("{node} answered {status} to /v1/cluster: {body}");
    }
    let cluster: Value = serde_json::from_str(&body).context("reading /v1/cluster")?;
    let network = NetworkId::new(field(&cluster, "network"))
        .map_err(|e| anyhow::anyhow!("the node's network id: {e}"))?;
    // The README specifies this derivation, so other clients can share the CLI's retries.
    let request_id = request_id
        .unwrap_or_else(|| warpnet_client::derive_request_id(&signer.public_key().0, id.as_str()));
    let c = Claim::sign(&network, id.clone(), &signer, &request_id)?;
    let request = serde_json::json!({
        "user_id": c.user_id.as_str(),
        "owner_key": c.owner_key.to_hex(),
        "signature": hex::encode(c.signature.0),
        "request_id": c.request_id,
    });
    let (status, body) = http::post_json(&format!("{}/v1/claims", base(node)), &request).await?;
    if json {
        println!("{body}");
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let height = v.get("height").and_then(Value::as_u64).unwrap_or(0);
    match (status, field(&v, "status")) {
        (200, "claimed") => {
            if !json {
                println!("claimed {id} at height {height}; owner key {}", field(&v, "owner_key"));
            }
            Ok(())
        }
        (200, "already_yours") => {
            if !json {
                println!("{id} is already yours (since height {height})");
            }
            Ok(())
        }
        (409, _) => {
            bail!("{id} is taken: owned by key {} since height {height}", field(&v, "owner_key"))
        }
        _ => bail!("{} ({status}): {}", field(&v, "error"), field(&v, "message")),
    }
}

async fn lookup(raw_id: &str, node: &str, linearizable: bool, json: bool) -> anyhow::Result<()> {
    let id = UserId::parse(raw_id)?;
    let query = if linearizable { "?consistency=linearizable" } else { "" };
    let url = format!("{}/v1/users/{}{query}", base(node), id.as_str());
    let (status, body) = http::get(&url).await?;
    if json {
        println!("{body}");
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let read_height = v.get("read_height").and_then(Value::as_u64).unwrap_or(0);
    match status {
        200 => {
            if !json {
                let height = v.get("height").and_then(Value::as_u64).unwrap_or(0);
                println!(
                    "{id} is owned by key {} since height {height} (read at height {read_height})",
                    field(&v, "owner_key")
                );
            }
            Ok(())
        }
        404 => {
            if !json {
                println!("{id} is not registered (read at height {read_height})");
            }
            Ok(())
        }
        _ => bail!("{} ({status}): {}", field(&v, "error"), field(&v, "message")),
    }
}
