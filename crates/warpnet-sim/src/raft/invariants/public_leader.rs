//! RF1: a member that is not public never campaigns (pre-candidate or candidate) and never
//! leads.

use warpnet_raft::Role;
use warpnet_types::NodeId;

use super::Violation;

#[derive(Default)]
pub struct PublicLeader;

impl PublicLeader {
    pub fn check(
        &self,
        node: NodeId,
        public: bool,
        role: Role,
        term: u64,
        now: u64,
    ) -> Option<Violation> {
        (!public && role != Role::Follower).then(|| Violation {
            invariant: "public-leader",
            at_ms: now,
            detail: format!("member {node}, not public, is {role:?} in term {term}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_a_private_candidate() {
        let p = PublicLeader;
        assert!(p.check(NodeId(1), false, Role::Follower, 2, 0).is_none());
        assert!(p.check(NodeId(1), true, Role::Leader, 2, 0).is_none());
        assert!(p.check(NodeId(1), false, Role::PreCandidate, 2, 0).is_some());
    }
}
