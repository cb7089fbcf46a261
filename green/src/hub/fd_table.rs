//! The hub's registered fds: which task, if any, waits on each. A slab indexed by
//! [`FdToken`], so the hot path (park, event, resume) costs an index, not a hash.

use super::core::TaskKey;

/// A registered fd's name in its hub: the slab index and the entry's generation, so that a
/// token whose fd was forgotten (and whose entry was reused) matches nothing. Its `u64` form,
/// `generation << 32 | (index + 1)`, is what the epoll set carries; 0 is never a token (the
/// epoll set uses it for the hub's own wake-up eventfd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FdToken(u64);

impl FdToken {
    /// The epoll data of the hub's wake-up eventfd: no token has it.
    pub(crate) const WAKE_UP: u64 = 0;

    /// The value carried in the epoll set.
    pub(crate) fn as_u64(self) -> u64 {
        self.0
    }

    /// The token an epoll event carries (`None` for the wake-up eventfd).
    pub(crate) fn from_u64(value: u64) -> Option<FdToken> {
        (value != Self::WAKE_UP).then_some(FdToken(value))
    }

    fn index(self) -> usize {
        ((self.0 & 0xffff_ffff) - 1) as usize
    }

    fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

/// Registered fds by token.
#[derive(Default)]
pub(crate) struct FdTable {
    /// One entry per slab index; an entry is live from `insert` to `remove`.
    entries: Vec<FdEntry>,
    /// Indices of entries that are not live, for reuse.
    free: Vec<u32>,
}

#[derive(Default)]
struct FdEntry {
    /// Bumped by every `insert` into this entry: older tokens no longer match.
    generation: u32,
    /// Registered (between `insert` and `remove`).
    live: bool,
    /// The task parked on this fd, only while it is parked.
    waiter: Option<TaskKey>,
}

impl FdTable {
    /// Takes an entry for a newly registered fd.
    pub(crate) fn insert(&mut self) -> FdToken {
        let index = self.free.pop().unwrap_or_else(|| {
            self.entries.push(FdEntry::default());
            (self.entries.len() - 1) as u32
        });
        let entry = &mut self.entries[index as usize];
        entry.generation = entry.generation.wrapping_add(1);
        entry.live = true;
        entry.waiter = None;
        FdToken((u64::from(entry.generation) << 32) | (u64::from(index) + 1))
    }

    fn entry(&mut self, token: FdToken) -> Option<&mut FdEntry> {
        self.entries
            .get_mut(token.index())
            .filter(|entry| entry.live && entry.generation == token.generation())
    }

    /// Frees the entry of a forgotten fd (no-op for a stale token).
    pub(crate) fn remove(&mut self, token: FdToken) {
        if let Some(entry) = self.entry(token) {
            entry.live = false;
            entry.waiter = None;
            self.free.push(token.index() as u32);
        }
    }

    /// Records which task waits on the fd (`None` once it is resumed).
    pub(crate) fn set_waiter(&mut self, token: FdToken, waiter: Option<TaskKey>) {
        if let Some(entry) = self.entry(token) {
            entry.waiter = waiter;
        }
    }

    /// The task waiting on the fd, if any.
    pub(crate) fn waiter(&mut self, token: FdToken) -> Option<TaskKey> {
        self.entry(token).and_then(|entry| entry.waiter)
    }

    /// How many entries are live.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        self.entries.len() - self.free.len()
    }
}
