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
//! queue holds each slot at the earliest time it was queued for; arming for a *later* time only
//! updates `armed`, and when the queue entry comes due the thread re-queues the slot at its
//! current `armed` time instead of acting. A busy socket therefore costs one queue operation per
//! interval, not one per park, and a disarmed slot leaves the queue at its entry's time.
//!
//! The queue groups slots by time ([`Queue`]): fallback checks fall on a few granule times, so
//! the thread takes a whole batch at once and re-queues a slot with a push onto a batch, where a
//! heap of every slot would cost two sift operations per check (10,000 idle sockets make 5,000
//! checks a second at the default interval).

use std::collections::BTreeMap;
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
    /// The earliest time this slot sits in the queue for ([`NEVER`] if not queued). Written
    /// under the queue lock only.
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

    /// Ends the wait this thread claimed, for `why`, unless the owner has re-armed or disarmed
    /// the slot since the claim: that wait is over already, and a wake-up now would land on the
    /// next one (a spurious wake and, for a fallback, a false missed-edge count).
    fn fire(&self, why: u8) {
        let still_claimed = self
            .armed
            .compare_exchange(CLAIMED, NEVER, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if still_claimed {
            self.fired.store(why, Ordering::SeqCst);
            self.waker.wakeup();
        }
    }
}

/// Slots (`T`) by the time they come due, in batches: one entry per distinct time.
struct Queue<T = Arc<Slot>> {
    batches: BTreeMap<u64, Vec<T>>,
    /// Emptied batch vectors, reused so that steady-state re-queuing does not allocate.
    spare: Vec<Vec<T>>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            batches: BTreeMap::new(),
            spare: Vec::new(),
        }
    }
}

impl<T> Queue<T> {
    fn push(&mut self, at: u64, slot: T) {
        let spare = &mut self.spare;
        self.batches
            .entry(at)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push(slot);
    }

    /// The time of the earliest batch.
    fn first_at(&self) -> Option<u64> {
        self.batches.first_key_value().map(|(&at, _)| at)
    }

    /// Takes the earliest batch if it is due at `now`.
    fn pop_due(&mut self, now: u64) -> Option<(u64, Vec<T>)> {
        if self.first_at()? > now {
            return None;
        }
        self.batches.pop_first()
    }

    /// Hands back an emptied batch vector.
    fn recycle(&mut self, batch: Vec<T>) {
        debug_assert!(batch.is_empty());
        if self.spare.len() < 64 {
            self.spare.push(batch);
        }
    }
}

struct Timer {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl Timer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, slot: &Arc<Slot>, at: u64) {
        let mut queue = self.lock();
        if at >= slot.queued.load(Ordering::SeqCst) {
            return; // queued meanwhile for an earlier time by another arm
        }
        slot.queued.store(at, Ordering::SeqCst);
        let becomes_first = queue.first_at().is_none_or(|first| at < first);
        queue.push(at, slot.clone());
        if becomes_first {
            self.changed.notify_one();
        }
    }

    /// Decides what a slot whose queue entry came due needs: nothing (disarmed), a later entry
    /// (re-armed for later), or an action now (claimed and collected in `due`).
    fn settle(slot: Arc<Slot>, now: u64, queue: &mut Queue, due: &mut Vec<Arc<Slot>>) {
        loop {
            let armed = slot.armed.load(Ordering::SeqCst);
            if armed >= CLAIMED || slot.retired.load(Ordering::SeqCst) {
                return;
            }
            if armed > now {
                if armed < slot.queued.load(Ordering::SeqCst) {
                    slot.queued.store(armed, Ordering::SeqCst);
                    queue.push(armed, slot);
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

    /// Acts on claimed slots, outside the queue lock: wakes the owners whose deadline passed,
    /// and polls the fds of those due a fallback check, waking only the ones that are readable.
    fn act(&self, due: &mut Vec<Arc<Slot>>, checks: &mut Vec<libc::pollfd>) {
        let now = ticks(Instant::now());
        due.retain(|slot| {
            if slot.retired.load(Ordering::SeqCst) {
                return false;
            }
            if slot.deadline.load(Ordering::SeqCst) <= now {
                slot.fire(FIRED_DEADLINE);
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
        let mut rearmed = Vec::with_capacity(due.len());
        for (slot, check) in due.drain(..).zip(checks.iter()) {
            if rc < 0 || check.revents != 0 {
                slot.fire(FIRED_FALLBACK);
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
            let mut queue = self.lock();
            for (slot, next) in rearmed {
                if next < slot.queued.load(Ordering::SeqCst) {
                    slot.queued.store(next, Ordering::SeqCst);
                    queue.push(next, slot);
                }
            }
        }
    }

    fn run(&self) {
        let mut due = Vec::new();
        let mut checks = Vec::new();
        let mut queue = self.lock();
        loop {
            let now = ticks(Instant::now());
            while let Some((at, mut batch)) = queue.pop_due(now) {
                for slot in batch.drain(..) {
                    if slot.queued.load(Ordering::SeqCst) == at {
                        slot.queued.store(NEVER, Ordering::SeqCst);
                    }
                    Self::settle(slot, now, &mut queue, &mut due);
                }
                queue.recycle(batch);
            }
            if !due.is_empty() {
                drop(queue);
                self.act(&mut due, &mut checks);
                queue = self.lock();
                continue;
            }
            queue = match queue.first_at() {
                None => self.changed.wait(queue).unwrap_or_else(|e| e.into_inner()),
                Some(first) => {
                    let wait = Duration::from_nanos(first.saturating_sub(now));
                    self.changed
                        .wait_timeout(queue, wait)
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
            queue: Mutex::new(Queue::default()),
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

#[cfg(test)]
mod tests {
    use super::Queue;

    #[test]
    fn the_queue_hands_out_due_batches_earliest_first() {
        let mut queue = Queue::default();
        for (at, item) in [(30, 'd'), (10, 'a'), (20, 'c'), (10, 'b')] {
            queue.push(at, item);
        }
        assert_eq!(queue.first_at(), Some(10));
        assert_eq!(queue.pop_due(9), None, "nothing is due before 10");
        let (at, mut batch) = queue.pop_due(25).unwrap();
        assert_eq!((at, batch.as_slice()), (10, &['a', 'b'][..]));
        batch.clear();
        queue.recycle(batch);
        assert_eq!(queue.pop_due(25), Some((20, vec!['c'])));
        assert_eq!(queue.pop_due(25), None, "30 is not due at 25");
        queue.push(5, 'e'); // earlier than anything queued: first again
        assert_eq!(queue.first_at(), Some(5));
        assert_eq!(queue.pop_due(u64::MAX), Some((5, vec!['e'])));
        assert_eq!(queue.pop_due(u64::MAX), Some((30, vec!['d'])));
        assert_eq!(queue.first_at(), None);
    }
}
