//! Raft messages on the wire: one `Message::Raft` frame (kind 7) per message, or, for a message
//! over [`RAFT_PIECE_BYTES_MAX`] (a snapshot), consecutive pieces on the peer's one connection,
//! put back together by the receiver before decoding. A piece out of order (a frame dropped
//! from a full queue, a reconnection) abandons the message; raft-rs sends a lost snapshot again.

use std::collections::HashMap;

use warpnet_types::message::{RAFT_PIECES_MAX, RAFT_PIECE_BYTES_MAX};
use warpnet_types::{Epoch, NodeId, RaftFrame};

/// An encoded message cut into frames (at most [`RAFT_PIECES_MAX`]); `None` if it is larger
/// than that allows (the engine never makes one: snapshots are bounded below it).
pub fn split(epoch: Epoch, bytes: &[u8]) -> Option<Vec<RaftFrame>> {
    let pieces = bytes.len().div_ceil(RAFT_PIECE_BYTES_MAX).max(1);
    let pieces = u32::try_from(pieces).ok().filter(|p| *p <= RAFT_PIECES_MAX)?;
    let mut frames = Vec::with_capacity(pieces as usize);
    if bytes.is_empty() {
        frames.push(RaftFrame { epoch, piece: 0, pieces: 1, bytes: Vec::new() });
    }
    for (i, chunk) in bytes.chunks(RAFT_PIECE_BYTES_MAX).enumerate() {
        frames.push(RaftFrame { epoch, piece: i as u32, pieces, bytes: chunk.to_vec() });
    }
    Some(frames)
}

/// What a frame did to its peer's message in progress.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A whole message.
    Whole(Vec<u8>),
    /// A piece taken; more to come.
    Partial,
    /// Out of order: the message in progress (if any) is abandoned.
    Abandoned,
}

/// Messages in progress, one per peer (each peer's frames arrive in order on one connection).
#[derive(Default)]
pub struct Reassembly {
    partial: HashMap<NodeId, (u32, u32, Vec<u8>)>,
}

impl Reassembly {
    pub fn receive(&mut self, from: NodeId, frame: RaftFrame) -> Received {
        let RaftFrame { piece, pieces, bytes, .. } = frame;
        if pieces == 1 {
            self.partial.remove(&from);
            return Received::Whole(bytes);
        }
        if piece == 0 {
            // Grown as pieces arrive: memory follows what the peer actually sent.
            self.partial.insert(from, (1, pieces, bytes));
            return Received::Partial;
        }
        match self.partial.remove(&from) {
            Some((next, total, mut buf)) if next == piece && total == pieces => {
                buf.extend_from_slice(&bytes);
                if piece + 1 == pieces {
                    Received::Whole(buf)
                } else {
                    self.partial.insert(from, (next + 1, total, buf));
                    Received::Partial
                }
            }
            _ => Received::Abandoned,
        }
    }

    /// Forgets `peer`'s message in progress (its connection went away).
    pub fn forget(&mut self, peer: NodeId) {
        self.partial.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message over one piece is cut at the piece size and put back byte for byte; a small
    /// one is a single frame.
    #[test]
    fn large_messages_travel_in_pieces_and_come_back_whole() {
        let big: Vec<u8> = (0..RAFT_PIECE_BYTES_MAX * 2 + 7).map(|i| i as u8).collect();
        let frames = split(Epoch(1), &big).unwrap();
        assert_eq!(frames.len(), 3);
        let mut r = Reassembly::default();
        let p = NodeId(2);
        let mut out = Vec::new();
        for f in frames {
            out.push(r.receive(p, f));
        }
        assert_eq!(out[..2], [Received::Partial, Received::Partial]);
        assert_eq!(out[2], Received::Whole(big));
        let small = split(Epoch(1), b"hi").unwrap();
        assert_eq!(small.len(), 1);
        assert_eq!(r.receive(p, small[0].clone()), Received::Whole(b"hi".to_vec()));
        assert!(split(Epoch(1), &[]).is_some_and(|f| f.len() == 1));
    }

    /// A piece missing (dropped from a full queue) abandons the message; the next message
    /// starts cleanly, and other peers' messages are not mixed in.
    #[test]
    fn a_missing_piece_abandons_the_message_and_peers_do_not_mix() {
        let big = vec![9u8; RAFT_PIECE_BYTES_MAX * 2 + 1];
        let frames = split(Epoch(1), &big).unwrap();
        let mut r = Reassembly::default();
        let (a, b) = (NodeId(1), NodeId(2));
        assert_eq!(r.receive(a, frames[0].clone()), Received::Partial);
        assert_eq!(r.receive(b, frames[0].clone()), Received::Partial);
        assert_eq!(r.receive(a, frames[2].clone()), Received::Abandoned);
        assert_eq!(r.receive(b, frames[1].clone()), Received::Partial);
        assert_eq!(r.receive(b, frames[2].clone()), Received::Whole(big.clone()));
        assert_eq!(r.receive(a, frames[1].clone()), Received::Abandoned);
        for f in &frames[..2] {
            assert_eq!(r.receive(a, f.clone()), Received::Partial);
        }
        r.forget(a);
        assert_eq!(r.receive(a, frames[2].clone()), Received::Abandoned);
    }
}
