//! The IOLoop's timers: one-shot timeouts ordered by (deadline, sequence) with lazy
//! cancellation, as tornado's IOLoop and CZMQ's zloop keep them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

/// A callback waiting for its deadline.
pub(crate) type TimerCallback = Box<dyn FnOnce()>;

/// Pending timeouts. Cancelling removes the callback; its heap entry is skipped when it comes
/// due.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    callbacks: HashMap<u64, TimerCallback>,
    next_seq: u64,
}

impl Timers {
    pub(crate) fn add(&mut self, deadline: Instant, callback: TimerCallback) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((deadline, seq)));
        self.callbacks.insert(seq, callback);
        seq
    }

    /// Cancels a timeout; false if it already ran or was cancelled.
    pub(crate) fn cancel(&mut self, seq: u64) -> bool {
        self.callbacks.remove(&seq).is_some()
    }

    pub(crate) fn is_pending(&self, seq: u64) -> bool {
        self.callbacks.contains_key(&seq)
    }

    /// The earliest live deadline (drops cancelled entries on the way).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, seq))) = self.heap.peek() {
            if self.callbacks.contains_key(&seq) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Removes and returns the callbacks due at `now`, in (deadline, sequence) order.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<TimerCallback> {
        let mut due = Vec::new();
        while let Some(&Reverse((deadline, seq))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if let Some(callback) = self.callbacks.remove(&seq) {
                due.push(callback);
            }
        }
        due
    }
}
