//! Leader reputation under a late fault (LR2, LR5): once a member is stopped or cut off, the
//! chain blames it for at most [`FAILED_ROUNDS_MAX`] failed rounds of its own leadership (after
//! that it is skipped), and a member cut off and healed leads again before the liveness
//! deadline (it comes back once it votes again).

use std::collections::HashSet;

use warpnet_core::health::Health;
use warpnet_types::{Block, ConsensusConfig, Height, PublicKey, Reputation};

use super::Violation;

/// Failed rounds of its own leadership a stopped or cut-off member may cost: the first one,
/// which nothing recorded could foresee. After it, LR5 skips it in the rounds that follow,
/// and from two blocks on the health leaders are drawn from records it (LR2b). Without LR5
/// (mutation `Lr5Off`) the rotation can reach it again before then.
pub const FAILED_ROUNDS_MAX: u32 = 1;

/// The bound with Byzantine members in the committee: a silent Byzantine leader or vote
/// collector makes rounds fail beside the member that went away, so certified blocks (and
/// with them the health that records its failures) come more slowly, and LR5, which skips
/// only the latest failures and keeps one eligible member unskipped, can run out of members
/// to skip: the rotation can reach the member again before its failure is recorded. (In 120
/// runs of `liveness_with_reputation_on_under_byzantine_members_and_a_crash`'s shape it cost
/// at most 3; at most 4 without LR5.)
pub const FAILED_ROUNDS_MAX_BYZANTINE: u32 = 4;

#[derive(Default)]
pub struct ReputationBound {
    /// The member under the fault, when it started, and when its links heal (a cut).
    target: Option<(PublicKey, u64, Option<u64>)>,
    /// Whether the member can lead again once healed: not when no one can dial it while
    /// others are verified public (H2, LR1).
    can_return: bool,
    /// The failed rounds allowed ([`FAILED_ROUNDS_MAX`], or with Byzantine members
    /// [`FAILED_ROUNDS_MAX_BYZANTINE`]).
    bound: u32,
    /// Heights counted (each block once, as the first honest replica commits it).
    counted: HashSet<Height>,
    /// Failed rounds the chain blames on the member, in blocks proposed after the start.
    pub failed_rounds: u32,
    /// Every failed round the chain blames, in those blocks.
    pub all_failed_rounds: u32,
    /// Committed blocks after the start, and those the member could lead after.
    pub blocks: u32,
    pub led_after: u32,
    returned: bool,
}

impl ReputationBound {
    pub fn start(
        &mut self,
        key: PublicKey,
        now: u64,
        heal_at: Option<u64>,
        (can_return, byzantine): (bool, bool),
    ) {
        self.target = Some((key, now, heal_at));
        self.can_return = can_return;
        self.bound = if byzantine { FAILED_ROUNDS_MAX_BYZANTINE } else { FAILED_ROUNDS_MAX };
    }

    /// A block an honest replica committed after the fault started, and the health seen from
    /// it (`None`: not computed here).
    pub fn on_commit(
        &mut self,
        config: &ConsensusConfig,
        block: &Block,
        health: Option<&Health>,
        now: u64,
    ) -> Option<Violation> {
        let (key, _, heal_at) = self.target?;
        if !self.counted.insert(block.height()) {
            return None;
        }
        let id = config.node_id_of(&key)?;
        self.blocks += 1;
        if let Some(h) = health {
            let leads = h.summary.members[id.index()].reputation == Reputation::Leader;
            self.led_after += u32::from(leads);
            if heal_at.is_some_and(|at| now >= at) && leads {
                self.returned = true;
            }
        }
        // The first blocks after the start may blame rounds that failed before it.
        if self.blocks <= 2 {
            return None;
        }
        for &(who, count) in &block.health().failed {
            self.all_failed_rounds += count;
            if who == id {
                self.failed_rounds += count;
            }
        }
        (self.failed_rounds > self.bound && heal_at.is_none_or(|at| now < at)).then(|| Violation {
            invariant: "reputation-bound",
            at_ms: now,
            detail: format!(
                "member {id} failed {} rounds of its leadership after it went away (at most {})",
                self.failed_rounds, self.bound
            ),
        })
    }

    /// Whether the member came back (or there is nothing to wait for).
    pub fn done(&self) -> bool {
        self.returned || !self.can_return || self.target.is_none_or(|(_, _, heal)| heal.is_none())
    }

    /// At the liveness deadline: a healed member that never led again.
    pub fn check(&self, now: u64) -> Option<Violation> {
        (!self.done()).then(|| Violation {
            invariant: "reputation-return",
            at_ms: now,
            detail: "a member cut off and healed was not eligible to lead again by the deadline"
                .into(),
        })
    }
}
