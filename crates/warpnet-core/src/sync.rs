//! Serving block sync from a block store. Pure: the runtime supplies the lookup.

use warpnet_types::{Block, BlockId, SyncRequest, SyncResponse};

/// The blocks on the chain ending at `request.target` with heights above `request.above`,
/// lowest first, at most `min(request.max_blocks, max_blocks)` of them: the lowest ones, so the
/// requester can attach them to what it has and ask again for the rest.
pub fn respond(
    request: &SyncRequest,
    max_blocks: usize,
    lookup: impl Fn(&BlockId) -> Option<Block>,
) -> SyncResponse {
    let mut chain = Vec::new();
    let mut cursor = request.target;
    while let Some(b) = lookup(&cursor) {
        if b.height() <= request.above {
            break;
        }
        cursor = b.parent();
        chain.push(b);
    }
    chain.reverse();
    chain.truncate(max_blocks.min(usize::from(request.max_blocks)));
    SyncResponse {
        epoch: request.epoch,
        blocks: chain,
    }
}
