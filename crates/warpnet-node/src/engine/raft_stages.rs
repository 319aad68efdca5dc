//! Raft mode's claim stages, on the node that took the claim (`warpnet_claim_stage_seconds`):
//! where a claim's time goes between its request and its answer.
//!
//! - `submit_to_append`: taken by the loop until its entry is in a write of this node's log.
//!   On the leader that is at once; on a follower it holds the forward to the leader, the
//!   leader's append and its message back (two messages).
//! - `append_to_sync`: until that write is durable here (one `fdatasync`, W4).
//! - `sync_to_apply`: until this node learns the entry is committed and applies it: on the
//!   leader a follower's sync and acknowledgement, on a follower also the leader's commit
//!   message. The claim is answered at the apply (RF13).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use warpnet_core::mempool::command_digest;
use warpnet_types::Digest;

use crate::metrics::Metrics;

/// A claim submitted here is forgotten after this long without an apply (its client gave up).
const FORGET: Duration = Duration::from_secs(60);

struct Claim {
    submitted: Instant,
    /// The write that holds its entry here, and when it was queued.
    appended: Option<(u64, Instant)>,
    synced: Option<Instant>,
}

/// The claims submitted here and not yet applied.
#[derive(Default)]
pub(super) struct Stages {
    claims: HashMap<Digest, Claim>,
}

impl Stages {
    pub(super) fn submitted(&mut self, digest: Digest) {
        let submitted = Instant::now();
        self.claims.entry(digest).or_insert(Claim { submitted, appended: None, synced: None });
    }

    /// An entry's commands are in write `seq` of this node's log.
    pub(super) fn appended(&mut self, seq: u64, commands: &[Vec<u8>]) {
        if self.claims.is_empty() {
            return;
        }
        let now = Instant::now();
        for c in commands {
            if let Some(claim) = self.claims.get_mut(&command_digest(c)) {
                claim.appended.get_or_insert((seq, now));
            }
        }
    }

    /// Writes up to `seq` are durable.
    pub(super) fn synced(&mut self, seq: u64) {
        let now = Instant::now();
        for claim in self.claims.values_mut() {
            if claim.synced.is_none() && claim.appended.is_some_and(|(s, _)| s <= seq) {
                claim.synced = Some(now);
            }
        }
    }

    /// The command `digest` was applied here (and is answered now).
    pub(super) fn applied(&mut self, m: &Metrics, digest: &Digest) {
        let Some(claim) = self.claims.remove(digest) else { return };
        let now = Instant::now();
        let appended = claim.appended.map_or(now, |(_, at)| at);
        let synced = claim.synced.unwrap_or(appended);
        let secs = |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64();
        m.claim_stage("submit_to_append", secs(claim.submitted, appended));
        m.claim_stage("append_to_sync", secs(appended, synced));
        m.claim_stage("sync_to_apply", secs(synced, now));
    }

    pub(super) fn prune(&mut self) {
        self.claims.retain(|_, c| c.submitted.elapsed() < FORGET);
    }
}
