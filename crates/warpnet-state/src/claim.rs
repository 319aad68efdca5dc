//! Claims and their exact signed bytes.
//!
//! The owner signs, with the Ed25519 key that will own the ID:
//!
//! ```text
//! u8 len(tag) ‖ tag ‖ u32le len(network) ‖ network ‖ u32le len(id) ‖ id
//! tag = "warpnet/v1/claim", network = the committee's network id, id = the normalized ID
//! ```
//!
//! A command in a block is `u8 version (1) ‖ u8 kind ‖ body`:
//! - kind 1, a claim: `u32le len ‖ id ‖ 32-byte owner key ‖ 64-byte signature ‖ u32le len ‖
//!   request id`;
//! - kind 2, a read barrier: `16-byte nonce`. It changes nothing; a node orders one through
//!   consensus before answering a linearizable read.

use warpnet_types::codec::{CodecError, Reader, Writer};
use warpnet_types::crypto::{
    domain, zip215, CryptoError, SignedItem, PUBLIC_KEY_LEN, SIGNATURE_LEN,
};
use warpnet_types::{Digest, NetworkId, PublicKey, Signature, Signer};

use crate::id::{IdError, UserId, USER_ID_LEN_MAX};
use crate::verdicts::VerdictCache;

/// Longest request id, in bytes (`[A-Za-z0-9_-]`).
pub const REQUEST_ID_LEN_MAX: usize = 64;
const COMMAND_VERSION: u8 = 1;
const KIND_CLAIM: u8 = 1;
const KIND_BARRIER: u8 = 2;
/// Committee changes (add, remove, update: `warpnet_types::membership`).
const KIND_COMMITTEE_FIRST: u8 = 3;
const KIND_COMMITTEE_LAST: u8 = 5;
/// A failed batch of at most this many claims is checked one by one rather than split.
const BISECT_SINGLES_BELOW: usize = 32;
/// Bytes of a read barrier's nonce.
pub const BARRIER_NONCE_BYTES: usize = 16;

/// Why a claim was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("request_id must be 1-{REQUEST_ID_LEN_MAX} characters of A-Z, a-z, 0-9, _ and -")]
    RequestId,
    #[error("owner_key is not a usable Ed25519 public key (a curve point, canonically encoded, not of small order)")]
    BadKey,
    #[error("the signature does not verify for this owner_key, network and user id")]
    BadSignature,
    #[error("malformed command: {0}")]
    Malformed(String),
}

/// The bytes an owner signs to claim `id` on `network`.
pub fn claim_signing_bytes(network: &NetworkId, id: &UserId) -> Vec<u8> {
    let mut w = domain::signing_writer(domain::TAG_CLAIM, network);
    w.bytes(id.as_str().as_bytes());
    w.finish()
}

fn check_request_id(r: &str) -> Result<(), ClaimError> {
    let ok = !r.is_empty()
        && r.len() <= REQUEST_ID_LEN_MAX
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(()).ok_or(ClaimError::RequestId)
}

/// A signed claim of a user ID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub user_id: UserId,
    pub owner_key: PublicKey,
    pub signature: Signature,
    pub request_id: String,
}

impl Claim {
    /// Signs a claim of `user_id` with `owner`.
    pub fn sign(
        network: &NetworkId,
        user_id: UserId,
        owner: &dyn Signer,
        request_id: &str,
    ) -> Result<Self, ClaimError> {
        check_request_id(request_id)?;
        let signature = owner.sign(&claim_signing_bytes(network, &user_id));
        Ok(Self {
            user_id,
            owner_key: owner.public_key(),
            signature,
            request_id: request_id.into(),
        })
    }

    /// Checks the request id, the key and the signature (Ed25519 under ZIP-215).
    pub fn verify(&self, network: &NetworkId) -> Result<(), ClaimError> {
        verify_claims(network, &[self]).pop().unwrap_or(Err(ClaimError::BadSignature))
    }
}

/// Checks many claims at once: request ids and keys one by one, signatures under ZIP-215
/// (`warpnet_types::crypto::zip215`) in batches. A failed batch is split in halves, down to 32
/// claims checked one by one, so one bad claim costs a few extra batches, not a verification
/// of every other claim alone. One result per claim, in order.
///
/// Each verdict is a pure function of the claim's (owner key, signed bytes, signature): under
/// ZIP-215 a batch accepts exactly when each of its signatures would be accepted alone, so the
/// verdicts do not depend on which claims were checked together, and every node agrees.
pub fn verify_claims(network: &NetworkId, claims: &[&Claim]) -> Vec<Result<(), ClaimError>> {
    check(network, claims, None)
}

/// [`verify_claims`], reusing the verdicts in `cache` and adding the new ones: one signature
/// check per claim per node, whether the claim arrives from a client, from a member (M1) or in
/// a block (R1). Gives exactly what [`verify_claims`] gives, because a verdict is a pure
/// function of what the cache is keyed by.
pub fn verify_claims_cached(
    network: &NetworkId,
    claims: &[&Claim],
    cache: &mut VerdictCache,
) -> Vec<Result<(), ClaimError>> {
    check(network, claims, Some(cache))
}

fn check(
    network: &NetworkId,
    claims: &[&Claim],
    mut cache: Option<&mut VerdictCache>,
) -> Vec<Result<(), ClaimError>> {
    let mut results: Vec<Result<(), ClaimError>> = Vec::with_capacity(claims.len());
    let mut messages: Vec<Vec<u8>> = Vec::with_capacity(claims.len());
    let mut digests = Vec::with_capacity(claims.len());
    let mut pending = Vec::with_capacity(claims.len());
    for (i, c) in claims.iter().enumerate() {
        let message = claim_signing_bytes(network, &c.user_id);
        let checked = check_request_id(&c.request_id)
            .and_then(|()| zip215::check_owner_key(&c.owner_key).map_err(|_| ClaimError::BadKey));
        let digest = verdict_key(c, &message);
        let known =
            if checked.is_ok() { cache.as_deref_mut().and_then(|k| k.get(&digest)) } else { None };
        match known {
            Some(verdict) => results.push(verdict),
            None => {
                if checked.is_ok() {
                    pending.push(i);
                }
                results.push(checked);
            }
        }
        messages.push(message);
        digests.push(digest);
    }
    let item = |i: usize| SignedItem {
        key: &claims[i].owner_key,
        message: &messages[i],
        signature: &claims[i].signature,
    };
    let single = |i: usize| {
        zip215::verify(item(i)).map_err(|_| match zip215::classify_failure(&claims[i].owner_key) {
            CryptoError::MalformedPublicKey => ClaimError::BadKey,
            _ => ClaimError::BadSignature,
        })
    };
    // Bisect: verify a range as one batch; on failure split it, down to single checks.
    let mut stack = vec![pending.as_slice()];
    while let Some(range) = stack.pop() {
        if range.len() == 1 {
            results[range[0]] = single(range[0]);
            continue;
        }
        let items: Vec<SignedItem<'_>> = range.iter().map(|&i| item(i)).collect();
        if items.is_empty() || zip215::verify_batch(&items).is_ok() {
            continue;
        }
        if range.len() <= BISECT_SINGLES_BELOW {
            // Small enough: one by one. This bounds a batch of bad claims (a Byzantine leader
            // or member may send thousands) to about log2(n / 32) batch passes plus n singles,
            // instead of a full bisection tree.
            for &i in range {
                results[i] = single(i);
            }
        } else {
            let (a, b) = range.split_at(range.len() / 2);
            stack.push(b);
            stack.push(a);
        }
    }
    if let Some(cache) = cache {
        for &i in &pending {
            cache.insert(digests[i], &results[i]);
        }
    }
    results
}

/// What a claim's verdict is a function of: the owner key, the signature and the signed bytes
/// (network and ID), hashed.
fn verdict_key(claim: &Claim, message: &[u8]) -> Digest {
    let mut data = Vec::with_capacity(PUBLIC_KEY_LEN + SIGNATURE_LEN + message.len());
    data.extend_from_slice(&claim.owner_key.0);
    data.extend_from_slice(&claim.signature.0);
    data.extend_from_slice(message);
    Digest::hash(b"warpnet/v1/claim-verdict", &data)
}

/// A command of the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Claim(Claim),
    /// Orders nothing but itself: a linearizable read waits for one to commit.
    Barrier {
        nonce: [u8; BARRIER_NONCE_BYTES],
    },
    /// A committee change (kinds 3–5, `warpnet_types::membership::Change`), as encoded: the
    /// consensus core checks and applies it (EP1, EP3); the registry leaves it alone.
    Committee(Vec<u8>),
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        if let Command::Committee(bytes) = self {
            return bytes.clone();
        }
        let mut w = Writer::with_capacity(140);
        w.u8(COMMAND_VERSION);
        match self {
            Command::Claim(c) => {
                w.u8(KIND_CLAIM).bytes(c.user_id.as_str().as_bytes());
                w.put(&c.owner_key).put(&c.signature).bytes(c.request_id.as_bytes());
            }
            Command::Barrier { nonce } => {
                w.u8(KIND_BARRIER).fixed(nonce);
            }
            Command::Committee(_) => {}
        }
        w.finish()
    }

    /// Decodes a command strictly: the ID must already be normalized, the request id valid.
    pub fn decode(bytes: &[u8]) -> Result<Self, ClaimError> {
        let bad = |e: CodecError| ClaimError::Malformed(e.to_string());
        let mut r = Reader::new(bytes);
        let version = r.u8("command version").map_err(bad)?;
        if version != COMMAND_VERSION {
            return Err(ClaimError::Malformed(format!("unknown command version {version}")));
        }
        match r.u8("command kind").map_err(bad)? {
            KIND_CLAIM => {}
            KIND_BARRIER => {
                let nonce = r.array("barrier nonce").map_err(bad)?;
                r.finish().map_err(bad)?;
                return Ok(Command::Barrier { nonce });
            }
            KIND_COMMITTEE_FIRST..=KIND_COMMITTEE_LAST => {
                return Ok(Command::Committee(bytes.to_vec()));
            }
            kind => return Err(ClaimError::Malformed(format!("unknown command kind {kind}"))),
        }
        let raw_id = std::str::from_utf8(r.bytes("user id", USER_ID_LEN_MAX).map_err(bad)?)
            .map_err(|_| ClaimError::Malformed("user id is not UTF-8".into()))?;
        let user_id = UserId::parse(raw_id)?;
        if user_id.as_str() != raw_id {
            return Err(ClaimError::Malformed("user id is not in normal form".into()));
        }
        let owner_key = r.get().map_err(bad)?;
        let signature = r.get().map_err(bad)?;
        let request_id =
            std::str::from_utf8(r.bytes("request id", REQUEST_ID_LEN_MAX).map_err(bad)?)
                .map_err(|_| ClaimError::RequestId)?
                .to_owned();
        r.finish().map_err(bad)?;
        check_request_id(&request_id)?;
        Ok(Command::Claim(Claim { user_id, owner_key, signature, request_id }))
    }
}
