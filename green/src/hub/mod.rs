//! The hub: gevent-style green threads on one OS thread, built on corosensei.
//!
//! A [`Hub`] is created on the current thread; its tasks need not be `Send` (share `Rc` and
//! `RefCell` state freely), run cooperatively in a deterministic order, and park in green
//! socket calls exactly as may coroutines do: the scheduler seam (`sched`) sees that the call
//! runs in a hub task and parks it on the hub's reactor.
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use zmqloop_green as zmq;
//! use zmq::hub::Hub;
//!
//! let hub = Hub::new().unwrap();
//! let ctx = zmq::Context::new();
//! let rep = ctx.socket(zmq::REP).unwrap();
//! rep.bind("inproc://hub-doc").unwrap();
//! let req = ctx.socket(zmq::REQ).unwrap();
//! req.connect("inproc://hub-doc").unwrap();
//!
//! let log = Rc::new(RefCell::new(Vec::new())); // tasks need not be Send
//! let server_log = log.clone();
//! hub.spawn(move || {
//!     let request = rep.recv_string(0).unwrap().unwrap();
//!     server_log.borrow_mut().push(format!("server got {request}"));
//!     rep.send("pong", 0).unwrap();
//! });
//! let reply = hub.block_on(move || {
//!     req.send("ping", 0).unwrap();
//!     req.recv_string(0).unwrap().unwrap()
//! });
//! assert_eq!(reply, "pong");
//! assert_eq!(*log.borrow(), ["server got ping"]);
//! ```
//!
//! # The reactor (design notes; see also `ARCHITECTURE.md`)
//! One thread runs, in a loop: every task that is ready (FIFO, so the same program gives the
//! same interleaving), then one `epoll_wait` over the notification fds of parked sockets (edge-
//! triggered, with the readiness rule of `readiness`) and the hub's wake-up eventfd, with the
//! timeout of the earliest timer, then the due timers (deadlines, `sleep`, fallback checks that
//! poll a parked fd and wake its task only if a wake-up was missed). epoll rather than
//! `zmq_poll`: its cost per wait does not grow with the number of parked sockets. An IOLoop of
//! `zmqloop::eventloop` started in a hub task waits through this same reactor (its poll set is
//! one more fd in the hub's epoll), so it shares the thread with the other tasks.
//!
//! # Stacks
//! Each task gets its own stack ([`Builder::stack_size`], 64 KiB by default; mapped with a guard
//! page and committed lazily, so untouched pages cost no memory). Finished tasks return their
//! stack to a per-hub pool ([`Builder::pooled_stacks`]).

mod core;
mod stack_pool;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::core::current_hub;
pub(crate) use self::core::Remote;
pub(crate) use self::core::{current_id, epoll_remove, in_task, with_current, Resume, Wait};
use self::core::{HubCore, TaskKey};

/// The panic payload of a task that was cancelled (see [`JoinHandle::cancel`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// Configures a [`Hub`].
#[derive(Clone, Debug)]
pub struct Builder {
    stack_size: usize,
    pooled_stacks: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            stack_size: 64 * 1024,
            pooled_stacks: 1024,
        }
    }
}

impl Builder {
    /// Stack size of each task, in bytes (default 64 KiB; the green calls need under 8 KiB).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// How many finished tasks' stacks to keep for reuse (default 1024).
    pub fn pooled_stacks(mut self, count: usize) -> Builder {
        self.pooled_stacks = count;
        self
    }

    /// Creates the hub on the current thread.
    pub fn build(self) -> std::io::Result<Hub> {
        Ok(Hub {
            core: HubCore::new(self.stack_size, self.pooled_stacks)?,
        })
    }
}

/// A single-threaded scheduler of green tasks. `!Send`: it lives on the thread that made it.
pub struct Hub {
    core: Rc<HubCore>,
}

impl Hub {
    /// A hub with the default [`Builder`] settings.
    pub fn new() -> std::io::Result<Hub> {
        Builder::default().build()
    }

    /// A [`Builder`] to configure a hub.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Spawns `f` as a task of this hub; it starts when the hub runs.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        spawn_on(&self.core, f)
    }

    /// Runs the hub until every task has finished or [`Hub::stop`] (or a [`HubHandle`]'s
    /// `stop`) is called.
    pub fn run(&self) {
        self.core.run(&|| false);
    }

    /// Spawns `f`, runs the hub until `f` has finished, and returns its result (other tasks
    /// run meanwhile and stay where they are when it returns).
    ///
    /// # Panics
    /// With `f`'s panic; or if the hub stops (every other task finished, or a stop request)
    /// while `f` is still parked.
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let handle = self.spawn(f);
        let cell = handle.cell.clone();
        self.core.run(&|| cell.borrow().result.is_some());
        match handle.try_join() {
            Some(Ok(value)) => value,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => panic!("zmqloop hub: block_on's task is still parked but the hub stopped"),
        }
    }

    /// Asks a running hub to return from `run`/`block_on` after the current pass.
    pub fn stop(&self) {
        self.core.request_stop();
    }

    /// A handle to reach this hub from other threads.
    pub fn handle(&self) -> HubHandle {
        HubHandle {
            remote: self.core.remote.clone(),
        }
    }

    /// Tasks not finished yet.
    pub fn tasks(&self) -> usize {
        self.core.live_tasks()
    }
}

impl Drop for Hub {
    /// Cancels every task left (their stacks unwind, their sockets close) by running them to
    /// their end.
    fn drop(&mut self) {
        self.core.cancel_all();
        self.core.run(&|| false);
    }
}

fn spawn_on<F, T>(core: &Rc<HubCore>, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let cell = Rc::new(RefCell::new(JoinCell {
        result: None,
        waiters: Vec::new(),
    }));
    let task_cell = cell.clone();
    let key = core.spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        if let Err(panic) = &result {
            if panic.downcast_ref::<Cancelled>().is_none() {
                log::debug!("zmqloop hub: a task panicked; its join handle reports it");
            }
        }
        let waiters = {
            let mut cell = task_cell.borrow_mut();
            cell.result = Some(result);
            std::mem::take(&mut cell.waiters)
        };
        with_current(|hub| {
            for waiter in waiters {
                hub.wake(waiter, Resume::Run);
            }
        });
    });
    JoinHandle {
        cell,
        key,
        hub: Rc::downgrade(core),
        marker: PhantomData,
    }
}

/// Spawns `f` on the hub running this code.
///
/// # Panics
/// Outside a running hub.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    spawn_on(&current_hub(), f)
}

/// Parks the calling hub task for `duration` (other tasks run meanwhile). Outside a hub task
/// it sleeps the thread.
pub fn sleep(duration: Duration) {
    if !in_task() {
        return std::thread::sleep(duration);
    }
    let deadline = Instant::now() + duration;
    with_current(|core| {
        while Instant::now() < deadline {
            core.park(Wait {
                deadline: Some(deadline),
                ..Wait::default()
            });
        }
    });
}

/// Lets the other ready hub tasks run before the calling one goes on.
///
/// # Panics
/// Outside a hub task.
pub fn yield_now() {
    with_current(|core| core.yield_now());
}

struct JoinCell<T> {
    result: Option<std::thread::Result<T>>,
    waiters: Vec<TaskKey>,
}

/// Owns a hub task's result: [`join`](JoinHandle::join) gives back its value or its panic.
pub struct JoinHandle<T> {
    cell: Rc<RefCell<JoinCell<T>>>,
    key: TaskKey,
    hub: Weak<HubCore>,
    marker: PhantomData<*const ()>,
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished (returned, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.cell.borrow().result.is_some()
    }

    /// Waits for the task and returns its result, or `Err` with its panic payload
    /// ([`Cancelled`] if it was cancelled). Inside a hub task only the caller parks.
    ///
    /// # Panics
    /// Outside a hub task, if the task has not finished (run the hub first, or use
    /// [`Hub::block_on`]).
    pub fn join(self) -> std::thread::Result<T> {
        if in_task() {
            while !self.is_finished() {
                let me = current_task();
                self.cell.borrow_mut().waiters.push(me);
                with_current(|core| core.park(Wait::default()));
            }
        }
        self.try_join()
            .expect("zmqloop hub: join on an unfinished task outside the hub; run the hub first")
    }

    /// The result if the task has finished.
    pub fn try_join(self) -> Option<std::thread::Result<T>> {
        self.cell.borrow_mut().result.take()
    }

    /// Cancels the task: at its next (or current) park it unwinds with a [`Cancelled`] panic,
    /// dropping what it owns (its sockets close). Takes effect when the hub runs it.
    pub fn cancel(&self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.cancel(self.key);
        }
    }
}

fn current_task() -> TaskKey {
    self::core::current_task().expect("zmqloop hub: not inside a task")
}

/// Reaches a [`Hub`] from any thread: spawn `Send` work on it, wake it, stop it.
#[derive(Clone)]
pub struct HubHandle {
    remote: Arc<Remote>,
}

impl HubHandle {
    /// Runs `f` as a new task of the hub (at its next wake-up).
    pub fn spawn<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.remote.push(Box::new(move || {
            spawn_on(&current_hub(), f);
        }));
    }

    /// Interrupts the hub's wait (it then runs its ready tasks and timers).
    pub fn wake(&self) {
        self.remote.wake();
    }

    /// Makes the hub return from `run`/`block_on` at its next wake-up.
    pub fn stop(&self) {
        self.remote.request_stop();
    }
}
