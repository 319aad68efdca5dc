//! Signatures behind a trait: Ed25519 for real deployments, a cheap deterministic scheme for the
//! simulator, and room for aggregate (BLS) and post-quantum schemes later.
//!
//! Every signed kind has its own domain tag (see [`domain`]), so a vote's signature can never pass
//! as a timeout's, a proposal's or a user-ID claim's.

pub mod domain;
mod ed25519;
mod sim;
pub mod zip215;

use std::fmt;

pub use ed25519::{Ed25519Scheme, Ed25519Signer};
pub use sim::{SimScheme, SimSigner};

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};

pub const PUBLIC_KEY_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;

/// A member's public key (32 bytes for both schemes we ship).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

/// A signature (64 bytes for both schemes we ship).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        let raw = hex::decode(s).map_err(|_| CryptoError::MalformedPublicKey)?;
        Ok(Self(raw.try_into().map_err(|_| CryptoError::MalformedPublicKey)?))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0[..4]))
    }
}

/// A key's short form for logs: its first 4 bytes in hex (`to_hex` gives the whole key).
impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.0[..4]))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(&self.0[..4]))
    }
}

impl Encode for PublicKey {
    fn encode(&self, w: &mut Writer) {
        w.fixed(&self.0);
    }
}
impl Decode for PublicKey {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self(r.array("public key")?))
    }
}
impl Encode for Signature {
    fn encode(&self, w: &mut Writer) {
        w.fixed(&self.0);
    }
}
impl Decode for Signature {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self(r.array("signature")?))
    }
}

/// Why a key or signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("malformed or weak public key")]
    MalformedPublicKey,
    #[error("signature does not verify")]
    BadSignature,
    #[error("a batch of {count} signatures does not verify")]
    BatchFailed { count: usize },
}

/// Which signature scheme a committee uses. Part of the committee's configuration and digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemeId {
    /// Ed25519 (RFC 8032), strict single verification, batch verification for certificates.
    Ed25519,
    /// Keyed SHA-256 "signatures" that anyone knowing the public key could forge. Only for the
    /// deterministic simulator, whose adversaries are our own code and never forge; a node
    /// refuses to run a committee that names it.
    InsecureSimulation,
}

impl SchemeId {
    /// The implementation of this scheme.
    pub fn scheme(self) -> &'static dyn SignatureScheme {
        match self {
            SchemeId::Ed25519 => &Ed25519Scheme,
            SchemeId::InsecureSimulation => &SimScheme,
        }
    }

    pub fn wire_tag(self) -> u8 {
        match self {
            SchemeId::Ed25519 => 1,
            SchemeId::InsecureSimulation => 0xEE,
        }
    }

    pub fn from_wire_tag(tag: u8) -> Result<Self, CodecError> {
        match tag {
            1 => Ok(SchemeId::Ed25519),
            0xEE => Ok(SchemeId::InsecureSimulation),
            tag => Err(CodecError::InvalidTag { what: "signature scheme", tag }),
        }
    }
}

/// One signature to check: the signer's key, the exact signed bytes, and the signature.
#[derive(Clone, Copy, Debug)]
pub struct SignedItem<'a> {
    pub key: &'a PublicKey,
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// A signature scheme: verification only (signing lives with the key, see [`Signer`]).
pub trait SignatureScheme: Send + Sync {
    fn id(&self) -> SchemeId;

    /// Checks that the key is usable in a committee (well-formed, not of small order).
    fn check_public_key(&self, key: &PublicKey) -> Result<(), CryptoError>;

    fn verify(&self, item: SignedItem<'_>) -> Result<(), CryptoError>;

    /// Verifies all items at once. `Ok` only if every signature is valid; on `Err` the caller
    /// verifies one by one to find the culprits. The default checks them one by one.
    fn verify_batch(&self, items: &[SignedItem<'_>]) -> Result<(), CryptoError> {
        items.iter().try_for_each(|item| self.verify(*item))
    }
}

/// Holds a secret key and signs with it. Signing is deterministic for both our schemes.
pub trait Signer: Send + Sync {
    fn scheme(&self) -> SchemeId;
    fn public_key(&self) -> PublicKey;
    fn sign(&self, message: &[u8]) -> Signature;
}

/// Verifies a set of signatures: one batch first, then one by one if the batch fails, returning
/// the index of the first bad item. Every verification path of certificates goes through here.
pub fn verify_all(scheme: SchemeId, items: &[SignedItem<'_>]) -> Result<(), usize> {
    let s = scheme.scheme();
    let ok = match items.len() {
        0 => true,
        1 => s.verify(items[0]).is_ok(),
        _ => s.verify_batch(items).is_ok(),
    };
    if ok {
        return Ok(());
    }
    match items.iter().position(|item| s.verify(*item).is_err()) {
        Some(i) => Err(i),
        // The batch failed but each item verifies alone: only possible for signatures crafted
        // with small-order components; refuse the whole set rather than guess.
        None => Err(0),
    }
}

/// A signer for a deterministic test or simulation key: Ed25519 from a seed-derived secret, or
/// the simulator's scheme. Never use for real nodes: the secret is derived from `seed`.
pub fn signer_from_seed(scheme: SchemeId, seed: u64) -> Box<dyn Signer> {
    let secret = crate::Digest::hash(b"warpnet/test-key", &seed.to_le_bytes()).0;
    match scheme {
        SchemeId::Ed25519 => Box::new(Ed25519Signer::from_secret(secret)),
        SchemeId::InsecureSimulation => Box::new(SimSigner::from_secret(secret)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(scheme: SchemeId) {
        let signer = signer_from_seed(scheme, 1);
        let other = signer_from_seed(scheme, 2);
        let pk = signer.public_key();
        let sig = signer.sign(b"hello");
        let s = scheme.scheme();
        assert!(s.check_public_key(&pk).is_ok());
        assert!(s.verify(SignedItem { key: &pk, message: b"hello", signature: &sig }).is_ok());
        assert!(s.verify(SignedItem { key: &pk, message: b"hellp", signature: &sig }).is_err());
        let opk = other.public_key();
        assert!(s.verify(SignedItem { key: &opk, message: b"hello", signature: &sig }).is_err());
        let sigs: Vec<_> = (0..5u64).map(|i| signer_from_seed(scheme, i)).collect();
        let keys: Vec<_> = sigs.iter().map(|s| s.public_key()).collect();
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 3]).collect();
        let mut signatures: Vec<_> = sigs.iter().zip(&msgs).map(|(s, m)| s.sign(m)).collect();
        let items = |signatures: &[Signature]| -> Vec<(PublicKey, Vec<u8>, Signature)> {
            keys.iter().zip(&msgs).zip(signatures).map(|((k, m), s)| (*k, m.clone(), *s)).collect()
        };
        let owned = items(&signatures);
        let batch: Vec<_> =
            owned.iter().map(|(k, m, s)| SignedItem { key: k, message: m, signature: s }).collect();
        assert_eq!(verify_all(scheme, &batch), Ok(()));
        signatures[3].0[0] ^= 1;
        let owned = items(&signatures);
        let batch: Vec<_> =
            owned.iter().map(|(k, m, s)| SignedItem { key: k, message: m, signature: s }).collect();
        assert_eq!(verify_all(scheme, &batch), Err(3));
    }

    #[test]
    fn ed25519_sign_verify_batch() {
        roundtrip(SchemeId::Ed25519);
    }

    #[test]
    fn sim_sign_verify_batch() {
        roundtrip(SchemeId::InsecureSimulation);
    }

    #[test]
    fn schemes_do_not_accept_each_other() {
        let ed = signer_from_seed(SchemeId::Ed25519, 9);
        let pk = ed.public_key();
        let sig = ed.sign(b"m");
        let item = SignedItem { key: &pk, message: b"m", signature: &sig };
        assert!(SchemeId::InsecureSimulation.scheme().verify(item).is_err());
    }

    #[test]
    fn scheme_tags_roundtrip() {
        for s in [SchemeId::Ed25519, SchemeId::InsecureSimulation] {
            assert_eq!(SchemeId::from_wire_tag(s.wire_tag()), Ok(s));
        }
        assert!(SchemeId::from_wire_tag(7).is_err());
    }
}
