//! Byzantine replicas. Each runs the honest core (so it knows rounds, leaders and certificates)
//! and distorts what it sends or adds traffic of its own, per its [`Behavior`]. Messages are
//! signed with its own key only: the adversary never forges another member's signature.

use std::collections::VecDeque;
use std::rc::Rc;

use warpnet_core::Status;
use warpnet_types::certs::{timeout_signing_bytes, vote_signing_bytes};
use warpnet_types::health::{summary_due, BlockHealth, HealthSummary};
use warpnet_types::message::MESSAGE_BYTES_MAX;
use warpnet_types::{
    Block, ConsensusConfig, Digest, Height, Message, NodeId, Proposal, QuorumCertificate, Round,
    Signature, Signer, Timeout, TimeoutCertificate, TimeoutMsg, Vote, VoterBitmap,
};

use crate::config::Behavior;
use crate::rng::Rng;

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A member of the sender's current committee.
    Node(NodeId),
    /// Whoever holds this key (the core names peers by key).
    Key(warpnet_types::PublicKey),
    /// Every other member of the sender's current committee.
    All,
}

/// An encoded frame ready for the network, with its round (for per-round partitions).
pub type Out = (Target, Rc<[u8]>, Option<Round>);

fn out(target: Target, m: &Message) -> Out {
    let round = match m {
        Message::Proposal(p) => Some(p.block.round()),
        Message::Vote(v) => Some(v.round),
        Message::Timeout(t) => Some(t.timeout.round),
        _ => None,
    };
    (target, m.to_frame().into(), round)
}

fn raw_vote(
    config: &ConsensusConfig,
    me: NodeId,
    signer: &dyn Signer,
    round: Round,
    block_id: Digest,
) -> Vote {
    let bytes = vote_signing_bytes(config.network(), config.epoch(), round, block_id);
    Vote { epoch: config.epoch(), round, block_id, voter: me, signature: signer.sign(&bytes) }
}

/// A block by `me` at (round, height) on `justify`, signed as a proposal.
#[allow(clippy::too_many_arguments)]
/// The leader's own proposal `p` rebuilt with another timestamp and payload (its round,
/// height, QC, TC and health records kept, the summary as an honest leader would carry it
/// with this payload, from its `core`'s view, H4), signed again.
fn reproposal(
    config: &ConsensusConfig,
    signer: &dyn Signer,
    (p, core): (&Proposal, Option<&warpnet_core::Core>),
    timestamp_ms: u64,
    payload: Vec<Vec<u8>>,
) -> Proposal {
    let b = &p.block;
    let mut health = b.health().clone();
    let change =
        payload.iter().any(|c| warpnet_types::membership::Change::from_command(c).is_some());
    health.summary = if summary_due(b.height()) || change {
        let grandparent = core.and_then(|c| c.block(&b.parent())).map(Block::parent);
        let seen = grandparent.and_then(|g| core.and_then(|c| c.health_seen_from(g)));
        health.summary.clone().or(seen.map(|h| h.summary.clone()))
    } else {
        None
    };
    let block = Block::new(
        config.epoch(),
        b.round(),
        b.height(),
        b.proposer(),
        b.justify().clone(),
        timestamp_ms,
        payload,
    )
    .with_health(health);
    Proposal::sign(config, block, p.tc.clone(), signer)
}

/// The leader's own proposal `p` with other health records, signed again.
fn rerecord(
    config: &ConsensusConfig,
    signer: &dyn Signer,
    p: &Proposal,
    health: BlockHealth,
) -> Proposal {
    let block = p.block.clone().with_health(health);
    Proposal::sign(config, block, p.tc.clone(), signer)
}

fn proposal(
    config: &ConsensusConfig,
    signer: &dyn Signer,
    me: NodeId,
    (round, height): (Round, Height),
    justify: QuorumCertificate,
    timestamp_ms: u64,
    payload: Vec<Vec<u8>>,
    tc: Option<TimeoutCertificate>,
) -> Proposal {
    let block = Block::new(config.epoch(), round, height, me, justify, timestamp_ms, payload);
    Proposal::sign(config, block, tc, signer)
}

/// A removal of another member endorsed by `me` alone: decodes, but a quorum is missing (EP1).
fn self_endorsed_removal(
    config: &ConsensusConfig,
    me: NodeId,
    signer: &dyn Signer,
    i: u16,
) -> Vec<u8> {
    use warpnet_types::membership::{Change, Endorsed, Endorsement, Grounds};
    let n = config.total_nodes() as u16;
    let victim = NodeId((me.0 + 1 + i) % n);
    let key = *config.public_key(victim).unwrap_or(&signer.public_key());
    let reason = format!("no reason {i}");
    let what = Endorsed::Remove { key, reason: reason.clone() };
    let endorsements = vec![Endorsement::sign(config, me, &what, signer)];
    Change::Remove { key, reason, grounds: Grounds::Endorsed(endorsements) }.to_command()
}

fn corrupt(sig: &mut Signature) {
    sig.0[0] ^= 0x55;
}

pub struct Byzantine {
    behavior: Behavior,
    rng: Rng,
    /// Frames seen or sent, for replays (bounded).
    recorded: VecDeque<Rc<[u8]>>,
    oversized_sent: bool,
    /// The equivocator's second version for its witness, re-sent on ticks so that a witness
    /// that restarts (and forgets what it saw) is offered it again.
    second_version: Option<(NodeId, Rc<[u8]>)>,
}

impl Byzantine {
    pub fn new(behavior: Behavior, rng: Rng) -> Self {
        Self {
            behavior,
            rng,
            recorded: VecDeque::new(),
            oversized_sent: false,
            second_version: None,
        }
    }

    fn record(&mut self, frame: Rc<[u8]>) {
        if self.recorded.len() >= 64 {
            self.recorded.pop_front();
        }
        self.recorded.push_back(frame);
    }

    /// Sees an incoming message (before the honest core does).
    pub fn observe(
        &mut self,
        config: &ConsensusConfig,
        me: NodeId,
        signer: &dyn Signer,
        message: &Message,
    ) -> Vec<Out> {
        match (self.behavior, message) {
            (Behavior::Replayer, m) => {
                self.record(m.to_frame().into());
                Vec::new()
            }
            (Behavior::ConflictingVoter, Message::Proposal(p)) => {
                // Votes for whatever it sees, whatever the safety rules say.
                let v = raw_vote(config, me, signer, p.block.round(), p.block.id());
                let to = config.leader(p.block.round().next());
                vec![out(Target::Node(to), &Message::Vote(v))]
            }
            _ => Vec::new(),
        }
    }

    /// Rewrites what the honest core wants to send.
    /// `core`: its own (honest) core, for what an honest leader would write.
    pub fn distort(
        &mut self,
        config: &ConsensusConfig,
        me: NodeId,
        signer: &dyn Signer,
        core: Option<&warpnet_core::Core>,
        sends: Vec<(Target, Message)>,
    ) -> Vec<Out> {
        let n = config.total_nodes() as u16;
        let mut result = Vec::new();
        for (target, m) in sends {
            match (self.behavior, m) {
                (Behavior::Silent, _) => {}
                (Behavior::EquivocatingProposer, Message::Proposal(p)) => {
                    let b = &p.block;
                    let mut payload = b.payload().clone();
                    payload.push(format!("equivocation-{}", self.rng.next_u64()).into_bytes());
                    let p2 = reproposal(config, signer, (&p, core), b.timestamp_ms(), payload);
                    // Halves get different blocks (a split no one can see), and one member gets
                    // both, so the equivocation is also caught as evidence.
                    let witness = NodeId((me.0 + 1) % n);
                    for id in (0..n).map(NodeId).filter(|&id| id != me) {
                        let which = if id.0 % 2 == 0 { &p } else { &p2 };
                        result.push(out(Target::Node(id), &Message::Proposal(which.clone())));
                        if id == witness {
                            let other = if id.0 % 2 == 0 { &p2 } else { &p };
                            let o = out(Target::Node(id), &Message::Proposal(other.clone()));
                            self.second_version = Some((id, o.1.clone()));
                            result.push(o);
                        }
                    }
                }
                (Behavior::Overstepper, Message::Proposal(p)) => {
                    let b = &p.block;
                    let (timestamp, payload) = if b.round().0 % 2 == 1 {
                        (b.timestamp_ms() + 3_600_000, b.payload().clone())
                    } else {
                        (b.timestamp_ms(), vec![vec![0xAB; 512]; 200])
                    };
                    let p2 = reproposal(config, signer, (&p, core), timestamp, payload);
                    result.push(out(target, &Message::Proposal(p2)));
                }
                (Behavior::Reconfigurer, Message::Proposal(p)) => {
                    let b = &p.block;
                    let mut payload = b.payload().clone();
                    let changes = if b.round().0 % 2 == 1 { 1 } else { 2 };
                    for i in 0..changes {
                        payload.push(self_endorsed_removal(config, me, signer, i));
                    }
                    let p2 = reproposal(config, signer, (&p, core), b.timestamp_ms(), payload);
                    result.push(out(target, &Message::Proposal(p2)));
                }
                (Behavior::VoteDropper, Message::Proposal(p))
                    if p.block.health().late.is_some() =>
                {
                    let mut health = p.block.health().clone();
                    health.late = None;
                    result.push(out(
                        target,
                        &Message::Proposal(rerecord(config, signer, &p, health)),
                    ));
                }
                (Behavior::HealthLiar, Message::Proposal(p)) => {
                    let health = self.lie(config, me, p.block.health().clone());
                    result.push(out(
                        target,
                        &Message::Proposal(rerecord(config, signer, &p, health)),
                    ));
                }
                (Behavior::FalseAttester, Message::Attestation(a)) => {
                    let everyone: Vec<NodeId> = (0..n).map(NodeId).filter(|&id| id != me).collect();
                    let reached = VoterBitmap::from_ids(n as usize, &everyone)
                        .unwrap_or_else(|_| a.reached.clone());
                    let lie =
                        warpnet_types::Attestation::sign(config, me, a.at_ms, reached, signer);
                    result.push(out(target, &Message::Attestation(lie)));
                }
                (Behavior::DoubleVoter, Message::Vote(v)) => {
                    let fake = Digest::hash(b"fake", &self.rng.next_u64().to_le_bytes());
                    let v2 = raw_vote(config, me, signer, v.round, fake);
                    result.push(out(target, &Message::Vote(v)));
                    result.push(out(target, &Message::Vote(v2)));
                }
                (Behavior::InvalidSignatures, mut m) => {
                    match &mut m {
                        Message::Vote(v) => corrupt(&mut v.signature),
                        Message::Timeout(t) => corrupt(&mut t.timeout.signature),
                        Message::Proposal(p) => corrupt(&mut p.signature),
                        _ => {}
                    }
                    result.push(out(target, &m));
                }
                (
                    Behavior::Withholder,
                    m @ (Message::Vote(_) | Message::Timeout(_) | Message::Proposal(_)),
                ) => {
                    if matches!(m, Message::Vote(_)) {
                        if self.rng.chance(0.3) {
                            result.push(out(target, &m));
                        }
                    } else {
                        for id in (0..n / 2).map(NodeId).filter(|&id| id != me) {
                            result.push(out(Target::Node(id), &m));
                        }
                    }
                }
                (Behavior::Impersonator, Message::Vote(mut v)) => {
                    v.voter = NodeId((me.0 + 1) % n);
                    result.push(out(target, &Message::Vote(v)));
                }
                (Behavior::Impersonator, Message::Timeout(mut t)) => {
                    t.timeout.signer = NodeId((me.0 + 1) % n);
                    result.push(out(target, &Message::Timeout(t)));
                }
                (_, m) => {
                    let o = out(target, &m);
                    if self.behavior == Behavior::Replayer {
                        self.record(o.1.clone());
                    }
                    result.push(o);
                }
            }
        }
        result
    }

    /// Traffic of its own, on a timer.
    pub fn tick(
        &mut self,
        config: &ConsensusConfig,
        me: NodeId,
        signer: &dyn Signer,
        state: Option<(Status, QuorumCertificate)>,
    ) -> Vec<Out> {
        let Some((status, high_qc)) = state else {
            return Vec::new();
        };
        let n = config.total_nodes();
        let random_peer = |rng: &mut Rng| {
            let id = NodeId(rng.index(n) as u16);
            if id == me {
                NodeId((me.0 + 1) % n as u16)
            } else {
                id
            }
        };
        match self.behavior {
            Behavior::Replayer if !self.recorded.is_empty() => {
                let frame = self.recorded[self.rng.index(self.recorded.len())].clone();
                vec![(Target::Node(random_peer(&mut self.rng)), frame, None)]
            }
            Behavior::EquivocatingProposer => match &self.second_version {
                Some((witness, frame)) => vec![(Target::Node(*witness), frame.clone(), None)],
                None => Vec::new(),
            },
            Behavior::FutureFlooder => {
                let far = Round(status.round.0 + 1_000_000 + self.rng.range(0, 1000));
                let v = raw_vote(
                    config,
                    me,
                    signer,
                    far,
                    Digest::hash(b"future", &far.0.to_le_bytes()),
                );
                let t = Timeout::sign(config, far, high_qc.clone(), me, signer);
                // A "proposal" for a far round it leads, justified by nothing.
                let lead = (far.0..far.0 + n as u64)
                    .map(Round)
                    .find(|&r| config.leader(r) == me)
                    .unwrap_or(far);
                let p = proposal(
                    config,
                    signer,
                    me,
                    (lead, Height(status.committed_height.0 + 1)),
                    high_qc,
                    0,
                    vec![],
                    None,
                );
                vec![
                    out(Target::All, &Message::Vote(v)),
                    out(
                        Target::All,
                        &Message::Timeout(TimeoutMsg { timeout: t, last_round_tc: None }),
                    ),
                    out(Target::All, &Message::Proposal(p)),
                ]
            }
            Behavior::Malformed => self.malformed(config, me, signer, status.round),
            Behavior::RogueProposer if status.leader != me => {
                vec![out(
                    Target::All,
                    &Message::Proposal(proposal(
                        config,
                        signer,
                        me,
                        (status.round, Height(status.committed_height.0 + 1)),
                        high_qc,
                        0,
                        vec![b"rogue".to_vec()],
                        None,
                    )),
                )]
            }
            Behavior::Forger => self.forge(config, me, signer, status, high_qc),
            _ => Vec::new(),
        }
    }

    /// One lie about health, in turn (H1, LR2, H4): honest voters refuse each.
    fn lie(&mut self, config: &ConsensusConfig, me: NodeId, mut h: BlockHealth) -> BlockHealth {
        let n = config.total_nodes() as u16;
        let victim = NodeId((me.0 + 1 + self.rng.range(0, u64::from(n) - 2) as u16) % n);
        match self.rng.index(3) {
            0 => {
                // LR2: blame a member for a round that did not fail.
                match h.failed.iter_mut().find(|(id, _)| *id == victim) {
                    Some((_, count)) => *count += 1,
                    None => {
                        h.failed.push((victim, 1));
                        h.failed.sort_unstable();
                    }
                }
            }
            1 => {
                // H1: a late vote the victim never signed.
                if let Some(late) = h.late.as_mut() {
                    late.votes.retain(|(id, _)| *id != victim);
                    late.votes.push((victim, Signature([7; 64])));
                    late.votes.sort_unstable_by_key(|(id, _)| *id);
                } else {
                    h.failed.push((victim, 1));
                    h.failed.sort_unstable();
                }
            }
            _ => {
                // H4: a summary that calls the victim offline (or one out of schedule).
                let mut summary = h.summary.take().unwrap_or_else(|| HealthSummary {
                    window_end: Height(0),
                    window_blocks: 0,
                    fallback: true,
                    members: Vec::new(),
                });
                if let Some(m) = summary.members.get_mut(victim.index()) {
                    m.online = !m.online;
                }
                h.summary = Some(summary);
            }
        }
        h
    }

    fn malformed(
        &mut self,
        config: &ConsensusConfig,
        me: NodeId,
        signer: &dyn Signer,
        round: Round,
    ) -> Vec<Out> {
        let to = Target::All;
        let valid = Message::Vote(raw_vote(config, me, signer, round, Digest::ZERO)).to_frame();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        match self.rng.index(6) {
            0 => frames
                .push((0..self.rng.range(0, 300)).map(|_| self.rng.next_u64() as u8).collect()),
            1 => frames.push(valid[..self.rng.index(valid.len())].to_vec()),
            2 => {
                let mut f = valid.clone();
                f[0] = 99; // unknown wire version
                frames.push(f);
            }
            3 => {
                // A sync response claiming 2^31 blocks.
                let mut f = vec![warpnet_types::message::WIRE_VERSION, 5];
                f.extend_from_slice(&config.epoch().0.to_le_bytes());
                f.extend_from_slice(&(1u32 << 31).to_le_bytes());
                frames.push(f);
            }
            4 => {
                let mut f = valid.clone();
                f.extend_from_slice(b"trailing");
                frames.push(f);
            }
            _ if !self.oversized_sent => {
                self.oversized_sent = true;
                frames.push(vec![0u8; MESSAGE_BYTES_MAX + 1]);
            }
            _ => frames.push(Vec::new()),
        }
        frames.into_iter().map(|f| (to, Rc::from(f), None)).collect()
    }

    fn forge(
        &mut self,
        config: &ConsensusConfig,
        me: NodeId,
        signer: &dyn Signer,
        status: Status,
        high_qc: QuorumCertificate,
    ) -> Vec<Out> {
        let n = config.total_nodes();
        let ids: Vec<NodeId> = (0..n as u16).map(NodeId).collect();
        let all = VoterBitmap::from_ids(n, &ids).unwrap_or_else(|_| VoterBitmap::empty(n));
        let round = Round(high_qc.round().0 + 1);
        let fake_block = Digest::hash(b"forged", &round.0.to_le_bytes());
        let own =
            signer.sign(&vote_signing_bytes(config.network(), config.epoch(), round, fake_block));
        // Bitmap says everyone voted; the signatures are all the forger's own.
        let qc = QuorumCertificate::from_parts(
            config.epoch(),
            round,
            fake_block,
            all.clone(),
            vec![own; n],
        );
        let t_round = status.round;
        let t_own = signer.sign(&timeout_signing_bytes(
            config.network(),
            config.epoch(),
            Round(t_round.0.saturating_sub(1)),
            Round(0),
        ));
        // A TC whose bitmap and signature count disagree.
        let tc = TimeoutCertificate::from_parts(
            config.epoch(),
            Round(t_round.0.saturating_sub(1)),
            all,
            vec![high_qc.round(); n],
            vec![t_own; n - 1],
            high_qc.clone(),
        );
        let t = Timeout::sign(config, t_round.next(), qc.clone(), me, signer);
        let p = proposal(
            config,
            signer,
            me,
            (round.next(), Height(status.committed_height.0 + 2)),
            qc,
            0,
            vec![],
            None,
        );
        vec![
            out(Target::All, &Message::Timeout(TimeoutMsg { timeout: t, last_round_tc: Some(tc) })),
            out(Target::All, &Message::Proposal(p)),
        ]
    }
}
