//! A node's memory of claim verdicts, so each claim's signature is checked once per node.
//!
//! Sound because a verdict is a pure function of what it is keyed by (owner key, signature,
//! signed bytes: see `claim::verify_claims`): a verdict found here is exactly the one a fresh
//! check would give, so no node's state can depend on what it happened to see before. Bounded:
//! two generations of at most `generation_max` entries each; when the newer fills up, the
//! older is dropped. A forgotten verdict is computed again, never guessed.

use std::collections::HashMap;

use warpnet_types::Digest;

use crate::claim::ClaimError;

/// Verdicts kept per generation by default: more than the claims a node holds between a
/// claim's admission and its block's commit under the heaviest load measured (a few thousand),
/// at about 50 bytes each (two generations: ~6 MiB at most).
pub const VERDICTS_PER_GENERATION: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Valid,
    BadKey,
    BadSignature,
}

/// Claim verdicts by claim digest, bounded (see the module's doc).
#[derive(Debug)]
pub struct VerdictCache {
    current: HashMap<Digest, Verdict>,
    previous: HashMap<Digest, Verdict>,
    generation_max: usize,
    hits: u64,
    misses: u64,
}

impl Default for VerdictCache {
    fn default() -> Self {
        Self::new(VERDICTS_PER_GENERATION)
    }
}

impl VerdictCache {
    /// A cache of at most `2 × generation_max` verdicts.
    pub fn new(generation_max: usize) -> Self {
        Self {
            current: HashMap::new(),
            previous: HashMap::new(),
            generation_max: generation_max.max(1),
            hits: 0,
            misses: 0,
        }
    }

    pub(crate) fn get(&mut self, key: &Digest) -> Option<Result<(), ClaimError>> {
        let found = self.current.get(key).or_else(|| self.previous.get(key)).copied();
        match found {
            Some(v) => {
                self.hits += 1;
                Some(match v {
                    Verdict::Valid => Ok(()),
                    Verdict::BadKey => Err(ClaimError::BadKey),
                    Verdict::BadSignature => Err(ClaimError::BadSignature),
                })
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Remembers a signature verdict; other results (a malformed request id) are not verdicts
    /// on the signature and are not kept.
    pub(crate) fn insert(&mut self, key: Digest, verdict: &Result<(), ClaimError>) {
        let v = match verdict {
            Ok(()) => Verdict::Valid,
            Err(ClaimError::BadKey) => Verdict::BadKey,
            Err(ClaimError::BadSignature) => Verdict::BadSignature,
            Err(_) => return,
        };
        if self.current.len() >= self.generation_max {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, v);
    }

    /// Verdicts held now.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Claims answered from the cache, and claims that needed a check, since the start.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}
