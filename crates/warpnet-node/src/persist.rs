//! The node's durable writes, off the consensus loop: a thread of its own takes the engine's
//! writes in order, merges whatever is queued into one redb transaction (group commit: one
//! fsync for many steps under load) and reports the last write it made durable. The loop goes
//! on handling messages meanwhile; only what depends on a write waits for it (HotStuff's core
//! keeps votes and timeouts sealed until `Input::Persisted`, the Raft engine holds messages
//! back (RF2), the runtime keeps clients' answers). One writer serves either engine's store.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use warpnet_storage::{Batch, RaftBatch, RaftStore, Store, StoreError};

/// A store the writer thread writes to: one batch per transaction, durable when `write`
/// returns; `merge` appends a later batch so that writing the merged one leaves the store
/// exactly as writing the two in a row would.
pub trait DurableStore: Send + Sync + 'static {
    type Batch: Send + 'static;
    fn write(&self, batch: &Self::Batch) -> Result<(), StoreError>;
    fn merge(into: &mut Self::Batch, next: Self::Batch);
}

impl DurableStore for Store {
    type Batch = Batch;

    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        Store::write(self, batch)
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

    fn write(&self, batch: &RaftBatch) -> Result<(), StoreError> {
        RaftStore::write(self, batch)
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

/// Writes queued for the thread; the loop waits (back-pressure) when the disk is this far
/// behind.
pub const QUEUE_MAX: usize = 1_024;
/// Most queued writes merged into one transaction.
pub const MERGE_MAX: usize = 256;

/// A write made durable: every write up to `seq` is on disk.
#[derive(Debug)]
pub struct Durable {
    pub seq: u64,
    /// How long the transaction (with its fsync) took.
    pub elapsed: Duration,
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
    pub fn start(
        store: Arc<S>,
        done: UnboundedSender<Result<Durable, StoreError>>,
    ) -> std::io::Result<Self> {
        let (queue, rx) = sync_channel(QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("storage-writer".into())
            .spawn(move || run(store.as_ref(), &rx, &done))?;
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
    done: &UnboundedSender<Result<Durable, StoreError>>,
) {
    while let Ok((mut seq, mut merged)) = rx.recv() {
        let mut count = 1;
        while count < MERGE_MAX {
            let Ok((s, next)) = rx.try_recv() else { break };
            S::merge(&mut merged, next);
            seq = s;
            count += 1;
        }
        let started = Instant::now();
        // A failed write (a full disk, a failed fsync) is final: the loop stops the node.
        // Retrying an fsync and carrying on could acknowledge what the disk dropped.
        let result = store.write(&merged).map(|()| Durable {
            seq,
            elapsed: started.elapsed(),
            merged: count,
        });
        let failed = result.is_err();
        if done.send(result).is_err() || failed {
            return;
        }
    }
}
