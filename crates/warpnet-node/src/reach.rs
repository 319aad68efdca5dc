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
//!
//! **A member that did not answer is probed again sooner**: after [`RETRY_FIRST_MS`], then
//! twice as long each time, up to [`PROBE_INTERVAL_MS`]. Members of a new cluster start one
//! after another, so the first probes of the members started first meet closed ports; with
//! one round every 10 s, the members started last were verified public (and led) only some
//! 10-20 s after the start, and a cluster's first seconds were led by half its members.

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
/// A member whose probe failed is probed again this long after the failure, then twice as
/// long after each further failure, up to [`PROBE_INTERVAL_MS`].
pub const RETRY_FIRST_MS: u64 = 1_000;
/// The reached set is handed to the core at least this often, so the core re-signs its
/// attestation when it is due even when nothing changed.
const FEED_INTERVAL_MS: u64 = PROBE_INTERVAL_MS;

/// One member's probes: when the next is due, the failures in a row, and when the probe
/// under way (if any) started.
#[derive(Default)]
struct Probe {
    next_ms: u64,
    failures: u32,
    started_ms: Option<u64>,
}

/// The probes' state: each member's schedule, and each member's last success.
#[derive(Default)]
pub struct Reach {
    probes: HashMap<PublicKey, Probe>,
    last_ok: HashMap<PublicKey, u64>,
    fed: Option<(Vec<PublicKey>, u64)>,
}

impl Reach {
    /// Starts the probes that are due: every member of `config` but `me` whose last probe
    /// started [`PROBE_INTERVAL_MS`] ago (or failed, see the module doc), at its advertised
    /// address, each reporting through `events`.
    pub fn maybe_probe(
        &mut self,
        now_ms: u64,
        config: &ConsensusConfig,
        me: &PublicKey,
        transport: &TransportConfig,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        for (key, address) in self.due(now_ms, config, me) {
            let (cfg, events) = (transport.clone(), events.clone());
            tokio::spawn(async move {
                let result = warpnet_net::probe(&cfg, &address, key).await;
                if let Err(e) = &result {
                    debug!(member = %key, %address, error = %e, "reachability probe failed");
                }
                let _ = events.send(Event::Reach(key, result.is_ok()));
            });
        }
    }

    /// The members to probe now (their advertised addresses), marked as under way.
    fn due(
        &mut self,
        now_ms: u64,
        config: &ConsensusConfig,
        me: &PublicKey,
    ) -> Vec<(PublicKey, String)> {
        if config.node_id_of(me).is_none() {
            return Vec::new(); // only members attest
        }
        self.probes.retain(|k, _| config.node_id_of(k).is_some());
        let mut due = Vec::new();
        for p in config.participants() {
            if p.public_key == *me {
                continue;
            }
            let probe = self.probes.entry(p.public_key).or_default();
            // A probe ends within the handshake timeout; one whose report never came (it was
            // lost) does not keep its member from being probed a round later.
            let under_way =
                probe.started_ms.is_some_and(|s| now_ms < s.saturating_add(PROBE_INTERVAL_MS));
            if under_way || now_ms < probe.next_ms {
                continue;
            }
            probe.started_ms = Some(now_ms);
            probe.next_ms = now_ms.saturating_add(PROBE_INTERVAL_MS);
            due.push((p.public_key, p.address.clone()));
        }
        due
    }

    /// A probe's result. A failure brings the member's next probe forward (module doc).
    pub fn on_probed(&mut self, now_ms: u64, key: PublicKey, ok: bool) {
        if ok {
            self.last_ok.insert(key, now_ms);
            if let Some(probe) = self.probes.get_mut(&key) {
                (probe.started_ms, probe.failures) = (None, 0);
            }
            return;
        }
        let probe =
            self.probes.entry(key).or_insert(Probe { next_ms: u64::MAX, ..Probe::default() });
        probe.started_ms = None;
        let wait =
            RETRY_FIRST_MS.saturating_mul(1 << probe.failures.min(16)).min(PROBE_INTERVAL_MS);
        probe.failures = probe.failures.saturating_add(1);
        probe.next_ms = probe.next_ms.min(now_ms.saturating_add(wait));
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

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::SchemeId;

    fn config() -> (ConsensusConfig, Vec<PublicKey>) {
        let (c, _) = ConsensusConfig::for_testing(4, SchemeId::Ed25519, 1).unwrap();
        let keys = c.participants().iter().map(|p| p.public_key).collect();
        (c, keys)
    }

    fn keys_of(due: &[(PublicKey, String)]) -> Vec<PublicKey> {
        due.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn every_other_member_is_probed_at_once_then_every_interval() {
        let (c, k) = config();
        let mut r = Reach::default();
        assert_eq!(keys_of(&r.due(0, &c, &k[0])), k[1..].to_vec());
        assert!(r.due(500, &c, &k[0]).is_empty(), "under way");
        // A report that never comes does not stop the probes of its member.
        assert_eq!(keys_of(&r.due(PROBE_INTERVAL_MS, &c, &k[0])), k[1..].to_vec());
        for key in &k[1..] {
            r.on_probed(PROBE_INTERVAL_MS + 40, *key, true);
        }
        assert!(r.due(2 * PROBE_INTERVAL_MS - 1, &c, &k[0]).is_empty());
        assert_eq!(r.due(2 * PROBE_INTERVAL_MS, &c, &k[0]).len(), 3);
    }

    /// A member started after us (its port still closed at our first probe) is reached
    /// within seconds, not at the next round 10 s later; one that stays away costs a probe
    /// every 10 s at most.
    #[test]
    fn a_member_that_did_not_answer_is_probed_again_sooner_backing_off() {
        let (c, k) = config();
        let mut r = Reach::default();
        r.due(0, &c, &k[0]);
        r.on_probed(10, k[1], true);
        r.on_probed(10, k[2], true);
        r.on_probed(10, k[3], false);
        assert!(r.due(RETRY_FIRST_MS + 9, &c, &k[0]).is_empty());
        assert_eq!(keys_of(&r.due(RETRY_FIRST_MS + 10, &c, &k[0])), vec![k[3]]);
        // Failures in a row: 1 s, 2 s, 4 s, 8 s, then the interval.
        let mut now = RETRY_FIRST_MS + 10;
        for wait in [2_000, 4_000, 8_000, PROBE_INTERVAL_MS, PROBE_INTERVAL_MS] {
            r.on_probed(now, k[3], false);
            assert!(r.due(now + wait - 1, &c, &k[0]).iter().all(|(key, _)| *key != k[3]));
            assert!(keys_of(&r.due(now + wait, &c, &k[0])).contains(&k[3]), "after {wait} ms");
            now += wait;
        }
        // Once it answers, it is back on the interval.
        r.on_probed(now, k[3], true);
        assert!(r.due(now + RETRY_FIRST_MS, &c, &k[0]).iter().all(|(key, _)| *key != k[3]));
        assert!(r.due_report(now, &c).is_some_and(|reached| reached.contains(&k[3])));
    }

    #[test]
    fn a_non_member_probes_nobody() {
        let (c, _) = config();
        let mut r = Reach::default();
        assert!(r.due(0, &c, &PublicKey([99; 32])).is_empty());
    }
}
