//! The wire format of `Message` frames: round trips for every variant, canonical re-encoding,
//! and a typed error (never a panic) for truncated, padded, mis-versioned, mis-tagged, oversized
//! and over-long input.

use proptest::prelude::*;
use proptest::sample::Index;
use warpnet_types::bitmap::{VoterBitmap, BITMAP_BYTES_MAX};
use warpnet_types::block::{PAYLOAD_ITEMS_MAX, PAYLOAD_ITEM_BYTES_MAX};
use warpnet_types::codec::Writer;
use warpnet_types::config::COMMITTEE_SIZE_MAX;
use warpnet_types::message::{MESSAGE_BYTES_MAX, SYNC_BLOCKS_MAX, WIRE_VERSION};
use warpnet_types::{
    Block, CodecError, ConsensusConfig, Digest, Encode, Epoch, Height, Message, NodeId, Proposal,
    QuorumCertificate, Round, SchemeId, Signature, SyncRequest, SyncResponse, Timeout,
    TimeoutCertificate, TimeoutMsg, Vote,
};

const KIND_PROPOSAL: u8 = 1;
const KIND_VOTE: u8 = 2;
const KIND_TIMEOUT: u8 = 3;
const KIND_SYNC_REQUEST: u8 = 4;
const KIND_SYNC_RESPONSE: u8 = 5;
const KIND_COMMANDS: u8 = 6;
const KIND_RAFT: u8 = 7;
const KIND_EPOCH_REQUEST: u8 = 8;
const KIND_EPOCH_PROOF: u8 = 9;
const KIND_MEMBERSHIP: u8 = 10;
const KIND_ATTESTATION: u8 = 11;

fn kind_tag(m: &Message) -> u8 {
    match m {
        Message::Proposal(_) => KIND_PROPOSAL,
        Message::Vote(_) => KIND_VOTE,
        Message::Timeout(_) => KIND_TIMEOUT,
        Message::SyncRequest(_) => KIND_SYNC_REQUEST,
        Message::SyncResponse(_) => KIND_SYNC_RESPONSE,
        Message::Commands(_) => KIND_COMMANDS,
        Message::EpochRequest(_) => KIND_EPOCH_REQUEST,
        Message::EpochProof(_) => KIND_EPOCH_PROOF,
        Message::Raft(_) => KIND_RAFT,
        Message::Membership(_) => KIND_MEMBERSHIP,
        Message::Attestation(_) => KIND_ATTESTATION,
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies: decoding does not validate, so any field values must round-trip.
// ---------------------------------------------------------------------------------------------

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn signature() -> impl Strategy<Value = Signature> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        Signature(s)
    })
}

fn epoch() -> impl Strategy<Value = Epoch> {
    any::<u64>().prop_map(Epoch)
}

fn round() -> impl Strategy<Value = Round> {
    any::<u64>().prop_map(Round)
}

fn bitmap() -> impl Strategy<Value = VoterBitmap> {
    prop::collection::vec(any::<u8>(), 0..5).prop_map(|bytes| {
        VoterBitmap::from_bytes(bytes.len() * 8, &bytes).expect("every bit is below len * 8")
    })
}

fn qc() -> impl Strategy<Value = QuorumCertificate> {
    (epoch(), round(), digest(), bitmap(), prop::collection::vec(signature(), 0..4))
        .prop_map(|(e, r, b, v, s)| QuorumCertificate::from_parts(e, r, b, v, s))
}

fn tc() -> impl Strategy<Value = TimeoutCertificate> {
    (
        epoch(),
        round(),
        bitmap(),
        prop::collection::vec(round(), 0..4),
        prop::collection::vec(signature(), 0..4),
        qc(),
    )
        .prop_map(|(e, r, v, h, s, q)| TimeoutCertificate::from_parts(e, r, v, h, s, q))
}

fn block() -> impl Strategy<Value = Block> {
    (
        epoch(),
        round(),
        any::<u64>().prop_map(Height),
        digest(),
        any::<u16>().prop_map(NodeId),
        qc(),
        any::<u64>(),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 0..4),
    )
        .prop_map(|(e, r, h, parent, proposer, justify, ts, payload)| {
            Block::with_parent(e, r, h, parent, proposer, justify, ts, payload)
        })
}

fn timeout() -> impl Strategy<Value = Timeout> {
    (epoch(), round(), qc(), any::<u16>(), signature()).prop_map(
        |(epoch, round, high_qc, signer, signature)| Timeout {
            epoch,
            round,
            high_qc,
            signer: NodeId(signer),
            signature,
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (block(), prop::option::of(tc()), signature()).prop_map(|(block, tc, signature)| {
            Message::Proposal(Proposal { block, tc, signature })
        }),
        (epoch(), round(), digest(), any::<u16>(), signature()).prop_map(
            |(epoch, round, block_id, voter, signature)| Message::Vote(Vote {
                epoch,
                round,
                block_id,
                voter: NodeId(voter),
                signature,
            })
        ),
        (timeout(), prop::option::of(tc())).prop_map(|(timeout, last_round_tc)| {
            Message::Timeout(TimeoutMsg { timeout, last_round_tc })
        }),
        (epoch(), digest(), any::<u64>(), any::<u16>()).prop_map(
            |(epoch, target, above, max_blocks)| Message::SyncRequest(SyncRequest {
                epoch,
                target,
                above: Height(above),
                max_blocks,
            })
        ),
        (epoch(), prop::collection::vec(block(), 0..3))
            .prop_map(|(epoch, blocks)| Message::SyncResponse(SyncResponse { epoch, blocks })),
        (epoch(), prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..5))
            .prop_map(|(epoch, commands)| Message::Commands(warpnet_types::SharedCommands {
                epoch,
                commands
            })),
        (epoch(), epoch()).prop_map(|(epoch, from)| Message::EpochRequest(
            warpnet_types::EpochRequest { epoch, from }
        )),
        (epoch(), prop::collection::vec(commit_proof(), 0..2), prop::option::of(commit_proof()))
            .prop_map(|(epoch, ends, latest)| Message::EpochProof(warpnet_types::EpochProofMsg {
                epoch,
                ends,
                latest
            })),
        (epoch(), (1u32..=4), any::<u32>(), prop::collection::vec(any::<u8>(), 0..200)).prop_map(
            |(epoch, pieces, piece, bytes)| Message::Raft(warpnet_types::RaftFrame {
                epoch,
                piece: piece % pieces,
                pieces,
                bytes
            })
        ),
        (epoch(), membership_gossip()).prop_map(|(epoch, gossip)| Message::Membership(
            warpnet_types::MembershipMsg { epoch, gossip }
        )),
        (
            epoch(),
            any::<u16>(),
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..4),
            signature()
        )
            .prop_map(|(epoch, attester, at_ms, bytes, signature)| {
                Message::Attestation(warpnet_types::Attestation {
                    epoch,
                    attester: NodeId(attester),
                    at_ms,
                    reached: warpnet_types::VoterBitmap::from_bytes(bytes.len() * 8, &bytes)
                        .expect("a full-width bitmap"),
                    signature,
                })
            }),
    ]
}

fn membership_gossip() -> impl Strategy<Value = warpnet_types::MembershipGossip> {
    use warpnet_types::membership::{Admission, Endorsed, Endorsement};
    use warpnet_types::{MembershipGossip, Participant};
    let key = any::<[u8; 32]>().prop_map(warpnet_types::PublicKey);
    let participant = (key.clone(), "[a-z0-9.:]{1,20}", "[a-z0-9.:]{0,20}", any::<bool>())
        .prop_map(|(public_key, address, api_address, public)| Participant {
            public_key,
            address,
            api_address,
            public,
        });
    prop_oneof![
        (participant, any::<[u8; 16]>(), signature()).prop_map(|(candidate, nonce, proof)| {
            MembershipGossip::Admission(Admission { candidate, nonce, proof })
        }),
        (digest(), any::<u16>(), signature()).prop_map(|(d, member, signature)| {
            MembershipGossip::Endorsement {
                what: Endorsed::Add(d),
                endorsement: Endorsement { member: NodeId(member), signature },
            }
        }),
        (key, "[a-z ]{0,30}", any::<u16>(), signature()).prop_map(
            |(key, reason, member, signature)| {
                MembershipGossip::Endorsement {
                    what: Endorsed::Remove { key, reason },
                    endorsement: Endorsement { member: NodeId(member), signature },
                }
            }
        ),
    ]
}

fn commit_proof() -> impl Strategy<Value = warpnet_types::epoch::CommitProof> {
    (prop::collection::vec(block(), 0..3), qc())
        .prop_map(|(blocks, certificate)| warpnet_types::epoch::CommitProof { blocks, certificate })
}

/// Decodes, and if the bytes are accepted checks they are the value's one encoding.
fn decode_canonically(bytes: &[u8]) -> Result<Message, CodecError> {
    let m = Message::from_frame(bytes)?;
    assert_eq!(m.to_frame(), bytes, "an accepted frame re-encodes to itself");
    Ok(m)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_message_round_trips_byte_for_byte(m in message()) {
        let frame = m.to_frame();
        prop_assert_eq!(frame[0], WIRE_VERSION);
        prop_assert_eq!(frame[1], kind_tag(&m));
        prop_assert!(frame.len() <= MESSAGE_BYTES_MAX);
        let decoded = Message::from_frame(&frame);
        prop_assert_eq!(decoded.as_ref(), Ok(&m));
        let decoded = decoded.expect("checked above");
        prop_assert_eq!(decoded.to_frame(), frame);
        prop_assert_eq!(decoded.kind(), m.kind());
        prop_assert_eq!(decoded.epoch(), m.epoch());
        if let (Message::Proposal(a), Message::Proposal(b)) = (&decoded, &m) {
            prop_assert_eq!(a.block.id(), b.block.id(), "the block id is recomputed identically");
        }
    }

    #[test]
    fn every_truncation_is_an_unexpected_end(m in message(), cut in any::<Index>()) {
        let frame = m.to_frame();
        let cut = cut.index(frame.len()); // 0..len: always strictly shorter
        match Message::from_frame(&frame[..cut]) {
            Err(CodecError::UnexpectedEnd { needed, remaining, .. }) => {
                prop_assert!(remaining < needed, "needed {needed}, remaining {remaining}");
            }
            other => prop_assert!(false, "cut at {cut} of {}: {other:?}", frame.len()),
        }
    }

    #[test]
    fn trailing_bytes_are_counted(m in message(), extra in prop::collection::vec(any::<u8>(), 1..32)) {
        let mut frame = m.to_frame();
        frame.extend_from_slice(&extra);
        prop_assert_eq!(
            Message::from_frame(&frame),
            Err(CodecError::TrailingBytes { count: extra.len() })
        );
    }

    #[test]
    fn other_wire_versions_are_refused(m in message(), version in any::<u8>()) {
        prop_assume!(version != WIRE_VERSION);
        let mut frame = m.to_frame();
        frame[0] = version;
        prop_assert_eq!(
            Message::from_frame(&frame),
            Err(CodecError::UnsupportedVersion { got: version, supported: WIRE_VERSION })
        );
    }

    #[test]
    fn unknown_kind_tags_are_refused(
        m in message(),
        tag in prop_oneof![Just(0u8), 12u8..=255]
    ) {
        let mut frame = m.to_frame();
        frame[1] = tag;
        prop_assert_eq!(
            Message::from_frame(&frame),
            Err(CodecError::InvalidTag { what: "message kind", tag })
        );
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode_canonically(&bytes);
    }

    /// Random bodies behind a valid header reach every decoder, not just the version check.
    #[test]
    fn random_bodies_never_panic(
        kind in 0u8..=6,
        body in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut frame = vec![WIRE_VERSION, kind];
        frame.extend_from_slice(&body);
        let _ = decode_canonically(&frame);
    }

    /// Valid frames with a few bytes changed: decoded canonically or refused, never a panic.
    #[test]
    fn mutated_frames_never_panic(
        m in message(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
    ) {
        let mut frame = m.to_frame();
        for (at, byte) in edits {
            let at = at.index(frame.len());
            frame[at] = byte;
        }
        let _ = decode_canonically(&frame);
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built frames
// ---------------------------------------------------------------------------------------------

fn header(kind: u8) -> Writer {
    let mut w = Writer::new();
    w.u8(WIRE_VERSION).u8(kind);
    w
}

/// A QC's encoding up to (not including) its signature count.
fn qc_prefix(w: &mut Writer) {
    w.put(&Epoch(1)).put(&Round(1)).put(&Digest([3; 32])).bytes(&[0b0111]);
}

/// A proposal frame up to (not including) its payload count.
fn proposal_prefix() -> Writer {
    let mut w = header(KIND_PROPOSAL);
    w.put(&Epoch(1)).put(&Round(2)).put(&Height(2)).put(&Digest([3; 32])).put(&NodeId(2));
    qc_prefix(&mut w);
    w.u32(0); // no signatures
    w.u64(1_000); // timestamp
    w
}

/// A timeout-message frame up to (not including) its TC's high-QC round count.
fn timeout_msg_tc_prefix() -> Writer {
    let mut w = header(KIND_TIMEOUT);
    w.put(&Epoch(1)).put(&Round(2));
    qc_prefix(&mut w);
    w.u32(0);
    w.put(&NodeId(1)).put(&Signature([5; 64]));
    w.u8(1); // Some(tc)
    w.put(&Epoch(1)).put(&Round(1)).bytes(&[0b0111]);
    w
}

#[track_caller]
fn assert_too_long(frame: &[u8], what: &'static str, len: usize, max: usize) {
    assert_eq!(Message::from_frame(frame), Err(CodecError::TooLong { what, len, max }), "{what}");
}

#[test]
fn hand_built_prefixes_are_valid_when_completed() {
    // The helpers above really produce the layouts the over-long tests edit.
    let mut w = proposal_prefix();
    w.u32(0).u8(0).put(&Signature([1; 64]));
    assert!(matches!(decode_canonically(w.as_slice()), Ok(Message::Proposal(_))));
    let mut w = timeout_msg_tc_prefix();
    w.u32(0).u32(0); // no high-QC rounds, no signatures
    qc_prefix(&mut w); // the TC's carried QC
    w.u32(0);
    assert!(matches!(decode_canonically(w.as_slice()), Ok(Message::Timeout(_))));
}

#[test]
fn over_long_length_prefixes_are_refused_with_their_field() {
    let over = |max: usize| u32::try_from(max + 1).expect("limits fit u32");
    for prefix in [None, Some(u32::MAX)] {
        // Each length field: just over its limit, and the largest u32 (which must be refused
        // before anything is allocated or read).
        let len = |max: usize| prefix.unwrap_or(over(max));

        let mut w = header(KIND_SYNC_RESPONSE);
        w.put(&Epoch(1)).u32(len(SYNC_BLOCKS_MAX));
        assert_too_long(
            w.as_slice(),
            "sync blocks",
            len(SYNC_BLOCKS_MAX) as usize,
            SYNC_BLOCKS_MAX,
        );

        let mut w = proposal_prefix();
        w.u32(len(PAYLOAD_ITEMS_MAX));
        assert_too_long(
            w.as_slice(),
            "payload",
            len(PAYLOAD_ITEMS_MAX) as usize,
            PAYLOAD_ITEMS_MAX,
        );

        let mut w = proposal_prefix();
        w.u32(1).u32(len(PAYLOAD_ITEM_BYTES_MAX));
        assert_too_long(
            w.as_slice(),
            "command",
            len(PAYLOAD_ITEM_BYTES_MAX) as usize,
            PAYLOAD_ITEM_BYTES_MAX,
        );

        let mut w = header(KIND_TIMEOUT);
        w.put(&Epoch(1)).put(&Round(2));
        qc_prefix(&mut w);
        w.u32(len(COMMITTEE_SIZE_MAX));
        assert_too_long(
            w.as_slice(),
            "qc signatures",
            len(COMMITTEE_SIZE_MAX) as usize,
            COMMITTEE_SIZE_MAX,
        );

        let mut w = header(KIND_TIMEOUT);
        w.put(&Epoch(1))
            .put(&Round(2))
            .put(&Epoch(1))
            .put(&Round(1))
            .put(&Digest([3; 32]))
            .u32(len(BITMAP_BYTES_MAX));
        assert_too_long(
            w.as_slice(),
            "voter bitmap",
            len(BITMAP_BYTES_MAX) as usize,
            BITMAP_BYTES_MAX,
        );

        let mut w = timeout_msg_tc_prefix();
        w.u32(len(COMMITTEE_SIZE_MAX));
        assert_too_long(
            w.as_slice(),
            "tc high qc rounds",
            len(COMMITTEE_SIZE_MAX) as usize,
            COMMITTEE_SIZE_MAX,
        );

        let mut w = timeout_msg_tc_prefix();
        w.u32(0).u32(len(COMMITTEE_SIZE_MAX));
        assert_too_long(
            w.as_slice(),
            "tc signatures",
            len(COMMITTEE_SIZE_MAX) as usize,
            COMMITTEE_SIZE_MAX,
        );
    }
}

#[test]
fn lengths_within_limits_but_beyond_the_input_are_an_unexpected_end() {
    let mut w = header(KIND_SYNC_RESPONSE);
    w.put(&Epoch(1)).u32(u32::try_from(SYNC_BLOCKS_MAX).expect("small"));
    assert_eq!(
        Message::from_frame(w.as_slice()),
        Err(CodecError::UnexpectedEnd { what: "epoch", needed: 8, remaining: 0 })
    );

    let mut w = proposal_prefix();
    w.u32(1).u32(u32::try_from(PAYLOAD_ITEM_BYTES_MAX).expect("small"));
    w.fixed(&[0; 10]);
    assert_eq!(
        Message::from_frame(w.as_slice()),
        Err(CodecError::UnexpectedEnd {
            what: "command",
            needed: PAYLOAD_ITEM_BYTES_MAX,
            remaining: 10
        })
    );

    let mut w = header(KIND_TIMEOUT);
    w.put(&Epoch(1)).put(&Round(2));
    qc_prefix(&mut w);
    w.u32(3).put(&Signature([0; 64]));
    assert_eq!(
        Message::from_frame(w.as_slice()),
        Err(CodecError::UnexpectedEnd { what: "signature", needed: 64, remaining: 0 })
    );
}

#[test]
fn short_frames_say_what_was_missing() {
    assert_eq!(
        Message::from_frame(&[]),
        Err(CodecError::UnexpectedEnd { what: "wire version", needed: 1, remaining: 0 })
    );
    assert_eq!(
        Message::from_frame(&[WIRE_VERSION]),
        Err(CodecError::UnexpectedEnd { what: "message kind", needed: 1, remaining: 0 })
    );
    assert_eq!(
        Message::from_frame(&[WIRE_VERSION, KIND_VOTE, 1, 0, 0]),
        Err(CodecError::UnexpectedEnd { what: "epoch", needed: 8, remaining: 3 })
    );
    // The version is checked before anything else, even on a one-byte frame.
    assert_eq!(
        Message::from_frame(&[WIRE_VERSION + 1]),
        Err(CodecError::UnsupportedVersion { got: WIRE_VERSION + 1, supported: WIRE_VERSION })
    );
}

#[test]
fn option_and_tags_are_strict() {
    for tag in [2u8, 0xFF] {
        let mut w = proposal_prefix();
        w.u32(0).u8(tag);
        assert_eq!(
            Message::from_frame(w.as_slice()),
            Err(CodecError::InvalidTag { what: "option", tag })
        );
    }
    let mut w = timeout_msg_tc_prefix();
    w.u32(0).u32(0);
    let mut frame = w.finish();
    let tag_at = frame.len() - (8 + 8 + 4 + 1 + 4 + 4) - 1;
    assert_eq!(frame[tag_at], 1, "the Some tag of last_round_tc");
    frame[tag_at] = 7;
    assert_eq!(Message::from_frame(&frame), Err(CodecError::InvalidTag { what: "option", tag: 7 }));
}

/// A proposal whose frame is exactly `size` bytes long.
fn proposal_of_frame_size(size: usize) -> Message {
    let empty = Message::Proposal(Proposal {
        block: Block::with_parent(
            Epoch(1),
            Round(2),
            Height(2),
            Digest([1; 32]),
            NodeId(0),
            QuorumCertificate::from_parts(
                Epoch(1),
                Round(1),
                Digest([1; 32]),
                VoterBitmap::empty(4),
                vec![],
            ),
            0,
            vec![],
        ),
        tc: None,
        signature: Signature([0; 64]),
    });
    let mut left = size - empty.to_frame().len();
    let mut payload = Vec::new();
    while left > 0 {
        // Each command costs 4 + len bytes; never leave 1..=3 bytes no command can fill.
        let mut len = PAYLOAD_ITEM_BYTES_MAX.min(left - 4);
        if (1..4).contains(&(left - 4 - len)) {
            len -= 4;
        }
        payload.push(vec![0x5A; len]);
        left -= 4 + len;
    }
    let Message::Proposal(p) = empty else { unreachable!() };
    let b = &p.block;
    let block = Block::with_parent(
        b.epoch(),
        b.round(),
        b.height(),
        b.parent(),
        b.proposer(),
        b.justify().clone(),
        b.timestamp_ms(),
        payload,
    );
    let m = Message::Proposal(Proposal { block, ..p });
    assert_eq!(m.to_frame().len(), size);
    m
}

#[test]
fn frames_up_to_the_limit_decode_and_larger_ones_are_refused_unread() {
    let m = proposal_of_frame_size(MESSAGE_BYTES_MAX);
    let mut frame = m.to_frame();
    assert_eq!(Message::from_frame(&frame), Ok(m));

    // One byte more: refused for its size, before the (otherwise trailing) byte is looked at.
    frame.push(0);
    assert_too_long(&frame, "message", MESSAGE_BYTES_MAX + 1, MESSAGE_BYTES_MAX);

    // Garbage of any size above the limit: the same error, whatever the first bytes are.
    for first in [0u8, WIRE_VERSION, 0xFF] {
        let mut junk = vec![first; MESSAGE_BYTES_MAX + 1];
        junk[1] = KIND_SYNC_RESPONSE;
        assert_too_long(&junk, "message", MESSAGE_BYTES_MAX + 1, MESSAGE_BYTES_MAX);
    }
    let junk = vec![0u8; 2 * MESSAGE_BYTES_MAX];
    assert_too_long(&junk, "message", 2 * MESSAGE_BYTES_MAX, MESSAGE_BYTES_MAX);
}

/// Real, signed messages survive the wire and still validate on the other side.
#[test]
fn signed_messages_round_trip_and_still_validate() {
    let (cfg, signers) =
        ConsensusConfig::for_testing(4, SchemeId::Ed25519, 11).expect("test committee");
    let s = |i: usize| signers[i].as_ref();
    let g = QuorumCertificate::genesis(&cfg);
    let b1 = Block::new(
        Epoch(1),
        Round(1),
        Height(1),
        NodeId(1),
        g.clone(),
        5,
        vec![b"set x 1".to_vec()],
    );
    let votes: Vec<Vote> =
        (0..3).map(|i| Vote::sign(&cfg, &b1, NodeId(i), s(usize::from(i)))).collect();
    let qc1 = QuorumCertificate::from_votes(&cfg, &votes.iter().collect::<Vec<_>>()).expect("qc");
    let ts: Vec<Timeout> = (0..3)
        .map(|i| Timeout::sign(&cfg, Round(2), qc1.clone(), NodeId(i), s(usize::from(i))))
        .collect();
    let tc2 = TimeoutCertificate::from_timeouts(&cfg, &ts.iter().collect::<Vec<_>>()).expect("tc");
    let b3 = Block::new(Epoch(1), Round(3), Height(2), NodeId(3), qc1.clone(), 9, vec![]);
    let p3 = Proposal::sign(&cfg, b3.clone(), Some(tc2.clone()), s(3));
    assert_eq!(p3.validate(&cfg), Ok(()));

    let messages = [
        Message::Proposal(p3),
        Message::Proposal(Proposal::sign(&cfg, b1.clone(), None, s(1))),
        Message::Vote(votes[2].clone()),
        Message::Timeout(TimeoutMsg {
            timeout: Timeout::sign(&cfg, Round(3), qc1.clone(), NodeId(3), s(3)),
            last_round_tc: Some(tc2),
        }),
        Message::Timeout(TimeoutMsg { timeout: ts[0].clone(), last_round_tc: None }),
        Message::SyncRequest(SyncRequest {
            epoch: Epoch(1),
            target: b3.id(),
            above: Height(0),
            max_blocks: 64,
        }),
        Message::SyncResponse(SyncResponse { epoch: Epoch(1), blocks: vec![b1, b3] }),
        Message::Commands(warpnet_types::SharedCommands {
            epoch: Epoch(1),
            commands: vec![b"c1".to_vec(), vec![]],
        }),
        Message::Attestation(warpnet_types::Attestation::sign(
            &cfg,
            NodeId(2),
            1_000,
            warpnet_types::VoterBitmap::from_ids(4, &[NodeId(0), NodeId(3)]).expect("bitmap"),
            s(2),
        )),
    ];
    for m in messages {
        let frame = m.to_frame();
        let back = decode_canonically(&frame).expect("decodes");
        assert_eq!(back, m);
        match back {
            Message::Proposal(p) => assert_eq!(p.validate(&cfg), Ok(())),
            Message::Vote(v) => assert_eq!(v.validate(&cfg), Ok(())),
            Message::Attestation(a) => assert_eq!(a.validate(&cfg), Ok(())),
            Message::Timeout(t) => {
                assert_eq!(t.timeout.validate(&cfg), Ok(()));
                if let Some(tc) = t.last_round_tc {
                    assert_eq!(tc.validate(&cfg), Ok(()));
                }
            }
            Message::SyncRequest(_)
            | Message::Commands(_)
            | Message::EpochRequest(_)
            | Message::EpochProof(_)
            | Message::Raft(_)
            | Message::Membership(_) => {}
            Message::SyncResponse(r) => {
                for b in &r.blocks {
                    assert_eq!(b.validate(&cfg), Ok(()));
                }
            }
        }
    }
    // The block id commits to every field: a one-byte change in a frame changes the decoded id.
    let b = Block::new(Epoch(1), Round(1), Height(1), NodeId(1), g, 5, vec![b"abc".to_vec()]);
    let mut frame =
        Message::SyncResponse(SyncResponse { epoch: Epoch(1), blocks: vec![b.clone()] }).to_frame();
    let last = frame.len() - 1;
    frame[last] ^= 1;
    let Ok(Message::SyncResponse(r)) = Message::from_frame(&frame) else {
        panic!("still well-formed")
    };
    assert_ne!(r.blocks[0].id(), b.id());
    assert_eq!(b.to_bytes().len(), frame.len() - 2 - 8 - 4);
}

/// A `Commands` frame is bounded like every other: an oversized command or too many commands
/// are refused while decoding, before anything is allocated for them.
#[test]
fn shared_commands_over_their_limits_are_refused() {
    use warpnet_types::message::{SHARED_COMMANDS_MAX, SHARED_COMMAND_BYTES_MAX};
    use warpnet_types::SharedCommands;
    let frame = |commands: Vec<Vec<u8>>| {
        Message::Commands(SharedCommands { epoch: Epoch(1), commands }).to_frame()
    };
    let ok = frame(vec![vec![7; SHARED_COMMAND_BYTES_MAX]]);
    assert!(Message::from_frame(&ok).is_ok());
    let big = frame(vec![vec![7; SHARED_COMMAND_BYTES_MAX + 1]]);
    assert!(matches!(Message::from_frame(&big), Err(CodecError::TooLong { .. })), "one too big");
    let many = frame(vec![vec![]; SHARED_COMMANDS_MAX + 1]);
    assert!(matches!(Message::from_frame(&many), Err(CodecError::TooLong { .. })), "too many");
}

/// A Raft frame names a piece within its message (at most `RAFT_PIECES_MAX` pieces) and carries
/// at most `RAFT_PIECE_BYTES_MAX` bytes; anything else is refused while decoding.
#[test]
fn raft_frames_outside_their_piece_limits_are_refused() {
    use warpnet_types::message::{RAFT_PIECES_MAX, RAFT_PIECE_BYTES_MAX};
    use warpnet_types::RaftFrame;
    let frame = |piece: u32, pieces: u32, len: usize| {
        Message::Raft(RaftFrame { epoch: Epoch(1), piece, pieces, bytes: vec![1; len] }).to_frame()
    };
    assert!(Message::from_frame(&frame(0, 1, 10)).is_ok());
    assert!(Message::from_frame(&frame(RAFT_PIECES_MAX - 1, RAFT_PIECES_MAX, 10)).is_ok());
    assert!(Message::from_frame(&frame(RAFT_PIECE_BYTES_MAX as u32 / 2, 1, 0)).is_err());
    for (piece, pieces) in [(0, 0), (1, 1), (0, RAFT_PIECES_MAX + 1)] {
        assert!(
            matches!(
                Message::from_frame(&frame(piece, pieces, 1)),
                Err(CodecError::Invalid { .. })
            ),
            "piece {piece} of {pieces}"
        );
    }
    let big = frame(0, 1, RAFT_PIECE_BYTES_MAX + 1);
    assert!(matches!(Message::from_frame(&big), Err(CodecError::TooLong { .. })), "one byte over");
}
