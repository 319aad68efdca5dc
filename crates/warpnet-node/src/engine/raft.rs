//! Raft mode: `warpnet-raft`'s engine (raft-rs inside, rules RF1–RF13) driven by the node's
//! loop, on the `RaftStore` and the same writer thread as HotStuff.
//!
//! - **Time**: one `Tick` every `raft_tick_ms` (100 ms by default): the leader's heartbeats
//!   every tick, elections after 10–20 ticks without a leader (RF9), reads given up after 20.
//! - **Commands**: the requests of one loop turn become entries of at most 256 KiB, proposed
//!   to the leader (a follower forwards them). A request is answered once its entry is
//!   committed (durable in a majority's logs), durable in this node's log and applied here
//!   (RF13); its registry writes and the applied index follow in one durable write, and after
//!   a crash the log replays the entry to the same outcome. Lookups read only that durable
//!   state.
//! - **Reads**: ReadIndex (RF8): the leader confirms its leadership with a quorum and names
//!   an index; the read is served once this node has applied that index durably.
//! - **Voters**: AddVoter / RemoveServer (RF4–RF6, RV1–RV4) by the leader, one change at a
//!   time, reached through the same `member` CLI and API as HotStuff mode (`raft_voters.rs`,
//!   RV5–RV7).
//! - **Compaction** (RF7): every `raft_compact_entries` entries the registry is read off the
//!   loop from one read transaction and the log is cut behind it; a lagging or new voter gets
//!   that snapshot, in pieces when it is large (`raft_pieces.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use warpnet_core::mempool::command_digest;
use warpnet_raft::{
    Health, Index, Input, Member, Membership, RaftEngine, RaftError, RaftMessage, ReadId, Role,
    WriteId,
};
use warpnet_storage::{RaftStore, StoreError};
use warpnet_types::{ConsensusConfig, Message, NetworkId, NodeId, PublicKey};

use super::raft_apply::{entries_of, APPLY_FLUSH_MS};
use super::raft_pieces::{split, Reassembly, Received};
use super::raft_roster::{id_of, Roster};
use super::raft_stages::Stages;
use super::raft_voters::VoterChanges;
use super::{refuse, Engine, Io, Waiters};
use crate::handle::{MemberChange, MemberDone, MemberRefused, RaftView, Refused, Reply, Request};
use crate::persist::{Durable, Persister};
use crate::runtime::NodeError;
use crate::verifier::Checked;

/// Completions of background work.
pub enum RaftEvent {
    /// The registry read for compaction (applied index, snapshot bytes).
    Registry(Result<(Index, Vec<u8>), StoreError>),
    /// A candidate's dial-back finished.
    Probed(crate::committee::Probed),
}

/// One durable write queued and what waits for it.
#[derive(Default)]
pub(super) struct InFlight {
    pub seq: u64,
    /// The engine's last `Persist` in it, acknowledged once it is durable (taken then: W4,
    /// synced before it is readable).
    pub write: Option<WriteId>,
    /// Registry keys it writes (their overlay entries go once it is durable).
    pub keys: Vec<Vec<u8>>,
    pub applied: Option<Index>,
    pub membership: Option<(Index, Membership)>,
}

/// A membership change proposed and not yet applied.
pub(super) struct MemberWait {
    pub id: NodeId,
    pub add: bool,
    pub done: Option<oneshot::Sender<Result<MemberDone, MemberRefused>>>,
}

/// How a node runs its Raft engine.
#[derive(Clone, Copy, Debug)]
pub struct RaftSettings {
    pub tick_ms: u64,
    pub compact_entries: u64,
    /// RV3: a removal never leaves fewer voters (the committee file's `voters_min`).
    pub voters_min: usize,
}

pub struct Raft {
    /// This node's id in the (founding) committee.
    pub(super) me: NodeId,
    pub(super) engine: RaftEngine,
    pub(super) store: Arc<RaftStore>,
    pub(super) persister: Persister<RaftStore>,
    pub(super) network: NetworkId,
    pub(super) config: Arc<ConsensusConfig>,
    pub(super) settings: RaftSettings,
    next_tick_ms: Option<u64>,
    pub(super) compact_entries: u64,
    /// The last write queued (writes are numbered from 1).
    pub(super) seq: u64,
    pub(super) in_flight: VecDeque<InFlight>,
    /// Registry writes not yet durable (key → write seq, value).
    pub(super) overlay: crate::app::Overlay,
    /// A registry-only write waiting to share the next write's transaction (RF14): since
    /// when (ms), the last step it holds, the merged batch.
    pub(super) deferred: Option<(u64, u64, warpnet_storage::RaftBatch)>,
    /// A write that replaces the whole registry (an installed snapshot), until durable.
    pub(super) reset: Option<u64>,
    /// The applied index the store holds (what lookups read).
    pub(super) durable_applied: Index,
    pub(super) waiters: Waiters,
    /// When the claims submitted here reached each stage (`warpnet_claim_stage_seconds`).
    pub(super) stages: Stages,
    /// R1 verdicts of appended entries, computed ahead by the verifier (by entry hash).
    pub(super) verdicts: crate::app::Verdicts,
    /// Reads waiting for their read index, and reads waiting to have applied it.
    pub(super) reads: HashMap<ReadId, Reply>,
    next_read: u64,
    pub(super) ready_reads: Vec<(Index, Reply)>,
    pub(super) members_waiting: Vec<MemberWait>,
    pub(super) snapshot_wanted: bool,
    pub(super) compacting: bool,
    pub(super) events: mpsc::UnboundedSender<RaftEvent>,
    pieces: Reassembly,
    pub(super) unreachable: HashSet<NodeId>,
    /// The connected members `GET /v1/members` was last published with.
    members_connected: Vec<NodeId>,
    last_leader: u16,
    /// Who is who (RV5), as of `roster_index`'s membership.
    pub(super) roster: Roster,
    pub(super) roster_index: Option<Index>,
    pub(super) voters: VoterChanges,
    pub(super) transport_config: warpnet_net::TransportConfig,
    /// RV7: this member applied its own removal.
    pub(super) removed: bool,
}

impl Raft {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        engine: RaftEngine,
        store: Arc<RaftStore>,
        persister: Persister<RaftStore>,
        config: Arc<ConsensusConfig>,
        settings: RaftSettings,
        durable_applied: Index,
        events: mpsc::UnboundedSender<RaftEvent>,
        voters: VoterChanges,
        transport_config: warpnet_net::TransportConfig,
    ) -> Self {
        let me = engine.me();
        let roster = Roster::new(&config, &engine.status().membership, &voters.bootstrap);
        Self {
            me,
            engine,
            store,
            persister,
            network: config.network().clone(),
            config,
            settings,
            next_tick_ms: None,
            compact_entries: settings.compact_entries.max(1),
            seq: 0,
            in_flight: VecDeque::new(),
            overlay: crate::app::Overlay::new(),
            deferred: None,
            reset: None,
            durable_applied,
            waiters: Waiters::default(),
            stages: Stages::default(),
            verdicts: std::collections::HashMap::new(),
            reads: HashMap::new(),
            next_read: 1,
            ready_reads: Vec::new(),
            members_waiting: Vec::new(),
            snapshot_wanted: false,
            compacting: false,
            events,
            pieces: Reassembly::default(),
            unreachable: HashSet::new(),
            members_connected: Vec::new(),
            last_leader: 0,
            roster,
            roster_index: None,
            voters,
            transport_config,
            removed: false,
        }
    }

    /// Sends one message (in pieces if large); returns the peer if a frame was dropped (its
    /// queue is full or it is gone), so raft-rs stops streaming to it.
    pub(super) fn send(&mut self, io: &Io, m: &RaftMessage) -> Option<NodeId> {
        let to = m.to()?;
        io.shared.metrics.message_out(m.kind());
        let Some(key) = self.roster.key(to) else {
            return Some(to);
        };
        let Some(frames) = split(self.config.epoch(), &m.encode()) else {
            warn!(peer = %to, kind = m.kind(), "a Raft message over the transport's limit was not sent");
            return Some(to);
        };
        let mut sent = true;
        for f in frames {
            sent &= io.transport.send(&key, &Message::Raft(f));
        }
        (!sent).then_some(to)
    }

    /// Client commands, as entries of one or more commands each; every request waits for its
    /// command's outcome (a retry of a pending command waits with it).
    fn propose(&mut self, io: &mut Io, commands: Vec<(Vec<u8>, Reply)>) -> Result<(), NodeError> {
        let bytes: Vec<Vec<u8>> = commands.iter().map(|(c, _)| c.clone()).collect();
        let mut replies = commands.into_iter().map(|(c, r)| (command_digest(&c), r));
        for (n, entry) in entries_of(&bytes) {
            let verdict = self.input(io, Input::Propose(entry))?;
            for (digest, reply) in replies.by_ref().take(n) {
                match &verdict {
                    Ok(()) => {
                        self.stages.submitted(digest);
                        self.waiters.wait(digest, reply)
                    }
                    Err(RaftError::NoLeader | RaftError::NotLeader { .. }) => {
                        refuse(reply, Refused::NoLeader)
                    }
                    Err(RaftError::Overloaded) => refuse(reply, Refused::Overloaded),
                    Err(e) => refuse(reply, Refused::Invalid(e.to_string())),
                }
            }
        }
        Ok(())
    }

    /// RF8: a ReadIndex request; answered once this node has applied the index it gets.
    fn read(&mut self, io: &mut Io, done: Reply) -> Result<(), NodeError> {
        let id = ReadId(self.next_read);
        self.next_read += 1;
        match self.input(io, Input::Read(id))? {
            Ok(()) => {
                self.reads.insert(id, done);
            }
            Err(RaftError::NoLeader) => refuse(done, Refused::NoLeader),
            Err(RaftError::Overloaded) => refuse(done, Refused::Overloaded),
            Err(e) => refuse(done, Refused::Invalid(e.to_string())),
        }
        Ok(())
    }

    /// RF4: AddVoter / RemoveServer for a member of the committee file, on the leader.
    fn member(
        &mut self,
        io: &mut Io,
        change: MemberChange,
        done: oneshot::Sender<Result<MemberDone, MemberRefused>>,
    ) -> Result<(), NodeError> {
        let Some(id) = self.config.node_id_of(&change.key) else {
            let why = "this key is not in the committee file: list the member there (as `voter = false`) on every member first";
            let _ = done.send(Err(MemberRefused::Refused(why.into())));
            return Ok(());
        };
        let public = self.config.participant(id).is_ok_and(|p| p.public);
        let expected_index = Some(change.expected_index);
        let input = if change.add {
            Input::AddVoter {
                member: Member { id, public },
                description: Vec::new(),
                expected_index,
            }
        } else {
            Input::RemoveServer { id, expected_index }
        };
        match self.input(io, input)? {
            Ok(()) => {
                info!(member = %id, add = change.add, "membership change proposed");
                self.members_waiting.push(MemberWait { id, add: change.add, done: Some(done) });
            }
            Err(RaftError::NotLeader { leader }) => {
                let _ = done.send(Err(MemberRefused::NotLeader { leader: leader.map(|l| l.0) }));
            }
            Err(e) => {
                let _ = done.send(Err(MemberRefused::Refused(e.to_string())));
            }
        }
        Ok(())
    }

    /// Members the transport lost are reported to raft-rs (it probes them instead of
    /// streaming); a lost connection abandons the message in pieces from that member.
    fn refresh_reachability(&mut self, io: &mut Io, connected: &[NodeId]) -> Result<(), NodeError> {
        let m = self.engine.status().membership;
        let known: Vec<NodeId> =
            m.voters().iter().chain(m.learners()).map(|v| v.id).filter(|&p| p != self.me).collect();
        self.unreachable.retain(|p| known.contains(p));
        for peer in known {
            let now = connected.contains(&peer);
            if now != self.unreachable.contains(&peer) {
                continue;
            }
            if now {
                self.unreachable.remove(&peer);
                info!(peer = %peer, "member reachable again");
            } else {
                self.unreachable.insert(peer);
                warn!(peer = %peer, "member unreachable");
                self.pieces.forget(peer);
                let _ = self.input(io, Input::Unreachable(peer))?;
            }
        }
        Ok(())
    }

    fn publish(&mut self, io: &Io, connected: &[NodeId]) {
        let st = self.engine.status();
        let m = &io.shared.metrics;
        m.committed_height.set(self.durable_applied);
        let stats = io.transport.stats();
        m.transport(stats.rejected_connections, stats.malformed_frames, stats.dropped_sends);
        m.connected_peers.set(connected.len() as u64);
        if let Some(l) = st.leader {
            self.last_leader = l.0;
        }
        let voter = st.membership.contains(self.me);
        let role = match st.role {
            _ if !voter => "standby",
            Role::Leader => "leader",
            Role::Candidate => "candidate",
            Role::PreCandidate => "pre_candidate",
            Role::Follower => "follower",
        };
        let health = match st.health {
            Health::Leading => "leading",
            Health::Following(_) => "following",
            Health::Electing => "electing",
            Health::NoPublicVoterReachable => "no_public_voter_reachable",
        };
        let view = RaftView {
            term: st.term,
            role,
            leader: st.leader.map(|l| l.0),
            commit_index: st.commit,
            applied_index: self.durable_applied,
            snapshot_index: st.snapshot_index,
            membership_index: st.membership_index,
            health,
        };
        if let Ok(mut s) = io.shared.snapshot.lock() {
            s.node_id = self.me.0;
            s.epoch = self.config.epoch().0;
            s.committed_height = self.durable_applied;
            s.leader = self.last_leader;
            s.connected = connected.iter().map(|n| n.0).collect();
            s.voters = st.membership.voters().iter().map(|v| v.id.0).collect();
            s.quorum = st.membership.quorum();
            if matches!(st.health, Health::Leading | Health::Following(_)) {
                s.last_certificate = Some(Instant::now());
            }
            s.raft = Some(view);
        }
    }
}

impl Engine for Raft {
    type Event = RaftEvent;

    fn start(&mut self, io: &mut Io) -> Result<(), NodeError> {
        self.next_tick_ms = Some(io.clock.now_ms() + self.settings.tick_ms);
        // The first tick also brings out what the disk holds above its applied index.
        self.on_deadline(io)
    }

    fn committee(&self) -> Arc<ConsensusConfig> {
        self.config.clone()
    }

    fn peers(&self, now_ms: u64) -> Vec<warpnet_net::Peer> {
        self.member_peers(now_ms)
    }

    fn committee_view(&self, connected: &[PublicKey]) -> crate::handle::Committee {
        self.members_view(connected)
    }

    fn on_control(
        &mut self,
        io: &mut Io,
        control: crate::handle::Control,
    ) -> Result<(), NodeError> {
        self.control(io, control)
    }

    fn finished(&self, _now_ms: u64) -> bool {
        self.removed
    }

    fn on_message(
        &mut self,
        io: &mut Io,
        from: PublicKey,
        message: Message,
    ) -> Result<(), NodeError> {
        // RV5: the transport admits only peers; a removed member's frames are dropped.
        let from = id_of(&self.config, &from);
        if self.engine.status().membership.is_retired(from) {
            io.shared.metrics.rejected("raft_removed_member");
            debug!(peer = %from, "dropped a frame from a removed member");
            return Ok(());
        }
        let frame = match message {
            Message::Raft(f) if f.epoch == self.config.epoch() => f,
            other => {
                io.shared.metrics.rejected("wrong_consensus");
                debug!(peer = %from, kind = other.kind(), "dropped a frame this Raft network does not use");
                return Ok(());
            }
        };
        let bytes = match self.pieces.receive(from, frame) {
            Received::Whole(b) => b,
            Received::Partial => return Ok(()),
            Received::Abandoned => {
                io.shared.metrics.rejected("raft_pieces_abandoned");
                return Ok(());
            }
        };
        let message = match RaftMessage::decode(&bytes) {
            Ok(m) => m,
            Err(e) => {
                io.shared.metrics.rejected("raft_malformed");
                warn!(peer = %from, error = %e, "dropped a Raft message that does not decode");
                return Ok(());
            }
        };
        io.shared.metrics.message_in(message.kind());
        if let Err(e) = self.input(io, Input::Message { from, message })? {
            // RF10 and raft-rs's own refusals: nothing changed.
            io.shared.metrics.rejected("raft_refused");
            debug!(peer = %from, error = %e, "Raft message refused");
        }
        Ok(())
    }

    fn on_requests(&mut self, io: &mut Io, requests: Vec<Request>) -> Result<(), NodeError> {
        let mut commands = Vec::new();
        for r in requests {
            match r {
                Request::Command { command, done } => commands.push((command, done)),
                Request::Read { done } => self.read(io, done)?,
                Request::Member { change, done } => self.member(io, change, done)?,
            }
        }
        if !commands.is_empty() {
            self.propose(io, commands)?;
        }
        Ok(())
    }

    fn on_checked(&mut self, _io: &mut Io, checked: Checked) -> Result<(), NodeError> {
        // Raft mode shares no commands between members; entries' verdicts come ahead.
        if let Checked::Block(key, verdicts) = checked {
            self.verdicts_ready(key, verdicts);
        }
        Ok(())
    }

    fn on_synced(&mut self, io: &mut Io, seq: u64) -> Result<(), NodeError> {
        self.synced(io, seq)
    }

    fn on_durable(&mut self, io: &mut Io, durable: Durable) -> Result<(), NodeError> {
        self.durable(io, durable)
    }

    fn on_deadline(&mut self, io: &mut Io) -> Result<(), NodeError> {
        let now = io.clock.now_ms();
        if self.deferred.as_ref().is_some_and(|(since, _, _)| since + APPLY_FLUSH_MS <= now) {
            self.flush_deferred()?;
            if self.next_tick_ms.is_some_and(|t| t > now) {
                return Ok(());
            }
        }
        let tick = self.settings.tick_ms;
        let next = self.next_tick_ms.unwrap_or(now) + tick;
        // A loop that fell behind (a long fsync) skips the missed ticks rather than bursting.
        self.next_tick_ms = Some(if next <= now { now + tick } else { next });
        if let Err(e) = self.input(io, Input::Tick)? {
            return Err(NodeError::Raft { detail: format!("a tick was refused: {e}") });
        }
        Ok(())
    }

    fn on_event(&mut self, io: &mut Io, event: RaftEvent) -> Result<(), NodeError> {
        match event {
            RaftEvent::Registry(read) => self.compact(io, read),
            RaftEvent::Probed((key, result)) => {
                let m = self.engine.status().membership;
                let todo = self.voters.on_dial_back(io.clock.now_ms(), &m, key, result);
                self.run_todo(io, todo)
            }
        }
    }

    fn deadline_ms(&self) -> Option<u64> {
        let flush = self.deferred.as_ref().map(|(since, _, _)| since + APPLY_FLUSH_MS);
        match (self.next_tick_ms, flush) {
            (Some(t), Some(f)) => Some(t.min(f)),
            (t, f) => t.or(f),
        }
    }

    fn after_event(&mut self, io: &mut Io) -> Result<(), NodeError> {
        let connected: Vec<NodeId> =
            io.transport.stats().connected.iter().filter_map(|k| self.roster.id(k)).collect();
        self.refresh_reachability(io, &connected)?;
        self.publish(io, &connected);
        // `/v1/members` says who is connected as soon as it changes (the periodic refresh in
        // `prune` covers the rest of the view).
        let mut now = connected;
        now.sort_unstable();
        if now != self.members_connected {
            self.members_connected = now;
            self.publish_committee(io);
        }
        self.follow_membership(io)?;
        Ok(())
    }

    fn prune(&mut self, io: &mut Io) -> Result<(), NodeError> {
        self.waiters.prune();
        self.stages.prune();
        self.reads.retain(|_, r| !r.is_closed());
        self.ready_reads.retain(|(_, r)| !r.is_closed());
        self.members_waiting.retain(|w| w.done.as_ref().is_some_and(|d| !d.is_closed()));
        let now = io.clock.now_ms();
        if self.voters.lingering.iter().any(|(_, until)| now >= *until) {
            self.voters.lingering.retain(|(_, until)| now < *until);
            io.transport.set_peers(self.peers(now));
        }
        let m = self.engine.status().membership;
        let todo = self.voters.resend(now, &self.config, &m);
        self.run_todo(io, todo)?;
        self.publish_committee(io);
        Ok(())
    }

    fn stop(&mut self) {
        // A deferred registry write (RF14) becomes durable before the writer stops.
        if self.flush_deferred().is_err() {
            warn!("the storage writer stopped before the last registry write");
        }
        self.persister.stop();
    }
}
