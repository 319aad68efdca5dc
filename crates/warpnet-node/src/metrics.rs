//! Counters and gauges, rendered in the Prometheus text format at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the fsync latency histogram's buckets.
const FSYNC_BUCKETS: [f64; 10] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];

/// Counters kept by the transport.
#[derive(Clone, Copy, Debug, Default)]
pub struct TransportCounters {
    pub rejected_connections: u64,
    pub malformed_frames: u64,
    pub dropped_sends: u64,
}

#[derive(Default)]
pub struct Metrics {
    pub round: AtomicU64,
    pub committed_height: AtomicU64,
    pub commits: AtomicU64,
    /// The core's writes made durable (several share one transaction under load).
    pub writes: AtomicU64,
    pub timeouts: AtomicU64,
    pub evidence: AtomicU64,
    pub signature_failures: AtomicU64,
    messages_in: Mutex<BTreeMap<&'static str, u64>>,
    messages_out: Mutex<BTreeMap<&'static str, u64>>,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    applied: Mutex<BTreeMap<&'static str, u64>>,
    api: Mutex<BTreeMap<&'static str, u64>>,
    verdicts: Mutex<BTreeMap<&'static str, u64>>,
    claim_verdicts: Mutex<BTreeMap<&'static str, u64>>,
    fsync: Mutex<([u64; FSYNC_BUCKETS.len()], u64, f64)>,
}

fn bump(map: &Mutex<BTreeMap<&'static str, u64>>, key: &'static str) {
    if let Ok(mut m) = map.lock() {
        *m.entry(key).or_default() += 1;
    }
}

impl Metrics {
    pub fn message_in(&self, kind: &'static str) {
        bump(&self.messages_in, kind);
    }

    pub fn message_out(&self, kind: &'static str) {
        bump(&self.messages_out, kind);
    }

    pub fn rejected(&self, kind: &'static str) {
        if kind == "bad_signature" {
            self.signature_failures.fetch_add(1, Ordering::Relaxed);
        }
        bump(&self.rejected, kind);
    }

    /// A committed command was applied with this result (`claimed`, `taken`, ...).
    pub fn applied(&self, outcome: &'static str) {
        bump(&self.applied, outcome);
    }

    /// A committed block's signature verdicts were computed `ahead` (verifier thread) or at
    /// `commit` (on the consensus loop).
    pub fn verdicts(&self, source: &'static str, blocks: u64) {
        if blocks > 0 {
            if let Ok(mut m) = self.verdicts.lock() {
                *m.entry(source).or_default() += blocks;
            }
        }
    }

    /// Claim verdicts the verifier found in its cache (`cache`) or computed (`checked`).
    pub fn claim_verdicts(&self, cached: u64, checked: u64) {
        if let Ok(mut m) = self.claim_verdicts.lock() {
            *m.entry("cache").or_default() += cached;
            *m.entry("checked").or_default() += checked;
        }
    }

    /// The API answered a claim or lookup with this result (`claimed`, `bad_request`, ...).
    pub fn api(&self, result: &'static str) {
        bump(&self.api, result);
    }

    pub fn fsync(&self, seconds: f64) {
        if let Ok(mut h) = self.fsync.lock() {
            for (i, le) in FSYNC_BUCKETS.iter().enumerate() {
                if seconds <= *le {
                    h.0[i] += 1;
                }
            }
            h.1 += 1;
            h.2 += seconds;
        }
    }

    /// Prometheus text exposition, with the transport's counters.
    pub fn render(&self, transport: &TransportCounters, connected_peers: usize) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        gauge(
            &mut out,
            "warpnet_round",
            "Current consensus round.",
            self.round.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "warpnet_committed_height",
            "Height of the last committed block.",
            self.committed_height.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "warpnet_connected_peers",
            "Members connected now.",
            connected_peers as u64,
        );
        counter(
            &mut out,
            "warpnet_commits_total",
            "Blocks committed.",
            self.commits.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "warpnet_storage_writes_total",
            "The core's writes made durable; warpnet_fsync_seconds_count counts the transactions they were merged into.",
            self.writes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "warpnet_timeouts_total",
            "Round timeouts fired locally.",
            self.timeouts.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "warpnet_evidence_total",
            "Equivocations proven.",
            self.evidence.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "warpnet_signature_failures_total",
            "Inputs refused for a bad signature.",
            self.signature_failures.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "warpnet_rejected_connections_total",
            "Connections refused (handshake or identity).",
            transport.rejected_connections,
        );
        counter(
            &mut out,
            "warpnet_malformed_frames_total",
            "Frames from members that did not decode.",
            transport.malformed_frames,
        );
        counter(
            &mut out,
            "warpnet_dropped_sends_total",
            "Frames dropped because a peer's queue was full.",
            transport.dropped_sends,
        );
        for (name, help, label, map) in [
            ("warpnet_messages_in_total", "Messages received, by type.", "type", &self.messages_in),
            ("warpnet_messages_out_total", "Messages sent, by type.", "type", &self.messages_out),
            (
                "warpnet_rejected_inputs_total",
                "Inputs the core refused, by kind.",
                "kind",
                &self.rejected,
            ),
            (
                "warpnet_applied_commands_total",
                "Committed commands applied to the registry, by outcome.",
                "outcome",
                &self.applied,
            ),
            (
                "warpnet_block_verdicts_total",
                "Committed blocks with commands, by where their signatures were checked.",
                "source",
                &self.verdicts,
            ),
            (
                "warpnet_claim_verdicts_total",
                "Claim signature verdicts, by whether they came from the verdict cache or a check.",
                "source",
                &self.claim_verdicts,
            ),
            (
                "warpnet_api_requests_total",
                "Claims and lookups answered by the API, by result.",
                "result",
                &self.api,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            if let Ok(m) = map.lock() {
                for (k, v) in m.iter() {
                    let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
                }
            }
        }
        let name = "warpnet_fsync_seconds";
        let _ = writeln!(out, "# HELP {name} Latency of durable writes (one per consensus step).\n# TYPE {name} histogram");
        if let Ok(h) = self.fsync.lock() {
            for (i, le) in FSYNC_BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", h.0[i]);
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
                h.1, h.2, h.1
            );
        }
        out
    }
}
