//! The one canonical binary encoding used for hashing, signing and the wire.
//!
//! Integers are little-endian and fixed-width; byte strings and lists carry a `u32` length
//! prefix and each has its own maximum; booleans are exactly 0 or 1; options are a 0/1 tag.
//! Decoding is strict: a value has exactly one encoding, and trailing bytes are an error, so
//! `decode(encode(x)) == x` and `encode(decode(b)) == b` for every accepted `b`.

use thiserror::Error;

/// Why bytes could not be decoded. Every variant says what was being read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("unexpected end of input reading {what}: needed {needed} bytes, {remaining} left")]
    UnexpectedEnd { what: &'static str, needed: usize, remaining: usize },
    #[error("{count} trailing bytes after a complete value")]
    TrailingBytes { count: usize },
    #[error("{what} is too long: {len} > {max}")]
    TooLong { what: &'static str, len: usize, max: usize },
    #[error("invalid tag {tag} for {what}")]
    InvalidTag { what: &'static str, tag: u8 },
    #[error("invalid value for {what}: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("unsupported wire version {got} (this node speaks {supported})")]
    UnsupportedVersion { got: u8, supported: u8 },
}

/// Appends canonical encodings to a buffer.
#[derive(Default, Debug)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self { buf: Vec::with_capacity(n) }
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    /// Bytes of a length fixed by the type (keys, digests, signatures): no prefix.
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.len(v.len()).fixed(v)
    }

    /// A length prefix for a list or byte string.
    pub fn len(&mut self, n: usize) -> &mut Self {
        // Every length we encode was bounded by a maximum far below u32::MAX on the way in.
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub fn put<T: Encode + ?Sized>(&mut self, v: &T) -> &mut Self {
        v.encode(self);
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }
}

/// Reads canonical encodings from a byte slice.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::UnexpectedEnd { what, needed: n, remaining: self.buf.len() });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub fn bool(&mut self, what: &'static str) -> Result<bool, CodecError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(CodecError::InvalidTag { what, tag }),
        }
    }

    /// A length prefix, refused above `max` before anything is allocated.
    pub fn len(&mut self, what: &'static str, max: usize) -> Result<usize, CodecError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(CodecError::TooLong { what, len, max });
        }
        Ok(len)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], CodecError> {
        let len = self.len(what, max)?;
        self.take(len, what)
    }

    /// A list of at most `max` items; the count is checked against the bytes left too, so a
    /// forged count cannot make us reserve memory the input cannot fill.
    pub fn list<T>(
        &mut self,
        what: &'static str,
        max: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, CodecError>,
    ) -> Result<Vec<T>, CodecError> {
        let len = self.len(what, max)?;
        let mut out = Vec::with_capacity(len.min(self.remaining()));
        for _ in 0..len {
            out.push(item(self)?);
        }
        Ok(out)
    }

    pub fn get<T: Decode>(&mut self) -> Result<T, CodecError> {
        T::decode(self)
    }

    /// Succeeds only if the whole input was consumed.
    pub fn finish(self) -> Result<(), CodecError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes { count: self.buf.len() })
        }
    }
}

/// A value with one canonical encoding.
pub trait Encode {
    fn encode(&self, w: &mut Writer);

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.finish()
    }
}

/// A value decoded strictly from its canonical encoding.
pub trait Decode: Sized {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError>;

    /// Decodes a whole buffer; trailing bytes are an error.
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

macro_rules! codec_counter {
    ($($t:ty => $m:ident, $what:literal;)*) => {$(
        impl Encode for $t {
            fn encode(&self, w: &mut Writer) {
                w.$m(self.0);
            }
        }
        impl Decode for $t {
            fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
                Ok(Self(r.$m($what)?))
            }
        }
    )*};
}

codec_counter! {
    crate::NodeId => u16, "node id";
    crate::Epoch => u64, "epoch";
    crate::Round => u64, "round";
    crate::Height => u64, "height";
}

impl Encode for crate::Digest {
    fn encode(&self, w: &mut Writer) {
        w.fixed(&self.0);
    }
}

impl Decode for crate::Digest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self(r.array("digest")?))
    }
}

impl Encode for crate::NetworkId {
    fn encode(&self, w: &mut Writer) {
        w.bytes(self.as_str().as_bytes());
    }
}

impl Decode for crate::NetworkId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let raw = r.bytes("network id", crate::ids::NETWORK_ID_LEN_MAX)?;
        let s = std::str::from_utf8(raw)
            .map_err(|e| CodecError::Invalid { what: "network id", reason: e.to_string() })?;
        crate::NetworkId::new(s)
            .map_err(|e| CodecError::Invalid { what: "network id", reason: e.to_string() })
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, w: &mut Writer) {
        match self {
            None => {
                w.u8(0);
            }
            Some(v) => {
                w.u8(1).put(v);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        match r.u8("option tag")? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(r)?)),
            tag => Err(CodecError::InvalidTag { what: "option", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Height, Round};

    #[test]
    fn integers_are_little_endian_and_fixed_width() {
        let mut w = Writer::new();
        w.u16(0x0102).u32(3).u64(4);
        assert_eq!(w.finish(), [2, 1, 3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = Round(7).to_bytes();
        bytes.push(0);
        assert_eq!(Round::from_bytes(&bytes), Err(CodecError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn short_input_says_what_was_read() {
        let err = Height::from_bytes(&[1, 2]).unwrap_err();
        assert!(matches!(
            err,
            CodecError::UnexpectedEnd { what: "height", needed: 8, remaining: 2 }
        ));
    }

    #[test]
    fn over_long_lengths_are_refused_before_allocating() {
        let mut w = Writer::new();
        w.u32(u32::MAX);
        let mut r = Reader::new(w.as_slice());
        assert!(
            matches!(r.bytes("payload", 10), Err(CodecError::TooLong { len, max: 10, .. }) if len == u32::MAX as usize)
        );
    }

    #[test]
    fn booleans_and_options_are_strict() {
        assert!(Reader::new(&[2]).bool("flag").is_err());
        assert_eq!(Option::<Round>::from_bytes(&[0]), Ok(None));
        assert!(Option::<Round>::from_bytes(&[2]).is_err());
    }
}
