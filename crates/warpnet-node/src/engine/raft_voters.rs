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

use std::collections::BTreeMap;

use warpnet_net::Peer;
use warpnet_raft::Membership;
use warpnet_types::codec::Decode;
use warpnet_types::membership::{Admission, MembershipError};
use warpnet_types::{ConsensusConfig, NodeId, Participant, PublicKey};

use super::raft_roster::{id_of, VoterRequest};
use crate::membership::{PendingView, Policy, Refusal};

/// An approved change not yet in the membership is sent again this often.
pub const RESEND_MS: u64 = 2_000;
/// An approved change is given up after this long (the leader logs why it refuses one).
pub const APPROVED_TTL_MS: u64 = 120_000;
/// A removed member stays among the transport's peers this long (its last append, RV7).
pub const LINGER_MS: u64 = 3_000;
/// Candidates pending at once.
const CANDIDATES_MAX: usize = 64;

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
    pub known: Vec<NodeId>,
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
