//! The simulated network: destinations, partitions (random or Twins), loss, duplication and
//! delay, and the Byzantine replicas' own traffic.

use std::rc::Rc;

use warpnet_types::Round;

use super::{Event, World};
use crate::byzantine::Target;

impl World {
    pub(super) fn send_outgoing(
        &mut self,
        idx: usize,
        out: Vec<(Target, Rc<[u8]>, Option<Round>)>,
    ) {
        for (target, frame, round) in out {
            let from = self.replicas[idx].node;
            let dests: Vec<usize> = (0..self.replicas.len())
                .filter(|&j| {
                    let node = self.replicas[j].node;
                    node != from
                        && match target {
                            Target::All => true,
                            Target::Node(n) => n == node,
                        }
                })
                .collect();
            for j in dests {
                self.transmit(idx, j, frame.clone(), round);
            }
        }
    }

    fn connected(&self, a: usize, b: usize, round: Option<Round>) -> bool {
        if let (Some(t), Some(r)) = (&self.twins, round) {
            if let Some(groups) = t.groups(r, self.now) {
                return groups[a] == groups[b];
            }
        }
        if let (Some(t), None) = (&self.twins, round) {
            // Sync traffic follows the partition of the sender's current round.
            let r = self.replicas[a].core.as_ref().map(|c| c.status().round);
            if let Some(groups) = r.and_then(|r| t.groups(r, self.now)) {
                return groups[a] == groups[b];
            }
        }
        self.partition.as_ref().is_none_or(|g| g[a] == g[b])
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
        let from = self.replicas[from_idx].node;
        let copies = if self.rng.chance(dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = self.now + self.rng.range(1, delay_max.max(1));
            self.schedule(at, Event::Deliver { to, from, frame: frame.clone() });
        }
    }

    pub(super) fn byz_tick(&mut self, idx: usize) {
        let r = &mut self.replicas[idx];
        let state = r.core.as_ref().map(|c| (c.status(), c.high_qc().clone()));
        let out = match r.byz.as_mut() {
            Some(b) => b.tick(&self.config, r.node, r.signer.as_ref(), state),
            None => Vec::new(),
        };
        self.send_outgoing(idx, out);
        let next = self.now + self.rng.range(20, 120);
        self.schedule(next, Event::ByzTick(idx));
    }
}
