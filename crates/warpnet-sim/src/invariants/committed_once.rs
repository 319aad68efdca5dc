//! Every committed command is committed once: at one height only, on every honest replica.

use std::collections::HashMap;

use warpnet_types::Height;

use super::Violation;

#[derive(Default)]
pub struct CommittedOnce {
    /// (replica, command) -> height it committed at.
    seen: HashMap<(usize, Vec<u8>), Height>,
}

impl CommittedOnce {
    pub fn on_commit(
        &mut self,
        replica: usize,
        height: Height,
        payload: &[Vec<u8>],
        now: u64,
    ) -> Option<Violation> {
        for cmd in payload {
            let h = *self.seen.entry((replica, cmd.clone())).or_insert(height);
            if h != height {
                return Some(Violation {
                    invariant: "committed-once",
                    at_ms: now,
                    detail: format!(
                        "replica {replica} committed command {:?} at heights {h} and {height}",
                        String::from_utf8_lossy(cmd)
                    ),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_a_command_at_two_heights_but_allows_a_recommit_at_the_same_height() {
        let mut c = CommittedOnce::default();
        let p = vec![b"x".to_vec()];
        assert!(c.on_commit(0, Height(3), &p, 0).is_none());
        assert!(c.on_commit(0, Height(3), &p, 0).is_none(), "re-commit after restart");
        assert!(c.on_commit(0, Height(4), &p, 0).is_some());
    }
}
