//! Raft mode's voter changes on the node's loop: operators' requests (`Engine::on_control`),
//! dial-backs, voter requests proposed and, on the leader, made (AddVoter / RemoveServer,
//! leadership handed over first when the leader itself goes), and the roster, the transport's
//! peers and this member's own removal following the applied membership (RV5–RV7).

use std::collections::HashSet;

use tracing::{info, warn};
use warpnet_net::Peer;
use warpnet_raft::{Input, Membership};
use warpnet_types::{Encode, NodeId, PublicKey};

use super::raft::{Raft, RaftEvent};
use super::raft_roster::{id_of, Roster, VoterRequest};
use super::raft_voters::{Todo, LINGER_MS};
use super::{Engine, Io};
use crate::handle::Control;
use crate::membership::operator::Action;
use crate::membership::Refusal;
use crate::runtime::NodeError;

impl Raft {
    /// An admission or an operator's instruction (`Engine::on_control` in Raft mode).
    pub(super) fn control(&mut self, io: &mut Io, control: Control) -> Result<(), NodeError> {
        let now = io.clock.now_ms();
        let m = self.engine.status().membership;
        let (result, done) = match control {
            Control::Admission { admission, done } => {
                (self.voters.on_admission(&self.config, &m, admission), done)
            }
            Control::Operator { action, done } => {
                let key = match &action {
                    Action::Endorse { public_key } | Action::Remove { public_key, .. } => {
                        PublicKey::from_hex(public_key)
                    }
                };
                let Ok(key) = key else {
                    let _ = done.send(Err(Refusal::UnknownCandidate { key: String::new() }));
                    return Ok(());
                };
                let result = match action {
                    Action::Endorse { .. } => self.voters.endorse(now, &self.config, &m, key),
                    Action::Remove { reason, .. } => {
                        info!(member = %key, %reason, "removal approved by this node's operator");
                        let min = self.settings.voters_min;
                        self.voters.remove(now, &self.config, &m, min, key)
                    }
                };
                (result, done)
            }
        };
        match result {
            Ok((view, todo)) => {
                let _ = done.send(Ok(view));
                self.run_todo(io, todo)?;
            }
            Err(refusal) => {
                info!(%refusal, "voter change refused");
                let _ = done.send(Err(refusal));
            }
        }
        self.publish_committee(io);
        Ok(())
    }

    /// Dials candidates back and proposes approved changes (as voter request entries).
    pub(super) fn run_todo(&mut self, io: &mut Io, todo: Todo) -> Result<(), NodeError> {
        for (key, address) in todo.dial_back {
            let (cfg, events) = (self.transport_config.clone(), self.events.clone());
            tokio::spawn(async move {
                let result =
                    warpnet_net::probe(&cfg, &address, key).await.map_err(|e| e.to_string());
                let _ = events.send(RaftEvent::Probed((key, result)));
            });
        }
        for r in todo.propose {
            match self.input(io, Input::Propose(r.encode()))? {
                Ok(()) => info!(key = %r.key(), "voter request proposed"),
                // Sent again by `resend` once a leader is known.
                Err(e) => info!(key = %r.key(), error = %e, "voter request not proposed yet"),
            }
        }
        Ok(())
    }

    /// After every event: the roster and the transport's peers follow the applied membership
    /// (RV5, RV6), a removed member stops (RV7), and the leader acts on committed requests.
    pub(super) fn follow_membership(&mut self, io: &mut Io) -> Result<(), NodeError> {
        let st = self.engine.status();
        if self.roster_index != Some(st.membership_index) {
            let m = &st.membership;
            let now = io.clock.now_ms();
            let known: Vec<NodeId> = m.voters().iter().chain(m.learners()).map(|v| v.id).collect();
            for gone in self.voters.known.iter().filter(|id| !known.contains(id)) {
                if let Some(p) = self.roster.get(*gone) {
                    let peer = Peer { key: p.public_key, address: p.address.clone() };
                    self.voters.lingering.push((peer, now + LINGER_MS));
                }
            }
            self.voters.known = known;
            self.roster = Roster::after(&self.roster, &self.config, m, &self.voters.bootstrap);
            self.roster_index = Some(st.membership_index);
            if st.membership.is_retired(self.me) && !self.removed {
                self.removed = true;
                warn!("this member was removed from the voters: it stops (RV7)");
            }
            io.transport.set_peers(self.peers(io.clock.now_ms()));
            self.publish_committee(io);
        }
        let requests = std::mem::take(&mut self.voters.committed);
        if st.role != warpnet_raft::Role::Leader {
            return Ok(());
        }
        for r in requests {
            self.act(io, &st.membership, r)?;
        }
        Ok(())
    }

    /// The leader turns a committed voter request into AddVoter / RemoveServer; a request to
    /// remove the leader itself hands leadership to another public voter first (RF6), and the
    /// approving node's next send reaches the new leader.
    fn act(&mut self, io: &mut Io, m: &Membership, r: VoterRequest) -> Result<(), NodeError> {
        let key = r.key();
        let id = id_of(&self.config, &key);
        let input = match &r {
            VoterRequest::Add(p) => {
                if self.roster.key(id).is_some_and(|k| k != key)
                    && (m.knows(id) || m.is_retired(id))
                {
                    warn!(candidate = %key, id = %id, "the id derived from this key is taken: the candidate needs another key");
                    return Ok(());
                }
                let member = warpnet_raft::Member { id, public: p.public };
                Input::AddVoter { member, description: p.to_bytes(), expected_index: None }
            }
            VoterRequest::Remove { .. } if id == self.me => {
                let to = m
                    .public_voters()
                    .map(|v| v.id)
                    .find(|&v| v != self.me && !self.unreachable.contains(&v));
                let Some(to) = to else {
                    warn!("asked to remove the leader, and no other public voter is reachable");
                    return Ok(());
                };
                info!(to = %to, "asked to remove this leader: handing leadership over first (RF6)");
                Input::TransferLeadership(to)
            }
            VoterRequest::Remove { .. } => Input::RemoveServer { id, expected_index: None },
        };
        match self.input(io, input)? {
            Ok(()) => info!(key = %key, id = %id, "voter change proposed by the leader"),
            Err(e) => info!(key = %key, id = %id, error = %e, "voter change refused by the leader"),
        }
        Ok(())
    }

    /// The committee view `GET /v1/members` and `/v1/admissions` answer.
    pub(super) fn publish_committee(&self, io: &Io) {
        let connected = io.transport.stats().connected;
        let view = self.committee_view(&connected);
        if let Ok(mut c) = io.shared.members.lock() {
            *c = view;
        }
    }

    /// RV6: the voters and learners (a removed member is not dialed any more), and the
    /// bootstrap peers while this node is not a member yet.
    pub(super) fn member_peers(&self, now_ms: u64) -> Vec<Peer> {
        let m = self.engine.status().membership;
        let mut peers: Vec<warpnet_net::Peer> = m
            .voters()
            .iter()
            .chain(m.learners())
            .filter_map(|v| self.roster.get(v.id))
            .map(|p| warpnet_net::Peer { key: p.public_key, address: p.address.clone() })
            .collect();
        peers.extend(
            self.voters
                .lingering
                .iter()
                .filter(|(_, until)| now_ms < *until)
                .map(|(p, _)| p.clone()),
        );
        if !m.knows(self.me) && !self.removed {
            peers.extend(self.voters.bootstrap.iter().cloned());
            if m.is_empty() {
                // Not even a snapshot yet: a standby of the file knows the founders.
                peers.extend(crate::committee::peers_of(&self.config));
            }
        }
        let mut seen = HashSet::new();
        peers.retain(|p| seen.insert(p.key));
        peers
    }

    /// Raft mode's committee: the voters and learners of the applied membership.
    pub(super) fn members_view(&self, connected: &[PublicKey]) -> crate::handle::Committee {
        let st = self.engine.status();
        let m = &st.membership;
        let members = m
            .voters()
            .iter()
            .chain(m.learners())
            .filter_map(|v| Some((v, self.roster.get(v.id)?)))
            .map(|(v, p)| crate::handle::MemberView {
                node_id: v.id.0,
                public_key: p.public_key.to_hex(),
                p2p_address: p.address.clone(),
                api_address: p.api_address.clone(),
                public: v.public,
                member_since_epoch: self.config.epoch().0,
                connected: v.id == self.me || connected.contains(&p.public_key),
                // Agreed health is HotStuff mode's (committed QC evidence); none in Raft mode.
                health: None,
            })
            .collect();
        crate::handle::Committee {
            epoch: self.config.epoch().0,
            node_id: m.knows(self.me).then_some(self.me.0),
            quorum_threshold: m.quorum(),
            members_min: self.settings.voters_min,
            members,
            learners: m.learners().iter().map(|l| l.id.0).collect(),
            pending: self.voters.pending(),
            retired: m
                .retired()
                .iter()
                .filter_map(|id| self.roster.key(*id))
                .map(|k| k.to_hex())
                .collect(),
            ..crate::handle::Committee::default()
        }
    }
}
