//! Agreed health as the API and `/metrics` show it (H3, H4, LR1, LR2): the core computes each
//! member's health from a window of committed blocks (`warpnet_core::health`); this module
//! turns the health seen from the newest committed block into the committee view's fields,
//! and the newest committed summary, with the proof that it committed, into `GET /v1/routing`.

use std::sync::Arc;

use warpnet_core::Core;
use warpnet_types::health::{HealthSummary, MemberHealth};
use warpnet_types::Encode;

use crate::handle::{Committee, HealthView, MemberHealthView, RouteView, RoutingView};
use crate::metrics::{MemberGauges, Metrics};

fn member_view(m: &MemberHealth) -> MemberHealthView {
    MemberHealthView {
        online: m.online,
        last_seen_height: m.last_seen.map(|h| h.0),
        votes: m.votes,
        proposals: m.proposals,
        failed_leader_rounds: m.failed,
        verified_public: m.verified_public,
        attested_by: u32::from(m.attested_by),
        reputation: m.reputation.name(),
    }
}

/// Fills `view` (built from the committee) with the health seen from the newest committed
/// block, and the routing answer from the newest committed summary; updates the gauges.
pub fn attach(view: &mut Committee, core: &Core, metrics: &Metrics) {
    let status = core.status();
    let config = core.config();
    if let Some(health) = core.health_seen_from(status.committed_block) {
        let summary = &health.summary;
        view.health = Some(HealthView {
            computed_at_height: status.committed_height.0,
            window_blocks: summary.window_blocks,
            fallback: summary.fallback,
        });
        let mut gauges = Vec::with_capacity(view.members.len());
        for member in &mut view.members {
            let Ok(key) = config.public_key(warpnet_types::NodeId(member.node_id)) else {
                continue;
            };
            if let Some(m) = summary.member(key) {
                let h = member_view(m);
                gauges.push(MemberGauges {
                    node_id: member.node_id,
                    key: member.public_key.chars().take(16).collect(),
                    online: h.online,
                    verified_public: h.verified_public,
                    leader_eligible: h.reputation == "leader",
                    votes: h.votes,
                    failed_leader_rounds: h.failed_leader_rounds,
                });
                member.health = Some(h);
            }
        }
        metrics.member_health(gauges);
    }
    view.routing = core.health_proof().and_then(|proof| {
        let block = proof.block()?;
        let summary: &HealthSummary = block.health().summary.as_ref()?;
        let members = summary
            .routable()
            .filter_map(|(id, _)| {
                let p = config.participant(id).ok()?;
                Some(RouteView {
                    node_id: id.0,
                    public_key: p.public_key.to_hex(),
                    p2p_address: p.address.clone(),
                    api_address: p.api_address.clone(),
                })
            })
            .collect();
        Some(Arc::new(RoutingView {
            epoch: block.epoch().0,
            height: block.height().0,
            block_id: block.id().to_hex(),
            fallback: summary.fallback,
            members,
            proof: hex::encode(proof.to_bytes()),
        }))
    });
}
