//! [`PollSet`]: a poll set kept between calls, written once for both pollers: [`Poller`]
//! (its items borrow their sockets) and [`KeyedPoller`] (its items own them).
//!
//! A one-shot [`poll`](super::poll) that has to wait builds an epoll set of all its items and
//! registers it with the scheduler: N+1 registrations per waiting call. A kept set keeps both
//! and updates them only when an item is added, changed or removed (O(1) each, through an index
//! by key), so a wait costs one `zmq_poll` over the items (the unavoidable readiness check) and
//! one park, whatever N is, and allocates nothing.
//!
//! The set stores libzmq's raw pollitems, which `zmq_poll` takes as they are; what keeps each
//! item's socket open is the [`Source`] stored beside it.
//!
//! One wait ([`wait`]) serves a set held for the whole call ([`PollSet::poll`]) and a set in a
//! `RefCell` that is borrowed only between parks ([`PollSet::poll_shared`], for an event loop
//! that other tasks of its thread change while it waits).
//!
//! [`Poller`]: super::Poller
//! [`KeyedPoller`]: super::KeyedPoller

use std::cell::RefMut;
use std::collections::HashMap;
use std::hash::Hash;
use std::os::raw::c_int;
use std::time::Instant;

use zmq::{PollEvents, Result};

use super::waiter::Waiter;
use super::{member_fd, zmq_poll_raw, Member};
use crate::poll_item::PollItem;
use crate::readiness::deadline_after;
use crate::sched::{self, Wake};

/// What an item of a [`PollSet`] polls: a socket that the value keeps open, or a plain fd.
///
/// # Safety
/// While a value lives (moves included), the item it makes must keep naming the same libzmq
/// socket, and that socket must stay open: the set hands the item to `zmq_poll` as long as it
/// holds the value.
pub(crate) unsafe trait Source {
    /// The item that polls this source for `events`.
    fn item(&self, events: PollEvents) -> PollItem<'_>;
}

/// A poll set kept between calls: items under keys of type `K`, each polling a `T`.
pub(crate) struct PollSet<K, T> {
    /// What `zmq_poll` takes. Invariant: `items[i]` polls `sources[i]`, made by its
    /// [`Source::item`], with the events last given for it.
    items: Vec<zmq_sys::zmq_pollitem_t>,
    /// Invariant: `sources[i]` keeps the socket of `items[i]` open (its `Source` contract).
    sources: Vec<T>,
    /// Invariant: `keys[i]` is the key `items[i]` was added under, and no two are equal.
    keys: Vec<K>,
    /// Invariant: `members[i]` is the fd of `items[i]`, read once when it was added (a
    /// terminated socket refuses `ZMQ_FD`, and must still be removable).
    members: Vec<Member>,
    /// Invariant: `index[keys[i]] == i` for every `i`, and it holds no other key.
    index: HashMap<K, usize>,
    /// Built on the first wait inside a coroutine. Invariant: once built, it holds one member
    /// per item, with the item's events.
    waiter: Option<Waiter>,
}

impl<K, T> Default for PollSet<K, T> {
    fn default() -> Self {
        PollSet {
            items: Vec::new(),
            sources: Vec::new(),
            keys: Vec::new(),
            members: Vec::new(),
            index: HashMap::new(),
            waiter: None,
        }
    }
}

impl<K: Copy + Eq + Hash, T: Source> PollSet<K, T> {
    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Where the item of `key` sits, if it is in the set.
    pub(crate) fn position(&self, key: K) -> Option<usize> {
        self.index.get(&key).copied()
    }

    /// The source polled at `position`.
    pub(crate) fn source(&self, position: usize) -> &T {
        &self.sources[position]
    }

    /// The events found at `position` by the last poll.
    pub(crate) fn revents(&self, position: usize) -> PollEvents {
        PollEvents::from_bits_truncate(self.items[position].revents)
    }

    /// Adds an item polling `source` for `events` under `key`, which must be new. On failure
    /// (the socket's fd cannot be read, or the epoll set refuses it) nothing is added and the
    /// source is handed back.
    pub(crate) fn insert(
        &mut self,
        key: K,
        source: T,
        events: PollEvents,
    ) -> std::result::Result<(), (zmq::Error, T)> {
        debug_assert!(!self.index.contains_key(&key), "a key added twice");
        let (item, member) = {
            let item = source.item(events);
            match member_fd(&item) {
                Ok(member) => (item.raw(), member),
                Err(err) => return Err((err, source)),
            }
        };
        if let Some(waiter) = &mut self.waiter {
            if let Err(err) = waiter.add_member(member, events) {
                return Err((err, source));
            }
        }
        self.index.insert(key, self.items.len());
        self.items.push(item);
        self.sources.push(source);
        self.keys.push(key);
        self.members.push(member);
        Ok(())
    }

    /// Changes the events polled at `position`.
    pub(crate) fn set_events(&mut self, position: usize, events: PollEvents) -> Result<()> {
        let old = PollEvents::from_bits_truncate(self.items[position].events);
        self.items[position].events = events.bits();
        match &mut self.waiter {
            Some(waiter) => waiter.modify_member(self.members[position], old, events),
            None => Ok(()),
        }
    }

    /// Removes the item at `position` and hands back its source. It always leaves the set,
    /// even if the scheduler registration could not be updated (that error comes with it).
    pub(crate) fn remove(&mut self, position: usize) -> (T, Result<()>) {
        let events = PollEvents::from_bits_truncate(self.items[position].events);
        let outcome = match &mut self.waiter {
            Some(waiter) => waiter.remove_member(self.members[position], events),
            None => Ok(()),
        };
        self.index.remove(&self.keys[position]);
        self.items.swap_remove(position);
        let source = self.sources.swap_remove(position);
        self.keys.swap_remove(position);
        self.members.swap_remove(position);
        if let Some(&moved) = self.keys.get(position) {
            self.index.insert(moved, position); // the former last item
        }
        (source, outcome)
    }

    /// Polls the items, parking only this coroutine while nothing is ready (see
    /// [`poll`](super::poll) for `timeout_ms`). Returns how many items are ready; their events
    /// are then in [`ready`](PollSet::ready).
    pub(crate) fn poll(&mut self, timeout_ms: i64) -> Result<i32> {
        wait(self, timeout_ms)
    }

    /// Polls like [`poll`](PollSet::poll) a set reached through `set`, which is called only
    /// between parks, its borrow given back before each: while the caller is parked, code that
    /// runs meanwhile on this thread (other hub tasks, may coroutines on the same worker) can
    /// change the set, and the change is in the epoll set the wait parks on at once.
    ///
    /// On a plain thread the blocking `zmq_poll` runs with the set borrowed: nothing else runs
    /// on the thread meanwhile.
    pub(crate) fn poll_shared<'s>(
        set: impl Fn() -> RefMut<'s, Self>,
        timeout_ms: i64,
    ) -> Result<i32>
    where
        K: 's,
        T: 's,
    {
        wait(Shared(set), timeout_ms)
    }

    /// The waiter, built on the first wait.
    fn waiter(&mut self) -> Result<&mut Waiter> {
        let waiter = match self.waiter.take() {
            Some(waiter) => waiter,
            None => self.new_waiter()?,
        };
        Ok(self.waiter.insert(waiter))
    }

    /// The items after a park that ended with `wake` ([`Waiter::check`]; every item if the set
    /// has no waiter: a new set put in the `RefCell` while the wait was parked).
    fn check(&mut self, wake: Wake) -> Result<i32> {
        match &mut self.waiter {
            // SAFETY: `sources` keeps every socket of `items` open (field invariants).
            Some(waiter) => unsafe { waiter.check(wake, &mut self.items, &self.members) },
            None => self.zmq_poll(0),
        }
    }

    /// `zmq_poll` over every item (blocking when `timeout_ms` is not 0).
    fn zmq_poll(&mut self, timeout_ms: i64) -> Result<i32> {
        let count = c_int::try_from(self.items.len()).map_err(|_| zmq::Error::EINVAL)?;
        // SAFETY: `items` holds `count` pollitems, writable for the call, whose sockets
        // `sources` keeps open (field invariants).
        unsafe { zmq_poll_raw(self.items.as_mut_ptr(), count, timeout_ms) }
    }

    /// A waiter holding every item.
    fn new_waiter(&self) -> Result<Waiter> {
        let mut waiter = Waiter::new()?;
        for (item, &member) in self.items.iter().zip(&self.members) {
            waiter.add_member(member, PollEvents::from_bits_truncate(item.events))?;
        }
        Ok(waiter)
    }

    /// The items with events after the last [`poll`](PollSet::poll): key, source, events.
    pub(crate) fn ready(&self) -> impl Iterator<Item = (K, &T, PollEvents)> + '_ {
        self.items
            .iter()
            .enumerate()
            .map(|(i, item)| (i, PollEvents::from_bits_truncate(item.revents)))
            .filter(|(_, events)| !events.is_empty())
            .map(|(i, events)| (self.keys[i], &self.sources[i], events))
    }
}

/// How a wait reaches its set: for the whole wait (`&mut`), or between its parks only
/// ([`Shared`]).
trait Reach<K, T> {
    /// Runs `f` with the set.
    fn reach<R>(&mut self, f: impl FnOnce(&mut PollSet<K, T>) -> R) -> R;
}

impl<K, T> Reach<K, T> for &mut PollSet<K, T> {
    fn reach<R>(&mut self, f: impl FnOnce(&mut PollSet<K, T>) -> R) -> R {
        f(self)
    }
}

/// A set borrowed from a `RefCell` anew for each step of a wait.
struct Shared<F>(F);

impl<'s, K: 's, T: 's, F: Fn() -> RefMut<'s, PollSet<K, T>>> Reach<K, T> for Shared<F> {
    fn reach<R>(&mut self, f: impl FnOnce(&mut PollSet<K, T>) -> R) -> R {
        f(&mut (self.0)())
    }
}

/// The wait of a kept set (the readiness rule of [`poll`](super::poll)): `zmq_poll(0)` over
/// every item; if nothing is ready, park on the epoll set and check the items whose fds fired,
/// until something is ready or the deadline passes. The set is reached only for the checks:
/// across a park the wait holds the waiter's [`Parker`](super::waiter::Parker), not the set.
fn wait<K: Copy + Eq + Hash, T: Source>(mut set: impl Reach<K, T>, timeout_ms: i64) -> Result<i32> {
    let Some(scheduler) = sched::current() else {
        return set.reach(|set| set.zmq_poll(timeout_ms));
    };
    let ready = set.reach(|set| set.zmq_poll(0))?;
    if ready > 0 || timeout_ms == 0 {
        return Ok(ready);
    }
    let deadline = deadline_after(timeout_ms);
    while deadline.is_none_or(|at| at > Instant::now()) {
        let parker = set.reach(|set| set.waiter().map(|waiter| waiter.parker()))?;
        let wake = parker.park(scheduler, deadline)?;
        drop(parker); // a set dropped meanwhile releases its registration here
        let ready = set.reach(|set| set.check(wake))?;
        if ready > 0 {
            return Ok(ready);
        }
    }
    Ok(0)
}
