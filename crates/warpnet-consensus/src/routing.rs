//! `cluster routing`: the healthy, verified-public members to route through, checked against
//! the committee's keys instead of trusted (H4). The node answers `GET /v1/routing` with the
//! newest committed health summary's block and the proof that it committed; this command
//! proves the current committee from the genesis file (the epoch proof, link by link),
//! verifies the commit proof with that committee's keys, reads the summary from the proven
//! block, and holds the node's list against it.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;
use warpnet_node::files::{read_toml, CommitteeFile};
use warpnet_types::epoch::CommitProof;
use warpnet_types::Decode;

/// What a verified routing answer says.
pub struct Verified {
    pub epoch: u64,
    pub height: u64,
    pub fallback: bool,
    /// (node id, key hex, p2p address, api address), from the proven summary and committee.
    pub members: Vec<(u16, String, String, String)>,
}

/// Verifies `routing` (the JSON of `GET /v1/routing`) with `committee`, the committee of the
/// routing's epoch.
pub fn verify(
    routing: &Value,
    committee: &warpnet_types::ConsensusConfig,
) -> anyhow::Result<Verified> {
    let hex = routing.get("proof").and_then(Value::as_str).context("no proof in the answer")?;
    let bytes = hex::decode(hex).context("the proof is not hex")?;
    let proof = CommitProof::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("the proof does not decode: {e}"))?;
    proof.verify(committee).map_err(|e| {
        anyhow::anyhow!("the proof does not verify with epoch {}'s keys: {e}", committee.epoch())
    })?;
    let block = proof.block().context("the proof holds no block")?;
    let summary = block.health().summary.as_ref().context("the proven block carries no summary")?;
    let members: Vec<(u16, String, String, String)> = summary
        .routable()
        .filter_map(|(id, _)| {
            let p = committee.participant(id).ok()?;
            Some((id.0, p.public_key.to_hex(), p.address.clone(), p.api_address.clone()))
        })
        .collect();
    // The node's own list must be what the proven summary says.
    let listed: Vec<String> = routing
        .get("members")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("public_key").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let proven: Vec<String> = members.iter().map(|m| m.1.clone()).collect();
    if listed != proven {
        bail!("the node's routing list {listed:?} is not what its proof says: {proven:?}");
    }
    let claimed_height = routing.get("height").and_then(Value::as_u64);
    if claimed_height != Some(block.height().0) {
        bail!(
            "the node names height {claimed_height:?}; the proven block is at {}",
            block.height()
        );
    }
    Ok(Verified {
        epoch: block.epoch().0,
        height: block.height().0,
        fallback: summary.fallback,
        members,
    })
}

/// `cluster routing --node URL --genesis FILE`.
pub async fn run(node: &str, genesis: &Path, json: bool) -> anyhow::Result<()> {
    let node = node.trim_end_matches('/');
    let file: CommitteeFile = read_toml(genesis)?;
    let genesis_config = file.to_config(genesis)?;
    let committee = crate::member::proven_committee(node, &genesis_config).await?;
    let url = format!("{node}/v1/routing");
    let (status, body) = warpnet_client::get(&url).await?;
    if status != 200 {
        bail!("{url} answered {status}: {body}");
    }
    let routing: Value = serde_json::from_str(&body)?;
    let epoch = routing.get("epoch").and_then(Value::as_u64);
    if epoch != Some(committee.epoch().0) {
        bail!(
            "the routing answer is of epoch {epoch:?}, the proven committee of epoch {}: ask again",
            committee.epoch()
        );
    }
    let v = verify(&routing, &committee)?;
    if json {
        println!("{body}");
        return Ok(());
    }
    println!(
        "verified with the keys of epoch {} (proven from {}): the summary at height {} committed{}",
        v.epoch,
        genesis.display(),
        v.height,
        if v.fallback { " (LR1 fallback: no member is verified public)" } else { "" }
    );
    println!("{:<5} {:<18} {:<22} api", "node", "key", "p2p");
    for (id, key, p2p, api) in &v.members {
        println!("{id:<5} {:<18} {p2p:<22} {api}", &key[..16.min(key.len())]);
    }
    Ok(())
}
