//! How a [`ZmqStream`](super::ZmqStream) sends without ever spinning or losing a message: one
//! try of a queued message under the green layer's readiness rule ([`try_send`]), what each
//! refusal means for the message (the table below), the fd watch of a send whose `POLLOUT` lied
//! ([`SendWait`]), and the bounded wait of `close` ([`send_within`]).
//!
//! # What a refused send means for its message
//! A queued message leaves the queue only when libzmq takes it or refuses it for good. A refusal
//! that depends on the socket's state *now* keeps it first in the queue; one that will not go
//! away is reported to the message's callback, and the message dropped.
//!
//! | errno | raised by (libzmq 4.3, a `DONTWAIT` send) | the message |
//! |---|---|---|
//! | EAGAIN | a full peer or none yet: PAIR, PUSH, DEALER, REQ; ROUTER with `ROUTER_MANDATORY`, STREAM, XPUB with `XPUB_NODROP` when the addressed peer is full | kept; waits for room (below) |
//! | EFSM | REQ awaiting its reply; REP before its request has been received | kept; waits for `POLLOUT`, which the socket shows exactly when the pattern allows the send |
//! | EINTR | a signal while libzmq processed the socket's commands | kept; tried again when the poll shows `POLLOUT` |
//! | ETERM | the context is terminated | reported, dropped; the stream closes (and reports the rest) |
//! | EHOSTUNREACH | ROUTER with `ROUTER_MANDATORY` (STREAM, SERVER) addressing a peer it does not know, or one whose pipe is closing | reported, dropped; the next message goes on |
//! | ENOTSUP | a socket type that cannot send (PULL, SUB) | reported, dropped |
//! | EINVAL | a message the socket type cannot take (draft types: RADIO without a group, a multipart message on CLIENT, SERVER or SCATTER) | reported, dropped |
//! | ENOTSOCK | the stream is closed (`close`, or ETERM) | reported at once by the send, never queued |
//! | any other (EMSGSIZE, which libzmq raises only on receiving, EFAULT, ENOMEM...) | anything else | reported, dropped: nothing would signal the end of an error the stream does not know, so waiting could hold the queue forever, unreported |
//!
//! The table holds for a refusal at a message's first frame, which is where libzmq refuses
//! all but a few: it takes the rest of a message once its first frame is in. A zero-copy
//! message refused at a later frame (the peer's pipe closed in the middle of the message, on
//! which libzmq 4.3's `lb.cpp` drops what it took and answers EAGAIN; a signal; ETERM) has lost
//! the frames libzmq took, so it is reported with that error and dropped, whatever the error:
//! sending its rest would deliver a different message. A byte send is copied anew at each try,
//! so it keeps to the table.
//!
//! A send refused because the stream's own queue is at its limit
//! ([`set_send_queue_limit`](super::ZmqStream::set_send_queue_limit)) is reported with EAGAIN
//! at once and never queued: it is back-pressure for the caller, not a state of the socket.
//!
//! # Waiting for the pattern (EFSM)
//! REQ's `xhas_out` is false while it awaits its reply (strict mode, the default; `REQ_RELAXED`
//! never refuses), REP's while no reply is due; otherwise they are DEALER's and ROUTER's. So
//! `ZMQ_EVENTS` has no `POLLOUT` exactly while the state refuses the send (the table in the green
//! crate's `readiness.rs`), and `POLLOUT` comes back when the reply, or the request, has been
//! received: a refused message waits for `POLLOUT` in the loop's poll, which costs nothing
//! while nothing happens and needs no `ZMQ_EVENTS` read of its own (the poll reads it). What
//! makes the state change is a receive, so a REQ or REP stream with queued sends needs a receive
//! callback; without one they wait, idle, for as long as nothing is received (as the socket
//! would). A REQ whose reply never comes (a lost peer) keeps its next request queued for good:
//! that is REQ's own contract (`REQ_RELAXED` lifts it).
//!
//! # Waiting for room (EAGAIN)
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
//!
//! Every pass makes one libzmq call when the send goes (or is refused for good, or by the
//! pattern), and at most three (send, `ZMQ_EVENTS`, send) when the socket is full.

use std::cell::RefCell;
use std::os::unix::io::RawFd;
use std::time::Duration;

use zmqloop_green::{PollEvents, Socket, DONTWAIT, POLLIN, POLLOUT};

use super::outgoing::{Outgoing, Refused};
use crate::eventloop::ioloop::{IOLoop, Timeout};

/// How often a stalled send is tried when its socket's fd cannot be watched (see
/// [`SendWait::watch`]): the one case where no edge can be waited for (module doc). 100 tries a
/// second cost a loop about 1-2% of a core here, and delay a send by 10 ms at most.
const RETRY_WITHOUT_WATCH: Duration = Duration::from_millis(10);

/// How one try of a queued message went.
#[derive(Debug, PartialEq)]
pub(super) enum Sent {
    /// libzmq took the message, or refused it for good (the error): it leaves the queue.
    Done(zmqloop_green::Result<()>),
    /// EAGAIN and no `POLLOUT`, or the socket's state refuses the send now (EFSM, EINTR): the
    /// loop's poll says when to try again.
    WaitForPollout,
    /// EAGAIN although `POLLOUT` is set: `POLLOUT` lies; the socket's fd says when to try again.
    WaitForFd,
}

/// Sends `message` without waiting, under the readiness rule (module doc).
pub(super) fn try_send(socket: &Socket, message: &mut Outgoing) -> Sent {
    match send_now(socket, message) {
        Ok(()) => Sent::Done(Ok(())),
        Err(refusal) => refused(refusal, || second_try(socket, message)),
    }
}

/// After an EAGAIN: one `ZMQ_EVENTS` read, and one more try if it shows `POLLOUT`.
fn second_try(socket: &Socket, message: &mut Outgoing) -> Sent {
    match socket.get_events() {
        Ok(events) if events.contains(POLLOUT) => match send_now(socket, message) {
            Ok(()) => Sent::Done(Ok(())),
            Err(refusal) => refused(refusal, || Sent::WaitForFd),
        },
        Ok(_) => Sent::WaitForPollout,
        Err(error) => {
            let refusal = Refused {
                error,
                broken: false,
            };
            refused(refusal, || Sent::WaitForPollout) // ETERM: the stream closes
        }
    }
}

/// What a refusal means for the message (the table in the module doc): `full` says what to do
/// after an EAGAIN at the first part. A message refused after its first part is broken and
/// fails for good, whatever the error.
fn refused(refusal: Refused, full: impl FnOnce() -> Sent) -> Sent {
    if refusal.broken {
        return Sent::Done(Err(refusal.error));
    }
    match refusal.error {
        zmqloop_green::Error::EAGAIN => full(),
        zmqloop_green::Error::EFSM | zmqloop_green::Error::EINTR => Sent::WaitForPollout,
        error => Sent::Done(Err(error)),
    }
}

/// One `DONTWAIT` send of a whole message.
pub(super) fn send_now(socket: &Socket, message: &mut Outgoing) -> Result<(), Refused> {
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
) -> Result<(), Refused> {
    let unbroken = |error| Refused {
        error,
        broken: false,
    };
    let previous = socket.get_sndtimeo().map_err(unbroken)?;
    let ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
    socket.set_sndtimeo(ms).map_err(unbroken)?;
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
