//! Claims' signature rule (R1 under ZIP-215): batch verdicts equal single verdicts for every
//! input, adversarial ones above all, so no node's state can depend on how claims were batched.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use proptest::prelude::*;
use sha2::{Digest as _, Sha512};
use warpnet_types::crypto::{zip215, CryptoError, PublicKey, Signature, SignedItem};

/// One test signature: key, message, signature, and whether ZIP-215 accepts it.
#[derive(Clone, Debug)]
struct Case {
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
    valid: bool,
}

impl Case {
    fn item(&self) -> SignedItem<'_> {
        SignedItem { key: &self.key, message: &self.message, signature: &self.signature }
    }
}

fn scalar(seed: &[u8]) -> Scalar {
    Scalar::from_hash(Sha512::new().chain_update(b"zip215-test").chain_update(seed))
}

fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    Scalar::from_hash(Sha512::new().chain_update(r).chain_update(a).chain_update(m))
}

fn sig(r: [u8; 32], s: Scalar) -> Signature {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(&r);
    bytes[32..].copy_from_slice(s.as_bytes());
    Signature(bytes)
}

/// Signs with secret scalar `a` under the key encoding `a_bytes` (which may differ from a·B by
/// a small-order point) and nonce point `r·B + extra_r`.
fn sign_raw(a: Scalar, a_bytes: [u8; 32], r: Scalar, extra_r: EdwardsPoint, m: &[u8]) -> Signature {
    let r_bytes = (r * B + extra_r).compress().to_bytes();
    let k = challenge(&r_bytes, &a_bytes, m);
    sig(r_bytes, r + k * a)
}

/// Encodings of y = p + t (t < 19, non-canonical), either sign, that decode to a curve point.
fn non_canonical_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for t in 0..19u8 {
        for sign in [0u8, 0x80] {
            let mut e = [0xffu8; 32];
            e[0] = 0xed + t;
            e[31] = 0x7f | sign;
            if CompressedEdwardsY(e).decompress().is_some() {
                out.push(e);
            }
        }
    }
    out
}

/// Every encoding of a small-order point: the eight canonical ones, the x = 0 points with the
/// sign bit set, and the non-canonical ones of small order.
fn small_order_encodings() -> Vec<[u8; 32]> {
    let mut out: Vec<[u8; 32]> = EIGHT_TORSION.iter().map(|p| p.compress().to_bytes()).collect();
    for i in [0, 4] {
        let mut e = EIGHT_TORSION[i].compress().to_bytes();
        e[31] |= 0x80;
        out.push(e);
    }
    out.extend(
        non_canonical_encodings()
            .into_iter()
            .filter(|e| CompressedEdwardsY(*e).decompress().is_some_and(|p| p.is_small_order())),
    );
    out.sort_unstable();
    out.dedup();
    out
}

/// The adversarial corpus: ZIP-215's small-order vectors (every small-order A with every
/// small-order R and s = 0: all valid under the cofactored equation), mixed-order R and A,
/// non-canonical s, keys and R that are not points, plus honest signatures and plain forgeries.
fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    let small = small_order_encodings();
    assert_eq!(
        small.len(),
        14,
        "8 canonical and 6 non-canonical encodings, as in ZIP-215's vectors"
    );
    for a in &small {
        for r in &small {
            let m = [a.as_slice(), r.as_slice()].concat();
            cases.push(Case {
                key: PublicKey(*a),
                message: m,
                signature: sig(*r, Scalar::ZERO),
                valid: true,
            });
        }
    }
    for i in 0..8u8 {
        let a = scalar(&[1, i]);
        let a_point = a * B;
        let honest_key = a_point.compress().to_bytes();
        let m = vec![i; 20];
        let r = scalar(&[2, i]);
        // An honest signature, and the same with one bit of s flipped.
        let good = sign_raw(a, honest_key, r, EdwardsPoint::default(), &m);
        cases.push(Case {
            key: PublicKey(honest_key),
            message: m.clone(),
            signature: good,
            valid: true,
        });
        let mut bad = good;
        bad.0[40] ^= 1;
        cases.push(Case {
            key: PublicKey(honest_key),
            message: m.clone(),
            signature: bad,
            valid: false,
        });
        // Mixed-order R: valid under the cofactored equation, refused by RFC 8032 strict.
        let t = EIGHT_TORSION[1 + usize::from(i % 7)];
        let mixed_r = sign_raw(a, honest_key, r, t, &m);
        cases.push(Case {
            key: PublicKey(honest_key),
            message: m.clone(),
            signature: mixed_r,
            valid: true,
        });
        // Mixed-order A: the key is a·B plus a small-order point; valid for the same reason.
        let mixed_key = (a_point + t).compress().to_bytes();
        let mixed_a = sign_raw(a, mixed_key, r, EdwardsPoint::default(), &m);
        cases.push(Case {
            key: PublicKey(mixed_key),
            message: m.clone(),
            signature: mixed_a,
            valid: true,
        });
        // Non-canonical s (s + ℓ): refused.
        let mut s_big = good;
        let mut carry = 0u16;
        let l = Scalar::ZERO - Scalar::ONE; // ℓ − 1
        let mut l_bytes = l.to_bytes();
        l_bytes[0] += 1; // ℓ (its lowest byte is 0xed − 1 + 1, no carry)
        for (byte, l_byte) in s_big.0[32..].iter_mut().zip(l_bytes) {
            let v = u16::from(*byte) + u16::from(l_byte) + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        if carry == 0 {
            cases.push(Case {
                key: PublicKey(honest_key),
                message: m.clone(),
                signature: s_big,
                valid: false,
            });
        }
        // A signature for another message.
        cases.push(Case {
            key: PublicKey(honest_key),
            message: vec![i, 1],
            signature: good,
            valid: false,
        });
        // R that is not a point; a key that is not a point.
        let mut off = good;
        off.0[..32].copy_from_slice(&not_a_point(i));
        cases.push(Case {
            key: PublicKey(honest_key),
            message: m.clone(),
            signature: off,
            valid: false,
        });
        cases.push(Case {
            key: PublicKey(not_a_point(i)),
            message: m,
            signature: good,
            valid: false,
        });
    }
    cases
}

fn not_a_point(i: u8) -> [u8; 32] {
    (0u8..=255)
        .map(|j| {
            let mut e = [0u8; 32];
            e[0] = i.wrapping_mul(31).wrapping_add(j);
            e[1] = 0x42;
            e
        })
        .find(|e| CompressedEdwardsY(*e).decompress().is_none())
        .expect("about half of all y values are not on the curve")
}

#[test]
fn zip215_single_verdicts_are_the_expected_ones() {
    for (i, c) in corpus().iter().enumerate() {
        assert_eq!(zip215::verify(c.item()).is_ok(), c.valid, "case {i}: {c:?}");
    }
}

#[test]
fn zip215_each_alone_in_a_batch_agrees_with_single_verification() {
    for (i, c) in corpus().iter().enumerate() {
        assert_eq!(zip215::verify_batch(&[c.item()]).is_ok(), c.valid, "case {i}");
        // Twice the same item (one key, coalesced in the batch equation).
        assert_eq!(zip215::verify_batch(&[c.item(), c.item()]).is_ok(), c.valid, "case {i} twice");
    }
}

#[test]
fn zip215_all_small_order_vectors_pass_as_one_batch() {
    let cases: Vec<Case> = corpus().into_iter().filter(|c| c.valid).collect();
    assert!(cases.len() > 200, "the 14 × 14 small-order vectors and the mixed-order cases");
    let items: Vec<SignedItem<'_>> = cases.iter().map(Case::item).collect();
    assert_eq!(zip215::verify_batch(&items), Ok(()));
}

#[test]
fn strict_rfc8032_refuses_what_zip215_accepts_so_the_accepted_set_changed() {
    // The reason claims moved off `Ed25519Scheme`: a mixed-order R fails strict single
    // verification; under ZIP-215 it is valid alone and in any batch.
    let a = scalar(b"strict");
    let key = (a * B).compress().to_bytes();
    let m = b"claim".to_vec();
    let s = sign_raw(a, key, scalar(b"nonce"), EIGHT_TORSION[2], &m);
    let item = SignedItem { key: &PublicKey(key), message: &m, signature: &s };
    assert!(warpnet_types::SchemeId::Ed25519.scheme().verify(item).is_err());
    assert_eq!(zip215::verify(item), Ok(()));
}

#[test]
fn owner_keys_of_small_order_or_non_canonical_encoding_are_refused() {
    for e in small_order_encodings() {
        assert_eq!(
            zip215::check_owner_key(&PublicKey(e)),
            Err(CryptoError::MalformedPublicKey),
            "{e:02x?}"
        );
    }
    for e in non_canonical_encodings() {
        assert_eq!(zip215::check_owner_key(&PublicKey(e)), Err(CryptoError::MalformedPublicKey));
    }
    // Canonical y = p − 2 passes the byte check (whether or not it is a point; p − 1 is the
    // order-2 point (0, −1)).
    let mut below = [0xffu8; 32];
    below[0] = 0xeb;
    below[31] = 0x7f;
    assert_eq!(zip215::check_owner_key(&PublicKey(below)), Ok(()));
    for i in 0..16u8 {
        let key = (scalar(&[9, i]) * B).compress().to_bytes();
        assert_eq!(zip215::check_owner_key(&PublicKey(key)), Ok(()));
        // Mixed-order keys are points of large order with a small component: usable.
        let mixed = (scalar(&[9, i]) * B + EIGHT_TORSION[3]).compress().to_bytes();
        assert_eq!(zip215::check_owner_key(&PublicKey(mixed)), Ok(()));
    }
    assert_eq!(
        zip215::classify_failure(&PublicKey(not_a_point(3))),
        CryptoError::MalformedPublicKey
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any selection of the corpus, in any order: the batch accepts exactly when every item is
    /// valid alone.
    #[test]
    fn zip215_batch_verdict_is_the_and_of_single_verdicts(picks in prop::collection::vec(any::<prop::sample::Index>(), 1..24)) {
        let corpus = corpus();
        let chosen: Vec<&Case> = picks.iter().map(|p| &corpus[p.index(corpus.len())]).collect();
        let items: Vec<SignedItem<'_>> = chosen.iter().map(|c| c.item()).collect();
        let singles = chosen.iter().all(|c| zip215::verify(c.item()).is_ok());
        prop_assert_eq!(zip215::verify_batch(&items).is_ok(), singles);
    }
}
