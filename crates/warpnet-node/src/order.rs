//! The ordering of submissions: a claim from its signature check to its commit, and the read
//! barriers of linearizable lookups, each waited for at most `claim_timeout`.
//!
//! A claim is checked in this order, and the first failure answers: signature, in batches on
//! the verifier thread (400) → committed state, which may already settle it (no ordering
//! needed) → a quorum of members reachable (503 `no_quorum`, nothing submitted) → the
//! consensus loop's queue (503 `overloaded`) → the commit, waited for until `claim_timeout`
//! passes or the node sees its quorum gone (503 `no_quorum` with the outcome unknown: a retry
//! with the same `request_id` is safe and returns the recorded result).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use warpnet_state::{Claim, ClaimError, Command, Outcome, Owner, UserId};

use crate::error::{ApiError, Ordered, Outcome as Known};
use crate::handle::{Reach, Refused, Request, Shared};

/// How often the quorum watcher looks at the loop's snapshot.
const QUORUM_POLL: Duration = Duration::from_millis(100);
/// Consecutive looks below quorum before waiting requests are told (a member that reconnects
/// at once is not a lost quorum).
const QUORUM_LOST_POLLS: u32 = 2;

/// What a claim got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The ID is the claimer's from the owner's height.
    Claimed,
    /// The claimer owned it already.
    AlreadyYours,
    /// Another key owns it.
    Taken,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Claimed => "claimed",
            Verdict::AlreadyYours => "already_yours",
            Verdict::Taken => "taken",
        }
    }
}

/// A claim's answer: the verdict, the normalized ID and its owner.
pub struct Answer {
    pub verdict: Verdict,
    pub user_id: UserId,
    pub owner: Owner,
}

/// Linearizable reads waiting for a barrier, and whether one is being ordered.
#[derive(Default)]
struct Barriers {
    waiting: Vec<oneshot::Sender<Result<(), ApiError>>>,
    running: bool,
}

/// Orders claims and read barriers for the API.
pub struct Orderer {
    shared: Arc<Shared>,
    barriers: Mutex<Barriers>,
    /// Whether a quorum of members is reachable, as the watcher last saw it.
    quorum: watch::Receiver<bool>,
}

impl Orderer {
    /// Starts the quorum watcher (it stops once the orderer is dropped).
    pub fn start(shared: Arc<Shared>) -> Arc<Self> {
        let (tx, quorum) = watch::channel(true);
        tokio::spawn(watch_quorum(shared.clone(), tx));
        Arc::new(Self { shared, barriers: Mutex::default(), quorum })
    }

    /// Checks, orders and answers a claim whose formats are valid.
    pub async fn claim(&self, claim: Claim) -> Result<Answer, ApiError> {
        let shared = &self.shared;
        // Bounded like the rest of the request: a flooded verifier answers `overloaded`.
        let check =
            tokio::time::timeout(shared.claim_timeout, shared.verifier.check(claim.clone()));
        match check.await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(refusal(e)),
            Ok(Err(_)) | Err(_) => return Err(ApiError::Overloaded),
        }
        // Committed state may settle it already (a retry, or an ID with an owner): no ordering.
        if let Some(outcome) = shared.settled(&claim)? {
            return answer(&claim, outcome);
        }
        let command = Command::Claim(claim.clone()).encode();
        match self.order(|done| Request::Command { command, done }, Ordered::Claim).await? {
            Some(outcome) => answer(&claim, outcome),
            // It committed since we looked (M2): committed state has the answer now.
            None => match shared.settled(&claim)? {
                Some(outcome) => answer(&claim, outcome),
                None => Err(ApiError::internal("a committed claim has no recorded result")),
            },
        }
    }

    /// Waits for a read barrier ordered after this call began: once it commits here, this node
    /// has applied every claim committed before. Reads arriving while a barrier is being
    /// ordered share the next one: at most one barrier per node is in flight, however many
    /// linearizable reads come in (an unauthenticated client cannot flood the mempools).
    pub async fn read_barrier(self: &Arc<Self>) -> Result<(), ApiError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut b = self.barriers();
            b.waiting.push(tx);
            !std::mem::replace(&mut b.running, true)
        };
        if start {
            tokio::spawn(self.clone().run_barriers());
        }
        rx.await.unwrap_or(Err(ApiError::Stopping { what: Ordered::Read }))
    }

    /// The waiting reads. A panic elsewhere cannot leave them inconsistent (a list and a flag,
    /// each changed in one step), so a poisoned lock is simply taken over.
    fn barriers(&self) -> std::sync::MutexGuard<'_, Barriers> {
        self.barriers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn run_barriers(self: Arc<Self>) {
        loop {
            // Every read in this group began before its barrier is submitted below.
            let group = {
                let mut b = self.barriers();
                if b.waiting.is_empty() {
                    b.running = false;
                    return;
                }
                std::mem::take(&mut b.waiting)
            };
            let result = self.barrier().await;
            for waiter in group {
                let _ = waiter.send(result.clone());
            }
        }
    }

    /// The engine's read barrier: HotStuff orders a barrier command through the log, Raft
    /// asks its leader for a read index (ReadIndex, RF8); either answers once this node has
    /// applied, durably, everything committed before.
    async fn barrier(&self) -> Result<(), ApiError> {
        match self.order(|done| Request::Read { done }, Ordered::Read).await? {
            Some(Outcome::Barrier) => Ok(()),
            Some(other) => {
                Err(ApiError::internal(format!("a read barrier was answered by {other:?}")))
            }
            None => Err(ApiError::internal("a fresh read barrier was already committed")),
        }
    }

    /// Orders a request through consensus and waits (bounded) for its outcome; `None` when it
    /// committed already (its outcome is in committed state).
    async fn order(
        &self,
        request: impl FnOnce(crate::handle::Reply) -> Request,
        what: Ordered,
    ) -> Result<Option<Outcome>, ApiError> {
        let shared = &self.shared;
        let reach = shared.reach();
        if reach.reachable < reach.quorum {
            return Err(not_submitted(what, reach));
        }
        let (done, outcome) = oneshot::channel();
        if shared.requests.try_send(request(done)).is_err() {
            return Err(ApiError::Overloaded);
        }
        let started = Instant::now();
        let mut lost = self.quorum.clone();
        lost.mark_unchanged();
        let quorum_lost = async move {
            // Only a loss seen after the submission counts.
            while lost.changed().await.is_ok() {
                if !*lost.borrow_and_update() {
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        let result = tokio::select! {
            r = outcome => r,
            _ = tokio::time::sleep(shared.claim_timeout) => {
                return Err(self.unknown(what, started));
            }
            _ = quorum_lost => return Err(self.unknown(what, started)),
        };
        match result {
            Ok(Ok(outcome)) => Ok(Some(outcome)),
            Ok(Err(Refused::Overloaded)) => Err(ApiError::Overloaded),
            Ok(Err(Refused::AlreadyCommitted)) => Ok(None),
            Ok(Err(Refused::Invalid(m))) => Err(ApiError::internal(format!(
                "the consensus loop refused a checked command: {m}"
            ))),
            Ok(Err(Refused::Internal(m))) => Err(ApiError::internal(m)),
            Ok(Err(Refused::NoLeader)) => Err(not_submitted(what, shared.reach())),
            Ok(Err(Refused::ReadFailed)) => Err(self.unknown(what, started)),
            Err(_) => Err(ApiError::Stopping { what }),
        }
    }

    /// Submitted, and not committed: within the bound, or before the quorum went away.
    fn unknown(&self, what: Ordered, started: Instant) -> ApiError {
        let Reach { reachable, total, quorum } = self.shared.reach();
        ApiError::NoQuorum {
            what,
            reachable,
            total,
            quorum,
            outcome: Known::Unknown,
            waited_ms: Some(started.elapsed().as_millis() as u64),
        }
    }
}

/// Refused before anything was submitted: too few voters reachable, or (Raft) no leader.
fn not_submitted(what: Ordered, reach: Reach) -> ApiError {
    let Reach { reachable, total, quorum } = reach;
    ApiError::NoQuorum {
        what,
        reachable,
        total,
        quorum,
        outcome: Known::NotSubmitted,
        waited_ms: None,
    }
}

/// Publishes whether a quorum is reachable, so waiting requests learn of a lost quorum without
/// each polling. Stops when no request can listen any more.
async fn watch_quorum(shared: Arc<Shared>, tx: watch::Sender<bool>) {
    let mut below = 0u32;
    let mut tick = tokio::time::interval(QUORUM_POLL);
    while !tx.is_closed() {
        tick.tick().await;
        let Reach { reachable, quorum, .. } = shared.reach();
        below = if reachable < quorum { below + 1 } else { 0 };
        let ok = below < QUORUM_LOST_POLLS;
        tx.send_if_modified(|v| std::mem::replace(v, ok) != ok);
    }
}

/// A client's claim that failed its checks.
fn refusal(e: ClaimError) -> ApiError {
    match e {
        ClaimError::Id(e) => ApiError::InvalidUserId { detail: e.to_string() },
        ClaimError::RequestId => ApiError::InvalidRequestId { detail: e.to_string() },
        ClaimError::BadKey => ApiError::InvalidOwnerKey { detail: e.to_string() },
        ClaimError::BadSignature => ApiError::BadSignature,
        ClaimError::Malformed(m) => {
            ApiError::internal(format!("a claim built by the API does not encode: {m}"))
        }
    }
}

/// The answer to `claim` given its recorded outcome. A recorded result for the same (key,
/// request id) but another ID means the client reused a request id: say so rather than answer
/// for the other ID.
fn answer(claim: &Claim, outcome: Outcome) -> Result<Answer, ApiError> {
    let (verdict, user_id, owner) = match outcome {
        Outcome::Claimed { user_id, owner } => (Verdict::Claimed, user_id, owner),
        Outcome::AlreadyYours { user_id, owner } => (Verdict::AlreadyYours, user_id, owner),
        Outcome::Taken { user_id, owner } => (Verdict::Taken, user_id, owner),
        Outcome::Rejected { reason } => return Err(ApiError::Rejected { reason }),
        Outcome::Barrier => return Err(ApiError::internal("a claim was answered by a barrier")),
    };
    if user_id != claim.user_id {
        return Err(ApiError::RequestIdReused {
            request_id: claim.request_id.clone(),
            recorded_for: user_id.as_str().to_owned(),
            user_id: claim.user_id.as_str().to_owned(),
        });
    }
    Ok(Answer { verdict, user_id, owner })
}

#[cfg(test)]
mod tests {
    use warpnet_types::{Height, PublicKey, Signature};

    use super::*;

    fn claim(id: &str) -> Claim {
        Claim {
            user_id: UserId::parse(id).unwrap(),
            owner_key: PublicKey([7; 32]),
            signature: Signature([0; 64]),
            request_id: "r1".into(),
        }
    }

    fn owner() -> Owner {
        Owner { key: PublicKey([7; 32]), height: Height(3) }
    }

    /// A recorded result for the same key and request id but another ID is the client's reuse
    /// of a request id (422), never an answer about the other ID.
    #[test]
    fn a_result_recorded_for_another_id_is_a_reused_request_id() {
        let other = UserId::parse("bob").unwrap();
        let recorded = Outcome::Claimed { user_id: other, owner: owner() };
        let e = answer(&claim("alice"), recorded).err().unwrap();
        assert_eq!((e.status(), e.code()), (422, "request_id_reused"));
        assert_eq!(e.body()["recorded_for"], "bob");
    }

    /// Outcomes a claim cannot have are the node's failure: 500 `internal`, not the client's.
    #[test]
    fn impossible_outcomes_are_internal_errors() {
        let e = answer(&claim("alice"), Outcome::Barrier).err().unwrap();
        assert_eq!((e.status(), e.code()), (500, "internal"));
        let e = refusal(ClaimError::Malformed("x".into()));
        assert_eq!((e.status(), e.code()), (500, "internal"));
        let a = answer(
            &claim("alice"),
            Outcome::Taken { user_id: UserId::parse("alice").unwrap(), owner: owner() },
        );
        assert_eq!(a.map(|a| a.verdict).ok(), Some(Verdict::Taken));
    }

    /// A claim's failed checks map to the documented 400 codes.
    #[test]
    fn failed_checks_are_the_documented_refusals() {
        assert_eq!(refusal(ClaimError::BadSignature).code(), "bad_signature");
        assert_eq!(refusal(ClaimError::BadKey).code(), "invalid_owner_key");
        assert_eq!(refusal(ClaimError::RequestId).code(), "invalid_request_id");
    }
}
