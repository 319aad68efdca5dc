//! A tiny synchronous cluster of engines for contract tests: messages are queued and
//! delivered in order, writes are durable at once unless a node holds them back.

#![allow(dead_code)]

use std::collections::VecDeque;

use warpnet_raft::{
    Action, Applied, EngineConfig, Input, LogWrite, Member, Membership, RaftEngine, RaftMessage,
    RaftParams, ReadId, Recovery, Role, WriteId,
};
use warpnet_types::NodeId;

pub struct Node {
    pub engine: RaftEngine,
    pub up: bool,
    /// Writes durable at once (false: they wait in `unpersisted`).
    pub auto_persist: bool,
    pub unpersisted: Vec<LogWrite>,
    pub applied: Vec<Applied>,
    pub reads: Vec<(ReadId, Option<u64>)>,
    pub sent: Vec<RaftMessage>,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub queue: VecDeque<RaftMessage>,
}

pub fn member(id: u16, public: bool) -> Member {
    Member { id: NodeId(id), public }
}

pub fn config(id: u16, seed: u64) -> EngineConfig {
    EngineConfig { me: NodeId(id), params: RaftParams::default(), seed }
}

impl Cluster {
    /// `publics[i]`: whether founding member i is public.
    pub fn new(publics: &[bool]) -> Self {
        Self::with_params(publics, RaftParams::default())
    }

    /// Founding members with these engine parameters (joining members get them too).
    pub fn with_params(publics: &[bool], params: RaftParams) -> Self {
        let membership = Membership::new(
            publics.iter().enumerate().map(|(i, &p)| member(i as u16, p)).collect(),
        );
        let nodes = (0..publics.len())
            .map(|i| {
                let config = EngineConfig { params: params.clone(), ..config(i as u16, 7) };
                let engine = RaftEngine::new(config, Recovery::genesis(membership.clone()))
                    .expect("genesis recovers");
                Node::new(engine)
            })
            .collect();
        Self { nodes, queue: VecDeque::new() }
    }

    pub fn add_joining(&mut self, id: u16) {
        let params = self.nodes.first().map(|n| n.engine.params().clone()).unwrap_or_default();
        let config = EngineConfig { params, ..config(id, 7) };
        let engine = RaftEngine::new(config, Recovery::joining()).expect("joining recovers");
        assert_eq!(self.nodes.len(), id as usize);
        self.nodes.push(Node::new(engine));
    }

    pub fn input(&mut self, i: usize, input: Input) -> Result<(), warpnet_raft::RaftError> {
        let actions = self.nodes[i].engine.handle(input)?;
        self.execute(i, actions);
        Ok(())
    }

    fn execute(&mut self, i: usize, actions: Vec<Action>) {
        let mut durable = None;
        let mut wanted = None;
        for a in actions {
            match a {
                Action::Send(m) => {
                    self.nodes[i].sent.push(m.clone());
                    self.queue.push_back(m);
                }
                Action::Persist(w) if self.nodes[i].auto_persist => durable = Some(w.id),
                Action::Persist(w) => self.nodes[i].unpersisted.push(w),
                Action::Apply(a) => self.nodes[i].applied.push(a),
                Action::ReadReady { id, index } => self.nodes[i].reads.push((id, Some(index))),
                Action::ReadFailed { id } => self.nodes[i].reads.push((id, None)),
                Action::SnapshotWanted { applied } => wanted = Some(applied),
            }
        }
        if let Some(id) = durable {
            self.input(i, Input::Persisted(id)).expect("a write we were given");
        }
        if let Some(index) = wanted {
            let data = format!("state@{index}").into_bytes();
            let _ = self.input(i, Input::Compact { index, data });
        }
    }

    /// Makes node i's held-back writes durable.
    pub fn flush(&mut self, i: usize) {
        if let Some(last) = self.nodes[i].unpersisted.drain(..).map(|w| w.id).max() {
            self.input(i, Input::Persisted(last)).expect("a write we were given");
        }
    }

    pub fn deliver(&mut self) {
        let mut budget = 100_000;
        while let Some(m) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "messages never settle");
            let (Some(to), Some(from)) = (m.to(), m.from()) else { continue };
            let to = to.index();
            if to >= self.nodes.len() || !self.nodes[to].up || !self.nodes[from.index()].up {
                continue;
            }
            if let Err(e) = self.input(to, Input::Message { from, message: m }) {
                if std::env::var("DBG").is_ok() {
                    eprintln!("refused at {to}: {e}");
                }
            }
        }
    }

    /// `n` rounds of: every running node ticks, then messages settle.
    pub fn run(&mut self, n: usize) {
        for _ in 0..n {
            for i in 0..self.nodes.len() {
                if self.nodes[i].up {
                    self.input(i, Input::Tick).expect("ticks are never refused");
                }
            }
            self.deliver();
        }
    }

    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .find(|&i| self.nodes[i].up && self.nodes[i].engine.status().role == Role::Leader)
    }

    pub fn commands(&self, i: usize) -> Vec<Vec<u8>> {
        self.nodes[i]
            .applied
            .iter()
            .filter_map(|a| match a {
                Applied::Command { data, .. } => Some(data.clone()),
                _ => None,
            })
            .collect()
    }
}

impl Node {
    fn new(engine: RaftEngine) -> Self {
        Self {
            engine,
            up: true,
            auto_persist: true,
            unpersisted: Vec::new(),
            applied: Vec::new(),
            reads: Vec::new(),
            sent: Vec::new(),
        }
    }
}

pub fn last_write(actions: &[Action]) -> Option<WriteId> {
    actions.iter().filter_map(|a| if let Action::Persist(w) = a { Some(w.id) } else { None }).max()
}
