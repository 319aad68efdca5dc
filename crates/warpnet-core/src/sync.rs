//! Serving block sync from a block store. Pure: the runtime supplies the lookup.

use warpnet_types::message::{FRAME_OVERHEAD_BYTES, MESSAGE_BYTES_MAX};
use warpnet_types::{Block, BlockId, SyncRequest, SyncResponse};

/// The blocks on the chain ending at `request.target` with heights above `request.above`,
/// lowest first, at most `min(request.max_blocks, max_blocks)` of them: the lowest ones, so the
/// requester can attach them to what it has and ask again for the rest. Y4: the response also
/// stays within one frame (`MESSAGE_BYTES_MAX`), whatever the blocks weigh.
pub fn respond(
    request: &SyncRequest,
    max_blocks: usize,
    mut lookup: impl FnMut(&BlockId) -> Option<Block>,
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
    let mut bytes = FRAME_OVERHEAD_BYTES;
    let fits = chain
        .iter()
        .take_while(|b| {
            bytes += b.encoded_len();
            bytes <= MESSAGE_BYTES_MAX
        })
        .count();
    chain.truncate(fits);
    SyncResponse { epoch: request.epoch, blocks: chain }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use warpnet_types::{
        ConsensusConfig, Encode, Height, Message, NodeId, QuorumCertificate, Round, SchemeId,
    };

    /// Y1/Y4: the lowest blocks above `above`, within the count and within one frame.
    #[test]
    fn responses_are_lowest_first_and_fit_in_a_frame() {
        let (c, _) = ConsensusConfig::for_testing(4, SchemeId::InsecureSimulation, 0).unwrap();
        let mut store = HashMap::new();
        let g = Block::genesis(&c);
        store.insert(g.id(), g.clone());
        let mut parent = QuorumCertificate::genesis(&c);
        let mut last = g.id();
        for h in 1..=20u64 {
            // 1 MiB per block: 8 of them would exceed the frame limit.
            let b = Block::new(
                c.epoch(),
                Round(h),
                Height(h),
                NodeId(0),
                parent.clone(),
                0,
                vec![vec![7u8; 1 << 20]],
            );
            parent = QuorumCertificate::from_parts(
                c.epoch(),
                Round(h),
                b.id(),
                warpnet_types::VoterBitmap::empty(4),
                vec![],
            );
            last = b.id();
            store.insert(b.id(), b);
        }
        let req = SyncRequest { epoch: c.epoch(), target: last, above: Height(3), max_blocks: 100 };
        let r = respond(&req, 100, |id| store.get(id).cloned());
        assert!(!r.blocks.is_empty() && r.blocks.len() < 8, "{} blocks", r.blocks.len());
        assert_eq!(r.blocks[0].height(), Height(4));
        assert!(r.blocks.windows(2).all(|w| w[1].parent() == w[0].id()));
        assert!(Message::SyncResponse(r).to_frame().len() <= MESSAGE_BYTES_MAX);
        let small = SyncRequest { max_blocks: 2, ..req };
        assert_eq!(respond(&small, 100, |id| store.get(id).cloned()).blocks.len(), 2);
        let _ = g.to_bytes();
    }
}
