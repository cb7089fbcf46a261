//! [`FdRegistration`]: an fd registered with a hub's reactor, what the scheduler seam's hub
//! backend (`sched/hub.rs`) parks green calls on.

use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::core::{self, Wait, Woke};
use super::fd_table::FdToken;
use super::reactor;
use super::remote::Remote;

/// One fd registered with one hub.
///
/// Invariant: while it exists, `fd` is in `epoll` under `token`; dropping it removes the fd
/// at once, from any thread (its owner may close the fd right after, and a new fd may get the
/// number), and frees `token` on the hub's thread.
pub(crate) struct FdRegistration {
    /// The hub holding the registration (`HubCore::id`).
    hub_id: u64,
    /// The fd's entry in that hub's table.
    token: FdToken,
    /// The registered fd (not owned).
    fd: RawFd,
    /// The hub's epoll set, shared so that the fd can leave it from any thread.
    epoll: Arc<OwnedFd>,
    /// The hub's mailbox, to free the token from another thread.
    remote: Arc<Remote>,
}

/// Why a wait on a registered fd ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FdWake {
    /// The fd signalled (or the wake-up was spurious: the caller re-checks anyway).
    Signalled,
    /// The deadline passed.
    Deadline,
    /// A fallback check found the fd readable although no event came.
    Fallback,
}

impl FdRegistration {
    /// Registers `fd` with the hub running the caller.
    ///
    /// # Panics
    /// Outside a running hub.
    pub(crate) fn register(fd: RawFd) -> std::io::Result<FdRegistration> {
        core::with_current(|hub| {
            Ok(FdRegistration {
                hub_id: hub.id,
                token: hub.register_fd(fd)?,
                fd,
                epoll: hub.epoll.clone(),
                remote: hub.remote.clone(),
            })
        })
    }

    /// Whether this registration belongs to the hub running the caller.
    pub(crate) fn is_current(&self) -> bool {
        core::current_id() == Some(self.hub_id)
    }

    /// Parks the calling task until the fd signals, `deadline` passes, or a check every
    /// `fallback` finds the fd readable without an event. A cancelled task unwinds instead.
    ///
    /// # Panics
    /// Outside a task of this registration's hub.
    pub(crate) fn park(&self, deadline: Option<Instant>, fallback: Duration) -> FdWake {
        let wait = Wait::Fd {
            token: self.token,
            fd: self.fd,
            deadline,
            fallback,
        };
        match core::with_current(|hub| hub.park(wait)) {
            // A wake-up by another task is spurious here: the caller looks again anyway.
            Woke::Fd | Woke::Run => FdWake::Signalled,
            Woke::Deadline => FdWake::Deadline,
            Woke::Fallback => FdWake::Fallback,
        }
    }
}

impl Drop for FdRegistration {
    fn drop(&mut self) {
        // At once, from any thread: the fd may be closed (and its number reused) right after.
        reactor::remove(&self.epoll, self.fd);
        // The token's slot lives in the hub's state, reachable only on its thread while it
        // runs. Dropped anywhere else (the socket moved to another thread, or the hub is not
        // running), the hub frees it at its next wake-up; no event can reach it meanwhile.
        let token = self.token;
        if self.is_current() {
            core::with_current(|hub| hub.forget_fd(token));
        } else {
            self.remote.push(Box::new(move || {
                core::with_current(|hub| hub.forget_fd(token));
            }));
        }
    }
}
