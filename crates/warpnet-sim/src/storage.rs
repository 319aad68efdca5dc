//! A replica's disk: a FIFO of the core's writes, each made durable atomically after a
//! latency, one after the other. A crash loses every write not yet durable, exactly what a
//! real node loses without an fsync.
//!
//! Why this models the node's write-ahead log (warpnet-storage `logged.rs`, W1-W3): the node
//! writes one step as ONE log record and reports it durable only after that record's
//! `fdatasync`; after a crash it keeps the records up to the first torn one (`wal.rs`), then
//! replays them onto redb's last checkpoint. So what a crash leaves is a prefix of the steps,
//! each whole: a torn append is an append lost, which is what this FIFO does. An append whose
//! fsync never returned may also survive whole after a crash (the kernel wrote the page back);
//! the core never acted on it (no `Persisted`), and recovering from a state that includes it
//! is the same as if it had completed just before the crash, which this model also produces.

use std::collections::{HashMap, VecDeque};

use std::sync::Arc;

use warpnet_core::{EpochChange, Recovery, SafetyData, Write, RECENT_COMMITTED_BLOCKS};
use warpnet_types::codec::{CodecError, Decode, Encode};
use warpnet_types::{Block, BlockId, ConsensusConfig, Height, QuorumCertificate};

/// What survived on disk.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// The safety data as a node stores it: its canonical encoding, decoded on restart.
    pub safety: Option<Vec<u8>>,
    pub blocks: HashMap<BlockId, Block>,
    /// The committed chain, by height, with the certificate of each block.
    pub committed: Vec<(Block, QuorumCertificate)>,
    /// Each ended epoch, in order: its end and the committee that followed (EP3).
    pub epochs: Vec<EpochChange>,
}

/// The disk of one replica.
pub struct Disk {
    pub durable: Durable,
    /// Writes in flight, each with the virtual time at which it becomes durable.
    queue: VecDeque<(u64, Write)>,
    /// When the last queued write completes.
    busy_until: u64,
}

impl Disk {
    pub fn new(config: &ConsensusConfig) -> Self {
        let genesis = Block::genesis(config);
        let mut durable = Durable::default();
        durable.blocks.insert(genesis.id(), genesis.clone());
        durable.committed.push((genesis, QuorumCertificate::genesis(config)));
        Self { durable, queue: VecDeque::new(), busy_until: 0 }
    }

    /// Queues a step's write; returns when it will be durable.
    pub fn write(&mut self, now: u64, latency: u64, w: Write) -> u64 {
        let done = self.busy_until.max(now) + latency;
        self.busy_until = done;
        self.queue.push_back((done, w));
        done
    }

    /// Makes durable every write due by `now`; returns the last write's seq that became durable.
    pub fn complete(&mut self, now: u64) -> Option<u64> {
        let mut done = None;
        while self.queue.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, w)) = self.queue.pop_front() else {
                break;
            };
            done = Some(w.seq);
            for b in w.blocks {
                self.durable.blocks.insert(b.id(), b);
            }
            for c in w.commits {
                let tip = self.durable.committed.last().map(|(b, _)| b.height());
                // Commits arrive in height order; a re-commit after restart repeats a height.
                if tip.is_none_or(|h| c.block.height() == h.next()) {
                    self.durable.blocks.insert(c.block.id(), c.block.clone());
                    self.durable.committed.push((c.block, c.certificate));
                }
            }
            // The safety data as a node stores it: its canonical encoding.
            if let Some(s) = w.safety {
                self.durable.safety = Some(s.to_bytes());
            }
            self.durable.epochs.extend(w.epoch);
        }
        done
    }

    /// A crash: everything not yet durable is gone.
    pub fn crash(&mut self) {
        self.queue.clear();
        self.busy_until = 0;
    }

    /// Any block we hold, durable or still queued (a database reads its own writes).
    pub fn lookup(&self, id: &BlockId) -> Option<Block> {
        if let Some(b) = self.durable.blocks.get(id) {
            return Some(b.clone());
        }
        self.queue.iter().rev().find_map(|(_, w)| {
            let committed = w.commits.iter().map(|c| &c.block);
            w.blocks.iter().chain(committed).find(|b| b.id() == *id).cloned()
        })
    }

    /// The committee of the latest epoch on disk (`None`: still the first).
    pub fn config(&self) -> Option<Arc<ConsensusConfig>> {
        self.durable.epochs.last().map(|e| e.next.clone())
    }

    /// The ends of the epochs from `from` on, durable or queued (a database reads its own
    /// writes), oldest first, at most `max`.
    pub fn epoch_ends(
        &self,
        from: warpnet_types::Epoch,
        max: usize,
    ) -> Vec<warpnet_types::epoch::EpochEnd> {
        let queued = self.queue.iter().filter_map(|(_, w)| w.epoch.as_ref());
        self.durable
            .epochs
            .iter()
            .chain(queued)
            .filter(|e| e.end.epoch() >= from)
            .take(max)
            .map(|e| e.end.clone())
            .collect()
    }

    pub fn committed_height(&self) -> Height {
        self.durable.committed.last().map_or(Height(0), |(b, _)| b.height())
    }

    /// What a restarting replica loads; an undecodable safety record is an error, as on a node.
    pub fn recovery(&self, config: &ConsensusConfig) -> Result<Recovery, CodecError> {
        let (committed, committed_certificate) = self
            .durable
            .committed
            .last()
            .cloned()
            .unwrap_or_else(|| (Block::genesis(config), QuorumCertificate::genesis(config)));
        let h = committed.height();
        let config = self.config().unwrap_or_else(|| Arc::new(config.clone()));
        let safety = match &self.durable.safety {
            Some(bytes) => SafetyData::from_bytes(bytes)?,
            None => SafetyData::initial(&config),
        };
        let recent = self.durable.committed.len().saturating_sub(RECENT_COMMITTED_BLOCKS as usize);
        let recent_commands = self.durable.committed[recent..]
            .iter()
            .flat_map(|(b, _)| b.payload().iter().cloned())
            .collect();
        let keep = warpnet_core::health::history_len(config.total_nodes());
        let from = self.durable.committed.len().saturating_sub(keep);
        let history = self.durable.committed[from..]
            .iter()
            .map(|(b, _)| warpnet_core::health::Record::of(b))
            .collect();
        Ok(Recovery {
            safety,
            history,
            blocks: self.durable.blocks.values().filter(|b| b.height() > h).cloned().collect(),
            committed,
            committed_certificate,
            recent_commands,
        })
    }
}
