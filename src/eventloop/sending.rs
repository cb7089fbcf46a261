//! How a [`ZmqStream`](super::ZmqStream) sends without ever spinning: one try of a queued
//! message under the green layer's readiness rule ([`try_send`]), the fd watch of a send whose
//! `POLLOUT` lied ([`SendWait`]), and the bounded wait of `close` ([`send_within`]).
//!
//! After an EAGAIN the stream reads `ZMQ_EVENTS` once (it processes the commands a throttled
//! send may have left, and so drains the socket's notification fd) and, if `POLLOUT` shows,
//! tries once more. Without `POLLOUT` the stream waits for `POLLOUT` in the loop's poll, which is
//! exact for PAIR, PUSH, DEALER and REQ. A second EAGAIN under `POLLOUT` means that `POLLOUT`
//! lies (ROUTER with `ROUTER_MANDATORY`, STREAM, PUB/XPUB with `XPUB_NODROP`: the table in the
//! green crate's `readiness.rs`): polling it again would return at once, forever. The stream
//! then watches its socket's notification fd instead, with an fd handler on the loop: the fd
//! signals when the full peer makes room (libzmq's `activate_write` command) or anything else
//! reaches the socket, and each signal is one more try (which drains the fd again). A stalled
//! stream therefore costs the loop nothing until something happens on its socket.
//!
//! Only if the fd cannot be watched does the stream fall back to trying again on a timer,
//! every [`RETRY_WITHOUT_WATCH`]: the loop keeps one handler per fd, so when the fd already has
//! one (someone else's), its signals go there and no edge can reach the stream.

use std::cell::RefCell;
use std::os::unix::io::RawFd;
use std::time::Duration;

use zmqloop_green::{PollEvents, Socket, DONTWAIT, POLLIN, POLLOUT};

use super::ioloop::{IOLoop, Timeout};
use super::outgoing::Outgoing;

/// How often a stalled send is tried when its socket's fd cannot be watched (see
/// [`SendWait::watch`]): the one case where no edge can be waited for (module doc). 100 tries a
/// second cost a loop about 1-2% of a core here, and delay a send by 10 ms at most.
const RETRY_WITHOUT_WATCH: Duration = Duration::from_millis(10);

/// How one try of a queued message went.
#[derive(Debug, PartialEq)]
pub(super) enum Sent {
    /// libzmq took the message, or refused it for good (the error): it leaves the queue.
    Done(zmqloop_green::Result<()>),
    /// EAGAIN, and no `POLLOUT`: the loop's poll says when to try again.
    WaitForPollout,
    /// EAGAIN although `POLLOUT` is set: `POLLOUT` lies; the socket's fd says when to try again.
    WaitForFd,
}

/// Sends `message` without waiting, under the readiness rule (module doc).
pub(super) fn try_send(socket: &Socket, message: &mut Outgoing) -> Sent {
    match send_now(socket, message) {
        Err(zmqloop_green::Error::EAGAIN) => {}
        done => return Sent::Done(done),
    }
    match socket.get_events() {
        Ok(events) if events.contains(POLLOUT) => match send_now(socket, message) {
            Err(zmqloop_green::Error::EAGAIN) => Sent::WaitForFd,
            done => Sent::Done(done),
        },
        Ok(_) => Sent::WaitForPollout,
        Err(err) => Sent::Done(Err(err)), // ETERM: the stream closes
    }
}

/// One `DONTWAIT` send of a whole message.
pub(super) fn send_now(socket: &Socket, message: &mut Outgoing) -> zmqloop_green::Result<()> {
    message.send(socket, DONTWAIT)
}

/// Sends `message`, waiting up to `timeout` for room: a blocking send under a `SNDTIMEO` of
/// `timeout`, which waits for the socket's fd (libzmq's own wait on a plain thread, the
/// readiness rule in a coroutine or hub task) and never polls a `POLLOUT` that may lie. The
/// socket's `SNDTIMEO` is restored after.
pub(super) fn send_within(
    socket: &Socket,
    message: &mut Outgoing,
    timeout: Duration,
) -> zmqloop_green::Result<()> {
    let previous = socket.get_sndtimeo()?;
    let ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    socket.set_sndtimeo(ms)?;
    let status = message.send(socket, 0);
    let _ = socket.set_sndtimeo(previous);
    status
}

/// What a stream whose send met a lying `POLLOUT` waits on, shared between the stream and its
/// handlers (so that a handler can end the wait of a stream that was dropped).
#[derive(Default)]
pub(super) struct SendWait {
    /// What the wait is on now (its invariant: [`Waiting`]).
    state: RefCell<Waiting>,
}

/// Invariant: `OnFd(fd)` exactly while an fd handler of the stream's for `fd`, its socket's
/// notification fd, is on the loop; `OnTimer(t)` while `t` may still be pending.
#[derive(Default)]
enum Waiting {
    /// No stalled send: queued sends wait for `POLLOUT`.
    #[default]
    Pollout,
    /// A stalled send waits for the socket's fd to signal.
    OnFd(RawFd),
    /// A stalled send whose socket's fd could not be watched is tried again by a timeout.
    OnTimer(Timeout),
}

impl SendWait {
    /// Whether a stalled send waits on something else than `POLLOUT` (the stream must then not
    /// poll for `POLLOUT`).
    pub(super) fn stalled(&self) -> bool {
        !matches!(*self.state.borrow(), Waiting::Pollout)
    }

    /// Waits for `socket`'s notification fd: `wake` becomes the loop's handler of that fd (it
    /// gets `POLLIN` when the fd signals). If the fd cannot be watched (`EBUSY`: the loop
    /// already has a handler for it, someone else's), `retry` runs in [`RETRY_WITHOUT_WATCH`]
    /// instead, and the next stall tries the watch again; that is logged.
    pub(super) fn watch(
        &self,
        ioloop: &IOLoop,
        socket: &Socket,
        wake: impl FnMut(PollEvents) + 'static,
        retry: impl FnOnce() + 'static,
    ) {
        let new_stall = match &*self.state.borrow() {
            Waiting::OnFd(_) => return,
            Waiting::OnTimer(timeout) if timeout.is_pending() => return,
            Waiting::OnTimer(_) => false,
            Waiting::Pollout => true,
        };
        let watched = socket
            .get_fd()
            .and_then(|fd| ioloop.add_fd_handler(fd, POLLIN, wake).map(|()| fd));
        let next = match watched {
            Ok(fd) => Waiting::OnFd(fd),
            Err(err) => {
                if new_stall {
                    log::warn!(
                        "zmqloop: ZmqStream cannot watch its socket's fd ({err}); its stalled \
                         send is tried every {RETRY_WITHOUT_WATCH:?}"
                    );
                }
                Waiting::OnTimer(ioloop.call_later(RETRY_WITHOUT_WATCH, retry))
            }
        };
        *self.state.borrow_mut() = next;
    }

    /// Back to waiting for `POLLOUT`: removes the fd handler, or cancels the timeout.
    pub(super) fn end(&self, ioloop: &IOLoop) {
        let ended = std::mem::take(&mut *self.state.borrow_mut());
        match ended {
            Waiting::Pollout => {}
            Waiting::OnFd(fd) => {
                let _ = ioloop.remove_fd_handler(fd);
            }
            Waiting::OnTimer(timeout) => {
                timeout.cancel();
            }
        }
    }
}
