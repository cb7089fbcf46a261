//! A green socket in a coroutine as the readiness rule sees it ([`Waitable`]): its
//! `ZMQ_EVENTS`, its timeouts, and a park on its notification fd through the scheduler seam.
//! Also where a blocking call decides whether it needs the rule at all.

use std::time::Instant;

use zmq::{PollEvents, Result};

use super::Socket;
use crate::fallback;
use crate::readiness::{self, Direction, Waitable};
use crate::sched::{self, Scheduler, Wake};

/// A socket whose call runs in a coroutine of `scheduler`.
struct InCoroutine<'a> {
    socket: &'a Socket,
    scheduler: Scheduler,
}

impl Waitable for InCoroutine<'_> {
    fn events(&self) -> Result<PollEvents> {
        self.socket.get_events()
    }

    fn timeout_ms(&self, direction: Direction) -> Result<i32> {
        match direction {
            Direction::Recv => self.socket.get_rcvtimeo(),
            Direction::Send => self.socket.get_sndtimeo(),
        }
    }

    fn park(&self, deadline: Option<Instant>) -> Result<Wake> {
        let fd = self.socket.notification_fd()?;
        let interval = fallback::fallback_interval();
        self.socket
            .registration()?
            .park(self.scheduler, fd, deadline, interval)
    }

    fn record_missed_edge(&self) {
        if let Ok(fd) = self.socket.notification_fd() {
            fallback::record_missed_edge(fd);
        }
    }
}

impl Socket {
    /// Runs `attempt(flags)`, a libzmq call that honours `DONTWAIT`: once as given with
    /// `DONTWAIT` (exactly as `zmq`); otherwise first with `DONTWAIT`, and on `EAGAIN` under
    /// the readiness rule in a coroutine, or as given (the blocking call) outside any.
    ///
    /// The first try comes before the scheduler look-up, so a call that succeeds at once
    /// costs one libzmq call and a flag test. Outside any coroutine the try costs a blocking
    /// call nothing it would not do itself: libzmq's blocking send and receive start with the
    /// same non-blocking attempt (and a `poll(2)` of the mailbox when it fails).
    #[inline]
    pub(super) fn drive<T>(
        &self,
        direction: Direction,
        flags: i32,
        mut attempt: impl FnMut(i32) -> Result<T>,
    ) -> Result<T> {
        if flags & zmq::DONTWAIT != 0 {
            return attempt(flags);
        }
        match attempt(flags | zmq::DONTWAIT) {
            Err(zmq::Error::EAGAIN) => self.drive_after_eagain(direction, flags, attempt),
            done => done,
        }
    }

    /// [`drive`](Socket::drive) once its first try returned `EAGAIN`.
    #[inline(never)]
    fn drive_after_eagain<T>(
        &self,
        direction: Direction,
        flags: i32,
        mut attempt: impl FnMut(i32) -> Result<T>,
    ) -> Result<T> {
        let Some(scheduler) = sched::current() else {
            return attempt(flags);
        };
        let target = InCoroutine {
            socket: self,
            scheduler,
        };
        readiness::wait_after_eagain(&target, direction, || attempt(flags | zmq::DONTWAIT))
    }

    /// `Socket::poll` in a coroutine: 1 once `ZMQ_EVENTS` shows one of `events`, 0 after
    /// `timeout_ms` (as libzmq's -1/0/N). `None` outside any coroutine.
    pub(crate) fn wait_for_events(
        &self,
        events: PollEvents,
        timeout_ms: i64,
    ) -> Option<Result<i32>> {
        let target = InCoroutine {
            socket: self,
            scheduler: sched::current()?,
        };
        let deadline = readiness::deadline_after(timeout_ms);
        Some(readiness::wait_for_events(&target, events, deadline).map(i32::from))
    }
}
