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
    /// costs one libzmq call and a flag test. Outside any coroutine a call that has to wait
    /// makes libzmq's non-blocking step (an attempt and a `poll(2)` of its mailbox) once more
    /// than plain `zmq` would, with the same outcome. Sends go through
    /// [`drive_send`](Socket::drive_send).
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

    /// [`drive`](Socket::drive) once its first try returned `EAGAIN`: the blocking call
    /// outside any coroutine, the readiness rule in one.
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

    /// [`drive`](Socket::drive) for a send (`attempt` sends one part), which also keeps
    /// [`Socket::in_message`]: a part that continues a message goes to
    /// [`continue_message`](Socket::continue_message).
    #[inline]
    pub(super) fn drive_send(
        &self,
        flags: i32,
        attempt: impl FnMut(i32) -> Result<()>,
    ) -> Result<()> {
        let done = if self.in_message.get() && flags & zmq::DONTWAIT == 0 {
            self.continue_message(flags, attempt)
        } else {
            self.drive(Direction::Send, flags, attempt)
        };
        if done.is_ok() {
            self.in_message.set(flags & zmq::SNDMORE != 0);
        }
        done
    }

    /// Sends a part that continues a message, as libzmq's blocking send would.
    ///
    /// A load-balancing socket (PUSH, DEALER, REQ) whose pipe ends half-way through a message
    /// refuses the rest of it (`lb.cpp` returns -2); libzmq's blocking send then drops the
    /// part and reports success, its non-blocking send reports `EAGAIN` (and the balancer
    /// starts over, so a retry would send the part as a message of its own). The high-water
    /// mark counts whole messages and never refuses a continuation, so for these sockets an
    /// `EAGAIN` here is that refusal: in a coroutine the part is dropped as libzmq drops it
    /// (unless `SNDTIMEO` is 0, where libzmq's blocking send returns `EAGAIN` too). Outside
    /// any coroutine the blocking call itself runs, with no try first.
    #[inline(never)]
    fn continue_message(
        &self,
        flags: i32,
        mut attempt: impl FnMut(i32) -> Result<()>,
    ) -> Result<()> {
        if sched::current().is_none() {
            return attempt(flags);
        }
        match attempt(flags | zmq::DONTWAIT) {
            Err(zmq::Error::EAGAIN) if self.drops_cut_messages()? => {
                log::debug!("zmqloop: a message lost its pipe half-way; its rest is dropped");
                Ok(())
            }
            Err(zmq::Error::EAGAIN) => self.drive_after_eagain(Direction::Send, flags, attempt),
            done => done,
        }
    }

    /// Whether libzmq's blocking send on this socket drops the rest of a message whose pipe
    /// ended half-way (see [`continue_message`](Socket::continue_message)).
    fn drops_cut_messages(&self) -> Result<bool> {
        let balances = matches!(
            self.inner.get_socket_type()?,
            zmq::PUSH | zmq::DEALER | zmq::REQ
        );
        Ok(balances && self.inner.get_sndtimeo()? != 0)
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

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Runs `drive` on a plain thread with an attempt that records its flags and, like a
    /// blocked libzmq call, returns EAGAIN to every `DONTWAIT` try.
    fn flags_tried(socket: &Socket, flags: i32) -> Vec<i32> {
        let tried = RefCell::new(Vec::new());
        socket
            .drive_send(flags, |flags| {
                tried.borrow_mut().push(flags);
                if flags & zmq::DONTWAIT != 0 {
                    Err(zmq::Error::EAGAIN)
                } else {
                    Ok(())
                }
            })
            .expect("the blocking call succeeds");
        tried.into_inner()
    }

    /// A send that continues a message goes straight to the blocking call on a plain thread
    /// (libzmq drops the rest of a message whose pipe died only in its blocking call); other
    /// sends try `DONTWAIT` first.
    #[test]
    fn only_the_first_part_of_a_message_is_tried_without_waiting_first() {
        let ctx = crate::Context::new();
        let socket = ctx.socket(zmq::PUSH).unwrap();
        let (dontwait, more) = (zmq::DONTWAIT, zmq::SNDMORE);
        assert_eq!(flags_tried(&socket, more), [more | dontwait, more]);
        assert_eq!(flags_tried(&socket, more), [more], "a middle part");
        assert_eq!(flags_tried(&socket, 0), [0], "the last part");
        assert_eq!(flags_tried(&socket, 0), [dontwait, 0], "a new message");
    }
}
