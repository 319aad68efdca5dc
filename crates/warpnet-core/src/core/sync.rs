//! Fetching missing blocks with their certificates.

use warpnet_types::{BlockId, Height, Message, PublicKey, SyncRequest, SyncResponse};

use super::Core;
use crate::io::Rejection;

impl Core {
    /// Y1: asks a peer for the chain ending at `target`, above our committed height; once per
    /// target per round (the round timer retries with another peer).
    pub(super) fn request_sync(&mut self, target: BlockId, hint: Option<PublicKey>) {
        let above = self.tree.root().height();
        self.request_sync_above(target, hint, above);
    }

    pub(super) fn request_sync_above(
        &mut self,
        target: BlockId,
        hint: Option<PublicKey>,
        above: Height,
    ) {
        if self.sync_requested.contains_key(&target) {
            return;
        }
        let Some(to) = hint.filter(|&p| p != self.signer.public_key()) else {
            return;
        };
        self.sync_requested.insert(target, self.round);
        let request = SyncRequest {
            epoch: self.config.epoch(),
            target,
            above,
            max_blocks: self.params.sync_blocks_max,
        };
        self.send_to(to, Message::SyncRequest(request));
    }

    /// Y2: the runtime serves requests from its block store (the core holds only the tree),
    /// whoever asks and whatever their epoch (committed blocks are no secret).
    pub(super) fn on_sync_request(&mut self, from: PublicKey, mut request: SyncRequest) {
        request.max_blocks = request.max_blocks.min(self.params.sync_blocks_max);
        self.step.serve_sync.push((from, request));
    }

    /// Whether we hold a verified QC for `id` (our highest QC, or the QC of a proposal waiting
    /// for its parent), or a proof that it committed (Y5). Sync targets are always such blocks.
    fn certified_target(&self, id: &BlockId) -> bool {
        self.safety.data().high_qc.block_id() == *id
            || self.pending.values().any(|(_, p)| p.block.parent() == *id)
            || self.is_proven_target(id)
    }

    /// Y3: attaches blocks only as a certified chain: each block hash-linked to the one before
    /// (the first to our tree) and certified by the QC inside the next one, the last by a QC we
    /// hold. Synced blocks carry no proposer signature, so an uncertified block from a peer
    /// could be anything: it is never stored. A truncated response is continued from the last
    /// block attached.
    pub(super) fn on_sync_response(&mut self, key: PublicKey, response: SyncResponse) {
        let from = self.config.node_id_of(&key);
        let blocks = response.blocks;
        let mut last_added: Option<Height> = None;
        for (i, block) in blocks.iter().enumerate() {
            if self.tree.contains(&block.id()) || block.height() <= self.tree.root().height() {
                continue;
            }
            if let Err(e) = block.validate_shape(&self.config) {
                return self.reject(from, e.into());
            }
            if !self.tree.contains(&block.parent()) {
                break;
            }
            let certificate = match blocks.get(i + 1) {
                Some(next) if next.parent() == block.id() => Some(next.justify()),
                Some(_) => {
                    return self.reject(
                        from,
                        Rejection::Tree(crate::tree::TreeError::UnknownParent {
                            parent: block.id(),
                        }),
                    )
                }
                None if self.certified_target(&block.id()) => None,
                None => break, // the rest of a truncated response: asked for again below
            };
            if let Some(qc) = certificate {
                if qc.block_id() != block.id() {
                    break;
                }
                if let Err(e) = qc.validate(&self.config) {
                    return self.reject(from, e.into());
                }
            }
            if let Err(e) = self.process_qc(block.justify(), false, Some(key)) {
                return self.reject(from, e);
            }
            match self.tree.insert(block.clone()) {
                Ok(true) => {
                    last_added = Some(block.height());
                    self.persist_block(block.clone());
                }
                Ok(false) => {}
                Err(e) => return self.reject(from, Rejection::Tree(e)),
            }
            if let Some(qc) = certificate {
                let qc = qc.clone();
                if let Err(e) = self.process_qc(&qc, true, Some(key)) {
                    return self.reject(from, e);
                }
            }
            self.on_block_inserted(&block.id());
        }
        let Some(above) = last_added else { return };
        let high_qc = self.safety.data().high_qc.clone();
        self.sync_requested.remove(&high_qc.block_id());
        if !self.tree.contains(&high_qc.block_id()) {
            // More to fetch: continue from where this response stopped.
            self.request_sync_above(high_qc.block_id(), Some(key), above);
        }
        // Proposals that waited for these ancestors.
        let ready: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, (_, p))| self.tree.contains(&p.block.parent()))
            .map(|(r, _)| *r)
            .collect();
        for r in ready {
            if let Some((from, p)) = self.pending.remove(&r) {
                self.sync_requested.remove(&p.block.parent());
                self.accept_proposal(from, p);
            }
        }
        // Y5: on towards a block proven committed, from where this response stopped.
        self.pursue_targets_from(Some(key), Some(above));
        self.propose(false);
    }
}
