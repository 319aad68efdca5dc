//! Nothing acknowledged is lost (RF13): a client has its answer once some replica applies its
//! command (the node answers at apply, before the registry's write of it is durable); when a
//! run ends with the liveness phase complete, every voter that has applied as far as the index
//! of that first answer holds the command.

use std::collections::BTreeMap;

use super::Violation;

/// `acknowledged`: each answered command and the index of its first answer; `holders`: each
/// voter, its applied index and the commands its state machine holds.
pub fn check(
    acknowledged: &BTreeMap<Vec<u8>, u64>,
    holders: &[(usize, u64, &[Vec<u8>])],
    now: u64,
) -> Option<Violation> {
    let lost: Vec<String> = acknowledged
        .iter()
        .flat_map(|(c, &at)| {
            holders
                .iter()
                .filter(move |(_, applied, held)| *applied >= at && !held.contains(c))
                .map(move |(v, applied, _)| {
                    let c = String::from_utf8_lossy(c);
                    format!("{c} (answered at index {at}; voter {v} applied {applied} without it)")
                })
        })
        .take(8)
        .collect();
    (!lost.is_empty()).then(|| Violation {
        invariant: "acknowledged-lost",
        at_ms: now,
        detail: format!("acknowledged commands lost: {}", lost.join(", ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_answered_and_missing_from_a_voter_past_it_is_reported() {
        let ack: BTreeMap<Vec<u8>, u64> = [(b"a".to_vec(), 3), (b"b".to_vec(), 5)].into();
        let full = vec![b"a".to_vec(), b"b".to_vec()];
        let short = vec![b"a".to_vec()];
        assert!(check(&ack, &[(0, 5, &full), (1, 5, &full)], 9).is_none());
        // Voter 1 has not applied index 5 yet: not a loss.
        assert!(check(&ack, &[(0, 5, &full), (1, 4, &short)], 9).is_none());
        let v = check(&ack, &[(0, 5, &full), (1, 6, &short)], 9).expect("b is lost on voter 1");
        assert!(v.detail.contains("voter 1"), "{v}");
    }
}
