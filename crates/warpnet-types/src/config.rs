//! The committee of an epoch (ADR-006 `ConsensusConfig`), with the quorum fixed to `n - f`.
//!
//! ADR-006 sets the quorum at `2f + 1`. That is only safe when `n = 3f + 1`: for `n = 5`
//! (`f = 1`) two quorums of 3 can meet in a single (possibly Byzantine) member and certify
//! conflicting blocks. We use `q = n - f` (= ⌊2n/3⌋ + 1), which gives any two quorums at least
//! `f + 1` common members (so at least one honest) for every `n`, and stays reachable with `f`
//! members down. Everything here is computed from the participant list, never stored.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::crypto::{domain, signer_from_seed, PublicKey, SchemeId, Signer};
use crate::{BlockId, Digest, Epoch, Height, NetworkId, NodeId, Round};

/// The largest committee we run (seed 004's bound).
pub const COMMITTEE_SIZE_MAX: usize = 512;
/// Longest network address of a member, in bytes.
pub const ADDRESS_LEN_MAX: usize = 256;
/// The smallest committee membership changes may leave, unless the genesis sets another.
pub const MEMBERS_MIN_DEFAULT: usize = 4;

/// One member of the committee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub public_key: PublicKey,
    /// Where its peers reach it (`host:port`).
    pub address: String,
    /// Where clients reach its HTTP API (`host:port`; empty when not published).
    pub api_address: String,
    /// Publicly reachable: only such members may lead (seed 000: "Only public node could be leader").
    pub public: bool,
}

/// Where an epoch after the first begins: just after the committed block that ended the
/// previous epoch (rule EP3). The epoch's genesis block is the child of that block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochStart {
    /// The block that ended the previous epoch (its reconfiguration block).
    pub after: BlockId,
    pub height: Height,
    pub timestamp_ms: u64,
}

/// How the quorum is derived from `n`. Only `NMinusF` is safe for every `n`; the ADR's rule
/// exists so the simulator can demonstrate the fork it allows at `n = 5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuorumRule {
    /// `q = n - f`: safe for every `n`. The only rule a node runs.
    NMinusF,
    /// `q = 2f + 1` as written in ADR-006. UNSAFE unless `n = 3f + 1`. Simulation only.
    AdrTwoFPlusOneUnsafe,
}

/// Why a committee configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a committee needs 1 to {COMMITTEE_SIZE_MAX} members, got {got}")]
    Size { got: usize },
    #[error("member {id} has a key the {scheme:?} scheme refuses")]
    BadKey { id: NodeId, scheme: SchemeId },
    #[error("members {first} and {second} share a public key")]
    DuplicateKey { first: NodeId, second: NodeId },
    #[error("no member is publicly reachable, so no member may lead")]
    NoPublicMember,
    #[error("member {id} has an empty address or one over {ADDRESS_LEN_MAX} bytes")]
    BadAddress { id: NodeId },
    #[error("node {id} is not a member of a committee of {total}")]
    UnknownNode { id: NodeId, total: usize },
    #[error("member {id}'s key was removed from this network before and may never return")]
    Retired { id: NodeId },
}

/// The committee of one epoch. Cheap to clone behind an `Arc`; immutable once built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusConfig {
    network: NetworkId,
    epoch: Epoch,
    scheme: SchemeId,
    participants: Vec<Participant>,
    quorum_rule: QuorumRule,
    /// Where this epoch begins; `None` for the network's first committee.
    start: Option<EpochStart>,
    /// Keys removed in earlier epochs, sorted: never admitted again.
    retired: Vec<PublicKey>,
    /// Removals never leave fewer members than this.
    members_min: usize,
    /// The digest of the network's first committee: the network's identity across epochs.
    genesis: Digest,
    /// Publicly reachable members in id order: the leader rotation. Derived in the constructor.
    leaders: Vec<NodeId>,
    /// Digest of everything above. Derived in the constructor.
    digest: Digest,
}

impl ConsensusConfig {
    /// ADR-006 `NewConsensusConfig`: a network's first committee; members get ids 0, 1, 2, ...
    /// in the given order.
    pub fn new(
        network: NetworkId,
        epoch: Epoch,
        scheme: SchemeId,
        participants: Vec<Participant>,
    ) -> Result<Self, ConfigError> {
        Self::build(Next {
            network,
            epoch,
            scheme,
            participants,
            quorum_rule: QuorumRule::NMinusF,
            start: None,
            retired: Vec::new(),
            members_min: MEMBERS_MIN_DEFAULT,
            genesis: None,
        })
    }

    /// A later epoch's committee: `participants` (ids re-indexed in this order, ADR-006) with
    /// `newly_retired` added to the retired keys, starting after `start`. Identity is the
    /// public key; a `NodeId` is only an index within one epoch.
    pub fn next_epoch(
        &self,
        participants: Vec<Participant>,
        newly_retired: Option<PublicKey>,
        start: EpochStart,
    ) -> Result<Self, ConfigError> {
        let mut retired = self.retired.clone();
        retired.extend(newly_retired);
        retired.sort_by_key(|k| k.0);
        retired.dedup();
        Self::build(Next {
            network: self.network.clone(),
            epoch: self.epoch.next(),
            scheme: self.scheme,
            participants,
            quorum_rule: self.quorum_rule,
            start: Some(start),
            retired,
            members_min: self.members_min,
            genesis: Some(self.genesis),
        })
    }

    /// The same first committee with another floor for removals (a genesis parameter).
    pub fn with_members_min(self, members_min: usize) -> Result<Self, ConfigError> {
        Self::build(Next { members_min, ..self.into_next() })
    }

    fn into_next(self) -> Next {
        let genesis = self.start.map(|_| self.genesis);
        Next {
            network: self.network,
            epoch: self.epoch,
            scheme: self.scheme,
            participants: self.participants,
            quorum_rule: self.quorum_rule,
            start: self.start,
            retired: self.retired,
            members_min: self.members_min,
            genesis,
        }
    }

    fn build(next: Next) -> Result<Self, ConfigError> {
        let Next {
            network,
            epoch,
            scheme,
            participants,
            quorum_rule,
            start,
            retired,
            members_min,
            genesis,
        } = next;
        let mut retired = retired;
        retired.sort_by_key(|k| k.0);
        retired.dedup();
        let n = participants.len();
        if n == 0 || n > COMMITTEE_SIZE_MAX {
            return Err(ConfigError::Size { got: n });
        }
        let mut seen = std::collections::HashMap::new();
        for (i, p) in participants.iter().enumerate() {
            let id = NodeId(u16::try_from(i).unwrap_or(u16::MAX));
            scheme
                .scheme()
                .check_public_key(&p.public_key)
                .map_err(|_| ConfigError::BadKey { id, scheme })?;
            if let Some(&first) = seen.get(&p.public_key) {
                return Err(ConfigError::DuplicateKey { first, second: id });
            }
            seen.insert(p.public_key, id);
            if p.address.is_empty()
                || p.address.len() > ADDRESS_LEN_MAX
                || p.api_address.len() > ADDRESS_LEN_MAX
            {
                return Err(ConfigError::BadAddress { id });
            }
            if retired.binary_search_by_key(&p.public_key.0, |k| k.0).is_ok() {
                return Err(ConfigError::Retired { id });
            }
        }
        let leaders: Vec<NodeId> = participants
            .iter()
            .enumerate()
            .filter(|(_, p)| p.public)
            .map(|(i, _)| NodeId(u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        if leaders.is_empty() {
            return Err(ConfigError::NoPublicMember);
        }
        let mut c = Self {
            network,
            epoch,
            scheme,
            participants,
            quorum_rule,
            start,
            retired,
            members_min,
            genesis: genesis.unwrap_or(Digest::ZERO),
            leaders,
            digest: Digest::ZERO,
        };
        c.digest = c.compute_digest();
        if genesis.is_none() {
            c.genesis = c.digest;
        }
        Ok(c)
    }

    /// ADR-006 `NewConsensusConfigForTesting`: `n` members whose keys derive from `seed_base + i`,
    /// all public, on 127.0.0.1. Returns the signers too, in id order. Never for real nodes.
    pub fn for_testing(
        n: usize,
        scheme: SchemeId,
        seed_base: u64,
    ) -> Result<(Self, Vec<Box<dyn Signer>>), ConfigError> {
        let signers: Vec<Box<dyn Signer>> =
            (0..n as u64).map(|i| signer_from_seed(scheme, seed_base + i)).collect();
        let participants = signers
            .iter()
            .enumerate()
            .map(|(i, s)| Participant {
                public_key: s.public_key(),
                address: format!("127.0.0.1:{}", 7100 + i),
                api_address: String::new(),
                public: true,
            })
            .collect();
        let network = NetworkId::new("test").map_err(|_| ConfigError::Size { got: n })?;
        Ok((Self::new(network, Epoch(1), scheme, participants)?, signers))
    }

    /// The same committee under the ADR's unsafe `2f + 1` quorum. Only for the simulator's
    /// demonstration of the fork it allows; the node never builds one.
    #[must_use]
    pub fn with_unsafe_adr_quorum(self) -> Self {
        let next = Next { quorum_rule: QuorumRule::AdrTwoFPlusOneUnsafe, ..self.into_next() };
        Self::build(next).unwrap_or_else(|_| unreachable!("the committee was valid"))
    }

    /// Marks which members are publicly reachable (and so may lead); for tests and tools.
    pub fn with_public(self, public: &[bool]) -> Result<Self, ConfigError> {
        let mut next = self.into_next();
        for (p, &is_public) in next.participants.iter_mut().zip(public) {
            p.public = is_public;
        }
        Self::build(next)
    }

    /// Everything but the derived fields, canonically. What a first committee with default
    /// settings and no API addresses encodes is unchanged from before epochs existed; the rest
    /// is an extension after it (the encoding stays injective: the first part delimits itself).
    fn compute_digest(&self) -> Digest {
        let mut w = Writer::new();
        w.put(&self.network).put(&self.epoch).u8(self.scheme.wire_tag());
        w.u8(match self.quorum_rule {
            QuorumRule::NMinusF => 0,
            QuorumRule::AdrTwoFPlusOneUnsafe => 1,
        });
        w.len(self.participants.len());
        for p in &self.participants {
            w.put(&p.public_key).bytes(p.address.as_bytes()).bool(p.public);
        }
        let plain = self.start.is_none()
            && self.retired.is_empty()
            && self.members_min == MEMBERS_MIN_DEFAULT
            && self.participants.iter().all(|p| p.api_address.is_empty());
        if !plain {
            w.u8(1); // extension version
            for p in &self.participants {
                w.bytes(p.api_address.as_bytes());
            }
            w.len(self.retired.len());
            for k in &self.retired {
                w.put(k);
            }
            w.u64(self.members_min as u64);
            match &self.start {
                None => w.u8(0),
                Some(s) => {
                    w.u8(1).put(&s.after).put(&s.height).u64(s.timestamp_ms).put(&self.genesis)
                }
            };
        }
        Digest::hash(domain::TAG_CONFIG, w.as_slice())
    }

    /// Where this epoch begins (`None` for the network's first committee).
    pub fn start(&self) -> Option<&EpochStart> {
        self.start.as_ref()
    }

    /// Keys removed in earlier epochs (never admitted again), sorted.
    pub fn retired(&self) -> &[PublicKey] {
        &self.retired
    }

    /// Whether `key` was ever a member and was removed.
    pub fn is_retired(&self, key: &PublicKey) -> bool {
        self.retired.binary_search_by_key(&key.0, |k| k.0).is_ok()
    }

    /// The floor removals respect.
    pub fn members_min(&self) -> usize {
        self.members_min
    }

    /// The digest of the network's first committee: what identifies the network in every
    /// epoch (transport hellos sign it).
    pub fn genesis_digest(&self) -> Digest {
        self.genesis
    }

    pub fn network(&self) -> &NetworkId {
        &self.network
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn scheme(&self) -> SchemeId {
        self.scheme
    }

    pub fn quorum_rule(&self) -> QuorumRule {
        self.quorum_rule
    }

    /// Digest of the whole configuration; the genesis block commits to it.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }

    /// `n`.
    pub fn total_nodes(&self) -> usize {
        self.participants.len()
    }

    /// `f = (n - 1) / 3`: the most Byzantine members the committee tolerates.
    pub fn faulty_nodes(&self) -> usize {
        faulty_nodes(self.total_nodes())
    }

    /// Signatures a certificate needs: `n - f` (see the module doc for why not `2f + 1`).
    pub fn quorum_threshold(&self) -> usize {
        match self.quorum_rule {
            QuorumRule::NMinusF => quorum_threshold(self.total_nodes()),
            QuorumRule::AdrTwoFPlusOneUnsafe => 2 * self.faulty_nodes() + 1,
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        id.index() < self.total_nodes()
    }

    pub fn participant(&self, id: NodeId) -> Result<&Participant, ConfigError> {
        self.participants
            .get(id.index())
            .ok_or(ConfigError::UnknownNode { id, total: self.total_nodes() })
    }

    /// ADR-006 `GetPublicKey`.
    pub fn public_key(&self, id: NodeId) -> Result<&PublicKey, ConfigError> {
        self.participant(id).map(|p| &p.public_key)
    }

    /// The member holding `key`, if any.
    pub fn node_id_of(&self, key: &PublicKey) -> Option<NodeId> {
        self.participants
            .iter()
            .position(|p| p.public_key == *key)
            .and_then(|i| u16::try_from(i).ok())
            .map(NodeId)
    }

    /// Members allowed to lead, in rotation order.
    pub fn leader_candidates(&self) -> &[NodeId] {
        &self.leaders
    }

    /// L1: the leader of `round`. Rounds come in cycles of `len` (the number of publicly
    /// reachable members); in each cycle every candidate leads exactly once, in an order that is
    /// a deterministic permutation of the cycle number and the committee digest. A fixed order
    /// would always pair a member with the same successor (the next leader, who aggregates its
    /// votes), and a faulty successor would then keep that member's proposals from ever being
    /// certified; a changing order bounds how long that can last.
    pub fn leader(&self, round: Round) -> NodeId {
        self.rotate(round, &self.leaders)
    }

    /// L1 over `candidates` (leader reputation, LR3, passes the members eligible to lead):
    /// cycles of `candidates.len()` rounds, each a permutation drawn from the cycle number and
    /// the committee digest. With no candidate, the public members.
    pub fn rotate(&self, round: Round, candidates: &[NodeId]) -> NodeId {
        let candidates = if candidates.is_empty() { &self.leaders[..] } else { candidates };
        let len = candidates.len() as u64;
        let (cycle, pos) = (round.0 / len, (round.0 % len) as usize);
        let mut seed = u64::from_le_bytes(self.digest.0[..8].try_into().unwrap_or([0; 8]))
            ^ cycle.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = move || {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        // Fisher-Yates over indices; only the prefix up to `pos` is needed.
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        for i in 0..=pos {
            let j = i + (next() % (order.len() - i) as u64) as usize;
            order.swap(i, j);
        }
        candidates[order[pos]]
    }
}

/// `f = (n - 1) / 3` for a committee of `n` (0 for `n = 0`).
pub fn faulty_nodes(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// `q = n - f`.
pub fn quorum_threshold(n: usize) -> usize {
    n - faulty_nodes(n)
}

/// The canonical encoding of a whole committee (stored per epoch; sent to joining nodes).
/// Decoding rebuilds it through the constructor, so every check runs again.
impl Encode for ConsensusConfig {
    fn encode(&self, w: &mut Writer) {
        w.u8(1).put(&self.network).put(&self.epoch).u8(self.scheme.wire_tag());
        w.u8(match self.quorum_rule {
            QuorumRule::NMinusF => 0,
            QuorumRule::AdrTwoFPlusOneUnsafe => 1,
        });
        w.len(self.participants.len());
        for p in &self.participants {
            w.put(p);
        }
        w.len(self.retired.len());
        for k in &self.retired {
            w.put(k);
        }
        w.u64(self.members_min as u64);
        match &self.start {
            None => w.u8(0),
            Some(s) => w.u8(1).put(&s.after).put(&s.height).u64(s.timestamp_ms).put(&self.genesis),
        };
    }
}

impl Decode for ConsensusConfig {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let version = r.u8("committee encoding version")?;
        if version != 1 {
            return Err(CodecError::UnsupportedVersion { got: version, supported: 1 });
        }
        let network = r.get()?;
        let epoch = r.get()?;
        let scheme = SchemeId::from_wire_tag(r.u8("signature scheme")?)?;
        let quorum_rule = match r.u8("quorum rule")? {
            0 => QuorumRule::NMinusF,
            1 => QuorumRule::AdrTwoFPlusOneUnsafe,
            tag => return Err(CodecError::InvalidTag { what: "quorum rule", tag }),
        };
        let participants = r.list("members", COMMITTEE_SIZE_MAX, Reader::get)?;
        let retired = r.list("retired keys", 1 << 16, Reader::get)?;
        let members_min = r.u64("members floor")? as usize;
        let (start, genesis) = match r.u8("epoch start")? {
            0 => (None, None),
            1 => {
                let start =
                    EpochStart { after: r.get()?, height: r.get()?, timestamp_ms: r.u64("start")? };
                (Some(start), Some(r.get()?))
            }
            tag => return Err(CodecError::InvalidTag { what: "epoch start", tag }),
        };
        let next = Next {
            network,
            epoch,
            scheme,
            participants,
            quorum_rule,
            start,
            retired,
            members_min,
            genesis,
        };
        Self::build(next)
            .map_err(|e| CodecError::Invalid { what: "committee", reason: e.to_string() })
    }
}

/// The fields of a committee under construction.
struct Next {
    network: NetworkId,
    epoch: Epoch,
    scheme: SchemeId,
    participants: Vec<Participant>,
    quorum_rule: QuorumRule,
    start: Option<EpochStart>,
    retired: Vec<PublicKey>,
    members_min: usize,
    /// `None` for a first committee (its own digest).
    genesis: Option<Digest>,
}

impl Encode for Participant {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.public_key).bytes(self.address.as_bytes());
        w.bytes(self.api_address.as_bytes()).bool(self.public);
    }
}

impl Decode for Participant {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let public_key = r.get()?;
        let text = |r: &mut Reader<'_>, what| {
            let b = r.bytes(what, ADDRESS_LEN_MAX)?;
            String::from_utf8(b.to_vec())
                .map_err(|_| CodecError::Invalid { what, reason: "not UTF-8".into() })
        };
        let address = text(r, "member address")?;
        let api_address = text(r, "member API address")?;
        let public = r.bool("member public flag")?;
        Ok(Self { public_key, address, api_address, public })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adr_examples_and_the_fixed_n5_case() {
        // ADR-006: 4 nodes f=1 q=3; 7 nodes f=2 q=5. Fixed: 5 nodes q=4 (the ADR says 3).
        for (n, f, q) in [
            (1, 0, 1),
            (2, 0, 2),
            (3, 0, 3),
            (4, 1, 3),
            (5, 1, 4),
            (6, 1, 5),
            (7, 2, 5),
            (10, 3, 7),
        ] {
            assert_eq!((faulty_nodes(n), quorum_threshold(n)), (f, q), "n={n}");
        }
        let (c, _) = ConsensusConfig::for_testing(5, SchemeId::InsecureSimulation, 0).unwrap();
        assert_eq!((c.total_nodes(), c.faulty_nodes(), c.quorum_threshold()), (5, 1, 4));
        assert_eq!(c.clone().with_unsafe_adr_quorum().quorum_threshold(), 3);
    }

    /// Quorum intersection: for every n in 1..=512, two quorums share at least f+1 members
    /// (so at least one honest), a quorum is reachable with f members down, and q = ⌊2n/3⌋+1.
    #[test]
    fn quorums_intersect_in_an_honest_member_for_every_committee_size() {
        for n in 1..=COMMITTEE_SIZE_MAX {
            let (f, q) = (faulty_nodes(n), quorum_threshold(n));
            assert!(2 * q > n + f, "n={n}: overlap {} < f+1={}", 2 * q - n, f + 1);
            assert!(n - f >= q, "n={n}: no quorum with f down");
            assert!(3 * f < n, "n={n}: f too large");
            assert_eq!(q, 2 * n / 3 + 1, "n={n}");
        }
    }

    /// The ADR's 2f+1 fails exactly when n != 3f+1: the overlap can be a single Byzantine member.
    #[test]
    fn the_adr_quorum_is_unsafe_whenever_n_is_not_3f_plus_1() {
        for n in 1..=COMMITTEE_SIZE_MAX {
            let f = faulty_nodes(n);
            let adr_q = 2 * f + 1;
            let overlap = (2 * adr_q).saturating_sub(n);
            assert_eq!(overlap > f, n == 3 * f + 1, "n={n}");
        }
    }

    #[test]
    fn leaders_rotate_over_public_members_only() {
        let (c, _) = ConsensusConfig::for_testing(4, SchemeId::InsecureSimulation, 0).unwrap();
        let c = c.with_public(&[false, true, false, true]).unwrap();
        assert_eq!(c.leader_candidates(), &[NodeId(1), NodeId(3)]);
        for cycle in 0..50 {
            let mut leaders: Vec<_> = (0..2).map(|i| c.leader(Round(cycle * 2 + i)).0).collect();
            leaders.sort_unstable();
            assert_eq!(leaders, [1, 3], "each public member leads once per cycle");
        }
        assert_eq!(c.with_public(&[false; 4]), Err(ConfigError::NoPublicMember));
    }

    /// L1: every cycle is a rotation, the order is deterministic, and successors vary.
    #[test]
    fn leader_order_is_a_per_cycle_permutation_with_varying_successors() {
        let (c, _) = ConsensusConfig::for_testing(7, SchemeId::InsecureSimulation, 0).unwrap();
        let mut successors_of_0 = std::collections::HashSet::new();
        for cycle in 0..100u64 {
            let order: Vec<NodeId> = (0..7).map(|i| c.leader(Round(cycle * 7 + i))).collect();
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, (0..7).map(NodeId).collect::<Vec<_>>());
            assert_eq!(order, (0..7).map(|i| c.leader(Round(cycle * 7 + i))).collect::<Vec<_>>());
            if let Some(p) = order.iter().position(|&id| id == NodeId(0)) {
                if p + 1 < 7 {
                    successors_of_0.insert(order[p + 1]);
                }
            }
        }
        assert!(successors_of_0.len() >= 5, "successors of node 0: {successors_of_0:?}");
    }

    #[test]
    fn constructor_refuses_bad_committees() {
        let (c, _) = ConsensusConfig::for_testing(3, SchemeId::Ed25519, 0).unwrap();
        let net = c.network().clone();
        let mut ps = c.participants().to_vec();
        assert_eq!(
            ConsensusConfig::new(net.clone(), Epoch(1), SchemeId::Ed25519, vec![]),
            Err(ConfigError::Size { got: 0 })
        );
        ps[2].public_key = ps[0].public_key;
        assert_eq!(
            ConsensusConfig::new(net.clone(), Epoch(1), SchemeId::Ed25519, ps.clone()),
            Err(ConfigError::DuplicateKey { first: NodeId(0), second: NodeId(2) })
        );
        ps[2].public_key = PublicKey([0; 32]); // a small-order point: weak
        assert_eq!(
            ConsensusConfig::new(net.clone(), Epoch(1), SchemeId::Ed25519, ps.clone()),
            Err(ConfigError::BadKey { id: NodeId(2), scheme: SchemeId::Ed25519 })
        );
        let mut ps = c.participants().to_vec();
        ps[1].address.clear();
        assert_eq!(
            ConsensusConfig::new(net, Epoch(1), SchemeId::Ed25519, ps),
            Err(ConfigError::BadAddress { id: NodeId(1) })
        );
        assert!(c.public_key(NodeId(3)).is_err());
        assert_eq!(c.node_id_of(c.public_key(NodeId(2)).unwrap()), Some(NodeId(2)));
    }

    #[test]
    fn digest_covers_epoch_and_quorum_rule() {
        let (c, _) = ConsensusConfig::for_testing(4, SchemeId::InsecureSimulation, 0).unwrap();
        assert_ne!(c.digest(), c.clone().with_unsafe_adr_quorum().digest());
        let c2 = ConsensusConfig::new(
            c.network().clone(),
            Epoch(2),
            c.scheme(),
            c.participants().to_vec(),
        )
        .unwrap();
        assert_ne!(c.digest(), c2.digest());
    }
}
