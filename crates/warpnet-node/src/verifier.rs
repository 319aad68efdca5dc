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
//!
//! **Shared commands are not dropped under a passing load.** A member's shared commands that
//! this node drops exist here only when the member shares them again (M3, after 2 s): every
//! claim in a dropped frame then waits 2 to 3 s if its own member does not lead meanwhile.
//! Frames used to be dropped when 32 of them waited (each often a single claim, so about 32
//! claims: a few milliseconds of a loaded node's arrivals whenever the thread was off the CPU
//! that long) and when the consensus loop's queue was full; that was the cause of the 1.4-3 s
//! maxima of 256-client runs (docs/benchmarks.md, "Stalls of 2-3 s"). Now:
//! - **Budgets in bytes, per member** ([`SHARED_BYTES_PER_MEMBER`], and
//!   [`SHARED_BYTES_MAX`] for all members together): a frame is refused only when its sender
//!   already has that many bytes waiting (a member flooding frames fills its own budget, not
//!   the others'), or when all members' frames together would pass the total (the memory
//!   bound: a frame is at most about 4 MiB).
//! - **Backpressure instead of drops towards the loop**: the thread hands the loop what it
//!   checked with a blocking send, one message per member and turn; while the loop is busy
//!   the thread waits, its own queue fills, and only then are new frames refused at intake.
//!   The loop never waits for this thread (it queues with `try_send`), so this cannot
//!   deadlock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

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
/// Bytes of shared commands one member may have waiting for the thread; beyond this its
/// frames are refused (dropped and counted), whatever the other members have waiting. One
/// frame (at most about 4 MiB) always fits.
pub const SHARED_BYTES_PER_MEMBER: usize = 16 << 20;
/// Bytes of shared commands all members together may have waiting: the memory this queue can
/// hold, however many members flood it (as the earlier bound of 32 frames of 4 MiB).
pub const SHARED_BYTES_MAX: usize = 128 << 20;
/// What a shared command costs the budgets beyond its bytes (its vector, its place in a job).
const SHARED_COMMAND_OVERHEAD: usize = 64;

/// A piece of work for the verifier.
pub enum Job {
    /// A client's claim; the verdict goes back on `reply`.
    Client { claim: Box<Claim>, reply: oneshot::Sender<Result<(), ClaimError>> },
    /// Commands `from` shared (M1); the valid ones are sent on to the consensus loop.
    /// `bytes`: what they hold of the shared-command budgets until the thread takes them.
    Shared { from: PublicKey, commands: Vec<Vec<u8>>, bytes: usize },
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

/// The bytes of shared commands queued and not yet taken by the thread, in all and by member.
#[derive(Default)]
struct SharedBudget {
    total: usize,
    by_member: HashMap<PublicKey, usize>,
}

impl SharedBudget {
    /// Reserves `bytes` for a frame of `from`, if both budgets allow it.
    fn reserve(&mut self, from: PublicKey, bytes: usize) -> bool {
        let mine = self.by_member.get(&from).copied().unwrap_or(0);
        // One frame always fits a member with nothing waiting (a frame is at most ~4 MiB).
        let member_ok = mine == 0 || mine + bytes <= SHARED_BYTES_PER_MEMBER;
        if !member_ok || self.total + bytes > SHARED_BYTES_MAX {
            return false;
        }
        self.total += bytes;
        *self.by_member.entry(from).or_insert(0) += bytes;
        true
    }

    /// Gives back what a frame of `from` reserved.
    fn release(&mut self, from: &PublicKey, bytes: usize) {
        self.total = self.total.saturating_sub(bytes);
        if let Some(mine) = self.by_member.get_mut(from) {
            *mine = mine.saturating_sub(bytes);
            if *mine == 0 {
                self.by_member.remove(from);
            }
        }
    }
}

/// Takes the budgets' lock. Each change under it is a few additions that cannot panic
/// half-way, so a lock poisoned elsewhere is simply taken over.
fn budget(b: &Mutex<SharedBudget>) -> std::sync::MutexGuard<'_, SharedBudget> {
    b.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handle that queues work; the thread stops when every handle is dropped.
#[derive(Clone)]
pub struct Verifier {
    jobs: mpsc::Sender<Job>,
    /// Shared commands queued and not yet taken by the thread.
    shared_queued: Arc<Mutex<SharedBudget>>,
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
        let shared_queued = Arc::new(Mutex::new(SharedBudget::default()));
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

    /// Queues commands a member shared; refused (dropped) when the member already has
    /// [`SHARED_BYTES_PER_MEMBER`] bytes waiting, all members [`SHARED_BYTES_MAX`], or the
    /// queue is full.
    pub fn shared(&self, from: PublicKey, commands: Vec<Vec<u8>>) -> Result<(), Busy> {
        let bytes = commands.iter().map(|c| c.len() + SHARED_COMMAND_OVERHEAD).sum::<usize>();
        if !budget(&self.shared_queued).reserve(from, bytes) {
            return Err(Busy);
        }
        self.jobs.try_send(Job::Shared { from, commands, bytes }).map_err(|_| {
            budget(&self.shared_queued).release(&from, bytes);
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
    shared_queued: &Mutex<SharedBudget>,
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
        {
            let mut b = budget(shared_queued);
            for job in &jobs {
                if let Job::Shared { from, bytes, .. } = job {
                    b.release(from, *bytes);
                }
            }
        }
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
        // For the loop, after every client of this turn has its verdict: the valid shared
        // commands, one message per member (in the order they came), and blocks' verdicts.
        let mut to_loop: Vec<Checked> = Vec::new();
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
                    if good.is_empty() {
                        continue;
                    }
                    let earlier = to_loop.iter_mut().find_map(|c| match c {
                        Checked::Shared(f, cmds) if *f == from => Some(cmds),
                        _ => None,
                    });
                    match earlier {
                        Some(cmds) => cmds.extend(good),
                        None => to_loop.push(Checked::Shared(from, good)),
                    }
                }
                Job::Block { id, commands } => {
                    // What apply would compute (the same function), with the verdicts of claims
                    // this node checked already taken from the cache.
                    let verdicts = block_verdicts_cached(network, &commands, &mut cache);
                    to_loop.push(Checked::Block(id, verdicts));
                }
            }
        }
        let (hits, misses) = cache.stats();
        metrics.claim_verdicts(hits - hits_before, misses - misses_before);
        // Backpressure, not drops: a dropped frame would wait for M3's re-share (2 s). The
        // loop never waits for this thread, so waiting for the loop cannot deadlock.
        for c in to_loop {
            if checked.blocking_send(c).is_err() {
                debug!("the consensus loop is gone; the claim verifier stops");
                return;
            }
        }
    }
}

fn claims_in(job: &Job) -> usize {
    match job {
        Job::Client { .. } => 1,
        Job::Shared { commands, .. } | Job::Block { commands, .. } => commands.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_state::UserId;
    use warpnet_types::crypto::Ed25519Signer;

    fn key(i: u8) -> PublicKey {
        PublicKey([i; 32])
    }

    #[test]
    fn a_member_flooding_shared_frames_fills_its_own_budget_not_the_others() {
        let mut b = SharedBudget::default();
        let frame = 4 << 20;
        let per_member = SHARED_BYTES_PER_MEMBER / frame;
        for _ in 0..per_member {
            assert!(b.reserve(key(1), frame));
        }
        assert!(!b.reserve(key(1), frame), "member 1 is over its budget");
        assert!(b.reserve(key(2), 300), "member 2's claim is still taken");
        b.release(&key(1), frame);
        assert!(b.reserve(key(1), frame), "taken again once the thread took one of its frames");
        // One frame always fits a member with nothing waiting, even one above the budget.
        assert!(b.reserve(key(3), SHARED_BYTES_PER_MEMBER + 1));
        b.release(&key(3), SHARED_BYTES_PER_MEMBER + 1);
        assert!(!b.by_member.contains_key(&key(3)), "a member with nothing waiting is forgotten");
    }

    #[test]
    fn all_members_together_stay_within_the_memory_bound() {
        let mut b = SharedBudget::default();
        let members = SHARED_BYTES_MAX / SHARED_BYTES_PER_MEMBER;
        for i in 0..members {
            assert!(b.reserve(key(i as u8), SHARED_BYTES_PER_MEMBER));
        }
        assert!(!b.reserve(key(200), 1), "the total is reached");
        assert_eq!(b.total, SHARED_BYTES_MAX);
        b.release(&key(0), SHARED_BYTES_PER_MEMBER);
        assert!(b.reserve(key(200), 1));
    }

    /// The consensus loop busy (its queue full and not read for a while): the valid shared
    /// commands all reach it afterwards, none dropped (they would wait for M3's re-share, 2 s).
    #[test]
    fn shared_commands_wait_for_a_busy_loop_instead_of_being_dropped() {
        let network = NetworkId::new("test-verifier").unwrap();
        let (checked_tx, mut checked_rx) = mpsc::channel(1);
        let verifier =
            Verifier::start(network.clone(), Arc::new(Metrics::new()), checked_tx).unwrap();
        let owner = Ed25519Signer::from_secret([9; 32]);
        let frames = 200;
        for i in 0..frames {
            let id = UserId::parse(&format!("user{i}")).unwrap();
            let claim = Claim::sign(&network, id, &owner, &format!("r{i}")).unwrap();
            let from = key((i % 3) as u8);
            verifier.shared(from, vec![Command::Claim(claim).encode()]).unwrap();
        }
        // The loop reads only now; with drops, most frames would be gone (and never come).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut got = 0;
        while got < frames && std::time::Instant::now() < deadline {
            match checked_rx.try_recv() {
                Ok(Checked::Shared(_, commands)) => got += commands.len(),
                Ok(Checked::Block(..)) => {}
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        assert_eq!(got, frames, "every valid shared command reached the loop");
        assert_eq!(budget(&verifier.shared_queued).total, 0, "every reservation given back");
    }
}
