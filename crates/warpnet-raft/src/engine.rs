//! The engine: one raft-rs `RawNode`, driven by inputs, its `Ready`s turned into actions.
//!
//! Every input goes through [`RaftEngine::handle`]; the actions it returns are the whole
//! contract with the runtime (see the crate documentation for their order and meaning).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use raft::eraftpb::{Message, MessageType};
use raft::{RawNode, SnapshotStatus, StateRole};
use warpnet_types::NodeId;

use crate::convert;
use crate::error::{RaftError, RecoveryError};
use crate::message::{self, RaftMessage};
use crate::mirror::Mirror;
use crate::params::{Mutation, RaftParams};
use crate::types::{
    node_of, raft_id, HardState, Index, LogEntry, Member, Membership, ReadId, Recovery, Snapshot,
    WriteId,
};

/// Who this replica is and how it behaves.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub me: NodeId,
    pub params: RaftParams,
    /// Seeds the election-timeout draws (RF9): the node passes OS randomness, the simulator a
    /// value derived from its seed.
    pub seed: u64,
}

/// One input. `handle` either applies it whole or refuses it with a [`RaftError`] and changes
/// nothing.
#[derive(Clone, Debug)]
pub enum Input {
    /// One tick of the runtime's clock (elections and heartbeats are counted in ticks).
    Tick,
    /// A message from `from`, as authenticated by the transport.
    Message { from: NodeId, message: RaftMessage },
    /// Order an opaque command (a follower forwards it to the leader).
    Propose(Vec<u8>),
    /// A linearizable read (ReadIndex, RF8).
    Read(ReadId),
    /// hashicorp `AddVoter`: leader only, one change at a time (RF4). `expected_index`, when
    /// given, is the index of the membership the change was decided against. A new member
    /// enters as a learner and is promoted once it has caught up (RV1); `description` (the
    /// node's: key and addresses, at most 1 KiB) travels with it in the log.
    AddVoter { member: Member, description: Vec<u8>, expected_index: Option<Index> },
    /// hashicorp `RemoveServer`, same rules.
    RemoveServer { id: NodeId, expected_index: Option<Index> },
    /// Hand leadership to a public voter (RF1).
    TransferLeadership(NodeId),
    /// Every write up to and including this one is durable.
    Persisted(WriteId),
    /// The state machine's snapshot at `index` (at most the applied index): compact the log.
    Compact { index: Index, data: Vec<u8> },
    /// The transport could not deliver to `peer`.
    Unreachable(NodeId),
}

/// One durable write. Writes are made durable in the order they are emitted (with every other
/// durable effect, see [`Applied`]); within a write: the snapshot, then the entries, then the
/// hard state, atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogWrite {
    pub id: WriteId,
    /// A snapshot to keep instead of the previous one; log entries at or below its index go.
    pub snapshot: Option<Snapshot>,
    /// With a snapshot from the leader: every log entry goes (the log restarts after it).
    pub discard_log: bool,
    /// Appended; an entry at index `i` replaces whatever the log holds from `i` on.
    pub entries: Vec<LogEntry>,
    pub hard_state: Option<HardState>,
    /// Nothing but a higher commit index (RF2b): no message waits for it, so the runtime may
    /// let it wait to share a later write's transaction.
    pub commit_only: bool,
}

/// A committed entry (or snapshot) for the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    Command {
        index: Index,
        term: u64,
        data: Vec<u8>,
    },
    /// A new leader's empty entry: nothing to apply but the index.
    Noop {
        index: Index,
        term: u64,
    },
    /// The membership from this index on (store it with the applied index).
    Membership {
        index: Index,
        term: u64,
        membership: Membership,
    },
    /// Replace the whole state with this snapshot's (store its membership too).
    Snapshot {
        index: Index,
        term: u64,
        membership: Membership,
        data: Arc<[u8]>,
    },
}

impl Applied {
    pub fn index(&self) -> Index {
        match self {
            Applied::Command { index, .. }
            | Applied::Noop { index, .. }
            | Applied::Membership { index, .. }
            | Applied::Snapshot { index, .. } => *index,
        }
    }
}

/// What the runtime must do, in this order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Send now, best effort. (The engine emits a message only once every write emitted
    /// before it has been reported durable, except a leader's messages to public voters:
    /// RF12.)
    Send(RaftMessage),
    /// Make durable after every earlier durable effect; then feed `Input::Persisted(id)`.
    Persist(LogWrite),
    /// Apply to the state machine in index order, each index once; its effect and the applied
    /// index become durable together, after every earlier `Persist`.
    Apply(Applied),
    /// Read `id` may be served once the applied index reaches `index`.
    ReadReady { id: ReadId, index: Index },
    /// Read `id` got no read index (leader lost, or timed out): answer "unknown, retry".
    ReadFailed { id: ReadId },
    /// A member needs a snapshot newer than the one kept (it joined after it): hand the state
    /// machine's snapshot at its applied index with `Input::Compact` (RF7).
    SnapshotWanted { applied: Index },
}

/// A write not yet acknowledged, and what waits for it.
pub(crate) struct Pending {
    pub write: WriteId,
    pub ready: Option<u64>,
    /// RF2: messages that vouch for this write (votes, append acknowledgements).
    pub held: Vec<Message>,
    /// A snapshot from the leader, applied to raft-rs once durable.
    pub snapshot_index: Option<Index>,
    /// Whether a message may vouch for this write, so later messages wait for it (RF2). A
    /// write that only moves the commit index does not: see `drain_ready`.
    pub vouched_for: bool,
}

pub struct RaftEngine {
    pub(crate) me: NodeId,
    pub(crate) params: RaftParams,
    pub(crate) raw: RawNode<Mirror>,
    /// Membership as of `applied`, and the index of the entry or snapshot that set it.
    pub(crate) membership: Membership,
    pub(crate) membership_index: Index,
    /// Memberships set since the snapshot (index, membership), for compaction at an index
    /// below the applied one.
    pub(crate) history: Vec<(Index, Membership)>,
    /// Membership of the current snapshot.
    pub(crate) snapshot_membership: Membership,
    pub(crate) applied: Index,
    pub(crate) rng: u64,
    pub(crate) election_deadline: usize,
    pub(crate) seen_elapsed: usize,
    pub(crate) ticks: u64,
    pub(crate) last_heard: BTreeMap<NodeId, u64>,
    pub(crate) leader_lost_at: Option<u64>,
    pub(crate) next_write: u64,
    pub(crate) unacked: VecDeque<Pending>,
    pub(crate) reads: BTreeMap<ReadId, u64>,
    pub(crate) out: Vec<Action>,
}

impl RaftEngine {
    /// Starts from what the disk holds (`Recovery::genesis` for a founding member's first
    /// start, `Recovery::joining` for a member added later).
    pub fn new(config: EngineConfig, recovery: Recovery) -> Result<Self, RecoveryError> {
        let derived = convert::check_recovery(&recovery)?;
        let (mirror, snapshot_membership) = convert::mirror_of(&recovery);
        let p = &config.params;
        let election = p.election_ticks.max(2);
        let rc = raft::Config {
            id: raft_id(config.me),
            election_tick: election,
            heartbeat_tick: p.heartbeat_ticks.clamp(1, election - 1),
            applied: recovery.applied,
            max_size_per_msg: p.message_bytes_max,
            max_inflight_msgs: p.inflight_messages_max,
            check_quorum: true,
            pre_vote: true,
            // RF9: raft-rs's own (thread_rng) draw is pinned to one value; the engine owns the
            // randomized timeout, drawn from its seed.
            min_election_tick: election,
            max_election_tick: election + 1,
            read_only_option: raft::ReadOnlyOption::Safe,
            max_uncommitted_size: p.uncommitted_bytes_max,
            ..raft::Config::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&rc, mirror, &logger)
            .map_err(|e| RecoveryError::Raft { detail: e.to_string() })?;
        let mut engine = Self {
            me: config.me,
            params: config.params,
            raw,
            membership: recovery.membership.clone(),
            membership_index: derived,
            history: Vec::new(),
            snapshot_membership,
            applied: recovery.applied,
            rng: config.seed ^ 0x9E37_79B9_7F4A_7C15 ^ u64::from(config.me.0),
            election_deadline: election,
            seen_elapsed: 0,
            ticks: 0,
            last_heard: BTreeMap::new(),
            leader_lost_at: Some(0),
            next_write: 1,
            unacked: VecDeque::new(),
            reads: BTreeMap::new(),
            out: Vec::new(),
        };
        engine.history = convert::history_after_snapshot(&recovery);
        engine.election_deadline = engine.draw_timeout();
        Ok(engine)
    }

    pub fn params(&self) -> &RaftParams {
        &self.params
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Runs one input; returns the actions to execute in order, or refuses it unchanged.
    pub fn handle(&mut self, input: Input) -> Result<Vec<Action>, RaftError> {
        match input {
            Input::Tick => self.tick(),
            Input::Message { from, message } => self.step(from, message)?,
            Input::Propose(data) => self.propose(data)?,
            Input::Read(id) => self.read(id)?,
            Input::AddVoter { member, description, expected_index } => {
                self.add_voter(member, &description, expected_index)?
            }
            Input::RemoveServer { id, expected_index } => self.remove_server(id, expected_index)?,
            Input::TransferLeadership(to) => self.transfer(to)?,
            Input::Persisted(id) => self.persisted(id)?,
            Input::Compact { index, data } => self.compact(index, data)?,
            Input::Unreachable(peer) => self.raw.report_unreachable(raft_id(peer)),
        }
        self.drain_ready();
        self.track_leader();
        if self.raw.store().wanted.replace(false) {
            self.out.push(Action::SnapshotWanted { applied: self.applied });
        }
        Ok(std::mem::take(&mut self.out))
    }

    fn step(&mut self, from: NodeId, message: RaftMessage) -> Result<(), RaftError> {
        let m = message.0;
        let me_public =
            self.membership.is_public(self.me) || self.params.mutated(Mutation::PrivateCampaigns);
        message::check(&m, from, self.me, me_public, self.params.command_bytes_max)?;
        if m.get_msg_type() == MessageType::MsgSnapshot {
            convert::check_snapshot_message(m.get_snapshot())?;
        }
        self.last_heard.insert(from, self.ticks);
        self.raw.step(m).map_err(|e| RaftError::Refused { detail: e.to_string() })
    }

    fn propose(&mut self, data: Vec<u8>) -> Result<(), RaftError> {
        if data.is_empty() {
            return Err(RaftError::EmptyCommand);
        }
        let max = self.params.command_bytes_max;
        if data.len() > max {
            return Err(RaftError::CommandTooLarge { len: data.len(), max });
        }
        if self.leader().is_none() {
            return Err(RaftError::NoLeader);
        }
        self.raw.propose(Vec::new(), data).map_err(|e| match e {
            raft::Error::ProposalDropped if self.is_leader() => RaftError::Overloaded,
            raft::Error::ProposalDropped => RaftError::NoLeader,
            e => RaftError::Refused { detail: e.to_string() },
        })
    }

    /// RF8: a ReadIndex round (raft-rs `ReadOnlyOption::Safe`: the leader confirms its
    /// leadership with a quorum of heartbeat acknowledgements, and answers only once it has
    /// committed an entry of its term). No lease, so no clock assumption.
    fn read(&mut self, id: ReadId) -> Result<(), RaftError> {
        if self.leader().is_none() {
            return Err(RaftError::NoLeader);
        }
        if self.reads.len() >= self.params.pending_reads_max || self.reads.contains_key(&id) {
            return Err(RaftError::Overloaded);
        }
        self.reads.insert(id, self.ticks);
        self.raw.read_index(convert::read_context(self.me, id));
        Ok(())
    }

    fn persisted(&mut self, id: WriteId) -> Result<(), RaftError> {
        if id.0 >= self.next_write {
            return Err(RaftError::UnknownWrite { id: id.0, expected: self.next_write });
        }
        let mut ready = None;
        let mut snapshot = None;
        let mut held = Vec::new();
        while self.unacked.front().is_some_and(|p| p.write <= id) {
            let Some(p) = self.unacked.pop_front() else { break };
            ready = p.ready.or(ready);
            snapshot = p.snapshot_index.or(snapshot);
            held.extend(p.held);
        }
        if let Some(n) = ready {
            self.raw.on_persist_ready(n);
        }
        if let Some(index) = snapshot {
            if self.raw.raft.raft_log.applied < index {
                self.raw.advance_apply_to(index);
            }
        }
        for m in held {
            self.send(m);
        }
        Ok(())
    }

    /// Turns every pending `Ready` into actions (raft-rs's contract: each `Ready` handled,
    /// then `advance_append_async`, before raft-rs is stepped again).
    fn drain_ready(&mut self) {
        while self.raw.has_ready() {
            let mut rd = self.raw.ready();
            let snapshots_sent: Vec<u64> = rd
                .messages()
                .iter()
                .filter(|m| m.get_msg_type() == MessageType::MsgSnapshot)
                .map(|m| m.to)
                .collect();
            // RF2: a message leaves only once every write emitted before it is durable. RF12
            // narrows it for a leader's messages to public voters (raft-rs hands a leader's
            // messages out before its write, Raft thesis 10.2.1) and for forwarded proposals
            // and reads: see `leaves_before_write`.
            let (early, mut held): (Vec<_>, Vec<_>) = (rd.take_messages().into_iter())
                .chain(rd.take_persisted_messages())
                .partition(|m| self.leaves_before_write(m));
            early.into_iter().for_each(|m| self.send(m));
            let snapshot = (!rd.snapshot().is_empty()).then(|| rd.snapshot().clone());
            let entries = rd.take_entries();
            let hs = rd.hs().cloned();
            let committed = rd.take_committed_entries();
            let read_states = rd.take_read_states();
            let number = rd.number();
            // raft-rs reads what it handed out from the mirror before the disk has it.
            let mut write = LogWrite::default();
            let store = self.raw.mut_store();
            // RF2b: a write of nothing but a higher commit index (same term, same vote, no
            // entries, no snapshot) vouches for nothing a peer relies on: the commit index is
            // not needed after a crash (the committed entries are durable in a majority's logs
            // and a leader learns the index anew), so messages made with it wait only for the
            // earlier writes that do vouch. It lets a leader's commit reach the followers
            // without waiting for its own fsync of the index.
            let commit_only = snapshot.is_none()
                && entries.is_empty()
                && hs.as_ref().is_some_and(|h| {
                    (h.term == store.hard_state.term && h.vote == store.hard_state.vote)
                        || self.params.mutated(Mutation::VoteCountsAsCommitOnly)
                });
            if let Some(s) = &snapshot {
                store.install(s.clone());
                write.snapshot = Some(convert::snapshot_of(s));
                write.discard_log = true;
            }
            store.append(&entries);
            if let Some(hs) = &hs {
                store.hard_state = hs.clone();
                write.hard_state = Some(convert::hard_state_of(hs));
            }
            write.entries = entries.iter().map(convert::log_entry_of).collect();
            write.commit_only = commit_only;
            self.raw.advance_append_async(rd);
            if self.params.mutated(Mutation::AckBeforePersist) {
                let (now, later): (Vec<_>, Vec<_>) = held
                    .into_iter()
                    .partition(|m| m.get_msg_type() == MessageType::MsgAppendResponse);
                now.into_iter().for_each(|m| self.send(m));
                held = later;
            }
            let has_write =
                write.snapshot.is_some() || !write.entries.is_empty() || write.hard_state.is_some();
            let vouched_for = !commit_only;
            if has_write {
                write.id = WriteId(self.next_write);
                self.next_write += 1;
                if !vouched_for {
                    let free = self.hold_behind_vouched(std::mem::take(&mut held));
                    free.into_iter().for_each(|m| self.send(m));
                }
                self.unacked.push_back(Pending {
                    write: write.id,
                    ready: Some(number),
                    held,
                    snapshot_index: snapshot.as_ref().map(|s| s.get_metadata().index),
                    vouched_for,
                });
                self.out.push(Action::Persist(write));
            } else {
                let held = self.hold_behind_vouched(held);
                held.into_iter().for_each(|m| self.send(m));
            }
            for to in snapshots_sent {
                // Optimistic: a lost snapshot shows up as a failed probe, which sends it again.
                self.raw.report_snapshot(to, SnapshotStatus::Finish);
            }
            if let Some(s) = snapshot {
                self.apply_snapshot(&s);
            }
            for e in committed {
                self.apply_entry(e);
            }
            for rs in read_states {
                if let Some(id) = convert::read_id(self.me, &rs.request_ctx) {
                    if self.reads.remove(&id).is_some() {
                        self.out.push(Action::ReadReady { id, index: rs.index });
                    }
                }
            }
        }
    }

    /// RF12: a leader's message to a public voter leaves at once, before the leader's own
    /// write of the entries it carries (they replicate while the leader writes); one to any
    /// other member waits as RF2 says. Safety does not rest on the leader's write (raft-rs
    /// counts the leader towards a commit only once its write is durable, `on_persist_ready`,
    /// and applies only entries durable here, RF3); liveness does, through RF1: a leader that
    /// crashes before its write loses entries its followers may hold. A public follower that
    /// holds them can campaign and win (unless a membership change stops it: RF15 below); a private one could only refuse its vote to every
    /// public candidate whose log is shorter, and with enough private voters no public
    /// member could ever be elected. So an entry reaches a private member only once its
    /// public leader holds it durably, exactly as under RF2.
    ///
    /// RF15: RF12 applies only while no membership change is in flight (raft-rs's pending
    /// index above its applied one: a change proposed or, for a new leader, possibly in its
    /// log, and not yet applied here); meanwhile every message of the leader waits for its
    /// write. RF12's argument needs the public follower that holds entries its leader lost to
    /// be able to campaign, and a change can take that away: a voter whose removal is in its
    /// log does not campaign (RF6), and one that applied its removal is no longer a voter.
    /// Seen with voters {0, 3}: leader 0 sent the removal of 3 at once, crashed before its own
    /// write, and came back with a shorter log; 3 would not campaign and refused 0's pre-vote,
    /// so nobody could ever lead. With a change in flight held back, whatever a follower holds
    /// of the change and after it is durable at the leader, whose log is then at least as
    /// long as the follower's.
    ///
    /// A forwarded proposal or read-index request leaves at once from any member: it vouches
    /// for no write (the leader appends the command itself; the read index comes back from
    /// the leader), so a follower's busy disk does not delay its clients' commands.
    fn leaves_before_write(&self, m: &Message) -> bool {
        match m.get_msg_type() {
            MessageType::MsgPropose | MessageType::MsgReadIndex => true,
            _ if self.is_leader()
                && self.raw.raft.has_pending_conf()
                && !self.params.mutated(Mutation::EarlyDuringChange) =>
            {
                false
            }
            _ if self.is_leader() => {
                let to_public = node_of(m.to).is_some_and(|to| self.membership.is_public(to));
                to_public || self.params.mutated(Mutation::PrivateBeforeLeaderWrite)
            }
            _ => false,
        }
    }

    /// RF2: messages follow every write emitted before them that a message may vouch for:
    /// they wait with the last such write still in flight (returns none), or, with none in
    /// flight, may leave now (returned).
    fn hold_behind_vouched(&mut self, held: Vec<Message>) -> Vec<Message> {
        match self.unacked.iter_mut().rev().find(|p| p.vouched_for) {
            Some(last) => {
                last.held.extend(held);
                Vec::new()
            }
            None => held,
        }
    }

    pub(crate) fn send(&mut self, m: Message) {
        self.out.push(Action::Send(RaftMessage(m)));
    }

    pub(crate) fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The leader, as far as this replica knows: raft-rs keeps a follower's leader until a
    /// new term, so one not heard from for an election timeout counts as gone (RF11: a
    /// committee whose public members are down reports no leader, not a dead one).
    pub fn leader(&self) -> Option<NodeId> {
        let r = &self.raw.raft;
        if r.state != StateRole::Leader && r.election_elapsed >= self.params.election_ticks.max(2) {
            return None;
        }
        node_of(r.leader_id)
    }

    fn track_leader(&mut self) {
        match (self.leader(), self.leader_lost_at) {
            (Some(_), Some(_)) => self.leader_lost_at = None,
            (None, None) => self.leader_lost_at = Some(self.ticks),
            _ => {}
        }
    }
}
