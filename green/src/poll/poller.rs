//! [`Poller`]: a poll set kept between calls, for loops that poll the same sockets again and
//! again (pyzmq's `Poller`). It borrows its sockets; the kept set itself is [`PollSet`], shared
//! with [`KeyedPoller`](super::KeyedPoller), which owns them.

use std::os::unix::io::RawFd;

use zmq::{PollEvents, Result};

use super::set::{PollSet, Source};
use crate::poll_item::PollItem;
use crate::socket::Socket;

/// What a [`Poller`] item polls.
#[derive(Clone, Copy, Debug)]
pub enum PollTarget<'a> {
    /// A green socket.
    Socket(&'a Socket),
    /// A plain file descriptor.
    Fd(RawFd),
}

impl<'a> PollTarget<'a> {
    /// The item that polls this target for `events`, for as long as the target's borrow.
    pub(crate) fn poll_item(self, events: PollEvents) -> PollItem<'a> {
        match self {
            PollTarget::Socket(socket) => socket.as_poll_item(events),
            PollTarget::Fd(fd) => PollItem::from_fd(fd, events),
        }
    }
}

// SAFETY: a `PollTarget` borrows its socket for `'a`, so the socket cannot be closed (dropped)
// while the target lives; and a target is immutable, so its item always names that socket.
unsafe impl Source for PollTarget<'_> {
    fn item(&self, events: PollEvents) -> PollItem<'_> {
        self.poll_item(events)
    }
}

/// A member's identity: a socket by address (its poller borrows or owns it, so the address
/// cannot be reused while it is registered), or a plain fd by number. One item per identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Identity {
    Socket(usize),
    Fd(RawFd),
}

impl Identity {
    pub(crate) fn of_socket(socket: &Socket) -> Identity {
        Identity::Socket(socket as *const Socket as usize)
    }

    pub(crate) fn of_target(target: PollTarget<'_>) -> Identity {
        match target {
            PollTarget::Socket(socket) => Identity::of_socket(socket),
            PollTarget::Fd(fd) => Identity::Fd(fd),
        }
    }
}

/// A reusable set of sockets and fds to poll: the poll set and its registration with the
/// scheduler are kept between calls and updated only by `register`/`modify`/`unregister`, so a
/// wait costs one `zmq_poll` over the items and one park, however many items there are.
///
/// ```
/// use zmqloop_green as zmq;
///
/// let ctx = zmq::Context::new();
/// let a = ctx.socket(zmq::PULL).unwrap();
/// a.bind("inproc://poller-doc").unwrap();
/// let b = ctx.socket(zmq::PUSH).unwrap();
/// b.connect("inproc://poller-doc").unwrap();
///
/// let mut poller = zmq::Poller::new();
/// poller.register(&a, zmq::POLLIN).unwrap();
/// assert_eq!(poller.poll(0).unwrap(), 0); // nothing yet
/// b.send("hi", 0).unwrap();
/// assert_eq!(poller.poll(1000).unwrap(), 1);
/// let (target, events) = poller.ready().next().unwrap();
/// assert!(matches!(target, zmq::PollTarget::Socket(s) if std::ptr::eq(s, &a)));
/// assert!(events.contains(zmq::POLLIN));
/// ```
#[derive(Default)]
pub struct Poller<'a> {
    /// The items, by identity.
    set: PollSet<Identity, PollTarget<'a>>,
}

impl<'a> Poller<'a> {
    /// An empty poller.
    pub fn new() -> Poller<'a> {
        Poller::default()
    }

    /// Number of registered items.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.set.len() == 0
    }

    /// Polls `socket` for `events`. Registering it again changes its events; empty events
    /// unregister it.
    pub fn register(&mut self, socket: &'a Socket, events: PollEvents) -> Result<()> {
        self.upsert(PollTarget::Socket(socket), events)
    }

    /// Polls the plain fd `fd` for `events`. Registering it again changes its events; empty
    /// events unregister it.
    pub fn register_fd(&mut self, fd: RawFd, events: PollEvents) -> Result<()> {
        self.upsert(PollTarget::Fd(fd), events)
    }

    /// Changes the events polled on a registered socket (EINVAL if it is not registered).
    pub fn modify(&mut self, socket: &Socket, events: PollEvents) -> Result<()> {
        let position = self.position_of_socket(socket).ok_or(zmq::Error::EINVAL)?;
        self.set.set_events(position, events)
    }

    /// Stops polling `socket` (EINVAL if it is not registered).
    pub fn unregister(&mut self, socket: &Socket) -> Result<()> {
        let position = self.position_of_socket(socket).ok_or(zmq::Error::EINVAL)?;
        self.set.remove(position).1
    }

    /// Stops polling the plain fd `fd` (EINVAL if it is not registered).
    pub fn unregister_fd(&mut self, fd: RawFd) -> Result<()> {
        let position = self
            .set
            .position(Identity::Fd(fd))
            .ok_or(zmq::Error::EINVAL)?;
        self.set.remove(position).1
    }

    /// Polls the registered items, parking only this coroutine while nothing is ready (see
    /// [`poll`](super::poll) for `timeout_ms`). Returns how many items are ready; they are then
    /// listed by [`ready`](Poller::ready).
    pub fn poll(&mut self, timeout_ms: i64) -> Result<i32> {
        self.set.poll(timeout_ms)
    }

    /// The items with events after the last [`poll`](Poller::poll), and their events.
    pub fn ready(&self) -> impl Iterator<Item = (PollTarget<'a>, PollEvents)> + '_ {
        self.set
            .ready()
            .map(|(_, target, events)| (*target, events))
    }

    /// The events of `socket` after the last poll (empty if not registered or not ready).
    pub fn events_of(&self, socket: &Socket) -> PollEvents {
        self.position_of_socket(socket)
            .map_or(PollEvents::empty(), |position| self.set.revents(position))
    }

    fn position_of_socket(&self, socket: &Socket) -> Option<usize> {
        self.set.position(Identity::of_socket(socket))
    }

    fn upsert(&mut self, target: PollTarget<'a>, events: PollEvents) -> Result<()> {
        let identity = Identity::of_target(target);
        match self.set.position(identity) {
            Some(position) if events.is_empty() => self.set.remove(position).1,
            Some(position) => self.set.set_events(position, events),
            None if events.is_empty() => Ok(()),
            None => self
                .set
                .insert(identity, target, events)
                .map_err(|(err, _)| err),
        }
    }
}

impl std::fmt::Debug for Poller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("items", &self.len())
            .finish_non_exhaustive()
    }
}
