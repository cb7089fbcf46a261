//! [`Poller`]: a poll set kept between calls, for loops that poll the same sockets again and
//! again (pyzmq's `Poller`).
//!
//! A one-shot [`poll`](super::poll) that has to wait builds an epoll set of all its items and
//! registers it with the scheduler: N+1 registrations per waiting call. A `Poller` keeps both
//! and updates them only on `register`/`modify`/`unregister`, so a wait costs one `zmq_poll`
//! over the items (the unavoidable readiness check) and one park, whatever N is.

use std::collections::HashMap;
use std::os::unix::io::RawFd;

use zmq::{PollEvents, Result};

use super::{member_fd, zmq_poll, Member, Waiter};
use crate::poll_item::PollItem;
use crate::readiness::deadline_after;
use crate::sched;
use crate::socket::Socket;

/// What a [`Poller`] item polls.
#[derive(Clone, Copy, Debug)]
pub enum PollTarget<'a> {
    /// A green socket.
    Socket(&'a Socket),
    /// A plain file descriptor.
    Fd(RawFd),
}

/// A target's identity for the index: a socket by address (the poller borrows it, so the
/// address cannot be reused while registered), or a plain fd by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Socket(usize),
    Fd(RawFd),
}

impl Key {
    fn of_socket(socket: &Socket) -> Key {
        Key::Socket(socket as *const Socket as usize)
    }

    fn of_target(target: PollTarget<'_>) -> Key {
        match target {
            PollTarget::Socket(socket) => Key::of_socket(socket),
            PollTarget::Fd(fd) => Key::Fd(fd),
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
    items: Vec<PollItem<'a>>,
    targets: Vec<PollTarget<'a>>,
    /// Where each target sits in the three vectors: register, modify and unregister cost
    /// O(1), not a scan (a loop with thousands of streams changes interests often).
    index: HashMap<Key, usize>,
    /// Each item's fd, read once at registration (a terminated socket refuses `ZMQ_FD`, and
    /// must still be removable).
    members: Vec<Member>,
    /// Built on the first wait inside a coroutine, then kept in step with `items`.
    waiter: Option<Waiter>,
}

impl<'a> Poller<'a> {
    /// An empty poller.
    pub fn new() -> Poller<'a> {
        Poller::default()
    }

    /// Number of registered items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Polls `socket` for `events`. Registering it again changes its events; empty events
    /// unregister it.
    pub fn register(&mut self, socket: &'a Socket, events: PollEvents) -> Result<()> {
        self.upsert(PollTarget::Socket(socket), socket.as_poll_item(events))
    }

    /// Polls the plain fd `fd` for `events`. Registering it again changes its events; empty
    /// events unregister it.
    pub fn register_fd(&mut self, fd: RawFd, events: PollEvents) -> Result<()> {
        self.upsert(PollTarget::Fd(fd), PollItem::from_fd(fd, events))
    }

    /// Changes the events polled on a registered socket (EINVAL if it is not registered).
    pub fn modify(&mut self, socket: &Socket, events: PollEvents) -> Result<()> {
        let index = self.position_of_socket(socket).ok_or(zmq::Error::EINVAL)?;
        self.set_events(index, events)
    }

    /// Stops polling `socket` (EINVAL if it is not registered).
    pub fn unregister(&mut self, socket: &Socket) -> Result<()> {
        let index = self.position_of_socket(socket).ok_or(zmq::Error::EINVAL)?;
        self.remove(index)
    }

    /// Stops polling the plain fd `fd` (EINVAL if it is not registered).
    pub fn unregister_fd(&mut self, fd: RawFd) -> Result<()> {
        let index = self.position_of_fd(fd).ok_or(zmq::Error::EINVAL)?;
        self.remove(index)
    }

    /// Polls the registered items, parking only this coroutine while nothing is ready (see
    /// [`poll`](super::poll) for `timeout_ms`). Returns how many items are ready; they are then
    /// listed by [`ready`](Poller::ready).
    pub fn poll(&mut self, timeout_ms: i64) -> Result<i32> {
        let Some(scheduler) = sched::current() else {
            return zmq_poll(&mut self.items, timeout_ms);
        };
        let ready = zmq_poll(&mut self.items, 0)?;
        if ready > 0 || timeout_ms == 0 {
            return Ok(ready);
        }
        let deadline = deadline_after(timeout_ms);
        if self.waiter.is_none() {
            let waiter = Waiter::new()?;
            for (item, member) in self.items.iter().zip(&self.members) {
                waiter.add_member(*member, item.get_events())?;
            }
            self.waiter = Some(waiter);
        }
        let waiter = self.waiter.as_mut().expect("built above");
        waiter.wait(scheduler, &mut self.items, &self.members, deadline)
    }

    /// The items with events after the last [`poll`](Poller::poll), and their events.
    pub fn ready(&self) -> impl Iterator<Item = (PollTarget<'a>, PollEvents)> + '_ {
        self.targets
            .iter()
            .zip(&self.items)
            .filter(|(_, item)| !item.get_revents().is_empty())
            .map(|(target, item)| (*target, item.get_revents()))
    }

    /// The events of `socket` after the last poll (empty if not registered or not ready).
    pub fn events_of(&self, socket: &Socket) -> PollEvents {
        self.position_of_socket(socket)
            .map_or(PollEvents::empty(), |i| self.items[i].get_revents())
    }

    fn position_of_socket(&self, socket: &Socket) -> Option<usize> {
        self.index.get(&Key::of_socket(socket)).copied()
    }

    fn position_of_fd(&self, fd: RawFd) -> Option<usize> {
        self.index.get(&Key::Fd(fd)).copied()
    }

    fn upsert(&mut self, target: PollTarget<'a>, item: PollItem<'a>) -> Result<()> {
        let existing = match target {
            PollTarget::Socket(socket) => self.position_of_socket(socket),
            PollTarget::Fd(fd) => self.position_of_fd(fd),
        };
        let events = item.get_events();
        match existing {
            Some(index) if events.is_empty() => self.remove(index),
            Some(index) => self.set_events(index, events),
            None if events.is_empty() => Ok(()),
            None => {
                let member = member_fd(&item)?;
                if let Some(waiter) = &self.waiter {
                    waiter.add_member(member, events)?;
                }
                self.index.insert(Key::of_target(target), self.items.len());
                self.items.push(item);
                self.targets.push(target);
                self.members.push(member);
                Ok(())
            }
        }
    }

    fn set_events(&mut self, index: usize, events: PollEvents) -> Result<()> {
        self.items[index].set_events(events);
        match &self.waiter {
            Some(waiter) => waiter.modify_member(self.members[index], events),
            None => Ok(()),
        }
    }

    /// Removes an item. It always leaves the poller, even if the scheduler registration
    /// could not be updated (that error is returned after the removal).
    fn remove(&mut self, index: usize) -> Result<()> {
        let outcome = match &self.waiter {
            Some(waiter) => waiter.remove_member(self.members[index]),
            None => Ok(()),
        };
        self.index.remove(&Key::of_target(self.targets[index]));
        self.items.swap_remove(index);
        self.targets.swap_remove(index);
        self.members.swap_remove(index);
        if let Some(moved) = self.targets.get(index) {
            self.index.insert(Key::of_target(*moved), index); // the former last item
        }
        outcome
    }
}

impl std::fmt::Debug for Poller<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("items", &self.items)
            .field("waiting", &self.waiter.is_some())
            .finish()
    }
}
