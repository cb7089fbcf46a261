//! Green `poll`: [`poll`] and `Socket::poll` with `zmq`'s signatures, and the reusable
//! [`Poller`] for loops that poll the same set again and again.
//!
//! Waiting follows the readiness rule of `readiness`, for a whole set at once:
//! 1. `zmq_poll(items, 0)`: the truth for every item (it also drains the zmq notification
//!    fds). Anything ready, or a zero timeout: return.
//! 2. Past the deadline: return 0.
//! 3. Park on an [`EpollSet`] holding every item's fd (zmq notification fds and plain fds)
//!    through the scheduler seam, then go to 1.
//!
//! Outside any coroutine the plain, blocking `zmq_poll` runs instead.

mod epoll_set;
mod poller;

use std::os::raw::{c_int, c_long};
use std::os::unix::io::RawFd;
use std::time::Instant;

use zmq::Result;

use crate::errors::zmq_errno;
use crate::fallback;
use crate::poll_item::PollItem;
use crate::readiness::deadline_after;
use crate::sched::{self, Registration, Wake};
use crate::socket::Socket;

pub(crate) use epoll_set::EpollSet;
pub use poller::{PollTarget, Poller};

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
    // An fd may be listed twice (zmq_poll allows it); epoll holds it once, for all its events.
    let mut interests: Vec<(Member, zmq::PollEvents)> = Vec::with_capacity(items.len());
    for (item, &member) in items.iter().zip(&members) {
        match interests.iter_mut().find(|(known, _)| known.0 == member.0) {
            Some((_, events)) => *events |= item.get_events(),
            None => interests.push((member, item.get_events())),
        }
    }
    for (member, events) in interests {
        waiter.add_member(member, events)?;
    }
    waiter.wait(scheduler, items, &members, deadline_after(timeout_ms))
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
    let count = c_int::try_from(items.len()).map_err(|_| zmq::Error::EINVAL)?;
    // SAFETY: `PollItem` is `repr(transparent)` over `zmq_pollitem_t`, so the slice is an array
    // of `count` pollitems that libzmq may update (revents) for the duration of the call.
    unsafe { zmq_poll_raw(items.as_mut_ptr().cast(), count, timeout_ms) }
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

/// An [`EpollSet`] of poll items plus the scheduler registration of its fd.
///
/// Invariant: `registration` is released before `set` (and its fd) is dropped.
pub(crate) struct Waiter {
    registration: Registration,
    set: EpollSet,
    /// Buffers of [`Waiter::wait`], kept so that a [`Poller`] wakes without allocating.
    scratch: Scratch,
}

/// What one wake-up of [`Waiter::wait`] works with: the fds the epoll set reported (sorted),
/// the indices of the items they belong to, and those items copied out for `zmq_poll`.
#[derive(Default)]
struct Scratch {
    ready_fds: Vec<RawFd>,
    picked: Vec<usize>,
    subset: Vec<zmq_sys::zmq_pollitem_t>,
}

impl Waiter {
    pub(crate) fn new() -> Result<Waiter> {
        Ok(Waiter {
            registration: Registration::default(),
            set: EpollSet::new()?,
            scratch: Scratch::default(),
        })
    }

    pub(crate) fn add_member(
        &self,
        (fd, is_socket): Member,
        events: zmq::PollEvents,
    ) -> Result<()> {
        self.set.add(fd, events, is_socket)
    }

    pub(crate) fn modify_member(
        &self,
        (fd, is_socket): Member,
        events: zmq::PollEvents,
    ) -> Result<()> {
        self.set.modify(fd, events, is_socket)
    }

    /// Removes a member. A socket whose context was terminated may have closed its fd already
    /// (epoll then dropped it by itself), hence the tolerance for EBADF (as ENOTSOCK) and ENOENT.
    pub(crate) fn remove_member(&self, (fd, _): Member) -> Result<()> {
        match self.set.remove(fd) {
            Err(zmq::Error::ENOENT) => Ok(()),
            Err(zmq::Error::ENOTSOCK) => Ok(()),
            other => other,
        }
    }

    /// Parks until `zmq_poll(items, 0)` reports something (its count) or `deadline` (0).
    /// The caller has just polled `items` and found nothing ready; `members[i]` is the fd of
    /// `items[i]`.
    ///
    /// After an fd wake-up only the items whose fds the epoll set reports ready are checked
    /// (the others cannot have changed: their fds were drained by the caller's check), so a
    /// wait costs one `zmq_poll` over all items, not two.
    pub(crate) fn wait(
        &mut self,
        scheduler: sched::Scheduler,
        items: &mut [PollItem],
        members: &[Member],
        deadline: Option<Instant>,
    ) -> Result<i32> {
        loop {
            if deadline.is_some_and(|at| at <= Instant::now()) {
                return Ok(0);
            }
            let interval = fallback::fallback_interval();
            let wake = self
                .registration
                .park(scheduler, self.set.fd(), deadline, interval)?;
            let ready = if wake == Wake::Fd && self.set.ready_members(&mut self.scratch.ready_fds) {
                self.scratch.poll_subset(items, members)?
            } else {
                zmq_poll(items, 0)?
            };
            if ready > 0 {
                if wake == Wake::Fallback {
                    fallback::record_missed_edge(self.set.fd());
                }
                return Ok(ready);
            }
        }
    }
}

impl Scratch {
    /// `zmq_poll(items, 0)` over only the items whose fds are in `ready_fds`; the other items
    /// get no events.
    fn poll_subset(&mut self, items: &mut [PollItem], members: &[Member]) -> Result<i32> {
        let Scratch {
            ready_fds,
            picked,
            subset,
        } = self;
        ready_fds.sort_unstable();
        picked.clear();
        picked.extend((0..items.len()).filter(|&i| ready_fds.binary_search(&members[i].0).is_ok()));
        for item in items.iter_mut() {
            item.clear_revents();
        }
        if picked.is_empty() {
            return Ok(0);
        }
        subset.clear();
        subset.extend(picked.iter().map(|&i| items[i].raw()));
        let count = c_int::try_from(subset.len()).map_err(|_| zmq::Error::EINVAL)?;
        // SAFETY: `subset` holds `count` copies of items of `items`, whose sockets the caller
        // keeps alive for this call.
        let ready = unsafe { zmq_poll_raw(subset.as_mut_ptr(), count, 0) }?;
        for (&i, polled) in picked.iter().zip(subset.iter()) {
            items[i].set_revents(zmq::PollEvents::from_bits_truncate(polled.revents));
        }
        Ok(ready)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.registration.release(); // before `set` closes the fd
    }
}
