//! [`Remote`]: how other threads reach a hub: a mailbox of jobs and a stop flag, and the
//! eventfd that interrupts the hub's `epoll_wait` for them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::wake_fd::WakeFd;

/// A job another thread hands to the hub; it runs on the hub's thread at its next wake-up.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// Jobs sent from other threads, and the eventfd that wakes the hub for them.
pub(crate) struct Remote {
    /// Jobs not run yet, in the order they came.
    jobs: Mutex<Vec<Job>>,
    /// Readable while jobs or a stop request wait; in the hub's epoll set.
    wake: WakeFd,
    /// Set by [`Remote::request_stop`]; the hub's loop takes it.
    stop: AtomicBool,
}

impl Remote {
    /// A mailbox whose wake-ups go through `wake`.
    pub(crate) fn new(wake: WakeFd) -> Remote {
        Remote {
            jobs: Mutex::new(Vec::new()),
            wake,
            stop: AtomicBool::new(false),
        }
    }

    /// The eventfd to watch.
    pub(crate) fn wake_fd(&self) -> &WakeFd {
        &self.wake
    }

    /// Queues `job` and wakes the hub.
    pub(crate) fn push(&self, job: Job) {
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(job);
        self.wake();
    }

    /// Interrupts the hub's wait.
    pub(crate) fn wake(&self) {
        self.wake.wake();
    }

    /// Asks the hub to return from its run loop, and wakes it.
    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Takes a stop request, if one came.
    pub(crate) fn take_stop(&self) -> bool {
        self.stop.swap(false, Ordering::SeqCst)
    }

    /// Takes the queued jobs and clears the eventfd.
    pub(crate) fn drain(&self) -> Vec<Job> {
        self.wake.clear();
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
