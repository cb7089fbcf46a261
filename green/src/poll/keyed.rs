//! [`KeyedPoller`]: a kept poll set that owns its members, for event loops.
//!
//! A [`Poller`](super::Poller) borrows its sockets, so whatever keeps one across the turns of a
//! loop must also keep the sockets it names, borrowed: a loop that owns both cannot be written
//! without unsafe code. A `KeyedPoller` takes each socket as an `Rc<Socket>` (or a plain fd),
//! keeps it until it is unregistered, and names it by a [`PollKey`] of its own making, so a
//! loop can index its handlers by key and hold no reference into the poller.
//!
//! It waits exactly as a `Poller` does (the two are written on the same [`PollSet`]): one
//! `zmq_poll` over the items, then a park on an epoll set of their fds; register, modify and
//! unregister cost O(1). A member registered or modified with empty events stays registered
//! (its key and socket are kept) but leaves the poll set and the epoll set, so it costs nothing
//! in a wait until it asks for events again.

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::os::unix::io::RawFd;
use std::rc::Rc;

use zmq::{PollEvents, Result};

use super::poller::{Identity, PollTarget};
use super::set::{PollSet, Source};
use crate::poll_item::PollItem;
use crate::socket::Socket;

/// What a [`KeyedPoller`] member polls: a socket, which the poller keeps open while it is
/// registered, or a plain fd, which the caller keeps open.
#[derive(Clone, Debug)]
pub enum PollSource {
    /// A green socket.
    Socket(Rc<Socket>),
    /// A plain file descriptor.
    Fd(RawFd),
}

impl PollSource {
    /// The same member, borrowed: what a [`Poller`](super::Poller) would hold for it.
    fn target(&self) -> PollTarget<'_> {
        match self {
            PollSource::Socket(socket) => PollTarget::Socket(socket),
            PollSource::Fd(fd) => PollTarget::Fd(*fd),
        }
    }

    fn identity(&self) -> Identity {
        Identity::of_target(self.target())
    }
}

// SAFETY: the `Rc` keeps its `Socket`, and so the libzmq socket, open while the value lives
// (a `Socket` is closed only when dropped), and at the same address through moves; the set
// owns the value and never changes it, so its item always names that socket.
unsafe impl Source for PollSource {
    fn item(&self, events: PollEvents) -> PollItem<'_> {
        self.target().poll_item(events)
    }
}

/// The name of a [`KeyedPoller`] member, handed out by [`register`](KeyedPoller::register).
/// Keys are never reused by the poller that made them, so a stale key names nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PollKey(u64);

/// A poll set that owns its members (sockets as `Rc<Socket>`, and plain fds) and names them by
/// keys it hands out; see the module doc. Waits like a [`Poller`](super::Poller): in a
/// coroutine it parks only the coroutine, elsewhere it is a blocking `zmq_poll`.
///
/// ```
/// use std::rc::Rc;
/// use zmqloop_green as zmq;
///
/// let ctx = zmq::Context::new();
/// let pull = Rc::new(ctx.socket(zmq::PULL).unwrap());
/// pull.bind("inproc://keyed-doc").unwrap();
/// let push = ctx.socket(zmq::PUSH).unwrap();
/// push.connect("inproc://keyed-doc").unwrap();
///
/// let mut poller = zmq::KeyedPoller::new();
/// let key = poller.register(pull.clone(), zmq::POLLIN).unwrap();
/// assert_eq!(poller.key_of(&pull), Some(key));
/// assert_eq!(poller.poll(0).unwrap(), 0); // nothing yet
/// push.send("hi", 0).unwrap();
/// assert_eq!(poller.poll(1000).unwrap(), 1);
/// assert_eq!(poller.ready().collect::<Vec<_>>(), [(key, zmq::POLLIN)]);
///
/// poller.modify(key, zmq::PollEvents::empty()).unwrap(); // paused: polled no more
/// assert_eq!(poller.poll(0).unwrap(), 0);
/// let zmq::PollSource::Socket(socket) = poller.unregister(key).unwrap() else {
///     unreachable!("registered as a socket")
/// };
/// assert_eq!(socket.recv_string(0).unwrap().unwrap(), "hi");
/// ```
#[derive(Default)]
pub struct KeyedPoller {
    /// The members with events to poll.
    active: PollSet<PollKey, PollSource>,
    /// The members registered with empty events: kept, but out of `active` (so out of every
    /// `zmq_poll` and epoll set). Invariant: a key is in `active` or here, never both.
    paused: HashMap<PollKey, PollSource>,
    /// Each member's key by identity. Invariant: holds exactly the members of `active` and
    /// `paused`, one key per socket or fd.
    keys: HashMap<Identity, PollKey>,
    /// The key of the next member. Invariant: above every key handed out so far.
    next_key: u64,
}

impl KeyedPoller {
    /// An empty poller.
    pub fn new() -> KeyedPoller {
        KeyedPoller::default()
    }

    /// Number of members, paused ones included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Polls `socket` for `events` (empty: registered but paused) until it is unregistered,
    /// keeping it open until then; returns its key.
    ///
    /// # Errors
    /// EBUSY if this socket is registered already; the socket's own error if its fd cannot be
    /// read (ETERM after its context was terminated); an OS error (as `zmq::Error`) if the
    /// poller's epoll set refuses it. On error the poller drops its `Rc`. (The epoll set exists
    /// from the first wait in a coroutine on; a member added before is checked by that wait,
    /// which then fails with the error.)
    pub fn register(&mut self, socket: Rc<Socket>, events: PollEvents) -> Result<PollKey> {
        self.add(PollSource::Socket(socket), events)
    }

    /// Polls the plain fd `fd` for `events` (empty: registered but paused); returns its key.
    /// The fd must stay open until it is unregistered.
    ///
    /// # Errors
    /// EBUSY if `fd` is registered already; an OS error (as `zmq::Error`) if the poller's epoll
    /// set refuses it (EBADF as `ENOTSOCK`, for instance, if it is not open; as for
    /// [`register`](KeyedPoller::register), once the poller has waited in a coroutine).
    pub fn register_fd(&mut self, fd: RawFd, events: PollEvents) -> Result<PollKey> {
        self.add(PollSource::Fd(fd), events)
    }

    /// Changes the events polled on the member `key`. Empty events pause it: it keeps its key
    /// and socket but costs nothing in a wait until it asks for events again.
    ///
    /// # Errors
    /// ENOENT if `key` names no member; an OS error (as `zmq::Error`) if the epoll set refuses
    /// the change (a member that could not resume stays paused).
    pub fn modify(&mut self, key: PollKey, events: PollEvents) -> Result<()> {
        match (self.active.position(key), events.is_empty()) {
            (Some(position), false) => self.active.set_events(position, events),
            (Some(position), true) => {
                let (source, outcome) = self.active.remove(position);
                self.paused.insert(key, source);
                outcome
            }
            (None, true) if self.paused.contains_key(&key) => Ok(()),
            (None, false) => {
                let source = self.paused.remove(&key).ok_or(zmq::Error::ENOENT)?;
                self.active
                    .insert(key, source, events)
                    .map_err(|(err, source)| {
                        self.paused.insert(key, source);
                        err
                    })
            }
            (None, true) => Err(zmq::Error::ENOENT),
        }
    }

    /// Stops polling the member `key` and hands back what it polled (the poller's `Rc` of a
    /// socket).
    ///
    /// # Errors
    /// ENOENT if `key` names no member. The member always leaves: an epoll set that fails to
    /// let its fd go is logged, not returned (it can only cost a spurious wake-up).
    pub fn unregister(&mut self, key: PollKey) -> Result<PollSource> {
        let source = match self.active.position(key) {
            Some(position) => {
                let (source, outcome) = self.active.remove(position);
                if let Err(err) = outcome {
                    log::debug!("zmqloop: a poller could not drop a member's fd: {err}");
                }
                source
            }
            None => self.paused.remove(&key).ok_or(zmq::Error::ENOENT)?,
        };
        self.keys.remove(&source.identity());
        Ok(source)
    }

    /// The key of `socket`, if it is registered.
    pub fn key_of(&self, socket: &Socket) -> Option<PollKey> {
        self.keys.get(&Identity::of_socket(socket)).copied()
    }

    /// The key of the plain fd `fd`, if it is registered.
    pub fn key_of_fd(&self, fd: RawFd) -> Option<PollKey> {
        self.keys.get(&Identity::Fd(fd)).copied()
    }

    /// What the member `key` polls, if it is registered.
    pub fn source(&self, key: PollKey) -> Option<&PollSource> {
        match self.active.position(key) {
            Some(position) => Some(self.active.source(position)),
            None => self.paused.get(&key),
        }
    }

    /// Polls the members that have events, parking only this coroutine while nothing is ready
    /// (see [`poll`](super::poll) for `timeout_ms`). Returns how many members are ready; they
    /// are then listed by [`ready`](KeyedPoller::ready).
    ///
    /// # Errors
    /// As `zmq::poll`: ETERM once a member socket's context is terminated, EINTR, and in a
    /// coroutine an OS error if the wait cannot be set up.
    pub fn poll(&mut self, timeout_ms: i64) -> Result<i32> {
        self.active.poll(timeout_ms)
    }

    /// Polls like [`poll`](KeyedPoller::poll) a poller that code running meanwhile on this
    /// thread may change: other hub tasks, or may coroutines on the same worker, while this one
    /// is parked. `poller` is borrowed only between parks, never across one, so that
    /// [`register`](KeyedPoller::register), [`modify`](KeyedPoller::modify) and
    /// [`unregister`](KeyedPoller::unregister) through it work while the wait is parked, and
    /// take effect at once: a member that leaves is out of the wait (and the `Rc` of its socket
    /// comes back) when `unregister` returns, one that joins is watched from then on. A socket
    /// that joins with messages already waiting signals nothing, though: to have such a change
    /// looked at at once, wake the wait (an eventfd member, written by whoever changes the
    /// poller, is what the IOLoop uses). On a plain thread this is
    /// [`poll`](KeyedPoller::poll) itself (nothing else runs on the thread while it blocks).
    ///
    /// # Errors
    /// As [`poll`](KeyedPoller::poll); EBUSY if another wait on this poller is parked.
    ///
    /// # Panics
    /// If `poller` is borrowed elsewhere when the wait needs it (before its first park, after
    /// each wake): code that runs meanwhile must not hold a borrow of it across a park of its
    /// own.
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop_green as zmq;
    /// use zmq::hub::{self, Hub};
    ///
    /// let hub = Hub::new().unwrap();
    /// hub.block_on(|| {
    ///     let ctx = zmq::Context::new();
    ///     let pull = Rc::new(ctx.socket(zmq::PULL).unwrap());
    ///     pull.bind("inproc://keyed-shared-doc").unwrap();
    ///     let push = ctx.socket(zmq::PUSH).unwrap();
    ///     push.connect("inproc://keyed-shared-doc").unwrap();
    ///
    ///     let poller = Rc::new(RefCell::new(zmq::KeyedPoller::new()));
    ///     let shared = poller.clone();
    ///     // Another task registers the socket while this one waits, then makes it readable.
    ///     let other = hub::spawn(move || {
    ///         let key = shared.borrow_mut().register(pull, zmq::POLLIN).unwrap();
    ///         push.send("hi", 0).unwrap();
    ///         key
    ///     });
    ///     assert_eq!(zmq::KeyedPoller::poll_shared(&poller, 5000).unwrap(), 1);
    ///     let key = other.join().unwrap();
    ///     assert_eq!(poller.borrow().ready().collect::<Vec<_>>(), [(key, zmq::POLLIN)]);
    /// });
    /// ```
    pub fn poll_shared(poller: &RefCell<KeyedPoller>, timeout_ms: i64) -> Result<i32> {
        PollSet::poll_shared(
            || RefMut::map(poller.borrow_mut(), |poller| &mut poller.active),
            timeout_ms,
        )
    }

    /// The members with events after the last [`poll`](KeyedPoller::poll), and their events.
    pub fn ready(&self) -> impl Iterator<Item = (PollKey, PollEvents)> + '_ {
        self.active.ready().map(|(key, _, events)| (key, events))
    }

    fn add(&mut self, source: PollSource, events: PollEvents) -> Result<PollKey> {
        let identity = source.identity();
        if self.keys.contains_key(&identity) {
            return Err(zmq::Error::EBUSY);
        }
        let key = PollKey(self.next_key);
        if events.is_empty() {
            self.paused.insert(key, source);
        } else {
            self.active
                .insert(key, source, events)
                .map_err(|(err, _)| err)?;
        }
        self.next_key += 1;
        self.keys.insert(identity, key);
        Ok(key)
    }
}

impl std::fmt::Debug for KeyedPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedPoller")
            .field("active", &self.active.len())
            .field("paused", &self.paused.len())
            .field("next_key", &self.next_key)
            .finish_non_exhaustive()
    }
}
