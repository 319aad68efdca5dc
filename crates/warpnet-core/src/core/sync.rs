//! Fetching missing blocks with their certificates.

use warpnet_types::{BlockId, Message, NodeId, SyncRequest, SyncResponse};

use super::Core;
use crate::io::{Action, Rejection};

impl Core {
    /// Y1: asks a peer for the chain ending at `target`, above our committed height; once per
    /// target per round (the round timer retries with another peer).
    pub(super) fn request_sync(&mut self, target: BlockId, hint: Option<NodeId>) {
        if self.sync_requested.contains_key(&target) {
            return;
        }
        let Some(to) = hint.filter(|&p| p != self.me && self.config.contains(p)) else {
            return;
        };
        self.sync_requested.insert(target, self.round);
        let request = SyncRequest {
            epoch: self.config.epoch(),
            target,
            above: self.tree.root().height(),
            max_blocks: self.params.sync_blocks_max,
        };
        self.out.push(Action::Send { to, message: Message::SyncRequest(request) });
    }

    /// Y2: the runtime serves requests from its block store (the core holds only the tree).
    pub(super) fn on_sync_request(&mut self, from: NodeId, mut request: SyncRequest) {
        request.max_blocks = request.max_blocks.min(self.params.sync_blocks_max);
        self.out.push(Action::ServeSync { to: from, request });
    }

    /// Y3: attaches the blocks that extend our tree. Each block's QC is verified (it certifies
    /// the block before it); the last is certified by a QC we already hold.
    pub(super) fn on_sync_response(&mut self, from: NodeId, response: SyncResponse) {
        let mut added = 0usize;
        for block in response.blocks {
            if self.tree.contains(&block.id()) {
                continue;
            }
            if block.height() <= self.tree.root().height() {
                continue;
            }
            if let Err(e) = block.validate_shape(&self.config) {
                return self.reject(Some(from), e.into());
            }
            if !self.tree.contains(&block.parent()) {
                break;
            }
            if let Err(e) = self.process_qc(block.justify(), false) {
                return self.reject(Some(from), e);
            }
            match self.tree.insert(block.clone()) {
                Ok(true) => {
                    added += 1;
                    self.out.push(Action::PersistBlock(block.clone()));
                }
                Ok(false) => {}
                Err(e) => return self.reject(Some(from), Rejection::Tree(e)),
            }
            self.on_block_inserted(&block.id());
        }
        if added == 0 {
            return;
        }
        // The QC we hold for the target may now commit something.
        let high_qc = self.safety.data().high_qc.clone();
        self.tree.record_qc(&high_qc);
        self.commit_with(&high_qc);
        if self.tree.contains(&high_qc.block_id()) {
            self.sync_requested.remove(&high_qc.block_id());
        } else {
            // More to fetch: ask the same peer again for the rest.
            self.sync_requested.remove(&high_qc.block_id());
            self.request_sync(high_qc.block_id(), Some(from));
        }
        // Proposals that waited for these ancestors.
        if let Some((from, p)) = self.pending.remove(&self.round) {
            if self.tree.contains(&p.block.parent()) {
                self.accept_proposal(from, p);
            } else {
                self.pending.insert(self.round, (from, p));
            }
        }
        self.propose(false);
    }
}
