//! Applying committed blocks to the registry.

use std::collections::BTreeMap;

use warpnet_types::codec::{CodecError, Decode, Encode, Reader, Writer};
use warpnet_types::{Height, NetworkId, PublicKey};

use crate::claim::Command;
use crate::id::UserId;

/// The registry's storage: committed key/values (the store's `app` table).
pub trait Kv {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// An in-memory `Kv`, for tests and tools.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryKv(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl Kv for MemoryKv {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key).cloned()
    }
}

impl MemoryKv {
    pub fn write(&mut self, writes: Writes) {
        for (k, v) in writes {
            self.0.insert(k, v);
        }
    }
}

/// Key/value writes, in key order (the store's `Batch::app`).
pub type Writes = Vec<(Vec<u8>, Vec<u8>)>;

/// Who owns an ID, since which committed height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub key: PublicKey,
    pub height: Height,
}

/// What applying one command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The ID is now the claimer's, from `height`.
    Claimed { user_id: UserId, owner: Owner },
    /// The claimer already owned it (idempotent).
    AlreadyYours { user_id: UserId, owner: Owner },
    /// Another key owns it.
    Taken { user_id: UserId, owner: Owner },
    /// The command was invalid (only a Byzantine leader proposes one); nothing changed.
    Rejected { reason: String },
}

fn user_key(id: &UserId) -> Vec<u8> {
    [b"u/".as_slice(), id.as_str().as_bytes()].concat()
}

fn request_key(owner: &PublicKey, request_id: &str) -> Vec<u8> {
    [b"r/".as_slice(), owner.0.as_slice(), request_id.as_bytes()].concat()
}

impl Encode for Owner {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.key).put(&self.height);
    }
}

impl Decode for Owner {
    fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        Ok(Self { key: r.get()?, height: r.get()? })
    }
}

fn encode_outcome(o: &Outcome) -> Vec<u8> {
    let mut w = Writer::new();
    let (tag, id, owner) = match o {
        Outcome::Claimed { user_id, owner } => (1, user_id, owner),
        Outcome::AlreadyYours { user_id, owner } => (2, user_id, owner),
        Outcome::Taken { user_id, owner } => (3, user_id, owner),
        Outcome::Rejected { .. } => return Vec::new(), // never recorded
    };
    w.u8(tag).bytes(id.as_str().as_bytes()).put(owner);
    w.finish()
}

fn decode_outcome(bytes: &[u8]) -> Option<Outcome> {
    let mut r = Reader::new(bytes);
    let tag = r.u8("outcome").ok()?;
    let id = UserId::parse(std::str::from_utf8(r.bytes("user id", 64).ok()?).ok()?).ok()?;
    let owner = r.get().ok()?;
    r.finish().ok()?;
    Some(match tag {
        1 => Outcome::Claimed { user_id: id, owner },
        2 => Outcome::AlreadyYours { user_id: id, owner },
        3 => Outcome::Taken { user_id: id, owner },
        _ => return None,
    })
}

/// The owner of `id` in committed state.
pub fn lookup(kv: &impl Kv, id: &UserId) -> Option<Owner> {
    kv.get(&user_key(id)).and_then(|v| Owner::from_bytes(&v).ok())
}

/// Applies the commands of the block committed at `height`, in order. Returns one outcome per
/// command and the writes to make, in the commit's transaction. Deterministic: the same
/// commands on the same state give the same outcomes and writes on every node.
pub fn apply_block(
    network: &NetworkId,
    height: Height,
    commands: &[Vec<u8>],
    kv: &impl Kv,
) -> (Vec<Outcome>, Writes) {
    let mut overlay: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let read = |overlay: &BTreeMap<Vec<u8>, Vec<u8>>, k: &[u8]| {
        overlay.get(k).cloned().or_else(|| kv.get(k))
    };
    let mut outcomes = Vec::with_capacity(commands.len());
    for bytes in commands {
        let claim = match Command::decode(bytes) {
            Ok(Command::Claim(c)) => c,
            Err(e) => {
                outcomes.push(Outcome::Rejected { reason: e.to_string() });
                continue;
            }
        };
        if let Err(e) = claim.verify(network) {
            // Not recorded under its request id: an unsigned command must not be able to
            // answer a real owner's retry.
            outcomes.push(Outcome::Rejected { reason: e.to_string() });
            continue;
        }
        let rkey = request_key(&claim.owner_key, &claim.request_id);
        if let Some(recorded) = read(&overlay, &rkey).and_then(|v| decode_outcome(&v)) {
            outcomes.push(recorded);
            continue;
        }
        let ukey = user_key(&claim.user_id);
        let current = read(&overlay, &ukey).and_then(|v| Owner::from_bytes(&v).ok());
        let outcome = match current {
            None => {
                let owner = Owner { key: claim.owner_key, height };
                overlay.insert(ukey, owner.to_bytes());
                Outcome::Claimed { user_id: claim.user_id, owner }
            }
            Some(owner) if owner.key == claim.owner_key => {
                Outcome::AlreadyYours { user_id: claim.user_id, owner }
            }
            Some(owner) => Outcome::Taken { user_id: claim.user_id, owner },
        };
        overlay.insert(rkey, encode_outcome(&outcome));
        outcomes.push(outcome);
    }
    (outcomes, overlay.into_iter().collect())
}
