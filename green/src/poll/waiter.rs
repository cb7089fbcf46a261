//! [`Waiter`]: how a poll set waits in a coroutine. An [`EpollSet`] of the items' fds, parked on
//! through the scheduler seam, and after each wake a `zmq_poll` of only the items whose fds
//! fired. Shared by the one-shot [`poll`](super::poll) and the kept [`PollSet`](super::set).

use std::os::raw::c_int;
use std::os::unix::io::RawFd;
use std::time::Instant;

use zmq::{PollEvents, Result};

use super::epoll_set::{EpollSet, Interest};
use super::{zmq_poll_raw, Member};
use crate::fallback;
use crate::sched::{self, Registration, Wake};

/// An [`EpollSet`] of poll items plus the scheduler registration of its fd.
pub(crate) struct Waiter {
    /// The registration of `set`'s fd. Invariant: released before `set` (and its fd) is
    /// dropped (`Drop`).
    registration: Registration,
    /// One member per item fd (items sharing an fd share it).
    set: EpollSet,
    /// Buffers of [`Waiter::wait`], kept so that a kept poll set wakes without allocating.
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

    /// Adds an item on `fd` that asks for `events`.
    pub(crate) fn add_member(&mut self, (fd, is_socket): Member, events: PollEvents) -> Result<()> {
        self.set.add(fd, Interest::of(events, is_socket))
    }

    /// Changes the events an item on `fd` asks for from `old` to `new`.
    pub(crate) fn modify_member(
        &mut self,
        (fd, is_socket): Member,
        old: PollEvents,
        new: PollEvents,
    ) -> Result<()> {
        let interest = |events| Interest::of(events, is_socket);
        self.set.modify(fd, interest(old), interest(new))
    }

    /// Removes an item on `fd` that asked for `events`. A socket whose context was terminated
    /// may have closed its fd already (epoll then dropped it by itself), hence the tolerance for
    /// EBADF (as ENOTSOCK) and ENOENT.
    pub(crate) fn remove_member(
        &mut self,
        (fd, is_socket): Member,
        events: PollEvents,
    ) -> Result<()> {
        match self.set.remove(fd, Interest::of(events, is_socket)) {
            Err(zmq::Error::ENOENT) => Ok(()),
            Err(zmq::Error::ENOTSOCK) => Ok(()),
            other => other,
        }
    }

    /// Parks until `zmq_poll(items, 0)` reports something (its count) or `deadline` (0).
    /// The caller has just polled `items` and found nothing ready; `members[i]` is the fd of
    /// `items[i]`, and every item is a member of this waiter.
    ///
    /// After an fd wake-up only the items whose fds the epoll set reports ready are checked
    /// (the others cannot have changed: their fds were drained by the caller's check), so a
    /// wait costs one `zmq_poll` over all items, not two.
    ///
    /// # Safety
    /// Every socket of `items` must stay open for the call.
    pub(crate) unsafe fn wait(
        &mut self,
        scheduler: sched::Scheduler,
        items: &mut [zmq_sys::zmq_pollitem_t],
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
                // SAFETY: the caller keeps the sockets of `items` open.
                unsafe { self.scratch.poll_subset(items, members) }?
            } else {
                let count = c_int::try_from(items.len()).map_err(|_| zmq::Error::EINVAL)?;
                // SAFETY: `items` holds `count` pollitems whose sockets the caller keeps open.
                unsafe { zmq_poll_raw(items.as_mut_ptr(), count, 0) }?
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
    ///
    /// # Safety
    /// Every socket of `items` must stay open for the call.
    unsafe fn poll_subset(
        &mut self,
        items: &mut [zmq_sys::zmq_pollitem_t],
        members: &[Member],
    ) -> Result<i32> {
        let Scratch {
            ready_fds,
            picked,
            subset,
        } = self;
        ready_fds.sort_unstable();
        picked.clear();
        picked.extend((0..items.len()).filter(|&i| ready_fds.binary_search(&members[i].0).is_ok()));
        for item in items.iter_mut() {
            item.revents = 0;
        }
        if picked.is_empty() {
            return Ok(0);
        }
        subset.clear();
        subset.extend(picked.iter().map(|&i| items[i]));
        let count = c_int::try_from(subset.len()).map_err(|_| zmq::Error::EINVAL)?;
        // SAFETY: `subset` holds `count` copies of items of `items`, whose sockets the caller
        // keeps open for this call.
        let ready = unsafe { zmq_poll_raw(subset.as_mut_ptr(), count, 0) }?;
        for (&i, polled) in picked.iter().zip(subset.iter()) {
            items[i].revents = polled.revents;
        }
        Ok(ready)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.registration.release(); // before `set` closes the fd
    }
}
