//! HotStuff mode: the pure core (`warpnet-core`), its `Step`s executed as `warpnet_core::Step`
//! says, exactly as the simulator executes them: the step's write is queued for the storage
//! writer thread (`persist.rs`) and the loop goes on; its messages are sent at once (the core
//! holds back what depends on a write until `Input::Persisted`); sync requests are answered
//! from the blocks in flight, the core's tree and the store; the loop wakes the core at its
//! deadline.
//!
//! Committed blocks are applied to the registry when their step runs: their state-machine
//! writes join the same write (one transaction with the commit: state and height never
//! diverge). A command is answered as soon as its block's commit is in a step and the command
//! is applied in memory (rule HA1, docs/architecture.md: the block and the certificates that
//! make its commit certain are already durable on a quorum, and recovery commits it again);
//! a read barrier is answered only once that write is durable, so a linearizable lookup reads
//! a store that holds every commit before it. Until the write is durable, later steps read the
//! registry through the writes still in flight (`InFlight`), so every commit is applied to the
//! state all the earlier ones produced.
//!
//! Client commands (already checked) go to the core's `submit`, which shares the accepted ones
//! with every other member (M1); a read barrier is a barrier command ordered the same way.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use warpnet_core::mempool::command_digest;
use warpnet_core::{Core, Input, Rejection, Step, Target, Write};
use warpnet_net::Peer;
use warpnet_storage::{Batch, Store};
use warpnet_types::{Block, BlockId, ConsensusConfig, Digest, Message, NetworkId, PublicKey};

use super::{refuse, Engine, Io, Waiters};
use crate::app;
use crate::committee::{CommitteeDriver, Event};
use crate::handle::{Committee, Control, MemberRefused, Refused, Request};
use crate::persist::{Durable, Persister};
use crate::runtime::NodeError;
use crate::verifier::Checked;

/// A test-only fault switch: a node started with `WARPNET_TEST_EQUIVOCATE=1` signs, for every
/// block it proposes, a second, different block for the same round and sends both to every
/// peer: the equivocation rule E1 catches it and EV1 removes the node at the next epoch. Used by
/// `warpnet-consensus/tests/membership.rs`; never set it on a real node.
pub const EQUIVOCATE_ENV: &str = "WARPNET_TEST_EQUIVOCATE";

/// After a start, members not yet connected are not reported unreachable for this long (they
/// are usually still being dialed).
const REACHABILITY_GRACE: Duration = Duration::from_secs(2);

/// Most blocks whose verdicts are kept waiting for their commit (forks never commit; past this
/// the oldest are forgotten and computed at commit if ever needed).
const VERDICTS_MAX: usize = 256;

/// A submit time kept this long without a commit is forgotten (its client gave up long ago).
const PENDING_FORGET: Duration = Duration::from_secs(60);

/// A write queued for the storage writer and not yet durable: what waits for it.
struct InFlight {
    seq: u64,
    /// The committed commands' outcomes, for the requests waiting for them.
    outcomes: Vec<(Digest, warpnet_state::Outcome)>,
    /// The registry keys it writes (see `HotStuff::overlay`).
    keys: Vec<Vec<u8>>,
    /// The blocks it stores (see `HotStuff::blocks_in_flight`).
    blocks: Vec<BlockId>,
    commits: u64,
    /// When its commits were applied in memory, and how many of the read barriers waiting for
    /// it were submitted here (`warpnet_claim_stage_seconds`).
    applied_at: Instant,
    timed: usize,
}

/// The HotStuff engine: the core, its store and writer thread, and what is in flight.
pub struct HotStuff {
    network: NetworkId,
    core: Core,
    store: Arc<Store>,
    persister: Persister<Store>,
    /// When to feed the core `Input::Tick` (the last step's deadline).
    deadline_ms: Option<u64>,
    sync_blocks_max: usize,
    high_qc_round: u64,
    /// Requests waiting for their command to commit, by command digest.
    waiters: Waiters,
    /// When (and in which round) each command waited for was taken by the loop, for the claim
    /// stage metrics; forgotten at its commit, or after [`PENDING_FORGET`].
    submitted: HashMap<Digest, (Instant, u64)>,
    /// R1 verdicts of blocks not yet committed, computed by the verifier thread.
    verdicts: app::Verdicts,
    /// Writes queued and not yet durable, oldest first.
    in_flight: VecDeque<InFlight>,
    /// Registry writes not yet durable (key → write seq, value): applying a later commit reads
    /// them before the store.
    overlay: app::Overlay,
    /// Commands whose outcome is in a write in flight, by digest → that write's seq.
    outcomes_in_flight: HashMap<Digest, (u64, warpnet_state::Outcome)>,
    /// Read barriers submitted here and not yet answered: answered once durable (HA1).
    /// (Forgotten after [`PENDING_FORGET`] if they never commit.)
    barriers: HashMap<Digest, Instant>,
    /// Blocks in writes not yet durable, so sync can serve them meanwhile.
    blocks_in_flight: HashMap<BlockId, Block>,
    /// What the core was last told about each member's reachability (PM7).
    reachable: HashMap<PublicKey, bool>,
    /// The transport's connected peers, as of the last step (`publish`).
    connected: Vec<PublicKey>,
    /// Committee changes at run time: peers per epoch, pending changes, lingering (EP5).
    committee: CommitteeDriver,
    /// The test-only equivocation switch ([`EQUIVOCATE_ENV`]): this node's key, to sign the
    /// second block.
    equivocate: Option<Arc<dyn warpnet_types::Signer>>,
}

impl HotStuff {
    pub fn new(
        core: Core,
        store: Arc<Store>,
        persister: Persister<Store>,
        sync_blocks_max: usize,
        committee: CommitteeDriver,
    ) -> Self {
        let high_qc_round = core.status().high_qc_round.0;
        Self {
            network: core.config().network().clone(),
            core,
            store,
            persister,
            deadline_ms: None,
            sync_blocks_max,
            high_qc_round,
            waiters: Waiters::default(),
            submitted: HashMap::new(),
            verdicts: HashMap::new(),
            in_flight: VecDeque::new(),
            overlay: app::Overlay::new(),
            outcomes_in_flight: HashMap::new(),
            barriers: HashMap::new(),
            blocks_in_flight: HashMap::new(),
            reachable: HashMap::new(),
            connected: Vec::new(),
            committee,
            equivocate: None,
        }
    }

    /// Turns the test-only equivocation switch on ([`EQUIVOCATE_ENV`]).
    pub fn equivocate_with(mut self, signer: Arc<dyn warpnet_types::Signer>) -> Self {
        warn!("{EQUIVOCATE_ENV} is set: this node will equivocate (a test-only fault)");
        self.equivocate = Some(signer);
        self
    }

    /// The second, conflicting proposal the equivocation switch sends after `p`.
    fn conflicting(&self, p: &warpnet_types::Proposal) -> Option<warpnet_types::Proposal> {
        let signer = self.equivocate.as_ref()?;
        let b = &p.block;
        let mut payload = b.payload().clone();
        payload.push(format!("equivocation-{}", b.round().0).into_bytes());
        let block = Block::new(
            b.epoch(),
            b.round(),
            b.height(),
            b.proposer(),
            b.justify().clone(),
            b.timestamp_ms(),
            payload,
        );
        let config = self.core.config();
        Some(warpnet_types::Proposal::sign(config, block, p.tc.clone(), signer.as_ref()))
    }

    fn handle(&mut self, io: &mut Io, input: Input) -> Result<(), NodeError> {
        let step = self.core.handle(io.clock.now_ms(), input);
        self.execute(io, step)
    }

    /// Executes a step as `warpnet_core::Step` says (the simulator does the same).
    fn execute(&mut self, io: &mut Io, step: Step) -> Result<(), NodeError> {
        let Step { write, messages, serve_sync, serve_epochs, evidence, rejected, deadline_ms } =
            step;
        if let Some(w) = write {
            self.persist(io, w)?;
        }
        for out in messages {
            match out.to {
                Target::One(to) => self.send(io, &to, &out.message),
                Target::All => {
                    io.shared.metrics.message_out(out.message.kind());
                    io.transport.broadcast(&out.message);
                    if let Message::Proposal(p) = &out.message {
                        if let Some(p2) = self.conflicting(p) {
                            io.transport.broadcast(&Message::Proposal(p2));
                        }
                    }
                }
            }
        }
        for (to, request) in serve_sync {
            let response = self.serve_sync(&request)?;
            self.send(io, &to, &Message::SyncResponse(response));
        }
        for (to, from) in serve_epochs {
            // EP4: the ends on disk from `from` on, and the core's latest commit.
            let ends = self.store.epoch_ends(from, warpnet_types::epoch::EPOCH_PROOF_ENDS_MAX)?;
            let latest = self.core.latest_commit().cloned();
            let epoch = self.core.config().epoch();
            let proof = warpnet_types::EpochProofMsg { epoch, ends, latest };
            self.send(io, &to, &Message::EpochProof(proof));
        }
        for ev in evidence {
            self.committee.on_evidence(&ev);
            io.shared.metrics.evidence.inc();
            warn!(signer = %ev.signer, round = %ev.round, "equivocation proven");
        }
        for (from, reason) in rejected {
            io.shared.metrics.rejected(reason.kind());
            debug!(from = ?from, %reason, "input refused");
        }
        self.deadline_ms = deadline_ms;
        Ok(())
    }

    /// To the peer holding `key`.
    fn send(&self, io: &Io, key: &PublicKey, message: &Message) {
        io.shared.metrics.message_out(message.kind());
        if !io.transport.send(key, message) {
            debug!(peer = %key, kind = message.kind(), "not sent: not a peer, or its queue is full");
        }
    }

    /// Queues a step's write. Its commits are applied to the registry now, on the state the
    /// earlier commits left (store + writes in flight); their writes join the same transaction.
    fn persist(&mut self, io: &mut Io, w: Write) -> Result<(), NodeError> {
        let Write { seq, blocks, commits, safety, epoch } = w;
        let next_committee = epoch.as_ref().map(|c| c.next.clone());
        for b in &blocks {
            // R1's verdicts, off the loop, before the block can commit.
            if !b.payload().is_empty() && io.verifier.block(b.id(), b.payload().clone()).is_err() {
                debug!("verifier busy; this block's verdicts are left to its commit");
            }
        }
        for c in &commits {
            log_failed_rounds(&c.block);
        }
        let mut applied = app::Applied::default();
        if !commits.is_empty() {
            let snapshot = self.store.app_snapshot()?;
            applied =
                app::apply(&self.network, &snapshot, &self.overlay, &commits, &mut self.verdicts)?;
            let m = &io.shared.metrics;
            m.verdicts("ahead", applied.ahead as u64);
            m.verdicts("commit", applied.at_commit as u64);
        }
        let applied_at = Instant::now();
        let round = self.core.status().round.0;
        let mut timed = 0;
        let m = io.shared.metrics.clone();
        for (digest, outcome) in &applied.outcomes {
            let barrier = self.barriers.remove(digest).is_some();
            let here = self.submitted.remove(digest);
            if let Some((since, submitted_round)) = here {
                m.claim_stage("submit_to_commit", applied_at.duration_since(since).as_secs_f64());
                m.claim_rounds(round.saturating_sub(submitted_round));
                timed += usize::from(barrier);
            }
            if !barrier {
                // HA1: committed and applied in memory: answered now, before the write that
                // stores the registry's change is durable.
                self.waiters.answer(digest, outcome);
                if here.is_some() {
                    m.claim_stage("commit_to_answer", applied_at.elapsed().as_secs_f64());
                }
            }
        }
        let keys: Vec<Vec<u8>> = applied.writes.iter().map(|(k, _)| k.clone()).collect();
        for (k, v) in &applied.writes {
            self.overlay.insert(k.clone(), (seq, v.clone()));
        }
        for (digest, outcome) in &applied.outcomes {
            self.outcomes_in_flight.insert(*digest, (seq, outcome.clone()));
        }
        let stored = blocks.iter().chain(commits.iter().map(|c| &c.block));
        let ids = stored.map(|b| (b.id(), b.clone())).collect::<Vec<_>>();
        let block_ids = ids.iter().map(|(id, _)| *id).collect();
        self.blocks_in_flight.extend(ids);
        self.in_flight.push_back(InFlight {
            seq,
            outcomes: applied.outcomes,
            keys,
            blocks: block_ids,
            commits: commits.len() as u64,
            applied_at,
            timed,
        });
        let epochs = epoch.into_iter().collect();
        let batch = Batch { blocks, safety, commits, app: applied.writes, epochs };
        self.persister.write(seq, batch).map_err(|_| NodeError::WriterStopped)?;
        // After this write is queued: what the change sets off (re-endorsements, commands)
        // makes later writes, which must follow it.
        match next_committee {
            Some(next) => self.committee_changed(io, next),
            None => Ok(()),
        }
    }

    /// The one place a committed epoch change reaches the node: the core has moved to
    /// `change.next`, and the change is durable with the commits of the same write (EP3).
    /// The transport's peers, the API's committee and the pending changes follow it now.
    fn committee_changed(
        &mut self,
        io: &mut Io,
        next: Arc<ConsensusConfig>,
    ) -> Result<(), NodeError> {
        let now = io.clock.now_ms();
        if let Ok(mut c) = io.shared.committee.write() {
            *c = next.clone();
        }
        let out = self.committee.on_epoch(now, next);
        self.reachable.clear();
        io.transport.set_peers(self.committee.peers(now));
        self.run_membership(io, out)?;
        self.publish_committee(io);
        Ok(())
    }

    /// Runs what the membership module asked for; its commands go to the core (which checks
    /// them again, EP1) and are shared like clients' commands.
    fn run_membership(
        &mut self,
        io: &mut Io,
        out: crate::membership::Outputs,
    ) -> Result<(), NodeError> {
        let commands = self.committee.run(out, &io.transport);
        // A new candidate is a peer from now on (dial-back, catching up).
        io.transport.set_peers(self.committee.peers(io.clock.now_ms()));
        if commands.is_empty() {
            return Ok(());
        }
        let (verdicts, step) = self.core.submit(io.clock.now_ms(), commands);
        for v in verdicts {
            match v {
                Ok(()) => info!("a committee change reached a quorum of endorsements: submitted"),
                Err(reason) => info!(%reason, "a committee change was not submitted"),
            }
        }
        self.execute(io, step)
    }

    /// The committee view the API answers `GET /v1/members` with.
    fn publish_committee(&self, io: &Io) {
        let mut view = self.committee.view(&self.connected);
        crate::health::attach(&mut view, &self.core, &io.shared.metrics);
        if let Ok(mut c) = io.shared.members.lock() {
            *c = view;
        }
    }

    /// Y2: a peer's sync request, from the blocks in flight, the core's tree and the store. A
    /// read error stops the node; it is never taken for a missing block.
    fn serve_sync(
        &self,
        request: &warpnet_types::SyncRequest,
    ) -> Result<warpnet_types::SyncResponse, NodeError> {
        let mut failure = None;
        let response = warpnet_core::sync::respond(request, self.sync_blocks_max, |id| {
            if let Some(b) = self.blocks_in_flight.get(id).or_else(|| self.core.block(id)) {
                return Some(b.clone());
            }
            self.store.block(id).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                None
            })
        });
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(response),
        }
    }

    fn publish(&mut self, io: &Io) {
        let status = self.core.status();
        let m = &io.shared.metrics;
        m.round.set(status.round.0);
        m.committed_height.set(status.committed_height.0);
        m.timeouts(status.round_timeouts);
        let stats = io.transport.stats();
        m.transport(stats.rejected_connections, stats.malformed_frames, stats.dropped_sends);
        m.connected_peers.set(stats.connected.len() as u64);
        let fresh = status.high_qc_round.0 > self.high_qc_round;
        self.high_qc_round = self.high_qc_round.max(status.high_qc_round.0);
        if let Ok(mut s) = io.shared.snapshot.lock() {
            s.node_id = status.member.map_or(u16::MAX, |n| n.0);
            s.epoch = status.epoch.0;
            s.round = status.round.0;
            s.committed_height = status.committed_height.0;
            s.leader = status.leader.0;
            let config = self.core.config();
            s.connected =
                stats.connected.iter().filter_map(|k| config.node_id_of(k)).map(|n| n.0).collect();
            // Every member of the epoch votes; the quorum follows the committee (the API's
            // no_quorum check reads both).
            s.voters = (0..config.total_nodes() as u16).collect();
            s.quorum = config.quorum_threshold();
            if fresh {
                s.last_certificate = Some(std::time::Instant::now());
            }
        }
        self.connected = stats.connected;
    }

    /// Takes client commands and read barriers into the core, which shares the new ones with
    /// every member (M1), and keeps each request waiting for its command's commit.
    fn submit(&mut self, io: &mut Io, requests: Vec<Request>) -> Result<(), NodeError> {
        let mut submissions = Vec::with_capacity(requests.len());
        for r in requests {
            match r {
                Request::Command { command, done } => submissions.push((command, done)),
                Request::Read { done } => {
                    // A barrier command: once it commits here, every earlier commit is applied.
                    let mut nonce = [0u8; warpnet_state::BARRIER_NONCE_BYTES];
                    match getrandom::fill(&mut nonce) {
                        Ok(()) => {
                            let barrier = warpnet_state::Command::Barrier { nonce }.encode();
                            self.barriers.insert(command_digest(&barrier), Instant::now());
                            submissions.push((barrier, done));
                        }
                        Err(e) => refuse(
                            done,
                            Refused::Internal(format!("no randomness for the read barrier: {e}")),
                        ),
                    }
                }
                Request::Member { done, .. } => {
                    let _ = done.send(Err(MemberRefused::Refused(
                        "HotStuff mode changes its committee through endorsed admissions and removals in the log (epochs), not through this endpoint".into(),
                    )));
                }
            }
        }
        if submissions.is_empty() {
            return Ok(());
        }
        let commands = submissions.iter().map(|(c, _)| c.clone()).collect();
        let (verdicts, step) = self.core.submit(io.clock.now_ms(), commands);
        for ((command, done), verdict) in submissions.into_iter().zip(verdicts) {
            let digest = command_digest(&command);
            match verdict {
                // Fresh, or already pending (a retry, or shared by a member): wait for the
                // commit.
                Ok(()) | Err(Rejection::DuplicateCommand) => {
                    let round = self.core.status().round.0;
                    self.submitted.entry(digest).or_insert((Instant::now(), round));
                    self.waiters.wait(digest, done);
                }
                // M2: committed since the API looked. Its outcome is in committed state once
                // the write holding it is durable; until then it is answered from that write
                // (HA1, as its first request was).
                Err(Rejection::AlreadyCommitted) => match self.outcomes_in_flight.get(&digest) {
                    Some((_, outcome)) => {
                        let _ = done.send(Ok(outcome.clone()));
                    }
                    None => refuse(done, Refused::AlreadyCommitted),
                },
                Err(Rejection::MempoolFull { .. }) => refuse(done, Refused::Overloaded),
                Err(reason) => refuse(done, Refused::Invalid(reason.to_string())),
            }
        }
        self.execute(io, step)
    }

    /// PM7: tells the core which members the transport lost or regained. A member not yet
    /// connected after a start counts as unreachable only after [`REACHABILITY_GRACE`].
    fn refresh_reachability(&mut self, io: &mut Io) -> Result<(), NodeError> {
        let keys: Vec<PublicKey> =
            self.core.config().participants().iter().map(|p| p.public_key).collect();
        for peer in keys {
            if peer == io.me {
                continue;
            }
            let now = self.connected.contains(&peer);
            let before = *self.reachable.entry(peer).or_insert(true);
            if now == before || (!now && io.started.elapsed() < REACHABILITY_GRACE) {
                continue;
            }
            self.reachable.insert(peer, now);
            if now {
                info!(peer = %peer, "member reachable again");
            } else {
                warn!(peer = %peer, "member unreachable");
            }
            self.handle(io, Input::Reachability { peer, reachable: now })?;
        }
        Ok(())
    }
}

impl Engine for HotStuff {
    /// A dial-back or a reachability probe finished.
    type Event = Event;

    fn committee(&self) -> Arc<ConsensusConfig> {
        self.core.config().clone()
    }

    fn peers(&self, now_ms: u64) -> Vec<Peer> {
        self.committee.peers(now_ms)
    }

    fn committee_view(&self, connected: &[PublicKey]) -> Committee {
        self.committee.view(connected)
    }

    fn on_control(&mut self, io: &mut Io, control: Control) -> Result<(), NodeError> {
        let out = self.committee.on_control(io.clock.now_ms(), control);
        self.run_membership(io, out)?;
        self.publish_committee(io);
        Ok(())
    }

    fn finished(&self, now_ms: u64) -> bool {
        self.committee.linger_over(now_ms)
    }

    fn start(&mut self, io: &mut Io) -> Result<(), NodeError> {
        let start = self.core.start(io.clock.now_ms());
        self.execute(io, start)?;
        self.publish(io);
        Ok(())
    }

    /// A member's message: shared commands go to the verifier first, all else to the core.
    fn on_message(
        &mut self,
        io: &mut Io,
        from: PublicKey,
        message: Message,
    ) -> Result<(), NodeError> {
        io.shared.metrics.message_in(message.kind());
        match message {
            // M1: every shared command's signature is checked before the mempool takes it,
            // whatever the epoch the frame names (commands are valid in any epoch).
            Message::Commands(c) => {
                if io.verifier.shared(from, c.commands).is_err() {
                    io.shared.metrics.rejected("shared_commands_dropped");
                }
                Ok(())
            }
            // A member configured for Raft mode: its committee file says another consensus.
            Message::Raft(_) => {
                io.shared.metrics.rejected("wrong_consensus");
                debug!(peer = %from, "dropped a Raft frame: this network runs HotStuff");
                Ok(())
            }
            // Committee-change gossip is for the operators' side, not the core.
            Message::Membership(m) => {
                let out = self.committee.on_gossip(io.clock.now_ms(), &from, m);
                self.run_membership(io, out)?;
                self.publish_committee(io);
                Ok(())
            }
            message => self.handle(io, Input::Message { from, message }),
        }
    }

    fn on_requests(&mut self, io: &mut Io, requests: Vec<Request>) -> Result<(), NodeError> {
        self.submit(io, requests)
    }

    /// Shared commands whose signatures checked out enter the mempool (M1); a block's verdicts
    /// wait for its commit.
    fn on_checked(&mut self, io: &mut Io, checked: Checked) -> Result<(), NodeError> {
        match checked {
            Checked::Shared(from, commands) => {
                let epoch = self.core.config().epoch();
                let message = Message::Commands(warpnet_types::SharedCommands { epoch, commands });
                self.handle(io, Input::Message { from, message })
            }
            Checked::Block(id, verdicts) => {
                if self.verdicts.len() >= VERDICTS_MAX {
                    self.verdicts.clear();
                }
                self.verdicts.insert(id, verdicts);
                Ok(())
            }
        }
    }

    /// Not reported in HotStuff mode (its writer is started without `Synced` reports: see
    /// `runtime::hotstuff`, measured). Were it, releasing votes here would be safe (W4).
    fn on_synced(&mut self, _io: &mut Io, _seq: u64) -> Result<(), NodeError> {
        Ok(())
    }

    /// Writes up to `durable.seq` are durable and in the store: answer what waited for them
    /// (read barriers, whose lookups read the store), forget them from the in-flight views
    /// (W4: not before, or a read could miss them), and tell the core (which releases what
    /// it sealed behind them, S1b).
    fn on_durable(&mut self, io: &mut Io, durable: Durable) -> Result<(), NodeError> {
        let m = io.shared.metrics.clone();
        while self.in_flight.front().is_some_and(|w| w.seq <= durable.seq) {
            let Some(w) = self.in_flight.pop_front() else { break };
            // Counted once durable: /metrics never shows a commit the disk does not hold.
            m.commits.inc_by(w.commits);
            let waited = w.applied_at.elapsed().as_secs_f64();
            for _ in 0..w.timed {
                m.claim_stage("commit_to_answer", waited);
            }
            for key in w.keys {
                if self.overlay.get(&key).is_some_and(|(s, _)| *s <= w.seq) {
                    self.overlay.remove(&key);
                }
            }
            for id in w.blocks {
                self.blocks_in_flight.remove(&id);
            }
            for (digest, outcome) in w.outcomes {
                if self.outcomes_in_flight.get(&digest).is_some_and(|(s, _)| *s <= w.seq) {
                    self.outcomes_in_flight.remove(&digest);
                }
                m.applied(app::outcome_name(&outcome));
                self.waiters.answer(&digest, &outcome);
            }
        }
        self.handle(io, Input::Persisted { seq: durable.seq })
    }

    fn on_deadline(&mut self, io: &mut Io) -> Result<(), NodeError> {
        self.handle(io, Input::Tick)
    }

    fn on_event(&mut self, io: &mut Io, event: Self::Event) -> Result<(), NodeError> {
        let now = io.clock.now_ms();
        match event {
            Event::DialBack(probed) => {
                let out = self.committee.on_probed(now, probed);
                self.run_membership(io, out)?;
                self.publish_committee(io);
            }
            Event::Reach(key, ok) => self.committee.on_reach(now, key, ok),
        }
        Ok(())
    }

    fn deadline_ms(&self) -> Option<u64> {
        self.deadline_ms
    }

    fn after_event(&mut self, io: &mut Io) -> Result<(), NodeError> {
        self.refresh_reachability(io)?;
        self.publish(io);
        Ok(())
    }

    /// Once a second: waiters, candidates to dial back again, the peer set (a previous
    /// committee's linger ends), the committee view.
    fn prune(&mut self, io: &mut Io) -> Result<(), NodeError> {
        self.waiters.prune();
        self.submitted.retain(|_, (since, _)| since.elapsed() < PENDING_FORGET);
        self.barriers.retain(|_, since| since.elapsed() < PENDING_FORGET);
        // H2: probe the members at their advertised addresses; the core attests who answered.
        if let Some(peers) = self.committee.reach(io.clock.now_ms()) {
            self.handle(io, Input::Reached { peers })?;
        }
        let redial = self.committee.redial(io.clock.now_ms());
        self.run_membership(io, redial)?;
        self.publish_committee(io);
        Ok(())
    }

    fn stop(&mut self) {
        self.persister.stop();
    }
}

/// LR2, LR5: a committed block that follows failed rounds names, as the chain agreed, who led
/// them and which members signed the TC that ended the last one: the line to read when
/// commits stall.
fn log_failed_rounds(b: &Block) {
    let h = b.health();
    if h.failed.is_empty() {
        return;
    }
    let blamed: Vec<String> = h.failed.iter().map(|(id, n)| format!("{id}×{n}")).collect();
    let tc_signers: Vec<String> = h.timeouts.iter().map(|id| id.to_string()).collect();
    info!(
        height = b.height().0,
        round = b.round().0,
        after_round = b.justify().round().0,
        failed_leaders = %blamed.join(","),
        tc_signers = %tc_signers.join(","),
        "committed block after failed rounds"
    );
}
