//! The node's handle: what the consensus loop shares with the API. The configuration, the
//! snapshot the loop publishes after every step, committed state, the claim verifier, and the
//! queue of submissions (a command and where its outcome goes).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use warpnet_state::{Claim, Outcome, Owner, UserId};
use warpnet_storage::Store;
use warpnet_types::ConsensusConfig;

use crate::app::View;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::verifier::Verifier;

/// A command for the consensus loop, and where its outcome goes.
pub struct Submission {
    pub command: Vec<u8>,
    pub done: oneshot::Sender<Result<Outcome, Refused>>,
}

/// Why the consensus loop did not take a command.
#[derive(Debug)]
pub enum Refused {
    /// The mempool is full.
    Overloaded,
    /// The command is not acceptable (too large): the API should never have sent it.
    Invalid(String),
    /// The command committed recently (M2): committed state has its outcome.
    AlreadyCommitted,
}

/// What the consensus loop publishes after every step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Snapshot {
    pub node_id: u16,
    pub epoch: u64,
    pub round: u64,
    pub committed_height: u64,
    pub leader: u16,
    pub connected: Vec<u16>,
    #[serde(skip)]
    pub last_certificate: Option<Instant>,
}

/// State shared between the consensus loop and the API.
pub struct Shared {
    pub config: Arc<ConsensusConfig>,
    pub snapshot: Mutex<Snapshot>,
    pub metrics: Arc<Metrics>,
    /// How recent a certificate must be for `/v1/health` to call the node live.
    pub live_window: Duration,
    /// Committed state, for lookups (readers never block the consensus loop's writes).
    pub store: Arc<Store>,
    pub verifier: Verifier,
    /// Commands for the consensus loop.
    pub submit: mpsc::Sender<Submission>,
    /// How long a claim (or a linearizable read) waits for its commit.
    pub claim_timeout: Duration,
}

/// An owner found in committed state, and the committed height it was read at.
pub struct Lookup {
    pub owner: Option<Owner>,
    pub read_height: u64,
}

impl Shared {
    /// The loop's last published snapshot.
    pub fn snapshot(&self) -> Result<Snapshot, ApiError> {
        self.snapshot
            .lock()
            .map(|s| s.clone())
            .map_err(|_| ApiError::internal("the node's status lock is poisoned"))
    }

    /// Members reachable (connected, and this node), and the quorum.
    pub fn reach(&self) -> (usize, usize) {
        // A poisoned lock counts nobody else reachable: claims are then refused unsubmitted.
        let connected = self.snapshot.lock().map(|s| s.connected.len()).unwrap_or(0);
        (connected + 1, self.config.quorum_threshold())
    }

    /// Who owns `id` in committed state.
    pub fn lookup(&self, id: &UserId) -> Result<Lookup, ApiError> {
        let snapshot = self.store.app_snapshot().map_err(ApiError::internal)?;
        let owner =
            warpnet_state::lookup(&View::committed(&snapshot), id).map_err(ApiError::internal)?;
        Ok(Lookup { owner, read_height: snapshot.height().0 })
    }

    /// What committed state already answers for `claim`, if anything (see
    /// `warpnet_state::settled`): a retry's recorded result, or the ID's owner.
    pub fn settled(&self, claim: &Claim) -> Result<Option<Outcome>, ApiError> {
        let snapshot = self.store.app_snapshot().map_err(ApiError::internal)?;
        warpnet_state::settled(&View::committed(&snapshot), claim).map_err(ApiError::internal)
    }
}
