//! The may backend of the scheduler seam: parks a may coroutine on a socket's notification fd
//! (may's edge-triggered epoll via `CoIo` and `wait_io`), with the deadline and fallback
//! checks of `timer.rs`, the may backend's own timer thread.
//!
//! Measured facts this relies on (see `docs/may.md`; `cargo run --example facts` checks them):
//! - `CoIo::new` registers the fd once (edge-triggered); registering it twice fails with EEXIST,
//!   dropping the `CoIo` removes it from epoll synchronously.
//! - `wait_io` keeps a sticky flag: an edge that arrives between the caller's readiness check
//!   and the wait is not lost, it makes the wait return at once.
//! - `wait_io` returns 0 when the coroutine was cancelled (may has then cleared the cancel bit)
//!   *and* after a stale wake-up: a waker sets the flag, then takes the parked coroutine in a
//!   second step; if the coroutine consumed the flag in between (its next `wait_io` found it
//!   set, or another waker woke it), the waker's second step takes the coroutine's *next*
//!   park and resumes it with nothing to report. The two cannot be told apart, so a 0 is a
//!   wake-up with nothing to look at: the coroutine waits again. Raising it as a cancellation
//!   (as this backend once did) killed about one coroutine in a million under load, silently
//!   (generator's panic hook does not print cancellations). The price: a may cancellation of a
//!   coroutine parked here is not honoured (docs/may.md).
//! - may registers every fd for `EPOLLIN | EPOLLOUT` (edge-triggered) and offers no public way
//!   to narrow that. An eventfd (libzmq's notification fd when built with eventfd) signals
//!   `EPOLLOUT` each time it is *read*, so every receive that drains the fd would queue one
//!   wake-up that says "writable, not readable". Readability is all a notification fd ever
//!   tells (`ZMQ_EVENTS` carries the rest), so `narrow.rs` changes the registration to
//!   `EPOLLIN` right after may makes it (on may's own epoll set, with may's own data). Where
//!   that cannot be done, a wake-up without `EPOLLIN`, an error, a hang-up or the timer's
//!   waker bit is dropped by the park loop and the coroutine waits again: it costs a switch
//!   but saves the caller a libzmq call (and its `poll(2)`), and it cannot lose an event: an
//!   edge that makes the fd readable later is reported with `EPOLLIN` on its own.

mod local;
mod narrow;
mod timer;

use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::io::{CoIo, WaitIo};

pub(crate) use self::local::EndOfBody;
pub(super) use self::local::{after_coroutine_end, locals};
use self::timer::{Fired, Slot};
use super::Wake;

/// The `wait_io` flags that can mean "something happened": readable, error, hang-up, or the
/// timer's [`WaitIoWaker`](may::io::WaitIoWaker) (may sets bit 31 for it). A wake-up with only
/// `EPOLLOUT` is an eventfd being drained (see the module doc).
const WORTH_A_LOOK: usize =
    (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) as usize
        | 0x8000_0000;

/// A borrowed fd: `CoIo` must never own (and so close) libzmq's notification fd.
#[derive(Debug)]
struct FdRef(RawFd);

impl AsRawFd for FdRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// One socket's registration with may's reactor and the timer.
pub(super) struct MayFd {
    io: CoIo<FdRef>,
    timer: Arc<Slot>,
}

impl MayFd {
    pub(super) fn register(fd: RawFd) -> zmq::Result<MayFd> {
        let io = CoIo::new(FdRef(fd)).map_err(|err| {
            let err = crate::errors::from_io(&std::io::Error::from(err));
            log::warn!("zmqloop: cannot register fd {fd} with may: {err}");
            err
        })?;
        // Best effort: without it, the park loop drops the writable-only wake-ups.
        narrow::narrow_to_readable(&io);
        let timer = Slot::new(fd, io.waker());
        Ok(MayFd { io, timer })
    }

    pub(super) fn park(&self, deadline: Option<Instant>, fallback: Duration) -> Wake {
        self.timer.arm(deadline, fallback);
        // A wake-up without a flag worth a look (an eventfd drained, a stale wake-up, a
        // cancellation: module doc) is not one: wait again.
        while self.io.wait_io() & WORTH_A_LOOK == 0 {}
        self.timer.disarm();
        match self.timer.take_fired() {
            None => Wake::Fd,
            Some(Fired::Deadline) => Wake::Deadline,
            Some(Fired::Fallback) => Wake::Fallback,
        }
    }
}

impl Drop for MayFd {
    fn drop(&mut self) {
        self.timer.retire();
    }
}

/// Runs `job` on a fresh OS thread and parks the calling may coroutine until it is done (see
/// [`super::run_off_thread`]).
pub(super) fn run_off_thread<T, F>(job: F) -> zmq::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = may::sync::mpsc::channel();
    super::spawn_blocking(job, move |outcome| {
        let _ = tx.send(outcome); // the waiter may be gone: cancelled
    })?;
    // The helper thread always reports (its job's panic is caught), so the channel closes
    // without a value only if that thread died some other way.
    let outcome = rx
        .recv()
        .expect("zmqloop: the thread running a blocking call died without a report");
    Ok(super::value_of(outcome))
}

/// Starts `job` as a detached may coroutine (see [`super::start_here`]).
pub(super) fn start(job: impl FnOnce() + Send + 'static) {
    drop(crate::spawn(job));
}
