//! Safety rules (Jolteon / DiemBFT-v4, 2-chain), and the safety data they persist.
//!
//! The data a signature depends on is persisted *before* the signed vote or timeout can leave the
//! node: [`SafetyRules`] returns signed messages wrapped in [`Sealed`], which only
//! [`SafetyRules::release`] opens, and only for a version the runtime has reported durable
//! (`Input::Persisted` for the write that carried it). A restarted node asked to vote or time out again in a round it
//! already signed for re-sends the same signed message (S3).

use warpnet_types::codec::{CodecError, Decode, Encode, Reader, Writer};
use warpnet_types::{
    Block, ConsensusConfig, Epoch, NodeId, QuorumCertificate, Round, Signer, Timeout,
    TimeoutCertificate, Vote,
};

/// What must survive a crash for this node never to sign two conflicting messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetyData {
    pub epoch: Epoch,
    /// Highest round in which this node voted or timed out (S1a, S2).
    pub last_voted_round: Round,
    /// Highest QC observed; its round is the 2-chain lock ("one-chain round").
    pub high_qc: QuorumCertificate,
    /// Highest TC observed: with `high_qc` it proves which round the node may be in (PM0), so
    /// a node that restarts in a round it entered by a TC can still time out there (S2).
    pub high_tc: Option<TimeoutCertificate>,
    /// The last vote signed, re-sent verbatim if asked again for its round (S3).
    pub last_vote: Option<Vote>,
    /// The last timeout signed, re-sent verbatim if asked again for its round (S3).
    pub last_timeout: Option<Timeout>,
    /// S4: the highest round in which a proposal of ours may have left. Raised one round ahead
    /// with the vote or timeout that precedes a round we lead, so the proposal leaves without
    /// waiting for a write; after a restart we never propose at or below it.
    pub proposal_floor: Round,
}

impl SafetyData {
    /// The state of a member that has never signed anything in this committee.
    pub fn initial(config: &ConsensusConfig) -> Self {
        Self {
            epoch: config.epoch(),
            last_voted_round: Round(0),
            high_qc: QuorumCertificate::genesis(config),
            high_tc: None,
            last_vote: None,
            last_timeout: None,
            proposal_floor: Round(0),
        }
    }
}

impl Encode for SafetyData {
    fn encode(&self, w: &mut Writer) {
        w.u8(2).put(&self.epoch).put(&self.last_voted_round).put(&self.high_qc).put(&self.high_tc);
        w.put(&self.last_vote);
        w.put(&self.last_timeout);
        w.put(&self.proposal_floor);
    }
}

impl Decode for SafetyData {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let version = r.u8("safety data version")?;
        if version != 1 && version != 2 {
            return Err(CodecError::UnsupportedVersion { got: version, supported: 2 });
        }
        let epoch = r.get()?;
        let last_voted_round: Round = r.get()?;
        let high_qc = r.get()?;
        let high_tc = r.get()?;
        let last_vote = r.get()?;
        let last_timeout = r.get()?;
        // Version 1 had no floor: its proposals left only after their own vote was durable,
        // so the last voted round bounds them.
        let proposal_floor = if version == 1 { last_voted_round } else { r.get()? };
        Ok(Self {
            epoch,
            last_voted_round,
            high_qc,
            high_tc,
            last_vote,
            last_timeout,
            proposal_floor,
        })
    }
}

/// Why the safety rules refused to sign.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    #[error("already voted or timed out in round {last_voted}, refusing a vote for round {round}")]
    AlreadyVoted { round: Round, last_voted: Round },
    #[error("block of round {round} is justified neither by its QC (round {qc_round}) nor by a TC whose highest QC round is at most {qc_round}")]
    Unjustified { round: Round, qc_round: Round },
    #[error("already signed a timeout for round {last_voted}, refusing round {round}")]
    TimeoutTooOld { round: Round, last_voted: Round },
    #[error(
        "not entitled to round {round}: highest QC round {qc_round}, highest TC round {tc_round:?}"
    )]
    NotInRound { round: Round, qc_round: Round, tc_round: Option<Round> },
}

/// A signed message that may leave the node only once `version` of the safety data is durable.
#[derive(Debug)]
#[must_use = "a sealed message must be kept until its safety data is persisted"]
pub struct Sealed<T> {
    version: u64,
    message: T,
}

impl<T> Sealed<T> {
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// The signing authority of one member: decides whether it may sign, updates and versions the
/// safety data, and holds back what it signed until that version is durable.
pub struct SafetyRules {
    data: SafetyData,
    /// Version of `data`; bumped on every change that must be persisted.
    version: u64,
    /// Highest version the runtime reported durable.
    durable: u64,
    /// S4: the proposal floor loaded at the start; no proposal at or below it.
    restart_floor: Round,
    /// The version that raised the proposal floor last (proposals under it leave with it).
    floor_version: u64,
    #[cfg(feature = "mutations")]
    pub(crate) mutation: Option<crate::params::Mutation>,
}

impl SafetyRules {
    /// From persisted data (or `SafetyData::initial`). What was loaded is durable by definition.
    pub fn new(data: SafetyData) -> Self {
        Self {
            restart_floor: data.proposal_floor,
            data,
            version: 0,
            durable: 0,
            floor_version: 0,
            #[cfg(feature = "mutations")]
            mutation: None,
        }
    }

    /// For data that is not on disk yet (a new epoch's, EP3): nothing sealed behind it leaves
    /// before the write carrying it is durable.
    pub fn unpersisted(data: SafetyData) -> Self {
        Self { version: 1, ..Self::new(data) }
    }

    pub fn data(&self) -> &SafetyData {
        &self.data
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Highest version reported durable.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Whether changes are waiting to be persisted.
    pub fn dirty(&self) -> bool {
        self.version > self.durable
    }

    /// Records that `version` (and all before it) is durable.
    pub fn persisted(&mut self, version: u64) {
        self.durable = self.durable.max(version.min(self.version));
    }

    /// Opens a sealed message if its version is durable; gives it back otherwise.
    pub fn release<T>(&self, sealed: Sealed<T>) -> Result<T, Sealed<T>> {
        #[cfg(feature = "mutations")]
        if self.mutation == Some(crate::params::Mutation::ReleaseBeforePersist) {
            return Ok(sealed.message);
        }
        if sealed.version <= self.durable {
            Ok(sealed.message)
        } else {
            Err(sealed)
        }
    }

    /// S4: a leader proposes only in a round above every round it voted or timed out in, and,
    /// after a restart, above the proposal floor it loaded: a proposal may have left there
    /// before the crash, so another one would be an equivocation.
    pub fn may_propose(&self, round: Round) -> bool {
        #[cfg(feature = "mutations")]
        if self.mutation == Some(crate::params::Mutation::S4IgnoreFloor) {
            return round > self.data.last_voted_round;
        }
        round > self.data.last_voted_round && round > self.restart_floor
    }

    /// S4: seals a leader's proposal for `round` behind the proposal floor: it leaves once a
    /// durable floor covers its round. Usually the floor was raised ahead (see
    /// [`SafetyRules::reserve`]) and is durable already: the proposal leaves at once, without
    /// waiting for its own vote's write.
    pub fn seal_proposal<T>(&mut self, round: Round, message: T) -> Sealed<T> {
        if self.data.proposal_floor < round {
            self.data.proposal_floor = round;
            self.version += 1;
            self.floor_version = self.version;
        }
        Sealed { version: self.floor_version, message }
    }

    /// S4: raises the proposal floor to `round`, a round we lead, in the version being written
    /// now (with a vote or timeout of the round before), so our proposal need not wait.
    fn reserve(&mut self, round: Round) {
        if self.data.proposal_floor < round {
            self.data.proposal_floor = round;
            self.floor_version = self.version;
        }
    }

    fn seal<T>(&mut self, message: T) -> Sealed<T> {
        self.version += 1;
        Sealed { version: self.version, message }
    }

    /// Observes a (verified) QC: the lock only moves up. Returns whether it changed.
    pub fn observe_qc(&mut self, qc: &QuorumCertificate) -> bool {
        if qc.round() > self.data.high_qc.round() {
            self.data.high_qc = qc.clone();
            self.version += 1;
            true
        } else {
            false
        }
    }

    /// Observes a (verified) TC: keeps the highest. Returns whether it changed.
    pub fn observe_tc(&mut self, tc: &TimeoutCertificate) -> bool {
        if self.data.high_tc.as_ref().is_none_or(|h| h.round() < tc.round()) {
            self.data.high_tc = Some(tc.clone());
            self.version += 1;
            true
        } else {
            false
        }
    }

    /// Signs a vote for `block` (whose QC and TC are verified) if the rules allow.
    ///
    /// - S1a: vote only in a round above every round voted or timed out in;
    /// - S1b: vote if `block.round == qc.round + 1`, or
    /// - S1c: if `block.round == tc.round + 1` and `qc.round >= tc.max_high_qc_round()`;
    /// - S3: asked again for the round of the last vote and the same block, re-send that vote.
    ///
    /// `leads_next`: we lead the next round after this block (S4 raises the floor ahead).
    pub fn vote(
        &mut self,
        config: &ConsensusConfig,
        me: NodeId,
        signer: &dyn Signer,
        block: &Block,
        tc: Option<&TimeoutCertificate>,
        leads_next: bool,
    ) -> Result<Sealed<Vote>, SafetyError> {
        let round = block.round();
        if let Some(v) = &self.data.last_vote {
            if v.round == round && v.block_id == block.id() {
                // S3: the same vote again (e.g. after a restart); nothing new to persist.
                return Ok(Sealed { version: self.version, message: v.clone() });
            }
        }
        // S1a
        #[cfg(feature = "mutations")]
        let s1a_off = self.mutation == Some(crate::params::Mutation::S1aVoteAgain);
        #[cfg(not(feature = "mutations"))]
        let s1a_off = false;
        if round <= self.data.last_voted_round && !s1a_off {
            return Err(SafetyError::AlreadyVoted {
                round,
                last_voted: self.data.last_voted_round,
            });
        }
        let qc_round = block.justify().round();
        let by_qc = round == qc_round.next(); // S1b
        let by_tc =
            tc.is_some_and(|tc| round == tc.round().next() && qc_round >= tc.max_high_qc_round()); // S1c
        if !(by_qc || by_tc) {
            return Err(SafetyError::Unjustified { round, qc_round });
        }
        self.observe_qc(block.justify());
        let vote = Vote::sign(config, block, me, signer);
        self.data.last_voted_round = round;
        self.data.last_vote = Some(vote.clone());
        let sealed = self.seal(vote);
        if leads_next {
            self.reserve(round.next());
        }
        Ok(sealed)
    }

    /// Signs a timeout for `round` carrying the highest QC, if the rules allow.
    ///
    /// - S2: time out only in the round the node is entitled to (`round == high_qc.round + 1`
    ///   or `round == tc.round + 1`) and never below the last voted round; afterwards the node
    ///   never votes in `round` (last voted round := round);
    /// - S3: asked again for the round of the last timeout, re-send that timeout.
    ///
    /// `leads_next`: we lead the next round after our highest QC's block (S4's floor).
    pub fn timeout(
        &mut self,
        config: &ConsensusConfig,
        me: NodeId,
        signer: &dyn Signer,
        round: Round,
        leads_next: bool,
    ) -> Result<Sealed<Timeout>, SafetyError> {
        if let Some(t) = &self.data.last_timeout {
            if t.round == round {
                return Ok(Sealed { version: self.version, message: t.clone() });
            }
        }
        if round < self.data.last_voted_round {
            return Err(SafetyError::TimeoutTooOld {
                round,
                last_voted: self.data.last_voted_round,
            });
        }
        let qc_round = self.data.high_qc.round();
        let tc_round = self.data.high_tc.as_ref().map(TimeoutCertificate::round);
        if round != qc_round.next() && tc_round.map(Round::next) != Some(round) {
            return Err(SafetyError::NotInRound { round, qc_round, tc_round });
        }
        let timeout = Timeout::sign(config, round, self.data.high_qc.clone(), me, signer);
        self.data.last_voted_round = round;
        self.data.last_timeout = Some(timeout.clone());
        let sealed = self.seal(timeout);
        if leads_next {
            self.reserve(round.next());
        }
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::{Height, SchemeId};

    fn setup() -> (ConsensusConfig, Vec<Box<dyn Signer>>) {
        ConsensusConfig::for_testing(4, SchemeId::InsecureSimulation, 0).unwrap()
    }

    fn block(c: &ConsensusConfig, round: u64, qc: QuorumCertificate) -> Block {
        Block::new(c.epoch(), Round(round), Height(1), NodeId(0), qc, 0, vec![])
    }

    #[test]
    fn s1_votes_once_per_round_and_only_when_justified() {
        let (c, s) = setup();
        let mut rules = SafetyRules::new(SafetyData::initial(&c));
        let g = QuorumCertificate::genesis(&c);
        let b1 = block(&c, 1, g.clone());
        let v = rules.vote(&c, NodeId(1), s[1].as_ref(), &b1, None, false).unwrap();
        assert_eq!(
            v.version(),
            1,
            "the genesis QC changes nothing; the vote bumps the version once"
        );
        // S3: the same block again gives the same vote without a new version.
        let again = rules.vote(&c, NodeId(1), s[1].as_ref(), &b1, None, false).unwrap();
        assert_eq!(again.version(), v.version());
        // S1a: a different block in the same round is refused.
        let other = Block::new(c.epoch(), Round(1), Height(1), NodeId(0), g.clone(), 7, vec![]);
        assert!(matches!(
            rules.vote(&c, NodeId(1), s[1].as_ref(), &other, None, false),
            Err(SafetyError::AlreadyVoted { .. })
        ));
        // S1b: round 3 justified by a round-0 QC without a TC is refused.
        let b3 = block(&c, 3, g);
        assert!(matches!(
            rules.vote(&c, NodeId(1), s[1].as_ref(), &b3, None, false),
            Err(SafetyError::Unjustified { .. })
        ));
    }

    #[test]
    fn sealed_messages_open_only_once_persisted() {
        let (c, s) = setup();
        let mut rules = SafetyRules::new(SafetyData::initial(&c));
        let b1 = block(&c, 1, QuorumCertificate::genesis(&c));
        let sealed = rules.vote(&c, NodeId(1), s[1].as_ref(), &b1, None, false).unwrap();
        let version = sealed.version();
        let sealed = rules.release(sealed).expect_err("not durable yet");
        rules.persisted(version - 1);
        let sealed = rules.release(sealed).expect_err("an older version is not enough");
        rules.persisted(version);
        assert!(rules.release(sealed).is_ok());
        assert!(!rules.dirty());
    }

    #[test]
    fn s2_timeout_blocks_later_votes_in_that_round() {
        let (c, s) = setup();
        let mut rules = SafetyRules::new(SafetyData::initial(&c));
        let t = rules.timeout(&c, NodeId(2), s[2].as_ref(), Round(1), false).unwrap();
        let again = rules.timeout(&c, NodeId(2), s[2].as_ref(), Round(1), false).unwrap();
        assert_eq!(t.version(), again.version(), "S3: same timeout re-sent");
        let b1 = block(&c, 1, QuorumCertificate::genesis(&c));
        assert!(matches!(
            rules.vote(&c, NodeId(2), s[2].as_ref(), &b1, None, false),
            Err(SafetyError::AlreadyVoted { .. })
        ));
        assert!(matches!(
            rules.timeout(&c, NodeId(2), s[2].as_ref(), Round(5), false),
            Err(SafetyError::NotInRound { .. })
        ));
    }

    #[test]
    fn safety_data_roundtrips() {
        let (c, s) = setup();
        let mut rules = SafetyRules::new(SafetyData::initial(&c));
        let b1 = block(&c, 1, QuorumCertificate::genesis(&c));
        let _ = rules.vote(&c, NodeId(1), s[1].as_ref(), &b1, None, false).unwrap();
        let _ = rules.timeout(&c, NodeId(1), s[1].as_ref(), Round(1), false).unwrap();
        let bytes = rules.data().to_bytes();
        assert_eq!(&SafetyData::from_bytes(&bytes).unwrap(), rules.data());
    }
}
