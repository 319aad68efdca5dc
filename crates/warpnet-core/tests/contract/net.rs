//! A synchronous in-memory network of cores, for the scenarios that need a whole committee.
//!
//! It delivers messages in FIFO order, reports every write durable at once (`Persisted` is
//! handled before anything else queued), serves sync from each member's stored blocks, and
//! moves time only when a test fires timers, so a timer fires only when the test says so. It
//! checks C1 at every step: each member commits heights in order, each exactly once, each block
//! certified, and the highest block of a commit step has a child in the next round whose QC
//! that member holds.

use std::collections::{HashMap, HashSet, VecDeque};

use warpnet_core::{
    Committed, Equivocation, Input, Outgoing, Recovery, Rejection, Step, Target, Timer,
};
use warpnet_types::{Block, BlockId, Message, NodeId};

use crate::fixtures::{id_of, key, Committee, Member, SYNC_BLOCKS_MAX};

/// Decides whether the network loses a message from one member to another.
pub type DropRule = Box<dyn Fn(NodeId, NodeId, &Message) -> bool>;

/// What the network hands a member next. (Unboxed like `Input` itself: a test queue.)
#[allow(clippy::large_enum_variant)]
enum Event {
    Input(NodeId, Input),
    /// A client's command, submitted to that member.
    Submit(NodeId, Vec<u8>),
}

pub struct Net {
    pub c: Committee,
    pub members: Vec<Member>,
    queue: VecDeque<Event>,
    now: u64,
    steps: usize,
    /// Blocks stored by each member (genesis included).
    stores: Vec<HashMap<BlockId, Block>>,
    /// Commits of each member, one entry per step that committed.
    pub commits: Vec<Vec<Vec<Committed>>>,
    /// Every block seen on the wire.
    wire_blocks: HashMap<BlockId, Block>,
    /// Blocks each member received a QC for (in a message).
    qcs: Vec<HashSet<BlockId>>,
    /// Votes each member received, by block.
    votes: Vec<HashMap<BlockId, HashSet<NodeId>>>,
    /// Everything refused: (by whom, from whom, why); client commands' verdicts included.
    pub rejections: Vec<(NodeId, Option<NodeId>, Rejection)>,
    evidence: Vec<Equivocation>,
    /// Which messages the network loses (none by default).
    pub drop: DropRule,
}

impl Net {
    pub fn new(n: usize) -> Self {
        let c = Committee::new(n);
        let ids = c.ids();
        let members = ids.iter().map(|&id| c.core(id, Recovery::genesis(&c.config))).collect();
        let g = c.genesis();
        Self {
            members,
            queue: VecDeque::new(),
            now: 0,
            steps: 0,
            stores: ids.iter().map(|_| HashMap::from([(g.id(), g.clone())])).collect(),
            commits: ids.iter().map(|_| Vec::new()).collect(),
            wire_blocks: HashMap::new(),
            qcs: ids.iter().map(|_| HashSet::new()).collect(),
            votes: ids.iter().map(|_| HashMap::new()).collect(),
            rejections: Vec::new(),
            evidence: Vec::new(),
            drop: Box::new(|_, _, _| false),
            c,
        }
    }

    pub fn start(&mut self) {
        for id in self.c.ids() {
            let step = self.members[id.index()].start_step(self.now);
            self.apply(id, step);
        }
    }

    /// Every member submits `cmd` (as if a client sent it to each).
    pub fn submit_everywhere(&mut self, cmd: &[u8]) {
        for id in self.c.ids() {
            self.queue.push_back(Event::Submit(id, cmd.to_vec()));
        }
    }

    fn deliver(&mut self, event: Event) {
        self.steps += 1;
        let (to, step) = match event {
            Event::Submit(to, cmd) => {
                let (verdicts, step) = self.members[to.index()].submit_step(self.now, vec![cmd]);
                for v in verdicts {
                    if let Err(reason) = v {
                        self.rejections.push((to, None, reason));
                    }
                }
                (to, step)
            }
            Event::Input(to, input) => {
                if let Input::Message { from, message } = &input {
                    self.observe(to, id_of(from), message);
                }
                (to, self.members[to.index()].step(self.now, input))
            }
        };
        self.apply(to, step);
    }

    /// Records the certificates and votes a member receives, for the C1 check.
    fn observe(&mut self, to: NodeId, from: NodeId, message: &Message) {
        let i = to.index();
        match message {
            Message::Proposal(p) => {
                self.qcs[i].insert(p.block.justify().block_id());
            }
            Message::Timeout(t) => {
                self.qcs[i].insert(t.timeout.high_qc.block_id());
            }
            Message::Vote(v) => {
                self.votes[i].entry(v.block_id).or_default().insert(from);
            }
            Message::SyncResponse(r) => {
                for b in &r.blocks {
                    self.qcs[i].insert(b.justify().block_id());
                }
            }
            Message::SyncRequest(_)
            | Message::Commands(_)
            | Message::EpochRequest(_)
            | Message::EpochProof(_)
            | Message::Raft(_)
            | Message::Membership(_)
            | Message::Attestation(_) => {}
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        if !(self.drop)(from, to, &message) {
            let from = key(from);
            self.queue.push_back(Event::Input(to, Input::Message { from, message }));
        }
    }

    /// Executes a step as the contract says: write, messages, sync, evidence and rejections.
    fn apply(&mut self, me: NodeId, step: Step) {
        let i = me.index();
        let Step { write, messages, serve_sync, serve_epochs, evidence, rejected, deadline_ms: _ } =
            step;
        assert!(serve_epochs.is_empty(), "one epoch in these tests");
        if let Some(w) = write {
            for b in w.blocks {
                self.stores[i].insert(b.id(), b);
            }
            if !w.commits.is_empty() {
                self.check_commit_step(me, &w.commits);
                self.commits[i].push(w.commits);
            }
            self.queue.push_front(Event::Input(me, Input::Persisted { seq: w.seq }));
        }
        for Outgoing { to, message } in messages {
            match to {
                Target::One(to) => self.send(me, id_of(&to), message),
                Target::All => {
                    if let Message::Proposal(p) = &message {
                        self.wire_blocks.insert(p.block.id(), p.block.clone());
                    }
                    for to in self.c.other_than(&[me]) {
                        self.send(me, to, message.clone());
                    }
                }
            }
        }
        for (to, request) in serve_sync {
            let store = &self.stores[i];
            let response =
                warpnet_core::sync::respond(&request, usize::from(SYNC_BLOCKS_MAX), |id| {
                    store.get(id).cloned()
                });
            self.send(me, id_of(&to), Message::SyncResponse(response));
        }
        self.evidence.extend(evidence);
        self.rejections.extend(rejected.into_iter().map(|(from, reason)| (me, from, reason)));
    }

    /// C1 at the moment of committing.
    fn check_commit_step(&self, me: NodeId, step: &[Committed]) {
        let i = me.index();
        let mut prev = self.commits[i]
            .last()
            .and_then(|s| s.last())
            .map_or_else(|| self.c.genesis(), |x| x.block.clone());
        for x in step {
            assert_eq!(
                x.block.height(),
                prev.height().next(),
                "{me}: heights in order, none skipped"
            );
            assert_eq!(x.block.parent(), prev.id(), "{me}: the committed chain links up");
            assert_eq!(x.certificate.block_id(), x.block.id(), "{me}: certificate names the block");
            assert_eq!(x.certificate.round(), x.block.round());
            assert_eq!(x.certificate.validate(&self.c.config), Ok(()), "{me}: a valid QC");
            prev = x.block.clone();
        }
        let top = &step[step.len() - 1].block;
        let child_certified = self.wire_blocks.values().any(|child| {
            child.parent() == top.id()
                && child.round() == top.round().next()
                && (self.qcs[i].contains(&child.id())
                    || self.votes[i].get(&child.id()).map_or(0, HashSet::len) + 1 >= self.c.q())
        });
        assert!(
            child_certified,
            "{me} committed {top:?} without holding a QC for a child in round {}",
            top.round().next()
        );
    }

    /// Delivers everything queued, and what that causes, until the network is quiet.
    pub fn run(&mut self) {
        while let Some(event) = self.queue.pop_front() {
            self.deliver(event);
            assert!(self.steps < 50_000, "the network does not quiesce");
        }
    }

    /// Fires every member's propose timer armed for its current round: time moves to its
    /// deadline and the member is woken (`Tick`).
    pub fn fire_propose_timers(&mut self) {
        for id in self.c.ids() {
            let m = &self.members[id.index()];
            if let Some(at) = m.deadline(Timer::Propose(m.status().round)) {
                self.now = self.now.max(at);
                self.queue.push_back(Event::Input(id, Input::Tick));
            }
        }
        self.run();
    }

    /// Fires every member's round timer (each is armed for its current round): time moves to
    /// the latest of their deadlines and every member is woken.
    pub fn fire_round_timers(&mut self) {
        for id in self.c.ids() {
            let m = &self.members[id.index()];
            let at = m.deadline(Timer::Round(m.status().round)).expect("a round timer");
            self.now = self.now.max(at);
        }
        for id in self.c.ids() {
            self.queue.push_back(Event::Input(id, Input::Tick));
        }
        self.run();
    }

    pub fn committed_chain(&self, id: NodeId) -> Vec<Block> {
        self.commits[id.index()].iter().flatten().map(|x| x.block.clone()).collect()
    }

    /// Agreement and exactly-once delivery of `cmds`, over the whole run.
    pub fn check_agreement_and_payloads(&self, cmds: &[Vec<u8>]) {
        let chains: Vec<Vec<Block>> =
            self.c.ids().iter().map(|&id| self.committed_chain(id)).collect();
        let longest = chains.iter().max_by_key(|c| c.len()).unwrap();
        for chain in &chains {
            assert_eq!(chain[..], longest[..chain.len()], "all members commit the same blocks");
        }
        let ordered: Vec<&Vec<u8>> = longest.iter().flat_map(|b| b.payload().iter()).collect();
        for c in cmds {
            let n = ordered.iter().filter(|x| **x == c).count();
            assert_eq!(n, 1, "command {:?} committed exactly once", String::from_utf8_lossy(c));
        }
        assert!(self.evidence.is_empty(), "no equivocation among honest members");
    }
}
