//! Reachability (H2, LR1): a member no honest member can dial at its advertised address never
//! leads, unless no member fit to lead is verified public (the fallback: the health its block
//! took its leader from says so) or the round is past LR4's escape (every self-declared public
//! member leads in turn there: liveness first). Attestations need a quorum with the member, so
//! up to `f` Byzantine attesters cannot verify it.

use warpnet_core::health::Health;
use warpnet_types::{Block, PublicKey};

use super::Violation;

/// `leader_health`: the health `block` took its leader from (its grandparent's).
pub fn check(
    block: &Block,
    proposer: PublicKey,
    leader_health: &Health,
    undialable: &[PublicKey],
    now: u64,
) -> Option<Violation> {
    let escape = warpnet_core::health::escape_rounds(leader_health.eligible.len());
    let escaped = block.round().0 > leader_health.anchor.0.saturating_add(escape);
    let allowed = leader_health.summary.fallback || escaped;
    (undialable.contains(&proposer) && !allowed).then(|| Violation {
        invariant: "reachability",
        at_ms: now,
        detail: format!(
            "{block:?} was proposed by a member no one can dial, while verified-public members could lead"
        ),
    })
}
