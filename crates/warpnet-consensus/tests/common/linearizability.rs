//! A linearizability checker for the registry's client history: each user ID is a write-once
//! register (claims are writes, linearizable lookups are reads).
//!
//! For one ID, a history is linearizable exactly when some claim W (the winner, owner O) can be
//! placed at a point t with:
//! - every operation that *observed* O (a claim answered `claimed`/`already_yours`/`taken`
//!   naming O, a read returning O) responded after t, and t is after W's invocation;
//! - every read that returned "not found" was invoked before t (it must take effect before W);
//! - no two operations observed different owners (or one owner at different heights), a claim
//!   answered `claimed` or `already_yours` names its own key, and a claim answered `taken`
//!   names another key.
//!
//! Claims whose outcome is unknown (timeouts, dropped connections) may have taken effect or
//! not. If no operation observed an owner, "not found" reads are always fine.
//!
//! So the check per ID: all observations agree on (O, height); O claimed the ID in the history;
//! and max(invocation of O's earliest claim, invocation of every "not found" read) precedes
//! min(response of every observation).

use std::collections::BTreeMap;

/// What a client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// The claim's answer: `claimed`/`already_yours` (mine = true) or `taken` (mine = false),
    /// naming the owner and its height.
    Claim { mine: bool, owner: String, height: u64 },
    /// A linearizable read: the owner and height, or None for "not found".
    Read(Option<(String, u64)>),
    /// No answer, or an answer that leaves the outcome unknown.
    Unknown,
}

/// One operation: who (for claims, the claimer's key), on what, when, and what it saw.
#[derive(Clone, Debug)]
pub struct Op {
    pub id: String,
    /// The claimer's key (hex) for a claim; None for a read.
    pub key: Option<String>,
    /// Invocation and response times (any monotonic unit, e.g. µs since the test began).
    pub invoked: u64,
    pub responded: u64,
    pub seen: Seen,
}

/// Checks the whole history; the error names the first ID whose history cannot be linearized.
pub fn check(history: &[Op]) -> Result<(), String> {
    let mut by_id: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in history {
        by_id.entry(&op.id).or_default().push(op);
    }
    for (id, ops) in by_id {
        check_one(id, &ops)?;
    }
    Ok(())
}

fn check_one(id: &str, ops: &[&Op]) -> Result<(), String> {
    // What every operation observed about the owner.
    let mut observed: Option<(&str, u64)> = None;
    let mut earliest_observation = u64::MAX;
    for op in ops {
        let owner = match &op.seen {
            Seen::Claim { mine, owner, height } => {
                let key = op.key.as_deref().unwrap_or("");
                if *mine != (owner == key) {
                    return Err(format!(
                        "{id}: a claim by {key} was answered {} but names owner {owner}",
                        if *mine { "claimed/already_yours" } else { "taken" }
                    ));
                }
                Some((owner.as_str(), *height))
            }
            Seen::Read(Some((owner, height))) => Some((owner.as_str(), *height)),
            Seen::Read(None) | Seen::Unknown => None,
        };
        if let Some(o) = owner {
            if let Some(prev) = observed {
                if prev != o {
                    return Err(format!("{id}: two owners observed: {prev:?} and {o:?}"));
                }
            }
            observed = Some(o);
            earliest_observation = earliest_observation.min(op.responded);
        }
    }
    let Some((owner, _)) = observed else { return Ok(()) };
    // The winner's write: the earliest invocation of a claim by the owner.
    let Some(write) =
        ops.iter().filter(|op| op.key.as_deref() == Some(owner)).map(|op| op.invoked).min()
    else {
        return Err(format!("{id}: owner {owner} never claimed it"));
    };
    if write >= earliest_observation {
        return Err(format!(
            "{id}: owner {owner} was observed (by t={earliest_observation}) before its claim began (t={write})"
        ));
    }
    for op in ops {
        if op.seen == Seen::Read(None) && op.invoked >= earliest_observation {
            return Err(format!(
                "{id}: a read begun at t={} found nothing, after the owner {owner} had been observed (t={earliest_observation}): a committed claim was lost or unseen",
                op.invoked
            ));
        }
    }
    Ok(())
}
