//! What each fuzz target checks on one input, shared by the `cargo fuzz` targets and by the
//! normal test suite, which replays every seed and every past crash
//! (`crates/warpnet-consensus/tests/fuzz_corpus.rs` includes this file). A check returns on
//! any input that is refused cleanly; it panics only on a bug: a panic in the code under test,
//! or a property broken (a second encoding of one message, a non-deterministic apply, a 500).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use warpnet_core::{Core, CoreParams, Input, Recovery};
use warpnet_state::{Command, MemoryKv, UserId};
use warpnet_types::{ConsensusConfig, Height, Message, NetworkId, NodeId, SchemeId, Signer};

/// The targets, by name (the names of `fuzz/fuzz_targets/*.rs` and of the corpus folders).
pub const TARGETS: [&str; 8] =
    ["frame", "consensus", "hello", "commands", "user_id", "config_files", "http", "membership"];

/// Runs target `name` on one input.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "frame" => frame(data),
        "consensus" => consensus(data),
        "hello" => hello(data),
        "commands" => commands(data),
        "user_id" => user_id(data),
        "config_files" => config_files(data),
        "http" => http(data),
        "membership" => membership(data),
        other => panic!("no fuzz target {other}"),
    }
}

/// A committee and its members' signers.
pub type Committee = (Arc<ConsensusConfig>, Vec<Arc<dyn Signer>>);

/// The fixed committee inputs are judged against: four Ed25519 members.
pub fn committee() -> &'static Committee {
    static C: OnceLock<Committee> = OnceLock::new();
    C.get_or_init(|| {
        let (c, s) = ConsensusConfig::for_testing(4, SchemeId::Ed25519, 4_000).unwrap();
        (Arc::new(c), s.into_iter().map(Arc::from).collect())
    })
}

/// The clock the consensus target runs at (block timestamps in the seeds are below it).
const NOW_MS: u64 = 1_000_000;

/// Frame decoding: a frame that decodes has exactly one encoding (it re-encodes to the same
/// bytes), and every message's `validate` refuses or accepts without panicking.
pub fn frame(data: &[u8]) {
    let Ok(m) = Message::from_frame(data) else { return };
    assert_eq!(m.to_frame(), data, "a message with two encodings: {m:?}");
    validate(&m);
}

fn validate(m: &Message) {
    let c = committee().0.as_ref();
    let _ = match m {
        Message::Proposal(p) => p.validate(c),
        Message::Vote(v) => v.validate(c),
        Message::Timeout(t) => t.validate(c),
        Message::Attestation(a) => a.validate(c),
        Message::SyncRequest(_) | Message::Commands(_) | Message::EpochRequest(_) => Ok(()),
        // Raft mode's frames carry the Raft engine's own encoding, decoded (and refused) there.
        Message::Raft(_) => Ok(()),
        Message::EpochProof(p) => {
            // Ends are checked link by link from the committee; the latest commit against it.
            let _ = warpnet_types::epoch::EpochProof { ends: p.ends.clone() }.verify(c);
            if let Some(l) = &p.latest {
                let _ = l.verify(c);
            }
            Ok(())
        }
        Message::Membership(m) => {
            if let warpnet_types::MembershipGossip::Admission(a) = &m.gossip {
                let _ = a.verify(c.network(), c.scheme());
            }
            Ok(())
        }
        Message::SyncResponse(r) => {
            for b in &r.blocks {
                let _ = b.validate(c);
            }
            Ok(())
        }
    };
}

/// The member the consensus target's core plays: one that leads none of the seeds' rounds.
const ME: NodeId = NodeId(1);
/// The members it hears from.
const PEERS: [u16; 3] = [0, 2, 3];

/// Splits an input into frames: `u8 sender ‖ u16le length ‖ frame`, repeated; the sender is
/// `PEERS[byte % 3]` (never ourselves).
fn frames(data: &[u8]) -> Vec<(NodeId, &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 && out.len() < 16 {
        let from = NodeId(PEERS[usize::from(rest[0] % 3)]);
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        out.push((from, &rest[3..3 + len]));
        rest = &rest[3 + len..];
    }
    out
}

/// Encodes messages (with their senders' ids) as the consensus target reads them.
pub fn encode_frames(messages: &[(u16, Message)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (from, m) in messages {
        let f = m.to_frame();
        out.push(PEERS.iter().position(|p| p == from).expect("a peer") as u8);
        out.extend_from_slice(&(f.len() as u16).to_le_bytes());
        out.extend_from_slice(&f);
    }
    out
}

/// A sequence of frames from the other members into a real core (member 1 of the committee,
/// at genesis), as the runtime would feed them: every decode, `validate`, proposal, vote,
/// timeout, sync response and shared-command path. Its durable writes are acknowledged at
/// once. Commits must come in height order, each height once.
pub fn consensus(data: &[u8]) {
    consensus_commits(data);
}

/// [`consensus`], returning the height the core committed.
pub fn consensus_commits(data: &[u8]) -> u64 {
    let (config, signers) = committee();
    let mut core = Core::new(
        config.clone(),
        ME,
        signers[ME.index()].clone(),
        CoreParams::default(),
        Recovery::genesis(config),
    )
    .unwrap();
    let mut committed = 0u64;
    // Executes a step as the runtime would: its write durable at once (Persisted fed back),
    // commits checked for order, the core's own invariants checked after every step.
    let feed = |core: &mut Core,
                now: u64,
                input: Input,
                committed: &mut u64,
                deadline: &mut Option<u64>| {
        let mut pending = vec![input];
        while let Some(input) = pending.pop() {
            let step = core.handle(now, input);
            for c in step.commits() {
                let h = c.block.height().0;
                assert_eq!(h, *committed + 1, "commits out of order");
                *committed = h;
            }
            if let Some(w) = &step.write {
                pending.push(Input::Persisted { seq: w.seq });
            }
            *deadline = step.deadline_ms;
            if let Err(e) = core.validate() {
                panic!("a core invariant broke: {e}");
            }
        }
    };
    let start = core.start(NOW_MS);
    let mut deadline = start.deadline_ms;
    if let Some(w) = &start.write {
        feed(&mut core, NOW_MS, Input::Persisted { seq: w.seq }, &mut committed, &mut deadline);
    }
    for (from, bytes) in frames(data) {
        if let Ok(message) = Message::from_frame(bytes) {
            let from = *committee().0.public_key(from).expect("a member");
            let input = Input::Message { from, message };
            feed(&mut core, NOW_MS, input, &mut committed, &mut deadline);
        }
    }
    // Then the next timer fires (a timeout: PM4's signed timeout, with its write).
    if let Some(at) = deadline {
        feed(&mut core, at.max(NOW_MS), Input::Tick, &mut committed, &mut deadline);
    }
    committed
}

/// The transport's hello (what a peer sends once the Noise channel is up): it is accepted only
/// from the network's genesis, never from ourselves, and only with a valid signature over this
/// channel's handshake hash (whether the key is a peer is the transport's question).
pub fn hello(data: &[u8]) {
    let (config, signers) = committee();
    let hash = [7u8; 32];
    let me = signers[0].as_ref();
    if let Ok(id) =
        warpnet_net::check_hello(data, config, me, warpnet_net::Role::Dialer, &hash, None)
    {
        assert_ne!(id.public_key, me.public_key(), "accepted ourselves");
    }
}

/// Client commands as blocks carry them, split by `u16le` lengths: a command that decodes
/// re-encodes to the same bytes; applying the block is deterministic (twice, same outcomes
/// and writes) and R1's ahead-of-time verdicts give the same result as computing them at apply.
pub fn commands(data: &[u8]) {
    let network = NetworkId::new("test").unwrap();
    let mut cmds = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && cmds.len() < 64 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        cmds.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    for c in &cmds {
        if let Ok(cmd) = Command::decode(c) {
            assert_eq!(&cmd.encode(), c, "a command with two encodings");
        }
    }
    let kv = MemoryKv::default();
    let first = warpnet_state::apply_block(&network, Height(1), &cmds, &kv);
    let second = warpnet_state::apply_block(&network, Height(1), &cmds, &kv);
    assert_eq!(first, second, "apply is not deterministic");
    let verdicts = warpnet_state::block_verdicts(&network, &cmds);
    let checked =
        warpnet_state::try_apply_block_checked(&network, Height(1), &cmds, &kv, Some(verdicts));
    assert_eq!(checked.ok(), Some(first), "ahead-of-time verdicts changed the outcome");
}

/// Committee changes and what carries them: a change command that decodes re-encodes to the
/// same bytes and is checked against the committee without a panic (the next committee, or a
/// typed refusal); an epoch proof that decodes is verified without a panic; an admission
/// request or an operator instruction (JSON) is parsed and checked without a panic, and an
/// instruction is never taken from a key other than the node's.
pub fn membership(data: &[u8]) {
    use warpnet_node::membership::operator::{Guard, Instruction};
    use warpnet_types::membership::Change;
    use warpnet_types::Decode;
    let (config, signers) = committee();
    if let Some(Ok(change)) = Change::from_command(data) {
        assert_eq!(change.to_command(), data, "a committee change with two encodings");
        if let Ok((members, _)) = change.apply(config) {
            assert!(members.len() >= config.members_min(), "below the floor");
        }
    }
    if let Ok(proof) = warpnet_types::epoch::EpochProof::from_bytes(data) {
        let _ = proof.verify(config);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(body) = serde_json::from_str::<warpnet_node::api::AdmissionBody>(text) {
        if let Ok(admission) = body.parse() {
            let _ = admission.verify(config.network(), config.scheme());
        }
    }
    if let Ok(instruction) = serde_json::from_str::<Instruction>(text) {
        // The node's key is member 0's; the seeds are signed by member 1.
        let node = signers[0].public_key();
        let checked =
            Guard::default().check(&instruction, config.network(), config.scheme(), &node, 0);
        let signed = warpnet_node::membership::operator::signing_bytes(
            config.network(),
            &node,
            &instruction.action,
            instruction.issued_ms,
        );
        if checked.is_ok() {
            let raw = hex::decode(&instruction.signature).unwrap();
            let item = warpnet_types::crypto::SignedItem {
                key: &node,
                message: &signed,
                signature: &warpnet_types::Signature(raw.try_into().unwrap()),
            };
            assert!(warpnet_types::crypto::verify_all(config.scheme(), &[item]).is_ok());
        }
    }
}

/// User IDs: an accepted ID is in normal form (1-32 of `[a-z0-9_]`), and parsing it, or it
/// with `@`, gives it back.
pub fn user_id(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(id) = UserId::parse(s) else { return };
    let n = id.as_str();
    assert!((1..=32).contains(&n.len()), "{n:?}");
    assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{n:?}");
    assert_eq!(UserId::parse(n).ok().as_ref(), Some(&id));
    assert_eq!(UserId::parse(&format!("@{n}")).ok().as_ref(), Some(&id));
}

/// `node.toml` and `committee.toml`: parsing never panics; what parses prints and parses back
/// to the same value; a committee that parses either gives a valid configuration or a clear
/// error.
pub fn config_files(data: &[u8]) {
    use warpnet_node::files::{CommitteeFile, NodeFile};
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(node) = toml::from_str::<NodeFile>(text) {
        let again: NodeFile = toml::from_str(&toml::to_string(&node).unwrap()).unwrap();
        assert_eq!(again, node);
    }
    if let Ok(committee) = toml::from_str::<CommitteeFile>(text) {
        let again: CommitteeFile = toml::from_str(&toml::to_string(&committee).unwrap()).unwrap();
        assert_eq!(again, committee);
        if let Ok(config) = committee.to_config(std::path::Path::new("committee.toml")) {
            assert_eq!(config.total_nodes(), committee.members.len());
            assert!(config.quorum_threshold() <= config.total_nodes());
        }
    }
}

/// The HTTP API of a real one-member node (started once per process, in this process): even
/// first byte, the rest is a `POST /v1/claims` body; odd, a user ID path
/// (`GET /v1/users/{percent-encoded rest}`). Bad input gets a 4xx with a JSON error; never a
/// 500, and the node keeps answering.
pub fn http(data: &[u8]) {
    let address = node_api();
    let (method, path, body) = match data.split_first() {
        Some((b, rest)) if b % 2 == 0 => ("POST", "/v1/claims".to_owned(), rest),
        Some((_, rest)) => {
            let encoded: String = rest.iter().map(|b| format!("%{b:02X}")).collect();
            ("GET", format!("/v1/users/{encoded}"), &[][..])
        }
        None => return,
    };
    let (status, reply) = request(&address, method, &path, body).expect("the node answers");
    assert!(status < 500 || status == 503, "{method} {path}: {status} {reply}");
    if (400..500).contains(&status) {
        let v: serde_json::Value = serde_json::from_str(&reply).expect("a JSON error");
        assert!(v["error"].is_string() && v["message"].is_string(), "{reply}");
    }
}

/// One request on a kept-alive connection (a fresh one per request would run the fuzzer out of
/// ports); a connection the node closed is reopened once.
fn request(address: &str, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    use std::sync::Mutex;
    static CONN: Mutex<Option<std::net::TcpStream>> = Mutex::new(None);
    let mut conn = CONN.lock().unwrap_or_else(|p| p.into_inner());
    for _ in 0..2 {
        if conn.is_none() {
            let s = std::net::TcpStream::connect(address).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            *conn = Some(s);
        }
        match exchange(conn.as_mut()?, method, path, body) {
            Some((status, reply, keep)) => {
                if !keep {
                    *conn = None;
                }
                return Some((status, reply));
            }
            None => *conn = None,
        }
    }
    None
}

/// Writes a request and reads one response (headers, then `Content-Length` bytes); whether
/// the connection stays usable.
fn exchange(
    s: &mut std::net::TcpStream,
    method: &str,
    path: &str,
    body: &[u8],
) -> Option<(u16, String, bool)> {
    use std::io::{Read, Write};
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    s.write_all(&out).ok()?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).ok()? == 0 || buf.len() > 16 << 10 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut reply = vec![0u8; len];
    s.read_exact(&mut reply).ok()?;
    let keep = !head.contains("connection: close");
    Some((status, String::from_utf8_lossy(&reply).into_owned(), keep))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Removes the directories of fuzzed nodes whose process has ended (the node runs until its
/// process exits, so nobody else cleans up after it).
fn forget_dead_nodes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("warpnet-fuzz-node-") else { continue };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Starts a one-member node (its own committee, network `test`) in a background thread, once.
fn node_api() -> String {
    static API: OnceLock<String> = OnceLock::new();
    API.get_or_init(|| {
        use warpnet_node::files::{
            create_key, write_toml, CommitteeFile, Loaded, MemberEntry, NodeFile,
        };
        forget_dead_nodes();
        let dir = std::env::temp_dir().join(format!("warpnet-fuzz-node-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let signer = create_key(&dir.join("node.key")).unwrap();
        let (p2p, api) =
            (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
        let node = NodeFile {
            key_file: "node.key".into(),
            data_dir: "data".into(),
            committee_file: "committee.toml".into(),
            p2p_listen: p2p.clone(),
            api_listen: api.clone(),
            round_timeout_base_ms: None,
            claim_timeout_ms: Some(1_000),
            ..NodeFile::default()
        };
        write_toml(&dir.join("node.toml"), &node).unwrap();
        let member = MemberEntry {
            public_key: signer.public_key().to_hex(),
            p2p_address: p2p,
            api_address: Some(api.clone()),
            public: true,
            voter: None,
        };
        let committee = CommitteeFile {
            network: "test".into(),
            epoch: 1,
            consensus: Default::default(),
            voters_min: None,
            members: vec![member],
        };
        write_toml(&dir.join("committee.toml"), &committee).unwrap();
        std::fs::write(dir.join(warpnet_node::FIRST_START_MARKER), "fuzz").unwrap();
        let loaded = Loaded::from_node_file(&dir.join("node.toml")).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let result = rt.block_on(warpnet_node::run(loaded, std::future::pending()));
            panic!("the fuzzed node stopped: {result:?}");
        });
        for _ in 0..200 {
            if request(&api, "GET", "/v1/health", &[]).is_some_and(|(s, _)| s == 200) {
                return api;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the fuzzed node did not start");
    })
    .clone()
}
