//! Counting votes and timeouts: one per signer per round, equivocations set aside as evidence.
//!
//! Signatures are not checked as messages arrive. When a block or round gathers a quorum of
//! unverified entries, they are verified in one batch; on failure one by one, and the bad
//! entries are dropped. Only the sender's own slot can be taken by a bad entry, because
//! `from` (authenticated by the transport) must equal the signer.

use std::collections::{BTreeMap, HashMap};

use warpnet_types::certs::vote_signing_bytes;
use warpnet_types::crypto::{verify_all, SignedItem};
use warpnet_types::{
    BlockId, ConsensusConfig, NodeId, QuorumCertificate, Round, Signature, Timeout,
    TimeoutCertificate, Vote, VoterBitmap,
};

use crate::evidence::{Equivocation, Statement};

/// What adding a vote or timeout led to. (Short-lived, so variant sizes do not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Added<C> {
    /// Counted (or a duplicate of what was counted); no certificate yet.
    Pending,
    /// A new certificate formed.
    Certificate(C),
    /// The signer had already signed something else for this round: evidence, not counted (E1).
    Equivocation(Equivocation),
    /// Entries with bad signatures were dropped while verifying a quorum.
    BadSignatures(Vec<NodeId>),
}

#[derive(Default)]
struct VoteRound {
    /// First vote of each signer in this round.
    by_signer: HashMap<NodeId, Vote>,
    /// Signers per block, and how many of them are verified.
    by_block: HashMap<BlockId, Vec<NodeId>>,
    verified: HashMap<NodeId, bool>,
    certified: bool,
}

/// Collects votes per round: the next leader forms the QC; the leader after it records the
/// late ones (H1).
#[derive(Default)]
pub struct VoteCollector {
    rounds: BTreeMap<Round, VoteRound>,
}

impl VoteCollector {
    /// Adds a vote whose shape (epoch, voter) is checked. `verified` says its signature was
    /// checked already (our own vote). `collect`: form a QC once a quorum is in; otherwise the
    /// vote is only kept (for [`VoteCollector::recorded`]), as are votes arriving after the QC.
    pub fn add(
        &mut self,
        config: &ConsensusConfig,
        vote: Vote,
        verified: bool,
        collect: bool,
    ) -> Added<QuorumCertificate> {
        let round = self.rounds.entry(vote.round).or_default();
        if let Some(first) = round.by_signer.get(&vote.voter) {
            if first.block_id == vote.block_id {
                return Added::Pending;
            }
            let ev = Equivocation {
                signer: vote.voter,
                epoch: vote.epoch,
                round: vote.round,
                first: Statement::Vote { block_id: first.block_id, signature: first.signature },
                second: Statement::Vote { block_id: vote.block_id, signature: vote.signature },
            };
            // Only proven (validly signed) equivocation is evidence; the first vote stays counted.
            return if ev.verify(config) { Added::Equivocation(ev) } else { Added::Pending };
        }
        round.verified.insert(vote.voter, verified);
        round.by_block.entry(vote.block_id).or_default().push(vote.voter);
        let block_id = vote.block_id;
        round.by_signer.insert(vote.voter, vote);
        if round.certified || !collect {
            return Added::Pending;
        }
        let signers = &round.by_block[&block_id];
        if signers.len() < config.quorum_threshold() {
            return Added::Pending;
        }
        // Q1: verify the quorum's unverified signatures in one batch.
        let unverified: Vec<NodeId> =
            signers.iter().copied().filter(|id| !round.verified[id]).collect();
        let any = round.by_signer.values().next().map(|v| (v.epoch, v.round));
        let Some((epoch, r)) = any else {
            return Added::Pending;
        };
        let bytes = vote_signing_bytes(config.network(), epoch, r, block_id);
        let mut bad = Vec::new();
        {
            let keys: Vec<_> = unverified.iter().map(|id| config.public_key(*id).ok()).collect();
            let items: Vec<SignedItem<'_>> = unverified
                .iter()
                .zip(&keys)
                .filter_map(|(id, k)| {
                    Some(SignedItem {
                        key: (*k)?,
                        message: &bytes,
                        signature: &round.by_signer[id].signature,
                    })
                })
                .collect();
            if items.len() != unverified.len() || verify_all(config.scheme(), &items).is_err() {
                for (id, k) in unverified.iter().zip(&keys) {
                    let ok = k.is_some_and(|key| {
                        let item = SignedItem {
                            key,
                            message: &bytes,
                            signature: &round.by_signer[id].signature,
                        };
                        config.scheme().scheme().verify(item).is_ok()
                    });
                    if !ok {
                        bad.push(*id);
                    }
                }
            }
        }
        for id in &unverified {
            round.verified.insert(*id, !bad.contains(id));
        }
        if !bad.is_empty() {
            // Drop the bad votes entirely; their signers may not vote again this round.
            if let Some(list) = round.by_block.get_mut(&block_id) {
                list.retain(|id| !bad.contains(id));
            }
            return Added::BadSignatures(bad);
        }
        let votes: Vec<&Vote> =
            round.by_block[&block_id].iter().map(|id| &round.by_signer[id]).collect();
        match QuorumCertificate::from_votes(config, &votes) {
            Some(qc) => {
                round.certified = true;
                Added::Certificate(qc)
            }
            None => Added::Pending,
        }
    }

    /// H1: the valid votes for `block_id` (of `round`) we hold from members not in `exclude`
    /// (the QC that certified it), by ascending voter: the late votes a leader records.
    /// Unverified ones are checked now, in one batch (one by one if it fails); bad ones are
    /// dropped.
    pub fn late_votes(
        &mut self,
        config: &ConsensusConfig,
        round: Round,
        block_id: BlockId,
        exclude: &VoterBitmap,
    ) -> Vec<(NodeId, Signature)> {
        let Some(r) = self.rounds.get_mut(&round) else { return Vec::new() };
        let Some(signers) = r.by_block.get(&block_id) else { return Vec::new() };
        let mut late: Vec<NodeId> =
            signers.iter().copied().filter(|id| !exclude.contains(*id)).collect();
        late.sort_unstable();
        let unverified: Vec<NodeId> = late.iter().copied().filter(|id| !r.verified[id]).collect();
        if !unverified.is_empty() {
            let epoch = r.by_signer[&unverified[0]].epoch;
            let bytes = vote_signing_bytes(config.network(), epoch, round, block_id);
            let check = |ids: &[NodeId]| {
                let items: Option<Vec<SignedItem<'_>>> = ids
                    .iter()
                    .map(|id| {
                        let key = config.public_key(*id).ok()?;
                        Some(SignedItem {
                            key,
                            message: &bytes,
                            signature: &r.by_signer[id].signature,
                        })
                    })
                    .collect();
                items.is_some_and(|items| verify_all(config.scheme(), &items).is_ok())
            };
            let bad: Vec<NodeId> = if check(&unverified) {
                Vec::new()
            } else {
                unverified.iter().copied().filter(|id| !check(std::slice::from_ref(id))).collect()
            };
            for id in &unverified {
                r.verified.insert(*id, !bad.contains(id));
            }
            if let Some(list) = r.by_block.get_mut(&block_id) {
                list.retain(|id| !bad.contains(id));
            }
            late.retain(|id| !bad.contains(id));
        }
        late.into_iter().map(|id| (id, r.by_signer[&id].signature)).collect()
    }

    /// Forgets rounds below `round`.
    pub fn prune_below(&mut self, round: Round) {
        self.rounds = self.rounds.split_off(&round);
    }
}

#[derive(Default)]
struct TimeoutRound {
    /// Each signer's first timeout: its highest QC round and its signature. The QCs themselves
    /// are not kept, only the highest one per round (it goes into the TC).
    by_signer: BTreeMap<NodeId, (Round, Signature)>,
    high_qc: Option<QuorumCertificate>,
    certified: bool,
}

/// Collects timeouts per round; every member does this. Memory per round is one entry per
/// signer plus one QC; the caller bounds how many rounds are collected.
#[derive(Default)]
pub struct TimeoutCollector {
    rounds: BTreeMap<Round, TimeoutRound>,
}

impl TimeoutCollector {
    /// Whether this signer's timeout for this round, with this highest QC round, is already
    /// counted: a replay costs nothing.
    pub fn contains(&self, timeout: &Timeout) -> bool {
        self.rounds
            .get(&timeout.round)
            .and_then(|r| r.by_signer.get(&timeout.signer))
            .is_some_and(|(hqc, _)| *hqc == timeout.high_qc_round())
    }

    /// Adds a timeout whose signature and carried QC are verified.
    pub fn add(&mut self, config: &ConsensusConfig, timeout: Timeout) -> Added<TimeoutCertificate> {
        let round = self.rounds.entry(timeout.round).or_default();
        if let Some(&(first_hqc, first_sig)) = round.by_signer.get(&timeout.signer) {
            if first_hqc == timeout.high_qc_round() {
                return Added::Pending;
            }
            return Added::Equivocation(Equivocation {
                signer: timeout.signer,
                epoch: timeout.epoch,
                round: timeout.round,
                first: Statement::Timeout { high_qc_round: first_hqc, signature: first_sig },
                second: Statement::Timeout {
                    high_qc_round: timeout.high_qc_round(),
                    signature: timeout.signature,
                },
            });
        }
        round.by_signer.insert(timeout.signer, (timeout.high_qc_round(), timeout.signature));
        if round.high_qc.as_ref().is_none_or(|qc| qc.round() < timeout.high_qc.round()) {
            round.high_qc = Some(timeout.high_qc);
        }
        if round.certified || round.by_signer.len() < config.quorum_threshold() {
            return Added::Pending;
        }
        let Some(high_qc) = round.high_qc.clone() else { return Added::Pending };
        let ids: Vec<NodeId> = round.by_signer.keys().copied().collect();
        let Ok(signers) = VoterBitmap::from_ids(config.total_nodes(), &ids) else {
            return Added::Pending;
        };
        round.certified = true;
        Added::Certificate(TimeoutCertificate::from_parts(
            timeout.epoch,
            timeout.round,
            signers,
            round.by_signer.values().map(|(hqc, _)| *hqc).collect(),
            round.by_signer.values().map(|(_, sig)| *sig).collect(),
            high_qc,
        ))
    }

    /// Number of distinct signers of timeouts for `round`.
    pub fn count(&self, round: Round) -> usize {
        self.rounds.get(&round).map_or(0, |r| r.by_signer.len())
    }

    pub fn prune_below(&mut self, round: Round) {
        self.rounds = self.rounds.split_off(&round);
    }
}
