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
//!
//! # Blocking detection (gevent's `monitor_thread`)
//! A task that blocks the thread (`std::thread::sleep`, a `std::sync::mpsc` receive, a `Mutex`
//! held elsewhere, blocking file or network I/O, a long computation) stalls every other task
//! of its hub until it parks. With [`Builder::max_blocking_time`] a watchdog thread reports
//! each *incident*, a turn of a task (from its resumption to its next park, yield or end)
//! longer than that, once:
//! - `log::warn!` while it happens: `zmqloop hub: task 7 "fetcher" has run 104 ms without
//!   parking; every other task of its hub is stalled (max_blocking_time 100 ms): move
//!   thread-blocking calls off the hub`;
//! - [`Hub::blocked_incidents`] counts it;
//! - `log::info!` when the task parks again, with how long the stall lasted (at least).
//!
//! Tasks are named by their id ([`JoinHandle::id`]) and by the name given to
//! [`Hub::spawn_named`] or [`spawn_named`]. A turn shorter than `max_blocking_time` is never
//! reported; a longer one is reported within 1.25 times `max_blocking_time`. Time the OS
//! takes the hub thread away counts as running (the other tasks wait all the same).
//!
//! ```
//! use std::time::Duration;
//! use zmqloop_green::hub::{self, Hub};
//!
//! let hub = Hub::builder()
//!     .max_blocking_time(Duration::from_millis(100))
//!     .build()
//!     .unwrap();
//! let well_behaved = hub.spawn_named("polite", || hub::sleep(Duration::from_millis(150)));
//! let blocker = hub.spawn_named("rude", || std::thread::sleep(Duration::from_millis(300)));
//! hub.run();
//! // Logged: zmqloop hub: task 2 "rude" has run 1xx ms without parking; ...
//! assert_eq!(blocker.id(), 2);
//! assert_eq!(hub.blocked_incidents(), 1);
//! ```
//!
//! **may coroutines** get no such detector: may offers no hook on coroutine switches, so
//! nothing can tell which coroutine holds a worker thread. Instead: keep thread-blocking work
//! off the workers (a `std::thread`, with a may channel for the result); watch liveness with a
//! heartbeat coroutine that sleeps (`may::coroutine::sleep`) a short period and logs when it
//! wakes much later than asked (that says *that* a worker stalled, not who stalled it); and to
//! find the culprit, run the same code as hub tasks with `max_blocking_time`: green sockets
//! behave the same there.

mod core;
mod fd_table;
mod reactor;
mod registration;
mod remote;
mod stack_pool;
mod watchdog;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use self::core::{current_hub, EndOfTask, HubCore, TaskKey, Wait};
pub(crate) use self::core::{current_id, in_task, task_locals, with_current};
pub(crate) use self::registration::{FdRegistration, FdWake};
use self::remote::Remote;
use self::watchdog::Watchdog;

/// The panic payload of a task that was cancelled (see [`JoinHandle::cancel`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// Configures a [`Hub`].
#[derive(Clone, Debug)]
pub struct Builder {
    /// Bytes of each task's stack, as asked (corosensei raises it to its minimum, adds a
    /// guard page and rounds up to whole pages); 64 KiB by default.
    stack_size: usize,
    /// How many finished tasks' stacks the hub keeps for reuse at most (0: none kept).
    pooled_stacks: usize,
    /// `Some` turns the blocking detector on (at least 1 ms).
    max_blocking_time: Option<Duration>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            stack_size: 64 * 1024,
            pooled_stacks: 65_536,
            max_blocking_time: None,
        }
    }
}

impl Builder {
    /// Stack size of each task, in bytes (default 64 KiB; the green calls need under 8 KiB).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// How many finished tasks' stacks to keep for reuse (default 65,536: in effect, the stacks
    /// of the most tasks that were alive together). A reused stack costs no `mmap`, and a
    /// kept one no `munmap`, whose TLB shootdown interrupts every other core: 10,000 hub
    /// clients of 10 requests each used 15-25% less CPU than with 1024 kept
    /// (`cargo run --release -p zmqloop-peers --example scale -- --side hub`). A kept stack
    /// holds the pages its task touched (usually one, 4 KiB).
    pub fn pooled_stacks(mut self, count: usize) -> Builder {
        self.pooled_stacks = count;
        self
    }

    /// Reports every task that runs longer than `limit` without parking (off by default):
    /// a watchdog thread logs a warning once per incident and counts it
    /// ([`Hub::blocked_incidents`]). See "Blocking detection" in the [module docs](self).
    ///
    /// Off, it costs nothing; on, the hub thread makes two plain atomic stores, one `SeqCst`
    /// store (an `xchg` on x86-64) and two loads per task switch (see the README's Performance
    /// section) and the watchdog thread wakes every `limit / 4`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zmqloop_green::hub::Hub;
    ///
    /// let hub = Hub::builder()
    ///     .max_blocking_time(Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// hub.spawn(|| std::thread::sleep(Duration::from_millis(200))); // blocks the hub
    /// hub.run();
    /// assert_eq!(hub.blocked_incidents(), 1);
    /// ```
    ///
    /// # Panics
    /// If `limit` is under one millisecond.
    pub fn max_blocking_time(mut self, limit: Duration) -> Builder {
        assert!(
            limit >= Duration::from_millis(1),
            "zmqloop hub: max_blocking_time must be at least 1 ms, got {limit:?}"
        );
        self.max_blocking_time = Some(limit);
        self
    }

    /// Creates the hub on the current thread (and its watchdog thread, if
    /// [`max_blocking_time`](Builder::max_blocking_time) is set).
    ///
    /// # Errors
    /// When the hub's epoll set or wake-up eventfd cannot be created, or the watchdog thread
    /// cannot be started (out of file descriptors or threads).
    pub fn build(self) -> std::io::Result<Hub> {
        let watchdog = self.max_blocking_time.map(Watchdog::start).transpose()?;
        let watch = watchdog.as_ref().map(Watchdog::watch);
        Ok(Hub {
            core: HubCore::new(self.stack_size, self.pooled_stacks, watch)?,
            watchdog,
        })
    }
}

/// A single-threaded scheduler of green tasks. `!Send`: it lives on the thread that made it.
pub struct Hub {
    /// The tasks, reactor and timers; shared (as `Rc`) with the join handles, which hold it
    /// weakly, and with running tasks through `current_hub`.
    core: Rc<HubCore>,
    /// The blocking detector's thread, when [`Builder::max_blocking_time`] is set; it shares
    /// its state with `core.watch` and stops when the hub is dropped.
    watchdog: Option<Watchdog>,
}

impl Hub {
    /// A hub with the default [`Builder`] settings.
    ///
    /// # Errors
    /// As [`Builder::build`].
    ///
    /// # Examples
    /// ```
    /// use zmqloop_green::hub::{self, Hub};
    ///
    /// let hub = Hub::new().unwrap();
    /// let answer = hub.spawn(|| 42);
    /// let slept = hub.spawn(|| hub::sleep(std::time::Duration::from_millis(1)));
    /// hub.run(); // until both tasks are done
    /// assert_eq!(answer.try_join().unwrap().unwrap(), 42);
    /// assert!(slept.is_finished());
    /// ```
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

    /// Spawns `f` as a task named `name`: the blocking detector's reports show the name (see
    /// [`Builder::max_blocking_time`]; without it the name is not kept).
    ///
    /// ```
    /// use zmqloop_green::hub::Hub;
    ///
    /// let hub = Hub::new().unwrap();
    /// let task = hub.spawn_named("answer", || 42);
    /// hub.run();
    /// assert_eq!(task.join().unwrap(), 42);
    /// ```
    pub fn spawn_named<F, T>(&self, name: &str, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        spawn_named_on(&self.core, name, f)
    }

    /// How many times this hub's blocking detector has reported a task (see
    /// [`Builder::max_blocking_time`]); always 0 without it.
    ///
    /// ```
    /// let hub = zmqloop_green::hub::Hub::new().unwrap(); // no detector
    /// hub.spawn(|| std::thread::sleep(std::time::Duration::from_millis(10)));
    /// hub.run();
    /// assert_eq!(hub.blocked_incidents(), 0);
    /// ```
    pub fn blocked_incidents(&self) -> u64 {
        self.watchdog
            .as_ref()
            .map_or(0, |watchdog| watchdog.watch().incidents())
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
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _locals = EndOfTask; // dropped before the join handle has the result
            f()
        }));
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
                hub.wake(waiter);
            }
        });
    });
    JoinHandle {
        cell,
        key,
        id: core
            .task_id(key)
            .expect("a task just spawned has not finished"),
        hub: Rc::downgrade(core),
        marker: PhantomData,
    }
}

/// Spawns `f` on `core`, registering `name` with its blocking detector (if any) while the
/// task lives.
fn spawn_named_on<F, T>(core: &Rc<HubCore>, name: &str, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let Some(watch) = core.watch.clone() else {
        return spawn_on(core, f);
    };
    let name: Arc<str> = name.into();
    spawn_on(core, move || {
        let id = self::core::current_task_id().expect("a task body runs in its task");
        let _name = watch.name_task(id, name);
        f()
    })
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

/// Spawns `f`, named `name`, on the hub running this code (see [`Hub::spawn_named`]).
///
/// ```
/// use zmqloop_green::hub::{self, Hub};
///
/// let hub = Hub::new().unwrap();
/// let sum = hub.block_on(|| {
///     let parts: Vec<_> = (0..3)
///         .map(|i| hub::spawn_named(&format!("part {i}"), move || i * 10))
///         .collect();
///     parts.into_iter().map(|part| part.join().unwrap()).sum::<i32>()
/// });
/// assert_eq!(sum, 30);
/// ```
///
/// # Panics
/// Outside a running hub.
pub fn spawn_named<F, T>(name: &str, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    spawn_named_on(&current_hub(), name, f)
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
            core.park(Wait::Until(deadline));
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

/// What a task and its [`JoinHandle`] share.
struct JoinCell<T> {
    /// The task's value or panic, set once when its body ends; taken by the join.
    result: Option<std::thread::Result<T>>,
    /// Tasks parked in `join` until `result` is set; woken and emptied when it is.
    waiters: Vec<TaskKey>,
}

/// Owns a hub task's result: [`join`](JoinHandle::join) gives back its value or its panic.
pub struct JoinHandle<T> {
    /// Where the task leaves its result.
    cell: Rc<RefCell<JoinCell<T>>>,
    /// The task's slot in its hub (stale, and harmless, once the task has finished).
    key: TaskKey,
    /// The task's id (see [`JoinHandle::id`]).
    id: u64,
    /// The task's hub, for `cancel`; gone once the hub is dropped.
    hub: Weak<HubCore>,
    /// `!Send` and `!Sync`: the handle belongs to its hub's thread.
    marker: PhantomData<*const ()>,
}

impl<T> JoinHandle<T> {
    /// The task's id: unique within its hub (1 for the first task spawned, then counting up);
    /// the blocking detector's reports name tasks by it.
    ///
    /// ```
    /// let hub = zmqloop_green::hub::Hub::new().unwrap();
    /// let first = hub.spawn(|| ());
    /// let second = hub.spawn(|| ());
    /// assert_eq!((first.id(), second.id()), (1, 2));
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

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
                with_current(|core| core.park(Wait::Woken));
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
    /// The hub's queue of jobs from other threads and its wake-up eventfd.
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

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("id", &self.core.id)
            .field("tasks", &self.tasks())
            .field("watchdog", &self.watchdog.is_some())
            .finish()
    }
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id)
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl std::fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubHandle").finish_non_exhaustive()
    }
}
