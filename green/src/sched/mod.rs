//! The scheduler seam: the one place that knows which scheduler runs the current call.
//!
//! Code above the seam asks a scheduler for these things, and nothing else:
//! - [`current`]: is this call running inside one of your coroutines (and whose)?
//! - [`Registration::park`]: park this coroutine until the socket's notification fd signals or
//!   a deadline passes, checking the fd every fallback interval in case its signal was missed;
//!   say which of these ended the wait.
//! - [`run_off_thread`]: run a blocking libzmq call (context termination) on another OS thread
//!   while only this coroutine waits for it.
//! - [`start_here`]: start work beside the caller on its own scheduler (devices, the
//!   authenticator: `crate::task`).
//! - [`locals`]: the storage of the place the caller runs in (`crate::local`): the current
//!   coroutine's, hub task's, or thread's.
//!
//! Everything about *when* to park (the readiness rule) lives in `readiness`, above this seam;
//! everything about *how* to park lives in the backends below it. A backend never inspects zmq
//! state, and the socket code never names a backend.

mod hub;
mod may;

use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::local::Locals;

pub(crate) use self::may::EndOfBody;

/// A scheduler that can park the current call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheduler {
    /// A may coroutine (M:N, any worker thread).
    May,
    /// A task of the single-threaded hub running on this thread (`crate::hub`).
    Hub,
}

/// The scheduler running the calling code, or `None` on a plain thread (where green calls
/// behave exactly like the blocking `zmq` calls).
#[inline]
pub(crate) fn current() -> Option<Scheduler> {
    if crate::hub::in_task() {
        Some(Scheduler::Hub)
    } else if ::may::coroutine::is_coroutine() {
        Some(Scheduler::May)
    } else {
        None
    }
}

/// Why a park ended. Whatever it says, the caller re-checks readiness: a wake is a hint, never
/// a fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The fd signalled (or the wake-up was spurious).
    Fd,
    /// The deadline passed.
    Deadline,
    /// A fallback check found the fd readable although no wake-up had come: a missed edge.
    Fallback,
}

/// A socket's registration with the scheduler that last parked on it.
///
/// Invariant: the registration must be [released](Registration::release) before the fd it
/// watches is closed, because libzmq's reaper closes that fd later and a new socket may reuse
/// its number while a stale registration still holds it (`EEXIST`, or wake-ups for the wrong
/// socket).
#[derive(Default)]
pub(crate) struct Registration {
    backend: Option<Backend>,
}

enum Backend {
    May(may::MayFd),
    Hub(hub::HubFd),
}

impl Registration {
    /// Parks the calling coroutine of `scheduler` until `fd` signals or `deadline` passes.
    ///
    /// Every `fallback` interval while parked, the backend checks whether `fd` is readable
    /// without having woken the coroutine (a missed edge) and if so wakes it with
    /// [`Wake::Fallback`]. The check must not wake the coroutine otherwise: idle sockets must
    /// cost (almost) nothing. The caller drains `fd` (reads `ZMQ_EVENTS`) before each park.
    ///
    /// Under may, a cancellation of the parked coroutine is not honoured: may's `wait_io`
    /// erases it, and reports it as it reports a stale wake-up, which must not end the call
    /// (docs/may.md). A cancelled hub task unwinds from here.
    pub(crate) fn park(
        &mut self,
        scheduler: Scheduler,
        fd: RawFd,
        deadline: Option<Instant>,
        fallback: Duration,
    ) -> zmq::Result<Wake> {
        let reusable = match (scheduler, &self.backend) {
            (Scheduler::May, Some(Backend::May(_))) => true,
            (Scheduler::Hub, Some(Backend::Hub(reg))) => reg.is_current(),
            _ => false,
        };
        if !reusable {
            self.release();
            self.backend = Some(match scheduler {
                Scheduler::May => Backend::May(may::MayFd::register(fd)?),
                Scheduler::Hub => Backend::Hub(hub::HubFd::register(fd)?),
            });
        }
        loop {
            let wake = match &self.backend {
                Some(Backend::May(reg)) => reg.park(deadline, fallback),
                Some(Backend::Hub(reg)) => reg.park(deadline, fallback),
                None => unreachable!("registered above"),
            };
            if wake == Wake::Fd && fd_wakeup_dropped() {
                continue; // a test made this wake-up vanish: only the fallback can end the wait
            }
            return Ok(wake);
        }
    }

    /// Drops the registration, if any. Call before the watched fd can be closed.
    pub(crate) fn release(&mut self) {
        self.backend = None;
    }
}

/// Whether the `fault-injection` feature's test hook drops this fd wake-up (every park goes
/// through here, so socket calls, `poll`, the `Poller` and the IOLoop are all exposed to it).
#[cfg(feature = "fault-injection")]
fn fd_wakeup_dropped() -> bool {
    crate::fallback::fault::take_drop()
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
fn fd_wakeup_dropped() -> bool {
    false
}

/// Runs `job` (a call that blocks the OS thread) so that only the calling coroutine waits for
/// it; on a plain thread the job simply runs here.
///
/// # Errors
/// If no thread can be started for the job (it is then dropped without running), or if the
/// backend cannot park the caller (the job then finishes on its own, unwatched).
///
/// # Panics
/// With the job's own panic, raised again in the caller. In a coroutine that is cancelled while
/// it waits (may's cancellation, [`crate::hub::JoinHandle::cancel`]), the cancellation unwinds
/// the caller at once and the job finishes on its thread, unwatched.
pub(crate) fn run_off_thread<T, F>(job: F) -> zmq::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match current() {
        None => Ok(job()),
        Some(Scheduler::May) => may::run_off_thread(job),
        Some(Scheduler::Hub) => hub::run_off_thread(job),
    }
}

/// Starts `job` beside the caller, on the caller's scheduler: a may coroutine, a task of the
/// hub running the caller, or (outside both) an OS thread named `thread_name`. Returns the
/// scheduler it runs on (`None`: its own thread). The job is detached: it reports its end
/// itself.
pub(crate) fn start_here(
    job: impl FnOnce() + Send + 'static,
    thread_name: &str,
) -> std::io::Result<Option<Scheduler>> {
    let scheduler = current();
    match scheduler {
        Some(Scheduler::May) => may::start(job),
        Some(Scheduler::Hub) => hub::start(job),
        None => {
            std::thread::Builder::new()
                .name(thread_name.to_owned())
                .spawn(job)?;
        }
    }
    Ok(scheduler)
}

thread_local! {
    /// The locals of a plain thread (or of code on a hub's thread outside its tasks).
    static THREAD_LOCALS: Rc<Locals> = Rc::default();
}

/// The [`Locals`] of the place the caller runs in: the current may coroutine's, the current hub
/// task's, or the current thread's.
///
/// # Panics
/// On a plain thread, while its thread-locals are destroyed at its exit.
pub(crate) fn locals() -> Rc<Locals> {
    match current() {
        Some(Scheduler::May) => may::locals(),
        Some(Scheduler::Hub) => hub::locals(),
        None => THREAD_LOCALS.with(Rc::clone),
    }
}

/// Whether the caller runs where nothing may block or park although it is a scheduler's
/// thread: while may drops the locals of a coroutine that has ended, on its worker thread
/// outside any coroutine.
pub(crate) fn after_coroutine_end() -> bool {
    may::after_coroutine_end()
}

/// What a job run by a backend's helper thread hands back: its value, or its panic.
type Outcome<T> = std::thread::Result<T>;

/// Starts `job` on a new OS thread named `zmqloop-blocking`, where the backends run the libzmq
/// calls that block a thread (context termination); `report` gets the job's outcome, panic
/// included, on that thread.
fn spawn_blocking<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
    report: impl FnOnce(Outcome<T>) + Send + 'static,
) -> zmq::Result<()> {
    std::thread::Builder::new()
        .name("zmqloop-blocking".into())
        .spawn(move || report(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))))
        .map(drop)
        .map_err(|err| {
            log::error!("zmqloop: cannot start a thread for a blocking call: {err}");
            crate::errors::from_io(&err)
        })
}

/// Starts `job` on its own OS thread and returns at once, for a blocking call nobody can wait
/// for (a context dropped while its coroutine unwinds). Its failure is logged.
pub(crate) fn detach(job: impl FnOnce() + Send + 'static) {
    let _ = spawn_blocking(job, |outcome| {
        if outcome.is_err() {
            log::error!("zmqloop: a detached blocking call panicked");
        }
    });
}

/// The job's value, or its panic raised again in the caller.
fn value_of<T>(outcome: Outcome<T>) -> T {
    outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
