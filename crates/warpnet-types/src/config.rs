//! The committee of an epoch (ADR-006 `ConsensusConfig`), with the quorum fixed to `n - f`.
//!
//! ADR-006 sets the quorum at `2f + 1`. That is only safe when `n = 3f + 1`: for `n = 5`
//! (`f = 1`) two quorums of 3 can meet in a single (possibly Byzantine) member and certify
//! conflicting blocks. We use `q = n - f` (= ⌊2n/3⌋ + 1), which gives any two quorums at least
//! `f + 1` common members (so at least one honest) for every `n`, and stays reachable with `f`
//! members down. Everything here is computed from the participant list, never stored.

use crate::codec::{Encode, Writer};
use crate::crypto::{domain, signer_from_seed, PublicKey, SchemeId, Signer};
use crate::{Digest, Epoch, NetworkId, NodeId, Round};

/// The largest committee we run (seed 004's bound).
pub const COMMITTEE_SIZE_MAX: usize = 512;
/// Longest network address of a member, in bytes.
pub const ADDRESS_LEN_MAX: usize = 256;

/// One member of the committee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    pub public_key: PublicKey,
    /// Where its peers reach it (`host:port`).
    pub address: String,
    /// Publicly reachable: only such members may lead (seed 000: "Only public node could be leader").
    pub public: bool,
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
}

/// The committee of one epoch. Cheap to clone behind an `Arc`; immutable once built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusConfig {
    network: NetworkId,
    epoch: Epoch,
    scheme: SchemeId,
    participants: Vec<Participant>,
    quorum_rule: QuorumRule,
    /// Publicly reachable members in id order: the leader rotation. Derived in the constructor.
    leaders: Vec<NodeId>,
    /// Digest of everything above. Derived in the constructor.
    digest: Digest,
}

impl ConsensusConfig {
    /// ADR-006 `NewConsensusConfig`: members get ids 0, 1, 2, ... in the given order.
    pub fn new(
        network: NetworkId,
        epoch: Epoch,
        scheme: SchemeId,
        participants: Vec<Participant>,
    ) -> Result<Self, ConfigError> {
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
            if p.address.is_empty() || p.address.len() > ADDRESS_LEN_MAX {
                return Err(ConfigError::BadAddress { id });
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
            quorum_rule: QuorumRule::NMinusF,
            leaders,
            digest: Digest::ZERO,
        };
        c.digest = c.compute_digest();
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
                public: true,
            })
            .collect();
        let network = NetworkId::new("test").map_err(|_| ConfigError::Size { got: n })?;
        Ok((Self::new(network, Epoch(1), scheme, participants)?, signers))
    }

    /// The same committee under the ADR's unsafe `2f + 1` quorum. Only for the simulator's
    /// demonstration of the fork it allows; the node never builds one.
    #[must_use]
    pub fn with_unsafe_adr_quorum(mut self) -> Self {
        self.quorum_rule = QuorumRule::AdrTwoFPlusOneUnsafe;
        self.digest = self.compute_digest();
        self
    }

    /// Marks which members are publicly reachable (and so may lead); for tests and tools.
    pub fn with_public(mut self, public: &[bool]) -> Result<Self, ConfigError> {
        for (p, &is_public) in self.participants.iter_mut().zip(public) {
            p.public = is_public;
        }
        Self::new(self.network, self.epoch, self.scheme, self.participants).map(|c| {
            if self.quorum_rule == QuorumRule::NMinusF {
                c
            } else {
                c.with_unsafe_adr_quorum()
            }
        })
    }

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
        Digest::hash(domain::TAG_CONFIG, w.as_slice())
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
        let len = self.leaders.len() as u64;
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
        let mut order: Vec<usize> = (0..self.leaders.len()).collect();
        for i in 0..=pos {
            let j = i + (next() % (order.len() - i) as u64) as usize;
            order.swap(i, j);
        }
        self.leaders[order[pos]]
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

impl Encode for Participant {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.public_key).bytes(self.address.as_bytes()).bool(self.public);
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
