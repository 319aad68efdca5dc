//! The registry inside the node: committed commands (HotStuff's blocks, Raft's entries) applied
//! to the store's `app` table in the same transaction as their commit, and reads of committed
//! state.

use std::collections::{BTreeMap, HashMap};

use warpnet_core::mempool::command_digest;
use warpnet_core::Committed;
use warpnet_state::{try_apply_block_checked, ClaimError, Kv, Outcome};
use warpnet_storage::{AppSnapshot, StoreError};
use warpnet_types::{BlockId, Digest, Height, NetworkId};

/// R1 verdicts computed ahead of commits by the verifier thread, by block.
pub type Verdicts = HashMap<BlockId, Vec<Result<(), ClaimError>>>;

/// Registry writes of commits whose write is not durable yet: key → (write seq, value; empty
/// deletes). They are newer than anything the store holds for their keys.
pub type Overlay = HashMap<Vec<u8>, (u64, Vec<u8>)>;

/// Committed state: a store snapshot, under the writes still in flight and, when applying,
/// the writes of earlier commits of the same step.
pub struct View<'a> {
    /// `None` while a snapshot that replaces the whole state is not durable yet: the store's
    /// older state must not show through then.
    pub base: Option<&'a AppSnapshot>,
    pub in_flight: Option<&'a Overlay>,
    pub step: Option<&'a BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl<'a> View<'a> {
    /// What the store holds (what clients may be told: it is durable).
    pub fn committed(base: &'a AppSnapshot) -> Self {
        Self { base: Some(base), in_flight: None, step: None }
    }
}

impl Kv for View<'_> {
    type Error = StoreError;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let newer = self
            .step
            .and_then(|o| o.get(key))
            .or_else(|| self.in_flight.and_then(|o| o.get(key)).map(|(_, v)| v));
        match newer {
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => Ok(Some(v.clone())),
            None => self.base.map_or(Ok(None), |b| b.get(key)),
        }
    }
}

/// What applying a step's commits produced.
#[derive(Default)]
pub struct Applied {
    /// The state-machine writes of all the commits, for the step's batch.
    pub writes: Vec<(Vec<u8>, Vec<u8>)>,
    /// Each committed command's digest and outcome, to answer the requests waiting for them.
    pub outcomes: Vec<(Digest, Outcome)>,
    /// Blocks with commands whose verdicts were ready, and those checked here.
    pub ahead: usize,
    pub at_commit: usize,
}

/// Applies `commits` (consecutive, in height order) on top of the committed state they extend
/// (`base` under the writes `in_flight`), taking their verdicts from `verdicts` where the
/// verifier computed them already. Deterministic: every node computes the same writes for the
/// same blocks.
pub fn apply(
    network: &NetworkId,
    base: &AppSnapshot,
    in_flight: &Overlay,
    commits: &[Committed],
    verdicts: &mut Verdicts,
) -> Result<Applied, StoreError> {
    let (mut ahead, mut at_commit) = (0, 0);
    let batches = commits.iter().map(|c| {
        let payload = c.block.payload();
        let ready = verdicts.remove(&c.block.id());
        if !payload.is_empty() {
            if ready.is_some() {
                ahead += 1;
            } else {
                at_commit += 1;
            }
        }
        (c.block.height(), payload.as_slice(), ready)
    });
    let mut applied = apply_commands(network, Some(base), in_flight, batches)?;
    (applied.ahead, applied.at_commit) = (ahead, at_commit);
    Ok(applied)
}

/// Applies batches of committed commands (height, commands, their R1 verdicts when computed
/// ahead), in order, on top of the committed state they extend. Deterministic.
pub fn apply_commands<'c>(
    network: &NetworkId,
    base: Option<&AppSnapshot>,
    in_flight: &Overlay,
    batches: impl IntoIterator<Item = (Height, &'c [Vec<u8>], Option<Vec<Result<(), ClaimError>>>)>,
) -> Result<Applied, StoreError> {
    let mut overlay = BTreeMap::new();
    let mut outcomes = Vec::new();
    for (height, commands, ready) in batches {
        let view = View { base, in_flight: Some(in_flight), step: Some(&overlay) };
        let (results, writes) = try_apply_block_checked(network, height, commands, &view, ready)?;
        overlay.extend(writes);
        outcomes.extend(commands.iter().map(|cmd| command_digest(cmd)).zip(results));
    }
    Ok(Applied { writes: overlay.into_iter().collect(), outcomes, ..Applied::default() })
}

/// A stable name of an outcome, for metrics.
pub fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Claimed { .. } => "claimed",
        Outcome::AlreadyYours { .. } => "already_yours",
        Outcome::Taken { .. } => "taken",
        Outcome::Rejected { .. } => "rejected",
        Outcome::Barrier => "barrier",
    }
}
