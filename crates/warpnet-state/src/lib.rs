//! The replicated state machine of WarpNet Consensus: the globally unique user-ID registry.
//!
//! Every node applies the same committed commands, in the same order, to the same replicated
//! registry (never to node-local data), so every honest node reaches the same verdict: the
//! first committed claim of an ID wins; the same key claiming again gets `already_yours`;
//! another key gets `taken`. A retried request (same owner key and request id) gets the result
//! recorded the first time. Commands that do not decode or whose signature does not verify
//! (only a Byzantine leader can put them in a block: nodes check claims before proposing) are
//! rejected, identically everywhere, and change nothing.
//!
//! Pure and deterministic: no I/O, no clock. State lives behind [`Kv`]; the node gives it the
//! store's `app` table, and the writes of a block go into the same transaction as its commit.

#![forbid(unsafe_code)]

mod claim;
mod id;
mod registry;
mod verdicts;

pub use claim::{
    claim_signing_bytes, verify_claims, verify_claims_cached, Claim, ClaimError, Command,
    BARRIER_NONCE_BYTES, REQUEST_ID_LEN_MAX,
};
pub use id::{IdError, UserId, USER_ID_LEN_MAX};
pub use registry::{
    apply_block, block_verdicts, block_verdicts_cached, decode_owner, lookup, settled,
    try_apply_block, try_apply_block_checked, user_key, Kv, MemoryKv, Outcome, Owner, Writes,
};
pub use verdicts::{VerdictCache, VERDICTS_PER_GENERATION};
