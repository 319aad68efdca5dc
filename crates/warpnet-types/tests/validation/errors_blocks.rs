//! Every error path of blocks, proposals and blocks' health records, each with its exact
//! error.

use crate::builders::*;

pub(crate) fn block_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let b2 = &c.b2;

    let b = forge_block(b2, |p| p.epoch = Epoch(3));
    seen.check(
        "block of another epoch",
        b.validate(cfg),
        ValidationError::WrongEpoch { kind: K_BLOCK, expected: Epoch(1), got: Epoch(3) },
    );
    let b = forge_block(b2, |p| p.proposer = NodeId(4));
    seen.check(
        "block by a non-member",
        b.validate(cfg),
        ValidationError::UnknownNode { kind: K_BLOCK, id: NodeId(4), total: 4 },
    );

    seen.check(
        "the genesis block itself",
        Block::genesis(cfg).validate(cfg),
        ValidationError::GenesisShape,
    );
    let b = forge_block(&c.b1, |p| p.round = Round(0));
    seen.check("a round-0 block", b.validate(cfg), ValidationError::GenesisShape);
    let b = forge_block(b2, |p| p.height = Height(0));
    seen.check("a height-0 block", b.validate_shape(cfg), ValidationError::GenesisShape);

    let b = forge_block(b2, |p| p.round = Round(1));
    seen.check(
        "block justified by a QC of its own round",
        b.validate(cfg),
        ValidationError::JustifyNotLower { round: Round(1), justify_round: Round(1) },
    );
    let b = Block::new(cfg.epoch(), Round(1), Height(3), NodeId(1), c.qc2.clone(), 0, vec![]);
    seen.check(
        "block justified by a QC of a later round",
        b.validate(cfg),
        ValidationError::JustifyNotLower { round: Round(1), justify_round: Round(2) },
    );

    let b = forge_block(b2, |p| p.parent = c.b3.id());
    seen.check(
        "parent is not the certified block",
        b.validate(cfg),
        ValidationError::ParentMismatch { parent: c.b3.id(), justify: c.b1.id() },
    );
    let b = forge_block(&c.b1, |p| p.parent = cfg.digest());
    seen.check(
        "parent named after the config instead of genesis",
        b.validate(cfg),
        ValidationError::ParentMismatch { parent: cfg.digest(), justify: Block::genesis(cfg).id() },
    );

    // The justifying QC's shape is part of the block's shape...
    let weak = qc_of(cfg, &c.qc1_votes[..2]);
    let b = forge_block(b2, |p| p.justify = weak);
    seen.check(
        "block justified by a QC without quorum",
        b.validate_shape(cfg),
        ValidationError::NoQuorum { kind: K_QC, got: 2, need: 3 },
    );
    let fake_genesis = forge_qc(&c.genesis_qc, |p| p.block = Digest([9; 32]));
    let b = Block::new(cfg.epoch(), Round(1), Height(1), NodeId(1), fake_genesis, 0, vec![]);
    seen.check("block on a fake genesis", b.validate(cfg), ValidationError::NotGenesis);

    // ...its signatures only of the full validation.
    let bad_sig = forge_qc(&c.qc1, |p| p.sigs[1] = flip(&p.sigs[1]));
    let b = forge_block(b2, |p| p.justify = bad_sig);
    assert_eq!(b.validate_shape(cfg), Ok(()));
    seen.check(
        "block justified by a QC with a bad signature",
        b.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(1) },
    );
}

pub(crate) fn proposal_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let sign = |b: &Block, tc: Option<&TimeoutCertificate>| {
        Proposal::sign(cfg, b.clone(), tc.cloned(), signer(&c.signers, b.proposer().0))
    };

    // P2: the round must follow the QC's round, or the TC's.
    seen.check(
        "round 3 justified by a round-1 QC and no TC",
        sign(&c.b3, None).validate(cfg),
        ValidationError::NoJustification { round: Round(3), qc_round: Round(1) },
    );
    let b4 = block(cfg, 4, &c.qc2);
    seen.check(
        "round 4 carrying the TC of round 2",
        sign(&b4, Some(&c.tc2)).validate(cfg),
        ValidationError::TcRound { round: Round(4), tc_round: Round(2) },
    );
    // P2 with S1c: after TC(2), whose highest QC round is 1, a block on the genesis QC is stale.
    seen.check(
        "round 3 after TC(2) extending a QC below the TC's highest",
        sign(&block(cfg, 3, &c.genesis_qc), Some(&c.tc2)).validate_shape(cfg),
        ValidationError::StaleHighQc { qc_round: Round(0), tc_max: c.tc2.max_high_qc_round() },
    );
    // A timeout message carries the TC of the round before the timeout's, or none.
    let msg = warpnet_types::TimeoutMsg {
        timeout: c.tc2_timeouts[0].clone(),
        last_round_tc: Some(c.tc2.clone()),
    };
    seen.check(
        "timeout of round 2 carrying TC(2)",
        msg.validate(cfg),
        ValidationError::TimeoutTcRound { round: Round(2), tc_round: Round(2) },
    );
    let ok = warpnet_types::TimeoutMsg { timeout: c.tc2_timeouts[0].clone(), last_round_tc: None };
    assert_eq!(ok.validate(cfg), Ok(()));
    // A QC and a TC of round 2 may both justify round 3.
    assert_eq!(sign(&block(cfg, 3, &c.qc2), Some(&c.tc2)).validate(cfg), Ok(()));
    seen.check(
        "round 2 carrying an (irrelevant) TC of round 2",
        sign(&c.b2, Some(&c.tc2)).validate_shape(cfg),
        ValidationError::TcRound { round: Round(2), tc_round: Round(2) },
    );

    // The block's and the TC's shapes are part of the proposal's.
    let b = forge_block(&c.b2, |p| p.epoch = Epoch(7));
    seen.check(
        "proposal of a block of another epoch",
        sign(&b, None).validate(cfg),
        ValidationError::WrongEpoch { kind: K_BLOCK, expected: Epoch(1), got: Epoch(7) },
    );
    let weak_tc = tc_of(cfg, &c.tc2_timeouts[1..]);
    seen.check(
        "proposal carrying a TC without quorum",
        sign(&c.b3, Some(&weak_tc)).validate(cfg),
        ValidationError::NoQuorum { kind: K_TC, got: 2, need: 3 },
    );

    // The proposer's signature, and it must be the proposer's.
    let p = Proposal::sign(cfg, c.b2.clone(), None, signer(&c.signers, 1));
    seen.check(
        "proposal signed by someone else than its proposer",
        p.validate(cfg),
        ValidationError::BadSignature { kind: K_PROPOSAL, signer: NodeId(2) },
    );
    let mut p = sign(&c.b2, None);
    p.block = forge_block(&c.b2, |p| p.height = Height(20));
    seen.check(
        "proposal whose block was changed after signing",
        p.validate(cfg),
        ValidationError::BadSignature { kind: K_PROPOSAL, signer: NodeId(2) },
    );
    let b = forge_block(&c.b2, |p| p.proposer = NodeId(4));
    let p = Proposal::sign(cfg, b, None, signer(&c.signers, 0));
    seen.check(
        "validate_signature of a proposal by a non-member",
        p.validate_signature(cfg),
        ValidationError::UnknownNode { kind: K_PROPOSAL, id: NodeId(4), total: 4 },
    );
    seen.check(
        "validate of a proposal by a non-member stops at the block",
        p.validate(cfg),
        ValidationError::UnknownNode { kind: K_BLOCK, id: NodeId(4), total: 4 },
    );

    // Full validation reaches the QC's and the TC's signatures.
    let bad_qc = forge_qc(&c.qc1, |p| p.sigs[1] = flip(&p.sigs[1]));
    let b = forge_block(&c.b2, |p| p.justify = bad_qc);
    let p = sign(&b, None);
    assert_eq!(p.validate_shape(cfg), Ok(()));
    assert_eq!(p.validate_signature(cfg), Ok(()));
    seen.check(
        "proposal whose QC has a bad signature",
        p.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(1) },
    );
    let mut sigs: Vec<Signature> = c.tc2_timeouts.iter().map(|t| t.signature).collect();
    sigs[1] = flip(&sigs[1]);
    let bad_tc = TimeoutCertificate::from_parts(
        Epoch(1),
        Round(2),
        c.tc2.signers().clone(),
        c.tc2.high_qc_rounds().to_vec(),
        sigs,
        c.tc2.high_qc().clone(),
    );
    let p = sign(&c.b3, Some(&bad_tc));
    assert_eq!(p.validate_shape(cfg), Ok(()));
    seen.check(
        "proposal whose TC has a bad signature",
        p.validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(1) },
    );
}

/// H1, H2, LR2, H4: a block's health records are part of its shape.
pub(crate) fn health_errors(c: &Chain, seen: &mut Seen) {
    use warpnet_types::health::{Attestation, BlockHealth, HealthSummary, LateVotes};
    let cfg = &c.config;
    let with = |h: BlockHealth| c.b2.clone().with_health(h);
    let failed = BlockHealth { failed: vec![(NodeId(2), 1), (NodeId(1), 1)], ..Default::default() };
    seen.check(
        "blame out of order",
        with(failed).validate(cfg),
        ValidationError::FailedRounds { id: NodeId(1), count: 1, total: 4 },
    );
    let summary = HealthSummary {
        window_end: Height(0),
        window_blocks: 0,
        fallback: false,
        members: Vec::new(),
    };
    let h = BlockHealth { summary: Some(summary), ..Default::default() };
    seen.check(
        "a summary without the committee's members",
        with(h).validate_shape(cfg),
        ValidationError::SummaryMembers { got: 0, total: 4 },
    );
    let sig = c.qc1_votes[0].signature;
    let late = LateVotes {
        round: Round(1),
        block_id: c.b1.id(),
        votes: vec![(NodeId(3), sig), (NodeId(3), sig)],
    };
    let h = BlockHealth { late: Some(late), ..Default::default() };
    seen.check(
        "a late voter twice",
        with(h).validate_shape(cfg),
        ValidationError::LateVoter { id: NodeId(3), total: 4 },
    );
    let mut reached = VoterBitmap::empty(4);
    reached.insert(NodeId(1));
    let a = Attestation::sign(cfg, NodeId(1), 0, reached, c.signers[1].as_ref());
    let h = BlockHealth { attestations: vec![a], ..Default::default() };
    seen.check(
        "a member attesting itself",
        with(h).validate_shape(cfg),
        ValidationError::Attester { id: NodeId(1), total: 4 },
    );
}
