//! The hub backend of the scheduler seam: parks a hub task on a socket's notification fd
//! through the hub's epoll set (edge-triggered), with its deadline and fallback checks run by
//! the hub's own timers (see `crate::hub`).

use std::os::fd::AsRawFd;
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Registration, Scheduler, Wake};
use crate::hub::{self, FdRegistration, FdWake};
use crate::local::Locals;
use crate::wake_fd::WakeFd;

/// One socket's registration with one hub.
pub(super) struct HubFd(FdRegistration);

impl HubFd {
    pub(super) fn register(fd: RawFd) -> zmq::Result<HubFd> {
        FdRegistration::register(fd).map(HubFd).map_err(|err| {
            log::warn!("zmqloop: cannot register fd {fd} with the hub: {err}");
            crate::errors::from_io(&err)
        })
    }

    /// Whether this registration belongs to the hub running the caller.
    pub(super) fn is_current(&self) -> bool {
        self.0.is_current()
    }

    pub(super) fn park(&self, deadline: Option<Instant>, fallback: Duration) -> Wake {
        match self.0.park(deadline, fallback) {
            FdWake::Signalled => Wake::Fd,
            FdWake::Deadline => Wake::Deadline,
            FdWake::Fallback => Wake::Fallback,
        }
    }
}

/// Runs `job` on a fresh OS thread; the calling hub task parks on an eventfd until it is done
/// (see [`super::run_off_thread`]).
pub(super) fn run_off_thread<T, F>(job: F) -> zmq::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let done = Arc::new(WakeFd::new().map_err(|err| crate::errors::from_io(&err))?);
    let slot = Arc::new(Mutex::new(None));
    let (thread_done, thread_slot) = (done.clone(), slot.clone());
    super::spawn_blocking(job, move |outcome| {
        // Reached with the job's value or its panic alike: the task is always woken.
        *thread_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
        thread_done.wake();
    })?;
    let mut registration = Registration::default();
    loop {
        let outcome = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(outcome) = outcome {
            registration.release();
            return Ok(super::value_of(outcome));
        }
        let interval = crate::fallback::fallback_interval();
        registration.park(Scheduler::Hub, done.as_raw_fd(), None, interval)?;
    }
}

/// The locals of the calling hub task (see [`super::locals`]).
pub(super) fn locals() -> Rc<Locals> {
    hub::task_locals()
}

/// Starts `job` as a detached task of the hub running the caller (see
/// [`super::start_here`]).
pub(super) fn start(job: impl FnOnce() + Send + 'static) {
    drop(hub::spawn(job));
}

#[cfg(test)]
mod tests {
    use crate::hub::{self, Hub};
    use crate::Context;

    /// The number of fd tokens the running hub holds.
    fn live_tokens() -> usize {
        hub::with_current(|core| core.live_fds())
    }

    #[test]
    fn a_registration_dropped_on_another_thread_frees_its_token() {
        within_a_minute(token_freed_after_a_drop_elsewhere);
    }

    /// Runs `body` on its own thread; a hang (a lost hub wake-up) fails instead of stalling.
    fn within_a_minute(body: impl FnOnce() + Send + 'static) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            body();
            let _ = done_tx.send(());
        });
        match done_rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(()) => thread.join().unwrap(),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                std::panic::resume_unwind(thread.join().unwrap_err())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hung"),
        }
    }

    #[test]
    fn a_blocking_job_that_panics_wakes_its_task_with_the_panic() {
        within_a_minute(|| {
            let hub = Hub::new().unwrap();
            let caught = hub.block_on(|| {
                std::panic::catch_unwind(|| {
                    crate::sched::run_off_thread(|| -> () { panic!("job failure on purpose") })
                })
            });
            let panic = caught.expect_err("the job's panic reaches its caller");
            assert_eq!(
                panic.downcast_ref::<&str>(),
                Some(&"job failure on purpose")
            );
        });
    }

    #[test]
    fn a_blocking_job_hands_its_value_back_on_the_hub_and_on_may() {
        within_a_minute(|| {
            let hub = Hub::new().unwrap();
            let value = hub.block_on(|| crate::sched::run_off_thread(|| 6 * 7));
            assert_eq!(value, Ok(42));
            let on_may = crate::spawn(|| crate::sched::run_off_thread(|| 6 * 7));
            assert_eq!(on_may.join().unwrap(), Ok(42));
            let on_may = crate::spawn(|| {
                std::panic::catch_unwind(|| {
                    crate::sched::run_off_thread(|| -> () { panic!("job failure on may") })
                })
            });
            let panic = on_may.join().unwrap().expect_err("the job's panic");
            assert_eq!(panic.downcast_ref::<&str>(), Some(&"job failure on may"));
        });
    }

    fn token_freed_after_a_drop_elsewhere() {
        let hub = Hub::new().unwrap();
        let ctx = Context::new();
        let socket = ctx.socket(zmq::PULL).unwrap();
        socket.bind("inproc://hub-token").unwrap();
        socket.set_rcvtimeo(1).unwrap();
        let socket = hub.block_on(move || {
            assert_eq!(live_tokens(), 0);
            // Times out after parking once: the socket is now registered with the hub.
            assert_eq!(socket.recv_bytes(0), Err(zmq::Error::EAGAIN));
            assert_eq!(live_tokens(), 1);
            socket
        });
        std::thread::spawn(move || drop(socket)).join().unwrap();
        let left = hub.block_on(|| {
            // The drop's job runs when the hub next polls its reactor; parking makes it poll.
            hub::sleep(std::time::Duration::from_millis(1));
            live_tokens()
        });
        assert_eq!(
            left, 0,
            "the token of the socket dropped elsewhere was not freed"
        );
    }
}
