//! Encrypted frames over a TCP stream: Noise transport messages, each `u16`-length-prefixed,
//! carrying `u32 length ‖ frame` split into pieces.

use std::sync::Arc;

use snow::StatelessTransportState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// First bytes a dialer sends: protocol and version.
pub const MAGIC: &[u8; 8] = b"WARPNET1";
/// Largest Noise message.
pub const NOISE_MESSAGE_MAX: usize = 65_535;
const TAG_LEN: usize = 16;
const PLAIN_MAX: usize = NOISE_MESSAGE_MAX - TAG_LEN;

/// Why a stream failed. Every variant closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("decryption or encryption failed: {0}")]
    Crypto(String),
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversized { len: usize, max: usize },
    #[error("malformed framing: {0}")]
    Malformed(&'static str),
    #[error("nothing received for {ms} ms (no frame, no heartbeat)")]
    Silent { ms: u64 },
}

/// Writes encrypted frames; owns the sending nonce.
pub struct FrameWriter {
    half: OwnedWriteHalf,
    noise: Arc<StatelessTransportState>,
    nonce: u64,
    buf: Vec<u8>,
}

/// Reads encrypted frames; owns the receiving nonce.
pub struct FrameReader {
    half: OwnedReadHalf,
    noise: Arc<StatelessTransportState>,
    nonce: u64,
    max_frame: usize,
    /// Longest wait for one Noise message (a heartbeat or a piece of a frame); `None` waits
    /// forever (during the handshake, which has its own timeout).
    idle_max: Option<std::time::Duration>,
}

impl FrameWriter {
    pub fn new(half: OwnedWriteHalf, noise: Arc<StatelessTransportState>) -> Self {
        Self { half, noise, nonce: 0, buf: vec![0; NOISE_MESSAGE_MAX] }
    }

    /// Sends one frame, cut into Noise messages, and flushes.
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), WireError> {
        let len =
            u32::try_from(frame.len()).map_err(|_| WireError::Malformed("frame over 4 GiB"))?;
        let mut plain = Vec::with_capacity(4 + frame.len());
        plain.extend_from_slice(&len.to_le_bytes());
        plain.extend_from_slice(frame);
        let mut out =
            Vec::with_capacity(plain.len() + (plain.len() / PLAIN_MAX + 1) * (TAG_LEN + 2));
        for piece in plain.chunks(PLAIN_MAX) {
            let n = self
                .noise
                .write_message(self.nonce, piece, &mut self.buf)
                .map_err(|e| WireError::Crypto(e.to_string()))?;
            self.nonce += 1;
            out.extend_from_slice(&(n as u16).to_le_bytes());
            out.extend_from_slice(&self.buf[..n]);
        }
        self.half.write_all(&out).await?;
        self.half.flush().await?;
        Ok(())
    }
}

impl FrameReader {
    pub fn new(half: OwnedReadHalf, noise: Arc<StatelessTransportState>, max_frame: usize) -> Self {
        Self { half, noise, nonce: 0, max_frame, idle_max: None }
    }

    /// Fails `recv` with [`WireError::Silent`] when one Noise message (at most 64 KiB) takes
    /// longer than `idle_max` to arrive: the peer sends heartbeats, so silence means a dead
    /// link or a dead peer even when no reset ever comes.
    pub fn set_idle_max(&mut self, idle_max: Option<std::time::Duration>) {
        self.idle_max = idle_max;
    }

    /// Changes the largest frame accepted (the hello is read under a small limit).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    async fn piece(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        match self.idle_max {
            None => self.piece_unbounded(out).await,
            Some(max) => tokio::time::timeout(max, self.piece_unbounded(out))
                .await
                .map_err(|_| WireError::Silent { ms: max.as_millis() as u64 })?,
        }
    }

    async fn piece_unbounded(&mut self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let mut len = [0u8; 2];
        self.half.read_exact(&mut len).await?;
        let len = u16::from_le_bytes(len) as usize;
        if len < TAG_LEN {
            return Err(WireError::Malformed("noise message shorter than its tag"));
        }
        let mut cipher = vec![0u8; len];
        self.half.read_exact(&mut cipher).await?;
        let mut plain = vec![0u8; len];
        let n = self
            .noise
            .read_message(self.nonce, &cipher, &mut plain)
            .map_err(|e| WireError::Crypto(e.to_string()))?;
        self.nonce += 1;
        out.extend_from_slice(&plain[..n]);
        Ok(())
    }

    /// Reads one frame (an empty one is a heartbeat). A declared length over the maximum fails
    /// before it is read.
    pub async fn recv(&mut self) -> Result<Vec<u8>, WireError> {
        let mut buf = Vec::new();
        self.piece(&mut buf).await?;
        if buf.len() < 4 {
            return Err(WireError::Malformed("frame without its length"));
        }
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > self.max_frame {
            return Err(WireError::Oversized { len, max: self.max_frame });
        }
        let mut frame = buf.split_off(4);
        while frame.len() < len {
            self.piece(&mut frame).await?;
        }
        if frame.len() != len {
            return Err(WireError::Malformed("frame longer than declared"));
        }
        Ok(frame)
    }
}
