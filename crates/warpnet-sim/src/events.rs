//! The simulators' event queue: events ordered by virtual time, and among events due at the
//! same time by the order they were scheduled, so that a seed replays a run exactly.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

struct Scheduled<E> {
    time: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.time, self.seq) == (o.time, o.seq)
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Scheduled<E> {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(o.time, o.seq))
    }
}

/// Pending events, earliest first (ties: first scheduled first).
pub struct EventQueue<E> {
    seq: u64,
    heap: BinaryHeap<Reverse<Scheduled<E>>>,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self { seq: 0, heap: BinaryHeap::new() }
    }
}

impl<E> EventQueue<E> {
    pub fn schedule(&mut self, time: u64, event: E) {
        self.seq += 1;
        self.heap.push(Reverse(Scheduled { time, seq: self.seq, event }));
    }

    /// The next event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|Reverse(s)| (s.time, s.event))
    }
}

/// Runs `run` on seeds `first..first + count`, spread over `threads` threads (seed `first + t`
/// and every `threads`-th after it on thread `t`), folding each result into a per-thread summary
/// with `add`; the summaries are then folded together with `merge`. Deterministic per seed.
pub fn sweep<S, R>(
    first: u64,
    count: u64,
    threads: usize,
    run: impl Fn(u64) -> R + Sync,
    add: impl Fn(&mut S, R) + Sync,
    merge: impl Fn(&mut S, S),
) -> S
where
    S: Default + Send,
{
    let threads = threads.max(1) as u64;
    let (run, add) = (&run, &add);
    let parts: Vec<S> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut sum = S::default();
                    let mut seed = first + t;
                    while seed < first + count {
                        add(&mut sum, run(seed));
                        seed += threads;
                    }
                    sum
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut total = S::default();
    for p in parts {
        merge(&mut total, p);
    }
    total
}
