//! Ed25519 via `ed25519-dalek`: strict single verification and deterministic batch verification.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::{CryptoError, PublicKey, SchemeId, Signature, SignatureScheme, SignedItem, Signer};

/// Ed25519 verification.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519Scheme;

fn verifying_key(key: &PublicKey) -> Result<VerifyingKey, CryptoError> {
    let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| CryptoError::MalformedPublicKey)?;
    if vk.is_weak() {
        return Err(CryptoError::MalformedPublicKey);
    }
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
