//! An operator's instruction to its own node (`member endorse KEY`, `member remove KEY
//! --reason TEXT`), signed with the node's key so that nobody else can make a node endorse.
//!
//! The CLI reads the node's key from the node's directory and signs (`TAG_OPERATOR`, network,
//! the node's key, action, issue time in Unix milliseconds); the node checks the signature
//! against its own key, that the instruction was issued within [`FRESH_MS`] of its own clock
//! (the CLI runs beside the node: one clock), and that it has not seen it before.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use warpnet_types::codec::Writer;
use warpnet_types::crypto::{domain, verify_all, SignedItem};
use warpnet_types::{NetworkId, PublicKey, SchemeId, Signature, Signer};

/// How far an instruction's issue time may be from the node's clock, either way.
pub const FRESH_MS: u64 = 60_000;
/// Instructions remembered to refuse replays (older ones are stale anyway).
const SEEN_MAX: usize = 1_024;

/// What the operator asks its node to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Endorse the pending candidate holding `public_key`.
    Endorse { public_key: String },
    /// Endorse (ask for) the removal of the member holding `public_key`.
    Remove { public_key: String, reason: String },
}

impl Action {
    fn write(&self, w: &mut Writer) {
        match self {
            Action::Endorse { public_key } => {
                w.u8(1).bytes(public_key.as_bytes());
            }
            Action::Remove { public_key, reason } => {
                w.u8(2).bytes(public_key.as_bytes()).bytes(reason.as_bytes());
            }
        }
    }
}

/// A signed instruction (`POST /v1/operator`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    #[serde(flatten)]
    pub action: Action,
    pub issued_ms: u64,
    /// Hex, by the node's key over [`signing_bytes`].
    pub signature: String,
}

/// Why an instruction was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error("signature must be 128 hex characters")]
    MalformedSignature,
    #[error("the instruction is not signed by this node's key (sign with the key in the node's directory)")]
    NotThisNode,
    #[error("the instruction was issued {skew_ms} ms away from this node's clock (at most {FRESH_MS} ms)")]
    Stale { skew_ms: u64 },
    #[error("this instruction was already carried out (each is used once)")]
    Replayed,
}

/// `TAG_OPERATOR ‖ network ‖ node key ‖ action ‖ issued_ms`.
pub fn signing_bytes(
    network: &NetworkId,
    node: &PublicKey,
    action: &Action,
    issued_ms: u64,
) -> Vec<u8> {
    let mut w = domain::signing_writer(domain::TAG_OPERATOR, network);
    w.put(node);
    action.write(&mut w);
    w.u64(issued_ms);
    w.finish()
}

/// The CLI's side: the node's own key signs the instruction.
pub fn sign(network: &NetworkId, action: Action, issued_ms: u64, node: &dyn Signer) -> Instruction {
    let bytes = signing_bytes(network, &node.public_key(), &action, issued_ms);
    let signature = hex::encode(node.sign(&bytes).0);
    Instruction { action, issued_ms, signature }
}

/// The node's side: instructions seen lately, to refuse a replay.
#[derive(Default)]
pub struct Guard {
    seen: VecDeque<(u64, String)>,
}

impl Guard {
    /// Checks `i` is from this node's key, fresh, and new; remembers it.
    pub fn check(
        &mut self,
        i: &Instruction,
        network: &NetworkId,
        scheme: SchemeId,
        node: &PublicKey,
        now_ms: u64,
    ) -> Result<(), OperatorError> {
        let raw = hex::decode(&i.signature).map_err(|_| OperatorError::MalformedSignature)?;
        let signature = Signature(raw.try_into().map_err(|_| OperatorError::MalformedSignature)?);
        let message = signing_bytes(network, node, &i.action, i.issued_ms);
        verify_all(scheme, &[SignedItem { key: node, message: &message, signature: &signature }])
            .map_err(|_| OperatorError::NotThisNode)?;
        let skew_ms = now_ms.abs_diff(i.issued_ms);
        if skew_ms > FRESH_MS {
            return Err(OperatorError::Stale { skew_ms });
        }
        self.seen.retain(|(at, _)| now_ms.abs_diff(*at) <= 2 * FRESH_MS);
        if self.seen.iter().any(|(_, s)| *s == i.signature) {
            return Err(OperatorError::Replayed);
        }
        if self.seen.len() >= SEEN_MAX {
            self.seen.pop_front();
        }
        self.seen.push_back((i.issued_ms, i.signature.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warpnet_types::crypto::signer_from_seed;

    fn net() -> NetworkId {
        NetworkId::new("test").unwrap()
    }

    #[test]
    fn only_the_nodes_own_fresh_unseen_instruction_passes() {
        let node = signer_from_seed(SchemeId::Ed25519, 1);
        let other = signer_from_seed(SchemeId::Ed25519, 2);
        let action = Action::Endorse { public_key: "ab".repeat(32) };
        let now = 1_000_000;
        let mut guard = Guard::default();
        let key = node.public_key();
        let good = sign(&net(), action.clone(), now, node.as_ref());
        assert_eq!(guard.check(&good, &net(), SchemeId::Ed25519, &key, now + 5), Ok(()));
        assert_eq!(
            guard.check(&good, &net(), SchemeId::Ed25519, &key, now + 5),
            Err(OperatorError::Replayed)
        );
        let foreign = sign(&net(), action.clone(), now, other.as_ref());
        assert_eq!(
            guard.check(&foreign, &net(), SchemeId::Ed25519, &key, now),
            Err(OperatorError::NotThisNode)
        );
        let old = sign(&net(), action.clone(), now - 2 * FRESH_MS, node.as_ref());
        assert!(matches!(
            guard.check(&old, &net(), SchemeId::Ed25519, &key, now),
            Err(OperatorError::Stale { .. })
        ));
        let mut changed = sign(&net(), action, now + 1, node.as_ref());
        changed.action = Action::Remove { public_key: "ab".repeat(32), reason: "x".into() };
        assert_eq!(
            guard.check(&changed, &net(), SchemeId::Ed25519, &key, now),
            Err(OperatorError::NotThisNode),
            "the action is signed"
        );
        let json = serde_json::to_value(&good).unwrap();
        assert_eq!(json["action"], "endorse");
        assert_eq!(serde_json::from_value::<Instruction>(json).unwrap(), good);
    }
}
