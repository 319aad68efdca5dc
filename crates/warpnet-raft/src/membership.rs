//! Membership changes: hashicorp `AddVoter` / `RemoveServer` semantics on raft-rs's
//! single-voter `ConfChange` (RF4, RF5), new members as learners promoted once caught up
//! (RV1, RV2), the voters' minimum (RV3), removed ids retired (RV4), their application (RF3),
//! leadership transfer (RF1) and the step-down of a leader that removed itself (RF6).

use raft::eraftpb::{ConfChange, ConfChangeType, Entry};
use raft::StateRole;
use warpnet_types::NodeId;

use crate::codec::encode_member;
use crate::convert;
use crate::engine::{Applied, RaftEngine};
use crate::error::RaftError;
use crate::params::Mutation;
use crate::types::{raft_id, Index, Member, Membership};

/// RV1: a learner within this many entries of the leader's last one has caught up.
pub const PROMOTION_LAG_ENTRIES: u64 = 64;

impl RaftEngine {
    pub(crate) fn add_voter(
        &mut self,
        member: Member,
        description: &[u8],
        expected: Option<Index>,
    ) -> Result<(), RaftError> {
        if description.len() > crate::codec::DESCRIPTION_BYTES_MAX {
            return Err(RaftError::Refused {
                detail: format!(
                    "a description of {} bytes (at most {})",
                    description.len(),
                    crate::codec::DESCRIPTION_BYTES_MAX
                ),
            });
        }
        // RV4: a removed member's id never comes back (its key is refused for good).
        if self.membership.is_retired(member.id) {
            return Err(RaftError::Retired { id: member.id });
        }
        if self.membership.get(member.id) == Some(member) {
            return Err(RaftError::AlreadyVoter { id: member.id });
        }
        if self.membership.learner(member.id).is_some() {
            return Err(RaftError::LearnerPending { id: member.id });
        }
        self.check_change(expected, None)?;
        if self.membership.contains(member.id) {
            // A known voter with a new description (hashicorp: a new address) is re-added.
            self.check_leaves_a_public_voter(&self.membership.with(member))?;
            return self.propose_change(ConfChangeType::AddNode, member, description);
        }
        // RV1: a new member learns first; `promote_caught_up` makes it a voter.
        self.propose_change(ConfChangeType::AddLearnerNode, member, description)
    }

    pub(crate) fn remove_server(
        &mut self,
        id: NodeId,
        expected: Option<Index>,
    ) -> Result<(), RaftError> {
        if let Some(learner) = self.membership.learner(id) {
            // RV2: the one change accepted while a learner waits is its own removal.
            self.check_change(expected, Some(id))?;
            return self.propose_change(ConfChangeType::RemoveNode, learner, &[]);
        }
        self.check_change(expected, None)?;
        let Some(member) = self.membership.get(id) else {
            return Err(RaftError::NotVoter { id });
        };
        if id == self.me {
            // RF6: hand leadership over first (to a caught-up public voter: the one with the
            // longest log must be able to lead), then remove this member from the new leader.
            return Err(RaftError::RemoveLeader { id });
        }
        let next = self.membership.without(id);
        // RV3: never fewer voters than the configured minimum.
        if next.len() < self.params.voters_min {
            return Err(RaftError::BelowMinimum {
                voters: next.len(),
                min: self.params.voters_min,
            });
        }
        self.check_leaves_a_public_voter(&next)?;
        self.propose_change(ConfChangeType::RemoveNode, member, &[])
    }

    /// RF4: only the leader changes the membership, through the log, one change at a time: a
    /// new change waits until the last one is applied (raft-rs also counts everything a new
    /// leader has not applied yet as possibly pending). `expected` is hashicorp's `prevIndex`.
    /// RV2: a learner waiting for its promotion is a change in flight too; only the removal of
    /// `cancelling` (that learner) is accepted meanwhile.
    fn check_change(
        &self,
        expected: Option<Index>,
        cancelling: Option<NodeId>,
    ) -> Result<(), RaftError> {
        if !self.is_leader() {
            return Err(RaftError::NotLeader { leader: self.leader() });
        }
        let mutated = self.params.mutated(Mutation::TwoChangesAtOnce);
        if self.raw.raft.has_pending_conf() && !mutated {
            return Err(RaftError::MembershipChangePending {
                pending: self.raw.raft.pending_conf_index,
            });
        }
        if let Some(l) = self.membership.learners().iter().find(|l| Some(l.id) != cancelling) {
            if !mutated {
                return Err(RaftError::LearnerPending { id: l.id });
            }
        }
        if let Some(expected) = expected {
            if expected != self.membership_index {
                return Err(RaftError::MembershipChanged {
                    expected,
                    current: self.membership_index,
                });
            }
        }
        Ok(())
    }

    /// RV1: the leader promotes a learner once it has caught up: its log holds the entry that
    /// made it a learner and ends within [`PROMOTION_LAG_ENTRIES`] of the leader's. An empty
    /// member promoted at once would count in every quorum while it cannot vote usefully: with
    /// one founder down, a committee of three that grew to four would stall.
    pub(crate) fn promote_caught_up(&mut self) {
        if !self.is_leader() || self.raw.raft.has_pending_conf() {
            return;
        }
        let last = self.raw.raft.raft_log.last_index();
        let at_once = self.params.mutated(Mutation::PromoteAtOnce);
        let prs = self.raw.raft.prs();
        let ready = self.membership.learners().iter().copied().find(|l| {
            at_once
                || prs.get(raft_id(l.id)).is_some_and(|p| {
                    p.matched >= self.membership_index && p.matched + PROMOTION_LAG_ENTRIES >= last
                })
        });
        if let Some(learner) = ready {
            // Refused only while raft-rs transfers leadership; the next tick tries again.
            let _ = self.propose_change(ConfChangeType::AddNode, learner, &[]);
        }
    }

    /// RF5: a change never leaves the committee without a public voter that could lead (the
    /// leader is one, by RF1, and never removes itself, by RF6; checked here all the same): one
    /// that already holds the current membership (the leader itself, or a voter whose log
    /// matches up to the membership's index). A public member just added, still empty, does
    /// not count: it does not know it is a voter until it catches up, and with no leader it
    /// never would.
    fn check_leaves_a_public_voter(&self, next: &Membership) -> Result<(), RaftError> {
        let prs = self.raw.raft.prs();
        let ready = |id: NodeId| {
            id == self.me
                || (self.membership.contains(id)
                    && prs.get(raft_id(id)).is_some_and(|p| p.matched >= self.membership_index))
        };
        let public = next.public_voters().filter(|m| ready(m.id)).count();
        if next.is_empty() || public == 0 {
            return Err(RaftError::NoPublicVoterLeft { voters: next.len(), public });
        }
        Ok(())
    }

    fn propose_change(
        &mut self,
        kind: ConfChangeType,
        member: Member,
        description: &[u8],
    ) -> Result<(), RaftError> {
        let mut cc = ConfChange::default();
        cc.set_change_type(kind);
        cc.node_id = raft_id(member.id);
        let before = self.raw.raft.raft_log.last_index();
        if self.params.mutated(Mutation::TwoChangesAtOnce) {
            self.raw.raft.pending_conf_index = self.raw.raft.raft_log.applied;
        }
        self.raw
            .propose_conf_change(encode_member(&member, description), cc)
            .map_err(|e| RaftError::Refused { detail: e.to_string() })?;
        // raft-rs turns a refused change into an empty entry instead of failing: check.
        if self.raw.raft.pending_conf_index <= before {
            return Err(RaftError::Refused {
                detail: "raft-rs dropped the membership change".into(),
            });
        }
        Ok(())
    }

    /// Applies a committed membership entry (RF3: in order, once). The change is checked when
    /// proposed; a change raft-rs refuses here (which RF4 keeps from happening) leaves the
    /// membership as it was, on every replica alike.
    pub(crate) fn apply_membership(&mut self, e: &Entry) -> Applied {
        let entry = convert::log_entry_of(e);
        let (index, term) = (e.index, e.term);
        let Ok(next) = convert::membership_after(&self.membership, &entry) else {
            return Applied::Noop { index, term };
        };
        let mut cc = ConfChange::default();
        if protobuf::Message::merge_from_bytes(&mut cc, &e.data).is_err() {
            return Applied::Noop { index, term };
        }
        let farewell = self.farewell(&cc, e);
        if self.raw.apply_conf_change(&cc).is_err() {
            return Applied::Noop { index, term };
        }
        if let Some(m) = farewell {
            self.send(m);
        }
        self.raw.mut_store().conf_state = convert::conf_state_of(&next);
        self.membership = next.clone();
        self.membership_index = index;
        self.history.push((index, next.clone()));
        // RF6: a leader that applies its own removal steps down at once, in its term (it will
        // not vote again in it). raft-rs 0.7 would keep leading without a place in its own
        // progress tracker, and panic on its next durable write; the remaining voters (RF5:
        // one of them public) elect a successor within an election timeout.
        if !next.contains(self.me) && self.raw.raft.state == StateRole::Leader {
            let t = self.raw.raft.term;
            self.raw.raft.become_follower(t, raft::INVALID_ID);
        }
        Applied::Membership { index, term, membership: next }
    }

    /// RV7: a leader applying the removal of another member sends it one last append: the
    /// removal entry itself, after the entry before it (so the follower's log-matching check
    /// applies as to any append), with the commit index at the removal. Once raft-rs forgets
    /// the member it sends it nothing more, and a member whose acknowledgement came after the
    /// majority's would otherwise never learn that the removal committed.
    fn farewell(&self, cc: &ConfChange, e: &Entry) -> Option<raft::eraftpb::Message> {
        let r = &self.raw.raft;
        if r.state != StateRole::Leader
            || cc.get_change_type() != ConfChangeType::RemoveNode
            || cc.node_id == r.id
            || r.prs().get(cc.node_id).is_none()
        {
            return None;
        }
        let mut m = raft::eraftpb::Message::default();
        m.set_msg_type(raft::eraftpb::MessageType::MsgAppend);
        m.to = cc.node_id;
        m.from = r.id;
        m.term = r.term;
        m.index = e.index - 1;
        m.log_term = r.raft_log.term(e.index - 1).ok()?;
        m.entries = vec![e.clone()].into();
        m.commit = e.index;
        Some(m)
    }

    /// RF1: leadership moves only to a public voter (RF6: not to one being removed).
    pub(crate) fn transfer(&mut self, to: NodeId) -> Result<(), RaftError> {
        if !self.is_leader() {
            return Err(RaftError::NotLeader { leader: self.leader() });
        }
        if !self.membership.is_public(to) || self.removal_pending(to) {
            return Err(RaftError::NotPublic { id: to });
        }
        self.raw.transfer_leader(raft_id(to));
        Ok(())
    }

    /// RF6: whether the log holds a not yet applied change removing `id`. Such a member does
    /// not campaign: as leader it would commit its own removal and step down, and if its log
    /// was the longest, the remaining public voters could be refused by private ones forever.
    pub(crate) fn removal_pending(&self, id: NodeId) -> bool {
        // The entries are in index order: only those after `applied` are looked at (this runs
        // on every status, and the log holds thousands of applied entries between compactions).
        let entries = &self.raw.store().entries;
        let unapplied = &entries[entries.partition_point(|e| e.index <= self.applied)..];
        unapplied.iter().any(|e| {
            let mut cc = ConfChange::default();
            e.get_entry_type() == raft::eraftpb::EntryType::EntryConfChange
                && protobuf::Message::merge_from_bytes(&mut cc, &e.data).is_ok()
                && cc.get_change_type() == ConfChangeType::RemoveNode
                && cc.node_id == raft_id(id)
        })
    }
}
