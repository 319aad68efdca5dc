//! Applying committed blocks to the registry.

use std::collections::BTreeMap;
use std::convert::Infallible;

use warpnet_types::codec::{CodecError, Decode, Encode, Reader, Writer};
use warpnet_types::{Height, NetworkId, PublicKey};

use crate::claim::{verify_claims, verify_claims_cached, Claim, ClaimError, Command};
use crate::id::UserId;
use crate::verdicts::VerdictCache;

/// The registry's storage: committed key/values (the store's `app` table). A read error is
/// returned, never taken for a missing key: a node that read "absent" by mistake would apply a
/// claim differently from the others.
pub trait Kv {
    type Error;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error>;
}

/// An in-memory `Kv`, for tests and tools.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryKv(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl Kv for MemoryKv {
    type Error = Infallible;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Infallible> {
        Ok(self.0.get(key).cloned())
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
    /// A read barrier committed; nothing changed.
    Barrier,
}

/// The `app` key holding `id`'s owner.
pub fn user_key(id: &UserId) -> Vec<u8> {
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
        Outcome::Rejected { .. } | Outcome::Barrier => return Vec::new(), // never recorded
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

/// Decodes an owner record (the value at [`user_key`]).
pub fn decode_owner(bytes: &[u8]) -> Option<Owner> {
    Owner::from_bytes(bytes).ok()
}

/// The owner of `id` in committed state.
pub fn lookup<K: Kv>(kv: &K, id: &UserId) -> Result<Option<Owner>, K::Error> {
    Ok(kv.get(&user_key(id))?.and_then(|v| decode_owner(&v)))
}

/// What committed state already says about `claim`, without ordering it again: the result
/// recorded for its (owner key, request id), else `already_yours` or `taken` when the ID has
/// an owner (ownership never changes, so these answers are final). `None`: it must be
/// ordered. The claim's signature must have been checked.
pub fn settled<K: Kv>(kv: &K, claim: &Claim) -> Result<Option<Outcome>, K::Error> {
    if let Some(recorded) =
        kv.get(&request_key(&claim.owner_key, &claim.request_id))?.and_then(|v| decode_outcome(&v))
    {
        return Ok(Some(recorded));
    }
    let user_id = claim.user_id.clone();
    Ok(lookup(kv, &claim.user_id)?.map(|owner| {
        if owner.key == claim.owner_key {
            Outcome::AlreadyYours { user_id, owner }
        } else {
            Outcome::Taken { user_id, owner }
        }
    }))
}

/// [`try_apply_block`] on a store that cannot fail (tests, tools).
pub fn apply_block<K: Kv<Error = Infallible>>(
    network: &NetworkId,
    height: Height,
    commands: &[Vec<u8>],
    kv: &K,
) -> (Vec<Outcome>, Writes) {
    match try_apply_block(network, height, commands, kv) {
        Ok(done) => done,
        Err(never) => match never {},
    }
}

/// Applies the commands of the block committed at `height`, in order. Returns one outcome per
/// command and the writes to make, in the commit's transaction. Deterministic: the same
/// commands on the same state give the same outcomes and writes on every node. A read error
/// stops the whole block (the node must not commit a height it could not apply).
pub fn try_apply_block<K: Kv>(
    network: &NetworkId,
    height: Height,
    commands: &[Vec<u8>],
    kv: &K,
) -> Result<(Vec<Outcome>, Writes), K::Error> {
    try_apply_block_checked(network, height, commands, kv, None)
}

/// The signature verdicts R1 needs for a block's commands: one per claim among them, in order.
/// A pure function of the commands, so it may be computed ahead of the commit, on another
/// thread, and handed to [`try_apply_block_checked`] with the same result as computing it there.
pub fn block_verdicts(network: &NetworkId, commands: &[Vec<u8>]) -> Vec<Result<(), ClaimError>> {
    let decoded = decode_all(commands);
    verify_claims(network, &claims_in(&decoded))
}

/// [`block_verdicts`], taking the verdicts of claims this node has already checked (at
/// admission, or when a member shared them) from `cache`: the same result, since a verdict is
/// a pure function of the claim (see [`verify_claims_cached`]).
pub fn block_verdicts_cached(
    network: &NetworkId,
    commands: &[Vec<u8>],
    cache: &mut VerdictCache,
) -> Vec<Result<(), ClaimError>> {
    let decoded = decode_all(commands);
    verify_claims_cached(network, &claims_in(&decoded), cache)
}

fn decode_all(commands: &[Vec<u8>]) -> Vec<Result<Command, ClaimError>> {
    commands.iter().map(|b| Command::decode(b)).collect()
}

/// The claims among decoded commands, in order: what R1's verdicts are for.
fn claims_in(decoded: &[Result<Command, ClaimError>]) -> Vec<&Claim> {
    decoded
        .iter()
        .filter_map(|d| match d {
            Ok(Command::Claim(c)) => Some(c),
            _ => None,
        })
        .collect()
}

/// [`try_apply_block`] with the block's verdicts computed beforehand by [`block_verdicts`] on
/// the same commands (`None`: computed here). Verdicts of the wrong length are ignored and
/// recomputed.
pub fn try_apply_block_checked<K: Kv>(
    network: &NetworkId,
    height: Height,
    commands: &[Vec<u8>],
    kv: &K,
    verdicts: Option<Vec<Result<(), ClaimError>>>,
) -> Result<(Vec<Outcome>, Writes), K::Error> {
    let mut overlay: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let read = |overlay: &BTreeMap<Vec<u8>, Vec<u8>>, k: &[u8]| match overlay.get(k) {
        Some(v) => Ok(Some(v.clone())),
        None => kv.get(k),
    };
    // R1: only committed claims with a valid signature (Ed25519 under ZIP-215) and a usable
    // owner key change state, whatever the mempool did. The verdicts may come from the
    // node's earlier checks of the same claims: each is a pure function of the claim.
    let decoded = decode_all(commands);
    let claims = claims_in(&decoded);
    let verdicts = match verdicts {
        Some(v) if v.len() == claims.len() => v,
        _ => verify_claims(network, &claims),
    };
    let mut verdicts = verdicts.into_iter();
    let mut outcomes = Vec::with_capacity(commands.len());
    for command in decoded {
        let claim = match command {
            Ok(Command::Claim(c)) => c,
            // A committee change leaves the registry as it is (the core applied it).
            Ok(Command::Barrier { .. } | Command::Committee(_)) => {
                outcomes.push(Outcome::Barrier);
                continue;
            }
            Err(e) => {
                outcomes.push(Outcome::Rejected { reason: e.to_string() });
                continue;
            }
        };
        match verdicts.next() {
            Some(Ok(())) => {}
            // Not recorded under its request id: an unsigned command must not be able to
            // answer a real owner's retry.
            Some(Err(e)) => {
                outcomes.push(Outcome::Rejected { reason: e.to_string() });
                continue;
            }
            None => {
                outcomes.push(Outcome::Rejected { reason: "no verdict for this claim".into() });
                continue;
            }
        }
        let rkey = request_key(&claim.owner_key, &claim.request_id);
        // R2: a retried request (same owner key and request id) gets the recorded result.
        if let Some(recorded) = read(&overlay, &rkey)?.and_then(|v| decode_outcome(&v)) {
            outcomes.push(recorded);
            continue;
        }
        // R3: the first committed claim of an ID wins; ownership never changes after.
        let ukey = user_key(&claim.user_id);
        let current = read(&overlay, &ukey)?.and_then(|v| decode_owner(&v));
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
    Ok((outcomes, overlay.into_iter().collect()))
}
