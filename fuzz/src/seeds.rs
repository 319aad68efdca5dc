//! The seed corpora: real, valid messages and files for each fuzz target, so the fuzzer
//! starts past the signature and format checks. `crates/warpnet-consensus/tests/fuzz_corpus.rs`
//! writes them to `fuzz/corpus/` and checks the stored ones are current.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use warpnet_state::{Claim, Command, UserId};
use warpnet_types::{
    Block, Epoch, Height, Message, NetworkId, NodeId, Proposal, QuorumCertificate, Round, SchemeId,
    SharedCommands, SyncRequest, SyncResponse, Timeout, TimeoutMsg, Vote,
};

use crate::checks::{committee, encode_frames};

/// Seed inputs per target: real, valid messages and files, so the fuzzer starts past the
/// signature and format checks and mutates from there.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let (config, signers) = committee();
    let c = config.as_ref();
    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    // A certified chain of three blocks (rounds 1-3), a claim in block 2.
    let network = NetworkId::new("test").unwrap();
    let claimer = warpnet_types::crypto::signer_from_seed(SchemeId::Ed25519, 77);
    let claim = Claim::sign(&network, UserId::parse("@Alice").unwrap(), claimer.as_ref(), "seed-1")
        .unwrap();
    let claim_cmd = Command::Claim(claim).encode();
    let barrier = Command::Barrier { nonce: [9; 16] }.encode();
    let mut qc = QuorumCertificate::genesis(c);
    let mut blocks = Vec::new();
    let mut qcs = Vec::new();
    for r in 1..=3u64 {
        let payload = if r == 2 { vec![claim_cmd.clone()] } else { vec![] };
        let b = Block::new(
            c.epoch(),
            Round(r),
            Height(r),
            c.leader(Round(r)),
            qc.clone(),
            1_000 * r,
            payload,
        );
        let votes: Vec<Vote> =
            (0..3).map(|i| Vote::sign(c, &b, NodeId(i), signers[i as usize].as_ref())).collect();
        qc = QuorumCertificate::from_votes(c, &votes.iter().collect::<Vec<_>>()).unwrap();
        blocks.push(b);
        qcs.push(qc.clone());
    }
    let proposal = |i: usize| {
        let b = blocks[i].clone();
        let leader = b.proposer();
        Message::Proposal(Proposal::sign(c, b, None, signers[leader.index()].as_ref()))
    };
    let vote = Message::Vote(Vote::sign(c, &blocks[0], NodeId(0), signers[0].as_ref()));
    let timeout = Message::Timeout(TimeoutMsg {
        timeout: Timeout::sign(c, Round(2), qcs[0].clone(), NodeId(2), signers[2].as_ref()),
        last_round_tc: None,
    });
    let sync =
        Message::SyncResponse(SyncResponse { epoch: Epoch(1), blocks: blocks[..2].to_vec() });
    let request = Message::SyncRequest(SyncRequest {
        epoch: Epoch(1),
        target: blocks[1].id(),
        above: Height(0),
        max_blocks: 16,
    });
    let shared = Message::Commands(SharedCommands {
        epoch: Epoch(1),
        commands: vec![claim_cmd.clone(), barrier.clone()],
    });
    let all = [
        proposal(0),
        proposal(1),
        proposal(2),
        vote.clone(),
        timeout.clone(),
        sync.clone(),
        request,
        shared,
    ];
    for (i, m) in all.iter().enumerate() {
        out.push(("frame", format!("{}-{i}", m.kind()), m.to_frame()));
    }
    let from = |m: &Message| match m {
        Message::Proposal(p) => p.block.proposer().0,
        _ => 0,
    };
    // In order; a proposal whose ancestors are missing, then the sync response that brings them.
    out.push((
        "consensus",
        "chain".into(),
        encode_frames(&[
            (from(&all[0]), all[0].clone()),
            (from(&all[1]), all[1].clone()),
            (from(&all[2]), all[2].clone()),
        ]),
    ));
    out.push((
        "consensus",
        "sync".into(),
        encode_frames(&[(from(&all[2]), all[2].clone()), (from(&all[2]), sync)]),
    ));
    out.push((
        "consensus",
        "votes-timeouts".into(),
        encode_frames(&[(0, vote), (2, timeout), (3, all[7].clone())]),
    ));
    for role in [warpnet_net::Role::Listener, warpnet_net::Role::Dialer] {
        // The check plays the listener, so only the dialer's hello is valid; the listener's
        // keeps the role binding in the corpus.
        let signer = signers[1].as_ref();
        let role_name = if role == warpnet_net::Role::Dialer { "dialer" } else { "listener" };
        out.push((
            "hello",
            format!("member-1-{role_name}"),
            warpnet_net::hello_bytes(c, signer, role, warpnet_net::Purpose::Connect, &[7u8; 32]),
        ));
    }
    let mut cmds = Vec::new();
    for cmd in [&claim_cmd, &barrier, &claim_cmd] {
        cmds.extend_from_slice(&(cmd.len() as u16).to_le_bytes());
        cmds.extend_from_slice(cmd);
    }
    out.push(("commands", "claim-barrier-retry".into(), cmds));
    for id in ["@Alice", "user_1", "a", "0123456789abcdef0123456789abcdef"] {
        out.push(("user_id", id.trim_start_matches('@').to_owned(), id.as_bytes().to_vec()));
    }
    out.push(("config_files", "node".into(), b"key_file = \"node.key\"\ndata_dir = \"data\"\ncommittee_file = \"../committee.toml\"\np2p_listen = \"10.0.0.1:7100\"\napi_listen = \"10.0.0.1:7000\"\nround_timeout_base_ms = 300\nclaim_timeout_ms = 2000\n".to_vec()));
    let member = |i: usize| {
        format!("[[members]]\npublic_key = \"{}\"\np2p_address = \"10.0.0.{i}:7100\"\napi_address = \"10.0.0.{i}:7000\"\npublic = true\n", signers[i].public_key().to_hex())
    };
    out.push((
        "config_files",
        "committee".into(),
        format!(
            "network = \"test\"\nepoch = 1\n{}{}{}{}",
            member(0),
            member(1),
            member(2),
            member(3)
        )
        .into_bytes(),
    ));
    // The README's worked example body, on network "test" (so its signature is refused: 400).
    let body = serde_json::json!({
        "user_id": "@Alice",
        "owner_key": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "signature": "537378f4a61a4b04ed1ce7d071511005fcdafe89beb17ca2073fcdba471672c8bda097488344e2d368839cd36fd2e6f702a9a5e54d0759380f980da6b502bb01",
        "request_id": "readme-1"
    });
    let mut post = vec![0u8];
    post.extend(serde_json::to_vec(&body).unwrap());
    out.push(("http", "post-readme".into(), post));
    let valid =
        Claim::sign(&network, UserId::parse("bob").unwrap(), claimer.as_ref(), "seed-2").unwrap();
    let mut post = vec![2u8];
    post.extend(
        serde_json::to_vec(&serde_json::json!({
            "user_id": "bob",
            "owner_key": valid.owner_key.to_hex(),
            "signature": hex::encode(valid.signature.0),
            "request_id": "seed-2",
        }))
        .unwrap(),
    );
    out.push(("http", "post-valid".into(), post));
    out.push(("http", "get-alice".into(), b"\x01@Alice".to_vec()));
    // Committee changes: an admission endorsed by a quorum, a removal, the request and an
    // operator instruction as the API takes them.
    {
        use warpnet_types::membership::{Admission, Change, Endorsed, Endorsement, Grounds};
        let candidate = warpnet_types::crypto::signer_from_seed(SchemeId::Ed25519, 99);
        let who = warpnet_types::Participant {
            public_key: candidate.public_key(),
            address: "10.0.0.9:7100".into(),
            api_address: "10.0.0.9:7000".into(),
            public: true,
        };
        let admission = Admission::sign(c.network(), who, [5; 16], candidate.as_ref());
        let what = Endorsed::Add(admission.digest());
        let endorse = |i: usize| Endorsement::sign(c, NodeId(i as u16), &what, signers[i].as_ref());
        let add = Change::Add {
            admission: admission.clone(),
            endorsements: (0..3).map(endorse).collect(),
        };
        out.push(("membership", "add".into(), add.to_command()));
        let key = signers[3].public_key();
        let reason = "decommissioned".to_owned();
        let what = Endorsed::Remove { key, reason: reason.clone() };
        let endorsements = (0..3)
            .map(|i| Endorsement::sign(c, NodeId(i as u16), &what, signers[i].as_ref()))
            .collect();
        let remove = Change::Remove { key, reason, grounds: Grounds::Endorsed(endorsements) };
        out.push(("membership", "remove".into(), remove.to_command()));
        let body = warpnet_node::api::AdmissionBody::of(&admission);
        out.push(("membership", "admission-json".into(), serde_json::to_vec(&body).unwrap()));
        let action = warpnet_node::membership::operator::Action::Endorse {
            public_key: candidate.public_key().to_hex(),
        };
        let i =
            warpnet_node::membership::operator::sign(c.network(), action, 0, signers[1].as_ref());
        out.push(("membership", "operator-json".into(), serde_json::to_vec(&i).unwrap()));
    }
    out
}
