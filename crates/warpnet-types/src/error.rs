//! The typed reasons a block, vote, certificate or message is refused.

use crate::bitmap::BitmapError;
use crate::{BlockId, Epoch, NodeId, Round};

/// Why `validate(&config)` refused something. Every variant carries the values that explain it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{kind} is for epoch {got}, this committee is epoch {expected}")]
    WrongEpoch { kind: &'static str, expected: Epoch, got: Epoch },
    #[error("{kind} names node {id}, the committee has {total} members")]
    UnknownNode { kind: &'static str, id: NodeId, total: usize },
    #[error("{kind} has a bad voter bitmap: {source}")]
    Bitmap {
        kind: &'static str,
        #[source]
        source: BitmapError,
    },
    #[error("{kind} lists {voters} signers but carries {signatures} signatures")]
    SignatureCount { kind: &'static str, voters: usize, signatures: usize },
    #[error("timeout certificate lists {signers} signers but {rounds} highest-QC rounds")]
    HighQcRoundCount { signers: usize, rounds: usize },
    #[error("{kind} has {got} signers, a quorum is {need}")]
    NoQuorum { kind: &'static str, got: usize, need: usize },
    #[error("{kind} carries an invalid signature by node {signer}")]
    BadSignature { kind: &'static str, signer: NodeId },
    #[error("a round-0 quorum certificate must be this committee's genesis certificate")]
    NotGenesis,
    #[error(
        "block of round {round} is justified by a QC of round {justify_round}, which is not lower"
    )]
    JustifyNotLower { round: Round, justify_round: Round },
    #[error("block's parent {parent} is not the block its QC certifies ({justify})")]
    ParentMismatch { parent: BlockId, justify: BlockId },
    #[error("only genesis has height 0 or round 0")]
    GenesisShape,
    #[error(
        "{kind} of round {round} carries a highest QC round {high_qc_round} that is not lower"
    )]
    HighQcNotLower { kind: &'static str, round: Round, high_qc_round: Round },
    #[error("proposal of round {round} carries a timeout certificate of round {tc_round}; it must be round {round} - 1")]
    TcRound { round: Round, tc_round: Round },
    #[error("proposal of round {round} is justified neither by a QC of round {round} - 1 (has {qc_round}) nor by a TC")]
    NoJustification { round: Round, qc_round: Round },
    #[error(
        "proposal extends a QC of round {qc_round}, below the highest QC round {tc_max} of its timeout certificate"
    )]
    StaleHighQc { qc_round: Round, tc_max: Round },
    #[error(
        "timeout of round {round} carries a TC of round {tc_round}; it must be round {round} - 1"
    )]
    TimeoutTcRound { round: Round, tc_round: Round },
    #[error(
        "timeout certificate's highest QC round is {tc_max} but the QC it carries is of round {qc_round}"
    )]
    TcHighQcMismatch { tc_max: Round, qc_round: Round },
    #[error("a block's failed rounds must name members of a committee of {total} in ascending order, each at least once; got node {id} failing {count} times")]
    FailedRounds { id: NodeId, count: u32, total: usize },
    #[error("a health summary lists {got} members, not the committee's {total} in order")]
    SummaryMembers { got: usize, total: usize },
    #[error("late votes must be for a certified round and name members of a committee of {total} in ascending order, each once; got node {id}")]
    LateVoter { id: NodeId, total: usize },
    #[error("attestations must name members of a committee of {total} in ascending order, each once, none attesting itself; got node {id}")]
    Attester { id: NodeId, total: usize },
    #[error(
        "payload has {count} commands and {bytes} bytes, limits are {count_max} and {bytes_max}"
    )]
    PayloadTooLarge { count: usize, bytes: usize, count_max: usize, bytes_max: usize },
}
