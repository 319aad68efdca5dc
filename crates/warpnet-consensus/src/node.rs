//! `node init`, `node run`, `committee create`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use warpnet_node::files::{
    create_key, read_toml, write_toml, CommitteeFile, Loaded, MemberEntry, NodeFile,
};

/// Which consensus a network runs (`committee create`, `dev`, `bench --spawn`) or the simulator
/// simulates: chosen at genesis, fixed for the network's life.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consensus {
    /// Byzantine-fault tolerant: 2-chain HotStuff, quorum n - f (4 members tolerate 1 fault).
    #[default]
    Hotstuff,
    /// Crash-fault tolerant: Raft, majority quorum (3 members tolerate 1 crash), for operators
    /// who trust each other.
    Raft,
}

impl From<Consensus> for warpnet_node::files::Consensus {
    fn from(c: Consensus) -> Self {
        match c {
            Consensus::Hotstuff => Self::Hotstuff,
            Consensus::Raft => Self::Raft,
        }
    }
}
use warpnet_types::Signer;

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Create a node directory: a secret key (mode 0600), node.toml, and member.toml (the public
    /// information the other members need).
    Init(InitArgs),
    /// Join a running network: key and config if missing, the committee fetched from a member
    /// and verified from the genesis file, an admission request; then run the node (it catches
    /// up, and votes once a quorum of members endorsed it and the change committed).
    Join(crate::member::JoinArgs),
    /// Run a node.
    Run {
        /// Path to node.toml.
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Args)]
pub struct InitArgs {
    /// The node's directory (created).
    #[arg(long)]
    pub dir: PathBuf,
    /// Address for member-to-member traffic (host:port).
    #[arg(long)]
    pub p2p: String,
    /// Address of the HTTP API (host:port).
    #[arg(long)]
    pub api: String,
    /// The node is publicly reachable (only such members may lead).
    #[arg(long)]
    pub public: bool,
    /// Where node.toml finds the committee file (relative to the node's directory).
    #[arg(long, default_value = "committee.toml")]
    pub committee_file: PathBuf,
}

#[derive(Subcommand)]
pub enum CommitteeCommand {
    /// Write the genesis committee file from members' member.toml files (in member order).
    Create {
        /// Network name (1-32 of [a-z0-9-]).
        #[arg(long)]
        network: String,
        #[arg(long, default_value_t = 1)]
        epoch: u64,
        /// The network's consensus, fixed for its life: `hotstuff` (Byzantine-fault tolerant)
        /// or `raft` (crash-fault tolerant, for operators who trust each other).
        #[arg(long, value_enum, default_value_t = Consensus::Hotstuff)]
        consensus: Consensus,
        /// Where to write the committee file.
        #[arg(long)]
        out: PathBuf,
        /// The members' member.toml files; the order gives the node ids.
        members: Vec<PathBuf>,
    },
}

/// Creates a node directory; returns its public member entry.
pub fn init(a: &InitArgs) -> anyhow::Result<MemberEntry> {
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let key_path = a.dir.join("node.key");
    if key_path.exists() {
        bail!("{} already exists: refusing to overwrite a node's key", key_path.display());
    }
    let signer = create_key(&key_path)?;
    let node = NodeFile {
        key_file: "node.key".into(),
        data_dir: "data".into(),
        committee_file: a.committee_file.clone(),
        p2p_listen: a.p2p.clone(),
        api_listen: a.api.clone(),
        ..NodeFile::default()
    };
    write_toml(&a.dir.join("node.toml"), &node)?;
    let member = MemberEntry {
        public_key: signer.public_key().to_hex(),
        p2p_address: a.p2p.clone(),
        api_address: Some(a.api.clone()),
        public: a.public,
        voter: None,
    };
    write_toml(&a.dir.join("member.toml"), &member)?;
    // The first start may create the database; any later start needs it (see node run). The
    // marker lives beside node.toml, not in data/, so a fresh volume mounted on data/ before
    // the first start does not hide it.
    let data = a.dir.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let marker = a.dir.join(warpnet_node::FIRST_START_MARKER);
    std::fs::write(&marker, "node init: the first `node run` creates the database in data_dir\n")
        .with_context(|| format!("writing {}", marker.display()))?;
    std::fs::File::open(&marker)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", marker.display()))?;
    warpnet_storage::sync_dir(&a.dir)?;
    Ok(member)
}

pub fn create_committee(
    network: &str,
    epoch: u64,
    consensus: Consensus,
    members: &[PathBuf],
    out: &Path,
) -> anyhow::Result<CommitteeFile> {
    let mut entries = Vec::new();
    for m in members {
        entries.push(read_toml::<MemberEntry>(m)?);
    }
    let committee = CommitteeFile {
        network: network.into(),
        epoch,
        consensus: consensus.into(),
        voters_min: None,
        members: entries,
    };
    committee.to_config(out)?; // refuse an invalid committee before writing it
    write_toml(out, &committee)?;
    Ok(committee)
}

pub async fn run(c: NodeCommand) -> anyhow::Result<()> {
    match c {
        NodeCommand::Init(a) => {
            let m = init(&a)?;
            println!("created {}: node.key (0600), node.toml, member.toml", a.dir.display());
            println!("public information for the committee file (member.toml):\n");
            println!("[[members]]\npublic_key = \"{}\"\np2p_address = \"{}\"\napi_address = \"{}\"\npublic = {}", m.public_key, m.p2p_address, a.api, m.public);
            println!("\nnext: warpnet-consensus committee create --network NAME --out committee.toml <member.toml of each member>");
            Ok(())
        }
        NodeCommand::Join(a) => {
            let (node_path, admission) = crate::member::prepare(&a).await?;
            let loaded = Loaded::from_node_file(&node_path)?;
            let _pid = crate::pidfile::PidFile::write(&loaded.dir).with_context(|| {
                format!("writing {}", loaded.dir.join(crate::pidfile::NAME).display())
            })?;
            let api = format!("http://{}/v1/health", loaded.node.api_listen);
            let mut node = tokio::spawn(warpnet_node::run(loaded, warpnet_node::shutdown_signal()));
            if let Some(admission) = admission {
                // Members dial the candidate back at once: ask only once it listens.
                let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
                while !matches!(warpnet_client::get(&api).await, Ok((200, _))) {
                    if node.is_finished() || tokio::time::Instant::now() > deadline {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                tokio::select! {
                    r = crate::member::request(&a.via, &admission) => r?,
                    r = &mut node => { r??; return Ok(()); }
                }
            }
            node.await??;
            Ok(())
        }
        NodeCommand::Run { config } => {
            let loaded = Loaded::from_node_file(&config)?;
            // `dev` finds nodes it did not start through this file.
            let _pid = crate::pidfile::PidFile::write(&loaded.dir).with_context(|| {
                format!("writing {}", loaded.dir.join(crate::pidfile::NAME).display())
            })?;
            warpnet_node::run(loaded, warpnet_node::shutdown_signal()).await?;
            Ok(())
        }
    }
}

pub fn committee(c: CommitteeCommand) -> anyhow::Result<()> {
    match c {
        CommitteeCommand::Create { network, epoch, consensus, out, members } => {
            if members.is_empty() {
                bail!("name at least one member.toml");
            }
            let committee = create_committee(&network, epoch, consensus, &members, &out)?;
            println!(
                "wrote {} with {} members (network {network}, epoch {epoch}, consensus {})",
                out.display(),
                committee.members.len(),
                committee.consensus.as_str()
            );
            Ok(())
        }
    }
}
