//! The replica's view of health and leader reputation: the committed history a window needs,
//! the health seen from each block (cached), the leaders that follow from it (LR3), the health
//! records a leader writes (H1, H2, H4, H5, LR2) and the checks a voter runs on them.

use std::sync::Arc;

use warpnet_types::health::{summary_due, BlockHealth};
use warpnet_types::membership::Change;
use warpnet_types::{Block, BlockId, Height, NodeId, PublicKey, Round, VoterBitmap};

use super::Core;
use crate::health::{window_len, Health, Record};
use crate::io::Rejection;

/// Most cached healths (one per block a window ends at; pruned as blocks commit).
pub(super) const HEALTH_CACHE_MAX: usize = 256;

impl Core {
    /// Committed records kept below and at the root: a window, and the two blocks a leader's
    /// window may start below the root.
    pub(super) fn history_max(&self) -> usize {
        window_len(self.config.total_nodes()) + 2
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
        #[cfg_attr(not(feature = "mutations"), allow(unused_mut))]
        let mut health = Health::compute(&self.config, &window, height, self.carried.as_deref());
        #[cfg(feature = "mutations")]
        if self.params.mutation == Some(crate::params::Mutation::LrOff) {
            health.eligible = self.config.leader_candidates().to_vec();
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
        match self.history.iter().rposition(|r| r.id == cursor) {
            Some(at) => {
                end_height.get_or_insert(self.history[at].height);
                for r in self.history.range(..=at).rev() {
                    if r.round == Round(0) || out.len() == max {
                        break;
                    }
                    out.push(r.clone());
                }
            }
            None if end_height.is_none() => return None,
            // A chain the history does not reach (never for a store's recovery): the window
            // is what the tree holds.
            None => {}
        }
        out.reverse();
        Some((end_height?, out))
    }

    /// A block's round and parent, from the tree or the history.
    fn round_and_parent(&self, id: BlockId) -> Option<(Round, BlockId)> {
        if let Some(b) = self.tree.get(&id) {
            return Some((b.round(), b.parent()));
        }
        self.history.iter().rev().find(|r| r.id == id).map(|r| (r.round, r.parent))
    }

    /// LR3: the leader of `round` for a block extending `parent`. `None` if `parent` is unknown.
    pub(super) fn leader_after(&self, round: Round, parent: BlockId) -> Option<NodeId> {
        let (parent_round, grandparent) = self.round_and_parent(parent)?;
        let health = self.health_at(grandparent)?;
        Some(health.leader(&self.config, round, parent_round))
    }

    /// The leader of our current round, as our highest certified block says (L1 if unknown).
    pub(super) fn current_leader(&self) -> NodeId {
        let parent = self.safety.data().high_qc.block_id();
        let round = self.round;
        self.leader_after(round, parent).unwrap_or_else(|| self.config.leader(round))
    }

    /// Who gathers the votes for block `id` of `round` (the next leader, if the next block
    /// extends it) and who records them two rounds ahead (H1: the leader after that).
    pub(super) fn vote_targets(&self, id: BlockId, round: Round) -> (NodeId, Option<NodeId>) {
        let collector = self
            .leader_after(round.next(), id)
            .unwrap_or_else(|| self.config.leader(round.next()));
        let recorder = self.health_at(id).map(|h| h.leader(&self.config, Round(round.0 + 2), round.next()));
        (collector, recorder.filter(|&r| r != collector))
    }

    /// PM7's pair for the current round: its leader and the member gathering its votes.
    pub(super) fn round_pair(&self) -> (NodeId, NodeId) {
        let parent = self.safety.data().high_qc.block_id();
        let round = self.round;
        let leader = self.leader_after(round, parent).unwrap_or_else(|| self.config.leader(round));
        let next = self
            .health_at(parent)
            .map(|h| h.leader(&self.config, round.next(), round))
            .unwrap_or_else(|| self.config.leader(round.next()));
        (leader, next)
    }

    /// H2: a member's advertised address was dialed successfully (an authenticated handshake).
    pub(super) fn on_dialed(&mut self, peer: PublicKey) {
        if let Some(id) = self.config.node_id_of(&peer).filter(|&p| Some(p) != self.me) {
            self.dialed.insert(id, self.now_ms);
        }
    }

    /// What a leader records in a block of `round` at `height` extending `parent` (in the
    /// tree): H1 the late votes for the grandparent, H2 whom it reached recently, LR2 the
    /// blame for the failed rounds, H4/H5 the summary when due.
    pub(super) fn health_record(
        &mut self,
        parent: &Block,
        round: Round,
        height: Height,
        payload: &[Vec<u8>],
    ) -> BlockHealth {
        let n = self.config.total_nodes();
        let participation = if parent.round() > Round(0) {
            let grandparent = parent.parent();
            self.votes.recorded(&self.config, parent.justify().round(), grandparent)
        } else {
            VoterBitmap::default()
        };
        let fresh = self.params.reach_fresh_ms;
        let now = self.now_ms;
        let reached: Vec<NodeId> = self
            .dialed
            .iter()
            .filter(|(_, &at)| now.saturating_sub(at) <= fresh)
            .map(|(&id, _)| id)
            .collect();
        let reached = VoterBitmap::from_ids(n, &reached).unwrap_or_default();
        let Some(health) = self.health_at(parent.parent()) else {
            return BlockHealth { participation, reached, ..BlockHealth::default() };
        };
        let failed = health.blame(&self.config, parent.round(), round);
        let summary = summary_wanted(height, payload).then(|| health.summary.clone());
        BlockHealth { participation, reached, failed, summary }
    }

    /// P1, LR2–LR3, H4–H5 for a proposal whose parent is in the tree: its proposer leads its
    /// round after that parent, and its blame and summary are what the parent's ancestry gives.
    pub(super) fn check_health(&self, block: &Block) -> Result<(), Rejection> {
        let Some((parent_round, grandparent)) = self.round_and_parent(block.parent()) else {
            return Ok(()); // not attached: checked once it is
        };
        let Some(health) = self.health_at(grandparent) else { return Ok(()) };
        let round = block.round();
        let leader = health.leader(&self.config, round, parent_round);
        if block.proposer() != leader {
            return Err(Rejection::NotLeader { round, proposer: block.proposer(), leader });
        }
        #[cfg(feature = "mutations")]
        if self.params.mutation == Some(crate::params::Mutation::HealthUnchecked) {
            return Ok(());
        }
        let height = block.height();
        if block.health().failed != health.blame(&self.config, parent_round, round) {
            return Err(Rejection::HealthRecord { what: "failed rounds", height });
        }
        let expected = summary_wanted(height, block.payload()).then_some(&health.summary);
        if block.health().summary.as_ref() != expected {
            return Err(Rejection::HealthRecord { what: "health summary", height });
        }
        Ok(())
    }

    /// The health seen from the last committed block, with its height: what the node publishes
    /// (every honest replica computes the same for the same committed height).
    pub fn committed_health(&self) -> Option<(Height, Arc<Health>)> {
        let root = self.tree.root();
        let (id, height) = (root.id(), root.height());
        self.health_at(id).map(|h| (height, h))
    }

    /// The leader of `round` for a block extending `parent`, as this replica computes it
    /// (LR3); `None` when `parent` is unknown here.
    pub fn leader_of(&self, round: Round, parent: BlockId) -> Option<NodeId> {
        self.leader_after(round, parent)
    }
}

/// H4, H5: a block carries the summary every `SUMMARY_INTERVAL` heights and when it carries a
/// membership change (it may end the epoch, whose end proof then proves its final health).
fn summary_wanted(height: Height, payload: &[Vec<u8>]) -> bool {
    summary_due(height) || payload.iter().any(|c| Change::from_command(c).is_some())
}
