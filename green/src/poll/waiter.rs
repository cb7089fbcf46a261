//! [`Waiter`]: how a poll set waits in a coroutine. An [`EpollSet`] of the items' fds, parked on
//! through the scheduler seam, and after each wake a `zmq_poll` of only the items whose fds
//! fired. Shared by the one-shot [`poll`](super::poll) and the kept [`PollSet`](super::set).
//!
//! A wait is a loop of two steps: [`Parker::park`] (no access to the items) and
//! [`Waiter::check`] (the items, after the wake). [`Waiter::wait`] runs both on items held for
//! the whole wait; a kept set reached through a `RefCell` runs them with the set borrowed for
//! the check only, holding a clone of the [`Parker`] across the park, so that the set can be
//! changed while its owner is parked (`PollSet::poll_shared`).

use std::cell::RefCell;
use std::os::raw::c_int;
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::time::Instant;

use zmq::{PollEvents, Result};

use super::epoll_set::{EpollSet, Interest};
use super::{zmq_poll_raw, Member};
use crate::fallback;
use crate::sched::{self, Registration, Wake};

/// An [`EpollSet`] of poll items plus the scheduler registration of its fd.
pub(crate) struct Waiter {
    /// The epoll set and its registration; a wait that parks without holding the waiter holds
    /// a clone until its park ends.
    parker: Rc<Parker>,
    /// Buffers of [`Waiter::check`], kept so that a kept poll set wakes without allocating.
    scratch: Scratch,
}

/// What a wait parks on: the epoll set of the items' fds and the scheduler registration of its
/// fd, together, so that whoever holds a clone keeps the fd open and registered until the park
/// ends, whatever happens meanwhile to the [`Waiter`] that made it.
pub(crate) struct Parker {
    /// The registration of `set`'s fd. Invariants: released before `set` (and its fd) is
    /// dropped (`Drop`); borrowed for the whole of a park and only then, so a second wait that
    /// tries to park at the same time finds it borrowed (EBUSY).
    registration: RefCell<Registration>,
    /// One member per item fd (items sharing an fd share it). Invariant: borrowed only for a
    /// change or a look, never across a park, so members can come and go while a wait parks.
    set: RefCell<EpollSet>,
}

/// What one wake-up of a wait works with: the fds the epoll set reported (sorted),
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
            parker: Rc::new(Parker {
                registration: RefCell::default(),
                set: RefCell::new(EpollSet::new()?),
            }),
            scratch: Scratch::default(),
        })
    }

    /// Adds an item on `fd` that asks for `events`.
    pub(crate) fn add_member(&mut self, (fd, is_socket): Member, events: PollEvents) -> Result<()> {
        self.epoll().add(fd, Interest::of(events, is_socket))
    }

    /// Changes the events an item on `fd` asks for from `old` to `new`.
    pub(crate) fn modify_member(
        &mut self,
        (fd, is_socket): Member,
        old: PollEvents,
        new: PollEvents,
    ) -> Result<()> {
        let interest = |events| Interest::of(events, is_socket);
        self.epoll().modify(fd, interest(old), interest(new))
    }

    /// Removes an item on `fd` that asked for `events`. A socket whose context was terminated
    /// may have closed its fd already (epoll then dropped it by itself), hence the tolerance for
    /// EBADF (as ENOTSOCK) and ENOENT.
    pub(crate) fn remove_member(
        &mut self,
        (fd, is_socket): Member,
        events: PollEvents,
    ) -> Result<()> {
        match self.epoll().remove(fd, Interest::of(events, is_socket)) {
            Err(zmq::Error::ENOENT) => Ok(()),
            Err(zmq::Error::ENOTSOCK) => Ok(()),
            other => other,
        }
    }

    /// The epoll set, for a change (never borrowed across a park: [`Parker`]).
    fn epoll(&self) -> std::cell::RefMut<'_, EpollSet> {
        self.parker.set.borrow_mut()
    }

    /// What a wait that does not hold this waiter across its park parks on.
    pub(crate) fn parker(&self) -> Rc<Parker> {
        self.parker.clone()
    }

    /// Parks until `zmq_poll(items, 0)` reports something (its count) or `deadline` (0).
    /// The caller has just polled `items` and found nothing ready; `members[i]` is the fd of
    /// `items[i]`, and every item is a member of this waiter.
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
        while deadline.is_none_or(|at| at > Instant::now()) {
            let wake = self.parker.park(scheduler, deadline)?;
            // SAFETY: the caller keeps the sockets of `items` open.
            let ready = unsafe { self.check(wake, items, members) }?;
            if ready > 0 {
                return Ok(ready);
            }
        }
        Ok(0)
    }

    /// After a park that ended with `wake`: `zmq_poll(0)` over the items whose fds the epoll set
    /// reports ready after an fd wake-up (the others cannot have changed: their fds were drained
    /// by the check before the park), over every item otherwise, so that a wait costs one
    /// `zmq_poll` over all items, not two. Returns how many items are ready; a fallback check
    /// that found some is recorded as a missed edge. `members[i]` is the fd of `items[i]`.
    ///
    /// # Safety
    /// Every socket of `items` must stay open for the call.
    pub(crate) unsafe fn check(
        &mut self,
        wake: Wake,
        items: &mut [zmq_sys::zmq_pollitem_t],
        members: &[Member],
    ) -> Result<i32> {
        let set = self.parker.set.borrow();
        let ready = if wake == Wake::Fd && set.ready_members(&mut self.scratch.ready_fds) {
            // SAFETY: the caller keeps the sockets of `items` open.
            unsafe { self.scratch.poll_subset(items, members) }?
        } else {
            let count = c_int::try_from(items.len()).map_err(|_| zmq::Error::EINVAL)?;
            // SAFETY: `items` holds `count` pollitems whose sockets the caller keeps open.
            unsafe { zmq_poll_raw(items.as_mut_ptr(), count, 0) }?
        };
        if ready > 0 && wake == Wake::Fallback {
            fallback::record_missed_edge(set.fd());
        }
        Ok(ready)
    }
}

impl Parker {
    /// Parks the caller of `scheduler` until the epoll set's fd signals or `deadline` passes,
    /// with the fallback checks of the seam.
    ///
    /// # Errors
    /// EBUSY if another wait is parked on this set; the seam's error if the fd cannot be
    /// registered.
    pub(crate) fn park(
        &self,
        scheduler: sched::Scheduler,
        deadline: Option<Instant>,
    ) -> Result<Wake> {
        let mut registration = self
            .registration
            .try_borrow_mut()
            .map_err(|_| zmq::Error::EBUSY)?;
        let fd = self.set.borrow().fd();
        registration.park(scheduler, fd, deadline, fallback::fallback_interval())
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

impl Drop for Parker {
    fn drop(&mut self) {
        self.registration.get_mut().release(); // before `set` closes the fd
    }
}
