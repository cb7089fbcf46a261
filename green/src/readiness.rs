//! The readiness rule: how a green call waits for its socket without ever trusting the fd alone.
//!
//! ```text
//! loop {
//!     try the operation with DONTWAIT            -> done unless EAGAIN
//!     read ZMQ_EVENTS (sends; see Direction)      -> wanted event present: try again
//!     past the RCVTIMEO/SNDTIMEO deadline?        -> EAGAIN, as libzmq does
//!     park until the notification fd signals or the deadline passes
//!     (a fallback check every interval wakes the call if the fd's signal was missed)
//! }
//! ```
//!
//! After every wake the loop starts over with the operation itself: when the wake was real it
//! succeeds at once, without a `ZMQ_EVENTS` read first (that read costs a syscall).
//!
//! Why each step is there (measured facts in `shared/notes/readiness.md`):
//! - The fd only says "commands are pending"; `ZMQ_EVENTS` processes them and is the truth.
//! - Any operation (a `send` on the same socket included) can drain the fd, so an edge can be
//!   consumed by someone else; the scheduler keeps an edge that arrives after the check, and the
//!   fallback timer bounds the cost of anything still missed.
//! - Trying first keeps the hot path to one libzmq call and reports errors such as EFSM at once.
//! - The timeout option is read only once the call has to wait, so a call that succeeds at once
//!   costs no extra `getsockopt`.
//!
//! Outside any coroutine, and for calls with `DONTWAIT`, the operation runs once exactly as in
//! plain `zmq` (blocking the thread if it blocks there).

use std::time::{Duration, Instant};

use zmq::{Error, PollEvents, Result};

use crate::fallback;
use crate::sched::{self, Wake};
use crate::socket::Socket;

/// Which way a call moves messages: decides the event it waits for and its timeout option.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Direction {
    Recv,
    Send,
}

impl Direction {
    fn event(self) -> PollEvents {
        match self {
            Direction::Recv => zmq::POLLIN,
            Direction::Send => zmq::POLLOUT,
        }
    }

    /// Whether an EAGAIN of this direction's `DONTWAIT` attempt still needs a `ZMQ_EVENTS`
    /// read before parking.
    ///
    /// Not for receiving: in libzmq 4.3 (`socket_base_t::recv`), a `DONTWAIT` receive that finds
    /// no message processes the socket's pending commands unthrottled (which drains the
    /// notification fd) and tries again before it returns EAGAIN, so it has already done what
    /// the `ZMQ_EVENTS` read would do; skipping it saves a syscall per wait. A `DONTWAIT` send
    /// processes commands only when its throttle allows, so sending keeps the read.
    fn must_read_events(self) -> bool {
        matches!(self, Direction::Send)
    }

    /// The socket's `RCVTIMEO`/`SNDTIMEO` in ms (-1 = forever).
    fn timeout_ms(self, socket: &Socket) -> Result<i32> {
        match self {
            Direction::Recv => socket.get_rcvtimeo(),
            Direction::Send => socket.get_sndtimeo(),
        }
    }
}

/// Runs `attempt(flags)` under the readiness rule. `attempt` must be a libzmq call that honours
/// `DONTWAIT` and leaves its input intact when it fails with EAGAIN.
#[inline]
pub(crate) fn drive<T>(
    socket: &Socket,
    direction: Direction,
    flags: i32,
    mut attempt: impl FnMut(i32) -> Result<T>,
) -> Result<T> {
    if flags & zmq::DONTWAIT != 0 {
        return attempt(flags);
    }
    let Some(scheduler) = sched::current() else {
        return attempt(flags);
    };
    // Read on the first EAGAIN only: a call that succeeds at once costs no getsockopt.
    let mut deadline: Option<Option<Instant>> = None;
    let mut wake = None;
    loop {
        match attempt(flags | zmq::DONTWAIT) {
            Err(Error::EAGAIN) => {}
            done => {
                if wake == Some(Wake::Fallback) && done.is_ok() {
                    fallback::record_missed_edge(socket.notification_fd()?);
                }
                return done;
            }
        }
        if direction.must_read_events() && socket.get_events()?.contains(direction.event()) {
            continue; // ready after all (the attempt raced a command): try again
        }
        let deadline = match deadline {
            Some(deadline) => deadline,
            None => *deadline.insert(deadline_after(direction.timeout_ms(socket)?.into())),
        };
        if deadline.is_some_and(|at| at <= Instant::now()) {
            return Err(Error::EAGAIN);
        }
        wake = Some(park(socket, scheduler, deadline)?);
    }
}

/// `Socket::poll` in a coroutine: waits until `ZMQ_EVENTS` shows one of `events` (1) or
/// `timeout_ms` passes (0, as libzmq's -1/0/N), parking on the socket's own registration like
/// any other call on it (no poll set of its own). `None` outside any coroutine.
pub(crate) fn wait_for_events(
    socket: &Socket,
    events: PollEvents,
    timeout_ms: i64,
) -> Option<Result<i32>> {
    let scheduler = sched::current()?;
    Some(park_until_events(socket, scheduler, events, timeout_ms))
}

fn park_until_events(
    socket: &Socket,
    scheduler: sched::Scheduler,
    events: PollEvents,
    timeout_ms: i64,
) -> Result<i32> {
    let deadline = deadline_after(timeout_ms);
    let mut wake = None;
    loop {
        if socket.get_events()?.intersects(events) {
            if wake == Some(Wake::Fallback) {
                fallback::record_missed_edge(socket.notification_fd()?);
            }
            return Ok(1);
        }
        if deadline.is_some_and(|at| at <= Instant::now()) {
            return Ok(0);
        }
        wake = Some(park(socket, scheduler, deadline)?);
    }
}

/// The instant a wait of `timeout_ms` starting now gives up: `None` (never) for a negative
/// timeout, as libzmq's `-1`. Shared with `poll`.
pub(crate) fn deadline_after(timeout_ms: i64) -> Option<Instant> {
    u64::try_from(timeout_ms)
        .ok()
        .map(|ms| Instant::now() + Duration::from_millis(ms))
}

fn park(socket: &Socket, scheduler: sched::Scheduler, deadline: Option<Instant>) -> Result<Wake> {
    let fd = socket.notification_fd()?;
    let interval = fallback::fallback_interval();
    socket
        .registration()?
        .park(scheduler, fd, deadline, interval)
}
