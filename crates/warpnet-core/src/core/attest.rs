//! H2: this member's reachability attestations, and the members' attestations it holds for
//! the blocks it proposes.
//!
//! The runtime reports which members it reached by dialing their advertised p2p address
//! (`Input::Reached`); the member signs that set (never itself) with the time, sends it to
//! every member, and signs again when the set changes or [`ATTESTATION_REFRESH_MS`] passed.
//! Each member keeps the latest valid attestation of every member; a leader records those the
//! window it builds on lacks (or holds older), while fresh for its block's timestamp.
//! Attestations are not safety data: signing two is harmless (the latest counts), so they are
//! neither persisted nor sealed.

use warpnet_types::health::{fresh, Attestation, ATTESTATION_AHEAD_MS_MAX, ATTESTATION_REFRESH_MS};
use warpnet_types::{Message, NodeId, PublicKey, VoterBitmap};

use super::Core;
use crate::health::Health;
use crate::io::Rejection;

/// H2: a recorded attestation this many blocks from leaving the window is recorded again (a
/// leader's window ends two blocks below its block).
const REFRESH_MARGIN_BLOCKS: u64 = 4;

impl Core {
    /// H2: the runtime reached these members at their advertised address.
    pub(super) fn on_reached(&mut self, peers: Vec<PublicKey>) {
        self.reached = peers;
        self.attest();
    }

    /// H2: signs and sends an attestation of what we reached, if it changed or is due.
    pub(super) fn attest(&mut self) {
        let Some(me) = self.me else { return }; // only members attest
        let n = self.config.total_nodes();
        let ids: Vec<NodeId> = self
            .reached
            .iter()
            .filter_map(|k| self.config.node_id_of(k))
            .filter(|&id| id != me)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let Ok(reached) = VoterBitmap::from_ids(n, &ids) else { return };
        let now = self.now_ms;
        if let Some(own) = self.attestations.get(&me) {
            if own.reached == reached && now < own.at_ms.saturating_add(ATTESTATION_REFRESH_MS) {
                return;
            }
        }
        let a = Attestation::sign(&self.config, me, now, reached, self.signer.as_ref());
        self.attestations.insert(me, a.clone());
        self.broadcast(Message::Attestation(a));
    }

    /// H2: a member's attestation: kept if valid, from its signer, not far ahead of our clock,
    /// and newer than the one we hold.
    pub(super) fn on_attestation(&mut self, from: NodeId, a: Attestation) {
        if a.attester != from {
            return self.reject(Some(from), Rejection::WrongSender { claimed: a.attester, from });
        }
        if let Err(e) = a.validate(&self.config) {
            return self.reject(Some(from), e.into());
        }
        let ahead_max = self.now_ms.saturating_add(ATTESTATION_AHEAD_MS_MAX);
        if a.at_ms > ahead_max {
            let reason = Rejection::FutureTimestamp { timestamp_ms: a.at_ms, now_ms: self.now_ms };
            return self.reject(Some(from), reason);
        }
        if self.attestations.get(&from).is_none_or(|held| held.at_ms < a.at_ms) {
            self.attestations.insert(from, a);
        }
    }

    /// H2: the attestations a leader records in a block stamped `timestamp_ms` whose health
    /// comes from `health` (seen from its grandparent): the fresh ones that window lacks,
    /// holds an older copy of, or holds in a block about to leave the window, so every
    /// attester's latest attestation stays in every window.
    pub(super) fn attestations_to_record(
        &self,
        health: &Health,
        timestamp_ms: u64,
    ) -> Vec<Attestation> {
        let window = crate::health::window_len(self.config.total_nodes()) as u64;
        let end = health.summary.window_end.0;
        self.attestations
            .values()
            .filter(|a| fresh(a.at_ms, timestamp_ms))
            .filter(|a| {
                let recorded = health.attested_at.get(a.attester.index()).copied().flatten();
                recorded.is_none_or(|(at, height)| {
                    at < a.at_ms || height.0 + window <= end + REFRESH_MARGIN_BLOCKS
                })
            })
            .cloned()
            .collect()
    }
}
