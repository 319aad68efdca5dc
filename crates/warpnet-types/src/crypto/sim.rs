//! The simulator's signature scheme: cheap, deterministic, and forgeable by design.
//!
//! `public = H(secret)`, `signature = H(public || message) || H(message || public)`. Anyone who
//! knows a public key could forge, so it has no security; it exists so the simulator can run
//! hundreds of thousands of seeds. The simulated adversaries are our own code and never forge
//! (they exercise invalid signatures, impersonation and forged certificates by other means).
//! Part of the CI seeds and all Twins tests run with real Ed25519 instead.

use sha2::{Digest as _, Sha256};

use super::{CryptoError, PublicKey, SchemeId, Signature, SignatureScheme, SignedItem, Signer};

#[derive(Debug, Clone, Copy, Default)]
pub struct SimScheme;

fn sim_sign(key: &PublicKey, message: &[u8]) -> Signature {
    let a: [u8; 32] = Sha256::new().chain_update(key.0).chain_update(message).finalize().into();
    let b: [u8; 32] = Sha256::new().chain_update(message).chain_update(key.0).finalize().into();
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&a);
    out[32..].copy_from_slice(&b);
    Signature(out)
}

impl SignatureScheme for SimScheme {
    fn id(&self) -> SchemeId {
        SchemeId::InsecureSimulation
    }

    fn check_public_key(&self, _key: &PublicKey) -> Result<(), CryptoError> {
        Ok(())
    }

    fn verify(&self, item: SignedItem<'_>) -> Result<(), CryptoError> {
        if sim_sign(item.key, item.message) == *item.signature {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

/// A simulator key.
#[derive(Debug, Clone)]
pub struct SimSigner {
    public: PublicKey,
}

impl SimSigner {
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Self { public: PublicKey(Sha256::digest(secret).into()) }
    }
}

impl Signer for SimSigner {
    fn scheme(&self) -> SchemeId {
        SchemeId::InsecureSimulation
    }

    fn public_key(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        sim_sign(&self.public, message)
    }
}
