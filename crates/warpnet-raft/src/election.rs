//! Ticks and elections: the engine, not raft-rs, decides when a replica campaigns, so that only
//! public voters ever do (RF1) and every draw comes from the engine's seed (RF9); the status
//! report, which says plainly when no public voter can be reached (RF11).

use raft::StateRole;
use warpnet_types::NodeId;

use crate::engine::{Action, RaftEngine};
use crate::params::Mutation;
use crate::types::{Index, Membership, Role};

/// How a replica sees its committee's leadership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// This replica leads.
    Leading,
    /// A leader is known.
    Following(NodeId),
    /// No leader yet, but a public voter is reachable (or this replica is one): an election
    /// is under way or will be.
    Electing,
    /// No leader for an election timeout and no public voter heard from in that time: only
    /// public voters may lead, so nothing commits until one comes back (RF11).
    NoPublicVoterReachable,
}

/// A snapshot of the engine, for `/v1/cluster`, health and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftStatus {
    pub me: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit: Index,
    pub applied: Index,
    pub last_index: Index,
    pub snapshot_index: Index,
    pub membership: Membership,
    pub membership_index: Index,
    /// This replica is a public voter, so it campaigns when it hears no leader.
    pub may_campaign: bool,
    /// Public voters heard from within the last two election timeouts (this replica counts
    /// when it may campaign).
    pub public_voters_reachable: usize,
    /// Ticks without a known leader (0 while one is known).
    pub leaderless_ticks: u64,
    pub health: Health,
}

impl RaftEngine {
    pub(crate) fn tick(&mut self) {
        self.ticks += 1;
        if self.raw.raft.state == StateRole::Leader {
            // Heartbeats and check-quorum (a leader that hears no quorum steps down).
            self.raw.tick();
            self.promote_caught_up();
        } else {
            self.election_tick();
        }
        self.expire_reads();
    }

    /// RF1 + RF9. raft-rs's own timer never fires: its counter is advanced here (raft-rs still
    /// uses it to ignore votes while a leader is recent), and only a public voter campaigns,
    /// after a timeout drawn from the engine's seed in `[election, 2 * election)` ticks.
    /// Pre-vote comes with it: `campaign` starts with a pre-vote round.
    fn election_tick(&mut self) {
        let r = &mut self.raw.raft;
        if r.election_elapsed < self.seen_elapsed {
            // raft-rs restarted its timer (a leader's message, a new term): draw again.
            self.election_deadline = self.draw_timeout();
        }
        let r = &mut self.raw.raft;
        r.election_elapsed += 1;
        self.seen_elapsed = r.election_elapsed;
        if self.may_campaign() && self.seen_elapsed >= self.election_deadline {
            self.raw.raft.election_elapsed = 0;
            self.seen_elapsed = 0;
            self.election_deadline = self.draw_timeout();
            // Refused only if raft-rs holds an unapplied snapshot; the next timeout retries.
            let _ = self.raw.campaign();
        }
    }

    pub(crate) fn may_campaign(&self) -> bool {
        let voter = if self.params.mutated(Mutation::PrivateCampaigns) {
            self.membership.contains(self.me)
        } else {
            self.membership.is_public(self.me)
        };
        voter && self.raw.raft.promotable() && !self.removal_pending(self.me)
    }

    /// SplitMix64 over the engine's seed.
    pub(crate) fn draw_timeout(&mut self) -> usize {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let e = self.params.election_ticks.max(2);
        e + (z % e as u64) as usize
    }

    /// RF8: a read that got no read index within its bound is reported failed (a follower's
    /// request to a leader that is gone is simply lost in raft-rs).
    fn expire_reads(&mut self) {
        let bound = self.params.read_timeout_ticks;
        let now = self.ticks;
        let expired: Vec<_> = self
            .reads
            .iter()
            .filter(|(_, &at)| now.saturating_sub(at) > bound)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            self.reads.remove(&id);
            self.out.push(Action::ReadFailed { id });
        }
    }

    pub fn status(&self) -> RaftStatus {
        let r = &self.raw.raft;
        let role = match r.state {
            StateRole::Follower => Role::Follower,
            StateRole::PreCandidate => Role::PreCandidate,
            StateRole::Candidate => Role::Candidate,
            StateRole::Leader => Role::Leader,
        };
        let window = 2 * self.params.election_ticks as u64;
        let heard = self
            .membership
            .public_voters()
            .filter(|m| m.id != self.me)
            .filter(|m| {
                self.last_heard.get(&m.id).is_some_and(|&t| self.ticks.saturating_sub(t) <= window)
            })
            .count();
        let may_campaign = self.may_campaign();
        let public_voters_reachable = heard + usize::from(may_campaign);
        let leader = self.leader();
        let leaderless_ticks = self.leader_lost_at.map_or(0, |at| self.ticks.saturating_sub(at));
        let health = match (role, leader) {
            (Role::Leader, _) => Health::Leading,
            (_, Some(l)) => Health::Following(l),
            _ if public_voters_reachable == 0
                && leaderless_ticks >= self.params.election_ticks as u64 =>
            {
                Health::NoPublicVoterReachable
            }
            _ => Health::Electing,
        };
        let store = self.raw.store();
        RaftStatus {
            me: self.me,
            role,
            term: r.term,
            leader,
            commit: r.raft_log.committed,
            applied: self.applied,
            last_index: r.raft_log.last_index(),
            snapshot_index: store.snapshot.get_metadata().index,
            membership: self.membership.clone(),
            membership_index: self.membership_index,
            may_campaign,
            public_voters_reachable,
            leaderless_ticks,
            health,
        }
    }
}
