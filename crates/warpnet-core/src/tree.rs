//! The tree of blocks above the last committed block, and the 2-chain commit rule.

use std::collections::HashMap;

use warpnet_types::{Block, BlockId, Height, QuorumCertificate, Round};

/// Why a block could not join the tree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("parent {parent} is unknown")]
    UnknownParent { parent: BlockId },
    #[error("height {height} does not follow parent height {parent_height}")]
    Height { height: Height, parent_height: Height },
    #[error("round {round} is not above parent round {parent_round}")]
    Round { round: Round, parent_round: Round },
    #[error("timestamp {timestamp_ms} is before parent timestamp {parent_ms}")]
    Timestamp { timestamp_ms: u64, parent_ms: u64 },
    #[error(
        "block at height {height} does not extend the committed block at height {root_height}"
    )]
    BelowRoot { height: Height, root_height: Height },
}

/// A block that commits, with the QC certifying it (carried by its child).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub block: Block,
    pub certificate: QuorumCertificate,
}

/// Blocks from the last committed block (the root) upwards; forks allowed until one commits.
pub struct BlockTree {
    blocks: HashMap<BlockId, Block>,
    /// For each block, a verified QC certifying it (so a repeated QC need not be re-verified).
    certified: HashMap<BlockId, QuorumCertificate>,
    root: BlockId,
}

impl BlockTree {
    /// A tree whose root is the last committed block.
    pub fn new(root: Block, root_certificate: QuorumCertificate) -> Self {
        let id = root.id();
        let mut t = Self { blocks: HashMap::new(), certified: HashMap::new(), root: id };
        t.blocks.insert(id, root);
        t.certified.insert(id, root_certificate);
        t
    }

    pub fn root(&self) -> &Block {
        &self.blocks[&self.root]
    }

    pub fn get(&self, id: &BlockId) -> Option<&Block> {
        self.blocks.get(id)
    }

    pub fn contains(&self, id: &BlockId) -> bool {
        self.blocks.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// A verified QC for `id` with the given round, if we hold one.
    pub fn certificate(&self, id: &BlockId) -> Option<&QuorumCertificate> {
        self.certified.get(id)
    }

    /// Whether this exact QC (bitmap and signatures included) was already verified. A QC that
    /// only names the same block and round may carry anything, so it is verified again.
    pub fn knows_qc(&self, qc: &QuorumCertificate) -> bool {
        self.certified.get(&qc.block_id()).is_some_and(|c| c == qc)
    }

    /// Adds a block whose justifying QC has been verified. Checks it extends its parent:
    /// height + 1, higher round, timestamp not earlier. Returns false if already present.
    pub fn insert(&mut self, block: Block) -> Result<bool, TreeError> {
        if self.blocks.contains_key(&block.id()) {
            return Ok(false);
        }
        let root_height = self.root().height();
        if block.height() <= root_height {
            return Err(TreeError::BelowRoot { height: block.height(), root_height });
        }
        let parent = self
            .blocks
            .get(&block.parent())
            .ok_or(TreeError::UnknownParent { parent: block.parent() })?;
        if block.height() != parent.height().next() {
            return Err(TreeError::Height {
                height: block.height(),
                parent_height: parent.height(),
            });
        }
        if block.round() <= parent.round() {
            return Err(TreeError::Round { round: block.round(), parent_round: parent.round() });
        }
        if block.timestamp_ms() < parent.timestamp_ms() {
            return Err(TreeError::Timestamp {
                timestamp_ms: block.timestamp_ms(),
                parent_ms: parent.timestamp_ms(),
            });
        }
        self.certified.entry(block.parent()).or_insert_with(|| block.justify().clone());
        self.blocks.insert(block.id(), block);
        Ok(true)
    }

    /// Records a verified QC.
    pub fn record_qc(&mut self, qc: &QuorumCertificate) {
        if self.blocks.contains_key(&qc.block_id()) {
            self.certified.entry(qc.block_id()).or_insert_with(|| qc.clone());
        }
    }

    /// C1, the 2-chain commit rule: a QC certifying B1 commits B1's parent B0 when
    /// `round(B1) == round(B0) + 1`; every uncommitted ancestor of B0 commits with it. Returns
    /// B0 when the rule applies and B0 is not committed yet.
    pub fn committable(&self, qc: &QuorumCertificate) -> Option<BlockId> {
        let b1 = self.blocks.get(&qc.block_id())?;
        let b0 = self.blocks.get(&b1.parent())?;
        (b0.round().next() == b1.round() && b0.height() > self.root().height()).then(|| b0.id())
    }

    /// C1 in one call: commits what the QC completes (see [`BlockTree::committable`]).
    pub fn commit_for(&mut self, qc: &QuorumCertificate) -> Vec<Committed> {
        match self.committable(qc) {
            Some(b0) => self.commit_to(b0),
            None => Vec::new(),
        }
    }

    /// Commits `id` (proven committed: by C1, or by a proof, Y5) and its uncommitted ancestors.
    /// Returns them in height order (each exactly once) and prunes the tree to `id`. Nothing
    /// if `id` is not in the tree above the root, or a block on the way lacks a certificate.
    pub fn commit_to(&mut self, id: BlockId) -> Vec<Committed> {
        let mut chain = Vec::new();
        let mut cursor = id;
        while cursor != self.root {
            let (Some(block), Some(certificate)) =
                (self.blocks.get(&cursor), self.certified.get(&cursor))
            else {
                return Vec::new();
            };
            cursor = block.parent();
            chain.push(Committed { block: block.clone(), certificate: certificate.clone() });
        }
        chain.reverse();
        if let Some(last) = chain.last() {
            let new_root = last.block.id();
            self.prune(new_root);
        }
        chain
    }

    /// Keeps only `new_root` and its descendants.
    fn prune(&mut self, new_root: BlockId) {
        self.root = new_root;
        let root_height = self.root().height();
        let mut keep: HashMap<BlockId, bool> = HashMap::new();
        keep.insert(new_root, true);
        let ids: Vec<BlockId> = self.blocks.keys().copied().collect();
        for id in ids {
            self.descends_from_root(id, root_height, &mut keep);
        }
        self.blocks.retain(|id, _| keep.get(id).copied().unwrap_or(false));
        self.certified.retain(|id, _| keep.get(id).copied().unwrap_or(false));
    }

    fn descends_from_root(
        &self,
        id: BlockId,
        root_height: Height,
        memo: &mut HashMap<BlockId, bool>,
    ) -> bool {
        let mut path = Vec::new();
        let mut cursor = id;
        let verdict = loop {
            if let Some(&v) = memo.get(&cursor) {
                break v;
            }
            match self.blocks.get(&cursor) {
                Some(b) if b.height() > root_height => {
                    path.push(cursor);
                    cursor = b.parent();
                }
                _ => break false,
            }
        };
        for p in path {
            memo.insert(p, verdict);
        }
        verdict
    }

    /// The chain from `id` down to (excluding) the root, highest first.
    pub fn path_to_root(&self, id: BlockId) -> impl Iterator<Item = &Block> {
        let mut cursor = Some(id);
        std::iter::from_fn(move || {
            let id = cursor?;
            if id == self.root {
                return None;
            }
            let b = self.blocks.get(&id)?;
            cursor = Some(b.parent());
            Some(b)
        })
    }

    /// All blocks (root included), for tests and status.
    pub fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks.values()
    }
}
