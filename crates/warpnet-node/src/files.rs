//! A node's files: its secret key, `node.toml`, its public member entry, and the committee.
//!
//! ```toml
//! # node.toml (paths are relative to this file's directory)
//! key_file = "node.key"
//! data_dir = "data"
//! committee_file = "committee.toml"
//! p2p_listen = "127.0.0.1:7100"
//! api_listen = "127.0.0.1:7000"
//! # optional, with their defaults:
//! # round_timeout_base_ms = 1000   (HotStuff mode)
//! # raft_tick_ms = 100             (Raft mode: heartbeats every tick, elections after 10-20)
//! # raft_compact_entries = 4096    (Raft mode: compact the log every this many entries)
//! # claim_timeout_ms = 5000
//! # api_connections_max = 1024
//! # api_client_connections_max = 256
//! # api_client_requests_per_second = 1000
//! # api_client_burst = 2000
//! ```
//!
//! ```toml
//! # committee.toml (the genesis committee; identical on every member)
//! network = "dev"
//! epoch = 1
//! consensus = "raft"    # optional: "hotstuff" (the default) or "raft", fixed for good
//! [[members]]
//! public_key = "…64 hex digits…"
//! p2p_address = "127.0.0.1:7100"
//! api_address = "127.0.0.1:7000"
//! public = true
//! voter = false         # optional, Raft mode only: a standby, added later with `member add`
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warpnet_types::crypto::Ed25519Signer;
use warpnet_types::{ConsensusConfig, Epoch, NetworkId, Participant, PublicKey, SchemeId, Signer};

/// Why a node's files could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io { path: path.to_path_buf(), source }
}

fn invalid(path: &Path, detail: impl std::fmt::Display) -> FileError {
    FileError::Invalid { path: path.to_path_buf(), detail: detail.to_string() }
}

/// `node.toml`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub key_file: PathBuf,
    pub data_dir: PathBuf,
    pub committee_file: PathBuf,
    pub p2p_listen: String,
    pub api_listen: String,
    /// Base round timeout in ms (default 1000).
    #[serde(default)]
    pub round_timeout_base_ms: Option<u64>,
    /// Raft mode: one engine tick in ms (default 100): leaders send heartbeats every tick;
    /// followers hearing no leader for 10-20 ticks elect one.
    #[serde(default)]
    pub raft_tick_ms: Option<u64>,
    /// Raft mode: compact the log behind a registry snapshot every this many entries
    /// (default 4096).
    #[serde(default)]
    pub raft_compact_entries: Option<u64>,
    /// How long a claim waits for its commit before the API answers 503 (default 5000).
    #[serde(default)]
    pub claim_timeout_ms: Option<u64>,
    /// Most API connections open at once (default 1024); past it, 429.
    #[serde(default)]
    pub api_connections_max: Option<usize>,
    /// Most API connections one client (IP address; IPv6 by /64) holds open (default 256).
    #[serde(default)]
    pub api_client_connections_max: Option<usize>,
    /// Requests per second one client may make on average (default 1000); past it, 429.
    #[serde(default)]
    pub api_client_requests_per_second: Option<u32>,
    /// Requests one client may make at once above that rate (default 2000).
    #[serde(default)]
    pub api_client_burst: Option<u32>,
    /// How this node's operator approves candidates: `manual` (the default: `member endorse
    /// KEY`), `allowlist` (keys in `admission_allowlist`, one hex key per line) or `open` (any
    /// candidate that passes the checks, at most one per `admission_interval_ms`).
    #[serde(default)]
    pub admission_policy: Option<String>,
    #[serde(default)]
    pub admission_allowlist: Option<PathBuf>,
    #[serde(default)]
    pub admission_interval_ms: Option<u64>,
    /// How long a member removed from the committee keeps serving epoch proofs and blocks
    /// before it stops (EP5; default 30000).
    #[serde(default)]
    pub linger_ms: Option<u64>,
    /// Nodes a joining node connects to before it is a member (`node join` writes the
    /// committee it fetched): they let it catch up and learn the epochs it missed.
    #[serde(default)]
    pub bootstrap: Vec<BootstrapPeer>,
}

/// A node to connect to while joining.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BootstrapPeer {
    pub public_key: String,
    pub p2p_address: String,
}

/// One member as the committee file lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    pub public_key: String,
    pub p2p_address: String,
    #[serde(default)]
    pub api_address: Option<String>,
    pub public: bool,
    /// Raft mode: a voter from genesis (the default), or a standby that runs, follows
    /// nothing, and becomes a voter when added with `member add`. HotStuff mode refuses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voter: Option<bool>,
}

/// Which consensus the network runs, chosen at genesis in the committee file and fixed for the
/// network's life (a node's store refuses the other one).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Consensus {
    /// Byzantine-fault tolerant (2-chain HotStuff, quorum n - f).
    #[default]
    Hotstuff,
    /// Crash-fault tolerant (Raft, majority quorum), for operators who trust each other.
    Raft,
}

impl Consensus {
    pub fn as_str(self) -> &'static str {
        match self {
            Consensus::Hotstuff => "hotstuff",
            Consensus::Raft => "raft",
        }
    }

    fn is_hotstuff(&self) -> bool {
        *self == Consensus::Hotstuff
    }
}

/// `committee.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CommitteeFile {
    pub network: String,
    pub epoch: u64,
    /// Fixed at genesis; absent means HotStuff (files written before Raft mode stay valid).
    #[serde(default, skip_serializing_if = "Consensus::is_hotstuff")]
    pub consensus: Consensus,
    /// Raft mode: a removal never leaves fewer voters than this (RV3; default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voters_min: Option<usize>,
    pub members: Vec<MemberEntry>,
}

impl CommitteeFile {
    /// Whether member `i` votes from genesis (always, in HotStuff mode).
    pub fn is_founding_voter(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(|m| m.voter != Some(false))
    }

    /// The consensus configuration (Ed25519 only: a node never runs the simulator's scheme).
    pub fn to_config(&self, path: &Path) -> Result<ConsensusConfig, FileError> {
        let network = NetworkId::new(&self.network).map_err(|e| invalid(path, e))?;
        match self.consensus {
            Consensus::Hotstuff => {
                if let Some(i) = self.members.iter().position(|m| m.voter.is_some()) {
                    return Err(invalid(
                        path,
                        format!("member {i}: `voter` is a Raft-mode setting (consensus = \"raft\"); every HotStuff member votes"),
                    ));
                }
            }
            Consensus::Raft => {
                let founders = (0..self.members.len()).filter(|&i| self.is_founding_voter(i));
                if !founders.clone().any(|i| self.members[i].public) {
                    return Err(invalid(
                        path,
                        "no founding voter is public: only public voters may lead in Raft mode",
                    ));
                }
            }
        }
        let mut participants = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            let public_key = PublicKey::from_hex(&m.public_key).map_err(|_| {
                invalid(path, format!("member {i}: public_key must be 64 hex digits"))
            })?;
            participants.push(Participant {
                public_key,
                address: m.p2p_address.clone(),
                api_address: m.api_address.clone().unwrap_or_default(),
                public: m.public,
            });
        }
        ConsensusConfig::new(network, Epoch(self.epoch), SchemeId::Ed25519, participants)
            .map_err(|e| invalid(path, e))
    }
}

pub fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, FileError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    toml::from_str(&text).map_err(|e| invalid(path, e))
}

pub fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let text = toml::to_string(value).map_err(|e| invalid(path, e))?;
    std::fs::write(path, text).map_err(io(path))
}

/// Creates a new secret key file (mode 0600) from the OS's randomness; refuses to overwrite.
pub fn create_key(path: &Path) -> Result<Ed25519Signer, FileError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| invalid(path, format!("no randomness: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    use std::io::Write as _;
    file.write_all(format!("{}\n", hex::encode(secret)).as_bytes()).map_err(io(path))?;
    file.sync_all().map_err(io(path))?;
    Ok(Ed25519Signer::from_secret(secret))
}

/// Reads a secret key file.
pub fn read_key(path: &Path) -> Result<Ed25519Signer, FileError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let raw =
        hex::decode(text.trim()).map_err(|_| invalid(path, "the key must be 64 hex digits"))?;
    let secret: [u8; 32] = raw.try_into().map_err(|_| invalid(path, "the key must be 32 bytes"))?;
    Ok(Ed25519Signer::from_secret(secret))
}

/// Everything a node needs, loaded and checked.
pub struct Loaded {
    pub dir: PathBuf,
    pub node: NodeFile,
    pub committee: CommitteeFile,
    pub config: ConsensusConfig,
    pub signer: Ed25519Signer,
}

impl Loaded {
    pub fn from_node_file(path: &Path) -> Result<Self, FileError> {
        let node: NodeFile = read_toml(path)?;
        let limits = [
            ("api_connections_max", node.api_connections_max.map(|v| v as u64)),
            ("api_client_connections_max", node.api_client_connections_max.map(|v| v as u64)),
            ("api_client_requests_per_second", node.api_client_requests_per_second.map(u64::from)),
            ("api_client_burst", node.api_client_burst.map(u64::from)),
        ];
        if let Some((key, _)) = limits.iter().find(|(_, v)| *v == Some(0)) {
            return Err(invalid(path, format!("{key} must be at least 1")));
        }
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let committee_path = dir.join(&node.committee_file);
        let committee: CommitteeFile = read_toml(&committee_path)?;
        let config = committee.to_config(&committee_path)?;
        let signer = read_key(&dir.join(&node.key_file))?;
        // A node outside the genesis committee runs only as a joining node: `node join` wrote
        // the nodes it catches up from.
        if config.node_id_of(&signer.public_key()).is_none() && node.bootstrap.is_empty() {
            return Err(invalid(
                &committee_path,
                format!(
                    "this node's key {} is not a member (a node joining a running network starts with `node join`)",
                    signer.public_key().to_hex()
                ),
            ));
        }
        Ok(Self { dir, node, committee, config, signer })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join(&self.node.data_dir)
    }
}
