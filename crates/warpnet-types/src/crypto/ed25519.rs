//! Ed25519 via `ed25519-dalek`: strict single verification and deterministic batch verification.

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
        vk.verify_strict(item.message, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }

    fn verify_batch(&self, items: &[SignedItem<'_>]) -> Result<(), CryptoError> {
        let failed = CryptoError::BatchFailed { count: items.len() };
        let keys = items
            .iter()
            .map(|i| verifying_key(i.key))
            .collect::<Result<Vec<_>, _>>()?;
        let msgs: Vec<&[u8]> = items.iter().map(|i| i.message).collect();
        let sigs: Vec<ed25519_dalek::Signature> = items
            .iter()
            .map(|i| ed25519_dalek::Signature::from_bytes(&i.signature.0))
            .collect();
        // dalek's batch derives its coefficients from a transcript of the inputs: deterministic.
        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).map_err(|_| failed)
    }
}

/// An Ed25519 secret key.
pub struct Ed25519Signer {
    key: SigningKey,
}

impl Ed25519Signer {
    /// From the 32-byte secret (RFC 8032 seed). The node generates it from the OS's randomness.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&secret),
        }
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
