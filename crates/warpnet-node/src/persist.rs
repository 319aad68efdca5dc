//! The node's durable writes, off the consensus loop: a thread of its own takes the engine's
//! writes in order, merges whatever is queued into one step (group commit: one log record and
//! one `fdatasync` for many steps under load) and reports each merged write twice (W4):
//! [`Written::Synced`] once it is durable (its log record synced: the Raft engine acknowledges
//! it and sends the messages it held back, RF2; HotStuff mode's writer skips this report, see
//! `runtime::hotstuff`), then [`Written::Durable`] once the database holds it too (HotStuff's
//! core unseals the votes and timeouts it kept behind it, `Input::Persisted`; lookups, read
//! barriers, sync serving and compaction read the database: until then the engines serve the
//! write from memory). The loop goes on handling messages meanwhile. A durable checkpoint of
//! the database (W2) runs after those reports, never before (W5). One writer serves either
//! engine's store.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use warpnet_storage::{Batch, RaftBatch, RaftStore, Store, StoreError};

/// A store the writer thread writes to: one batch per transaction, durable once `write` calls
/// `synced` (W4) and readable when it returns; `merge` appends a later batch so that writing
/// the merged one leaves the store exactly as writing the two in a row would.
pub trait DurableStore: Send + Sync + 'static {
    type Batch: Send + 'static;
    fn write(&self, batch: &Self::Batch, synced: &mut dyn FnMut()) -> Result<(), StoreError>;
    fn merge(into: &mut Self::Batch, next: Self::Batch);
    /// W5: the durable checkpoint when one is due; whether it ran.
    fn checkpoint_if_due(&self) -> Result<bool, StoreError>;
}

impl DurableStore for Store {
    type Batch = Batch;

    fn write(&self, batch: &Batch, synced: &mut dyn FnMut()) -> Result<(), StoreError> {
        self.write_reporting(batch, synced)
    }

    fn checkpoint_if_due(&self) -> Result<bool, StoreError> {
        Store::checkpoint_if_due(self)
    }

    /// The store applies blocks, then commits (in height order), then state-machine writes
    /// (later ones win), and keeps the latest safety data.
    fn merge(into: &mut Batch, next: Batch) {
        into.blocks.extend(next.blocks);
        into.commits.extend(next.commits);
        into.app.extend(next.app);
        into.epochs.extend(next.epochs);
        if next.safety.is_some() {
            into.safety = next.safety;
        }
    }
}

impl DurableStore for RaftStore {
    type Batch = RaftBatch;

    fn write(&self, batch: &RaftBatch, synced: &mut dyn FnMut()) -> Result<(), StoreError> {
        self.write_reporting(batch, synced)
    }

    fn checkpoint_if_due(&self) -> Result<bool, StoreError> {
        RaftStore::checkpoint_if_due(self)
    }

    /// The store applies the log writes in order, then the state machine's reset and writes,
    /// then the applied index: a later reset wipes the earlier state-machine writes anyway, and
    /// the latest applied index (with the latest membership given) wins.
    fn merge(into: &mut RaftBatch, next: RaftBatch) {
        into.writes.extend(next.writes);
        if next.app_reset {
            into.app.clear();
            into.app_reset = true;
        }
        into.app.extend(next.app);
        if let Some((index, membership)) = next.applied {
            let earlier = into.applied.take().and_then(|(_, m)| m);
            into.applied = Some((index, membership.or(earlier)));
        }
    }
}

/// A test-only switch: a node started with `WARPNET_TEST_COMMIT_DELAY_MS=N` waits N ms between
/// each write's log sync and its database commit, so tests can check that nothing reads the
/// database for a write before it is readable (W4). Never set it on a real node.
pub const COMMIT_DELAY_ENV: &str = "WARPNET_TEST_COMMIT_DELAY_MS";

/// Writes queued for the thread; the loop waits (back-pressure) when the disk is this far
/// behind.
pub const QUEUE_MAX: usize = 1_024;
/// Most queued writes merged into one transaction.
pub const MERGE_MAX: usize = 256;

/// What the writer thread reports, in this order for each merged write (W4).
#[derive(Debug)]
pub enum Written {
    /// Every write up to `seq` is durable (a crash keeps it), not yet readable from the
    /// database.
    Synced { seq: u64 },
    /// Every write up to `seq` is durable and readable from the database.
    Durable(Durable),
    /// The database took a durable checkpoint (W2) after the last `Durable`, in this long
    /// (`warpnet_db_checkpoint_seconds`); the writes queued meanwhile waited for it (W5).
    Checkpointed(Duration),
}

/// A write made durable and readable: every write up to `seq` is on disk and in the database.
#[derive(Debug)]
pub struct Durable {
    pub seq: u64,
    /// How long the write took until it was durable (the step applied to a transaction, its
    /// log record written and synced: `warpnet_fsync_seconds`).
    pub synced_after: Duration,
    /// How long the database's commit took after that (`warpnet_db_commit_seconds`).
    pub commit: Duration,
    /// How many of the core's writes it held.
    pub merged: usize,
}

/// The thread stopped (after a write error it reported, or a panic).
#[derive(Debug, thiserror::Error)]
#[error("the storage writer thread stopped")]
pub struct Stopped;

/// The handle the loop queues writes on. Dropping it (or [`Persister::stop`]) ends the thread
/// once the queued writes are durable.
pub struct Persister<S: DurableStore> {
    queue: Option<SyncSender<(u64, S::Batch)>>,
    thread: Option<JoinHandle<()>>,
}

impl<S: DurableStore> Persister<S> {
    /// Starts the thread; each durable write (or the error that stops it) goes to `done`.
    /// `synced`: whether to report [`Written::Synced`] too (an engine that acts only once a
    /// write is readable is spared the extra report).
    pub fn start(
        store: Arc<S>,
        done: UnboundedSender<Result<Written, StoreError>>,
        synced: bool,
    ) -> std::io::Result<Self> {
        let (queue, rx) = sync_channel(QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("storage-writer".into())
            .spawn(move || run(store.as_ref(), &rx, &done, synced))?;
        Ok(Self { queue: Some(queue), thread: Some(thread) })
    }

    /// Queues the engine's write number `seq`. Blocks (outside the async scheduler) only when
    /// [`QUEUE_MAX`] writes are already waiting.
    pub fn write(&self, seq: u64, batch: S::Batch) -> Result<(), Stopped> {
        let queue = self.queue.as_ref().ok_or(Stopped)?;
        match queue.try_send((seq, batch)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => {
                let sent = tokio::task::block_in_place(|| queue.send(item).is_ok());
                sent.then_some(()).ok_or(Stopped)
            }
            Err(TrySendError::Disconnected(_)) => Err(Stopped),
        }
    }

    /// Lets the thread finish the queued writes, and waits for it.
    pub fn stop(&mut self) {
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run<S: DurableStore>(
    store: &S,
    rx: &Receiver<(u64, S::Batch)>,
    done: &UnboundedSender<Result<Written, StoreError>>,
    report_synced: bool,
) {
    // Test-only (COMMIT_DELAY_ENV): the window between durable and readable, widened.
    let commit_delay = std::env::var(COMMIT_DELAY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    while let Ok((mut seq, mut merged)) = rx.recv() {
        let mut count = 1;
        while count < MERGE_MAX {
            let Ok((s, next)) = rx.try_recv() else { break };
            S::merge(&mut merged, next);
            seq = s;
            count += 1;
        }
        let started = Instant::now();
        let mut synced_at = None;
        let mut report = || {
            synced_at = Some(Instant::now());
            if report_synced {
                let _ = done.send(Ok(Written::Synced { seq }));
            }
            if let Some(delay) = commit_delay {
                std::thread::sleep(delay);
            }
        };
        // A failed write (a full disk, a failed fsync) is final: the loop stops the node.
        // Retrying an fsync and carrying on could acknowledge what the disk dropped.
        let result = store.write(&merged, &mut report).map(|()| {
            let synced_at = synced_at.unwrap_or(started);
            Written::Durable(Durable {
                seq,
                synced_after: synced_at.duration_since(started),
                commit: synced_at.elapsed(),
                merged: count,
            })
        });
        let failed = result.is_err();
        if done.send(result).is_err() || failed {
            return;
        }
        // W5: the checkpoint this write may have made due runs only now, after the write's
        // reports: it delays the writes queued behind it (merged into the next one), not
        // the votes and answers that waited for this one.
        let started = Instant::now();
        let result = store.checkpoint_if_due().map(|ran| ran.then(|| started.elapsed()));
        let sent = match result {
            Ok(None) => true,
            Ok(Some(took)) => done.send(Ok(Written::Checkpointed(took))).is_ok(),
            Err(e) => {
                let _ = done.send(Err(e));
                false
            }
        };
        if !sent {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{channel, Sender};
    use std::sync::Mutex;

    use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

    use super::*;

    /// A store whose every write makes a checkpoint due, and whose checkpoints wait for the
    /// test (`Ok(())`: take it; `Err(())`: fail as a failed fsync would).
    struct Gated {
        due: AtomicBool,
        gate: Mutex<std::sync::mpsc::Receiver<Result<(), ()>>>,
    }

    impl DurableStore for Gated {
        type Batch = Vec<u64>;

        fn write(&self, _: &Vec<u64>, synced: &mut dyn FnMut()) -> Result<(), StoreError> {
            synced();
            self.due.store(true, Ordering::SeqCst);
            Ok(())
        }

        fn merge(into: &mut Vec<u64>, next: Vec<u64>) {
            into.extend(next);
        }

        fn checkpoint_if_due(&self) -> Result<bool, StoreError> {
            if !self.due.swap(false, Ordering::SeqCst) {
                return Ok(false);
            }
            match self.gate.lock().unwrap().recv() {
                Ok(Ok(())) => Ok(true),
                _ => Err(StoreError::Poisoned { first: "the checkpoint's fsync failed".into() }),
            }
        }
    }

    /// The writer's reports, as the loop receives them.
    type Reports = UnboundedReceiver<Result<Written, StoreError>>;

    /// A writer on a [`Gated`] store, its write 1 reported durable (W5: while the checkpoint
    /// write 1 made due waits at the gate).
    fn first_write_reported() -> (Persister<Gated>, Reports, Sender<Result<(), ()>>) {
        let (gate_tx, gate_rx) = channel();
        let store = Arc::new(Gated { due: AtomicBool::new(false), gate: Mutex::new(gate_rx) });
        let (done, mut reports) = unbounded_channel();
        let persister = Persister::start(store, done, false).unwrap();
        persister.write(1, vec![1]).unwrap();
        let first = next(&mut reports).expect("write 1 reported while its checkpoint waits");
        assert!(matches!(first, Ok(Written::Durable(Durable { seq: 1, .. }))), "{first:?}");
        (persister, reports, gate_tx)
    }

    /// The next report, waiting at most 5 s.
    fn next(reports: &mut Reports) -> Option<Result<Written, StoreError>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(r) = reports.try_recv() {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// W5: a write is reported durable while the checkpoint it made due has not run; the
    /// writes queued behind the checkpoint wait for it and are merged into one.
    #[test]
    fn w5_a_write_is_reported_before_the_checkpoint_it_made_due() {
        let (mut persister, mut reports, gate) = first_write_reported();
        // The checkpoint holds the thread: writes 2 and 3 queue behind it.
        persister.write(2, vec![2]).unwrap();
        persister.write(3, vec![3]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(reports.try_recv().is_err(), "nothing is written while the checkpoint runs");
        gate.send(Ok(())).unwrap();
        let checkpointed = next(&mut reports).expect("the checkpoint is reported");
        assert!(matches!(checkpointed, Ok(Written::Checkpointed(_))), "{checkpointed:?}");
        let merged = next(&mut reports).expect("the queued writes, as one");
        assert!(
            matches!(merged, Ok(Written::Durable(Durable { seq: 3, merged: 2, .. }))),
            "{merged:?}"
        );
        gate.send(Ok(())).unwrap();
        persister.stop();
    }

    /// A failed checkpoint stops the writer after the write's report, with the error: the
    /// write was durable (its record synced), the store is not any more.
    #[test]
    fn a_failed_checkpoint_is_reported_after_the_write_and_stops_the_writer() {
        let (mut persister, mut reports, gate) = first_write_reported();
        gate.send(Err(())).unwrap();
        let failed = next(&mut reports).expect("the failure is reported");
        assert!(matches!(failed, Err(StoreError::Poisoned { .. })), "{failed:?}");
        // The thread has ended: its queue refuses the next write.
        let deadline = Instant::now() + Duration::from_secs(5);
        while persister.write(2, vec![2]).is_ok() {
            assert!(Instant::now() < deadline, "the writer went on after a failed checkpoint");
            std::thread::sleep(Duration::from_millis(5));
        }
        persister.stop();
    }
}
