//! Ed25519 via `ed25519-dalek`: strict single verification and deterministic batch verification.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::{CryptoError, PublicKey, SchemeId, Signature, SignatureScheme, SignedItem, Signer};

/// Ed25519 verification.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519Scheme;

/// Decompressed keys kept per thread: [`KEYS_CACHED_MAX`] at most, forgotten all at once when
/// full. The keys verified here are the committee's and the operators' (claims go through
/// `zip215`), a few hundred at most, checked on every vote, proposal, certificate and health
/// record; decompressing one (a field exponentiation) is about a fifth of a verification.
const KEYS_CACHED_MAX: usize = 2_048;

std::thread_local! {
    static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The key, decompressed and checked; `MalformedPublicKey` for a non-point or a weak
/// (small-order) key. Only accepted keys are cached, and a cached key is exactly what
/// decompressing the same 32 bytes gives: the verdicts never depend on the cache.
fn verifying_key(key: &PublicKey) -> Result<VerifyingKey, CryptoError> {
    if let Some(vk) = KEYS.with(|k| k.borrow().get(&key.0).copied()) {
        return Ok(vk);
    }
    let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| CryptoError::MalformedPublicKey)?;
    if vk.is_weak() {
        return Err(CryptoError::MalformedPublicKey);
    }
    KEYS.with(|k| {
        let mut k = k.borrow_mut();
        if k.len() >= KEYS_CACHED_MAX {
            k.clear();
        }
        k.insert(key.0, vk);
    });
    Ok(vk)
}

impl SignatureScheme for Ed25519Scheme {
    fn id(&self) -> SchemeId {
        SchemeId::Ed25519
    }

    fn check_public_key(&self, key: &PublicKey) -> Result<(), CryptoError> {
        verifying_key(key).map(|_| ())
    }

    fn verify(&self, item: SignedItem<'_>) -> Result<(), CryptoError> {
        let vk = verifying_key(item.key)?;
        let sig = ed25519_dalek::Signature::from_bytes(&item.signature.0);
        // verify_strict: rejects small-order keys and non-canonical encodings, so a signature is
        // valid on every node or on none.
        vk.verify_strict(item.message, &sig).map_err(|_| CryptoError::BadSignature)
    }

    fn verify_batch(&self, items: &[SignedItem<'_>]) -> Result<(), CryptoError> {
        let failed = CryptoError::BatchFailed { count: items.len() };
        // The batch equation accepts a small-order R, which `verify_strict` refuses; refuse the
        // batch (the caller then verifies one by one and names the culprit) so that a signature
        // never counts inside a certificate when it would not count alone. A cheap check: one
        // point decompression per signature, against a full verification.
        //
        // Residual difference, documented in docs/architecture.md: an R with a small-order
        // *component* (mixed order) fails `verify_strict` but may pass the batch. Only the
        // signer's own slot is affected and the verdict is deterministic for a given set of
        // signatures, so every node still reaches the same verdict on a certificate.
        if items.iter().any(|i| small_order_r(i.signature)) {
            return Err(failed);
        }
        let keys = items.iter().map(|i| verifying_key(i.key)).collect::<Result<Vec<_>, _>>()?;
        let msgs: Vec<&[u8]> = items.iter().map(|i| i.message).collect();
        let sigs: Vec<ed25519_dalek::Signature> =
            items.iter().map(|i| ed25519_dalek::Signature::from_bytes(&i.signature.0)).collect();
        // dalek's batch derives its coefficients from a transcript of the inputs: deterministic.
        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).map_err(|_| failed)
    }
}

fn small_order_r(sig: &Signature) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig.0[..32]);
    CompressedEdwardsY(r).decompress().is_none_or(|p| p.is_small_order())
}

/// An Ed25519 secret key.
pub struct Ed25519Signer {
    key: SigningKey,
}

impl Ed25519Signer {
    /// From the 32-byte secret (RFC 8032 seed). The node generates it from the OS's randomness.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self { key: SigningKey::from_bytes(&secret) }
    }

    /// The 32-byte secret, for writing the key file.
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

impl std::fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Signer({:?})", self.public_key())
    }
}

impl Signer for Ed25519Signer {
    fn scheme(&self) -> SchemeId {
        SchemeId::Ed25519
    }

    fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.key.sign(message).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item<'a>(key: &'a PublicKey, message: &'a [u8], signature: &'a Signature) -> SignedItem<'a> {
        SignedItem { key, message, signature }
    }

    /// The decompressed-key cache changes how often a key is decompressed, never a verdict: a
    /// cached key still refuses a forged signature, a refused key is refused every time (it is
    /// never cached), and the cache stays within its bound.
    #[test]
    fn cached_keys_give_the_verdicts_of_fresh_ones() {
        let scheme = Ed25519Scheme;
        let signer = Ed25519Signer::from_secret([7; 32]);
        let key = signer.public_key();
        let good = signer.sign(b"vote");
        let mut forged = good;
        forged.0[40] ^= 1;
        for _ in 0..3 {
            assert_eq!(scheme.verify(item(&key, b"vote", &good)), Ok(()));
            assert_eq!(scheme.verify(item(&key, b"vote", &forged)), Err(CryptoError::BadSignature));
            assert_eq!(scheme.verify(item(&key, b"other", &good)), Err(CryptoError::BadSignature));
            let batch = [item(&key, b"vote", &good), item(&key, b"vote", &forged)];
            assert!(scheme.verify_batch(&batch).is_err());
            assert_eq!(scheme.verify_batch(&[item(&key, b"vote", &good)]), Ok(()));
        }
        // The identity (all zeros but y = 1) is a small-order point: weak, refused each time.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let weak = PublicKey(weak);
        for _ in 0..3 {
            assert_eq!(scheme.check_public_key(&weak), Err(CryptoError::MalformedPublicKey));
            assert_eq!(
                scheme.verify(item(&weak, b"vote", &good)),
                Err(CryptoError::MalformedPublicKey)
            );
        }
        assert!(KEYS.with(|k| !k.borrow().contains_key(&weak.0)));
        // Past the bound the cache starts again; verdicts are unchanged.
        for i in 0..(KEYS_CACHED_MAX + 10) as u32 {
            let mut secret = [0u8; 32];
            secret[..4].copy_from_slice(&i.to_le_bytes());
            let k = Ed25519Signer::from_secret(secret).public_key();
            assert_eq!(scheme.check_public_key(&k), Ok(()));
        }
        assert!(KEYS.with(|k| k.borrow().len()) <= KEYS_CACHED_MAX);
        assert_eq!(scheme.verify(item(&key, b"vote", &good)), Ok(()));
        assert_eq!(scheme.verify(item(&key, b"vote", &forged)), Err(CryptoError::BadSignature));
    }
}
