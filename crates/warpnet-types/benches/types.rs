//! Benchmarks of the hot paths in warpnet-types:
//!
//! - `qc_validate/{batch,one_by_one}/n`: validating a QC of a quorum (`n - f`) of Ed25519
//!   signatures, with `QuorumCertificate::validate` (one batch verification) against verifying
//!   each signature alone with `verify` (strict).
//! - `block_id/cmds` and `block_to_bytes/cmds`: building a block (canonical encoding + SHA-256
//!   of it, which is its id) and encoding it, for payloads of 0, 100 and 1000 commands of 100
//!   bytes.
//!
//! - `zip215_batch/n`: verifying `n` claim-like signatures (distinct keys, 80-byte messages)
//!   in one ZIP-215 batch (`crypto::zip215::verify_batch`), as the node's claim verifier does;
//!   the throughput is per signature, so the rows show what a larger batch saves.
//!
//! Run: `cargo bench -p warpnet-types --bench types` (about a minute), or add `-- --quick`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use warpnet_types::certs::vote_signing_bytes;
use warpnet_types::crypto::{zip215, Ed25519Signer, SignedItem};
use warpnet_types::{
    Block, ConsensusConfig, Encode, Epoch, Height, NodeId, QuorumCertificate, Round, SchemeId, Vote,
};

/// A committee of `n` and a QC of its first `n - f` members on a round-1 block.
fn qc_fixture(n: usize) -> (ConsensusConfig, QuorumCertificate) {
    let (config, signers) =
        ConsensusConfig::for_testing(n, SchemeId::Ed25519, 1).expect("test committee");
    let genesis = QuorumCertificate::genesis(&config);
    let block =
        Block::new(config.epoch(), Round(1), Height(1), NodeId(1), genesis, 0, vec![vec![7; 100]]);
    let votes: Vec<Vote> = signers
        .iter()
        .take(config.quorum_threshold())
        .enumerate()
        .map(|(i, s)| {
            let id = NodeId(u16::try_from(i).expect("small committee"));
            Vote::sign(&config, &block, id, s.as_ref())
        })
        .collect();
    let refs: Vec<&Vote> = votes.iter().collect();
    let qc = QuorumCertificate::from_votes(&config, &refs).expect("distinct voters");
    qc.validate(&config).expect("a valid QC");
    (config, qc)
}

/// What `validate` replaces: each signature verified alone, with the same signed bytes.
fn verify_one_by_one(config: &ConsensusConfig, qc: &QuorumCertificate) {
    let scheme = SchemeId::Ed25519.scheme();
    let message = vote_signing_bytes(config.network(), qc.epoch(), qc.round(), qc.block_id());
    for (id, signature) in qc.voters().iter().zip(qc.signatures()) {
        let key = config.public_key(id).expect("member");
        scheme.verify(SignedItem { key, message: &message, signature }).expect("valid signature");
    }
}

fn qc_validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("qc_validate");
    for n in [4usize, 7, 100] {
        let (config, qc) = qc_fixture(n);
        group.throughput(Throughput::Elements(qc.signatures().len() as u64));
        group.bench_with_input(BenchmarkId::new("batch", n), &n, |b, _| {
            b.iter(|| black_box(&qc).validate(black_box(&config)).expect("valid"));
        });
        group.bench_with_input(BenchmarkId::new("one_by_one", n), &n, |b, _| {
            b.iter(|| verify_one_by_one(black_box(&config), black_box(&qc)));
        });
    }
    group.finish();
}

fn block_encode_hash(c: &mut Criterion) {
    let (config, qc) = qc_fixture(7); // a realistic justify: 5 signatures
    let mut id_group = c.benchmark_group("block_id");
    let blocks: Vec<(usize, Block)> = [0usize, 100, 1000]
        .into_iter()
        .map(|cmds| {
            let payload: Vec<Vec<u8>> = (0..cmds).map(|i| vec![(i % 251) as u8; 100]).collect();
            let block = Block::with_parent(
                config.epoch(),
                Round(2),
                Height(2),
                qc.block_id(),
                NodeId(2),
                qc.clone(),
                1_700_000_000_000,
                payload,
            );
            (cmds, block)
        })
        .collect();
    for (cmds, block) in &blocks {
        let bytes = block.to_bytes().len() as u64;
        id_group.throughput(Throughput::Bytes(bytes));
        // Block::with_parent = canonical encoding + SHA-256 (the id). Its inputs are cloned
        // outside the measurement.
        id_group.bench_with_input(BenchmarkId::from_parameter(cmds), cmds, |b, _| {
            b.iter_batched(
                || (block.justify().clone(), block.payload().clone()),
                |(justify, payload)| {
                    Block::with_parent(
                        Epoch(1),
                        Round(2),
                        Height(2),
                        justify.block_id(),
                        NodeId(2),
                        justify,
                        1_700_000_000_000,
                        payload,
                    )
                },
                BatchSize::SmallInput,
            );
        });
    }
    id_group.finish();

    let mut enc_group = c.benchmark_group("block_to_bytes");
    for (cmds, block) in &blocks {
        enc_group.throughput(Throughput::Bytes(block.to_bytes().len() as u64));
        enc_group.bench_with_input(BenchmarkId::from_parameter(cmds), cmds, |b, _| {
            b.iter(|| black_box(block).to_bytes());
        });
    }
    enc_group.finish();
}

/// `n` signatures by `n` distinct keys: every claim's key is new to the batch, as with real
/// users (one key per ID), so each costs its own key and R decompressions.
fn zip215_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("zip215_batch");
    for n in [1usize, 8, 32, 128, 512] {
        let signed: Vec<(warpnet_types::PublicKey, Vec<u8>, warpnet_types::Signature)> = (0..n)
            .map(|i| {
                let mut secret = [9u8; 32];
                secret[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let signer = Ed25519Signer::from_secret(secret);
                let message = format!("claim {i:074}").into_bytes();
                let signature = warpnet_types::Signer::sign(&signer, &message);
                (warpnet_types::Signer::public_key(&signer), message, signature)
            })
            .collect();
        let items: Vec<SignedItem<'_>> = signed
            .iter()
            .map(|(key, message, signature)| SignedItem { key, message, signature })
            .collect();
        zip215::verify_batch(&items).expect("valid signatures");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| zip215::verify_batch(black_box(&items)).expect("valid"))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = qc_validation, block_encode_hash, zip215_batch
}
criterion_main!(benches);
