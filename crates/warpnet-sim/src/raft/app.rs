//! The simulated state machine: the commands applied, deduplicated as the registry does (a
//! retried command changes nothing), and a hash chain over every applied index, so replicas
//! can be compared index by index. Its snapshot is its own encoding.

use warpnet_types::codec::{CodecError, Reader, Writer};

/// A replica's application state at `applied`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct App {
    pub applied: u64,
    /// FNV-1a chain over (index, kind, data) of every entry applied so far.
    pub chain: u64,
    /// Commands in the order they first took effect.
    pub commands: Vec<Vec<u8>>,
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

impl App {
    /// Applies the entry at `index` (kind 0: a command, 1: a no-op, 2: a membership change).
    pub fn apply(&mut self, index: u64, kind: u8, data: &[u8]) {
        self.applied = index;
        let h = fnv(self.chain ^ 0xCBF2_9CE4_8422_2325, &index.to_le_bytes());
        self.chain = fnv(fnv(h, &[kind]), data);
        if kind == 0 && !self.commands.iter().any(|c| c == data) {
            self.commands.push(data.to_vec());
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.applied).u64(self.chain).len(self.commands.len());
        for c in &self.commands {
            w.bytes(c);
        }
        w.finish()
    }

    /// The state at genesis (the genesis snapshot's data is empty).
    pub fn genesis() -> Self {
        Self { applied: warpnet_raft::GENESIS_INDEX, chain: 0, commands: Vec::new() }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.is_empty() {
            return Ok(Self::genesis());
        }
        let mut r = Reader::new(bytes);
        let applied = r.u64("applied")?;
        let chain = r.u64("chain")?;
        let commands =
            r.list("commands", 1 << 20, |r| r.bytes("command", 1 << 16).map(<[u8]>::to_vec))?;
        r.finish()?;
        Ok(Self { applied, chain, commands })
    }
}
