//! The quorum rule (`n - f`), domain separation between message kinds, networks and schemes,
//! and Ed25519 batch verification agreeing with single verification.

use crate::builders::*;

// ---------------------------------------------------------------------------------------------
// Quorum rule
// ---------------------------------------------------------------------------------------------

#[test]
fn a_qc_needs_exactly_n_minus_f_votes() {
    for n in 1..=10usize {
        let (cfg, signers) = committee(n, SchemeId::Ed25519);
        let f = (n - 1) / 3;
        let q = n - f;
        assert_eq!(cfg.quorum_threshold(), q, "n={n}");
        let b1 = block(&cfg, 1, &QuorumCertificate::genesis(&cfg));
        let all: Vec<u16> = (0..n as u16).collect();
        let vs = votes(&cfg, &signers, &b1, &all);

        assert_eq!(qc_of(&cfg, &vs).validate(&cfg), Ok(()), "n={n}, all {n} votes");
        // Any q votes (first ones, last ones) form a valid QC.
        assert_eq!(qc_of(&cfg, &vs[..q]).validate(&cfg), Ok(()), "n={n}, first {q}");
        assert_eq!(qc_of(&cfg, &vs[n - q..]).validate(&cfg), Ok(()), "n={n}, last {q}");
        if q > 1 {
            assert_eq!(
                qc_of(&cfg, &vs[..q - 1]).validate(&cfg),
                Err(ValidationError::NoQuorum { kind: K_QC, got: q - 1, need: q }),
                "n={n}"
            );
        }
    }
}

#[test]
fn the_same_votes_pass_the_unsafe_adr_rule_but_not_n_minus_f() {
    // n = 5: f = 1, n - f = 4, but ADR-006's 2f + 1 = 3.
    let (cfg, signers) = committee(5, SchemeId::Ed25519);
    let b1 = block(&cfg, 1, &QuorumCertificate::genesis(&cfg));
    let three = qc(&cfg, &signers, &b1, &[0, 2, 4]);
    assert_eq!(
        three.validate(&cfg),
        Err(ValidationError::NoQuorum { kind: K_QC, got: 3, need: 4 })
    );
    let adr = cfg.clone().with_unsafe_adr_quorum();
    assert_eq!(adr.quorum_threshold(), 3);
    assert_eq!(three.validate(&adr), Ok(()));

    // And the same for timeout certificates.
    let g = QuorumCertificate::genesis(&cfg);
    let ts = timeouts(&cfg, &signers, 1, &[(1, &g), (2, &g), (3, &g)]);
    let tc = tc_of(&cfg, &ts);
    assert_eq!(tc.validate(&cfg), Err(ValidationError::NoQuorum { kind: K_TC, got: 3, need: 4 }));
    // A TC carries its highest QC, here the genesis QC, which belongs to its committee (the
    // quorum rule is part of the committee's digest): build the ADR committee's own.
    let g = QuorumCertificate::genesis(&adr);
    let ts = timeouts(&adr, &signers, 1, &[(1, &g), (2, &g), (3, &g)]);
    assert_eq!(tc_of(&adr, &ts).validate(&adr), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Domain separation, networks, schemes
// ---------------------------------------------------------------------------------------------

fn verifies(cfg: &ConsensusConfig, id: NodeId, message: &[u8], signature: &Signature) -> bool {
    let key = cfg.public_key(id).expect("member");
    cfg.scheme().scheme().verify(SignedItem { key, message, signature }).is_ok()
}

/// `len(tag) || tag || network || epoch || round || block id`: the vote layout under any tag.
fn vote_layout(
    tag: &[u8],
    cfg: &ConsensusConfig,
    epoch: Epoch,
    round: Round,
    block: BlockId,
) -> Vec<u8> {
    let mut w = domain::signing_writer(tag, cfg.network());
    w.put(&epoch).put(&round).put(&block);
    w.finish()
}

#[test]
fn a_vote_signature_never_verifies_under_another_domain() {
    for scheme in [SchemeId::Ed25519, SchemeId::InsecureSimulation] {
        let c = chain(scheme);
        let cfg = &c.config;
        let b2 = &c.b2; // proposed by member 2
        let vote = Vote::sign(cfg, b2, NodeId(2), signer(&c.signers, 2));
        let (e, r, id) = (b2.epoch(), b2.round(), b2.id());

        // The layout helper reproduces the real signed bytes, which verify.
        assert_eq!(
            vote_layout(domain::TAG_VOTE, cfg, e, r, id),
            vote_signing_bytes(cfg.network(), e, r, id)
        );
        assert_eq!(
            vote_layout(domain::TAG_PROPOSAL, cfg, e, r, id),
            proposal_signing_bytes(cfg.network(), e, r, id),
            "proposals sign the vote's layout; only the tag differs"
        );
        assert!(verifies(cfg, NodeId(2), &vote.signing_bytes(cfg), &vote.signature));

        // The very same fields under every other tag: never.
        for &tag in domain::ALL.iter().filter(|&&t| t != domain::TAG_VOTE) {
            let bytes = vote_layout(tag, cfg, e, r, id);
            assert!(
                !verifies(cfg, NodeId(2), &bytes, &vote.signature),
                "{scheme:?}: vote signature verified under {}",
                String::from_utf8_lossy(tag)
            );
        }
        // Timeout bytes with the vote's round in both places, and with the tag left out.
        let tb = timeout_signing_bytes(cfg.network(), e, r, r);
        assert!(!verifies(cfg, NodeId(2), &tb, &vote.signature));
        let mut untagged = warpnet_types::codec::Writer::new();
        untagged.put(cfg.network()).put(&e).put(&r).put(&id);
        assert!(!verifies(cfg, NodeId(2), untagged.as_slice(), &vote.signature));

        // As objects: the proposer's vote passed off as its proposal signature.
        let p = Proposal { block: b2.clone(), tc: None, signature: vote.signature };
        assert_eq!(
            p.validate(cfg),
            Err(ValidationError::BadSignature { kind: K_PROPOSAL, signer: NodeId(2) }),
            "{scheme:?}"
        );
        // ...and the other way round.
        let proposal = Proposal::sign(cfg, b2.clone(), None, signer(&c.signers, 2));
        assert_eq!(proposal.validate(cfg), Ok(()));
        let mut v = vote.clone();
        v.signature = proposal.signature;
        assert_eq!(
            v.validate(cfg),
            Err(ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(2) })
        );
        // A vote signature in a timeout, and timeout signatures in a QC.
        let mut t = Timeout::sign(cfg, Round(2), c.qc1.clone(), NodeId(2), signer(&c.signers, 2));
        t.signature = vote.signature;
        assert_eq!(
            t.validate(cfg),
            Err(ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(2) })
        );
        let ts: Vec<Signature> = c.tc2_timeouts.iter().map(|t| t.signature).collect();
        let qc = QuorumCertificate::from_parts(e, r, id, c.tc2.signers().clone(), ts);
        assert_eq!(
            qc.validate(cfg),
            Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) })
        );
    }
}

#[test]
fn a_committee_on_network_a_refuses_what_was_signed_for_network_b() {
    let (a, signers) = committee_on("a", 4);
    let (b, _) = committee_on("b", 4);
    assert_eq!(a.participants(), b.participants(), "same members, same keys");
    let on_b = chain_with(b.clone(), signers);

    // Valid on b...
    assert_eq!(on_b.qc1.validate(&b), Ok(()));
    assert_eq!(on_b.tc2.validate(&b), Ok(()));
    // ...refused on a, naming the first signer.
    assert_eq!(
        on_b.qc1.validate(&a),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) })
    );
    assert_eq!(on_b.qc1.validate_shape(&a), Ok(()), "the shape alone cannot tell");
    assert_eq!(
        on_b.tc2.validate(&a),
        Err(ValidationError::BadSignature { kind: K_TC, signer: NodeId(0) })
    );
    assert_eq!(
        on_b.qc1_votes[1].validate(&a),
        Err(ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(1) })
    );
    // A timeout whose high QC is genesis: b's genesis QC is not a's.
    let t =
        Timeout::sign(&b, Round(1), on_b.genesis_qc.clone(), NodeId(3), signer(&on_b.signers, 3));
    assert_eq!(t.validate(&b), Ok(()));
    assert_eq!(t.validate(&a), Err(ValidationError::NotGenesis));
    assert_eq!(
        on_b.tc2_timeouts[0].validate(&a),
        Err(ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(0) })
    );
    // b's round-1 block extends b's genesis, which a does not recognise.
    assert_eq!(on_b.b1.validate(&a), Err(ValidationError::NotGenesis));
    let p2 = Proposal::sign(&b, on_b.b2.clone(), None, signer(&on_b.signers, 2));
    assert_eq!(p2.validate(&b), Ok(()));
    assert_eq!(
        p2.validate(&a),
        Err(ValidationError::BadSignature { kind: K_PROPOSAL, signer: NodeId(2) })
    );
}

#[test]
fn qc_validation_works_for_both_schemes() {
    for scheme in [SchemeId::Ed25519, SchemeId::InsecureSimulation] {
        for n in [1usize, 4, 7] {
            let (cfg, signers) = committee(n, scheme);
            assert_eq!(cfg.scheme(), scheme);
            let q = cfg.quorum_threshold();
            let b1 = block(&cfg, 1, &QuorumCertificate::genesis(&cfg));
            let all: Vec<u16> = (0..n as u16).collect();
            let qc = qc(&cfg, &signers, &b1, &all[..q]);
            assert_eq!(qc.validate(&cfg), Ok(()), "{scheme:?} n={n}");
            let last = q - 1;
            let bad = forge_qc(&qc, |p| p.sigs[last] = flip(&p.sigs[last]));
            assert_eq!(
                bad.validate(&cfg),
                Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(last as u16) }),
                "{scheme:?} n={n}"
            );
            let moved = forge_qc(&qc, |p| p.round = Round(2));
            assert_eq!(
                moved.validate(&cfg),
                Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) }),
                "{scheme:?} n={n}"
            );
            if q > 1 {
                let short = forge_qc(&qc, |p| {
                    p.voters = VoterBitmap::from_ids(n, &[NodeId(0)]).expect("member 0");
                    p.sigs.truncate(1);
                });
                assert_eq!(
                    short.validate(&cfg),
                    Err(ValidationError::NoQuorum { kind: K_QC, got: 1, need: q })
                );
            }
        }
    }
    // Signatures of one scheme mean nothing to a committee of the other (even for its own
    // members' positions).
    let (ed, ed_signers) = committee(4, SchemeId::Ed25519);
    let (sim, _) = committee(4, SchemeId::InsecureSimulation);
    let b1 = block(&ed, 1, &QuorumCertificate::genesis(&ed));
    let qc = qc(&ed, &ed_signers, &b1, &[0, 1, 2]);
    assert_eq!(
        qc.validate(&sim),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) })
    );
}

// ---------------------------------------------------------------------------------------------
// Ed25519: batch and single verification must agree
// ---------------------------------------------------------------------------------------------

/// `bytes` (little-endian, any length) reduced mod the group order, as a value of the type of
/// `like` (curve25519-dalek's `Scalar`, reached through `SigningKey::to_scalar` without naming it).
fn scalar_like<S>(_like: &S, bytes: &[u8]) -> S
where
    S: From<u64> + Mul<Output = S> + Add<Output = S> + Copy,
{
    let base = S::from(256);
    bytes.iter().rev().fold(S::from(0), |acc, &b| acc * base + S::from(u64::from(b)))
}

/// A member who knows its own secret signs with `R` = the identity point (a small-order point):
/// `s = H(R || A || M) * a`. Cofactorless verification holds (`sB = hA = R + hA`), so batch
/// verification accepts it, but `verify_strict` refuses every small-order `R`.
fn small_order_r_signature(seed: u64, public: &[u8; 32], message: &[u8]) -> Signature {
    // `signer_from_seed`'s derivation of test secrets.
    let secret = Digest::hash(b"warpnet/test-key", &seed.to_le_bytes()).0;
    let sk = ed25519_dalek::SigningKey::from_bytes(&secret);
    assert_eq!(&sk.verifying_key().to_bytes(), public, "the derivation matches the crate's");
    let mut r = [0u8; 32];
    r[0] = 1; // the compressed identity (y = 1)
    let h: [u8; 64] =
        Sha512::new().chain_update(r).chain_update(public).chain_update(message).finalize().into();
    let a = sk.to_scalar();
    let s = scalar_like(&a, &h) * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    sig[32..].copy_from_slice(&s.to_bytes());
    Signature(sig)
}

/// The signature a vote alone is refused for must not count inside a QC.
///
/// Regression: `ed25519_dalek::verify_batch` accepts a small-order `R` that `verify_strict`
/// refuses; `Ed25519Scheme::verify_batch` now refuses such a batch so the culprit is found one by
/// one and the certificate is refused.
#[test]
fn a_qc_refuses_a_signature_that_single_verification_refuses() {
    let c = chain(SchemeId::Ed25519);
    let cfg = &c.config;
    let b1 = &c.b1;
    let msg = vote_signing_bytes(cfg.network(), b1.epoch(), b1.round(), b1.id());
    let public = cfg.public_key(NodeId(0)).expect("member").0;
    let sig = small_order_r_signature(SEED, &public, &msg);

    let mut forged = c.qc1_votes[0].clone();
    forged.signature = sig;
    assert_eq!(
        forged.validate(cfg),
        Err(ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(0) }),
        "verify_strict refuses the small-order R"
    );
    let qc = qc_of(cfg, &[forged, c.qc1_votes[1].clone(), c.qc1_votes[2].clone()]);
    assert_eq!(
        qc.validate(cfg),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) }),
        "a QC must not count a vote that is refused on its own"
    );
}
