//! Every error path of votes, quorum certificates, timeouts and timeout certificates, each
//! with its exact error.

use crate::builders::*;

pub(crate) fn vote_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let good = c.qc1_votes[1].clone();

    let mut v = good.clone();
    v.epoch = Epoch(2);
    seen.check(
        "vote of another epoch",
        v.validate(cfg),
        ValidationError::WrongEpoch { kind: K_VOTE, expected: Epoch(1), got: Epoch(2) },
    );
    seen.check(
        "validate_shape checks the epoch too",
        v.validate_shape(cfg),
        ValidationError::WrongEpoch { kind: K_VOTE, expected: Epoch(1), got: Epoch(2) },
    );

    for id in [4, 5, u16::MAX] {
        let mut v = good.clone();
        v.voter = NodeId(id);
        seen.check(
            "vote by a non-member",
            v.validate(cfg),
            ValidationError::UnknownNode { kind: K_VOTE, id: NodeId(id), total: 4 },
        );
    }

    // Member 2 claims a vote that member 1 signed.
    let mut v = good.clone();
    v.voter = NodeId(2);
    seen.check(
        "vote signed by another member",
        v.validate(cfg),
        ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(2) },
    );
    let mut v = good.clone();
    v.round = Round(2);
    seen.check(
        "vote whose round was changed after signing",
        v.validate(cfg),
        ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(1) },
    );
    let mut v = good.clone();
    v.block_id = c.b2.id();
    seen.check(
        "vote whose block was changed after signing",
        v.validate(cfg),
        ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(1) },
    );
    let mut v = good;
    v.signature = flip(&v.signature);
    seen.check(
        "vote with a corrupted signature",
        v.validate(cfg),
        ValidationError::BadSignature { kind: K_VOTE, signer: NodeId(1) },
    );
}

pub(crate) fn qc_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let qc1 = &c.qc1;

    let qc = forge_qc(qc1, |p| p.epoch = Epoch(0));
    seen.check(
        "QC of another epoch",
        qc.validate(cfg),
        ValidationError::WrongEpoch { kind: K_QC, expected: Epoch(1), got: Epoch(0) },
    );

    // Round 0 is reserved for this committee's genesis certificate.
    let qc = forge_qc(qc1, |p| p.round = Round(0));
    seen.check("round-0 QC with signatures", qc.validate(cfg), ValidationError::NotGenesis);
    let qc = forge_qc(&c.genesis_qc, |p| p.block = c.b1.id());
    seen.check("round-0 QC for another block", qc.validate(cfg), ValidationError::NotGenesis);
    let qc = forge_qc(&c.genesis_qc, |p| {
        p.voters = bitmap(4, &[0b0111]);
        p.sigs = c.qc1.signatures().to_vec();
    });
    seen.check("genesis QC carrying votes", qc.validate_shape(cfg), ValidationError::NotGenesis);
    let (other_net, _) = committee_on("other", 4);
    seen.check(
        "another network's genesis QC",
        QuorumCertificate::genesis(&other_net).validate(cfg),
        ValidationError::NotGenesis,
    );
    seen.check(
        "another epoch's genesis QC",
        QuorumCertificate::genesis(&committee_in_epoch(2, 4)).validate(cfg),
        ValidationError::WrongEpoch { kind: K_QC, expected: Epoch(1), got: Epoch(2) },
    );

    // Bitmap: exactly (n+7)/8 bytes, no bit at or above n.
    let qc = forge_qc(qc1, |p| p.voters = bitmap(16, &[0b0111, 0]));
    seen.check(
        "bitmap one byte too long",
        qc.validate(cfg),
        ValidationError::Bitmap {
            kind: K_QC,
            source: BitmapError::WrongLength { total: 4, expected: 1, got: 2 },
        },
    );
    let qc = forge_qc(qc1, |p| p.voters = VoterBitmap::empty(0));
    seen.check(
        "empty bitmap",
        qc.validate(cfg),
        ValidationError::Bitmap {
            kind: K_QC,
            source: BitmapError::WrongLength { total: 4, expected: 1, got: 0 },
        },
    );
    let qc = forge_qc(qc1, |p| p.voters = bitmap(8, &[0b0001_0011]));
    seen.check(
        "bit 4 set in a committee of 4",
        qc.validate(cfg),
        ValidationError::Bitmap {
            kind: K_QC,
            source: BitmapError::BitOutOfRange { bit: 4, total: 4 },
        },
    );
    let qc = forge_qc(qc1, |p| p.voters = bitmap(8, &[0b1000_0111]));
    seen.check(
        "bit 7 set in a committee of 4",
        qc.validate(cfg),
        ValidationError::Bitmap {
            kind: K_QC,
            source: BitmapError::BitOutOfRange { bit: 7, total: 4 },
        },
    );

    let qc = forge_qc(qc1, |p| {
        p.sigs.pop();
    });
    seen.check(
        "a signature missing",
        qc.validate(cfg),
        ValidationError::SignatureCount { kind: K_QC, voters: 3, signatures: 2 },
    );
    let qc = forge_qc(qc1, |p| p.sigs.push(p.sigs[0]));
    seen.check(
        "a signature too many",
        qc.validate(cfg),
        ValidationError::SignatureCount { kind: K_QC, voters: 3, signatures: 4 },
    );

    seen.check(
        "two votes where three are a quorum",
        qc_of(cfg, &c.qc1_votes[..2]).validate(cfg),
        ValidationError::NoQuorum { kind: K_QC, got: 2, need: 3 },
    );
    let qc = forge_qc(qc1, |p| {
        p.voters = VoterBitmap::empty(4);
        p.sigs.clear();
    });
    seen.check(
        "no votes at all",
        qc.validate(cfg),
        ValidationError::NoQuorum { kind: K_QC, got: 0, need: 3 },
    );

    // Signatures checked against the QC's own (round, block): changing either breaks them all,
    // and the error names the first signer in bitmap order.
    let qc = forge_qc(qc1, |p| p.round = Round(5));
    seen.check(
        "QC whose round was changed",
        qc.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) },
    );
    let qc = forge_qc(qc1, |p| p.block = c.b2.id());
    seen.check(
        "QC moved to another block",
        qc.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) },
    );
    assert_eq!(qc.validate_shape(cfg), Ok(()), "shape alone does not check signatures");
    let qc = forge_qc(qc1, |p| p.sigs[2] = flip(&p.sigs[2]));
    seen.check(
        "the third signature corrupted",
        qc.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(2) },
    );
}

pub(crate) fn timeout_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let good = c.tc2_timeouts[0].clone(); // member 0, round 2, high QC qc1

    let mut t = good.clone();
    t.epoch = Epoch(2);
    seen.check(
        "timeout of another epoch",
        t.validate(cfg),
        ValidationError::WrongEpoch { kind: K_TIMEOUT, expected: Epoch(1), got: Epoch(2) },
    );
    let mut t = good.clone();
    t.signer = NodeId(9);
    seen.check(
        "timeout by a non-member",
        t.validate(cfg),
        ValidationError::UnknownNode { kind: K_TIMEOUT, id: NodeId(9), total: 4 },
    );

    let t = Timeout::sign(cfg, Round(1), c.qc1.clone(), NodeId(0), signer(&c.signers, 0));
    seen.check(
        "timeout whose high QC is of its own round",
        t.validate(cfg),
        ValidationError::HighQcNotLower {
            kind: K_TIMEOUT,
            round: Round(1),
            high_qc_round: Round(1),
        },
    );
    let t = Timeout::sign(cfg, Round(1), c.qc2.clone(), NodeId(0), signer(&c.signers, 0));
    seen.check(
        "timeout whose high QC is of a later round",
        t.validate_shape(cfg),
        ValidationError::HighQcNotLower {
            kind: K_TIMEOUT,
            round: Round(1),
            high_qc_round: Round(2),
        },
    );

    let weak = qc_of(cfg, &c.qc1_votes[..1]);
    let t = Timeout::sign(cfg, Round(2), weak, NodeId(0), signer(&c.signers, 0));
    seen.check(
        "timeout whose high QC has no quorum",
        t.validate(cfg),
        ValidationError::NoQuorum { kind: K_QC, got: 1, need: 3 },
    );

    let mut t = good.clone();
    t.signer = NodeId(2);
    seen.check(
        "timeout signed by another member",
        t.validate(cfg),
        ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(2) },
    );
    let mut t = good.clone();
    t.round = Round(3);
    seen.check(
        "timeout whose round was changed after signing",
        t.validate(cfg),
        ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(0) },
    );
    // The signature covers the high QC's round: claiming a higher QC afterwards breaks it.
    let mut t = c.tc2_timeouts[2].clone(); // member 3, signed with the genesis QC (round 0)
    t.high_qc = c.qc1.clone();
    seen.check(
        "timeout whose high QC was swapped after signing",
        t.validate(cfg),
        ValidationError::BadSignature { kind: K_TIMEOUT, signer: NodeId(3) },
    );
    assert_eq!(t.validate_shape(cfg), Ok(()));

    let bad_qc = forge_qc(&c.qc1, |p| p.sigs[0] = flip(&p.sigs[0]));
    let t = Timeout::sign(cfg, Round(2), bad_qc, NodeId(1), signer(&c.signers, 1));
    assert_eq!(t.validate_signature(cfg), Ok(()));
    seen.check(
        "timeout whose high QC has a bad signature",
        t.validate(cfg),
        ValidationError::BadSignature { kind: K_QC, signer: NodeId(0) },
    );
}

pub(crate) fn tc_errors(c: &Chain, seen: &mut Seen) {
    let cfg = &c.config;
    let tc = &c.tc2;
    let sigs: Vec<Signature> = c.tc2_timeouts.iter().map(|t| t.signature).collect();
    let parts =
        |epoch: u64, round: u64, signers: VoterBitmap, rounds: &[u64], sigs: &[Signature]| {
            TimeoutCertificate::from_parts(
                Epoch(epoch),
                Round(round),
                signers,
                rounds.iter().copied().map(Round).collect(),
                sigs.to_vec(),
                tc.high_qc().clone(),
            )
        };
    let signers = tc.signers().clone();
    assert_eq!(
        parts(1, 2, signers.clone(), &[1, 1, 0], &sigs),
        *tc,
        "the forge helper round-trips"
    );

    seen.check(
        "TC of another epoch",
        parts(2, 2, signers.clone(), &[1, 1, 0], &sigs).validate(cfg),
        ValidationError::WrongEpoch { kind: K_TC, expected: Epoch(1), got: Epoch(2) },
    );
    seen.check(
        "TC bitmap of the wrong length",
        parts(1, 2, bitmap(9, &[0b1011, 0]), &[1, 1, 0], &sigs).validate(cfg),
        ValidationError::Bitmap {
            kind: K_TC,
            source: BitmapError::WrongLength { total: 4, expected: 1, got: 2 },
        },
    );
    seen.check(
        "TC bitmap naming member 5",
        parts(1, 2, bitmap(8, &[0b0010_0011]), &[1, 1, 0], &sigs).validate(cfg),
        ValidationError::Bitmap {
            kind: K_TC,
            source: BitmapError::BitOutOfRange { bit: 5, total: 4 },
        },
    );
    seen.check(
        "TC with a signature missing",
        parts(1, 2, signers.clone(), &[1, 1, 0], &sigs[..2]).validate(cfg),
        ValidationError::SignatureCount { kind: K_TC, voters: 3, signatures: 2 },
    );
    seen.check(
        "TC with a high-QC round missing",
        parts(1, 2, signers.clone(), &[1, 1], &sigs).validate(cfg),
        ValidationError::HighQcRoundCount { signers: 3, rounds: 2 },
    );
    seen.check(
        "TC with a high-QC round too many",
        parts(1, 2, signers.clone(), &[1, 1, 0, 0], &sigs).validate_shape(cfg),
        ValidationError::HighQcRoundCount { signers: 3, rounds: 4 },
    );
    seen.check(
        "TC of two timeouts where three are a quorum",
        tc_of(cfg, &c.tc2_timeouts[..2]).validate(cfg),
        ValidationError::NoQuorum { kind: K_TC, got: 2, need: 3 },
    );
    seen.check(
        "TC claiming a high QC of its own round",
        parts(1, 2, signers.clone(), &[1, 2, 0], &sigs).validate(cfg),
        ValidationError::HighQcNotLower { kind: K_TC, round: Round(2), high_qc_round: Round(2) },
    );
    // The carried QC must be the one of the highest entry: a signer's round is only a number,
    // the QC proves it.
    seen.check(
        "TC whose carried QC is above every signer's claimed round",
        parts(1, 2, signers.clone(), &[0, 0, 0], &sigs).validate(cfg),
        ValidationError::TcHighQcMismatch { tc_max: Round(0), qc_round: Round(1) },
    );
    // Each signature covers its signer's high-QC round: a lie about member 1's is pinned on it.
    seen.check(
        "TC misreporting member 1's high-QC round",
        parts(1, 2, signers.clone(), &[1, 0, 0], &sigs).validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(1) },
    );
    seen.check(
        "TC misreporting member 3's high-QC round",
        parts(1, 2, signers.clone(), &[1, 1, 1], &sigs).validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(3) },
    );
    let mut bad = sigs.clone();
    bad[2] = flip(&bad[2]);
    seen.check(
        "TC with member 3's signature corrupted",
        parts(1, 2, signers.clone(), &[1, 1, 0], &bad).validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(3) },
    );
    seen.check(
        "TC moved to another round",
        parts(1, 3, signers, &[1, 1, 0], &sigs).validate(cfg),
        ValidationError::BadSignature { kind: K_TC, signer: NodeId(0) },
    );
}
