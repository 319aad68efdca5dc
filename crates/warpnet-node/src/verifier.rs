//! Claim signatures, checked in batches on a thread of their own, so neither the consensus loop
//! nor the API's tasks spend their time on them, and checked once per node.
//!
//! Three kinds of work arrive on one bounded queue: a client's claim (the verdict goes back to
//! the waiting request), the commands a member shared (the valid ones go on to the consensus
//! loop, the others are dropped and counted), and a new block's commands, whose R1 verdicts
//! (`warpnet_state::block_verdicts`, a pure function of the block) go to the loop ahead of the
//! block's commit, so applying it does not verify signatures on the loop. The thread takes
//! whatever is queued, up to [`BATCH_CLAIMS_MAX`] claims, and checks them together
//! (ZIP-215 batches): the more load, the larger the batches.
//!
//! The thread keeps every verdict it computes in a bounded [`VerdictCache`]: a claim checked
//! at admission or when a member shared it is not checked again when its block arrives. Each
//! verdict is a pure function of the claim (ZIP-215 batch verdicts equal single verdicts), so
//! the cache changes how often a signature is checked, never what any node decides.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use warpnet_state::{
    block_verdicts_cached, verify_claims_cached, Claim, ClaimError, Command, VerdictCache,
};
use warpnet_types::{BlockId, NetworkId, PublicKey};

use crate::metrics::Metrics;

/// Most claims checked in one batch.
pub const BATCH_CLAIMS_MAX: usize = 512;
/// Jobs waiting for the thread; beyond this, submissions are refused (`overloaded`).
pub const QUEUE_MAX: usize = 16_384;
/// Shared-command frames waiting for the thread (each up to about 4 MiB); beyond this, frames
/// are dropped, so a member flooding `Commands` frames holds at most ~128 MiB here and cannot
/// crowd out clients' claims.
pub const SHARED_FRAMES_MAX: usize = 32;

/// A piece of work for the verifier.
pub enum Job {
    /// A client's claim; the verdict goes back on `reply`.
    Client { claim: Box<Claim>, reply: oneshot::Sender<Result<(), ClaimError>> },
    /// Commands `from` shared (M1); the valid ones are sent on to the consensus loop.
    Shared { from: PublicKey, commands: Vec<Vec<u8>> },
    /// A block's commands; their R1 verdicts go to the consensus loop.
    Block { id: BlockId, commands: Vec<Vec<u8>> },
}

/// What the verifier sends the consensus loop.
pub enum Checked {
    /// Shared commands that passed their checks.
    Shared(PublicKey, Vec<Vec<u8>>),
    /// A block's verdicts, as `warpnet_state::block_verdicts` computes them.
    Block(BlockId, Vec<Result<(), ClaimError>>),
}

/// The handle that queues work; the thread stops when every handle is dropped.
#[derive(Clone)]
pub struct Verifier {
    jobs: mpsc::Sender<Job>,
    /// Shared-command frames queued and not yet taken by the thread.
    shared_queued: Arc<AtomicUsize>,
}

/// The queue is full: the caller answers `overloaded`.
#[derive(Debug)]
pub struct Busy;

impl Verifier {
    /// Starts the thread. Checked shared commands go to `checked`.
    pub fn start(
        network: NetworkId,
        metrics: Arc<Metrics>,
        checked: mpsc::Sender<Checked>,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel(QUEUE_MAX);
        let shared_queued = Arc::new(AtomicUsize::new(0));
        let queued = shared_queued.clone();
        std::thread::Builder::new()
            .name("claim-verifier".into())
            .spawn(move || run(&network, rx, &checked, &metrics, &queued))?;
        Ok(Self { jobs, shared_queued })
    }

    /// Checks a client's claim; `None` when the queue is full or the thread is gone.
    pub async fn check(&self, claim: Claim) -> Result<Result<(), ClaimError>, Busy> {
        let (reply, verdict) = oneshot::channel();
        self.jobs.try_send(Job::Client { claim: Box::new(claim), reply }).map_err(|_| Busy)?;
        verdict.await.map_err(|_| Busy)
    }

    /// Queues a block's commands for their verdicts; refused (the loop then computes them at
    /// commit) when the queue is full.
    pub fn block(&self, id: BlockId, commands: Vec<Vec<u8>>) -> Result<(), Busy> {
        self.jobs.try_send(Job::Block { id, commands }).map_err(|_| Busy)
    }

    /// Queues commands a member shared; refused (dropped) when [`SHARED_FRAMES_MAX`] frames
    /// already wait, or the queue is full.
    pub fn shared(&self, from: PublicKey, commands: Vec<Vec<u8>>) -> Result<(), Busy> {
        if self.shared_queued.fetch_add(1, Ordering::AcqRel) >= SHARED_FRAMES_MAX {
            self.shared_queued.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        self.jobs.try_send(Job::Shared { from, commands }).map_err(|_| {
            self.shared_queued.fetch_sub(1, Ordering::AcqRel);
            Busy
        })
    }
}

/// A decoded shared command: a claim to check, or one checked elsewhere (a barrier needs no
/// signature; a committee change is checked by the core).
enum Item {
    Claim(Box<Claim>),
    Barrier,
    Bad(ClaimError),
}

fn run(
    network: &NetworkId,
    mut rx: mpsc::Receiver<Job>,
    checked: &mpsc::Sender<Checked>,
    metrics: &Metrics,
    shared_queued: &AtomicUsize,
) {
    let mut cache = VerdictCache::default();
    while let Some(first) = rx.blocking_recv() {
        let (hits_before, misses_before) = cache.stats();
        let mut jobs = vec![first];
        let mut claims = claims_in(&jobs[0]);
        while claims < BATCH_CLAIMS_MAX {
            match rx.try_recv() {
                Ok(job) => {
                    claims += claims_in(&job);
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let shared_taken = jobs.iter().filter(|j| matches!(j, Job::Shared { .. })).count();
        shared_queued.fetch_sub(shared_taken, Ordering::AcqRel);
        // Decode the shared commands; gather every claim of the batch.
        let decoded: Vec<Vec<(Vec<u8>, Item)>> = jobs
            .iter_mut()
            .map(|job| match job {
                Job::Client { .. } | Job::Block { .. } => Vec::new(),
                Job::Shared { commands, .. } => std::mem::take(commands)
                    .into_iter()
                    .map(|bytes| {
                        // A committee change carries its own signatures (proof of possession,
                        // endorsements or evidence), which the core checks against the epoch's
                        // committee before the mempool takes it (EP1): only its encoding here.
                        let change = warpnet_types::membership::Change::from_command(&bytes);
                        let item = match (change, Command::decode(&bytes)) {
                            (Some(Ok(_)), _) => Item::Barrier,
                            (Some(Err(e)), _) => {
                                Item::Bad(ClaimError::Malformed(format!("committee change: {e}")))
                            }
                            (None, Ok(Command::Claim(c))) => Item::Claim(Box::new(c)),
                            (None, Ok(Command::Barrier { .. } | Command::Committee(_))) => {
                                Item::Barrier
                            }
                            (None, Err(e)) => Item::Bad(e),
                        };
                        (bytes, item)
                    })
                    .collect(),
            })
            .collect();
        let mut refs: Vec<&Claim> = Vec::with_capacity(claims);
        for (job, items) in jobs.iter().zip(&decoded) {
            match job {
                Job::Client { claim, .. } => refs.push(claim),
                Job::Shared { .. } => refs.extend(items.iter().filter_map(|(_, i)| match i {
                    Item::Claim(c) => Some(c.as_ref()),
                    _ => None,
                })),
                Job::Block { .. } => {}
            }
        }
        let mut verdicts = verify_claims_cached(network, &refs, &mut cache).into_iter();
        drop(refs);
        for (job, items) in jobs.into_iter().zip(decoded) {
            match job {
                Job::Client { reply, .. } => {
                    let verdict = verdicts.next().unwrap_or(Err(ClaimError::BadSignature));
                    // The request may have gone (client hung up); nothing to do then.
                    let _ = reply.send(verdict);
                }
                Job::Shared { from, .. } => {
                    let mut good = Vec::with_capacity(items.len());
                    for (bytes, item) in items {
                        let verdict = match item {
                            Item::Claim(_) => {
                                verdicts.next().unwrap_or(Err(ClaimError::BadSignature))
                            }
                            Item::Barrier => Ok(()),
                            Item::Bad(e) => Err(e),
                        };
                        match verdict {
                            Ok(()) => good.push(bytes),
                            Err(e) => {
                                metrics.rejected("bad_shared_command");
                                warn!(from = %from, error = %e, "member shared an invalid command; dropped");
                            }
                        }
                    }
                    if !good.is_empty() && checked.try_send(Checked::Shared(from, good)).is_err() {
                        metrics.rejected("shared_commands_dropped");
                        debug!(from = %from, "consensus loop busy; shared commands dropped");
                    }
                }
                Job::Block { id, commands } => {
                    // What apply would compute (the same function), with the verdicts of claims
                    // this node checked already taken from the cache.
                    let verdicts = block_verdicts_cached(network, &commands, &mut cache);
                    if checked.try_send(Checked::Block(id, verdicts)).is_err() {
                        debug!("consensus loop busy; block verdicts left to the commit");
                    }
                }
            }
        }
        let (hits, misses) = cache.stats();
        metrics.claim_verdicts(hits - hits_before, misses - misses_before);
    }
}

fn claims_in(job: &Job) -> usize {
    match job {
        Job::Client { .. } => 1,
        Job::Shared { commands, .. } | Job::Block { commands, .. } => commands.len(),
    }
}
