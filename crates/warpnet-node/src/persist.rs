//! The node's durable writes, off the consensus loop: a thread of its own takes the core's
//! writes in order, merges whatever is queued into one redb transaction (group commit: one
//! fsync for many steps under load) and reports the last write it made durable. The loop goes
//! on handling messages meanwhile; only what depends on a write waits for it (the core keeps
//! votes and timeouts sealed until `Input::Persisted`, the runtime keeps clients' answers).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use warpnet_storage::{Batch, Store, StoreError};

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
pub struct Persister {
    queue: Option<SyncSender<(u64, Batch)>>,
    thread: Option<JoinHandle<()>>,
}

impl Persister {
    /// Starts the thread; each durable write (or the error that stops it) goes to `done`.
    pub fn start(
        store: Arc<Store>,
        done: UnboundedSender<Result<Durable, StoreError>>,
    ) -> std::io::Result<Self> {
        let (queue, rx) = sync_channel(QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("storage-writer".into())
            .spawn(move || run(&store, &rx, &done))?;
        Ok(Self { queue: Some(queue), thread: Some(thread) })
    }

    /// Queues the core's write number `seq`. Blocks (outside the async scheduler) only when
    /// [`QUEUE_MAX`] writes are already waiting.
    pub fn write(&self, seq: u64, batch: Batch) -> Result<(), Stopped> {
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

fn run(
    store: &Store,
    rx: &Receiver<(u64, Batch)>,
    done: &UnboundedSender<Result<Durable, StoreError>>,
) {
    while let Ok((mut seq, mut merged)) = rx.recv() {
        let mut count = 1;
        while count < MERGE_MAX {
            let Ok((s, next)) = rx.try_recv() else { break };
            merge(&mut merged, next);
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

/// Appends a later write to an earlier one: the store applies blocks, then commits (in height
/// order), then state-machine writes (later ones win), and keeps the latest safety data, so
/// the merged transaction leaves the store exactly as the two in a row would.
fn merge(into: &mut Batch, next: Batch) {
    into.blocks.extend(next.blocks);
    into.commits.extend(next.commits);
    into.app.extend(next.app);
    if next.safety.is_some() {
        into.safety = next.safety;
    }
}
