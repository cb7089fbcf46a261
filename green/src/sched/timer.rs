//! The wake-up timer of the may backend: one background thread that ends parked waits at their
//! deadline (a `RCVTIMEO`/`SNDTIMEO` expiry) and runs the fallback checks that bound a missed
//! edge.
//!
//! may's `wait_io` takes no timeout, so each registered socket owns one [`Slot`], which this
//! thread wakes through the socket's `WaitIoWaker`.
//!
//! # Fallback checks cost no wake-up
//! A fallback check is due every `interval` while a coroutine is parked. Waking the coroutine
//! to re-read `ZMQ_EVENTS` would cost a context switch per parked socket per interval, so the
//! thread first polls the notification fds of all checks due together, with one `poll(2)` call
//! and a zero timeout (checks are rounded to a coarse granule so that they come due in
//! batches). libzmq signals every change of a socket's state through that fd (it is
//! how `zmq_poll` itself works), and the parked owner drained it before parking: an fd that is
//! not readable means nothing happened and the check is simply re-armed. A readable fd means
//! the scheduler missed its edge, and only then is the owner woken.
//!
//! # Cost model
//! Parking is the hot path, so arming a slot is a few atomic stores in the common case. The
//! heap holds each slot at the earliest time it was queued for; arming for a *later* time only
//! updates `armed`, and when the heap entry comes due the thread re-queues the slot at its
//! current `armed` time instead of acting. A busy socket therefore costs one heap operation per
//! interval, not one per park, and a disarmed slot leaves the heap at its entry's time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use may::io::WaitIoWaker;

/// `armed`/`queued`/`deadline` value meaning "never".
const NEVER: u64 = u64::MAX;
/// Fallback checks are rounded up to a multiple of this many nanoseconds (about 33 ms), so that
/// the checks of many sockets come due together and share one `poll(2)` call and one wake-up of
/// this thread. Deadlines are not rounded.
const CHECK_GRANULE: u64 = 1 << 25;

/// The time of the first fallback check for a wait that started (or was last checked) at `now`.
fn next_check(now: u64, interval: u64) -> u64 {
    now.saturating_add(interval)
        .saturating_add(CHECK_GRANULE - 1)
        / CHECK_GRANULE
        * CHECK_GRANULE
}

/// `armed` value while the timer thread acts on a slot it claimed. The owner's `arm` and
/// `disarm` overwrite it, which tells the thread not to re-arm a wait that is over.
const CLAIMED: u64 = u64::MAX - 1;

/// What ended a wait, as recorded by the timer thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fired {
    /// The hard deadline passed.
    Deadline,
    /// A fallback check found the fd readable although no wake-up came.
    Fallback,
}

const FIRED_NONE: u8 = 0;
const FIRED_DEADLINE: u8 = 1;
const FIRED_FALLBACK: u8 = 2;

/// One socket's timer state.
pub(crate) struct Slot {
    /// The time of the next action (deadline or fallback check), in [`ticks`]; [`NEVER`] when
    /// disarmed, [`CLAIMED`] while the thread acts on it.
    armed: AtomicU64,
    /// The hard deadline of the current wait ([`NEVER`] for none).
    deadline: AtomicU64,
    /// The fallback interval of the current wait, in nanoseconds.
    interval: AtomicU64,
    /// The earliest time this slot sits in the heap for ([`NEVER`] if not queued). Written under
    /// the heap lock only.
    queued: AtomicU64,
    /// Set by the timer thread when it woke the owner; taken by the owner after its wait.
    fired: AtomicU8,
    /// Set when the registration is dropped: the fd may be closed and reused from then on.
    retired: AtomicBool,
    fd: RawFd,
    waker: WaitIoWaker,
}

impl Slot {
    pub(crate) fn new(fd: RawFd, waker: WaitIoWaker) -> Arc<Slot> {
        Arc::new(Slot {
            armed: AtomicU64::new(NEVER),
            deadline: AtomicU64::new(NEVER),
            interval: AtomicU64::new(NEVER),
            queued: AtomicU64::new(NEVER),
            fired: AtomicU8::new(FIRED_NONE),
            retired: AtomicBool::new(false),
            fd,
            waker,
        })
    }

    /// Arms the slot for one wait: a hard `deadline` (if any) and fallback checks every
    /// `interval`.
    pub(crate) fn arm(self: &Arc<Self>, deadline: Option<Instant>, interval: Duration) {
        let now = ticks(Instant::now());
        let deadline = deadline.map_or(NEVER, ticks);
        let interval = u64::try_from(interval.as_nanos()).unwrap_or(NEVER);
        self.fired.store(FIRED_NONE, Ordering::SeqCst); // a late action of an earlier wait
        self.deadline.store(deadline, Ordering::SeqCst);
        self.interval.store(interval, Ordering::SeqCst);
        self.schedule(deadline.min(next_check(now, interval)).min(CLAIMED - 1));
    }

    fn schedule(self: &Arc<Self>, at: u64) {
        self.armed.store(at, Ordering::SeqCst);
        if at < self.queued.load(Ordering::SeqCst) {
            timer().enqueue(self, at);
        }
    }

    /// Cancels the pending wait's actions, if any.
    pub(crate) fn disarm(&self) {
        self.armed.store(NEVER, Ordering::SeqCst);
    }

    /// Disarms for good: called before the watched fd can be closed, after which the thread
    /// must never poll it again (its number may belong to another socket).
    pub(crate) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.disarm();
    }

    /// What the timer did to end the last wait, if it ended it.
    pub(crate) fn take_fired(&self) -> Option<Fired> {
        match self.fired.swap(FIRED_NONE, Ordering::AcqRel) {
            FIRED_DEADLINE => Some(Fired::Deadline),
            FIRED_FALLBACK => Some(Fired::Fallback),
            _ => None,
        }
    }

    fn wake(&self, why: u8) {
        self.fired.store(why, Ordering::SeqCst);
        self.waker.wakeup();
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

type Heap = BinaryHeap<Reverse<Entry>>;

struct Timer {
    heap: Mutex<Heap>,
    changed: Condvar,
}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, Heap> {
        self.heap.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, slot: &Arc<Slot>, at: u64) {
        let mut heap = self.lock();
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
    /// (re-armed for later), or an action now (claimed and collected in `due`).
    fn settle(slot: Arc<Slot>, now: u64, heap: &mut Heap, due: &mut Vec<Arc<Slot>>) {
        loop {
            let armed = slot.armed.load(Ordering::SeqCst);
            if armed >= CLAIMED || slot.retired.load(Ordering::SeqCst) {
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
                    .compare_exchange(armed, CLAIMED, Ordering::SeqCst, Ordering::SeqCst);
            if claim.is_ok() {
                due.push(slot);
                return;
            }
        }
    }

    /// Acts on claimed slots, outside the heap lock: wakes the owners whose deadline passed,
    /// and polls the fds of those due a fallback check, waking only the ones that are readable.
    fn act(&self, due: &mut Vec<Arc<Slot>>, checks: &mut Vec<libc::pollfd>) {
        let now = ticks(Instant::now());
        due.retain(|slot| {
            if slot.retired.load(Ordering::SeqCst) {
                return false;
            }
            if slot.deadline.load(Ordering::SeqCst) <= now {
                slot.wake(FIRED_DEADLINE);
                return false;
            }
            true
        });
        checks.clear();
        checks.extend(due.iter().map(|slot| libc::pollfd {
            fd: slot.fd,
            events: libc::POLLIN,
            revents: 0,
        }));
        // SAFETY: `checks` is a valid array of `checks.len()` pollfds that poll only reads and
        // writes `revents` of; a zero timeout never blocks. poll touches no fd's state, so an fd
        // closed or reused meanwhile (an owner that woke and closed its socket after the claim)
        // costs at most a spurious wake-up of its retired slot, whose waker wakes nobody.
        let rc = unsafe { libc::poll(checks.as_mut_ptr(), checks.len() as libc::nfds_t, 0) };
        let mut rearmed = Vec::new();
        for (slot, check) in due.drain(..).zip(checks.iter()) {
            if rc < 0 || check.revents != 0 {
                slot.wake(FIRED_FALLBACK);
                continue;
            }
            // Nothing happened: check again later, unless the owner re-armed meanwhile.
            let next = slot
                .deadline
                .load(Ordering::SeqCst)
                .min(next_check(now, slot.interval.load(Ordering::SeqCst)))
                .min(CLAIMED - 1);
            let rearm =
                slot.armed
                    .compare_exchange(CLAIMED, next, Ordering::SeqCst, Ordering::SeqCst);
            if rearm.is_ok() {
                rearmed.push((slot, next));
            }
        }
        if !rearmed.is_empty() {
            let mut heap = self.lock();
            for (slot, next) in rearmed {
                if next < slot.queued.load(Ordering::SeqCst) {
                    slot.queued.store(next, Ordering::SeqCst);
                    heap.push(Reverse(Entry { at: next, slot }));
                }
            }
        }
    }

    fn run(&self) {
        let mut due = Vec::new();
        let mut checks = Vec::new();
        let mut heap = self.lock();
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
                self.act(&mut due, &mut checks);
                heap = self.lock();
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

/// Nanoseconds since a process-wide origin, below [`CLAIMED`].
fn ticks(at: Instant) -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    let nanos = at.saturating_duration_since(origin).as_nanos();
    u64::try_from(nanos).unwrap_or(CLAIMED - 1).min(CLAIMED - 1)
}
