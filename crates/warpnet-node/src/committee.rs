//! The node's side of committee changes at run time: who the transport talks to in each epoch,
//! the operators' pending changes ([`crate::membership`]) and their gossip, dial-back probes,
//! and a removed member's lingering (EP5).
//!
//! Peers (the transport's admitted keys) are, in every epoch: the committee; the previous
//! committee for `linger_ms` after a change (its removed members still serve epoch proofs and
//! blocks, and may still be catching up); candidates whose admission is pending (they are
//! dialed back and may catch up before they are admitted); and, while this node is not a
//! member, the bootstrap nodes `node join` wrote (so a joining node can learn the epochs it
//! missed: aptos-core #3955, the last holder of a proof leaving, is why a joiner does not rely
//! on its genesis committee alone).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use warpnet_net::{Peer, Transport, TransportConfig};
use warpnet_types::evidence::Equivocation;
use warpnet_types::{
    ConsensusConfig, Encode, Epoch, MembershipGossip, MembershipMsg, Message, PublicKey,
};

use crate::handle::{Committee, Control, EvidenceView, MemberView};
use crate::membership::operator::Action;
use crate::membership::{Membership, Outputs, PendingView, Policy, Refusal};

/// Most recent equivocations kept for `GET /v1/evidence`.
const EVIDENCE_KEPT: usize = 64;

/// A dial-back's result: the candidate's key, and whether it answered at its address.
pub type Probed = (PublicKey, Result<(), String>);

/// What the HotStuff engine's background probes report to the loop.
#[derive(Debug)]
pub enum Event {
    /// A candidate's dial-back finished.
    DialBack(Probed),
    /// H2: a member's reachability probe finished (whether it answered at its address).
    Reach(PublicKey, bool),
}

pub struct CommitteeDriver {
    config: Arc<ConsensusConfig>,
    me: PublicKey,
    /// Earlier epochs' committees and until when (node clock, ms) each stays among the peers
    /// (several, when changes follow each other faster than `linger_ms`).
    previous: Vec<(Arc<ConsensusConfig>, u64)>,
    bootstrap: Vec<Peer>,
    membership: Membership,
    linger_ms: u64,
    /// When this node left the committee (EP5: it stops `linger_ms` later).
    removed_at_ms: Option<u64>,
    /// Per member: the first epoch of its current run of memberships.
    since: HashMap<PublicKey, u64>,
    evidence: VecDeque<EvidenceView>,
    transport: TransportConfig,
    probes: mpsc::UnboundedSender<Event>,
    /// H2: reachability probes of the members.
    reach: crate::reach::Reach,
}

/// The committee's members as transport peers.
pub fn peers_of(config: &ConsensusConfig) -> Vec<Peer> {
    config
        .participants()
        .iter()
        .map(|p| Peer { key: p.public_key, address: p.address.clone() })
        .collect()
}

impl CommitteeDriver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<ConsensusConfig>,
        signer: Arc<dyn warpnet_types::Signer>,
        policy: Policy,
        linger_ms: u64,
        bootstrap: Vec<Peer>,
        since: HashMap<PublicKey, u64>,
        transport: TransportConfig,
        probes: mpsc::UnboundedSender<Event>,
    ) -> Self {
        let me = signer.public_key();
        let membership = Membership::new(config.clone(), signer, policy);
        Self {
            config,
            me,
            previous: Vec::new(),
            bootstrap,
            membership,
            linger_ms,
            removed_at_ms: None,
            since,
            evidence: VecDeque::new(),
            transport,
            probes,
            reach: crate::reach::Reach::default(),
        }
    }

    pub fn is_member(&self) -> bool {
        self.config.node_id_of(&self.me).is_some()
    }

    /// The transport's peers now.
    pub fn peers(&self, now_ms: u64) -> Vec<Peer> {
        let mut peers = peers_of(&self.config);
        for (prev, until) in &self.previous {
            if now_ms < *until {
                peers.extend(peers_of(prev));
            }
        }
        peers.extend(
            self.membership.candidates().into_iter().map(|(key, address)| Peer { key, address }),
        );
        if !self.is_member() {
            peers.extend(self.bootstrap.iter().cloned());
        }
        let mut seen = std::collections::HashSet::new();
        peers.retain(|p| seen.insert(p.key));
        peers
    }

    /// EP3 happened: `next` is the committee now. Returns what the membership module re-sends.
    pub fn on_epoch(&mut self, now_ms: u64, next: Arc<ConsensusConfig>) -> Outputs {
        let was_member = self.is_member();
        let old = std::mem::replace(&mut self.config, next.clone());
        self.previous.retain(|(_, until)| now_ms < *until);
        self.previous.push((old, now_ms.saturating_add(self.linger_ms)));
        let epoch = next.epoch().0;
        self.since.retain(|k, _| next.node_id_of(k).is_some());
        for p in next.participants() {
            self.since.entry(p.public_key).or_insert(epoch);
        }
        match (was_member, self.is_member()) {
            (true, false) => {
                self.removed_at_ms = Some(now_ms);
                warn!(
                    epoch,
                    linger_ms = self.linger_ms,
                    "this node was removed from the committee: it serves epoch proofs and blocks for the linger period, then stops"
                );
            }
            (false, true) => info!(epoch, "this node is a member of the committee now"),
            _ => {}
        }
        info!(
            epoch,
            members = next.total_nodes(),
            quorum = next.quorum_threshold(),
            "the committee changed"
        );
        self.membership.on_epoch(next)
    }

    /// EP5: a removed member stops once it lingered.
    pub fn linger_over(&self, now_ms: u64) -> bool {
        self.removed_at_ms.is_some_and(|at| now_ms >= at.saturating_add(self.linger_ms))
    }

    /// A request from the API; the answer goes back on its channel.
    pub fn on_control(&mut self, now_ms: u64, control: Control) -> Outputs {
        match control {
            Control::Admission { admission, done } => {
                let key = admission.candidate.public_key;
                let result = self.membership.on_admission(now_ms, admission);
                self.answer(result, &key, done)
            }
            Control::Operator { action, done } => {
                let (key, result) = match action {
                    Action::Endorse { public_key } => match PublicKey::from_hex(&public_key) {
                        Ok(key) => (key, self.membership.endorse_candidate(&key)),
                        Err(_) => {
                            let _ = done.send(Err(Refusal::UnknownCandidate { key: public_key }));
                            return Outputs::default();
                        }
                    },
                    Action::Remove { public_key, reason } => match PublicKey::from_hex(&public_key)
                    {
                        Ok(key) => (key, self.membership.remove(now_ms, key, reason)),
                        Err(_) => {
                            let _ = done.send(Err(Refusal::UnknownCandidate { key: public_key }));
                            return Outputs::default();
                        }
                    },
                };
                self.answer(result, &key, done)
            }
        }
    }

    fn answer(
        &self,
        result: Result<Outputs, Refusal>,
        key: &PublicKey,
        done: tokio::sync::oneshot::Sender<Result<PendingView, Refusal>>,
    ) -> Outputs {
        match result {
            Ok(out) => {
                let view = self.view_of(key);
                let _ = done.send(view.ok_or(Refusal::UnknownCandidate { key: key.to_hex() }));
                out
            }
            Err(refusal) => {
                info!(key = %key, %refusal, "committee change refused");
                let _ = done.send(Err(refusal));
                Outputs::default()
            }
        }
    }

    fn view_of(&self, key: &PublicKey) -> Option<PendingView> {
        let hex = key.to_hex();
        self.membership.pending().into_iter().find(|p| p.public_key == hex)
    }

    /// Gossip from a peer.
    pub fn on_gossip(&mut self, now_ms: u64, from: &PublicKey, msg: MembershipMsg) -> Outputs {
        let result = match msg.gossip {
            MembershipGossip::Admission(a) => self.membership.on_admission(now_ms, a),
            MembershipGossip::Endorsement { what, endorsement } => {
                self.membership.on_endorsement(now_ms, msg.epoch.0, what, endorsement)
            }
        };
        result.unwrap_or_else(|refusal| {
            debug!(peer = %from, %refusal, "membership gossip refused");
            Outputs::default()
        })
    }

    /// Candidates to dial back again (their last dial-back failed or has not answered).
    pub fn redial(&mut self, now_ms: u64) -> Outputs {
        Outputs { dial_back: self.membership.redial(now_ms), ..Outputs::default() }
    }

    /// A dial-back finished.
    pub fn on_probed(&mut self, now_ms: u64, (key, result): Probed) -> Outputs {
        match &result {
            Ok(()) => {
                info!(candidate = %key, "dial-back passed: the candidate answers at its address")
            }
            Err(e) => warn!(candidate = %key, error = %e, "dial-back failed"),
        }
        self.membership.on_dial_back(now_ms, &key, result)
    }

    /// H2: starts a round of reachability probes of the members if one is due; returns the
    /// members reached lately if the core should be told (`Input::Reached`).
    pub fn reach(&mut self, now_ms: u64) -> Option<Vec<PublicKey>> {
        self.reach.maybe_probe(now_ms, &self.config, &self.me, &self.transport, &self.probes);
        self.reach.due_report(now_ms, &self.config)
    }

    /// H2: a member's reachability probe finished.
    pub fn on_reach(&mut self, now_ms: u64, key: PublicKey, ok: bool) {
        self.reach.on_probed(now_ms, key, ok);
    }

    /// Sends the gossip, starts the dial-backs; returns the commands to submit.
    pub fn run(&self, out: Outputs, transport: &Transport) -> Vec<Vec<u8>> {
        for gossip in out.gossip {
            transport.broadcast(&Message::Membership(gossip));
        }
        for (key, address) in out.dial_back {
            let (cfg, probes) = (self.transport.clone(), self.probes.clone());
            tokio::spawn(async move {
                let result =
                    warpnet_net::probe(&cfg, &address, key).await.map_err(|e| e.to_string());
                let _ = probes.send(Event::DialBack((key, result)));
            });
        }
        out.commands
    }

    /// E1 proved an equivocation (EV1 in the core turns it into a removal).
    pub fn on_evidence(&mut self, ev: &Equivocation) {
        let signer = self.config.public_key(ev.signer).map(|k| k.to_hex()).unwrap_or_default();
        if self.evidence.len() >= EVIDENCE_KEPT {
            self.evidence.pop_front();
        }
        self.evidence.push_back(EvidenceView {
            epoch: ev.epoch.0,
            round: ev.round.0,
            signer,
            kind: match ev.first {
                warpnet_types::evidence::Statement::Proposal { .. } => "proposal",
                warpnet_types::evidence::Statement::Vote { .. } => "vote",
                warpnet_types::evidence::Statement::Timeout { .. } => "timeout",
            }
            .into(),
            evidence: hex::encode(ev.to_bytes()),
        });
    }

    /// The view `GET /v1/members` answers.
    pub fn view(&self, connected: &[PublicKey]) -> Committee {
        let c = &self.config;
        Committee {
            epoch: c.epoch().0,
            node_id: c.node_id_of(&self.me).map(|n| n.0),
            quorum_threshold: c.quorum_threshold(),
            members_min: c.members_min(),
            members: c
                .participants()
                .iter()
                .enumerate()
                .map(|(i, p)| MemberView {
                    node_id: i as u16,
                    public_key: p.public_key.to_hex(),
                    p2p_address: p.address.clone(),
                    api_address: p.api_address.clone(),
                    public: p.public,
                    member_since_epoch: self.since.get(&p.public_key).copied().unwrap_or(0),
                    connected: p.public_key == self.me || connected.contains(&p.public_key),
                    health: None,
                })
                .collect(),
            learners: Vec::new(),
            pending: self.membership.pending(),
            retired: c.retired().iter().map(|k| k.to_hex()).collect(),
            evidence: self.evidence.iter().cloned().collect(),
            health: None,
            routing: None,
        }
    }
}

/// Per member of `config`, the first epoch of its current run of memberships, from the
/// committees the store holds (`at(e)`: epoch e's committee).
pub fn member_since(
    config: &ConsensusConfig,
    genesis: &ConsensusConfig,
    mut at: impl FnMut(Epoch) -> Option<Arc<ConsensusConfig>>,
) -> HashMap<PublicKey, u64> {
    let mut since = HashMap::new();
    for p in config.participants() {
        let mut first = config.epoch().0;
        while first > 0 {
            let prev = Epoch(first - 1);
            let c = if prev.0 == genesis.epoch().0 {
                Some(Arc::new(genesis.clone()))
            } else {
                at(prev)
            };
            match c {
                Some(c) if c.node_id_of(&p.public_key).is_some() => first -= 1,
                _ => break,
            }
        }
        since.insert(p.public_key, first);
    }
    since
}
