//! The registry against a simple model, and the exact bytes a client signs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use proptest::prelude::*;
use warpnet_state::{
    apply_block, block_verdicts, block_verdicts_cached, claim_signing_bytes, lookup, settled,
    try_apply_block_checked, verify_claims, verify_claims_cached, Claim, ClaimError, Command,
    MemoryKv, Outcome, UserId, VerdictCache,
};
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::{Height, NetworkId, SchemeId, Signature, Signer};

fn network() -> NetworkId {
    NetworkId::new("dev").unwrap()
}

/// The documented message: u8 len(tag) ‖ tag ‖ u32le len(network) ‖ network ‖ u32le len(id) ‖ id.
#[test]
fn the_signed_bytes_are_exactly_as_documented() {
    let bytes = claim_signing_bytes(&network(), &UserId::parse("@Alice").unwrap());
    let mut expected = vec![16u8];
    expected.extend_from_slice(b"warpnet/v1/claim");
    expected.extend_from_slice(&[3, 0, 0, 0]);
    expected.extend_from_slice(b"dev");
    expected.extend_from_slice(&[5, 0, 0, 0]);
    expected.extend_from_slice(b"alice");
    assert_eq!(bytes, expected);
}

/// Batched checks name exactly the bad claims, wherever they sit in the batch, and agree with
/// one-by-one checks.
#[test]
fn batched_claim_checks_find_every_bad_claim() {
    let signers: Vec<Box<dyn Signer>> =
        (0..40).map(|i| signer_from_seed(SchemeId::Ed25519, 500 + i)).collect();
    let mut claims: Vec<Claim> = signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Claim::sign(&network(), UserId::parse(&format!("u{i}")).unwrap(), s.as_ref(), "r")
                .unwrap()
        })
        .collect();
    for i in [0, 17, 18, 39] {
        claims[i].signature.0[40] ^= 1;
    }
    claims[25].user_id = UserId::parse("someone_else").unwrap();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    claims[30].owner_key.0 = identity; // a small-order point: never a usable key
    let refs: Vec<&Claim> = claims.iter().collect();
    let got = verify_claims(&network(), &refs);
    for (i, r) in got.iter().enumerate() {
        let expected = match i {
            0 | 17 | 18 | 25 | 39 => Err(ClaimError::BadSignature),
            30 => Err(ClaimError::BadKey),
            _ => Ok(()),
        };
        assert_eq!(r, &expected, "claim {i}");
        assert_eq!(claims[i].verify(&network()), expected, "one by one, claim {i}");
    }
    assert!(verify_claims(&network(), &[]).is_empty());
}

/// Claims of every kind: valid, forged, signed for another ID, with a small-order, a
/// non-canonical or a non-point owner key, with a bad request id.
fn mixed_claims() -> (Vec<Claim>, Vec<Result<(), ClaimError>>) {
    let mut claims = Vec::new();
    let mut expected = Vec::new();
    for i in 0..48u64 {
        let s = signer_from_seed(SchemeId::Ed25519, 900 + i % 13);
        let mut c =
            Claim::sign(&network(), UserId::parse(&format!("m{i}")).unwrap(), s.as_ref(), "r")
                .unwrap();
        let e = match i % 8 {
            1 => {
                c.signature.0[50] ^= 4;
                Err(ClaimError::BadSignature)
            }
            2 => {
                c.user_id = UserId::parse("not_signed").unwrap();
                Err(ClaimError::BadSignature)
            }
            3 => {
                c.owner_key.0 = [0; 32]; // y = 0: a point of order 4
                Err(ClaimError::BadKey)
            }
            4 => {
                c.owner_key.0 = [0xff; 32]; // y ≥ p: not canonical
                Err(ClaimError::BadKey)
            }
            5 => {
                c.owner_key.0[0] = 2; // y = 2: not on the curve
                c.owner_key.0[1..].fill(0);
                Err(ClaimError::BadKey)
            }
            6 => {
                c.request_id = "no spaces".into();
                Err(ClaimError::RequestId)
            }
            _ => Ok(()),
        };
        claims.push(c);
        expected.push(e);
    }
    (claims, expected)
}

/// R1 with one check per claim per node: verdicts taken from the node's cache, filled by
/// checks in any other batching (admission, shared copies), equal fresh verdicts, claim by
/// claim; and a full cache forgets (bounded) without changing any verdict.
#[test]
fn r1_cached_verdicts_equal_fresh_verdicts_whatever_the_batching() {
    let (claims, expected) = mixed_claims();
    let refs: Vec<&Claim> = claims.iter().collect();
    assert_eq!(verify_claims(&network(), &refs), expected);
    for generation in [1, 5, 1000] {
        let mut cache = VerdictCache::new(generation);
        // Admission and sharing in uneven batches, in another order.
        let mut at = 0;
        for (k, cut) in [1usize, 7, 2, 13, 5, 20].iter().cycle().enumerate() {
            if at >= refs.len() || k > 100 {
                break;
            }
            let end = (at + cut).min(refs.len());
            let batch: Vec<&Claim> = refs[at..end].iter().rev().copied().collect();
            let mut want: Vec<_> = expected[at..end].to_vec();
            want.reverse();
            assert_eq!(verify_claims_cached(&network(), &batch, &mut cache), want);
            at = end;
        }
        assert!(cache.len() <= 2 * generation, "bounded: {} > 2 × {generation}", cache.len());
        // Then the block: all at once, from the cache where it still holds them.
        assert_eq!(verify_claims_cached(&network(), &refs, &mut cache), expected);
        let commands: Vec<Vec<u8>> =
            claims.iter().map(|c| Command::Claim(c.clone()).encode()).collect();
        let fresh = block_verdicts(&network(), &commands);
        assert_eq!(block_verdicts_cached(&network(), &commands, &mut cache), fresh);
    }
    let mut cache = VerdictCache::new(1000);
    let _ = verify_claims_cached(&network(), &refs, &mut cache);
    let (hits_before, _) = cache.stats();
    let _ = verify_claims_cached(&network(), &refs, &mut cache);
    let (hits, _) = cache.stats();
    let signature_verdicts =
        expected.iter().filter(|e| !matches!(e, Err(ClaimError::RequestId))).count();
    // Key-policy refusals (BadKey from the byte check) are not cached: they cost nothing.
    let checked = signature_verdicts - 2 * claims.len() / 8;
    assert_eq!(
        (hits - hits_before) as usize,
        checked,
        "the second time, every checked verdict is reused"
    );
}

#[test]
fn first_claim_wins_same_key_is_idempotent_retries_get_the_recorded_result() {
    let (a, b) = (signer_from_seed(SchemeId::Ed25519, 1), signer_from_seed(SchemeId::Ed25519, 2));
    let claim = |s: &dyn Signer, id: &str, req: &str| {
        Command::Claim(Claim::sign(&network(), UserId::parse(id).unwrap(), s, req).unwrap())
            .encode()
    };
    let mut kv = MemoryKv::default();
    let (out, writes) = apply_block(
        &network(),
        Height(5),
        &[claim(a.as_ref(), "@Alice", "r1"), claim(b.as_ref(), "alice", "r2")],
        &kv,
    );
    kv.write(writes);
    let owner = lookup(&kv, &UserId::parse("alice").unwrap()).unwrap().unwrap();
    assert_eq!((owner.key, owner.height), (a.public_key(), Height(5)));
    assert!(matches!(&out[0], Outcome::Claimed { owner: o, .. } if o.key == a.public_key()));
    assert!(matches!(&out[1], Outcome::Taken { owner: o, .. } if o.key == a.public_key()));
    let (out, _) = apply_block(
        &network(),
        Height(6),
        &[claim(a.as_ref(), "ALICE", "r3"), claim(b.as_ref(), "alice", "r2")],
        &kv,
    );
    assert!(matches!(&out[0], Outcome::AlreadyYours { owner: o, .. } if o.height == Height(5)));
    assert!(matches!(&out[1], Outcome::Taken { .. }), "the retry gets its recorded result");
}

#[test]
fn forged_and_garbage_commands_change_nothing_and_poison_no_retry() {
    let a = signer_from_seed(SchemeId::Ed25519, 1);
    let mut forged =
        Claim::sign(&network(), UserId::parse("bob").unwrap(), a.as_ref(), "r1").unwrap();
    forged.signature = Signature([7; 64]);
    let kv = MemoryKv::default();
    let (out, writes) = apply_block(
        &network(),
        Height(1),
        &[Command::Claim(forged).encode(), b"garbage".to_vec(), vec![]],
        &kv,
    );
    assert!(out.iter().all(|o| matches!(o, Outcome::Rejected { .. })));
    assert!(writes.is_empty());
    // The real owner's request "r1" is still free.
    let real = Command::Claim(
        Claim::sign(&network(), UserId::parse("bob").unwrap(), a.as_ref(), "r1").unwrap(),
    )
    .encode();
    let (out, _) = apply_block(&network(), Height(2), &[real], &kv);
    assert!(matches!(out[0], Outcome::Claimed { .. }));
}

#[test]
fn a_claim_signed_for_another_network_is_rejected() {
    let a = signer_from_seed(SchemeId::Ed25519, 1);
    let other = NetworkId::new("mainnet").unwrap();
    let c = Command::Claim(
        Claim::sign(&other, UserId::parse("carol").unwrap(), a.as_ref(), "r").unwrap(),
    )
    .encode();
    let (out, _) = apply_block(&network(), Height(1), &[c], &MemoryKv::default());
    assert!(matches!(out[0], Outcome::Rejected { .. }));
}

#[derive(Clone, Debug)]
enum Op {
    Claim { key: usize, id: usize, variant: u8, req: usize },
    Forged { key: usize, id: usize, req: usize },
    Garbage(Vec<u8>),
    Barrier(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..4usize, any::<u8>(), 0..6usize).prop_map(|(key, id, variant, req)| Op::Claim { key, id, variant, req }),
        1 => (0..3usize, 0..4usize, 0..6usize).prop_map(|(key, id, req)| Op::Forged { key, id, req }),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Op::Garbage),
        1 => any::<u8>().prop_map(Op::Barrier),
    ]
}

const IDS: [&str; 4] = ["alice", "bob_1", "01hzx3k7q9v2", "z"];

/// Spells an ID as a user might: `@` or not, any case.
fn spelling(id: &str, variant: u8) -> String {
    let body: String = id
        .chars()
        .enumerate()
        .map(|(i, c)| if variant & (1 << (i % 7)) != 0 { c.to_ascii_uppercase() } else { c })
        .collect();
    if variant & 0x80 != 0 {
        format!("@{body}")
    } else {
        body
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Claimed(usize, u64),
    AlreadyYours(usize, u64),
    Taken(usize, u64),
    Rejected,
    Barrier,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random sequences with duplicates, case variants, retries, forgeries and garbage, cut into
    /// random blocks: every outcome matches a model in which the first valid claim of an ID wins
    /// and a retried (owner, request id) gets its first result.
    #[test]
    fn the_registry_behaves_like_its_model(ops in prop::collection::vec(op(), 1..50), cuts in prop::collection::vec(1usize..8, 1..30)) {
        let signers: Vec<Box<dyn Signer>> = (0..3).map(|i| signer_from_seed(SchemeId::Ed25519, 100 + i)).collect();
        let key_index = |k: &warpnet_types::PublicKey| signers.iter().position(|s| s.public_key() == *k).unwrap();
        let mut owners: HashMap<usize, (usize, u64)> = HashMap::new();
        let mut results: HashMap<(usize, usize), Expect> = HashMap::new();
        let mut kv = MemoryKv::default();
        let mut cache = VerdictCache::new(8);
        let (mut at, mut height) = (0usize, 0u64);
        let mut cut = cuts.iter().cycle();
        while at < ops.len() {
            height += 1;
            let end = (at + cut.next().copied().unwrap_or(1)).min(ops.len());
            let mut commands = Vec::new();
            let mut expected = Vec::new();
            for op in &ops[at..end] {
                match op {
                    Op::Claim { key, id, variant, req } => {
                        let user = UserId::parse(&spelling(IDS[*id], *variant)).unwrap();
                        let c = Claim::sign(&network(), user, signers[*key].as_ref(), &format!("req-{req}")).unwrap();
                        commands.push(Command::Claim(c).encode());
                        let e = match results.get(&(*key, *req)) {
                            Some(e) => *e,
                            None => {
                                let e = match owners.get(id) {
                                    None => {
                                        owners.insert(*id, (*key, height));
                                        Expect::Claimed(*key, height)
                                    }
                                    Some(&(k, h)) if k == *key => Expect::AlreadyYours(k, h),
                                    Some(&(k, h)) => Expect::Taken(k, h),
                                };
                                results.insert((*key, *req), e);
                                e
                            }
                        };
                        expected.push(e);
                    }
                    Op::Forged { key, id, req } => {
                        let mut c = Claim::sign(&network(), UserId::parse(IDS[*id]).unwrap(), signers[*key].as_ref(), &format!("req-{req}")).unwrap();
                        c.signature.0[10] ^= 1;
                        commands.push(Command::Claim(c).encode());
                        expected.push(Expect::Rejected);
                    }
                    Op::Garbage(bytes) => {
                        commands.push(bytes.clone());
                        expected.push(match Command::decode(bytes) {
                            Ok(Command::Barrier { .. } | Command::Committee(_)) => Expect::Barrier,
                            Ok(Command::Claim(_)) => unreachable!("random bytes never sign"),
                            Err(_) => Expect::Rejected,
                        });
                    }
                    Op::Barrier(n) => {
                        commands.push(Command::Barrier { nonce: [*n; 16] }.encode());
                        expected.push(Expect::Barrier);
                    }
                }
            }
            // Blocks with their verdicts computed ahead (as the node does on its verifier
            // thread), fresh or from a small cache that forgets: the results must be the same.
            let (outcomes, writes) = if height % 3 == 0 {
                let verdicts = block_verdicts(&network(), &commands);
                try_apply_block_checked(&network(), Height(height), &commands, &kv, Some(verdicts)).unwrap()
            } else if height % 3 == 1 {
                let verdicts = block_verdicts_cached(&network(), &commands, &mut cache);
                try_apply_block_checked(&network(), Height(height), &commands, &kv, Some(verdicts)).unwrap()
            } else {
                apply_block(&network(), Height(height), &commands, &kv)
            };
            kv.write(writes);
            let got: Vec<Expect> = outcomes
                .iter()
                .map(|o| match o {
                    Outcome::Claimed { owner, .. } => Expect::Claimed(key_index(&owner.key), owner.height.0),
                    Outcome::AlreadyYours { owner, .. } => Expect::AlreadyYours(key_index(&owner.key), owner.height.0),
                    Outcome::Taken { owner, .. } => Expect::Taken(key_index(&owner.key), owner.height.0),
                    Outcome::Rejected { .. } => Expect::Rejected,
                    Outcome::Barrier => Expect::Barrier,
                })
                .collect();
            prop_assert_eq!(got, expected);
            // `settled` (the API's answer without ordering) agrees with the model for every
            // valid claim: the recorded result, else the final answer from the ID's owner.
            for op in &ops[at..end] {
                if let Op::Claim { key, id, variant, req } = op {
                    let user = UserId::parse(&spelling(IDS[*id], *variant)).unwrap();
                    let c = Claim::sign(&network(), user, signers[*key].as_ref(), &format!("req-{req}")).unwrap();
                    let got = settled(&kv, &c).unwrap().map(|o| match o {
                        Outcome::Claimed { owner, .. } => Expect::Claimed(key_index(&owner.key), owner.height.0),
                        Outcome::AlreadyYours { owner, .. } => Expect::AlreadyYours(key_index(&owner.key), owner.height.0),
                        Outcome::Taken { owner, .. } => Expect::Taken(key_index(&owner.key), owner.height.0),
                        _ => Expect::Rejected,
                    });
                    prop_assert_eq!(got, results.get(&(*key, *req)).copied());
                }
            }
            at = end;
        }
        // Every ID has exactly the model's owner.
        for (i, id) in IDS.iter().enumerate() {
            let owner = lookup(&kv, &UserId::parse(id).unwrap()).unwrap().map(|o| (key_index(&o.key), o.height.0));
            prop_assert_eq!(owner, owners.get(&i).copied());
        }
    }
}

/// The README's worked example, byte for byte: RFC 8032's first test key claims `@alice` on the
/// `dev` network. If this test changes, the README must change with it.
#[test]
fn the_readme_worked_example_is_exact() {
    use warpnet_types::crypto::Ed25519Signer;
    let secret: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
    let key = Ed25519Signer::from_secret(secret);
    let network = NetworkId::new("dev").unwrap();
    let id = UserId::parse("@Alice").unwrap();
    let message = claim_signing_bytes(&network, &id);
    let claim = Claim::sign(&network, id, &key, "readme-1").unwrap();
    println!("public {}", key.public_key().to_hex());
    println!("message {}", hex::encode(&message));
    println!("signature {}", hex::encode(claim.signature.0));
    assert_eq!(
        key.public_key().to_hex(),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(hex::encode(&message), README_MESSAGE_HEX);
    assert_eq!(hex::encode(claim.signature.0), README_SIGNATURE_HEX);
    assert_eq!(claim.verify(&network), Ok(()));
}

const README_MESSAGE_HEX: &str =
    "10776172706e65742f76312f636c61696d0300000064657605000000616c696365";
const README_SIGNATURE_HEX: &str = "537378f4a61a4b04ed1ce7d071511005fcdafe89beb17ca2073fcdba471672c8bda097488344e2d368839cd36fd2e6f702a9a5e54d0759380f980da6b502bb01";
