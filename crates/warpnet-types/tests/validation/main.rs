//! Scenario tests for `validate(&config)` of blocks, votes, certificates, timeouts and proposals.
//!
//! Valid objects come from the public constructors (`Vote::sign`, `QuorumCertificate::from_votes`,
//! `Timeout::sign`, `TimeoutCertificate::from_timeouts`, `Proposal::sign`); invalid ones are forged
//! with `from_parts`, `Block::with_parent` or by editing public fields. Every error is compared
//! exactly, so a test also pins which signer, round or count the error names.

mod builders;
mod errors_blocks;
mod errors_certs;
mod signatures;

use builders::*;
use errors_blocks::{block_errors, health_errors, proposal_errors};
use errors_certs::{qc_errors, tc_errors, timeout_errors, vote_errors};

// ---------------------------------------------------------------------------------------------
// Valid objects
// ---------------------------------------------------------------------------------------------

#[test]
fn objects_built_by_the_constructors_are_valid() {
    let c = chain(SchemeId::Ed25519);
    let cfg = &c.config;
    assert_eq!((cfg.total_nodes(), cfg.faulty_nodes(), cfg.quorum_threshold()), (4, 1, 3));

    assert_eq!(c.genesis_qc.validate(cfg), Ok(()));
    for v in &c.qc1_votes {
        assert_eq!(v.validate(cfg), Ok(()));
    }
    for qc in [&c.qc1, &c.qc2] {
        assert_eq!(qc.validate_shape(cfg), Ok(()));
        assert_eq!(qc.validate(cfg), Ok(()));
    }
    for b in [&c.b1, &c.b2, &c.b3] {
        assert_eq!(b.validate_shape(cfg), Ok(()));
        assert_eq!(b.validate(cfg), Ok(()));
    }
    for t in &c.tc2_timeouts {
        assert_eq!(t.validate(cfg), Ok(()));
    }
    assert_eq!(c.tc2.validate(cfg), Ok(()));
    assert_eq!(c.tc2.high_qc_rounds(), &[Round(1), Round(1), Round(0)]);
    assert_eq!(c.tc2.max_high_qc_round(), Round(1));
    assert_eq!(c.tc2.signers().iter().collect::<Vec<_>>(), [NodeId(0), NodeId(1), NodeId(3)]);

    // Proposals justified by the previous round's QC, and by the previous round's TC.
    let p2 = Proposal::sign(cfg, c.b2.clone(), None, signer(&c.signers, 2));
    assert_eq!(p2.validate(cfg), Ok(()));
    let p3 = Proposal::sign(cfg, c.b3.clone(), Some(c.tc2.clone()), signer(&c.signers, 3));
    assert_eq!(p3.validate(cfg), Ok(()));

    // A timeout whose highest QC is genesis, and one for a later round.
    let t = Timeout::sign(cfg, Round(1), c.genesis_qc.clone(), NodeId(2), signer(&c.signers, 2));
    assert_eq!(t.validate(cfg), Ok(()));
    let t = Timeout::sign(cfg, Round(9), c.qc2.clone(), NodeId(0), signer(&c.signers, 0));
    assert_eq!(t.validate(cfg), Ok(()));
}

#[test]
fn from_votes_and_from_timeouts_sort_by_member_and_refuse_duplicates_and_strangers() {
    let c = chain(SchemeId::Ed25519);
    let cfg = &c.config;
    let mut vs = votes(cfg, &c.signers, &c.b1, &[3, 0, 2]);
    let qc = qc_of(cfg, &vs);
    assert_eq!(qc.voters().iter().collect::<Vec<_>>(), [NodeId(0), NodeId(2), NodeId(3)]);
    assert_eq!(qc.signatures(), [vs[1].signature, vs[2].signature, vs[0].signature]);
    assert_eq!(qc.validate(cfg), Ok(()));

    vs.push(vs[0].clone());
    let refs: Vec<&Vote> = vs.iter().collect();
    assert_eq!(QuorumCertificate::from_votes(cfg, &refs), None, "duplicate voter");
    let mut stranger = vs[0].clone();
    stranger.voter = NodeId(4);
    assert_eq!(QuorumCertificate::from_votes(cfg, &[&stranger]), None, "unknown voter");
    assert_eq!(QuorumCertificate::from_votes(cfg, &[]), None, "no votes");

    let ts = &c.tc2_timeouts;
    assert_eq!(TimeoutCertificate::from_timeouts(cfg, &[&ts[0], &ts[0]]), None);
    assert_eq!(TimeoutCertificate::from_timeouts(cfg, &[]), None);
}

#[test]
fn every_validation_error_variant_and_path() {
    let c = chain(SchemeId::Ed25519);
    let mut seen = Seen::default();
    vote_errors(&c, &mut seen);
    qc_errors(&c, &mut seen);
    block_errors(&c, &mut seen);
    timeout_errors(&c, &mut seen);
    tc_errors(&c, &mut seen);
    proposal_errors(&c, &mut seen);
    health_errors(&c, &mut seen);

    let reachable: BTreeSet<&str> =
        ALL_VARIANTS.iter().copied().filter(|v| !NOT_PRODUCED_BY_VALIDATE.contains(v)).collect();
    assert_eq!(seen.0, reachable, "every variant a validate() can return was exercised");
}

/// `PayloadTooLarge` exists in `ValidationError` but nothing in this crate returns it:
/// `Block::validate` does not look at the payload's size (the core's configured limits do). This pins their messages so the callers that will produce them get them right.
#[test]
fn variants_no_validate_path_produces() {
    let e =
        ValidationError::PayloadTooLarge { count: 10, bytes: 2000, count_max: 5, bytes_max: 1000 };
    assert_eq!(variant(&e), "PayloadTooLarge");
    assert_eq!(e.to_string(), "payload has 10 commands and 2000 bytes, limits are 5 and 1000");

    // A block with a payload far above any sensible limit still validates here.
    let c = chain(SchemeId::Ed25519);
    let big = Block::new(
        Epoch(1),
        Round(2),
        Height(2),
        NodeId(2),
        c.qc1.clone(),
        0,
        vec![vec![0; 16]; 10_000],
    );
    assert_eq!(big.validate(&c.config), Ok(()));
}

#[test]
fn bad_signature_names_the_right_signer_at_every_position() {
    let (cfg, signers) = committee(10, SchemeId::Ed25519); // f = 3, q = 7
    let b1 = block(&cfg, 1, &QuorumCertificate::genesis(&cfg));
    let voters = [0, 2, 3, 5, 6, 8, 9];
    let qc = qc(&cfg, &signers, &b1, &voters);
    assert_eq!(qc.validate(&cfg), Ok(()));
    for (pos, &id) in voters.iter().enumerate() {
        let bad = forge_qc(&qc, |p| p.sigs[pos] = flip(&p.sigs[pos]));
        assert_eq!(
            bad.validate(&cfg),
            Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(id) }),
            "signature at position {pos}"
        );
        // A valid signature by another member in that slot is just as bad.
        let other = Vote::sign(&cfg, &b1, NodeId(1), signer(&signers, 1)).signature;
        let bad = forge_qc(&qc, |p| p.sigs[pos] = other);
        assert_eq!(
            bad.validate(&cfg),
            Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(id) })
        );
    }
    // Two signatures swapped: the first of the two, in bitmap order, is named.
    let bad = forge_qc(&qc, |p| p.sigs.swap(3, 5));
    assert_eq!(
        bad.validate(&cfg),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(5) })
    );
    // Several bad: the lowest member is named.
    let bad = forge_qc(&qc, |p| {
        p.sigs[6] = flip(&p.sigs[6]);
        p.sigs[4] = flip(&p.sigs[4]);
    });
    assert_eq!(
        bad.validate(&cfg),
        Err(ValidationError::BadSignature { kind: K_QC, signer: NodeId(6) })
    );
}
