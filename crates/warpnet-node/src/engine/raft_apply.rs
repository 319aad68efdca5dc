//! Raft mode's state machine side: the engine's actions executed (RF2's held messages sent,
//! writes queued, entries applied to the registry in index order, read indexes served),
//! durable writes acknowledged, and the registry's snapshots for compaction (RF7) and for
//! members that install one.
//!
//! An entry carries a batch of client commands (`u8 1 ‖ u32 count ‖ (u32 len ‖ command)*`); it
//! is applied as one HotStuff block would be, at height = its log index, so an owner's
//! `height` in Raft mode is the index of the entry that gave it the ID. A registry snapshot is
//! `u8 1 ‖ (u32 len ‖ key ‖ u32 len ‖ value)*` in key order, read from one redb read
//! transaction at the applied index stored with it.

use tracing::{debug, info, warn};
use warpnet_raft::{
    Action, Applied, EntryKind, Index, Input, LogWrite, Membership, RaftError, WriteId,
};
use warpnet_storage::{RaftBatch, RaftStore, StoreError};
use warpnet_types::codec::{CodecError, Reader, Writer};
use warpnet_types::message::SHARED_COMMAND_BYTES_MAX;
use warpnet_types::{Digest, Height};

use super::raft::{InFlight, Raft, RaftEvent};
use super::raft_roster::{VoterRequest, VOTER_REQUEST_VERSION};
use super::Io;
use crate::app;
use crate::handle::{MemberDone, Refused};
use crate::persist::{Durable, DurableStore};
use crate::runtime::NodeError;

/// Most bytes of commands one entry carries (a bigger batch of requests becomes several).
pub const ENTRY_BYTES_MAX: usize = 256 << 10;
const ENTRY_VERSION: u8 = 1;
const SNAPSHOT_VERSION: u8 = 1;
/// Largest registry key or value a snapshot may hold.
const SNAPSHOT_FIELD_BYTES_MAX: usize = 64 << 10;

/// `commands` as entries of at most [`ENTRY_BYTES_MAX`] bytes, each with how many commands it
/// holds (in order).
pub fn entries_of(commands: &[Vec<u8>]) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < commands.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < commands.len()
            && (end == start || bytes + commands[end].len() <= ENTRY_BYTES_MAX)
        {
            bytes += commands[end].len();
            end += 1;
        }
        out.push((end - start, encode_entry(&commands[start..end])));
        start = end;
    }
    out
}

fn encode_entry(commands: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::with_capacity(5 + commands.iter().map(|c| c.len() + 4).sum::<usize>());
    w.u8(ENTRY_VERSION).len(commands.len());
    for c in commands {
        w.bytes(c);
    }
    w.finish()
}

/// The commands of an entry. Every member decodes the same bytes the same way; an entry that
/// does not decode (no honest member makes one) is applied as no commands, everywhere alike.
pub fn decode_entry(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CodecError> {
    let mut r = Reader::new(bytes);
    let v = r.u8("entry version")?;
    if v != ENTRY_VERSION {
        return Err(CodecError::UnsupportedVersion { got: v, supported: ENTRY_VERSION });
    }
    let commands = r.list("entry commands", ENTRY_BYTES_MAX, |r| {
        r.bytes("command", SHARED_COMMAND_BYTES_MAX).map(<[u8]>::to_vec)
    })?;
    r.finish()?;
    Ok(commands)
}

/// The registry as of the store's durable applied index, encoded for a snapshot (RF7).
pub fn read_registry(store: &RaftStore) -> Result<(Index, Vec<u8>), StoreError> {
    let mut w = Writer::with_capacity(1 << 16);
    w.u8(SNAPSHOT_VERSION);
    let index = store.app_visit(|k, v| {
        w.bytes(k).bytes(v);
    })?;
    Ok((index, w.finish()))
}

/// Registry keys and their values, in a snapshot's order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A registry snapshot's key/values (the genesis snapshot's empty data is the empty registry).
pub fn decode_registry(bytes: &[u8]) -> Result<Pairs, CodecError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(bytes);
    let v = r.u8("snapshot version")?;
    if v != SNAPSHOT_VERSION {
        return Err(CodecError::UnsupportedVersion { got: v, supported: SNAPSHOT_VERSION });
    }
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let k = r.bytes("snapshot key", SNAPSHOT_FIELD_BYTES_MAX)?.to_vec();
        let v = r.bytes("snapshot value", SNAPSHOT_FIELD_BYTES_MAX)?.to_vec();
        out.push((k, v));
    }
    Ok(out)
}

/// How long a registry write may wait to share the next log write's transaction (RF14).
pub const APPLY_FLUSH_MS: u64 = 10;

/// Most entries whose R1 verdicts wait for their apply (a truncated entry never applies; past
/// this the verdicts are forgotten and computed at apply if ever needed).
const VERDICTS_MAX: usize = 1_024;
const TAG_ENTRY: &[u8] = b"warpnet/v1/raft-entry";

/// The key of an entry's R1 verdicts: a hash of its bytes (verdicts are a pure function of
/// the commands, so equal bytes have equal verdicts).
fn entry_key(data: &[u8]) -> Digest {
    Digest::hash(TAG_ENTRY, data)
}

/// Records the applied index in a batch, keeping a membership an earlier apply of the same
/// step set.
fn set_applied(batch: &mut RaftBatch, index: Index, membership: Option<Membership>) {
    let earlier = batch.applied.take().and_then(|(_, m)| m);
    batch.applied = Some((index, membership.or(earlier)));
}

impl Raft {
    /// Feeds one input; a refusal is returned (nothing changed), the actions are executed.
    pub(super) fn input(
        &mut self,
        io: &mut Io,
        input: Input,
    ) -> Result<Result<(), RaftError>, NodeError> {
        match self.engine.handle(input) {
            Ok(actions) => {
                self.execute(io, actions)?;
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(e)),
        }
    }

    /// Executes the actions in order (the engine's contract): messages sent at once (RF2
    /// already held back what depends on a write), every `Persist` and every `Apply`'s
    /// registry writes into this step's one durable write, read indexes noted.
    fn execute(&mut self, io: &mut Io, actions: Vec<Action>) -> Result<(), NodeError> {
        let seq = self.seq + 1;
        let mut batch = RaftBatch::default();
        let mut step = InFlight { seq, ..InFlight::default() };
        let mut unreachable = Vec::new();
        for a in actions {
            match a {
                Action::Send(m) => {
                    if let Some(peer) = self.send(io, &m) {
                        unreachable.push(peer);
                    }
                }
                Action::Persist(w) => {
                    self.verify_ahead(io, seq, &w);
                    step.write = Some(w.id);
                    batch.writes.push(w);
                }
                Action::Apply(applied) => self.apply(io, seq, applied, &mut batch, &mut step)?,
                Action::ReadReady { id, index } => {
                    if let Some(reply) = self.reads.remove(&id) {
                        self.ready_reads.push((index, reply));
                    }
                }
                Action::ReadFailed { id } => {
                    if let Some(reply) = self.reads.remove(&id) {
                        let _ = reply.send(Err(Refused::ReadFailed));
                    }
                }
                Action::SnapshotWanted { .. } => self.snapshot_wanted = true,
            }
        }
        if !batch.is_empty() {
            self.seq = seq;
            let apply_only = batch.writes.iter().all(|w| w.commit_only)
                && !batch.app_reset
                && step.membership.is_none();
            self.in_flight.push_back(step);
            self.queue_write(io, seq, batch, apply_only)?;
        }
        for peer in unreachable {
            // raft-rs probes the peer instead of streaming to it until it answers again.
            let _ = self.input(io, Input::Unreachable(peer))?;
        }
        self.serve_reads();
        if !self.ready_reads.is_empty() {
            // A linearizable read waits for the applied index to be durable.
            self.flush_deferred()?;
        }
        self.maybe_compact();
        Ok(())
    }

    /// RF14: a step that writes nothing but the registry, the applied index and a higher
    /// commit index (RF2b: no message waits for that; no entries, vote, membership or
    /// snapshot) waits up to [`APPLY_FLUSH_MS`] to share the next step's
    /// transaction: one fsync then carries a claim's registry write and the next claim's log
    /// write, instead of the second waiting behind the first. The next write is merged behind
    /// it (`DurableStore::merge`: one transaction, so a crash keeps both or neither, and the
    /// order of durable effects is the engine's); nothing later is ever queued ahead of it.
    /// Nothing waits on it but lookups (RF13 answered the claims), and a linearizable read,
    /// a membership change or a shutdown sends it at once.
    fn queue_write(
        &mut self,
        io: &Io,
        seq: u64,
        batch: RaftBatch,
        apply_only: bool,
    ) -> Result<(), NodeError> {
        let (since, batch) = match self.deferred.take() {
            Some((since, _, mut earlier)) => {
                <RaftStore as DurableStore>::merge(&mut earlier, batch);
                (since, earlier)
            }
            None => (io.clock.now_ms(), batch),
        };
        if apply_only {
            self.deferred = Some((since, seq, batch));
            return Ok(());
        }
        self.persister.write(seq, batch).map_err(|_| NodeError::WriterStopped)
    }

    /// Sends a deferred registry write to the writer now (RF14).
    pub(super) fn flush_deferred(&mut self) -> Result<(), NodeError> {
        match self.deferred.take() {
            Some((_, seq, batch)) => {
                self.persister.write(seq, batch).map_err(|_| NodeError::WriterStopped)
            }
            None => Ok(()),
        }
    }

    /// The claims of entries this node appends go to the verifier thread now, so that their
    /// apply (after the commit, at least one round trip later) finds their R1 verdicts ready
    /// instead of checking signatures on the loop; claims this node admitted are in its
    /// verdict cache already. A busy verifier leaves them to the apply.
    /// (The claims submitted here reach their `append` stage.)
    fn verify_ahead(&mut self, io: &Io, seq: u64, w: &LogWrite) {
        for e in w.entries.iter().filter(|e| e.kind == EntryKind::Normal && !e.data.is_empty()) {
            let Ok(commands) = decode_entry(&e.data) else { continue };
            self.stages.appended(seq, &commands);
            if io.verifier.block(entry_key(&e.data), commands).is_err() {
                debug!(
                    index = e.index,
                    "verifier busy; this entry's verdicts are left to its apply"
                );
            }
        }
    }

    /// R1 verdicts the verifier computed for an entry.
    pub(super) fn verdicts_ready(
        &mut self,
        key: Digest,
        verdicts: Vec<Result<(), warpnet_state::ClaimError>>,
    ) {
        if self.verdicts.len() >= VERDICTS_MAX {
            self.verdicts.clear();
        }
        self.verdicts.insert(key, verdicts);
    }

    /// RF3: a committed entry (or snapshot) applied on the state every earlier one left; its
    /// writes and the applied index join this step's write.
    fn apply(
        &mut self,
        io: &Io,
        seq: u64,
        applied: Applied,
        batch: &mut RaftBatch,
        step: &mut InFlight,
    ) -> Result<(), NodeError> {
        match applied {
            Applied::Command { index, data, .. }
                if data.first() == Some(&VOTER_REQUEST_VERSION) =>
            {
                // A voter request changes no registry state: the leader acts on it (RV5–RV7).
                match VoterRequest::decode(&data) {
                    Ok(r) => self.voters.committed.push(r),
                    Err(e) => {
                        warn!(index, error = %e, "a voter request that does not decode is ignored")
                    }
                }
                set_applied(batch, index, None);
                step.applied = Some(index);
            }
            Applied::Command { index, data, .. } => {
                let commands = decode_entry(&data).unwrap_or_else(|e| {
                    warn!(index, error = %e, "an entry that does not decode is applied as no commands");
                    Vec::new()
                });
                let base = match self.reset {
                    Some(_) => None,
                    None => Some(self.store.app_snapshot()?),
                };
                let ready = self.verdicts.remove(&entry_key(&data));
                let m = &io.shared.metrics;
                if !commands.is_empty() {
                    m.verdicts(if ready.is_some() { "ahead" } else { "commit" }, 1);
                }
                // Earlier applies of this step are in the overlay already (under `seq`).
                let applied = app::apply_commands(
                    &self.network,
                    base.as_ref(),
                    &self.overlay,
                    [(Height(index), commands.as_slice(), ready)],
                )?;
                for (k, v) in &applied.writes {
                    self.overlay.insert(k.clone(), (seq, v.clone()));
                    step.keys.push(k.clone());
                }
                batch.app.extend(applied.writes);
                // RF13: the outcome is fixed once the entry is committed and durable in this
                // node's log (RF3): answered now, while its registry writes go to the disk.
                for (digest, outcome) in applied.outcomes {
                    m.applied(app::outcome_name(&outcome));
                    self.stages.applied(m, &digest);
                    self.waiters.answer(&digest, &outcome);
                }
                set_applied(batch, index, None);
                step.applied = Some(index);
            }
            Applied::Noop { index, .. } => {
                set_applied(batch, index, None);
                step.applied = Some(index);
            }
            Applied::Membership { index, membership, .. } => {
                set_applied(batch, index, Some(membership.clone()));
                step.applied = Some(index);
                step.membership = Some((index, membership));
            }
            Applied::Snapshot { index, membership, data, .. } => {
                let entries = decode_registry(&data).map_err(|e| NodeError::Raft {
                    detail: format!("the snapshot at index {index} does not decode: {e}"),
                })?;
                info!(index, keys = entries.len(), "installing the leader's registry snapshot");
                // The whole state is replaced: until this write is durable, the store's older
                // state must not show through (`reset`).
                self.overlay.clear();
                batch.app.clear();
                batch.app_reset = true;
                for (k, v) in entries {
                    self.overlay.insert(k.clone(), (seq, v.clone()));
                    step.keys.push(k.clone());
                    batch.app.push((k, v));
                }
                self.reset = Some(seq);
                set_applied(batch, index, Some(membership.clone()));
                step.applied = Some(index);
                step.membership = Some((index, membership));
            }
        }
        Ok(())
    }

    /// W4: writes up to `seq` are durable in this node's log: the engine's writes among them
    /// are acknowledged (RF2: the messages held back behind them go out; entries they hold
    /// may commit and apply). What reads the store waits for [`Raft::durable`].
    pub(super) fn synced(&mut self, io: &mut Io, seq: u64) -> Result<(), NodeError> {
        self.stages.synced(seq);
        let last_write = self
            .in_flight
            .iter_mut()
            .take_while(|w| w.seq <= seq)
            .filter_map(|w| w.write.take())
            .last();
        self.acknowledge(io, last_write)
    }

    fn acknowledge(&mut self, io: &mut Io, last_write: Option<WriteId>) -> Result<(), NodeError> {
        match last_write {
            Some(id) => match self.input(io, Input::Persisted(id))? {
                Ok(()) => Ok(()),
                Err(e) => {
                    Err(NodeError::Raft { detail: format!("acknowledging write {id:?}: {e}") })
                }
            },
            None => Ok(()),
        }
    }

    /// Writes up to `durable.seq` are in the store: lookups, reads and compaction may read
    /// them, so the overlay lets them go (W4: not before).
    pub(super) fn durable(&mut self, io: &mut Io, durable: Durable) -> Result<(), NodeError> {
        let m = io.shared.metrics.clone();
        let mut last_write = None;
        while self.in_flight.front().is_some_and(|w| w.seq <= durable.seq) {
            let Some(w) = self.in_flight.pop_front() else { break };
            // Acknowledged at `synced` already; a write never reported synced has none left.
            last_write = w.write.or(last_write);
            for key in w.keys {
                if self.overlay.get(&key).is_some_and(|(s, _)| *s <= w.seq) {
                    self.overlay.remove(&key);
                }
            }
            if self.reset.is_some_and(|s| s <= w.seq) {
                self.reset = None;
            }
            if let Some(index) = w.applied {
                if index > self.durable_applied {
                    m.commits.inc_by(index - self.durable_applied);
                }
                self.durable_applied = self.durable_applied.max(index);
            }
            if let Some((index, membership)) = w.membership {
                self.membership_applied(index, &membership);
            }
        }
        self.serve_reads();
        self.acknowledge(io, last_write)
    }

    /// Answers the membership changes a durable membership completes.
    fn membership_applied(&mut self, index: Index, membership: &Membership) {
        let voters: Vec<u16> = membership.voters().iter().map(|v| v.id.0).collect();
        self.members_waiting.retain_mut(|w| {
            let id = w.id;
            if membership.contains(id) != w.add {
                return true;
            }
            if let Some(done) = w.done.take() {
                let _ =
                    done.send(Ok(MemberDone { membership_index: index, voters: voters.clone() }));
            }
            false
        });
    }

    /// RF8: a read whose index this node has applied, durably, is answered (lookups read the
    /// store).
    fn serve_reads(&mut self) {
        let applied = self.durable_applied;
        let (ready, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.ready_reads).into_iter().partition(|(i, _)| *i <= applied);
        self.ready_reads = waiting;
        for (_, reply) in ready {
            let _ = reply.send(Ok(warpnet_state::Outcome::Barrier));
        }
    }

    /// RF7: compaction every `compact_entries` applied entries, or when a member needs a
    /// snapshot newer than the kept one; the registry is read off the loop.
    fn maybe_compact(&mut self) {
        if self.compacting {
            return;
        }
        let st = self.engine.status();
        let due = self.snapshot_wanted || st.applied >= st.snapshot_index + self.compact_entries;
        if !due || self.durable_applied <= st.snapshot_index {
            return;
        }
        self.compacting = true;
        self.snapshot_wanted = false;
        let (store, events) = (self.store.clone(), self.events.clone());
        tokio::task::spawn_blocking(move || {
            let _ = events.send(RaftEvent::Registry(read_registry(&store)));
        });
    }

    /// The registry read for compaction: the log is compacted behind it.
    pub(super) fn compact(
        &mut self,
        io: &mut Io,
        read: Result<(Index, Vec<u8>), StoreError>,
    ) -> Result<(), NodeError> {
        self.compacting = false;
        let (index, data) = read?;
        let bytes = data.len();
        match self.input(io, Input::Compact { index, data })? {
            Ok(()) => debug!(index, bytes, "log compacted behind a registry snapshot"),
            // A snapshot from the leader overtook it, or nothing new to compact.
            Err(e) => debug!(index, error = %e, "compaction skipped"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands are cut into entries of at most `ENTRY_BYTES_MAX` bytes, in order, and come
    /// back identical; a command alone over the limit still gets its own entry.
    #[test]
    fn command_batches_round_trip_through_entries() {
        let commands: Vec<Vec<u8>> = (0..3000).map(|i| vec![(i % 251) as u8; 200]).collect();
        let entries = entries_of(&commands);
        assert!(entries.len() >= 3, "{} entries", entries.len());
        let mut back = Vec::new();
        for (n, bytes) in &entries {
            assert!(bytes.len() <= ENTRY_BYTES_MAX + 16 + 4 * n);
            let cmds = decode_entry(bytes).unwrap();
            assert_eq!(cmds.len(), *n);
            back.extend(cmds);
        }
        assert_eq!(back, commands);
        assert!(decode_entry(&[2, 0, 0, 0, 0]).is_err());
        assert!(decode_entry(&entries[0].1[..10]).is_err());
    }

    /// A registry snapshot decodes to the key/values it was made of; empty data is the empty
    /// registry of the genesis snapshot.
    #[test]
    fn registry_snapshots_round_trip() {
        let mut w = Writer::new();
        w.u8(SNAPSHOT_VERSION).bytes(b"u/alice").bytes(b"owner").bytes(b"u/bob").bytes(b"x");
        let entries = decode_registry(&w.finish()).unwrap();
        assert_eq!(
            entries,
            vec![(b"u/alice".to_vec(), b"owner".to_vec()), (b"u/bob".to_vec(), b"x".to_vec())]
        );
        assert_eq!(decode_registry(&[]).unwrap(), Vec::new());
        assert!(decode_registry(&[9]).is_err());
    }

    /// A later apply of the same step moves the applied index on without losing the
    /// membership an earlier one set (it is stored with the applied index).
    #[test]
    fn set_applied_keeps_the_steps_membership() {
        let mut b = RaftBatch::default();
        let m = Membership::new(vec![]);
        set_applied(&mut b, 5, Some(m.clone()));
        set_applied(&mut b, 6, None);
        assert_eq!(b.applied, Some((6, Some(m))));
    }
}
