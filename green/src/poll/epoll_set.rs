//! [`EpollSet`]: a private epoll instance that gathers many fds into one, so a coroutine can
//! park on a whole poll set through the scheduler seam's single-fd `park`.
//!
//! The set is level-triggered: while any member fd is ready, the set's own fd is readable.
//! It is only ever used as a wake-up source, never read with `epoll_wait`: the truth about
//! readiness always comes from `zmq_poll`, which also drains the zmq notification fds. The
//! scheduler watches the set's fd edge-triggered, so a member that *stays* ready without zmq
//! reporting anything (the busy loop pyzmq's green poller fell into) wakes the owner once, not
//! in a loop: a new wake-up needs a new event on some member.
//!
//! Several poll items may share an fd (`zmq_poll` allows it: the same socket twice, or a socket
//! and its own `ZMQ_FD` as a plain fd, which a `ZmqStream` watches while a send is stalled).
//! epoll holds an fd once, so the set counts the items of each fd and watches the union of
//! their interests.

use std::collections::HashMap;
use std::os::unix::io::RawFd;

use zmq::{PollEvents, Result};

use crate::errors::last_os_error;

/// An owned epoll fd and the member fds registered in it.
#[derive(Debug)]
pub(crate) struct EpollSet {
    epfd: RawFd,
    /// The items of each member fd. Invariant: an fd is in the epoll set exactly while it has
    /// an entry here, watched for the union of its items' interests ([`Uses::flags`]), unless
    /// epoll refused the change of a removal (which returned that error).
    members: HashMap<RawFd, Uses>,
}

/// What an item wants of its fd, in epoll's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interest {
    readable: bool,
    writable: bool,
}

impl Interest {
    const NONE: Interest = Interest {
        readable: false,
        writable: false,
    };

    /// The interest of an item. zmq notification fds are watched for input whatever the zmq
    /// events asked (their readability means "state changed"); plain fds for what was asked.
    pub(crate) fn of(events: PollEvents, is_zmq_socket: bool) -> Interest {
        Interest {
            readable: is_zmq_socket || events.contains(zmq::POLLIN),
            writable: !is_zmq_socket && events.contains(zmq::POLLOUT),
        }
    }
}

/// How many items use one fd, and how many of them want each direction. Invariant: `items`
/// is at least 1 and at least each direction's count.
#[derive(Clone, Copy, Debug)]
struct Uses {
    items: u32,
    readers: u32,
    writers: u32,
}

impl Uses {
    /// These uses with one item moved from `old` to `new` and `delta` items more.
    fn changed(mut self, old: Interest, new: Interest, delta: i32) -> Uses {
        let step = |count: u32, from: bool, to: bool| {
            count + u32::from(to) - u32::from(from) // `from` was counted, so no underflow
        };
        self.readers = step(self.readers, old.readable, new.readable);
        self.writers = step(self.writers, old.writable, new.writable);
        self.items = self
            .items
            .checked_add_signed(delta)
            .expect("balanced counts");
        self
    }

    /// The union of the items' interests, as epoll flags.
    fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.readers > 0 {
            flags |= libc::EPOLLIN as u32;
        }
        if self.writers > 0 {
            flags |= libc::EPOLLOUT as u32;
        }
        flags
    }
}

impl EpollSet {
    pub(crate) fn new() -> Result<EpollSet> {
        // SAFETY: plain syscall; the returned fd is owned by the new EpollSet.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(last_os_error());
        }
        Ok(EpollSet {
            epfd,
            members: HashMap::new(),
        })
    }

    /// The fd to park on.
    pub(crate) fn fd(&self) -> RawFd {
        self.epfd
    }

    fn control(&self, op: libc::c_int, fd: RawFd, flags: u32) -> Result<()> {
        let mut event = libc::epoll_event {
            events: flags,
            u64: fd as u64,
        };
        // SAFETY: `self.epfd` is a live epoll fd; `event` outlives the call.
        if unsafe { libc::epoll_ctl(self.epfd, op, fd, &mut event) } < 0 {
            return Err(last_os_error());
        }
        Ok(())
    }

    /// Adds an item on `fd` (the fd joins the set with its first item). Nothing changes if
    /// epoll refuses.
    pub(crate) fn add(&mut self, fd: RawFd, interest: Interest) -> Result<()> {
        let Some(&uses) = self.members.get(&fd) else {
            let first = Uses {
                items: 0,
                readers: 0,
                writers: 0,
            }
            .changed(Interest::NONE, interest, 1);
            self.control(libc::EPOLL_CTL_ADD, fd, first.flags())?;
            self.members.insert(fd, first);
            return Ok(());
        };
        self.update(fd, uses, uses.changed(Interest::NONE, interest, 1))
    }

    /// Moves one item on `fd` from `old` to `new`. Nothing changes if epoll refuses.
    pub(crate) fn modify(&mut self, fd: RawFd, old: Interest, new: Interest) -> Result<()> {
        let &uses = self.members.get(&fd).ok_or(zmq::Error::ENOENT)?;
        self.update(fd, uses, uses.changed(old, new, 0))
    }

    /// Removes an item on `fd` (the fd leaves the set with its last item). The item is gone
    /// even if epoll refuses (a closed fd has left epoll by itself); the error is returned.
    pub(crate) fn remove(&mut self, fd: RawFd, interest: Interest) -> Result<()> {
        let &uses = self.members.get(&fd).ok_or(zmq::Error::ENOENT)?;
        if uses.items == 1 {
            self.members.remove(&fd);
            return self.control(libc::EPOLL_CTL_DEL, fd, 0);
        }
        let after = uses.changed(interest, Interest::NONE, -1);
        self.members.insert(fd, after);
        self.tell_epoll(fd, uses, after)
    }

    /// Records `after` as the uses of `fd` (before: `before`) if epoll accepts the change.
    fn update(&mut self, fd: RawFd, before: Uses, after: Uses) -> Result<()> {
        self.tell_epoll(fd, before, after)?;
        self.members.insert(fd, after);
        Ok(())
    }

    /// Changes what epoll watches on `fd` if the union of interests changed.
    fn tell_epoll(&self, fd: RawFd, before: Uses, after: Uses) -> Result<()> {
        if after.flags() == before.flags() {
            return Ok(());
        }
        self.control(libc::EPOLL_CTL_MOD, fd, after.flags())
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
        // it releases its scheduler registration before the set is dropped (see `Parker`).
        unsafe { libc::close(self.epfd) };
    }
}

#[cfg(test)]
mod tests {
    //! The bookkeeping of shared fds, against a real epoll set and a pipe.

    use super::*;

    /// A pipe whose read end holds a byte: readable, and never writable.
    fn readable_pipe() -> (RawFd, RawFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe() writes; the byte comes from a valid
        // buffer.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            assert_eq!(libc::write(fds[1], b"x".as_ptr().cast(), 1), 1);
        }
        (fds[0], fds[1])
    }

    fn ready(set: &EpollSet) -> Vec<RawFd> {
        let mut ready = Vec::new();
        assert!(set.ready_members(&mut ready));
        ready
    }

    #[test]
    fn items_sharing_an_fd_watch_the_union_of_their_interests_until_the_last_leaves() {
        let (read_end, write_end) = readable_pipe();
        let reader = Interest::of(zmq::POLLIN, false);
        let writer = Interest::of(zmq::POLLOUT, false);
        let mut set = EpollSet::new().unwrap();
        set.add(read_end, writer).unwrap();
        assert!(ready(&set).is_empty(), "a read end is never writable");
        set.add(read_end, reader).unwrap(); // no EEXIST: the fd is shared
        assert_eq!(ready(&set), [read_end]);
        set.modify(read_end, reader, writer).unwrap();
        assert!(ready(&set).is_empty(), "nobody reads any more");
        set.modify(read_end, writer, reader).unwrap();
        set.remove(read_end, writer).unwrap();
        assert_eq!(ready(&set), [read_end], "the remaining item still reads");
        set.remove(read_end, reader).unwrap();
        assert!(ready(&set).is_empty());
        assert_eq!(set.remove(read_end, reader), Err(zmq::Error::ENOENT));
        set.add(read_end, reader).unwrap(); // gone from epoll: a fresh ADD works
        assert_eq!(ready(&set), [read_end]);
        // SAFETY: closes the pipe this test owns, once.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
    }

    #[test]
    fn a_refused_add_changes_nothing() {
        let mut set = EpollSet::new().unwrap();
        // Not an fd (a closed one's number could be reused at once by another test's thread).
        assert!(set.add(-1, Interest::of(zmq::POLLIN, false)).is_err());
        assert!(set.members.is_empty());
    }
}
