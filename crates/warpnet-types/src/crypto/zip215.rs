//! Ed25519 under ZIP-215 (via `ed25519-zebra`), for user-ID claims: a verdict that is a pure
//! function of (key, message, signature), the same in a batch as alone.
//!
//! ZIP-215 fixes the edge cases RFC 8032 leaves open: `A` and `R` may be any encoding of a
//! curve point (non-canonical ones included), `s` must be canonical (`s < ℓ`), and only the
//! cofactored equation `[8][s]B = [8]R + [8][k]A` counts. Because single and batch
//! verification both use the cofactored equation, a batch accepts exactly when every one of
//! its signatures would be accepted alone (a failing signature slips through a batch only
//! with probability ≤ 2⁻¹²⁸, by the random 128-bit coefficients). So a claim's verdict can be
//! computed once per node, in whatever batch it happened to be in, and reused: the registry's
//! state never depends on how claims were batched (rule R1 in docs/architecture.md).
//!
//! Consensus signatures (votes, proposals, timeouts, the transport's hello) stay on
//! [`super::Ed25519Scheme`] (RFC 8032 strict).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use curve25519_dalek::constants::EIGHT_TORSION;
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::{batch, VerificationKey, VerificationKeyBytes};
use sha2::{Digest as _, Sha512};

use super::{CryptoError, PublicKey, SignedItem};

/// The encodings of the eight points of small order that a canonical-`y` check lets through:
/// their canonical encodings, and the two points with `x = 0` (the identity and `(0, −1)`)
/// with the sign bit set.
fn small_order_encodings() -> &'static [[u8; 32]; 10] {
    static ENCODINGS: OnceLock<[[u8; 32]; 10]> = OnceLock::new();
    ENCODINGS.get_or_init(|| {
        let mut out = [[0u8; 32]; 10];
        for (slot, point) in out.iter_mut().zip(EIGHT_TORSION.iter()) {
            *slot = point.compress().to_bytes();
        }
        let mut identity = EIGHT_TORSION[0].compress().to_bytes();
        let mut minus_one = EIGHT_TORSION[4].compress().to_bytes();
        identity[31] |= 0x80;
        minus_one[31] |= 0x80;
        out[8] = identity;
        out[9] = minus_one;
        out
    })
}

/// Whether `bytes` (sign bit aside) hold a `y` below p = 2²⁵⁵ − 19.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    // y ≥ p only when bits 0..255 are all ones from bit 5 up, i.e. bytes 1..31 are 0xff
    // (byte 31 without its sign bit 0x7f) and byte 0 is at least 0xed (p's lowest byte).
    !(bytes[1..31].iter().all(|&b| b == 0xff) && bytes[31] & 0x7f == 0x7f && bytes[0] >= 0xed)
}

/// A claim's owner key must be a canonical encoding of a point that is not of small order.
/// A small-order key would let anyone sign for it (its `[8][k]A` term vanishes), and a
/// non-canonical one is a second spelling of a key someone may already hold. A cheap byte
/// check: a key that is not a curve point at all fails every signature check (see
/// [`classify_failure`]).
pub fn check_owner_key(key: &PublicKey) -> Result<(), CryptoError> {
    if !canonical_y(&key.0) || small_order_encodings().contains(&key.0) {
        return Err(CryptoError::MalformedPublicKey);
    }
    Ok(())
}

/// Why a signature that failed verification failed: a key that is no curve point is the key's
/// fault, anything else the signature's. Only called on failures, so the common path never
/// decompresses the key twice.
pub fn classify_failure(key: &PublicKey) -> CryptoError {
    match CompressedEdwardsY(key.0).decompress() {
        Some(_) => CryptoError::BadSignature,
        None => CryptoError::MalformedPublicKey,
    }
}

fn zebra_signature(sig: &super::Signature) -> ed25519_zebra::Signature {
    ed25519_zebra::Signature::from_bytes(&sig.0)
}

/// Verifies one signature under ZIP-215 (no key policy: see [`check_owner_key`]).
pub fn verify(item: SignedItem<'_>) -> Result<(), CryptoError> {
    let key = VerificationKey::try_from(item.key.0).map_err(|_| CryptoError::MalformedPublicKey)?;
    key.verify(&zebra_signature(item.signature), item.message)
        .map_err(|_| CryptoError::BadSignature)
}

/// Verifies all items at once under ZIP-215: `Ok` exactly when [`verify`] accepts each of them
/// (up to the 2⁻¹²⁸ chance above). On `Err` the caller checks them alone to find the culprits.
pub fn verify_batch(items: &[SignedItem<'_>]) -> Result<(), CryptoError> {
    let failed = CryptoError::BatchFailed { count: items.len() };
    let mut verifier = batch::Verifier::new();
    for item in items {
        let key = VerificationKeyBytes::from(item.key.0);
        verifier.queue((key, zebra_signature(item.signature), item.message));
    }
    let rng = BatchRng::new().ok_or_else(|| failed.clone())?;
    verifier.verify(rng).map_err(|_| failed)
}

/// The batch's random coefficients: SHA-512 of a per-process secret from the operating system
/// and a counter (never repeated within the process). Unpredictable to whoever crafts the
/// signatures, which is all the batch equation needs; `None` if the OS gives no randomness
/// (the caller then verifies one by one, which needs none).
struct BatchRng {
    block: [u8; 64],
    used: usize,
}

fn process_secret() -> Option<&'static [u8; 32]> {
    static SECRET: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    SECRET
        .get_or_init(|| {
            let mut s = [0u8; 32];
            getrandom::fill(&mut s).ok().map(|()| s)
        })
        .as_ref()
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl BatchRng {
    fn new() -> Option<Self> {
        process_secret()?;
        Some(Self { block: [0; 64], used: 64 })
    }

    fn refill(&mut self) {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut h = Sha512::new();
        h.update(b"warpnet/zip215-batch");
        // `new` checked the secret is there; an all-zero secret is never used.
        h.update(process_secret().unwrap_or(&[0; 32]));
        h.update(n.to_le_bytes());
        self.block.copy_from_slice(&h.finalize());
        self.used = 0;
    }
}

impl rand_core::RngCore for BatchRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest {
            if self.used == self.block.len() {
                self.refill();
            }
            *byte = self.block[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for BatchRng {}
