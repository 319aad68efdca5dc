//! A Raft replica's disk: the store's state (log, hard state, snapshot, applied index with the
//! membership, the state machine) and a FIFO of writes that become durable one by one after a
//! latency. A crash loses every write not yet durable, exactly what a node loses without an
//! fsync; what survives is always a prefix of what was written (the engine's contract).
//!
//! Why this covers the real store's write-ahead log (RF16–RF18 in `warpnet-storage`): there a
//! step is one log record (or, with a snapshot, one durable redb commit), a crash keeps a
//! prefix of the records (a torn last append is cut off on open: that step is lost, exactly
//! a write this FIFO had not yet made durable), and opening replays the records after redb's
//! checkpoint onto it, giving back the state after the last durable step. So the storage
//! the simulated engines see after a crash is the same prefix of their writes as here; the
//! cut and the replay themselves are tested on real files in `tests/raft_wal.rs`.

use std::collections::{BTreeMap, VecDeque};

use warpnet_raft::{Applied, HardState, LogWrite, Membership, Recovery, Snapshot, WriteId};

use super::app::App;

/// One durable effect.
#[derive(Clone, Debug)]
pub enum Effect {
    Log(LogWrite),
    /// The state machine after an `Apply` (whole, since the simulated state is small).
    App {
        app: App,
        membership: Option<Membership>,
    },
}

/// What survived.
#[derive(Clone, Debug)]
pub struct Durable {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    pub log: BTreeMap<u64, warpnet_raft::LogEntry>,
    pub membership: Membership,
    pub app: App,
}

pub struct RaftDisk {
    pub durable: Durable,
    queue: VecDeque<(u64, Effect)>,
    busy_until: u64,
}

impl RaftDisk {
    pub fn new(initial: &Recovery, app: App) -> Self {
        let mut durable = Durable {
            hard_state: HardState::default(),
            snapshot: None,
            log: BTreeMap::new(),
            membership: initial.membership.clone(),
            app,
        };
        durable.write(&LogWrite {
            snapshot: initial.snapshot.clone(),
            discard_log: true,
            entries: initial.entries.clone(),
            hard_state: Some(initial.hard_state),
            ..LogWrite::default()
        });
        Self { durable, queue: VecDeque::new(), busy_until: 0 }
    }

    /// Queues an effect; returns when it will be durable.
    pub fn push(&mut self, now: u64, latency: u64, e: Effect) -> u64 {
        let done = self.busy_until.max(now) + latency;
        self.busy_until = done;
        self.queue.push_back((done, e));
        done
    }

    /// Makes durable every effect due by `now`; returns the last log write that became durable.
    pub fn complete(&mut self, now: u64) -> Option<WriteId> {
        let mut last = None;
        while self.queue.front().is_some_and(|(t, _)| *t <= now) {
            let Some((_, e)) = self.queue.pop_front() else { break };
            match e {
                Effect::Log(w) => {
                    last = Some(w.id);
                    self.durable.write(&w);
                }
                Effect::App { app, membership } => {
                    self.durable.app = app;
                    if let Some(m) = membership {
                        self.durable.membership = m;
                    }
                }
            }
        }
        last
    }

    pub fn crash(&mut self) {
        self.queue.clear();
        self.busy_until = 0;
    }

    pub fn recovery(&self) -> Recovery {
        let d = &self.durable;
        Recovery {
            hard_state: d.hard_state,
            membership: d.membership.clone(),
            applied: d.app.applied,
            snapshot: d.snapshot.clone(),
            entries: d.log.values().cloned().collect(),
        }
    }
}

impl Durable {
    /// The same order as `RaftStore`: snapshot (and log truncation), entries, hard state.
    fn write(&mut self, w: &LogWrite) {
        if let Some(s) = &w.snapshot {
            if w.discard_log {
                self.log.clear();
            } else {
                self.log.retain(|&i, _| i > s.meta.index);
            }
            self.snapshot = Some(s.clone());
        }
        if let Some(first) = w.entries.first() {
            self.log.retain(|&i, _| i < first.index);
            for e in &w.entries {
                self.log.insert(e.index, e.clone());
            }
        }
        if let Some(hs) = w.hard_state {
            self.hard_state = hs;
        }
    }
}

/// The kind byte the simulated state machine folds into its chain for an applied entry.
pub fn app_kind(a: &Applied) -> (u8, &[u8]) {
    match a {
        Applied::Command { data, .. } => (0, data),
        Applied::Noop { .. } => (1, &[]),
        Applied::Membership { .. } => (2, &[]),
        Applied::Snapshot { .. } => (3, &[]),
    }
}
