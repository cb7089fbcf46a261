//! The hub backend of the scheduler seam: parks a hub task on a socket's notification fd
//! through the hub's epoll set (edge-triggered), with its deadline and fallback checks run by
//! the hub's own timers (see `crate::hub`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::io::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Registration, Scheduler, Wake};
use crate::hub::{self, Wait};
use crate::wake_fd::WakeFd;

/// One socket's registration with one hub.
pub(super) struct HubFd {
    hub_id: u64,
    token: u64,
    fd: RawFd,
    /// The hub's epoll set, shared so the registration can be removed from any thread.
    epoll: Arc<OwnedFd>,
}

impl HubFd {
    pub(super) fn register(fd: RawFd) -> zmq::Result<HubFd> {
        hub::with_current(|core| {
            let token = core.register_fd(fd).map_err(|err| {
                log::warn!("zmqloop: cannot register fd {fd} with the hub: {err}");
                crate::errors::from_io(&err)
            })?;
            Ok(HubFd {
                hub_id: core.id,
                token,
                fd,
                epoll: core.epoll.clone(),
            })
        })
    }

    /// Whether this registration belongs to the hub running the caller.
    pub(super) fn is_current(&self) -> bool {
        hub::current_id() == Some(self.hub_id)
    }

    pub(super) fn park(&self, deadline: Option<Instant>, fallback: Duration) -> Wake {
        let resume = hub::with_current(|core| {
            core.park(Wait {
                token: Some(self.token),
                fd: self.fd,
                deadline,
                fallback: Some(fallback),
            })
        });
        match resume {
            hub::Resume::Deadline => Wake::Deadline,
            hub::Resume::Fallback => Wake::Fallback,
            _ => Wake::Fd,
        }
    }
}

impl Drop for HubFd {
    fn drop(&mut self) {
        hub::epoll_remove(&self.epoll, self.fd);
        // The token's slot lives in the hub's state, reachable only on its thread while it
        // runs; dropped elsewhere (the socket moved away), the slot stays taken: a few bytes,
        // and no event can reach it any more.
        if self.is_current() {
            hub::with_current(|core| core.forget_fd(self.token));
        }
    }
}

/// Runs `job` on a fresh OS thread; the calling hub task parks on an eventfd until it is done.
pub(super) fn run_off_thread<T, F>(job: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let done = Arc::new(WakeFd::new().expect("zmqloop: cannot create an eventfd"));
    let slot = Arc::new(Mutex::new(None));
    let (thread_done, thread_slot) = (done.clone(), slot.clone());
    std::thread::Builder::new()
        .name("zmqloop-blocking".into())
        .spawn(move || {
            let value = job();
            *thread_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            thread_done.wake();
        })
        .expect("zmqloop: cannot start a thread for a blocking call");
    let mut registration = Registration::default();
    loop {
        if let Some(value) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            registration.release();
            return value;
        }
        let interval = crate::fallback::fallback_interval();
        registration
            .park(Scheduler::Hub, done.as_raw_fd(), None, interval)
            .expect("zmqloop: cannot wait for a blocking call");
    }
}
