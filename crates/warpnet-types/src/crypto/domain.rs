//! Domain-separation tags: one per signed or hashed kind, never reused.
//!
//! A signed message is `u8 len(tag) || tag || network id || fields...` (see
//! [`crate::codec`]), so two kinds can never produce the same signed bytes.

/// Block ids: `SHA-256(len || TAG_BLOCK || canonical block encoding)`.
pub const TAG_BLOCK: &[u8] = b"warpnet/v1/block";
/// A proposer's signature over (network, epoch, round, block id).
pub const TAG_PROPOSAL: &[u8] = b"warpnet/v1/proposal";
/// A vote: (network, epoch, round, block id).
pub const TAG_VOTE: &[u8] = b"warpnet/v1/vote";
/// A timeout: (network, epoch, round, signer's highest QC round).
pub const TAG_TIMEOUT: &[u8] = b"warpnet/v1/timeout";
/// Digest of a committee configuration.
pub const TAG_CONFIG: &[u8] = b"warpnet/v1/config";
/// A member's transport hello: (network, epoch, Noise handshake hash).
pub const TAG_TRANSPORT: &[u8] = b"warpnet/v1/transport";
/// Reserved for user-ID claims (the registry issue): (network, normalized user id).
pub const TAG_CLAIM: &[u8] = b"warpnet/v1/claim";

/// A candidate's proof of possession of its key: (network, candidate, nonce); also the digest
/// of an admission request that members endorse.
pub const TAG_POSSESSION: &[u8] = b"warpnet/v1/possession";
/// A member's endorsement of a committee change: (network, epoch, change).
pub const TAG_ENDORSE: &[u8] = b"warpnet/v1/endorse";
/// A member's own update of its addresses or public flag: (network, epoch, member, nonce).
pub const TAG_UPDATE: &[u8] = b"warpnet/v1/update";
/// An operator's instruction to its own node (endorse a candidate, ask for a removal): (network,
/// the node's key, action, issue time).
pub const TAG_OPERATOR: &[u8] = b"warpnet/v1/operator";

/// A member's reachability attestation (H2): (network, epoch, attester, time, members reached).
pub const TAG_REACH: &[u8] = b"warpnet/v1/reach";

/// All tags, for the test that proves they are distinct.
pub const ALL: &[&[u8]] = &[
    TAG_BLOCK,
    TAG_PROPOSAL,
    TAG_VOTE,
    TAG_TIMEOUT,
    TAG_CONFIG,
    TAG_CLAIM,
    TAG_TRANSPORT,
    TAG_POSSESSION,
    TAG_ENDORSE,
    TAG_UPDATE,
    TAG_OPERATOR,
    TAG_REACH,
];

/// Starts the bytes to be signed for one kind: the length-prefixed tag, then the network.
pub fn signing_writer(tag: &[u8], network: &crate::NetworkId) -> crate::codec::Writer {
    let mut w = crate::codec::Writer::with_capacity(96);
    w.u8(u8::try_from(tag.len()).unwrap_or(u8::MAX)).fixed(tag).put(network);
    w
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_distinct_and_none_prefixes_another() {
        for (i, a) in super::ALL.iter().enumerate() {
            for (j, b) in super::ALL.iter().enumerate() {
                if i != j {
                    assert!(!a.starts_with(b), "{a:?} vs {b:?}");
                }
            }
        }
    }
}
