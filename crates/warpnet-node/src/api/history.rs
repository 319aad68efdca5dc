//! The node's recent progress, `GET /v1/history`: one sample of the committed height and the
//! round (Raft mode: the term) per second for the last ten minutes, so the status page's commit
//! rate chart survives a reload. Sampled off the consensus loop from the snapshot it publishes;
//! bounded to [`SAMPLES_MAX`] samples.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use tokio::time::MissedTickBehavior;

use super::{ok, AppState};
use crate::error::ApiError;
use crate::handle::Shared;

/// Time between two samples.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Samples kept: ten minutes at one per [`INTERVAL`].
pub const SAMPLES_MAX: usize = 600;

/// One sample: unix time in ms, the committed height (Raft mode: the applied index), and the
/// round (Raft mode: the term). Serialized as an array, `[unix_ms, committed_height, round]`.
pub type Sample = (u64, u64, u64);

/// The last [`SAMPLES_MAX`] samples, oldest first.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    /// Adds a sample, dropping the oldest past [`SAMPLES_MAX`].
    pub fn push(&self, sample: Sample) {
        // A poisoned lock only means a push panicked midway: the deque itself is still whole.
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() == SAMPLES_MAX {
            s.pop_front();
        }
        s.push_back(sample);
    }

    /// Every sample kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect()
    }
}

/// Samples `shared`'s published snapshot into `history` every [`INTERVAL`], forever (the API
/// task aborts it when it stops).
pub async fn sample(shared: Arc<Shared>, history: Arc<History>) {
    let mut tick = tokio::time::interval(INTERVAL);
    // A stalled runtime skips the samples it missed instead of taking them all at once.
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let Ok(snap) = shared.snapshot() else { continue };
        let round = snap.raft.as_ref().map_or(snap.round, |r| r.term);
        history.push((unix_ms(), snap.committed_height, round));
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `GET /v1/history`.
#[derive(Serialize)]
struct HistoryBody {
    interval_ms: u64,
    /// `hotstuff` or `raft`: what the third field of a sample is (round or term).
    consensus: &'static str,
    samples: Vec<Sample>,
}

pub(super) async fn history(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = HistoryBody {
        interval_ms: INTERVAL.as_millis() as u64,
        consensus: state.shared.consensus.as_str(),
        samples: state.history.samples(),
    };
    Ok(ok("ok", StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ring keeps the newest SAMPLES_MAX samples, oldest first: memory stays bounded
    /// however long the node runs.
    #[test]
    fn history_keeps_the_newest_samples_and_no_more() {
        let h = History::default();
        for i in 0..(SAMPLES_MAX as u64 + 25) {
            h.push((i, i * 10, i * 2));
        }
        let s = h.samples();
        assert_eq!(s.len(), SAMPLES_MAX);
        assert_eq!(s[0], (25, 250, 50));
        assert_eq!(
            *s.last().expect("a sample"),
            (
                SAMPLES_MAX as u64 + 24,
                10 * (SAMPLES_MAX as u64 + 24),
                2 * (SAMPLES_MAX as u64 + 24)
            )
        );
    }

    /// A sample is answered as `[unix_ms, committed_height, round]`, as the spec says.
    #[test]
    fn a_sample_serializes_as_an_array_of_three() {
        let body =
            HistoryBody { interval_ms: 1000, consensus: "hotstuff", samples: vec![(7, 8, 9)] };
        let v = serde_json::to_value(&body).expect("serializes");
        assert_eq!(
            v,
            serde_json::json!({
                "interval_ms": 1000, "consensus": "hotstuff", "samples": [[7, 8, 9]]
            })
        );
    }
}
