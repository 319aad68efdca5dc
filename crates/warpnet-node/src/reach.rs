//! H2 on the node's side: reachability probes of the committee's members at their advertised
//! p2p addresses, and the set of members reached that the core attests (`Input::Reached`).
//!
//! Every [`PROBE_INTERVAL_MS`] the node dials every other member of the current committee at
//! the address the committee file (or the committee change that admitted it) advertises, and
//! completes an authenticated handshake with the key it expects there (`warpnet_net::probe`,
//! purpose "probe": the connection closes after the handshake). A member counts as reached
//! while its last successful probe is at most [`REACHED_VALID_MS`] old. The core signs that
//! set into an attestation and sends it to every member; leaders record attestations in
//! blocks, and a member the chain shows attested by a quorum is *verified public* (H2).
//!
//! A probe is a fresh connection, not the transport's long-lived one: a member behind NAT
//! whose connections are all outgoing stays connected but is not reached, which is exactly
//! the difference between "connected" and "public".

use std::collections::HashMap;

use tokio::sync::mpsc;
use tracing::debug;
use warpnet_net::TransportConfig;
use warpnet_types::{ConsensusConfig, PublicKey};

use crate::committee::Event;

/// How often every member is probed.
pub const PROBE_INTERVAL_MS: u64 = 10_000;
/// A member counts as reached this long after its last successful probe (two missed rounds
/// of probes drop it; attestations are refreshed well within their 60 s age limit).
pub const REACHED_VALID_MS: u64 = 3 * PROBE_INTERVAL_MS;
/// The reached set is handed to the core at least this often, so the core re-signs its
/// attestation when it is due even when nothing changed.
const FEED_INTERVAL_MS: u64 = PROBE_INTERVAL_MS;

/// The probes' state: when the last round started, and each member's last success.
#[derive(Default)]
pub struct Reach {
    last_round_ms: Option<u64>,
    last_ok: HashMap<PublicKey, u64>,
    fed: Option<(Vec<PublicKey>, u64)>,
}

impl Reach {
    /// Starts a round of probes if one is due: every member of `config` but `me`, at its
    /// advertised address, each reporting through `events`.
    pub fn maybe_probe(
        &mut self,
        now_ms: u64,
        config: &ConsensusConfig,
        me: &PublicKey,
        transport: &TransportConfig,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        if config.node_id_of(me).is_none() {
            return; // only members attest
        }
        if self.last_round_ms.is_some_and(|at| now_ms < at.saturating_add(PROBE_INTERVAL_MS)) {
            return;
        }
        self.last_round_ms = Some(now_ms);
        for p in config.participants() {
            if p.public_key == *me {
                continue;
            }
            let (cfg, events, key, address) =
                (transport.clone(), events.clone(), p.public_key, p.address.clone());
            tokio::spawn(async move {
                let result = warpnet_net::probe(&cfg, &address, key).await;
                if let Err(e) = &result {
                    debug!(member = %key, %address, error = %e, "reachability probe failed");
                }
                let _ = events.send(Event::Reach(key, result.is_ok()));
            });
        }
    }

    /// A probe's result.
    pub fn on_probed(&mut self, now_ms: u64, key: PublicKey, ok: bool) {
        if ok {
            self.last_ok.insert(key, now_ms);
        }
    }

    /// The members of `config` reached within [`REACHED_VALID_MS`], if the core should hear
    /// it now: the set changed, or it was last told [`FEED_INTERVAL_MS`] ago.
    pub fn due_report(&mut self, now_ms: u64, config: &ConsensusConfig) -> Option<Vec<PublicKey>> {
        self.last_ok.retain(|k, _| config.node_id_of(k).is_some());
        let mut reached: Vec<PublicKey> = self
            .last_ok
            .iter()
            .filter(|(_, at)| now_ms.saturating_sub(**at) <= REACHED_VALID_MS)
            .map(|(k, _)| *k)
            .collect();
        reached.sort_by_key(|k| config.node_id_of(k));
        let due = match &self.fed {
            None => !reached.is_empty(),
            Some((last, at)) => *last != reached || now_ms >= at.saturating_add(FEED_INTERVAL_MS),
        };
        if !due {
            return None;
        }
        self.fed = Some((reached.clone(), now_ms));
        Some(reached)
    }
}
