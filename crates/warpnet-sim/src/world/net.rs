//! The simulated network: destinations, partitions (random or Twins), loss, duplication and
//! delay, and the Byzantine replicas' own traffic.

use std::rc::Rc;

use warpnet_types::{PublicKey, Round};

use super::{Event, World};
use crate::byzantine::Target;

/// A replica's group in a partition; replicas the schedule does not list (spares) are in the
/// first.
fn group(groups: &[u8], replica: usize) -> u8 {
    groups.get(replica).copied().unwrap_or(0)
}

impl World {
    pub(super) fn send_outgoing(
        &mut self,
        idx: usize,
        out: Vec<(Target, Rc<[u8]>, Option<Round>)>,
    ) {
        let from = self.replicas[idx].key;
        let config = self.config_of(idx);
        for (target, frame, round) in out {
            let to: Vec<PublicKey> = match target {
                Target::All => config.participants().iter().map(|p| p.public_key).collect(),
                Target::Node(n) => config.public_key(n).ok().copied().into_iter().collect(),
                Target::Key(k) => vec![k],
            };
            let dests: Vec<usize> = (0..self.replicas.len())
                .filter(|&j| {
                    let key = self.replicas[j].key;
                    key != from && to.contains(&key)
                })
                .collect();
            for j in dests {
                self.transmit(idx, j, frame.clone(), round);
            }
        }
    }

    pub(super) fn connected(&self, a: usize, b: usize, round: Option<Round>) -> bool {
        if self.cut.is_some_and(|(r, until)| (r == a || r == b) && self.now < until) {
            return false;
        }
        if let (Some(t), Some(r)) = (&self.twins, round) {
            if let Some(groups) = t.groups(r, self.now) {
                return group(groups, a) == group(groups, b);
            }
        }
        if let (Some(t), None) = (&self.twins, round) {
            // Sync traffic follows the partition of the sender's current round.
            let r = self.replicas[a].core.as_ref().map(|c| c.status().round);
            if let Some(groups) = r.and_then(|r| t.groups(r, self.now)) {
                return group(groups, a) == group(groups, b);
            }
        }
        self.partition.as_ref().is_none_or(|g| group(g, a) == group(g, b))
    }

    fn transmit(&mut self, from_idx: usize, to: usize, frame: Rc<[u8]>, round: Option<Round>) {
        self.stats.messages_sent += 1;
        let f = &self.cfg.faults;
        let (loss, dup, delay_max) = if self.after_gst {
            (0.0, 0.0, f.delay_after_gst_ms_max)
        } else {
            (f.loss, f.duplicate, f.delay_ms_max)
        };
        if !self.connected(from_idx, to, round) || self.rng.chance(loss) {
            self.stats.messages_dropped += 1;
            return;
        }
        let from = self.replicas[from_idx].key;
        let copies = if self.rng.chance(dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + self.rng.range(1, delay_max.max(1));
            self.schedule(at, Event::Deliver { to, from, frame: frame.clone() });
        }
    }

    pub(super) fn byz_tick(&mut self, idx: usize) {
        let r = &mut self.replicas[idx];
        let member = r.core.as_ref().and_then(|c| {
            c.id().map(|me| (c.config().clone(), me, (c.status(), c.high_qc().clone())))
        });
        let out = match (r.byz.as_mut(), member) {
            (Some(b), Some((config, me, state))) => {
                b.tick(&config, me, r.signer.as_ref(), Some(state))
            }
            _ => Vec::new(),
        };
        self.send_outgoing(idx, out);
        let next = self.now + self.rng.range(20, 120);
        self.schedule(next, Event::ByzTick(idx));
    }
}
