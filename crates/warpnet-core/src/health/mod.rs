//! Agreed health and leader reputation (H2, H3, H5, LR1–LR5): pure functions of a window of
//! blocks.
//!
//! The health "seen from" a block E is computed from the blocks of E's epoch at and below E,
//! at most [`window_len`] of them, and (early in an epoch) the previous epoch's last summary,
//! and nothing else: every replica holding that chain gets the same answer, whatever it saw
//! locally. A block B extending P takes its leader, its blame and its summary from the health
//! seen from P's parent (one block below P), so a vote for P can already be sent to the leader
//! two rounds ahead, who records it if it came too late for the QC (H1).
//!
//! What the window counts, per member, is only what the member signed: its proposals, its
//! votes (in QCs and in late votes, each signature checked by the voters of the block that
//! records it), its timeouts (the signers of TCs) and its reachability attestations. A
//! Byzantine leader can leave a member's signatures out of its own blocks, never put one in.

use std::collections::BTreeMap;
use std::sync::Arc;

use warpnet_types::config::faulty_nodes;
use warpnet_types::health::{HealthSummary, MemberHealth, Reputation};
use warpnet_types::{Block, BlockId, ConsensusConfig, Epoch, Height, NodeId, Round, VoterBitmap};

/// The shortest window, in blocks.
pub const WINDOW_MIN: usize = 32;
/// LR2c: a member blamed for at least this many failed rounds in the window, and for more
/// than it proposed, is skipped.
pub const FAILURES_MAX: u32 = 3;

/// H3: blocks in the window of a committee of `n`: several turns of every member.
pub fn window_len(n: usize) -> usize {
    WINDOW_MIN.max(4 * n)
}

/// H3: committed blocks kept below the tree's root, and handed back by a store in
/// `Recovery::history`, for a committee of `n`: a window, the block below the root a
/// leader's window may end at (a proposal's grandparent), and three more, so the records of
/// the last three committed blocks can still be audited (`Core::audit`).
pub fn history_len(n: usize) -> usize {
    window_len(n) + 4
}

/// H3: a member is online when a signature of it is recorded in this many of the window's
/// last blocks. A vote is recorded in the next block (QC) or the one after (late votes); a
/// rotation puts at most `2f` Byzantine-led blocks in a row, so `2f + 3` consecutive blocks
/// hold at least three honest-led ones.
pub fn online_len(n: usize) -> usize {
    4.max(2 * faulty_nodes(n) + 3)
}

/// LR4: a round this far above the round of the block its health is seen from (a leader's
/// grandparent, normally two rounds below it: every eligible member then failed twice, and
/// then some) is led by L1 over every self-declared public member, and so is the collection
/// of its votes: an eligible set whose members are all gone cannot stop the chain.
pub fn escape_rounds(eligible: usize) -> u64 {
    2 * eligible as u64 + 4
}

/// What health needs of one block (kept for committed blocks below the tree's root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub id: BlockId,
    pub parent: BlockId,
    pub epoch: Epoch,
    pub height: Height,
    pub round: Round,
    /// The round of its QC (its parent's round).
    pub parent_round: Round,
    pub proposer: NodeId,
    /// Voters of its QC (votes for its parent).
    pub voters: VoterBitmap,
    /// H1: members whose late votes it records, and the round they voted in.
    pub late: Vec<NodeId>,
    pub late_round: Round,
    /// H1: signers of the TC of round `round - 1` (empty without one).
    pub timeouts: VoterBitmap,
    /// H2: (attester, when it signed, members it reached).
    pub attestations: Vec<(NodeId, u64, VoterBitmap)>,
    /// LR2: the failed rounds it blames, by member.
    pub failed: Vec<(NodeId, u32)>,
    pub summary: Option<Arc<HealthSummary>>,
}

impl Record {
    pub fn of(b: &Block) -> Self {
        let h = b.health();
        Self {
            id: b.id(),
            parent: b.parent(),
            epoch: b.epoch(),
            height: b.height(),
            round: b.round(),
            parent_round: b.justify().round(),
            proposer: b.proposer(),
            voters: b.justify().voters().clone(),
            late: h.late_voters().collect(),
            late_round: h.late.as_ref().map_or(Round(0), |l| l.round),
            timeouts: h.timeouts.clone(),
            attestations: h
                .attestations
                .iter()
                .map(|a| (a.attester, a.at_ms, a.reached.clone()))
                .collect(),
            failed: h.failed.clone(),
            summary: h.summary.clone().map(Arc::new),
        }
    }
}

/// The committee's health seen from one block, and the members eligible to lead after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub summary: HealthSummary,
    /// LR1, LR2: the members leaders are drawn from, ascending.
    pub eligible: Vec<NodeId>,
    /// The round of the block it is seen from (LR4 counts from it).
    pub anchor: Round,
    /// H2: when each member signed its latest attestation recorded in the window, and the
    /// height of the block that records it.
    pub attested_at: Vec<Option<(u64, Height)>>,
    /// LR5: the members that did not sign the latest TC recorded in the window's last
    /// [`online_len`] blocks and have no signature recorded since.
    pub silent_since_tc: Vec<NodeId>,
    /// Mutation `Lr5Off`: the failures recorded since this health was seen are not skipped.
    #[cfg(feature = "mutations")]
    pub(crate) lr5_off: bool,
}

/// What the window says of one member.
#[derive(Clone, Default)]
struct Tally {
    votes: u32,
    proposals: u32,
    failed: u32,
    last_seen: Option<Height>,
    /// A signature in the window's last `online_len` blocks.
    recent: bool,
    /// Highest round of a recorded signature (LR2b).
    signed_round: Round,
    /// Lowest possible round of its latest failed leadership (LR2b).
    failed_round: Round,
}

impl Tally {
    fn signed(&mut self, height: Height, round: Round, recent: bool) {
        self.last_seen = self.last_seen.max(Some(height));
        self.signed_round = self.signed_round.max(round);
        self.recent |= recent;
    }
}

impl Health {
    /// H3, H2, LR1, LR2 over `window` (the blocks of `config`'s epoch ending at height `end`,
    /// oldest first, at most [`window_len`]); `carried` is the previous epoch's last summary
    /// (H5), which fills in while the window is short.
    pub fn compute(
        config: &ConsensusConfig,
        window: &[Record],
        end: Height,
        carried: Option<&HealthSummary>,
    ) -> Self {
        // H2: a quorum with the member itself: it, and `quorum - 1` others that reached it.
        let attest_need = config.quorum_threshold().saturating_sub(1);
        Self::compute_needing(config, window, end, carried, attest_need)
    }

    /// [`Health::compute`] with `attest_need` attesters making a member verified (the
    /// mutation test `H2OneAttester` passes 1).
    pub(crate) fn compute_needing(
        config: &ConsensusConfig,
        window: &[Record],
        end: Height,
        carried: Option<&HealthSummary>,
        attest_need: usize,
    ) -> Self {
        let n = config.total_nodes();
        let recent_from = window.len().saturating_sub(online_len(n));
        let mut tally = vec![Tally::default(); n];
        // H2: each attester's latest attestation in the window (by when it was signed).
        let mut latest: BTreeMap<NodeId, (u64, &VoterBitmap, Height)> = BTreeMap::new();
        for (i, r) in window.iter().enumerate() {
            let recent = i >= recent_from;
            let mut sign = |id: NodeId, round: Round| {
                if let Some(t) = tally.get_mut(id.index()) {
                    t.signed(r.height, round, recent);
                }
            };
            // H1: the proposer, the QC's voters, the late voters, the TC's signers.
            sign(r.proposer, r.round);
            for id in r.voters.iter() {
                sign(id, r.parent_round);
            }
            for &id in &r.late {
                sign(id, r.late_round);
            }
            for id in r.timeouts.iter() {
                sign(id, Round(r.round.0.saturating_sub(1)));
            }
            if let Some(t) = tally.get_mut(r.proposer.index()) {
                t.proposals += 1;
            }
            for (x, t) in tally.iter_mut().enumerate() {
                let id = NodeId(x as u16);
                if r.voters.contains(id) || r.late.contains(&id) {
                    t.votes += 1;
                }
            }
            for (attester, at, reached) in &r.attestations {
                if latest.get(attester).is_none_or(|(held, _, _)| held <= at) {
                    latest.insert(*attester, (*at, reached, r.height));
                }
            }
            // LR2: its failed rounds lie strictly between the parent's round and its own.
            for &(id, count) in &r.failed {
                if let Some(t) = tally.get_mut(id.index()) {
                    t.failed = t.failed.saturating_add(count);
                    t.failed_round = t.failed_round.max(r.parent_round.next());
                }
            }
        }
        let carried = carried.filter(|_| window.len() < window_len(n));
        let short = window.len() < online_len(n);

        let members: Vec<MemberHealth> = config
            .participants()
            .iter()
            .enumerate()
            .map(|(x, p)| {
                let t = &tally[x];
                let before = carried.and_then(|c| c.member(&p.public_key));
                let id = NodeId(x as u16);
                let attested_by = latest.values().filter(|(_, r, _)| r.contains(id)).count() as u16;
                // H3, H5: early in an epoch a member the last epoch saw online stays online
                // until the window can tell.
                let online = t.recent || (short && before.is_some_and(|m| m.online));
                // H5: early in an epoch, what the last epoch verified stays verified.
                let verified_public = p.public
                    && (attested_by as usize >= attest_need
                        || before.is_some_and(|m| m.verified_public));
                MemberHealth {
                    public_key: p.public_key,
                    online,
                    verified_public,
                    last_seen: t.last_seen.or(before.and_then(|m| m.last_seen)),
                    votes: t.votes,
                    proposals: t.proposals,
                    failed: t.failed,
                    attested_by,
                    reputation: Reputation::Leader,
                }
            })
            .collect();
        let anchor = window.last().map_or(Round(0), |r| r.round);
        // LR5: the latest TC recorded in the window's last `online_len` blocks, and the members
        // that did not sign it nor anything recorded since.
        let silent: Vec<NodeId> = window[recent_from..]
            .iter()
            .rev()
            .find(|r| r.timeouts.count() > 0)
            .map(|r| {
                let tc_round = Round(r.round.0.saturating_sub(1));
                (0..n)
                    .map(|x| NodeId(x as u16))
                    .filter(|&id| {
                        !r.timeouts.contains(id) && tally[id.index()].signed_round < tc_round
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut health =
            Self::rank(config, members, &tally, short, carried, (end, window.len(), anchor));
        health.silent_since_tc = silent;
        health.attested_at = (0..n)
            .map(|x| latest.get(&NodeId(x as u16)).map(|(at, _, recorded)| (*at, *recorded)))
            .collect();
        health
    }

    /// LR1, LR2: who may lead, and how reputation sees each member.
    fn rank(
        config: &ConsensusConfig,
        mut members: Vec<MemberHealth>,
        tally: &[Tally],
        short: bool,
        carried: Option<&HealthSummary>,
        (end, blocks, anchor): (Height, usize, Round),
    ) -> Self {
        let n = members.len();
        let unfit = |x: usize| -> Option<Reputation> {
            let (m, t) = (&members[x], &tally[x]);
            // LR2a: offline (early in an epoch: skipped as offline in the last one, H5, and
            // not seen since).
            let carried_offline = carried
                .and_then(|c| c.member(&m.public_key))
                .is_some_and(|c| c.reputation == Reputation::Offline && t.last_seen.is_none());
            if (!short && !m.online) || (short && carried_offline) {
                return Some(Reputation::Offline);
            }
            // LR2b: its leadership failed after its last recorded signature.
            if t.failed_round > t.signed_round {
                return Some(Reputation::Failed);
            }
            // LR2c: failing often, and more than it succeeds.
            if t.failed >= FAILURES_MAX && t.failed > t.proposals {
                return Some(Reputation::Failing);
            }
            None
        };
        let public = |x: usize| config.participants()[x].public;
        let fit: Vec<Option<Reputation>> = (0..n).map(unfit).collect();
        // LR1: the fit verified-public members lead; without any, the fit self-declared public
        // members (the fallback); without any, every self-declared public member.
        let tiers: [&dyn Fn(usize) -> bool; 3] = [
            &|x| public(x) && members[x].verified_public && fit[x].is_none(),
            &|x| public(x) && fit[x].is_none(),
            &|x| public(x),
        ];
        let (tier, eligible) = tiers
            .iter()
            .enumerate()
            .map(|(i, keep)| (i, (0..n).filter(|&x| keep(x)).map(|x| NodeId(x as u16)).collect()))
            .find(|(_, e): &(usize, Vec<NodeId>)| !e.is_empty())
            .unwrap_or((2, config.leader_candidates().to_vec()));
        for (x, m) in members.iter_mut().enumerate() {
            m.reputation = if eligible.contains(&NodeId(x as u16)) {
                Reputation::Leader
            } else if !public(x) {
                Reputation::NotPublic
            } else if let Some(r) = fit[x] {
                r
            } else {
                Reputation::Unverified
            };
        }
        let summary = HealthSummary {
            window_end: end,
            window_blocks: blocks as u32,
            fallback: tier > 0,
            members,
        };
        Self {
            summary,
            eligible,
            anchor,
            attested_at: Vec::new(),
            silent_since_tc: Vec::new(),
            #[cfg(feature = "mutations")]
            lr5_off: false,
        }
    }

    /// LR3, LR4, LR5: the leader of `round` for a block extending `parent`, this health being
    /// seen from the parent's parent.
    pub fn leader(&self, config: &ConsensusConfig, parent: Since<'_>, round: Round) -> NodeId {
        if self.escaped(round) {
            // LR4 whatever was skipped: no need to walk a long run of failed rounds.
            return config.leader(round);
        }
        self.walk(config, parent, round, |_| {})
    }

    /// LR2: the leaders of the rounds strictly between `parent`'s round and `round` (failed:
    /// no block of theirs is in the chain), each chosen as [`Health::leader`] chooses it, with
    /// how many rounds each failed, by ascending id.
    pub fn blame(
        &self,
        config: &ConsensusConfig,
        parent: Since<'_>,
        round: Round,
    ) -> Vec<(NodeId, u32)> {
        let mut counts = BTreeMap::<NodeId, u32>::new();
        self.walk(config, parent, round, |id| *counts.entry(id).or_default() += 1);
        counts.into_iter().collect()
    }

    /// The rounds from `parent`'s round up to `round`: hands each failed round's leader to
    /// `failed` and returns the leader of `round`.
    ///
    /// LR5: this health is seen from the parent's parent, so it does not yet hold the
    /// failures recorded since, nor does LR2 blame a dead vote collector (the round fails
    /// under its leader). Skipped: the members silent at the latest TC of the window's last
    /// blocks (no signature recorded since, [`Health::silent_since_tc`]), those that did not
    /// sign the parent's TC, those the parent's record blames (but never the parent's
    /// proposer nor its TC's signers, who signed after those rounds, as LR2b counts), then
    /// the leaders of the rounds that failed after the parent, in round order. So a member
    /// that just failed is not chosen again before the chain records it (a rotation may put a
    /// member at the end of one cycle and the start of the next, and a dead member costs the
    /// round it leads and the round before, whose votes it collects). At most all eligible
    /// members but one are skipped, the most recent failures first: whoever failed longest
    /// ago leads again before the others. The skip lasts until the health a leader is drawn
    /// from holds the blame (LR2b), two blocks later. Every input is in the chain and the
    /// round, so every replica picks the same leader. Past the escape round, LR4 as before.
    fn walk(
        &self,
        config: &ConsensusConfig,
        parent: Since<'_>,
        round: Round,
        mut failed: impl FnMut(NodeId),
    ) -> NodeId {
        #[cfg(feature = "mutations")]
        let lr5 = !self.lr5_off;
        #[cfg(not(feature = "mutations"))]
        let lr5 = true;
        let signed_since = |id: NodeId| {
            parent.proposer == Some(id) || parent.timeouts.is_some_and(|t| t.contains(id))
        };
        let mut skip: Vec<NodeId> = Vec::new();
        if lr5 {
            // Oldest first: silent at a TC this health records, silent at the parent's TC,
            // blamed by the parent, then the rounds failed since.
            let tc_silent = parent
                .timeouts
                .filter(|t| t.count() > 0)
                .map(|t| self.eligible.iter().copied().filter(|&id| !t.contains(id)));
            let blamed = parent.failed.iter().map(|&(id, _)| id);
            for id in self
                .silent_since_tc
                .iter()
                .copied()
                .chain(tc_silent.into_iter().flatten())
                .chain(blamed)
                .filter(|&id| !signed_since(id))
            {
                skip.retain(|&x| x != id);
                skip.push(id);
            }
        }
        for r in parent.round.0.saturating_add(1)..round.0 {
            let leader = self.pick(config, Round(r), &skip);
            failed(leader);
            if lr5 {
                skip.retain(|&id| id != leader);
                skip.push(leader);
            }
        }
        self.pick(config, round, &skip)
    }

    /// LR3 over the eligible members, but for the latest failures in `skip` (oldest first),
    /// at most all but one (LR5); LR4: past the escape round, L1 over every public member.
    fn pick(&self, config: &ConsensusConfig, round: Round, skip: &[NodeId]) -> NodeId {
        if self.escaped(round) {
            return config.leader(round);
        }
        let skipped: Vec<NodeId> =
            skip.iter().filter(|id| self.eligible.contains(id)).copied().collect();
        let keep = skipped.len().min(self.eligible.len().saturating_sub(1));
        let drop = &skipped[skipped.len() - keep..];
        if drop.is_empty() {
            return config.rotate(round, &self.eligible);
        }
        let rest: Vec<NodeId> =
            self.eligible.iter().filter(|id| !drop.contains(id)).copied().collect();
        config.rotate(round, &rest)
    }
}

impl Health {
    /// LR4: whether `round` is past the escape round counted from this health's anchor.
    fn escaped(&self, round: Round) -> bool {
        round.0 > self.anchor.0.saturating_add(escape_rounds(self.eligible.len()))
    }
}

/// What the leader of a block depends on of its parent besides the health seen from the
/// parent's parent (LR3, LR5).
#[derive(Clone, Copy, Debug)]
pub struct Since<'a> {
    /// The parent's round.
    pub round: Round,
    /// LR2: the members the parent's record blames.
    pub failed: &'a [(NodeId, u32)],
    /// The parent's proposer, and the signers of its TC (the timeouts of the round before
    /// it): they signed after the rounds it blames.
    pub proposer: Option<NodeId>,
    pub timeouts: Option<&'a VoterBitmap>,
}

impl<'a> Since<'a> {
    /// A parent of `round` that blames nobody (an epoch's genesis; the block after a QC).
    pub fn clean(round: Round) -> Self {
        Self { round, failed: &[], proposer: None, timeouts: None }
    }

    pub fn of_block(b: &'a Block) -> Self {
        let h = b.health();
        Self {
            round: b.round(),
            failed: &h.failed,
            proposer: Some(b.proposer()),
            timeouts: Some(&h.timeouts),
        }
    }

    pub fn of_record(r: &'a Record) -> Self {
        Self {
            round: r.round,
            failed: &r.failed,
            proposer: Some(r.proposer),
            timeouts: Some(&r.timeouts),
        }
    }
}

#[cfg(test)]
mod tests;
