//! The wake-up timer of the may backend: one background thread that wakes parked coroutines at
//! their deadline (a `RCVTIMEO`/`SNDTIMEO` expiry or the fallback that bounds a missed edge).
//!
//! may's `wait_io` takes no timeout, so each registered socket owns one [`Slot`], which this
//! thread wakes through the socket's `WaitIoWaker`.
//!
//! # Cost model
//! Parking is the hot path, so arming a slot is one atomic store in the common case. The heap
//! holds each slot at the earliest time it was queued for; arming for a *later* time only
//! updates `armed`, and when the heap entry comes due the thread re-queues the slot at its current
//! `armed` time instead of waking it. A busy socket therefore costs one heap operation per
//! fallback interval, not one per park, and a disarmed slot leaves the heap at its entry's time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use may::io::WaitIoWaker;

/// `armed`/`queued` value meaning "no deadline".
const NEVER: u64 = u64::MAX;

/// One socket's deadline.
pub(crate) struct Slot {
    /// The deadline the owner wants, in [`ticks`]; [`NEVER`] when disarmed.
    armed: AtomicU64,
    /// The earliest time this slot sits in the heap for ([`NEVER`] if not queued). Written under
    /// the heap lock only.
    queued: AtomicU64,
    /// Set by the timer thread when it woke the owner; taken by the owner after its wait.
    fired: AtomicBool,
    waker: WaitIoWaker,
}

impl Slot {
    pub(crate) fn new(waker: WaitIoWaker) -> Arc<Slot> {
        Arc::new(Slot {
            armed: AtomicU64::new(NEVER),
            queued: AtomicU64::new(NEVER),
            fired: AtomicBool::new(false),
            waker,
        })
    }

    /// Asks for a wake-up at `at` (replacing any earlier request).
    pub(crate) fn arm(self: &Arc<Self>, at: Instant) {
        let at = ticks(at);
        self.armed.store(at, Ordering::SeqCst);
        if at < self.queued.load(Ordering::SeqCst) {
            timer().enqueue(self, at);
        }
    }

    /// Cancels the pending request, if any.
    pub(crate) fn disarm(&self) {
        self.armed.store(NEVER, Ordering::SeqCst);
    }

    /// Whether the timer woke the owner since the last call.
    pub(crate) fn take_fired(&self) -> bool {
        self.fired.swap(false, Ordering::AcqRel)
    }
}

struct Entry {
    at: u64,
    slot: Arc<Slot>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

struct Timer {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    changed: Condvar,
}

impl Timer {
    fn enqueue(&self, slot: &Arc<Slot>, at: u64) {
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        if at >= slot.queued.load(Ordering::SeqCst) {
            return; // queued meanwhile for an earlier time by another arm
        }
        slot.queued.store(at, Ordering::SeqCst);
        let becomes_first = heap.peek().is_none_or(|Reverse(first)| at < first.at);
        heap.push(Reverse(Entry {
            at,
            slot: slot.clone(),
        }));
        if becomes_first {
            self.changed.notify_one();
        }
    }

    /// Decides what a slot whose heap entry came due needs: nothing (disarmed), a later entry
    /// (re-armed for later), or a wake-up (collected in `due`).
    fn settle(
        slot: Arc<Slot>,
        now: u64,
        heap: &mut BinaryHeap<Reverse<Entry>>,
        due: &mut Vec<Arc<Slot>>,
    ) {
        loop {
            let armed = slot.armed.load(Ordering::SeqCst);
            if armed == NEVER {
                return;
            }
            if armed > now {
                if armed < slot.queued.load(Ordering::SeqCst) {
                    slot.queued.store(armed, Ordering::SeqCst);
                    heap.push(Reverse(Entry { at: armed, slot }));
                }
                return;
            }
            let claim =
                slot.armed
                    .compare_exchange(armed, NEVER, Ordering::SeqCst, Ordering::SeqCst);
            if claim.is_ok() {
                due.push(slot);
                return;
            }
        }
    }

    fn run(&self) {
        let mut due = Vec::new();
        let mut heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = ticks(Instant::now());
            while heap.peek().is_some_and(|Reverse(first)| first.at <= now) {
                let Reverse(entry) = heap.pop().expect("peeked");
                if entry.slot.queued.load(Ordering::SeqCst) == entry.at {
                    entry.slot.queued.store(NEVER, Ordering::SeqCst);
                }
                Self::settle(entry.slot, now, &mut heap, &mut due);
            }
            if !due.is_empty() {
                drop(heap);
                for slot in due.drain(..) {
                    slot.fired.store(true, Ordering::SeqCst);
                    slot.waker.wakeup();
                }
                heap = self.heap.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            heap = match heap.peek() {
                None => self.changed.wait(heap).unwrap_or_else(|e| e.into_inner()),
                Some(Reverse(first)) => {
                    let wait = Duration::from_nanos(first.at.saturating_sub(now));
                    self.changed
                        .wait_timeout(heap, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<&'static Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            heap: Mutex::new(BinaryHeap::new()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("zmqloop-timer".into())
            .spawn(move || timer.run())
            .expect("zmqloop: cannot start the timer thread");
        timer
    })
}

/// Nanoseconds since a process-wide origin, never [`NEVER`].
fn ticks(at: Instant) -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    let nanos = at.saturating_duration_since(origin).as_nanos();
    u64::try_from(nanos).unwrap_or(NEVER - 1).min(NEVER - 1)
}
