//! Green `poll`: [`poll`] and `Socket::poll` with `zmq`'s signatures, and the kept poll sets
//! for loops that poll the same set again and again: [`Poller`] (pyzmq's, borrowing its
//! sockets) and [`KeyedPoller`] (owning them, for event loops).
//!
//! Waiting follows the readiness rule of `readiness`, for a whole set at once:
//! 1. `zmq_poll(items, 0)`: the truth for every item (it also drains the zmq notification
//!    fds). Anything ready, or a zero timeout: return.
//! 2. Past the deadline: return 0.
//! 3. Park on an [`EpollSet`](epoll_set::EpollSet) holding every item's fd (zmq notification
//!    fds and plain fds) through the scheduler seam, then go to 1.
//!
//! Outside any coroutine the plain, blocking `zmq_poll` runs instead.
//!
//! Files: `mod.rs` (this: the one-shot poll), `waiter.rs` (the wait in a coroutine),
//! `epoll_set.rs` (the fds gathered into one), `set.rs` (the kept set both pollers are written
//! on), `poller.rs` and `keyed.rs` (the two pollers).

mod epoll_set;
mod keyed;
mod poller;
mod set;
mod waiter;

use std::os::raw::{c_int, c_long};
use std::os::unix::io::RawFd;

use zmq::Result;

use crate::errors::zmq_errno;
use crate::poll_item::PollItem;
use crate::readiness::deadline_after;
use crate::sched;
use crate::socket::Socket;

pub use keyed::{KeyedPoller, PollKey, PollSource};
pub use poller::{PollTarget, Poller};
use waiter::Waiter;

/// Polls `items`; in a coroutine, parks only the coroutine until one is ready.
///
/// Same contract as `zmq::poll`: sockets and plain fds may be mixed; `timeout_ms` -1 waits
/// forever, 0 returns at once, N waits up to N ms; returns how many items have events (0 on
/// timeout) with each item's `get_revents` set.
///
/// # Errors
/// What `zmq_poll` returns (ETERM when a socket's context is terminated, EFAULT/EINVAL for a
/// bad item); in a coroutine also EMFILE/ENOMEM when the poll set's epoll fd cannot be made.
///
/// # Examples
/// ```
/// use zmqloop_green as zmq;
///
/// let ctx = zmq::Context::new();
/// let (a, b) = (ctx.socket(zmq::PULL).unwrap(), ctx.socket(zmq::PULL).unwrap());
/// a.bind("inproc://poll-doc-a").unwrap();
/// b.bind("inproc://poll-doc-b").unwrap();
/// let push = ctx.socket(zmq::PUSH).unwrap();
/// push.connect("inproc://poll-doc-b").unwrap();
/// push.send("for b", 0).unwrap();
/// let polled = zmq::spawn(move || {
///     let mut items = [a.as_poll_item(zmq::POLLIN), b.as_poll_item(zmq::POLLIN)];
///     let ready = zmq::poll(&mut items, 1000).unwrap(); // parks only this coroutine
///     (ready, items[0].is_readable(), items[1].is_readable())
/// });
/// assert_eq!(polled.join().unwrap(), (1, false, true));
/// ```
pub fn poll(items: &mut [PollItem], timeout_ms: i64) -> Result<i32> {
    let Some(scheduler) = sched::current() else {
        return zmq_poll(items, timeout_ms);
    };
    let ready = zmq_poll(items, 0)?;
    if ready > 0 || timeout_ms == 0 {
        return Ok(ready);
    }
    let mut waiter = Waiter::new()?;
    let members = items.iter().map(member_fd).collect::<Result<Vec<_>>>()?;
    for (item, &member) in items.iter().zip(&members) {
        waiter.add_member(member, item.get_events())?;
    }
    let deadline = deadline_after(timeout_ms);
    // SAFETY: the items borrow their sockets, which therefore stay open for the call.
    unsafe { waiter.wait(scheduler, PollItem::raw_items(items), &members, deadline) }
}

impl Socket {
    /// Polls this socket alone for `events`; see [`poll`]. Returns 1 if an event occurred,
    /// 0 on timeout.
    pub fn poll(&self, events: zmq::PollEvents, timeout_ms: i64) -> Result<i32> {
        match self.wait_for_events(events, timeout_ms) {
            Some(outcome) => outcome,
            None => zmq_poll(&mut [self.as_poll_item(events)], timeout_ms),
        }
    }
}

/// `zmq_poll` itself (blocking when `timeout_ms` is not 0).
fn zmq_poll(items: &mut [PollItem], timeout_ms: i64) -> Result<i32> {
    let items = PollItem::raw_items(items);
    let count = c_int::try_from(items.len()).map_err(|_| zmq::Error::EINVAL)?;
    // SAFETY: `items` holds `count` pollitems, writable for the call (libzmq sets their
    // revents); they borrow their sockets, which therefore stay open.
    unsafe { zmq_poll_raw(items.as_mut_ptr(), count, timeout_ms) }
}

/// `zmq_poll` over `count` raw pollitems at `items`.
///
/// # Safety
/// `items` must point to `count` initialised pollitems, writable for the call, whose sockets
/// are live.
unsafe fn zmq_poll_raw(
    items: *mut zmq_sys::zmq_pollitem_t,
    count: c_int,
    timeout_ms: i64,
) -> Result<i32> {
    let timeout = c_long::try_from(timeout_ms).unwrap_or(c_long::MAX);
    // SAFETY: guaranteed by the caller.
    let rc = unsafe { zmq_sys::zmq_poll(items, count, timeout) };
    if rc < 0 {
        return Err(zmq_errno());
    }
    Ok(rc)
}

/// The fd that signals for a poll item, and whether it is a socket's notification fd.
pub(crate) type Member = (RawFd, bool);

/// The fd that signals for `item`: a socket's notification fd (as its item carries it), or the
/// plain fd itself.
pub(crate) fn member_fd(item: &PollItem) -> Result<Member> {
    match item.socket_ptr() {
        None => Ok((item.fd(), false)),
        Some(_) if item.fd() >= 0 => Ok((item.fd(), true)),
        // The socket could not tell its fd when the item was made: ask again, for the error.
        Some(socket) => {
            let mut fd: RawFd = -1;
            let mut size = std::mem::size_of::<RawFd>();
            // SAFETY: `socket` is a live libzmq socket (the item borrows its `Socket`), and
            // `fd`/`size` describe a writable buffer of the size ZMQ_FD returns.
            let rc = unsafe {
                zmq_sys::zmq_getsockopt(
                    socket,
                    zmq_sys::ZMQ_FD as c_int,
                    (&mut fd as *mut RawFd).cast(),
                    &mut size,
                )
            };
            if rc < 0 {
                return Err(zmq_errno());
            }
            Ok((fd, true))
        }
    }
}
