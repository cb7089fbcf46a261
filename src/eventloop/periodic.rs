//! Repeating work on an [`IOLoop`]: [`PeriodicCallback`] (tornado: start/stop, skips missed
//! ticks), [`IOLoop::add_timer`] (zloop: repeat N times) and tickets (zloop: many cheap
//! timeouts of one delay, each reset on activity, for per-client expiry).
//!
//! All of them are chains of one-shot timeouts on the loop, so cancelling is just cancelling
//! the pending one.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::ioloop::{IOLoop, Timeout};

type Work = Rc<RefCell<dyn FnMut()>>;

/// Runs one tick's work, catching its panic: the next tick is scheduled whatever the work did
/// (tornado's PeriodicCallback logs a failing tick and keeps ticking), then [`rethrow`] hands
/// the panic to the loop, which logs it once.
fn run_work(work: &Work) -> std::thread::Result<()> {
    catch_unwind(AssertUnwindSafe(|| (work.borrow_mut())()))
}

/// Raises a tick's panic again (after the next tick is scheduled), for the loop to log.
fn rethrow(outcome: std::thread::Result<()>) {
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// The next tick after `previous` that is not in the past: missed ticks are skipped, not
/// bunched.
fn next_tick(previous: Instant, period: Duration, now: Instant) -> Instant {
    let mut next = previous + period;
    if next <= now {
        let behind = now.duration_since(next).as_nanos();
        let periods = behind / period.as_nanos().max(1) + 1;
        next += period * u32::try_from(periods).unwrap_or(u32::MAX);
    }
    next
}

/// Calls a function every `period` while started; ticks missed while the loop was busy are
/// skipped. A tick whose work panics is logged (at error level, once per tick) and the
/// callback keeps ticking, as tornado's does.
pub struct PeriodicCallback {
    /// The loop it ticks on.
    ioloop: IOLoop,
    /// The time between ticks; above zero (`new` panics otherwise).
    period: Duration,
    /// What each tick runs; shared with the pending timeout.
    work: Work,
    /// The timeout of the next tick, while one is scheduled (replaced by each tick).
    pending: Rc<RefCell<Option<Timeout>>>,
    /// Started and not stopped: a tick that finds it false schedules nothing more.
    running: Rc<Cell<bool>>,
    /// Bumped by every `start`: a tick of an older chain (stopped and restarted from inside
    /// its own work) sees it changed and ends its chain.
    chain: Rc<Cell<u64>>,
}

impl PeriodicCallback {
    /// A periodic callback on `ioloop` (not started).
    ///
    /// # Panics
    /// If `period` is zero.
    pub fn new(ioloop: &IOLoop, period: Duration, work: impl FnMut() + 'static) -> Self {
        assert!(
            !period.is_zero(),
            "zmqloop: a PeriodicCallback needs a period above zero"
        );
        PeriodicCallback {
            ioloop: ioloop.clone(),
            period,
            work: Rc::new(RefCell::new(work)),
            pending: Rc::new(RefCell::new(None)),
            running: Rc::new(Cell::new(false)),
            chain: Rc::new(Cell::new(0)),
        }
    }

    /// Starts ticking (the first call is one period from now).
    pub fn start(&self) {
        if self.running.replace(true) {
            return;
        }
        self.chain.set(self.chain.get() + 1);
        schedule(
            self.ioloop.clone(),
            Instant::now() + self.period,
            self.period,
            self.work.clone(),
            self.pending.clone(),
            Chain {
                running: self.running.clone(),
                current: self.chain.clone(),
                mine: self.chain.get(),
            },
        );
    }

    /// Stops ticking.
    pub fn stop(&self) {
        self.running.set(false);
        let pending = self.pending.borrow_mut().take();
        if let Some(timeout) = pending {
            timeout.cancel();
        }
    }

    /// Whether it is started.
    pub fn is_running(&self) -> bool {
        self.running.get()
    }
}

impl Drop for PeriodicCallback {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One started run of a periodic callback.
struct Chain {
    /// The callback's `running`.
    running: Rc<Cell<bool>>,
    /// The callback's `chain`: the number of its latest start.
    current: Rc<Cell<u64>>,
    /// The number of the start that made this chain: it lives while `current` still says so.
    mine: u64,
}

impl Chain {
    fn is_live(&self) -> bool {
        self.running.get() && self.current.get() == self.mine
    }
}

fn schedule(
    ioloop: IOLoop,
    at: Instant,
    period: Duration,
    work: Work,
    pending: Rc<RefCell<Option<Timeout>>>,
    chain: Chain,
) {
    let next_loop = ioloop.clone();
    let next_pending = pending.clone();
    let timeout = ioloop.call_at(at, move || {
        if !chain.is_live() {
            return;
        }
        let outcome = run_work(&work);
        if chain.is_live() {
            let next = next_tick(at, period, Instant::now());
            schedule(next_loop, next, period, work, next_pending, chain);
        }
        rethrow(outcome);
    });
    *pending.borrow_mut() = Some(timeout);
}

/// A repeating timer from [`IOLoop::add_timer`]; cancel it to stop early.
pub struct Timer {
    /// The timeout of the next call, while one is scheduled (replaced by each call).
    pending: Rc<RefCell<Option<Timeout>>>,
    /// Calls left: `None` for a timer that runs until cancelled; `Some(0)` once done or
    /// cancelled, and for good.
    remaining: Rc<Cell<Option<usize>>>,
}

impl Timer {
    /// Stops the timer.
    pub fn cancel(&self) {
        self.remaining.set(Some(0));
        let pending = self.pending.borrow_mut().take();
        if let Some(timeout) = pending {
            timeout.cancel();
        }
    }

    /// Whether more calls are due.
    pub fn is_active(&self) -> bool {
        self.remaining.get() != Some(0)
    }
}

impl IOLoop {
    /// Calls `work` every `interval`, `times` times (0 = until cancelled), like zloop's
    /// timers. A call that panics is logged (at error level) and counts as one of the `times`;
    /// the timer goes on.
    pub fn add_timer(
        &self,
        interval: Duration,
        times: usize,
        work: impl FnMut() + 'static,
    ) -> Timer {
        let timer = Timer {
            pending: Rc::new(RefCell::new(None)),
            remaining: Rc::new(Cell::new((times > 0).then_some(times))),
        };
        repeat(
            self.clone(),
            interval,
            Rc::new(RefCell::new(work)),
            timer.pending.clone(),
            timer.remaining.clone(),
        );
        timer
    }

    /// A ticket: `work` runs once the [ticket delay](IOLoop::set_ticket_delay) has passed
    /// without a [`Ticket::reset`] (zloop's per-client expiry).
    pub fn add_ticket(&self, work: impl FnMut() + 'static) -> Ticket {
        let ticket = Ticket {
            ioloop: self.clone(),
            work: Rc::new(RefCell::new(work)),
            pending: RefCell::new(None),
        };
        ticket.reset();
        ticket
    }
}

fn repeat(
    ioloop: IOLoop,
    interval: Duration,
    work: Work,
    pending: Rc<RefCell<Option<Timeout>>>,
    remaining: Rc<Cell<Option<usize>>>,
) {
    if remaining.get() == Some(0) {
        return;
    }
    let next_loop = ioloop.clone();
    let next_pending = pending.clone();
    let timeout = ioloop.call_later(interval, move || {
        match remaining.get() {
            Some(0) => return,
            Some(n) => remaining.set(Some(n - 1)),
            None => {}
        }
        let outcome = run_work(&work);
        repeat(next_loop, interval, work, next_pending, remaining);
        rethrow(outcome);
    });
    *pending.borrow_mut() = Some(timeout);
}

/// A resettable one-shot timeout of the loop's ticket delay. Dropping it cancels it.
pub struct Ticket {
    /// The loop it runs on (its ticket delay is read at each reset).
    ioloop: IOLoop,
    /// What runs when the ticket expires; shared with the pending timeout.
    work: Work,
    /// The timeout armed by the last reset, if any (it may have fired since).
    pending: RefCell<Option<Timeout>>,
}

impl Ticket {
    /// Restarts the delay from now (a ticket that already fired is armed again).
    pub fn reset(&self) {
        self.cancel();
        let work = self.work.clone();
        let timeout = self
            .ioloop
            .call_later(self.ioloop.ticket_delay(), move || (work.borrow_mut())());
        *self.pending.borrow_mut() = Some(timeout);
    }

    /// Cancels the ticket.
    pub fn cancel(&self) {
        let pending = self.pending.borrow_mut().take();
        if let Some(timeout) = pending {
            timeout.cancel();
        }
    }

    /// Whether it will still fire.
    pub fn is_pending(&self) -> bool {
        self.pending
            .borrow()
            .as_ref()
            .is_some_and(Timeout::is_pending)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_tick_skips_missed_ticks() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        assert_eq!(next_tick(t0, p, t0), t0 + p);
        assert_eq!(next_tick(t0, p, t0 + Duration::from_millis(35)), t0 + 4 * p);
        assert_eq!(next_tick(t0, p, t0 + Duration::from_millis(10)), t0 + 2 * p);
    }
}
