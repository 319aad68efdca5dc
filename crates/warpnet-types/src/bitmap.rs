//! Voter bitmaps exactly as ADR-006 specifies: `(n+7)/8` bytes, and member `id` is bit `id % 8`
//! (least significant first) of byte `id / 8`.

use crate::codec::{CodecError, Decode, Encode, Reader, Writer};
use crate::NodeId;

/// Largest committee a bitmap can describe on the wire (ADR-006: `uint16` ids).
pub const BITMAP_BYTES_MAX: usize = (u16::MAX as usize).div_ceil(8) + 1;

/// Why a bitmap was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BitmapError {
    #[error("bitmap has {got} bytes; a committee of {total} needs exactly {expected}")]
    WrongLength { total: usize, expected: usize, got: usize },
    #[error("bit {bit} is set but the committee has only {total} members")]
    BitOutOfRange { bit: usize, total: usize },
    #[error("node {id} is not a member of a committee of {total}")]
    UnknownNode { id: NodeId, total: usize },
    #[error("node {id} appears twice")]
    Duplicate { id: NodeId },
}

/// The set of members who signed a certificate, as a compact bitmap.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct VoterBitmap {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for VoterBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(|id| id.0)).finish()
    }
}

/// Number of bytes a bitmap for `total` members has.
pub fn bitmap_len(total: usize) -> usize {
    total.div_ceil(8)
}

impl VoterBitmap {
    /// An empty bitmap for a committee of `total`.
    pub fn empty(total: usize) -> Self {
        Self { bytes: vec![0; bitmap_len(total)] }
    }

    /// ADR-006 `CreateVoterBitmap`: refuses unknown ids and duplicates.
    pub fn from_ids(total: usize, ids: &[NodeId]) -> Result<Self, BitmapError> {
        let mut b = Self::empty(total);
        for &id in ids {
            if id.index() >= total {
                return Err(BitmapError::UnknownNode { id, total });
            }
            if b.contains(id) {
                return Err(BitmapError::Duplicate { id });
            }
            b.bytes[id.index() / 8] |= 1 << (id.index() % 8);
        }
        Ok(b)
    }

    /// ADR-006 `ParseVoterBitmap`, strict: the length must be exactly `(total+7)/8` and no bit at
    /// or above `total` may be set.
    pub fn from_bytes(total: usize, bytes: &[u8]) -> Result<Self, BitmapError> {
        let b = Self { bytes: bytes.to_vec() };
        b.check(total)?;
        Ok(b)
    }

    /// Checks this bitmap against a committee of `total` members.
    pub fn check(&self, total: usize) -> Result<(), BitmapError> {
        let expected = bitmap_len(total);
        if self.bytes.len() != expected {
            return Err(BitmapError::WrongLength { total, expected, got: self.bytes.len() });
        }
        if let Some(bit) = self.iter_bits().find(|&bit| bit >= total) {
            return Err(BitmapError::BitOutOfRange { bit, total });
        }
        Ok(())
    }

    /// Adds a member, returning whether it was new. The caller guarantees `id < total`.
    pub fn insert(&mut self, id: NodeId) -> bool {
        let (byte, bit) = (id.index() / 8, id.index() % 8);
        if byte >= self.bytes.len() {
            return false;
        }
        let new = self.bytes[byte] & (1 << bit) == 0;
        self.bytes[byte] |= 1 << bit;
        new
    }

    pub fn contains(&self, id: NodeId) -> bool {
        let (byte, bit) = (id.index() / 8, id.index() % 8);
        self.bytes.get(byte).is_some_and(|b| b & (1 << bit) != 0)
    }

    /// Number of members in the set.
    pub fn count(&self) -> usize {
        self.bytes.iter().map(|b| b.count_ones() as usize).sum()
    }

    fn iter_bits(&self) -> impl Iterator<Item = usize> + '_ {
        self.bytes.iter().enumerate().flat_map(|(i, &byte)| {
            (0..8).filter(move |bit| byte & (1 << bit) != 0).map(move |bit| i * 8 + bit)
        })
    }

    /// Members in ascending id order (the order of a certificate's signatures).
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.iter_bits().map(|bit| NodeId(u16::try_from(bit).unwrap_or(u16::MAX)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl Encode for VoterBitmap {
    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.bytes);
    }
}

impl Decode for VoterBitmap {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        // The committee size is not known while decoding; `check` runs in `validate`.
        Ok(Self { bytes: r.bytes("voter bitmap", BITMAP_BYTES_MAX)?.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u16]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    /// Golden vectors derived by hand from ADR-006's rule: bit `id % 8` of byte `id / 8`.
    #[test]
    fn golden_vectors_follow_the_adr_rule() {
        let cases: &[(usize, &[u16], &[u8])] = &[
            (1, &[0], &[0b0000_0001]),
            (4, &[0, 1, 2], &[0b0000_0111]),
            (4, &[3], &[0b0000_1000]),
            (5, &[0, 2, 4], &[0b0001_0101]),
            (7, &[6], &[0b0100_0000]),
            (8, &[7], &[0b1000_0000]),
            (9, &[8], &[0x00, 0x01]),
            (10, &[0, 9], &[0x01, 0x02]),
            (16, &[0, 7, 8, 15], &[0x81, 0x81]),
            (17, &[16], &[0x00, 0x00, 0x01]),
            (512, &[511], &{
                let mut v = [0u8; 64];
                v[63] = 0x80;
                v
            }),
        ];
        for (total, members, bytes) in cases {
            let b = VoterBitmap::from_ids(*total, &ids(members)).unwrap();
            assert_eq!(b.as_bytes(), *bytes, "n={total} ids={members:?}");
            assert_eq!(b.as_bytes().len(), total.div_ceil(8));
            let parsed = VoterBitmap::from_bytes(*total, bytes).unwrap();
            assert_eq!(parsed.iter().collect::<Vec<_>>(), ids(members));
        }
    }

    #[test]
    fn creation_rejects_unknown_and_duplicate_ids() {
        assert_eq!(
            VoterBitmap::from_ids(4, &ids(&[4])),
            Err(BitmapError::UnknownNode { id: NodeId(4), total: 4 })
        );
        assert_eq!(
            VoterBitmap::from_ids(4, &ids(&[1, 1])),
            Err(BitmapError::Duplicate { id: NodeId(1) })
        );
    }

    #[test]
    fn parsing_rejects_wrong_length_and_high_bits() {
        assert_eq!(
            VoterBitmap::from_bytes(9, &[0xff]),
            Err(BitmapError::WrongLength { total: 9, expected: 2, got: 1 })
        );
        assert_eq!(
            VoterBitmap::from_bytes(4, &[0, 0]),
            Err(BitmapError::WrongLength { total: 4, expected: 1, got: 2 })
        );
        assert_eq!(
            VoterBitmap::from_bytes(5, &[0b0010_0000]),
            Err(BitmapError::BitOutOfRange { bit: 5, total: 5 })
        );
        assert_eq!(
            VoterBitmap::from_bytes(9, &[0, 0b10]),
            Err(BitmapError::BitOutOfRange { bit: 9, total: 9 })
        );
    }

    #[test]
    fn insert_count_contains() {
        let mut b = VoterBitmap::empty(10);
        assert!(b.insert(NodeId(9)));
        assert!(!b.insert(NodeId(9)));
        assert!(b.insert(NodeId(0)));
        assert_eq!(b.count(), 2);
        assert!(b.contains(NodeId(9)) && !b.contains(NodeId(5)));
        assert!(!b.insert(NodeId(100)), "out-of-range ids are never inserted");
    }
}
