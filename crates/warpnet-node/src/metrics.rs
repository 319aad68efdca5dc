//! The node's metrics, kept with `prometheus-client` and served at `GET /metrics` in the
//! Prometheus text format (0.0.4). Every name is listed in the README.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the fsync latency histogram's buckets.
const FSYNC_BUCKETS: [f64; 10] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0];

/// Upper bounds (seconds) of the claim stage histogram's buckets.
const STAGE_BUCKETS: [f64; 12] =
    [0.0005, 0.001, 0.002, 0.004, 0.006, 0.008, 0.012, 0.016, 0.024, 0.032, 0.064, 0.25];
/// Upper bounds of the histogram of claim signatures the verifier checked per turn.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 512.0];
/// Upper bounds of the rounds-per-claim histogram's buckets.
const ROUND_BUCKETS: [f64; 8] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 16.0];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One label, as `name="value"`; values are the fixed names the node uses.
type Label = [(&'static str, &'static str); 1];
type Counted = Family<Label, Counter>;
type Staged = Family<Label, Histogram, fn() -> Histogram>;

/// Per-member gauges: labelled by the member's index and its key's first 16 hex digits.
type PerMember = Family<Vec<(String, String)>, Gauge<u64, AtomicU64>>;

/// One member's agreed health, for the per-member gauges (see [`Metrics::member_health`]).
pub struct MemberGauges {
    pub node_id: u16,
    pub key: String,
    pub online: bool,
    pub verified_public: bool,
    pub leader_eligible: bool,
    pub votes: u32,
    pub failed_leader_rounds: u32,
}

/// Totals kept elsewhere (the core, the transport), copied in after every step and read at
/// each scrape.
#[derive(Debug, Default)]
struct Totals {
    timeouts: AtomicU64,
    rejected_connections: AtomicU64,
    malformed_frames: AtomicU64,
    dropped_sends: AtomicU64,
}

impl Collector for Totals {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            ("warpnet_timeouts", "Round timeouts fired locally", &self.timeouts),
            (
                "warpnet_rejected_connections",
                "Connections refused (handshake or identity)",
                &self.rejected_connections,
            ),
            (
                "warpnet_malformed_frames",
                "Frames from members that did not decode",
                &self.malformed_frames,
            ),
            (
                "warpnet_dropped_sends",
                "Frames dropped because a peer's queue was full",
                &self.dropped_sends,
            ),
        ] {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// Every metric of a node. Counters registered as `x` are exposed as `x_total`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub round: Gauge<u64, AtomicU64>,
    pub committed_height: Gauge<u64, AtomicU64>,
    pub connected_peers: Gauge<u64, AtomicU64>,
    pub commits: Counter,
    /// The core's writes made durable (several share one transaction under load).
    pub writes: Counter,
    pub evidence: Counter,
    pub signature_failures: Counter,
    totals: Arc<Totals>,
    messages_in: Counted,
    messages_out: Counted,
    rejected: Counted,
    applied: Counted,
    api: Counted,
    verdicts: Counted,
    claim_verdicts: Counted,
    fsync: Histogram,
    db_commit: Histogram,
    db_checkpoint: Histogram,
    claim_stage: Staged,
    claim_rounds: Histogram,
    verifier_batch: Histogram,
    member_online: PerMember,
    member_verified_public: PerMember,
    member_leader_eligible: PerMember,
    member_votes: PerMember,
    member_failed_leader_rounds: PerMember,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let round = Gauge::default();
        let committed_height = Gauge::default();
        let connected_peers = Gauge::default();
        registry.register("warpnet_round", "Current consensus round", round.clone());
        registry.register(
            "warpnet_committed_height",
            "Height of the last committed block",
            committed_height.clone(),
        );
        registry.register(
            "warpnet_connected_peers",
            "Members connected now",
            connected_peers.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let commits = counter(&mut registry, "warpnet_commits", "Blocks committed");
        let writes = counter(
            &mut registry,
            "warpnet_storage_writes",
            "The core's writes made durable; warpnet_fsync_seconds_count counts the transactions they were merged into",
        );
        let evidence = counter(&mut registry, "warpnet_evidence", "Equivocations proven");
        let signature_failures = counter(
            &mut registry,
            "warpnet_signature_failures",
            "Inputs refused for a bad signature",
        );
        let totals = Arc::new(Totals::default());
        registry.register_collector(Box::new(totals.clone()));
        let family = |registry: &mut Registry, name: &str, help: &str| {
            let f = Counted::default();
            registry.register(name, help, f.clone());
            f
        };
        let messages_in =
            family(&mut registry, "warpnet_messages_in", "Messages received, by type");
        let messages_out = family(&mut registry, "warpnet_messages_out", "Messages sent, by type");
        let rejected =
            family(&mut registry, "warpnet_rejected_inputs", "Inputs the core refused, by kind");
        let applied = family(
            &mut registry,
            "warpnet_applied_commands",
            "Committed commands applied to the registry, by outcome",
        );
        let verdicts = family(
            &mut registry,
            "warpnet_block_verdicts",
            "Committed blocks with commands, by where their signatures were checked",
        );
        let claim_verdicts = family(
            &mut registry,
            "warpnet_claim_verdicts",
            "Claim signature verdicts, by whether they came from the verdict cache or a check",
        );
        let api = family(
            &mut registry,
            "warpnet_api_requests",
            "API requests answered, by result (the answer's status or error code)",
        );
        let fsync = Histogram::new(FSYNC_BUCKETS);
        registry.register(
            "warpnet_fsync_seconds",
            "Latency of durable writes (one per merged write of the consensus steps): the step applied to a database transaction, its log record written and synced",
            fsync.clone(),
        );
        let db_commit = Histogram::new(FSYNC_BUCKETS);
        registry.register(
            "warpnet_db_commit_seconds",
            "The database's commit after each durable write (no fsync), before lookups see the write",
            db_commit.clone(),
        );
        let db_checkpoint = Histogram::new(FSYNC_BUCKETS);
        registry.register(
            "warpnet_db_checkpoint_seconds",
            "The database's durable checkpoints (with their fsync), taken every 32 logged writes after the write's reports: the writes queued meanwhile wait for them",
            db_checkpoint.clone(),
        );
        let claim_stage: Staged = Family::new_with_constructor(|| Histogram::new(STAGE_BUCKETS));
        registry.register(
            "warpnet_claim_stage_seconds",
            "A command's time on the node that took it, by stage. HotStuff mode: submit_to_commit (taken by the loop until its block commits and it is applied in memory), commit_to_answer (applied until its request is answered). Raft mode: submit_to_append (taken by the loop until its entry is in a write of this node's log), append_to_sync (until that write is durable), sync_to_apply (until the entry is known committed and applied here, when it is answered)",
            claim_stage.clone(),
        );
        let claim_rounds = Histogram::new(ROUND_BUCKETS);
        registry.register(
            "warpnet_claim_rounds",
            "HotStuff mode: rounds from a command's submit on this node to its commit",
            claim_rounds.clone(),
        );
        let verifier_batch = Histogram::new(BATCH_BUCKETS);
        registry.register(
            "warpnet_verifier_batch_claims",
            "Claim signatures the verifier thread checked in one turn, in ZIP-215 batches (verdicts from its cache not counted; turns that checked none not observed). The larger the batch, the cheaper each signature (docs/benchmarks.md, zip215_batch)",
            verifier_batch.clone(),
        );
        let per_member = |registry: &mut Registry, name: &str, help: &str| {
            let f = PerMember::default();
            registry.register(name, help, f.clone());
            f
        };
        let member_online = per_member(
            &mut registry,
            "warpnet_member_online",
            "Agreed health: 1 if the member's signatures are recorded in the window's last blocks",
        );
        let member_verified_public = per_member(
            &mut registry,
            "warpnet_member_verified_public",
            "Agreed health: 1 if a quorum attests reaching the member at its advertised address",
        );
        let member_leader_eligible = per_member(
            &mut registry,
            "warpnet_member_leader_eligible",
            "Leader reputation: 1 if the member may lead",
        );
        let member_votes = per_member(
            &mut registry,
            "warpnet_member_votes",
            "Agreed health: blocks in the window that record the member's vote",
        );
        let member_failed_leader_rounds = per_member(
            &mut registry,
            "warpnet_member_failed_leader_rounds",
            "Agreed health: rounds of the member's leadership that failed in the window",
        );
        Self {
            registry,
            round,
            committed_height,
            connected_peers,
            commits,
            writes,
            evidence,
            signature_failures,
            totals,
            messages_in,
            messages_out,
            rejected,
            applied,
            api,
            verdicts,
            claim_verdicts,
            fsync,
            db_commit,
            db_checkpoint,
            claim_stage,
            claim_rounds,
            verifier_batch,
            member_online,
            member_verified_public,
            member_leader_eligible,
            member_votes,
            member_failed_leader_rounds,
        }
    }

    /// Replaces the per-member gauges with the committee's agreed health now (members that
    /// left disappear).
    pub fn member_health(&self, members: Vec<MemberGauges>) {
        let families = [
            &self.member_online,
            &self.member_verified_public,
            &self.member_leader_eligible,
            &self.member_votes,
            &self.member_failed_leader_rounds,
        ];
        for f in families {
            f.clear();
        }
        for m in members {
            let labels =
                vec![("member".to_owned(), m.node_id.to_string()), ("key".to_owned(), m.key)];
            let values = [
                u64::from(m.online),
                u64::from(m.verified_public),
                u64::from(m.leader_eligible),
                u64::from(m.votes),
                u64::from(m.failed_leader_rounds),
            ];
            for (f, v) in families.iter().zip(values) {
                f.get_or_create(&labels).set(v);
            }
        }
    }

    pub fn message_in(&self, kind: &'static str) {
        self.messages_in.get_or_create(&[("type", kind)]).inc();
    }

    pub fn message_out(&self, kind: &'static str) {
        self.messages_out.get_or_create(&[("type", kind)]).inc();
    }

    pub fn rejected(&self, kind: &'static str) {
        if kind == "bad_signature" {
            self.signature_failures.inc();
        }
        self.rejected.get_or_create(&[("kind", kind)]).inc();
    }

    /// A committed command was applied with this result (`claimed`, `taken`, ...).
    pub fn applied(&self, outcome: &'static str) {
        self.applied.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// One turn of the verifier thread: the claim verdicts it found in its cache (`cache`) or
    /// computed (`checked`); a turn that computed any is also one observation of
    /// `warpnet_verifier_batch_claims`.
    pub fn claim_verdicts(&self, cached: u64, checked: u64) {
        self.claim_verdicts.get_or_create(&[("source", "cache")]).inc_by(cached);
        self.claim_verdicts.get_or_create(&[("source", "checked")]).inc_by(checked);
        if checked > 0 {
            self.verifier_batch.observe(checked as f64);
        }
    }

    /// A committed block's signature verdicts were computed `ahead` (verifier thread) or at
    /// `commit` (on the consensus loop).
    pub fn verdicts(&self, source: &'static str, blocks: u64) {
        if blocks > 0 {
            self.verdicts.get_or_create(&[("source", source)]).inc_by(blocks);
        }
    }

    /// The API answered a request with this result (`claimed`, `invalid_json`, ...).
    pub fn api(&self, result: &'static str) {
        self.api.get_or_create(&[("result", result)]).inc();
    }

    pub fn fsync(&self, seconds: f64) {
        self.fsync.observe(seconds);
    }

    /// The database's commit after a durable write (see `warpnet_db_commit_seconds`).
    pub fn db_commit(&self, seconds: f64) {
        self.db_commit.observe(seconds);
    }

    /// A durable checkpoint of the database (see `warpnet_db_checkpoint_seconds`).
    pub fn db_checkpoint(&self, seconds: f64) {
        self.db_checkpoint.observe(seconds);
    }

    /// A command spent `seconds` in `stage` (see `warpnet_claim_stage_seconds`).
    pub fn claim_stage(&self, stage: &'static str, seconds: f64) {
        self.claim_stage.get_or_create(&[("stage", stage)]).observe(seconds);
    }

    /// A command committed `rounds` rounds after its submit here.
    pub fn claim_rounds(&self, rounds: u64) {
        self.claim_rounds.observe(rounds as f64);
    }

    /// The round timeouts the core has fired, in all.
    pub fn timeouts(&self, total: u64) {
        self.totals.timeouts.store(total, Ordering::Relaxed);
    }

    /// The transport's totals, as of the last step.
    pub fn transport(&self, rejected_connections: u64, malformed_frames: u64, dropped_sends: u64) {
        let t = &self.totals;
        t.rejected_connections.store(rejected_connections, Ordering::Relaxed);
        t.malformed_frames.store(malformed_frames, Ordering::Relaxed);
        t.dropped_sends.store(dropped_sends, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metrics with one sample in every labelled family (a family shows only once it has one).
    fn populated() -> Metrics {
        let m = Metrics::new();
        m.message_in("vote");
        m.message_out("vote");
        m.rejected("bad_signature");
        m.applied("claimed");
        m.verdicts("ahead", 1);
        m.claim_verdicts(1, 1);
        m.api("claimed");
        m.fsync(0.001);
        m.claim_stage("submit_to_commit", 0.01);
        m.claim_rounds(2);
        m.commits.inc();
        m.member_health(vec![MemberGauges {
            node_id: 0,
            key: "00".into(),
            online: true,
            verified_public: true,
            leader_eligible: true,
            votes: 1,
            failed_leader_rounds: 0,
        }]);
        m
    }

    /// The metric names kept from the hand-written exposition are exposed, exactly.
    #[test]
    fn every_listed_metric_name_is_exposed() {
        let text = populated().render();
        for name in [
            "warpnet_round ",
            "warpnet_committed_height ",
            "warpnet_connected_peers ",
            "warpnet_commits_total ",
            "warpnet_storage_writes_total ",
            "warpnet_timeouts_total ",
            "warpnet_evidence_total ",
            "warpnet_signature_failures_total 1",
            "warpnet_rejected_connections_total ",
            "warpnet_malformed_frames_total ",
            "warpnet_dropped_sends_total ",
            "warpnet_messages_in_total{type=\"vote\"} 1",
            "warpnet_messages_out_total{type=\"vote\"} 1",
            "warpnet_rejected_inputs_total{kind=\"bad_signature\"} 1",
            "warpnet_applied_commands_total{outcome=\"claimed\"} 1",
            "warpnet_block_verdicts_total{source=\"ahead\"} 1",
            "warpnet_claim_verdicts_total{source=\"cache\"} 1",
            "warpnet_api_requests_total{result=\"claimed\"} 1",
            "warpnet_fsync_seconds_bucket{le=\"0.001\"} 1",
            "warpnet_fsync_seconds_count 1",
            "warpnet_claim_stage_seconds_count{stage=\"submit_to_commit\"} 1",
            "warpnet_claim_rounds_count 1",
            "warpnet_verifier_batch_claims_bucket{le=\"1\"} 1",
            "warpnet_member_online{member=\"0\",key=\"00\"} 1",
            "warpnet_member_failed_leader_rounds{member=\"0\",key=\"00\"} 0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    /// The README lists every metric the node exposes.
    #[test]
    fn the_readme_lists_every_metric() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        let text = populated().render();
        let names: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
        assert!(names.len() >= 18, "{names:?}");
        for name in names {
            assert!(readme.contains(&format!("`{name}")), "the README does not list {name}");
        }
    }
}
