//! Reputation fairness (LR2): after the faults stop (GST) and the replicas have caught up, no
//! honest member is kept from leading for more than [`window_len`] consecutive committed
//! blocks, whatever the Byzantine members do: a window holds many honest leaders' blocks,
//! each recording the member's votes, and its failures leave the window as it slides.

use std::collections::{HashMap, HashSet};

use warpnet_core::health::{window_len, Health};
use warpnet_types::{ConsensusConfig, Height, PublicKey, Reputation};

use super::Violation;

#[derive(Default)]
pub struct Fairness {
    /// Counting starts here (GST plus time to catch up).
    pub from_ms: Option<u64>,
    counted: HashSet<Height>,
    /// Consecutive committed blocks each member was skipped for, and the longest seen.
    streak: HashMap<PublicKey, usize>,
    pub longest: usize,
    /// Blocks counted; of them, those whose health was in LR1's fallback, and those proposed
    /// by a member no one can dial (H2: only possible under the fallback).
    pub blocks: usize,
    pub fallback_blocks: usize,
    pub undialable_led: usize,
}

impl Fairness {
    /// The health seen from a newly committed block by `proposer`; `fair`: the honest members
    /// that run and can be dialed; `undialable`: the members no one can dial.
    pub fn on_commit(
        &mut self,
        config: &ConsensusConfig,
        (height, proposer): (Height, PublicKey),
        health: &Health,
        (fair, undialable): (&[PublicKey], &[PublicKey]),
        now: u64,
    ) -> Option<Violation> {
        if self.from_ms.is_none_or(|t| now < t) || !self.counted.insert(height) {
            return None;
        }
        self.blocks += 1;
        self.fallback_blocks += usize::from(health.summary.fallback);
        self.undialable_led += usize::from(undialable.contains(&proposer));
        let bound = window_len(config.total_nodes());
        let mut found = None;
        for (m, p) in health.summary.members.iter().zip(config.participants()) {
            if !fair.contains(&p.public_key) {
                continue;
            }
            let skipped = p.public && m.reputation != Reputation::Leader;
            let streak = self.streak.entry(p.public_key).or_default();
            *streak = if skipped { *streak + 1 } else { 0 };
            self.longest = self.longest.max(*streak);
            if *streak > bound && found.is_none() {
                found = Some(Violation {
                    invariant: "reputation-fairness",
                    at_ms: now,
                    detail: format!(
                        "honest member {:?} skipped ({:?}) for {streak} committed blocks (at most {bound})",
                        p.public_key, m.reputation
                    ),
                });
            }
        }
        found
    }
}
