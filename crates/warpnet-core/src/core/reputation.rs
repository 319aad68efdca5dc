//! The replica's view of health and leader reputation: the committed history a window needs,
//! the health seen from each block (cached), the leaders that follow from it (LR3), the health
//! records a leader writes (H1, H4, LR2) and the checks a voter runs on them.

use std::sync::Arc;

use warpnet_types::health::{fresh, summary_due, BlockHealth, LateVotes};
use warpnet_types::membership::Change;
use warpnet_types::{Block, BlockId, Height, NodeId, Proposal, Round, VoterBitmap};

use super::Core;
use crate::health::{window_len, Health, Record, Since};
use crate::io::Rejection;

/// Most cached healths (one per block a window ends at; pruned as blocks commit).
pub(super) const HEALTH_CACHE_MAX: usize = 256;

impl Core {
    /// Committed records kept at and below the root: a window, and the two blocks a leader's
    /// window may start below the root.
    pub(super) fn history_max(&self) -> usize {
        crate::health::history_len(self.config.total_nodes())
    }

    /// Records committed blocks of this epoch in the history the windows read.
    pub(super) fn record_commits(&mut self, blocks: &[&Block]) {
        let epoch = self.config.epoch();
        for b in blocks.iter().filter(|b| b.epoch() == epoch) {
            self.history.push_back(Record::of(b));
        }
        while self.history.len() > self.history_max() {
            self.history.pop_front();
        }
        let floor = self.tree.root().height().0.saturating_sub(2);
        self.health_cache.get_mut().retain(|_, (h, _)| h.0 >= floor);
    }

    /// H3: the health seen from block `end` (it and the blocks of its epoch below it). `None`
    /// if `end` is neither in the tree, nor in the history, nor the parent of the epoch's
    /// genesis.
    pub(super) fn health_at(&self, end: BlockId) -> Option<Arc<Health>> {
        if let Some((_, h)) = self.health_cache.borrow().get(&end) {
            return Some(h.clone());
        }
        let (height, window) = self.window(end)?;
        let attest_need = self.config.quorum_threshold().saturating_sub(1);
        #[cfg(feature = "mutations")]
        let attest_need = match self.params.mutation {
            Some(crate::params::Mutation::H2OneAttester) => 1,
            _ => attest_need,
        };
        let carried = self.carried.as_deref();
        #[cfg_attr(not(feature = "mutations"), allow(unused_mut))]
        let mut health =
            Health::compute_needing(&self.config, &window, height, carried, attest_need);
        #[cfg(feature = "mutations")]
        if self.params.mutation == Some(crate::params::Mutation::LrOff) {
            health.eligible = self.config.leader_candidates().to_vec();
        }
        #[cfg(feature = "mutations")]
        if self.params.mutation == Some(crate::params::Mutation::Lr5Off) {
            health.lr5_off = true;
        }
        let health = Arc::new(health);
        let mut cache = self.health_cache.borrow_mut();
        if cache.len() >= HEALTH_CACHE_MAX {
            cache.clear();
        }
        cache.insert(end, (height, health.clone()));
        Some(health)
    }

    /// The blocks of the window ending at `end`, oldest first, and `end`'s height.
    fn window(&self, end: BlockId) -> Option<(Height, Vec<Record>)> {
        let max = window_len(self.config.total_nodes());
        let (genesis_parent, genesis_height) = self.genesis_link;
        if end == genesis_parent {
            return Some((Height(genesis_height.0.saturating_sub(1)), Vec::new()));
        }
        let mut out = Vec::new();
        let mut cursor = end;
        let mut end_height = None;
        // Down the tree (its root included), then the committed history below the root.
        while let Some(b) = self.tree.get(&cursor) {
            end_height.get_or_insert(b.height());
            if b.round() == Round(0) || out.len() == max {
                out.reverse();
                return Some((end_height?, out));
            }
            out.push(Record::of(b));
            cursor = b.parent();
        }
        #[cfg(feature = "mutations")]
        let tree_only = self.params.mutation == Some(crate::params::Mutation::H3TreeOnly);
        #[cfg(not(feature = "mutations"))]
        let tree_only = false;
        match self.history.iter().rposition(|r| r.id == cursor) {
            Some(at) => {
                end_height.get_or_insert(self.history[at].height);
                for r in self.history.range(..=at).rev() {
                    if r.round == Round(0) || out.len() == max || (tree_only && !out.is_empty()) {
                        break;
                    }
                    out.push(r.clone());
                }
            }
            None if end_height.is_none() => return None,
            // Below the root, a chain the history does not reach: only after a store handed
            // back less history than `Recovery::history` asks for.
            None => {}
        }
        out.reverse();
        Some((end_height?, out))
    }

    /// What a child's leader depends on of block `id` (LR3, LR5), and its parent, from the
    /// tree or the history.
    fn link(&self, id: BlockId) -> Option<(Since<'_>, BlockId)> {
        if let Some(b) = self.tree.get(&id) {
            return Some((Since::of_block(b), b.parent()));
        }
        let r = self.history.iter().rev().find(|r| r.id == id)?;
        Some((Since::of_record(r), r.parent))
    }

    /// LR3, LR5: the leader of `round` for a block extending `parent`. `None` if `parent` is
    /// unknown.
    pub(super) fn leader_after(&self, round: Round, parent: BlockId) -> Option<NodeId> {
        let (since, grandparent) = self.link(parent)?;
        Some(self.health_at(grandparent)?.leader(&self.config, since, round))
    }

    /// The leader of our current round, as our highest certified block says (L1 if unknown).
    pub(super) fn current_leader(&self) -> NodeId {
        let parent = self.safety.data().high_qc.block_id();
        let round = self.round;
        self.leader_after(round, parent).unwrap_or_else(|| self.config.leader(round))
    }

    /// Who gathers the votes for block `id` of `round` (the next leader, if the next block
    /// extends it) and who records late ones (H1: the leader after that).
    pub(super) fn vote_targets(&self, id: BlockId, round: Round) -> (NodeId, Option<NodeId>) {
        let collector =
            self.leader_after(round.next(), id).unwrap_or_else(|| self.config.leader(round.next()));
        // The leader two rounds ahead, if the block between extends `id` in the next round
        // (then it blames nobody, LR5).
        let recorder = self
            .health_at(id)
            .map(|h| h.leader(&self.config, Since::clean(round.next()), round.next().next()));
        (collector, recorder.filter(|&r| r != collector))
    }

    /// PM7's pair for the current round: its leader and the member gathering its votes.
    pub(super) fn round_pair(&self) -> (NodeId, NodeId) {
        let parent = self.safety.data().high_qc.block_id();
        let round = self.round;
        let leader = self.leader_after(round, parent).unwrap_or_else(|| self.config.leader(round));
        // The collector of this round's block: it blames the rounds it skips over (LR2, LR5).
        let tc = self.safety.data().high_tc.as_ref().filter(|tc| tc.round().next() == round);
        let next = self
            .link(parent)
            .and_then(|(since, grandparent)| {
                let blamed = self.health_at(grandparent)?.blame(&self.config, since, round);
                let block = Since {
                    round,
                    failed: &blamed,
                    proposer: Some(leader),
                    timeouts: tc.map(|tc| tc.signers()),
                };
                Some(self.health_at(parent)?.leader(&self.config, block, round.next()))
            })
            .unwrap_or_else(|| self.config.leader(round.next()));
        (leader, next)
    }

    /// What a leader records in a block of `round` at `height` stamped `timestamp_ms`,
    /// extending `parent` (in the tree), with the TC that justifies the round if any: H1 the
    /// late votes for the grandparent and the TC's signers, H2 the attestations its window
    /// lacks, LR2 the blame for the failed rounds, H4 the summary when due.
    pub(super) fn health_record(
        &mut self,
        parent: &Block,
        (round, height, timestamp_ms): (Round, Height, u64),
        payload: &[Vec<u8>],
        tc: Option<&warpnet_types::TimeoutCertificate>,
    ) -> BlockHealth {
        let qc = parent.justify();
        let late = if qc.round() > Round(0) {
            let votes = self.votes.late_votes(&self.config, qc.round(), qc.block_id(), qc.voters());
            (!votes.is_empty()).then(|| LateVotes {
                round: qc.round(),
                block_id: qc.block_id(),
                votes,
            })
        } else {
            None
        };
        let timeouts = tc.map(|tc| tc.signers().clone()).unwrap_or_default();
        let Some(health) = self.health_at(parent.parent()) else {
            return BlockHealth { late, timeouts, ..BlockHealth::default() };
        };
        let failed = health.blame(&self.config, Since::of_block(parent), round);
        let summary = summary_wanted(height, payload).then(|| health.summary.clone());
        let attestations = self.attestations_to_record(&health, timestamp_ms);
        BlockHealth { late, timeouts, attestations, failed, summary }
    }

    /// P1, H1, LR2, LR3, H4 for a proposal whose parent is in the tree: its proposer leads its
    /// round after that parent; its late votes are valid votes for the grandparent that the
    /// parent's QC lacks; its timeout signers are its TC's; its blame and summary are what the
    /// parent's ancestry gives. `own`: our own proposal (its signatures are ours to trust).
    pub(super) fn check_health(&self, p: &Proposal, own: bool) -> Result<(), Rejection> {
        if !self.tree.contains(&p.block.parent()) {
            return Ok(()); // not attached: checked once it is
        }
        let height = p.block.height();
        let tc_signers = p.tc.as_ref().map(|tc| tc.signers().clone()).unwrap_or_default();
        if p.block.health().timeouts != tc_signers {
            return Err(Rejection::HealthRecord { what: "timeout signers", height });
        }
        self.check_records(&p.block, !own, true)
    }

    /// What a committed block must record, checked again from this replica's chain (the
    /// simulator's audit of what voters let through): `None` when its ancestry is no longer
    /// held here.
    pub fn audit(&self, block: &Block) -> Option<Result<(), Rejection>> {
        self.parent_view(block.parent())?;
        Some(self.check_records(block, true, false))
    }

    /// P1, H1, LR2, LR3, H4 from the block's ancestry (see [`Core::check_health`]); `voter`:
    /// checking a proposal before voting (the only check a mutation may switch off).
    fn check_records(
        &self,
        block: &Block,
        signatures: bool,
        #[cfg_attr(not(feature = "mutations"), allow(unused_variables))] voter: bool,
    ) -> Result<(), Rejection> {
        let (round, height) = (block.round(), block.height());
        let unknown = Rejection::UnknownAncestry { height };
        let parent = self.parent_view(block.parent()).ok_or(unknown.clone())?;
        let health = self.health_at(parent.parent).ok_or(unknown)?;
        let after = Since {
            round: parent.round,
            failed: &parent.failed,
            proposer: Some(parent.proposer),
            timeouts: Some(&parent.timeouts),
        };
        let leader = health.leader(&self.config, after, round);
        if block.proposer() != leader {
            return Err(Rejection::NotLeader { round, proposer: block.proposer(), leader });
        }
        #[cfg(feature = "mutations")]
        if self.params.mutation == Some(crate::params::Mutation::HealthUnchecked) && voter {
            return Ok(());
        }
        let records = block.health();
        if let Some(late) = &records.late {
            // H1: for the grandparent, from members its QC lacks.
            let target = (late.round, late.block_id) == (parent.qc_round, parent.parent);
            if !target || late.votes.iter().any(|(id, _)| parent.qc_voters.contains(*id)) {
                return Err(Rejection::HealthRecord { what: "late votes", height });
            }
        }
        if records.failed != health.blame(&self.config, after, round) {
            return Err(Rejection::HealthRecord { what: "failed rounds", height });
        }
        let expected = summary_wanted(height, block.payload()).then_some(&health.summary);
        if records.summary.as_ref() != expected {
            return Err(Rejection::HealthRecord { what: "health summary", height });
        }
        // H2: attestations fresh for the block's timestamp (their shape and signatures below).
        let stale = records.attestations.iter().any(|a| !fresh(a.at_ms, block.timestamp_ms()));
        if stale {
            return Err(Rejection::HealthRecord { what: "attestations", height });
        }
        if signatures {
            records.validate_signatures(&self.config)?;
        }
        Ok(())
    }

    /// What a child's records depend on of its parent `id` (from the tree or the history).
    fn parent_view(&self, id: BlockId) -> Option<ParentView> {
        if let Some(b) = self.tree.get(&id) {
            let qc = b.justify();
            return Some(ParentView {
                round: b.round(),
                parent: b.parent(),
                qc_round: qc.round(),
                qc_voters: qc.voters().clone(),
                failed: b.health().failed.clone(),
                proposer: b.proposer(),
                timeouts: b.health().timeouts.clone(),
            });
        }
        self.history.iter().rev().find(|r| r.id == id).map(|r| ParentView {
            round: r.round,
            parent: r.parent,
            qc_round: r.parent_round,
            qc_voters: r.voters.clone(),
            failed: r.failed.clone(),
            proposer: r.proposer,
            timeouts: r.timeouts.clone(),
        })
    }

    /// The health seen from the last committed block, with its height: what the node publishes
    /// (every honest replica computes the same for the same committed block).
    pub fn committed_health(&self) -> Option<(Height, Arc<Health>)> {
        let root = self.tree.root();
        let (id, height) = (root.id(), root.height());
        self.health_at(id).map(|h| (height, h))
    }

    /// The health a block extending `parent` takes its leader, blame and summary from (the
    /// health seen from `parent`'s parent), if held here.
    pub fn health_for_child_of(&self, parent: BlockId) -> Option<Arc<Health>> {
        self.health_at(self.parent_view(parent)?.parent)
    }

    /// The health seen from block `id` of this epoch, if it is held (tree or recent history).
    pub fn health_seen_from(&self, id: BlockId) -> Option<Arc<Health>> {
        self.health_at(id)
    }

    /// The leader of `round` for a block extending `parent`, as this replica computes it
    /// (LR3); `None` when `parent` is unknown here.
    pub fn leader_of(&self, round: Round, parent: BlockId) -> Option<NodeId> {
        self.leader_after(round, parent)
    }
}

/// What a child's health records depend on of its parent.
struct ParentView {
    round: Round,
    /// The parent's parent (the block its QC certifies).
    parent: BlockId,
    qc_round: Round,
    qc_voters: VoterBitmap,
    /// The members its record blames, its proposer and its TC's signers (LR5).
    failed: Vec<(NodeId, u32)>,
    proposer: NodeId,
    timeouts: VoterBitmap,
}

/// H4: a block carries the summary every `SUMMARY_INTERVAL` heights and when it carries a
/// committee change (it may end the epoch, whose end proof then proves its final health, H5).
fn summary_wanted(height: Height, payload: &[Vec<u8>]) -> bool {
    summary_due(height) || payload.iter().any(|c| Change::from_command(c).is_some())
}
