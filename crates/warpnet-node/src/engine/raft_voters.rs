//! Raft mode's voter changes as operators make them: the same `member` CLI and API as HotStuff
//! mode (`POST /v1/admissions`, `POST /v1/operator`, `GET /v1/members`), on Raft's trust model
//! (operators trust each other, so one operator's approval is enough).
//!
//! - **Admission**: a candidate's signed request (proof of possession) reaches any node; that
//!   node dials it back and applies its operator's policy (`manual`: `member endorse KEY`;
//!   `allowlist`; `open`), the `membership/` policies of HotStuff mode. `member endorse KEY` of
//!   a `voter = false` standby of the committee file promotes it the same way.
//! - **Removal**: `member remove KEY --reason TEXT`, signed by the operator for its own node.
//! - An approved change becomes a *voter request* entry in the log (any node proposes it; a
//!   follower forwards it like a claim). The node that leads when the entry is applied turns it
//!   into `AddVoter` / `RemoveServer` (RF4–RF6, RV1–RV4 in `warpnet-raft`); the approving node
//!   sends it again every [`RESEND_MS`] until the membership shows the change (a leader change,
//!   a change in flight), for at most [`APPROVED_TTL_MS`].
//!
//! Node-level rules: **RV5** a member's id is its index in the committee file, or for a member
//! added later a value derived from its key (so a new node knows its own id before it joins);
//! frames are taken only from current voters and learners (and, while this node is not a
//! member yet, its bootstrap peers), never from a removed member. **RV6** the transport's peers
//! follow the membership: a removed member is no longer dialed. **RV7** a member that applied
//! its own removal stops, and does not start again (its id is retired, RV4).

use std::collections::{BTreeMap, HashMap};

use warpnet_net::Peer;
use warpnet_raft::Membership;
use warpnet_types::codec::{CodecError, Decode, Encode, Reader, Writer};
use warpnet_types::membership::{Admission, MembershipError};
use warpnet_types::{ConsensusConfig, Digest, NodeId, Participant, PublicKey};

use tracing::{info, warn};
use warpnet_raft::Input;

use super::raft::{Raft, RaftEvent};
use super::{Engine, Io};
use crate::handle::Control;
use crate::membership::operator::Action;
use crate::membership::{PendingView, Policy, Refusal};
use crate::runtime::NodeError;

/// The version byte of a voter request entry (client command entries are version 1).
pub const VOTER_REQUEST_VERSION: u8 = 2;
/// An approved change not yet in the membership is sent again this often.
pub const RESEND_MS: u64 = 2_000;
/// An approved change is given up after this long (the leader logs why it refuses one).
pub const APPROVED_TTL_MS: u64 = 120_000;
/// Ids of members added later start here (the committee file's indices stay below).
pub const DERIVED_ID_FIRST: u16 = 1_024;
/// A removed member stays among the transport's peers this long (its last heartbeat, RV7).
pub const LINGER_MS: u64 = 3_000;
/// Candidates pending at once.
const CANDIDATES_MAX: usize = 64;

/// RV5: a member's id: its index in the committee file, else derived from its key.
pub fn id_of(config: &ConsensusConfig, key: &PublicKey) -> NodeId {
    if let Some(id) = config.node_id_of(key) {
        return id;
    }
    let d = Digest::hash(b"warpnet/v1/raft-member-id", &key.0);
    let x = u16::from_le_bytes([d.as_bytes()[0], d.as_bytes()[1]]);
    NodeId(DERIVED_ID_FIRST + x % (u16::MAX - DERIVED_ID_FIRST))
}

/// What a voter request asks the leader to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoterRequest {
    /// AddVoter (as a learner first, RV1).
    Add(Participant),
    /// RemoveServer.
    Remove { key: PublicKey },
}

impl VoterRequest {
    pub fn key(&self) -> PublicKey {
        match self {
            VoterRequest::Add(p) => p.public_key,
            VoterRequest::Remove { key } => *key,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VOTER_REQUEST_VERSION);
        match self {
            VoterRequest::Add(p) => w.u8(1).put(p),
            VoterRequest::Remove { key } => w.u8(2).put(key),
        };
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let v = r.u8("voter request version")?;
        if v != VOTER_REQUEST_VERSION {
            return Err(CodecError::UnsupportedVersion {
                got: v,
                supported: VOTER_REQUEST_VERSION,
            });
        }
        let request = match r.u8("voter request kind")? {
            1 => VoterRequest::Add(r.get()?),
            2 => VoterRequest::Remove { key: r.get()? },
            tag => return Err(CodecError::InvalidTag { what: "voter request kind", tag }),
        };
        r.finish()?;
        Ok(request)
    }

    /// Whether `membership` shows the change made.
    fn done(&self, config: &ConsensusConfig, membership: &Membership) -> bool {
        let id = id_of(config, &self.key());
        match self {
            VoterRequest::Add(_) => membership.contains(id) || membership.is_retired(id),
            VoterRequest::Remove { .. } => !membership.knows(id),
        }
    }
}

/// Who is who: the committee file's members and those the membership describes.
#[derive(Default)]
pub struct Roster {
    by_id: HashMap<NodeId, Participant>,
    by_key: HashMap<PublicKey, NodeId>,
}

impl Roster {
    /// The committee file's members, the members `membership` describes, and the bootstrap
    /// peers (whose ids follow from their keys).
    pub fn new(config: &ConsensusConfig, membership: &Membership, bootstrap: &[Peer]) -> Self {
        Self::after(&Roster::default(), config, membership, bootstrap)
    }

    /// As [`Roster::new`], keeping whom `previous` knew (a removed member's key is still known
    /// for its last heartbeat, RV7).
    pub fn after(
        previous: &Roster,
        config: &ConsensusConfig,
        membership: &Membership,
        bootstrap: &[Peer],
    ) -> Self {
        let mut r = Roster::default();
        for (id, p) in &previous.by_id {
            r.insert(*id, p.clone());
        }
        for (i, p) in config.participants().iter().enumerate() {
            r.insert(NodeId(i as u16), p.clone());
        }
        for (id, d) in membership.descriptions() {
            if let Ok(p) = Participant::from_bytes(d) {
                r.insert(*id, p);
            }
        }
        for b in bootstrap {
            let id = id_of(config, &b.key);
            if !r.by_id.contains_key(&id) {
                let p = Participant {
                    public_key: b.key,
                    address: b.address.clone(),
                    api_address: String::new(),
                    public: false,
                };
                r.insert(id, p);
            }
        }
        r
    }

    fn insert(&mut self, id: NodeId, p: Participant) {
        self.by_key.insert(p.public_key, id);
        self.by_id.insert(id, p);
    }

    pub fn get(&self, id: NodeId) -> Option<&Participant> {
        self.by_id.get(&id)
    }

    pub fn id(&self, key: &PublicKey) -> Option<NodeId> {
        self.by_key.get(key).copied()
    }

    pub fn key(&self, id: NodeId) -> Option<PublicKey> {
        self.by_id.get(&id).map(|p| p.public_key)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum DialBack {
    Pending,
    Passed,
    Failed(String),
}

struct Candidate {
    admission: Admission,
    dial_back: DialBack,
}

/// This node's side of voter changes: candidates, and the changes its operator approved.
pub struct VoterChanges {
    policy: Policy,
    candidates: BTreeMap<PublicKey, Candidate>,
    /// Approved changes: when each was last sent, and since when it is approved.
    approved: Vec<(VoterRequest, u64, u64)>,
    last_open_ms: Option<u64>,
    /// Committed voter requests, for the leader to act on after the step that applied them.
    pub committed: Vec<VoterRequest>,
    pub bootstrap: Vec<Peer>,
    /// Voters and learners of the membership last followed.
    known: Vec<NodeId>,
    /// Removed members still dialed until then (RV6, RV7).
    pub lingering: Vec<(Peer, u64)>,
}

/// What to do after an input: requests to propose now, candidates to dial back.
#[derive(Default)]
pub struct Todo {
    pub propose: Vec<VoterRequest>,
    pub dial_back: Vec<(PublicKey, String)>,
}

impl VoterChanges {
    pub fn new(policy: Policy, bootstrap: Vec<Peer>) -> Self {
        Self {
            policy,
            candidates: BTreeMap::new(),
            approved: Vec::new(),
            last_open_ms: None,
            committed: Vec::new(),
            bootstrap,
            known: Vec::new(),
            lingering: Vec::new(),
        }
    }

    /// A candidate's request (`POST /v1/admissions`): checked, then dialed back.
    pub fn on_admission(
        &mut self,
        config: &ConsensusConfig,
        membership: &Membership,
        admission: Admission,
    ) -> Result<(PendingView, Todo), Refusal> {
        let key = admission.candidate.public_key;
        let id = id_of(config, &key);
        if membership.is_retired(id) {
            return Err(MembershipError::Retired { key }.into());
        }
        if membership.knows(id) {
            return Err(MembershipError::AlreadyMember { key, id }.into());
        }
        admission.verify(config.network(), config.scheme())?;
        let mut todo = Todo::default();
        if !self.candidates.contains_key(&key) {
            if self.candidates.len() >= CANDIDATES_MAX {
                return Err(Refusal::TooManyPending);
            }
            todo.dial_back.push((key, admission.candidate.address.clone()));
            self.candidates.insert(key, Candidate { admission, dial_back: DialBack::Pending });
        }
        Ok((self.view(&key).unwrap_or_else(|| unknown(&key)), todo))
    }

    /// A dial-back answered: an `allowlist` or `open` policy approves the candidate now.
    pub fn on_dial_back(
        &mut self,
        now_ms: u64,
        membership: &Membership,
        key: PublicKey,
        result: Result<(), String>,
    ) -> Todo {
        let Some(c) = self.candidates.get_mut(&key) else { return Todo::default() };
        c.dial_back = match result {
            Ok(()) => DialBack::Passed,
            Err(e) => DialBack::Failed(e),
        };
        let by_policy = c.dial_back == DialBack::Passed
            && match &self.policy {
                Policy::Manual => false,
                Policy::Allowlist(keys) => keys.contains(&key),
                Policy::Open { interval_ms } => {
                    self.last_open_ms.is_none_or(|at| now_ms >= at.saturating_add(*interval_ms))
                }
            };
        if !by_policy {
            return Todo::default();
        }
        let request = VoterRequest::Add(c.admission.candidate.clone());
        match self.approve(now_ms, membership, request) {
            Ok(todo) => {
                if matches!(self.policy, Policy::Open { .. }) {
                    self.last_open_ms = Some(now_ms);
                }
                todo
            }
            Err(refusal) => {
                tracing::info!(candidate = %key, %refusal, "the policy's approval waits");
                Todo::default()
            }
        }
    }

    /// `member endorse KEY`: a candidate whose dial-back passed, or a standby of the file.
    pub fn endorse(
        &mut self,
        now_ms: u64,
        config: &ConsensusConfig,
        membership: &Membership,
        key: PublicKey,
    ) -> Result<(PendingView, Todo), Refusal> {
        let request = match self.candidates.get(&key) {
            Some(c) => match &c.dial_back {
                DialBack::Passed => VoterRequest::Add(c.admission.candidate.clone()),
                DialBack::Pending => return Err(Refusal::DialBackPending),
                DialBack::Failed(reason) => {
                    return Err(Refusal::DialBackFailed {
                        address: c.admission.candidate.address.clone(),
                        reason: reason.clone(),
                    })
                }
            },
            None => match config.node_id_of(&key) {
                // A `voter = false` standby of the committee file.
                Some(id) if !membership.contains(id) && !membership.is_retired(id) => {
                    VoterRequest::Add(
                        config.participant(id).map_err(|_| unknown_key(&key))?.clone(),
                    )
                }
                Some(id) if membership.contains(id) => {
                    return Err(MembershipError::AlreadyMember { key, id }.into())
                }
                _ => return Err(unknown_key(&key)),
            },
        };
        let todo = self.approve(now_ms, membership, request)?;
        Ok((self.view(&key).unwrap_or_else(|| unknown(&key)), todo))
    }

    /// `member remove KEY`: checked against this node's view first (the leader checks again).
    pub fn remove(
        &mut self,
        now_ms: u64,
        config: &ConsensusConfig,
        membership: &Membership,
        voters_min: usize,
        key: PublicKey,
    ) -> Result<(PendingView, Todo), Refusal> {
        let id = id_of(config, &key);
        if !membership.knows(id) {
            return Err(MembershipError::NotMember { key, epoch: config.epoch() }.into());
        }
        if membership.contains(id) {
            let left = membership.len() - 1;
            if left < voters_min {
                return Err(MembershipError::BelowMinimum { left, min: voters_min }.into());
            }
            if !membership.public_voters().any(|m| m.id != id) {
                return Err(MembershipError::LastPublicMember.into());
            }
        }
        let todo = self.approve(now_ms, membership, VoterRequest::Remove { key })?;
        Ok((self.view(&key).unwrap_or_else(|| unknown(&key)), todo))
    }

    /// RV2 at the door: one change at a time, so a change is refused while another one this
    /// node approved is not done, or while a learner waits for its promotion (except that
    /// learner's removal).
    fn approve(
        &mut self,
        now_ms: u64,
        membership: &Membership,
        request: VoterRequest,
    ) -> Result<Todo, Refusal> {
        if self.approved.iter().any(|(r, _, _)| *r == request) {
            return Ok(Todo::default());
        }
        if let Some((other, _, _)) = self.approved.first() {
            return Err(Refusal::ChangeInFlight { key: other.key().to_hex() });
        }
        let cancelling = |l: &warpnet_raft::Member| {
            matches!(&request, VoterRequest::Remove { .. })
                && Some(l.id) == self.learner_id(&request, membership)
        };
        if let Some(l) = membership.learners().iter().find(|l| !cancelling(l)) {
            return Err(Refusal::ChangeInFlight { key: format!("learner {}", l.id) });
        }
        self.approved.push((request.clone(), now_ms, now_ms));
        Ok(Todo { propose: vec![request], ..Todo::default() })
    }

    fn learner_id(&self, request: &VoterRequest, membership: &Membership) -> Option<NodeId> {
        let key = request.key();
        membership.learners().iter().map(|l| l.id).find(|id| {
            membership
                .description(*id)
                .and_then(|d| Participant::from_bytes(d).ok())
                .is_some_and(|p| p.public_key == key)
        })
    }

    /// Once a second: forgets what the membership shows done (and candidates it admitted),
    /// and sends again what is not done yet.
    pub fn resend(&mut self, now_ms: u64, config: &ConsensusConfig, m: &Membership) -> Todo {
        self.approved.retain(|(r, _, since)| {
            !r.done(config, m) && now_ms < since.saturating_add(APPROVED_TTL_MS)
        });
        self.candidates
            .retain(|k, _| !m.knows(id_of(config, k)) && !m.is_retired(id_of(config, k)));
        let mut todo = Todo::default();
        for (r, sent, _) in &mut self.approved {
            if now_ms >= sent.saturating_add(RESEND_MS) {
                *sent = now_ms;
                todo.propose.push(r.clone());
            }
        }
        todo
    }

    /// The changes pending here, as `GET /v1/admissions` shows them.
    pub fn pending(&self) -> Vec<PendingView> {
        let mut out: Vec<PendingView> =
            self.candidates.keys().filter_map(|k| self.view(k)).collect();
        for (r, _, _) in &self.approved {
            if let VoterRequest::Remove { key } = r {
                out.push(removal_view(key));
            }
        }
        out
    }

    fn view(&self, key: &PublicKey) -> Option<PendingView> {
        let approved = self.approved.iter().any(|(r, _, _)| r.key() == *key);
        if let Some(c) = self.candidates.get(key) {
            let p = &c.admission.candidate;
            return Some(PendingView {
                kind: "add",
                public_key: key.to_hex(),
                p2p_address: Some(p.address.clone()),
                api_address: Some(p.api_address.clone()),
                public: Some(p.public),
                reason: None,
                dial_back: match &c.dial_back {
                    DialBack::Pending => "pending".into(),
                    DialBack::Passed => "passed".into(),
                    DialBack::Failed(e) => format!("failed: {e}"),
                },
                endorsements: usize::from(approved),
                quorum: 1,
                endorsed_by_this_node: approved,
            });
        }
        approved.then(|| match self.approved.iter().find(|(r, _, _)| r.key() == *key) {
            Some((VoterRequest::Add(p), _, _)) => PendingView {
                kind: "add",
                public_key: key.to_hex(),
                p2p_address: Some(p.address.clone()),
                api_address: Some(p.api_address.clone()),
                public: Some(p.public),
                reason: None,
                dial_back: "not needed (a member of the committee file)".into(),
                endorsements: 1,
                quorum: 1,
                endorsed_by_this_node: true,
            },
            _ => removal_view(key),
        })
    }
}

fn removal_view(key: &PublicKey) -> PendingView {
    PendingView {
        kind: "remove",
        public_key: key.to_hex(),
        p2p_address: None,
        api_address: None,
        public: None,
        reason: None,
        dial_back: "not needed".into(),
        endorsements: 1,
        quorum: 1,
        endorsed_by_this_node: true,
    }
}

fn unknown(key: &PublicKey) -> PendingView {
    PendingView {
        kind: "add",
        public_key: key.to_hex(),
        p2p_address: None,
        api_address: None,
        public: None,
        reason: None,
        dial_back: "pending".into(),
        endorsements: 0,
        quorum: 1,
        endorsed_by_this_node: false,
    }
}

fn unknown_key(key: &PublicKey) -> Refusal {
    Refusal::UnknownCandidate { key: key.to_hex() }
}

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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Voter requests round-trip; another version or kind is refused.
    #[test]
    fn voter_requests_round_trip() {
        let p = Participant {
            public_key: PublicKey([7; 32]),
            address: "127.0.0.1:1".into(),
            api_address: "127.0.0.1:2".into(),
            public: true,
        };
        for r in [VoterRequest::Add(p), VoterRequest::Remove { key: PublicKey([9; 32]) }] {
            assert_eq!(VoterRequest::decode(&r.encode()), Ok(r));
        }
        assert!(VoterRequest::decode(&[1, 1]).is_err());
        assert!(VoterRequest::decode(&[2, 9]).is_err());
    }
}
