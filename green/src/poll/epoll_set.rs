//! [`EpollSet`]: a private epoll instance that gathers many fds into one, so a coroutine can
//! park on a whole poll set through the scheduler seam's single-fd `park`.
//!
//! The set is level-triggered: while any member fd is ready, the set's own fd is readable.
//! It is only ever used as a wake-up source, never read with `epoll_wait`: the truth about
//! readiness always comes from `zmq_poll`, which also drains the zmq notification fds. The
//! scheduler watches the set's fd edge-triggered, so a member that *stays* ready without zmq
//! reporting anything (the busy loop pyzmq's green poller fell into) wakes the owner once, not
//! in a loop: a new wake-up needs a new event on some member.

use std::os::unix::io::RawFd;

use zmq::{PollEvents, Result};

use crate::errors::last_os_error;

/// An owned epoll fd and the member fds registered in it.
#[derive(Debug)]
pub(crate) struct EpollSet {
    epfd: RawFd,
}

/// The epoll interest for a member. zmq notification fds are watched for input whatever the
/// zmq events asked (their readability means "state changed"); plain fds for what was asked.
fn interest(events: PollEvents, is_zmq_socket: bool) -> u32 {
    if is_zmq_socket {
        return libc::EPOLLIN as u32;
    }
    let mut interest = 0;
    if events.contains(zmq::POLLIN) {
        interest |= libc::EPOLLIN as u32;
    }
    if events.contains(zmq::POLLOUT) {
        interest |= libc::EPOLLOUT as u32;
    }
    interest
}

impl EpollSet {
    pub(crate) fn new() -> Result<EpollSet> {
        // SAFETY: plain syscall; the returned fd is owned by the new EpollSet.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(last_os_error());
        }
        Ok(EpollSet { epfd })
    }

    /// The fd to park on.
    pub(crate) fn fd(&self) -> RawFd {
        self.epfd
    }

    fn control(&self, op: libc::c_int, fd: RawFd, interest: u32) -> Result<()> {
        let mut event = libc::epoll_event {
            events: interest,
            u64: fd as u64,
        };
        // SAFETY: `self.epfd` is a live epoll fd; `event` outlives the call.
        if unsafe { libc::epoll_ctl(self.epfd, op, fd, &mut event) } < 0 {
            return Err(last_os_error());
        }
        Ok(())
    }

    /// Adds `fd`; `is_zmq_socket` tells a notification fd from a plain one.
    pub(crate) fn add(&self, fd: RawFd, events: PollEvents, is_zmq_socket: bool) -> Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, interest(events, is_zmq_socket))
    }

    /// Changes the events watched on a member.
    pub(crate) fn modify(&self, fd: RawFd, events: PollEvents, is_zmq_socket: bool) -> Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, interest(events, is_zmq_socket))
    }

    /// Removes a member.
    pub(crate) fn remove(&self, fd: RawFd) -> Result<()> {
        self.control(libc::EPOLL_CTL_DEL, fd, 0)
    }

    /// The members that are ready now (level-triggered, so a zmq notification fd stays listed
    /// until `ZMQ_EVENTS` drains it). Fills `ready`; returns false if the set could not say
    /// (then every member must be checked).
    pub(crate) fn ready_members(&self, ready: &mut Vec<RawFd>) -> bool {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: `events` is a valid buffer of 64 entries; a zero timeout never blocks.
        let count = unsafe { libc::epoll_wait(self.epfd, events.as_mut_ptr(), 64, 0) };
        let Ok(count) = usize::try_from(count) else {
            return false;
        };
        ready.clear();
        ready.extend(events[..count].iter().map(|event| event.u64 as RawFd));
        count < events.len() // a full buffer may have left members out
    }
}

impl Drop for EpollSet {
    fn drop(&mut self) {
        // SAFETY: the fd is owned by this set and closed exactly once, here. Whoever parks on
        // it releases its scheduler registration before the set is dropped (see `Waiter`).
        unsafe { libc::close(self.epfd) };
    }
}
