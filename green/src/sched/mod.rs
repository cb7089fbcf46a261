//! The scheduler seam: the one place that knows which scheduler runs the current call.
//!
//! Socket code asks a scheduler for three things, and nothing else:
//! - [`current`]: is this call running inside one of your coroutines (and whose)?
//! - [`Registration::park`]: park this coroutine until the socket's notification fd signals or
//!   until an instant has passed, and say which of the two happened.
//! - [`run_off_thread`]: run a blocking libzmq call (context termination) on another OS thread
//!   while only this coroutine waits for it.
//!
//! Everything about *when* to park (the readiness rule) lives in `readiness`, above this seam;
//! everything about *how* to park lives in the backends below it. A backend never inspects zmq
//! state, and the socket code never names a backend.

mod may;
mod timer;

use std::os::unix::io::RawFd;
use std::time::Instant;

/// A scheduler that can park the current call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheduler {
    /// A may coroutine (M:N, any worker thread).
    May,
}

/// The scheduler running the calling code, or `None` on a plain thread (where green calls
/// behave exactly like the blocking `zmq` calls).
#[inline]
pub(crate) fn current() -> Option<Scheduler> {
    if ::may::coroutine::is_coroutine() {
        Some(Scheduler::May)
    } else {
        None
    }
}

/// Why a park ended. Either way the caller re-checks readiness: a wake is a hint, never a fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The fd signalled (or the wake-up was spurious).
    Fd,
    /// The requested instant passed.
    Timer,
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
}

impl Registration {
    /// Parks the calling coroutine of `scheduler` until `fd` signals or `wake_at` passes.
    ///
    /// Under may, a cancelled coroutine does not return from here: the cancellation unwinds its
    /// stack (may swallows it inside `wait_io`; this seam raises it again).
    pub(crate) fn park(
        &mut self,
        scheduler: Scheduler,
        fd: RawFd,
        wake_at: Instant,
    ) -> zmq::Result<Wake> {
        match (scheduler, &self.backend) {
            (Scheduler::May, Some(Backend::May(_))) => {}
            (Scheduler::May, _) => {
                self.release();
                self.backend = Some(Backend::May(may::MayFd::register(fd)?));
            }
        }
        match &self.backend {
            Some(Backend::May(reg)) => Ok(reg.park(wake_at)),
            None => unreachable!("registered above"),
        }
    }

    /// Drops the registration, if any. Call before the watched fd can be closed.
    pub(crate) fn release(&mut self) {
        self.backend = None;
    }
}

/// Runs `job` (a call that blocks the OS thread) so that only the calling coroutine waits.
///
/// On a plain thread the job simply runs here.
pub(crate) fn run_off_thread<T, F>(job: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match current() {
        None => job(),
        Some(Scheduler::May) => may::run_off_thread(job),
    }
}

/// Runs `job` on another OS thread without waiting for it, when called inside a coroutine;
/// on a plain thread it runs here.
pub(crate) fn detach_if_coroutine<F>(job: F)
where
    F: FnOnce() + Send + 'static,
{
    match current() {
        None => job(),
        Some(_) => {
            let spawned = std::thread::Builder::new()
                .name("zmqloop-blocking".into())
                .spawn(job);
            if let Err(err) = spawned {
                log::error!("zmqloop: cannot start a thread for a blocking call: {err}");
            }
        }
    }
}
