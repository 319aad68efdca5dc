//! Epochs: which blocks may carry a membership change (EP1, EP2), where an epoch ends (EP3),
//! how a replica in another epoch catches up (EP4) and how a proven commit is fetched (Y5).

use std::collections::HashMap;
use std::sync::Arc;

use warpnet_types::epoch::CommitProof;
use warpnet_types::membership::Change;
use warpnet_types::{
    Block, BlockId, ConsensusConfig, Epoch, EpochProofMsg, EpochRequest, Height, Message,
    PublicKey, QuorumCertificate, Round,
};

use super::Core;
use crate::collect::{TimeoutCollector, VoteCollector};
use crate::io::{EpochChange, Rejection};
use crate::safety::SafetyData;
use crate::safety::SafetyRules;
use crate::tree::{BlockTree, Committed};

/// A block proven committed that we fetch and commit (Y5); with the committee that follows,
/// when it ends its epoch.
pub(crate) struct Proven {
    pub proof: CommitProof,
    pub next: Option<Arc<ConsensusConfig>>,
}

impl Proven {
    fn id(&self) -> Option<BlockId> {
        self.proof.block().map(Block::id)
    }
}

/// How far a list of proven blocks leads: epoch ends, then the last block's height.
fn reach<'a>(
    list: impl DoubleEndedIterator<Item = &'a Proven> + Clone,
) -> (usize, Option<warpnet_types::Height>) {
    let ends = list.clone().filter(|p| p.next.is_some()).count();
    (ends, list.last().and_then(|p| p.proof.block()).map(Block::height))
}

/// Whether a command is a membership change (by its envelope, without decoding it).
fn is_change(cmd: &[u8]) -> bool {
    Change::from_command(cmd).is_some()
}

impl Core {
    /// EP1: a membership command enters the mempool (or a block) only if it decodes and is
    /// valid for the epoch's committee. Other commands pass.
    pub(super) fn check_membership_command(&self, cmd: &[u8]) -> Result<(), Rejection> {
        match Change::from_command(cmd) {
            None => Ok(()),
            Some(Err(e)) => Err(Rejection::MalformedChange(e.to_string())),
            Some(Ok(change)) => change.apply(&self.config).map(|_| ()).map_err(Rejection::from),
        }
    }

    /// Whether the chain from `id` down to the committed root carries a membership change:
    /// then its descendants in the epoch are the epoch's suffix (EP2).
    pub(super) fn in_suffix(&self, id: BlockId) -> bool {
        self.tree.path_to_root(id).any(|b| b.payload().iter().any(|c| is_change(c)))
    }

    /// EP1 + EP2, for a proposal whose parent is in the tree: at most one membership change,
    /// valid for the epoch, and none (no payload at all) after one in the epoch.
    pub(super) fn check_reconfiguration(&self, block: &Block) -> Result<(), Rejection> {
        #[cfg(feature = "mutations")]
        if self.params.mutation == Some(crate::params::Mutation::Ep1AnyChange) {
            return Ok(());
        }
        if block.payload().is_empty() {
            return Ok(());
        }
        if self.in_suffix(block.parent()) {
            return Err(Rejection::Reconfiguration { count: 0 });
        }
        let changes: Vec<&Vec<u8>> = block.payload().iter().filter(|c| is_change(c)).collect();
        match changes.as_slice() {
            [] => Ok(()),
            [one] => self.check_membership_command(one),
            many => Err(Rejection::Reconfiguration { count: many.len() }),
        }
    }

    /// A leader's payload under EP1 and EP2: nothing in the epoch's suffix, else at most one
    /// membership change (the oldest valid one).
    pub(super) fn filter_payload(&self, parent: BlockId, payload: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        if self.in_suffix(parent) {
            return Vec::new();
        }
        let mut changed = false;
        payload
            .into_iter()
            .filter(|c| {
                if !is_change(c) {
                    return true;
                }
                let keep = !changed && self.check_membership_command(c).is_ok();
                changed |= keep;
                keep
            })
            .collect()
    }

    /// C1, with EP3: commits the chain up to `b0`, which `qc` (certifying `b0`'s child in the
    /// next round) proves committed. If the chain carries a membership change, the epoch ends
    /// at that block: later blocks of the epoch never commit.
    pub(super) fn commit_proven(&mut self, b0: BlockId, qc: &QuorumCertificate) {
        if self.ending.is_some() {
            return; // the epoch already ended in this step
        }
        let chain: Vec<BlockId> = {
            let mut ids: Vec<BlockId> = self.tree.path_to_root(b0).map(Block::id).collect();
            ids.reverse();
            ids
        };
        let end = chain
            .iter()
            .copied()
            .find(|id| self.tree.get(id).is_some_and(|b| b.payload().iter().any(|c| is_change(c))));
        #[cfg(feature = "mutations")]
        let upto = if self.params.mutation == Some(crate::params::Mutation::Ep3NoCut) {
            b0
        } else {
            end.unwrap_or(b0)
        };
        #[cfg(not(feature = "mutations"))]
        let upto = end.unwrap_or(b0);
        // The proof: from the committed block up to the certified child.
        let mut blocks: Vec<Block> = self.tree.path_to_root(qc.block_id()).cloned().collect();
        blocks.reverse();
        let from = blocks.iter().position(|b| b.id() == upto).unwrap_or(0);
        // H4: the newest summary among the blocks this commit covers, with its own proof.
        if let Some(i) = blocks[..=from].iter().rposition(|b| b.health().summary.is_some()) {
            let certificate = qc.clone();
            self.health_proof = Some(CommitProof { blocks: blocks[i..].to_vec(), certificate });
        }
        let proof = CommitProof { blocks: blocks.split_off(from), certificate: qc.clone() };
        let committed = self.tree.commit_to(upto);
        self.apply_commits(committed);
        match end {
            Some(_) => self.end_epoch(proof),
            None => self.latest_commit = Some(proof),
        }
    }

    /// Hands committed blocks to the runtime and the mempool.
    pub(super) fn apply_commits(&mut self, committed: Vec<Committed>) {
        if committed.is_empty() {
            return;
        }
        for c in &committed {
            self.mempool.remove_committed(c.block.payload().iter());
        }
        let blocks: Vec<&Block> = committed.iter().map(|c| &c.block).collect();
        self.record_commits(&blocks);
        self.write.commits.extend(committed);
        let root = self.tree.root().height();
        self.pending.retain(|_, (_, p)| p.block.height() > root);
    }

    /// EP3: our epoch ended at the committed block `proof` proves. The switch to the next
    /// committee happens when the step finishes (`Core::finish`), so nothing of this epoch is
    /// processed against the next one.
    fn end_epoch(&mut self, proof: CommitProof) {
        let next = match proof.next_epoch(&self.config) {
            Ok(next) => next,
            Err(e) => {
                // Unreachable for a chain a quorum certified (its members checked EP1/EP2);
                // refuse loudly rather than switch to a committee we cannot justify.
                return self.reject(None, Rejection::EpochProof(e));
            }
        };
        self.latest_commit = Some(proof.clone());
        self.ending = Some(EpochChange { end: proof, next: Arc::new(next) });
    }

    /// EP3, as a step finishes: the write carries the end, the next committee, its genesis
    /// block (committed by definition) and its initial safety data; the replica continues in
    /// round 1 of the next epoch, signing only if a member of it.
    pub(super) fn switch_epoch(&mut self, change: EpochChange) {
        let next = change.next.clone();
        let genesis = Block::genesis(&next);
        let genesis_qc = QuorumCertificate::genesis(&next);
        // H5: the ended epoch's last summary fills in while this one's window is short.
        self.carried = change.end.block().and_then(|b| b.health().summary.clone()).map(Arc::new);
        self.history.clear();
        self.history.push_back(crate::health::Record::of(&genesis));
        // H2: attestations are signed for an epoch; ours is signed again once we are in it.
        self.attestations.clear();
        self.health_cache.get_mut().clear();
        self.genesis_link = (genesis.parent(), genesis.height());
        self.write
            .commits
            .push(Committed { block: genesis.clone(), certificate: genesis_qc.clone() });
        self.write.epoch = Some(change);
        self.config = next;
        self.me = self.config.node_id_of(&self.signer.public_key());
        self.tree = BlockTree::new(genesis, genesis_qc);
        #[cfg_attr(not(feature = "mutations"), allow(unused_mut))]
        let mut safety = SafetyRules::unpersisted(SafetyData::initial(&self.config));
        #[cfg(feature = "mutations")]
        {
            safety.mutation = self.params.mutation;
        }
        self.safety = safety;
        self.persist_requested = 0;
        self.unpersisted.clear();
        self.round = Round(0);
        self.consecutive_timeouts = 0;
        self.proposed_round = Round(0);
        self.votes = VoteCollector::default();
        self.timeouts = TimeoutCollector::default();
        self.seen_proposals.clear();
        self.pending.clear();
        self.sync_requested.clear();
        self.evidence.clear();
        self.sealed.clear();
        self.unreachable.clear();
        self.timers = [None, None];
        self.latest_commit = None;
        self.health_proof = None;
        self.epoch_asked.clear();
        self.epoch_served.clear();
        let config = self.config.clone();
        self.mempool.retain(|cmd| match Change::from_command(cmd) {
            None => true,
            Some(change) => change.is_ok_and(|c| c.apply(&config).is_ok()),
        });
        if self.targets.front().is_some_and(|t| t.next.is_some()) {
            self.targets.pop_front();
        }
        self.round = Round(1);
        self.attest();
        self.enter_round();
        self.pursue_targets();
    }

    /// EP4: a member's message from another epoch. From an earlier one: answer with the proof
    /// of the epochs since. From a later one: ask for it. Each at most once per peer per base
    /// round timeout (by the clock: the rounds of a stuck epoch do not move).
    pub(super) fn on_other_epoch(&mut self, from: PublicKey, epoch: Epoch) {
        let expected = self.config.epoch();
        let sender = self.config.node_id_of(&from);
        self.reject(sender, Rejection::WrongEpoch { got: epoch, expected });
        if epoch < self.config.epoch() {
            self.on_epoch_request(from, epoch);
        } else if self.epoch_limit_allows(false, from) {
            let request = EpochRequest { epoch: self.config.epoch(), from: self.config.epoch() };
            self.send_to(from, Message::EpochRequest(request));
        }
    }

    /// EP4: the runtime answers with the ends of the epochs from `from` to ours, and our
    /// latest commit proof (at most once per peer per base round timeout: a proof costs a
    /// store read).
    pub(super) fn on_epoch_request(&mut self, from: PublicKey, epoch: Epoch) {
        if self.epoch_limit_allows(true, from) {
            self.step.serve_epochs.push((from, epoch));
        }
    }

    /// EP4's rate limit, per peer and direction; records the use when it allows.
    fn epoch_limit_allows(&mut self, serve: bool, peer: PublicKey) -> bool {
        let (now, window) = (self.now_ms, self.params.round_timeout_base_ms);
        let map = if serve { &mut self.epoch_served } else { &mut self.epoch_asked };
        if map.get(&peer).is_some_and(|&at| now < at.saturating_add(window)) {
            return false;
        }
        map.insert(peer, now);
        true
    }

    /// EP4: ends of epochs and a latest commit, each checked link by link from our committee;
    /// what verifies becomes the blocks we fetch and commit, in order (Y5).
    pub(super) fn on_epoch_proof(&mut self, from: PublicKey, msg: EpochProofMsg) {
        let mut config = self.config.clone();
        let mut found = Vec::new();
        for end in msg.ends.iter().filter(|e| e.epoch() >= self.config.epoch()) {
            match end.next_epoch(&config) {
                Ok(next) => {
                    let next = Arc::new(next);
                    found.push(Proven { proof: end.clone(), next: Some(next.clone()) });
                    config = next;
                }
                Err(e) => return self.reject(None, e.into()),
            }
        }
        if let Some(latest) = msg.latest.filter(|l| l.epoch() == config.epoch()) {
            match latest.verify(&config) {
                Ok(()) => found.push(Proven { proof: latest, next: None }),
                Err(e) => return self.reject(None, e.into()),
            }
        }
        // Keep what leads furthest: more epoch ends, else the higher latest commit.
        if reach(found.iter()) > reach(self.targets.iter()) {
            self.targets = found.into();
        }
        self.pursue_targets_from(Some(from), None);
    }

    pub(super) fn pursue_targets(&mut self) {
        self.pursue_targets_from(None, None);
    }

    /// Y5: commits the first proven block once the chain to it is in the tree (hash-linked
    /// ancestors of a committed block are committed), else fetches that chain, above `above`
    /// (where a truncated response stopped) or our committed height.
    pub(super) fn pursue_targets_from(&mut self, source: Option<PublicKey>, above: Option<Height>) {
        while let Some(target) = self.targets.front() {
            let (Some(id), Some(block)) = (target.id(), target.proof.block()) else {
                self.targets.pop_front();
                continue;
            };
            if block.epoch() != self.config.epoch() || block.height() <= self.tree.root().height() {
                self.targets.pop_front(); // another epoch's, or committed already
                continue;
            }
            if !self.tree.contains(&id) {
                let hint = source.or_else(|| {
                    let qc = &target.proof.certificate;
                    self.key_of(qc.voters().iter().find(|&v| Some(v) != self.me))
                });
                self.sync_requested.remove(&id);
                let above = above.unwrap_or_default().max(self.tree.root().height());
                return self.request_sync_above(id, hint, above);
            }
            let Some(target) = self.targets.pop_front() else { return };
            // The proven block's own certificate is in its child (the proof's second block).
            if let Some(child) = target.proof.blocks.get(1) {
                self.tree.record_qc(child.justify());
            }
            let committed = self.tree.commit_to(id);
            self.apply_commits(committed);
            match target.next {
                Some(next) => {
                    self.latest_commit = Some(target.proof.clone());
                    self.ending = Some(EpochChange { end: target.proof, next });
                    return; // the switch happens as the step finishes
                }
                None => {
                    // The rest of the proof is a certified chain above it: take it in, so our
                    // lock (PM2) is at least as high as what we committed.
                    for b in target.proof.blocks.iter().skip(1) {
                        let _ = self.tree.insert(b.clone());
                    }
                    let qc = target.proof.certificate.clone();
                    self.latest_commit = Some(target.proof);
                    let _ = self.process_qc(&qc, true, None);
                }
            }
        }
    }

    /// Whether `id` is a block proven committed that we are fetching (Y5 accepts its chain).
    pub(super) fn is_proven_target(&self, id: &BlockId) -> bool {
        self.targets.front().and_then(Proven::id).as_ref() == Some(id)
    }

    /// EV1: proven equivocation removes the signer at the next epoch boundary, without an
    /// operator: the evidence becomes a removal command, ordered like a client's (EP1 checks
    /// it: the signer is still a member, the committee keeps its floor and a public member) and
    /// shared with every member. The same evidence held by several members is one command.
    pub(super) fn remove_equivocator(&mut self, ev: crate::evidence::Equivocation) {
        let Ok(key) = self.config.public_key(ev.signer).copied() else { return };
        let reason = format!("equivocation in epoch {} round {}", ev.epoch, ev.round);
        let change = Change::Remove {
            key,
            reason,
            grounds: warpnet_types::membership::Grounds::Evidence(Box::new(ev)),
        };
        let cmd = change.to_command();
        self.mempool.set_now(self.now_ms);
        if self.check_membership_command(&cmd).is_err() || self.mempool.add(cmd.clone()).is_err() {
            return; // not removable now (e.g. at the floor), or already pending
        }
        let shared =
            warpnet_types::SharedCommands { epoch: self.config.epoch(), commands: vec![cmd] };
        self.broadcast(Message::Commands(shared));
    }

    /// Drops expired rate-limit entries (bounded memory whatever peers do: only
    /// authenticated peers reach the core, and each holds one entry per window).
    pub(super) fn prune_epoch_limits(&mut self) {
        let (now, window) = (self.now_ms, self.params.round_timeout_base_ms);
        let keep =
            |m: &mut HashMap<PublicKey, u64>| m.retain(|_, at| now < at.saturating_add(window));
        keep(&mut self.epoch_served);
        keep(&mut self.epoch_asked);
    }
}
