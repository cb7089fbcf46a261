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
    /// (deadline, sequence) of every timeout added and not yet due, earliest first. Invariant:
    /// holds every key of `callbacks`; an entry whose callback is gone (cancelled) is skipped
    /// and dropped when it reaches the top.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The callbacks of the pending timeouts, by sequence number: a timeout is pending exactly
    /// while its callback is here.
    callbacks: HashMap<u64, TimerCallback>,
    /// The sequence number of the next timeout. Invariant: above every number handed out, so
    /// numbers are never reused (not even after `clear`).
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

    /// Cancels a timeout and hands back its callback (to be dropped by the caller once the
    /// timers are no longer borrowed: dropping it may run user code that uses the loop).
    /// `None` if it already ran or was cancelled.
    pub(crate) fn cancel(&mut self, seq: u64) -> Option<TimerCallback> {
        self.callbacks.remove(&seq)
    }

    /// Cancels every timeout (handing the callbacks back, as `cancel`); sequence numbers go on
    /// from where they were, so an old `Timeout` never names a new one.
    pub(crate) fn clear(&mut self) -> Vec<TimerCallback> {
        self.heap.clear();
        self.callbacks
            .drain()
            .map(|(_, callback)| callback)
            .collect()
    }

    /// Whether no timeout is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.callbacks.is_empty()
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

    /// Removes and returns the first callback due at `now`, in (deadline, sequence) order.
    /// One at a time: a due callback may cancel another one due in the same iteration.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerCallback> {
        while let Some(&Reverse((deadline, seq))) = self.heap.peek() {
            if deadline > now {
                return None;
            }
            self.heap.pop();
            if let Some(callback) = self.callbacks.remove(&seq) {
                return Some(callback);
            }
        }
        None
    }
}
