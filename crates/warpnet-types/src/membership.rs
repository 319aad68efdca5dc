//! Committee changes: a candidate's admission, a member's removal, and a member's own update
//! of its addresses or public flag. Each travels as one command in a block's payload (the
//! registry's envelope `u8 1 ‖ u8 kind ‖ body`, kinds 3–5); rule EP1 lets a block carry at most
//! one, valid for its epoch, and EP3 ends the epoch at the committed block that carries it.
//!
//! Everything here is checked against the epoch's [`ConsensusConfig`] alone: the candidate's
//! proof of possession, endorsements by a quorum of the epoch's members (or, for a removal,
//! verifiable equivocation evidence), the retired keys, the floor on the committee's size and
//! its last public member. So every member decides the same, and a proof of an epoch's end can
//! be checked by anyone who knows the committee it ended.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::config::{Participant, COMMITTEE_SIZE_MAX};
use crate::crypto::{domain, verify_all, SchemeId, SignedItem};
use crate::evidence::Equivocation;
use crate::{ConsensusConfig, Digest, Epoch, NetworkId, NodeId, PublicKey, Signature, Signer};

/// The envelope's version byte (shared with the registry's commands).
pub const COMMAND_VERSION: u8 = 1;
/// Command kinds (1 and 2 are the registry's claim and read barrier).
pub const KIND_ADD: u8 = 3;
pub const KIND_REMOVE: u8 = 4;
pub const KIND_UPDATE: u8 = 5;
/// A fresh random nonce in admissions and updates, so an old signed request cannot be replayed
/// as a new one.
pub const NONCE_BYTES: usize = 16;
/// Longest removal reason, in bytes.
pub const REASON_BYTES_MAX: usize = 256;

/// Why a membership change is refused. Each variant carries the values that explain it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("the candidate's proof of possession does not verify for its key")]
    BadProofOfPossession,
    #[error("the signed update does not verify for member {key:?}'s key")]
    BadUpdateSignature { key: PublicKey },
    #[error("key {key:?} is already a member (node {id})")]
    AlreadyMember { key: PublicKey, id: NodeId },
    #[error("key {key:?} was removed from this network before and may never return")]
    Retired { key: PublicKey },
    #[error("key {key:?} is not a member of epoch {epoch}")]
    NotMember { key: PublicKey, epoch: Epoch },
    #[error("endorsements must name distinct members in increasing order; {id} breaks it")]
    EndorsementOrder { id: NodeId },
    #[error("endorsement by node {id}, which is not a member of epoch {epoch}")]
    EndorserNotMember { id: NodeId, epoch: Epoch },
    #[error("{got} endorsements, a quorum of epoch {epoch} is {need}")]
    TooFewEndorsements { got: usize, need: usize, epoch: Epoch },
    #[error("the endorsement by node {id} does not verify for this change in epoch {epoch}")]
    BadEndorsement { id: NodeId, epoch: Epoch },
    #[error("the evidence does not prove an equivocation by {key:?} in epoch {epoch}")]
    BadEvidence { key: PublicKey, epoch: Epoch },
    #[error("removing a member would leave {left} members, below the floor of {min}")]
    BelowMinimum { left: usize, min: usize },
    #[error("the change would leave no publicly reachable member to lead")]
    LastPublicMember,
    #[error("the committee already has the most members allowed ({COMMITTEE_SIZE_MAX})")]
    CommitteeFull,
    #[error("the resulting committee is invalid: {0}")]
    Committee(#[from] crate::ConfigError),
}

/// A candidate's signed request to join: who it is, and proof that it holds its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    pub candidate: Participant,
    pub nonce: [u8; NONCE_BYTES],
    /// By the candidate's key over [`Admission::signing_bytes`].
    pub proof: Signature,
}

impl Admission {
    /// `TAG_POSSESSION ‖ network ‖ candidate (key, p2p address, API address, public) ‖ nonce`.
    pub fn signing_bytes(
        network: &NetworkId,
        candidate: &Participant,
        nonce: &[u8; NONCE_BYTES],
    ) -> Vec<u8> {
        let mut w = domain::signing_writer(domain::TAG_POSSESSION, network);
        w.put(candidate).fixed(nonce);
        w.finish()
    }

    /// The candidate signs its own request with the key it joins with.
    pub fn sign(
        network: &NetworkId,
        candidate: Participant,
        nonce: [u8; NONCE_BYTES],
        signer: &dyn Signer,
    ) -> Self {
        let proof = signer.sign(&Self::signing_bytes(network, &candidate, &nonce));
        Self { candidate, nonce, proof }
    }

    /// The proof of possession, and that the key is usable in a committee of `scheme`.
    pub fn verify(&self, network: &NetworkId, scheme: SchemeId) -> Result<(), MembershipError> {
        let key = &self.candidate.public_key;
        scheme.scheme().check_public_key(key).map_err(|_| MembershipError::BadProofOfPossession)?;
        let message = Self::signing_bytes(network, &self.candidate, &self.nonce);
        let item = SignedItem { key, message: &message, signature: &self.proof };
        verify_all(scheme, &[item]).map_err(|_| MembershipError::BadProofOfPossession)
    }

    /// What members endorse: the digest of the whole signed request.
    pub fn digest(&self) -> Digest {
        Digest::hash(domain::TAG_POSSESSION, &self.to_bytes())
    }
}

/// What a member endorses, in one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endorsed {
    /// Admitting the candidate of the admission with this digest.
    Add(Digest),
    /// Removing the member holding `key`, for `reason`.
    Remove { key: PublicKey, reason: String },
}

impl Endorsed {
    /// `TAG_ENDORSE ‖ network ‖ epoch ‖ what`.
    pub fn signing_bytes(&self, network: &NetworkId, epoch: Epoch) -> Vec<u8> {
        let mut w = domain::signing_writer(domain::TAG_ENDORSE, network);
        w.put(&epoch).put(self);
        w.finish()
    }
}

impl Encode for Endorsed {
    fn encode(&self, w: &mut Writer) {
        match self {
            Endorsed::Add(d) => w.u8(1).put(d),
            Endorsed::Remove { key, reason } => w.u8(2).put(key).bytes(reason.as_bytes()),
        };
    }
}

impl Decode for Endorsed {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(match r.u8("endorsed change")? {
            1 => Endorsed::Add(r.get()?),
            2 => {
                let key = r.get()?;
                let raw = r.bytes("removal reason", REASON_BYTES_MAX)?;
                let reason = String::from_utf8(raw.to_vec()).map_err(|_| CodecError::Invalid {
                    what: "removal reason",
                    reason: "not UTF-8".into(),
                })?;
                Endorsed::Remove { key, reason }
            }
            tag => return Err(CodecError::InvalidTag { what: "endorsed change", tag }),
        })
    }
}

/// One member's signature over an [`Endorsed`] change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endorsement {
    pub member: NodeId,
    pub signature: Signature,
}

impl Endorsement {
    pub fn sign(
        config: &ConsensusConfig,
        member: NodeId,
        what: &Endorsed,
        signer: &dyn Signer,
    ) -> Self {
        let signature = signer.sign(&what.signing_bytes(config.network(), config.epoch()));
        Self { member, signature }
    }
}

/// Why a member is removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grounds {
    /// A quorum of the epoch's members endorsed it (an operator's decision).
    Endorsed(Vec<Endorsement>),
    /// Proven equivocation by that member in this epoch (E1): no operator needed.
    Evidence(Box<Equivocation>),
}

/// A member's own signed change of its addresses or public flag (its key stays).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub member: Participant,
    pub nonce: [u8; NONCE_BYTES],
    pub signature: Signature,
}

impl Update {
    /// `TAG_UPDATE ‖ network ‖ epoch ‖ member (key, addresses, public) ‖ nonce`.
    pub fn signing_bytes(
        network: &NetworkId,
        epoch: Epoch,
        member: &Participant,
        nonce: &[u8; NONCE_BYTES],
    ) -> Vec<u8> {
        let mut w = domain::signing_writer(domain::TAG_UPDATE, network);
        w.put(&epoch).put(member).fixed(nonce);
        w.finish()
    }

    pub fn sign(
        config: &ConsensusConfig,
        member: Participant,
        nonce: [u8; NONCE_BYTES],
        signer: &dyn Signer,
    ) -> Self {
        let bytes = Self::signing_bytes(config.network(), config.epoch(), &member, &nonce);
        Self { signature: signer.sign(&bytes), member, nonce }
    }
}

/// One committee change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add { admission: Admission, endorsements: Vec<Endorsement> },
    Remove { key: PublicKey, reason: String, grounds: Grounds },
    Update(Update),
}

impl Change {
    /// The key the change is about.
    pub fn subject(&self) -> &PublicKey {
        match self {
            Change::Add { admission, .. } => &admission.candidate.public_key,
            Change::Remove { key, .. } => key,
            Change::Update(u) => &u.member.public_key,
        }
    }

    /// The command carrying it in a block: `u8 1 ‖ u8 kind ‖ body`.
    pub fn to_command(&self) -> Vec<u8> {
        self.to_bytes()
    }

    /// `None` when `command` is not a membership command (another kind, e.g. a claim);
    /// otherwise the decoded change, or why it does not decode.
    pub fn from_command(command: &[u8]) -> Option<Result<Self, CodecError>> {
        match command {
            [COMMAND_VERSION, KIND_ADD | KIND_REMOVE | KIND_UPDATE, ..] => {
                Some(Self::from_bytes(command))
            }
            _ => None,
        }
    }

    /// Checks the change against the epoch's committee and returns the next epoch's members
    /// (in order: an admitted candidate joins at the end, a removed member's successors move
    /// up one index, an update keeps its index) and the key to retire, if any.
    pub fn apply(
        &self,
        config: &ConsensusConfig,
    ) -> Result<(Vec<Participant>, Option<PublicKey>), MembershipError> {
        let mut members = config.participants().to_vec();
        let epoch = config.epoch();
        match self {
            Change::Add { admission, endorsements } => {
                let key = admission.candidate.public_key;
                if let Some(id) = config.node_id_of(&key) {
                    return Err(MembershipError::AlreadyMember { key, id });
                }
                if config.is_retired(&key) {
                    return Err(MembershipError::Retired { key });
                }
                if members.len() >= COMMITTEE_SIZE_MAX {
                    return Err(MembershipError::CommitteeFull);
                }
                admission.verify(config.network(), config.scheme())?;
                check_endorsements(config, &Endorsed::Add(admission.digest()), endorsements)?;
                members.push(admission.candidate.clone());
                Ok((members, None))
            }
            Change::Remove { key, reason, grounds } => {
                let id = config
                    .node_id_of(key)
                    .ok_or(MembershipError::NotMember { key: *key, epoch })?;
                let left = members.len() - 1;
                if left < config.members_min() {
                    return Err(MembershipError::BelowMinimum { left, min: config.members_min() });
                }
                members.remove(id.index());
                if !members.iter().any(|p| p.public) {
                    return Err(MembershipError::LastPublicMember);
                }
                match grounds {
                    Grounds::Endorsed(e) => {
                        let what = Endorsed::Remove { key: *key, reason: reason.clone() };
                        check_endorsements(config, &what, e)?;
                    }
                    Grounds::Evidence(ev) => {
                        if ev.signer != id || !ev.verify(config) {
                            return Err(MembershipError::BadEvidence { key: *key, epoch });
                        }
                    }
                }
                Ok((members, Some(*key)))
            }
            Change::Update(u) => {
                let key = u.member.public_key;
                let id =
                    config.node_id_of(&key).ok_or(MembershipError::NotMember { key, epoch })?;
                let bytes = Update::signing_bytes(config.network(), epoch, &u.member, &u.nonce);
                let item = SignedItem { key: &key, message: &bytes, signature: &u.signature };
                verify_all(config.scheme(), &[item])
                    .map_err(|_| MembershipError::BadUpdateSignature { key })?;
                members[id.index()] = u.member.clone();
                if !members.iter().any(|p| p.public) {
                    return Err(MembershipError::LastPublicMember);
                }
                Ok((members, None))
            }
        }
    }
}

/// A quorum of distinct members of `config`'s epoch, in increasing id order, each signing `what`.
fn check_endorsements(
    config: &ConsensusConfig,
    what: &Endorsed,
    endorsements: &[Endorsement],
) -> Result<(), MembershipError> {
    let epoch = config.epoch();
    let mut last: Option<NodeId> = None;
    let mut keys = Vec::with_capacity(endorsements.len());
    for e in endorsements {
        if last.is_some_and(|l| e.member <= l) {
            return Err(MembershipError::EndorsementOrder { id: e.member });
        }
        last = Some(e.member);
        let key = config
            .public_key(e.member)
            .map_err(|_| MembershipError::EndorserNotMember { id: e.member, epoch })?;
        keys.push(key);
    }
    let need = config.quorum_threshold();
    if endorsements.len() < need {
        return Err(MembershipError::TooFewEndorsements { got: endorsements.len(), need, epoch });
    }
    let message = what.signing_bytes(config.network(), epoch);
    let items: Vec<SignedItem<'_>> = endorsements
        .iter()
        .zip(&keys)
        .map(|(e, key)| SignedItem { key, message: &message, signature: &e.signature })
        .collect();
    verify_all(config.scheme(), &items)
        .map_err(|i| MembershipError::BadEndorsement { id: endorsements[i].member, epoch })
}

impl Encode for Admission {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.candidate).fixed(&self.nonce).put(&self.proof);
    }
}

impl Decode for Admission {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self { candidate: r.get()?, nonce: r.array("admission nonce")?, proof: r.get()? })
    }
}

impl Encode for Endorsement {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.member).put(&self.signature);
    }
}

impl Decode for Endorsement {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self { member: r.get()?, signature: r.get()? })
    }
}

fn endorsements(r: &mut Reader<'_>) -> Result<Vec<Endorsement>, CodecError> {
    r.list("endorsements", COMMITTEE_SIZE_MAX, |r| r.get())
}

fn put_endorsements(w: &mut Writer, list: &[Endorsement]) {
    w.len(list.len());
    for e in list {
        w.put(e);
    }
}

impl Encode for Change {
    fn encode(&self, w: &mut Writer) {
        w.u8(COMMAND_VERSION);
        match self {
            Change::Add { admission, endorsements } => {
                w.u8(KIND_ADD).put(admission);
                put_endorsements(w, endorsements);
            }
            Change::Remove { key, reason, grounds } => {
                w.u8(KIND_REMOVE).put(key).bytes(reason.as_bytes());
                match grounds {
                    Grounds::Endorsed(e) => {
                        w.u8(1);
                        put_endorsements(w, e);
                    }
                    Grounds::Evidence(ev) => {
                        w.u8(2).put(ev.as_ref());
                    }
                }
            }
            Change::Update(u) => {
                w.u8(KIND_UPDATE).put(&u.member).fixed(&u.nonce).put(&u.signature);
            }
        }
    }
}

impl Decode for Change {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let version = r.u8("membership command version")?;
        if version != COMMAND_VERSION {
            return Err(CodecError::UnsupportedVersion {
                got: version,
                supported: COMMAND_VERSION,
            });
        }
        Ok(match r.u8("membership command kind")? {
            KIND_ADD => Change::Add { admission: r.get()?, endorsements: endorsements(r)? },
            KIND_REMOVE => {
                let key = r.get()?;
                let raw = r.bytes("removal reason", REASON_BYTES_MAX)?;
                let reason = String::from_utf8(raw.to_vec()).map_err(|_| CodecError::Invalid {
                    what: "removal reason",
                    reason: "not UTF-8".into(),
                })?;
                let grounds = match r.u8("removal grounds")? {
                    1 => Grounds::Endorsed(endorsements(r)?),
                    2 => Grounds::Evidence(Box::new(r.get()?)),
                    tag => return Err(CodecError::InvalidTag { what: "removal grounds", tag }),
                };
                Change::Remove { key, reason, grounds }
            }
            KIND_UPDATE => Change::Update(Update {
                member: r.get()?,
                nonce: r.array("update nonce")?,
                signature: r.get()?,
            }),
            tag => return Err(CodecError::InvalidTag { what: "membership command kind", tag }),
        })
    }
}
