//! Identifiers and counters of the protocol: `NodeId`, `Epoch`, `Round`, `Height`, `Digest`, `NetworkId`.

use std::fmt;

use sha2::{Digest as _, Sha256};

macro_rules! counter {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl $name {
            /// The value after this one (saturating: counters never wrap).
            #[must_use]
            pub fn next(self) -> Self {
                Self(self.0.saturating_add(1))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

counter!(
    /// Index of a member in its epoch's committee (ADR-006: `NodeID uint16`).
    NodeId(u16)
);
counter!(
    /// Committee generation; every message carries one and membership changes at its boundary.
    Epoch(u64)
);
counter!(
    /// Consensus round (view). Advances on a QC or a TC for the previous round.
    Round(u64)
);
counter!(
    /// Position of a block in its chain; genesis is height 0.
    Height(u64)
);

impl NodeId {
    /// The id as an index into the committee's participant list.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A 32-byte SHA-256 digest. Block ids are digests of the block's canonical encoding.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

/// Blocks are named by the digest of their canonical encoding.
pub type BlockId = Digest;

impl Digest {
    /// The all-zero digest: the parent of every genesis block.
    pub const ZERO: Digest = Digest([0; 32]);

    /// SHA-256 over a domain tag followed by the data. The tag is length-prefixed so that
    /// (tag, data) pairs can never collide across domains.
    pub fn hash(tag: &[u8], data: &[u8]) -> Digest {
        let mut h = Sha256::new();
        h.update([u8::try_from(tag.len()).unwrap_or(u8::MAX)]);
        h.update(tag);
        h.update(data);
        Digest(h.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits identify a block in logs; `to_hex` gives all of it.
        write!(f, "{}", &hex::encode(&self.0[..4]))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Name of a WarpNet network (`mainnet`, `dev-7f3a`, ...): 1–32 characters of `[a-z0-9-]`.
/// It is part of every signed message, so a signature made for one network never verifies on another.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkId(String);

/// Longest allowed network name, in bytes.
pub const NETWORK_ID_LEN_MAX: usize = 32;

/// Why a network name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid network id {given:?}: expected 1-{NETWORK_ID_LEN_MAX} characters of [a-z0-9-]")]
pub struct InvalidNetworkId {
    pub given: String,
}

impl NetworkId {
    pub fn new(name: &str) -> Result<Self, InvalidNetworkId> {
        let ok = !name.is_empty()
            && name.len() <= NETWORK_ID_LEN_MAX
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidNetworkId { given: name.to_owned() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_id_accepts_only_its_alphabet() {
        assert!(NetworkId::new("mainnet").is_ok());
        assert!(NetworkId::new("dev-01").is_ok());
        assert!(NetworkId::new("").is_err());
        assert!(NetworkId::new("Main").is_err());
        assert!(NetworkId::new("a_b").is_err());
        assert!(NetworkId::new(&"a".repeat(33)).is_err());
        assert!(NetworkId::new(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn digests_are_domain_separated() {
        assert_ne!(Digest::hash(b"a", b"bc"), Digest::hash(b"ab", b"c"));
        assert_ne!(Digest::hash(b"vote", b""), Digest::hash(b"timeout", b""));
    }

    #[test]
    fn counters_saturate() {
        assert_eq!(Round(u64::MAX).next(), Round(u64::MAX));
        assert_eq!(Height(1).next(), Height(2));
    }
}
