//! Committee changes as this node's operator sees them (issue 9): candidates asking to join,
//! removals asked for, and the endorsements that approve them, before any of it is a command.
//!
//! A candidate's signed request (proof of possession) reaches any node (`POST /v1/admissions`)
//! and is gossiped to every member. Each member checks it (the proof, that the key is neither a
//! member nor retired, that the candidate answers an authenticated handshake at the p2p
//! address it claims: the dial-back), then applies its operator's policy: `manual` (the
//! operator endorses with `member endorse KEY`), `allowlist` (keys approved in advance) or
//! `open` (any candidate that passes the checks, at most one admission per interval). An
//! endorsement is the member's signature for the epoch (`warpnet_types::membership`), gossiped
//! in turn; the member holding endorsements from a quorum of the epoch submits the change as a
//! command, which the consensus core checks again (EP1) before it is ordered. Removals work the
//! same way (`member remove KEY --reason TEXT`), without a dial-back.
//!
//! An endorsement is only valid in its epoch: when the epoch changes, every endorsement is
//! dropped and the approvals this node's operator (or policy) gave are signed again for the new
//! epoch, so a change that raced with another one is not lost.
//!
//! Pure: the runtime feeds it requests, gossip, dial-back results and the clock, and sends what
//! it returns. Every refusal is a typed [`Refusal`].

pub mod operator;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use warpnet_types::membership::{
    Admission, Change, Endorsed, Endorsement, Grounds, MembershipError,
};
use warpnet_types::{
    ConsensusConfig, Digest, MembershipGossip, MembershipMsg, NodeId, PublicKey, Signature, Signer,
};

/// Most candidates and removals pending at once (a flood of requests is refused, not stored).
pub const PENDING_MAX: usize = 64;
/// A candidate whose dial-back failed is dialed again after this long.
pub const REDIAL_MS: u64 = 2_000;
/// A pending change nobody endorsed for this long is forgotten.
pub const PENDING_TTL_MS: u64 = 24 * 3_600_000;

/// How this node's operator approves candidates (`admission_policy` in `node.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The operator endorses each candidate (`member endorse KEY`). The default.
    Manual,
    /// Candidates whose key is listed are endorsed once they pass the checks.
    Allowlist(BTreeSet<PublicKey>),
    /// Any candidate that passes the checks, at most one endorsement per `interval_ms`.
    Open { interval_ms: u64 },
}

/// Why a request, an endorsement or an operator's action was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Invalid(#[from] MembershipError),
    #[error("gossip for epoch {got}, the committee is in epoch {ours}")]
    WrongEpoch { got: u64, ours: u64 },
    #[error("{PENDING_MAX} committee changes are pending already")]
    TooManyPending,
    #[error("no pending admission of key {key}")]
    UnknownCandidate { key: String },
    #[error("this node is not a member of the committee, so it cannot endorse")]
    NotMember,
    #[error("the candidate did not answer a handshake at {address} with its key: {reason}")]
    DialBackFailed { address: String, reason: String },
    #[error("the candidate's dial-back has not succeeded yet")]
    DialBackPending,
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("a change of voters is in flight ({key}): one change at a time (RV2); try again once it is done")]
    ChangeInFlight { key: String },
}

/// What to do after an input.
#[derive(Debug, Default, PartialEq)]
pub struct Outputs {
    /// To every member (and, for admissions, the node keeps the candidate allowed to connect).
    pub gossip: Vec<MembershipMsg>,
    /// Dial these candidates back: (key, p2p address); report with [`Membership::on_dial_back`].
    pub dial_back: Vec<(PublicKey, String)>,
    /// Membership commands with a quorum of endorsements, to submit to the consensus core.
    pub commands: Vec<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum DialBack {
    Pending,
    Passed,
    Failed(String),
}

/// A change on its way to a quorum.
#[derive(Clone, Debug)]
struct Pending {
    what: Endorsed,
    /// The admission request, for an admission.
    admission: Option<Admission>,
    dial_back: DialBack,
    /// When the last dial-back started (a failed one is tried again: the candidate may start
    /// its node after its request).
    probed_ms: u64,
    since_ms: u64,
    /// This epoch's endorsements, by member.
    endorsements: BTreeMap<NodeId, Signature>,
    /// This node's operator (or policy) approved it: endorse again in every new epoch.
    approved: bool,
    submitted: bool,
}

/// A pending change as `GET /v1/admissions` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PendingView {
    pub kind: &'static str,
    pub public_key: String,
    pub p2p_address: Option<String>,
    pub api_address: Option<String>,
    pub public: Option<bool>,
    pub reason: Option<String>,
    pub dial_back: String,
    pub endorsements: usize,
    pub quorum: usize,
    pub endorsed_by_this_node: bool,
}

/// This node's pending committee changes.
pub struct Membership {
    config: Arc<ConsensusConfig>,
    signer: Arc<dyn Signer>,
    policy: Policy,
    pending: BTreeMap<Digest, Pending>,
    last_open_ms: Option<u64>,
}

fn digest(what: &Endorsed) -> Digest {
    use warpnet_types::Encode;
    Digest::hash(b"warpnet/v1/pending-change", &what.to_bytes())
}

impl Membership {
    pub fn new(config: Arc<ConsensusConfig>, signer: Arc<dyn Signer>, policy: Policy) -> Self {
        Self { config, signer, policy, pending: BTreeMap::new(), last_open_ms: None }
    }

    fn me(&self) -> Option<NodeId> {
        self.config.node_id_of(&self.signer.public_key())
    }

    fn gossip(&self, gossip: MembershipGossip) -> MembershipMsg {
        MembershipMsg { epoch: self.config.epoch(), gossip }
    }

    /// A candidate's request, from a client or a member. New and valid requests are passed on
    /// and dialed back.
    pub fn on_admission(&mut self, now_ms: u64, admission: Admission) -> Result<Outputs, Refusal> {
        let key = admission.candidate.public_key;
        if let Some(id) = self.config.node_id_of(&key) {
            return Err(MembershipError::AlreadyMember { key, id }.into());
        }
        if self.config.is_retired(&key) {
            return Err(MembershipError::Retired { key }.into());
        }
        admission.verify(self.config.network(), self.config.scheme())?;
        let what = Endorsed::Add(admission.digest());
        let id = digest(&what);
        if self.pending.contains_key(&id) {
            return Ok(Outputs::default()); // known already (a retry, or gossip coming back)
        }
        self.expire(now_ms);
        if self.pending.len() >= PENDING_MAX {
            return Err(Refusal::TooManyPending);
        }
        let address = admission.candidate.address.clone();
        self.pending.insert(
            id,
            Pending {
                what,
                admission: Some(admission.clone()),
                dial_back: DialBack::Pending,
                probed_ms: now_ms,
                since_ms: now_ms,
                endorsements: BTreeMap::new(),
                approved: false,
                submitted: false,
            },
        );
        let gossip = self.gossip(MembershipGossip::Admission(admission));
        Ok(Outputs { gossip: vec![gossip], dial_back: vec![(key, address)], commands: Vec::new() })
    }

    /// The dial-back of a candidate answered (`Ok`) or not: the policy may now endorse it.
    pub fn on_dial_back(
        &mut self,
        now_ms: u64,
        key: &PublicKey,
        result: Result<(), String>,
    ) -> Outputs {
        let Some(id) = self.find_admission(key) else { return Outputs::default() };
        let Some(p) = self.pending.get_mut(&id) else { return Outputs::default() };
        p.dial_back = match result {
            Ok(()) => DialBack::Passed,
            Err(reason) => DialBack::Failed(reason),
        };
        let auto = match &self.policy {
            Policy::Manual => false,
            Policy::Allowlist(keys) => keys.contains(key),
            Policy::Open { interval_ms } => {
                self.last_open_ms.is_none_or(|at| now_ms >= at.saturating_add(*interval_ms))
            }
        };
        if auto && p.dial_back == DialBack::Passed {
            if matches!(self.policy, Policy::Open { .. }) {
                self.last_open_ms = Some(now_ms);
            }
            return self.approve(id).unwrap_or_default();
        }
        Outputs::default()
    }

    /// The operator endorses a pending candidate (`member endorse KEY`).
    pub fn endorse_candidate(&mut self, key: &PublicKey) -> Result<Outputs, Refusal> {
        let id = self
            .find_admission(key)
            .ok_or_else(|| Refusal::UnknownCandidate { key: key.to_hex() })?;
        let p = &self.pending[&id];
        match &p.dial_back {
            DialBack::Passed => {}
            DialBack::Pending => return Err(Refusal::DialBackPending),
            DialBack::Failed(reason) => {
                let address = p.admission.as_ref().map(|a| a.candidate.address.clone());
                return Err(Refusal::DialBackFailed {
                    address: address.unwrap_or_default(),
                    reason: reason.clone(),
                });
            }
        }
        self.approve(id)
    }

    /// The operator asks for a member's removal (`member remove KEY --reason TEXT`).
    pub fn remove(
        &mut self,
        now_ms: u64,
        key: PublicKey,
        reason: String,
    ) -> Result<Outputs, Refusal> {
        if self.config.node_id_of(&key).is_none() {
            return Err(MembershipError::NotMember { key, epoch: self.config.epoch() }.into());
        }
        let what = Endorsed::Remove { key, reason };
        let id = digest(&what);
        if !self.pending.contains_key(&id) {
            self.expire(now_ms);
            if self.pending.len() >= PENDING_MAX {
                return Err(Refusal::TooManyPending);
            }
            self.pending.insert(
                id,
                Pending {
                    what,
                    admission: None,
                    dial_back: DialBack::Passed,
                    probed_ms: now_ms,
                    since_ms: now_ms,
                    endorsements: BTreeMap::new(),
                    approved: false,
                    submitted: false,
                },
            );
        }
        self.approve(id)
    }

    /// A member's endorsement, gossiped.
    pub fn on_endorsement(
        &mut self,
        now_ms: u64,
        epoch: u64,
        what: Endorsed,
        endorsement: Endorsement,
    ) -> Result<Outputs, Refusal> {
        if epoch != self.config.epoch().0 {
            return Err(Refusal::WrongEpoch { got: epoch, ours: self.config.epoch().0 });
        }
        let key = self.config.public_key(endorsement.member).map_err(|_| {
            MembershipError::EndorserNotMember {
                id: endorsement.member,
                epoch: self.config.epoch(),
            }
        })?;
        let message = what.signing_bytes(self.config.network(), self.config.epoch());
        let item = warpnet_types::crypto::SignedItem {
            key,
            message: &message,
            signature: &endorsement.signature,
        };
        warpnet_types::crypto::verify_all(self.config.scheme(), &[item]).map_err(|_| {
            MembershipError::BadEndorsement { id: endorsement.member, epoch: self.config.epoch() }
        })?;
        let id = digest(&what);
        if !self.pending.contains_key(&id) {
            // An endorsement of a removal we had not heard of: keep it (its member vouches).
            // An admission's endorsement waits for the request itself (its gossip follows).
            let Endorsed::Remove { key, .. } = &what else { return Ok(Outputs::default()) };
            if self.config.node_id_of(key).is_none() {
                return Ok(Outputs::default());
            }
            self.expire(now_ms);
            if self.pending.len() >= PENDING_MAX {
                return Err(Refusal::TooManyPending);
            }
            self.pending.insert(
                id,
                Pending {
                    what: what.clone(),
                    admission: None,
                    dial_back: DialBack::Passed,
                    probed_ms: now_ms,
                    since_ms: now_ms,
                    endorsements: BTreeMap::new(),
                    approved: false,
                    submitted: false,
                },
            );
        }
        if let Some(p) = self.pending.get_mut(&id) {
            p.endorsements.insert(endorsement.member, endorsement.signature);
        }
        Ok(self.ready(id))
    }

    /// The committee changed (EP3): endorsements of the old epoch are void; changes that took
    /// effect are done; what this node approved is endorsed again for the new epoch.
    pub fn on_epoch(&mut self, config: Arc<ConsensusConfig>) -> Outputs {
        self.config = config;
        let config = self.config.clone();
        self.pending.retain(|_, p| match &p.what {
            Endorsed::Add(_) => p.admission.as_ref().is_some_and(|a| {
                let key = a.candidate.public_key;
                config.node_id_of(&key).is_none() && !config.is_retired(&key)
            }),
            Endorsed::Remove { key, .. } => config.node_id_of(key).is_some(),
        });
        let mut out = Outputs::default();
        let ids: Vec<Digest> = self.pending.keys().copied().collect();
        for id in ids {
            if let Some(p) = self.pending.get_mut(&id) {
                p.endorsements.clear();
                p.submitted = false;
                if !p.approved {
                    continue;
                }
            }
            if let Ok(o) = self.approve(id) {
                out.gossip.extend(o.gossip);
                out.commands.extend(o.commands);
            }
        }
        out
    }

    /// What is pending, for `GET /v1/admissions` and `member pending`.
    pub fn pending(&self) -> Vec<PendingView> {
        let me = self.me();
        self.pending
            .values()
            .map(|p| {
                let c = p.admission.as_ref().map(|a| &a.candidate);
                let (kind, key, reason) = match &p.what {
                    Endorsed::Add(_) => {
                        ("add", c.map(|c| c.public_key.to_hex()).unwrap_or_default(), None)
                    }
                    Endorsed::Remove { key, reason } => {
                        ("remove", key.to_hex(), Some(reason.clone()))
                    }
                };
                PendingView {
                    kind,
                    public_key: key,
                    p2p_address: c.map(|c| c.address.clone()),
                    api_address: c.map(|c| c.api_address.clone()),
                    public: c.map(|c| c.public),
                    reason,
                    dial_back: match &p.dial_back {
                        DialBack::Pending => "pending".into(),
                        DialBack::Passed => "passed".into(),
                        DialBack::Failed(r) => format!("failed: {r}"),
                    },
                    endorsements: p.endorsements.len(),
                    quorum: self.config.quorum_threshold(),
                    endorsed_by_this_node: me.is_some_and(|m| p.endorsements.contains_key(&m)),
                }
            })
            .collect()
    }

    /// Candidates whose dial-back has not passed, last tried `REDIAL_MS` or more ago: dial
    /// them again.
    pub fn redial(&mut self, now_ms: u64) -> Vec<(PublicKey, String)> {
        let mut out = Vec::new();
        for p in self.pending.values_mut() {
            let Some(a) = &p.admission else { continue };
            if p.dial_back != DialBack::Passed && now_ms >= p.probed_ms.saturating_add(REDIAL_MS) {
                p.probed_ms = now_ms;
                out.push((a.candidate.public_key, a.candidate.address.clone()));
            }
        }
        out
    }

    /// Candidates this node knows of: the transport lets them connect (dial-back, catching up).
    pub fn candidates(&self) -> Vec<(PublicKey, String)> {
        self.pending
            .values()
            .filter_map(|p| p.admission.as_ref())
            .map(|a| (a.candidate.public_key, a.candidate.address.clone()))
            .collect()
    }

    fn find_admission(&self, key: &PublicKey) -> Option<Digest> {
        self.pending
            .iter()
            .find(|(_, p)| p.admission.as_ref().is_some_and(|a| a.candidate.public_key == *key))
            .map(|(id, _)| *id)
    }

    /// This node endorses a pending change (signs it for the epoch, gossips it).
    fn approve(&mut self, id: Digest) -> Result<Outputs, Refusal> {
        let me = self.me().ok_or(Refusal::NotMember)?;
        let Some(p) = self.pending.get_mut(&id) else { return Ok(Outputs::default()) };
        p.approved = true;
        let e = Endorsement::sign(&self.config, me, &p.what, self.signer.as_ref());
        p.endorsements.insert(me, e.signature);
        let what = p.what.clone();
        let mut out = self.ready(id);
        out.gossip.push(self.gossip(MembershipGossip::Endorsement { what, endorsement: e }));
        Ok(out)
    }

    /// The command, once a quorum of the epoch endorsed a change (once per epoch).
    fn ready(&mut self, id: Digest) -> Outputs {
        let quorum = self.config.quorum_threshold();
        let Some(p) = self.pending.get_mut(&id) else { return Outputs::default() };
        if p.submitted || p.endorsements.len() < quorum || p.dial_back != DialBack::Passed {
            return Outputs::default();
        }
        let endorsements: Vec<Endorsement> = p
            .endorsements
            .iter()
            .map(|(&member, &signature)| Endorsement { member, signature })
            .collect();
        let change = match (&p.what, &p.admission) {
            (Endorsed::Add(_), Some(admission)) => {
                Change::Add { admission: admission.clone(), endorsements }
            }
            (Endorsed::Remove { key, reason }, _) => Change::Remove {
                key: *key,
                reason: reason.clone(),
                grounds: Grounds::Endorsed(endorsements),
            },
            (Endorsed::Add(_), None) => return Outputs::default(),
        };
        if change.apply(&self.config).is_err() {
            return Outputs::default(); // e.g. the floor: the core would refuse it too
        }
        p.submitted = true;
        Outputs { commands: vec![change.to_command()], ..Outputs::default() }
    }

    fn expire(&mut self, now_ms: u64) {
        self.pending.retain(|_, p| now_ms < p.since_ms.saturating_add(PENDING_TTL_MS));
    }
}

#[cfg(test)]
mod tests;
