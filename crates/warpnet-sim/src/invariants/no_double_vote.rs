//! No honest double vote: an honest member never signs two different votes, or two different
//! timeouts, for one round (across restarts too: safety data is persisted before sending).

use std::collections::HashMap;

use warpnet_types::{BlockId, Epoch, PublicKey, Round};

use super::Violation;

#[derive(Default)]
pub struct NoDoubleVote {
    votes: HashMap<(PublicKey, Epoch, Round), BlockId>,
    timeouts: HashMap<(PublicKey, Epoch, Round), Round>,
}

impl NoDoubleVote {
    pub fn on_vote(
        &mut self,
        node: PublicKey,
        epoch: Epoch,
        round: Round,
        block: BlockId,
        now: u64,
    ) -> Option<Violation> {
        let first = *self.votes.entry((node, epoch, round)).or_insert(block);
        (first != block).then(|| Violation {
            invariant: "no-double-vote",
            at_ms: now,
            detail: format!(
                "member {node:?} voted for {first} and {block} in epoch {epoch} round {round}"
            ),
        })
    }

    pub fn on_timeout(
        &mut self,
        node: PublicKey,
        epoch: Epoch,
        round: Round,
        high_qc_round: Round,
        now: u64,
    ) -> Option<Violation> {
        let first = *self.timeouts.entry((node, epoch, round)).or_insert(high_qc_round);
        (first != high_qc_round).then(|| Violation {
            invariant: "no-double-vote",
            at_ms: now,
            detail: format!("member {node:?} signed timeouts for epoch {epoch} round {round} with high QC rounds {first} and {high_qc_round}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::Digest;

    #[test]
    fn catches_two_votes_and_two_timeouts_in_one_round() {
        let mut c = NoDoubleVote::default();
        let (k, e) = (PublicKey([1; 32]), Epoch(1));
        assert!(c.on_vote(k, e, Round(3), Digest([1; 32]), 0).is_none());
        assert!(c.on_vote(k, e, Round(3), Digest([1; 32]), 0).is_none(), "re-sent vote");
        assert!(c.on_vote(k, e, Round(3), Digest([2; 32]), 0).is_some());
        assert!(c.on_vote(k, Epoch(2), Round(3), Digest([2; 32]), 0).is_none(), "another epoch");
        assert!(c.on_timeout(k, e, Round(3), Round(1), 0).is_none());
        assert!(c.on_timeout(k, e, Round(3), Round(2), 0).is_some());
    }
}
