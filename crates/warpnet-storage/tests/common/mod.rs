//! What the store tests share: a fresh directory per test, removed when dropped.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use warpnet_types::{
    Block, ConsensusConfig, Height, NodeId, QuorumCertificate, Round, SchemeId, Signer, Vote,
};

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "warpnet-{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// The HotStuff store's database path in it.
    pub fn db(&self) -> PathBuf {
        self.0.join("node.redb")
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test committee of 4 and its signers.
pub fn committee() -> (ConsensusConfig, Vec<Arc<dyn Signer>>) {
    let (c, s) = ConsensusConfig::for_testing(4, SchemeId::Ed25519, 11).unwrap();
    (c, s.into_iter().map(Arc::from).collect())
}

/// A certified chain of `len` blocks on genesis, with the QC of each.
pub fn chain(
    c: &ConsensusConfig,
    s: &[Arc<dyn Signer>],
    len: u64,
) -> Vec<(Block, QuorumCertificate)> {
    let mut qc = QuorumCertificate::genesis(c);
    let mut out = Vec::new();
    for h in 1..=len {
        let b = Block::new(
            c.epoch(),
            Round(h),
            Height(h),
            c.leader(Round(h)),
            qc.clone(),
            h,
            vec![vec![h as u8]],
        );
        let votes: Vec<Vote> =
            (0..3).map(|i| Vote::sign(c, &b, NodeId(i), s[i as usize].as_ref())).collect();
        qc = QuorumCertificate::from_votes(c, &votes.iter().collect::<Vec<_>>()).unwrap();
        out.push((b, qc.clone()));
    }
    out
}
