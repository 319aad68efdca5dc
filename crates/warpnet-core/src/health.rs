//! Agreed health and leader reputation (H3, H5, LR1–LR4): pure functions of a window of blocks.
//!
//! The health "seen from" a block E is computed from the blocks of E's epoch at and below E,
//! at most [`window_len`] of them, and nothing else: every replica that holds that chain gets
//! the same answer, whatever it committed or saw locally. A block B extending P takes its
//! leader, its blame and its summary from the health seen from P's parent (one block below
//! P), so a vote for P can already be routed to the leader two rounds ahead (H1), and two
//! replicas whose highest certified blocks differ only at the tip mostly agree on the leader.

use std::collections::BTreeSet;
use std::sync::Arc;

use warpnet_types::config::faulty_nodes;
use warpnet_types::health::{BlockHealth, HealthSummary, MemberHealth, Reputation};
use warpnet_types::{
    Block, BlockId, ConsensusConfig, Epoch, Height, NodeId, Round, VoterBitmap,
};

/// The shortest window, in blocks.
pub const WINDOW_MIN: usize = 32;
/// LR2: a member blamed for this many failed rounds in the window is skipped.
pub const FAILURES_MAX: u32 = 3;

/// H3: blocks in the window of a committee of `n`: at least two of every member's turns.
pub fn window_len(n: usize) -> usize {
    WINDOW_MIN.max(2 * n)
}

/// LR2: a member with no proposal and no recorded vote in this many of the window's last
/// blocks is silent. A vote for a block is recorded one block later (in its child's QC) or two
/// (in its grandchild's participation), and among `f + 3` consecutive blocks at least three
/// were proposed by honest members.
pub fn silent_len(n: usize) -> usize {
    4.max(faulty_nodes(n) + 3)
}

/// LR4: a round this far above its parent's (every eligible member failed twice, and then
/// some) is led by L1 over every self-declared public member, so a stale eligible set whose
/// members are all gone cannot stop the chain.
pub fn escape_rounds(eligible: usize) -> u64 {
    2 * eligible as u64 + 2
}

/// What health needs of one block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: BlockId,
    pub parent: BlockId,
    pub epoch: Epoch,
    pub height: Height,
    pub round: Round,
    pub parent_round: Round,
    pub proposer: NodeId,
    /// The voters of its QC (votes for its parent).
    pub voters: VoterBitmap,
    pub participation: VoterBitmap,
    pub reached: VoterBitmap,
    pub failed: Vec<(NodeId, u32)>,
    pub summary: Option<Arc<HealthSummary>>,
}

impl Record {
    pub fn of(b: &Block) -> Self {
        let BlockHealth { participation, reached, failed, summary } = b.health().clone();
        Self {
            id: b.id(),
            parent: b.parent(),
            epoch: b.epoch(),
            height: b.height(),
            round: b.round(),
            parent_round: b.justify().round(),
            proposer: b.proposer(),
            voters: b.justify().voters().clone(),
            participation,
            reached,
            failed,
            summary: summary.map(Arc::new),
        }
    }

    /// Whether the block records a vote of `id` (in its QC or its participation).
    fn records_vote(&self, id: NodeId) -> bool {
        self.voters.contains(id) || self.participation.contains(id)
    }
}

/// The committee's health seen from one block, and the members eligible to lead after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub summary: HealthSummary,
    /// LR2: the members leaders are drawn from, ascending.
    pub eligible: Vec<NodeId>,
}

#[derive(Clone, Default)]
struct Tally {
    recorders: BTreeSet<NodeId>,
    attesters: BTreeSet<NodeId>,
    votes: u32,
    proposals: u32,
    failed: u32,
    last_seen: Option<Height>,
    active: bool,
}

impl Health {
    /// The health of a committee before its first block (only `carried` says anything).
    pub fn initial(
        config: &ConsensusConfig,
        end: Height,
        carried: Option<&HealthSummary>,
    ) -> Self {
        Self::compute(config, &[], end, carried)
    }

    /// H3, LR1, LR2 over `window` (the blocks of `config`'s epoch ending at height `end`,
    /// oldest first, at most [`window_len`]); `carried` is the previous epoch's last summary
    /// (H5), which fills in while the window is not full.
    pub fn compute(
        config: &ConsensusConfig,
        window: &[Record],
        end: Height,
        carried: Option<&HealthSummary>,
    ) -> Self {
        let n = config.total_nodes();
        let f = config.faulty_nodes();
        let recent_from = window.len().saturating_sub(silent_len(n));
        let mut tally = vec![Tally::default(); n];
        let mut proposers = BTreeSet::new();
        for (i, r) in window.iter().enumerate() {
            let recent = i >= recent_from;
            proposers.insert(r.proposer);
            if let Some(t) = tally.get_mut(r.proposer.index()) {
                t.proposals += 1;
                t.last_seen = t.last_seen.max(Some(r.height));
                t.active |= recent;
            }
            for (x, t) in tally.iter_mut().enumerate() {
                let id = NodeId(x as u16);
                if r.records_vote(id) {
                    t.votes += 1;
                    t.recorders.insert(r.proposer);
                    t.last_seen = t.last_seen.max(Some(r.height));
                    t.active |= recent;
                }
                if r.reached.contains(id) && r.proposer != id {
                    t.attesters.insert(r.proposer);
                }
                if let Some(m) = r.summary.as_ref().and_then(|s| s.members.get(x)) {
                    t.last_seen = t.last_seen.max(m.last_seen);
                }
            }
            for &(id, count) in &r.failed {
                if let Some(t) = tally.get_mut(id.index()) {
                    t.failed = t.failed.saturating_add(count);
                }
            }
        }
        // H3: f + 1 distinct recorders include an honest one (fewer only while fewer members
        // proposed at all).
        let online_threshold = (f + 1).min(proposers.len()).max(1);
        let full = window.len() >= window_len(n);
        let carried = carried.filter(|_| !full);
        let mut members: Vec<MemberHealth> = config
            .participants()
            .iter()
            .zip(&tally)
            .map(|(p, t)| {
                let before = carried.and_then(|c| c.member(&p.public_key));
                let online = t.proposals > 0
                    || (!proposers.is_empty() && t.recorders.len() >= online_threshold)
                    || before.is_some_and(|m| m.online);
                let verified_public = p.public
                    && (t.attesters.len() > f || before.is_some_and(|m| m.verified_public));
                MemberHealth {
                    public_key: p.public_key,
                    online,
                    verified_public,
                    last_seen: t.last_seen.max(before.and_then(|m| m.last_seen)),
                    votes: t.votes,
                    proposals: t.proposals,
                    failed: t.failed,
                    reputation: Reputation::Leader,
                }
            })
            .collect();
        // LR1: the verified-public members lead if they can keep verifying each other (each
        // needs f + 1 attesters besides itself, and only proposers attest); else the
        // self-declared public members do.
        let verified: Vec<bool> = members.iter().map(|m| m.verified_public).collect();
        let fallback = verified.iter().filter(|&&v| v).count() < f + 2;
        let candidate =
            |i: usize| config.participants()[i].public && (fallback || verified[i]);
        // LR2: skip the silent and the failing, unless that leaves nobody.
        let silent = |i: usize| window.len() >= silent_len(n) && !tally[i].active;
        let failing = |i: usize| tally[i].failed >= FAILURES_MAX;
        let mut eligible: Vec<NodeId> = (0..n)
            .filter(|&i| candidate(i) && !silent(i) && !failing(i))
            .map(|i| NodeId(i as u16))
            .collect();
        if eligible.is_empty() {
            eligible = (0..n).filter(|&i| candidate(i)).map(|i| NodeId(i as u16)).collect();
        }
        for (i, m) in members.iter_mut().enumerate() {
            m.reputation = if eligible.contains(&NodeId(i as u16)) {
                Reputation::Leader
            } else if !config.participants()[i].public {
                Reputation::NotPublic
            } else if !candidate(i) {
                Reputation::Unverified
            } else if silent(i) {
                Reputation::Silent
            } else {
                Reputation::Failing
            };
        }
        let summary = HealthSummary {
            window_end: end,
            window_blocks: window.len() as u32,
            fallback,
            members,
        };
        Self { summary, eligible }
    }

    /// LR3 (and LR4): the leader of `round` for a block whose parent is of `parent_round`.
    pub fn leader(&self, config: &ConsensusConfig, round: Round, parent_round: Round) -> NodeId {
        if round.0 > parent_round.0.saturating_add(escape_rounds(self.eligible.len())) {
            return config.leader(round);
        }
        config.rotate(round, &self.eligible)
    }

    /// LR2: the leaders of the rounds strictly between `parent_round` and `round` (failed:
    /// no block of theirs in the chain), with how many each failed, by ascending id.
    pub fn blame(
        &self,
        config: &ConsensusConfig,
        parent_round: Round,
        round: Round,
    ) -> Vec<(NodeId, u32)> {
        let mut counts = std::collections::BTreeMap::<NodeId, u32>::new();
        for r in parent_round.0.saturating_add(1)..round.0 {
            *counts.entry(self.leader(config, Round(r), parent_round)).or_default() += 1;
        }
        counts.into_iter().collect()
    }
}

#[cfg(test)]
mod tests;
