//! [`IOLoop`]: handlers for sockets and fds, callbacks, timeouts, periodic callbacks and
//! tickets, on one thread (the contract of the tornado IOLoop that pyzmq's ZMQStream was built
//! on, plus CZMQ zloop's repeating timers and tickets).
//!
//! The waiting step is the green [`KeyedPoller`]: on a plain thread it is a blocking `zmq_poll`;
//! in a may coroutine or a hub task it parks only that coroutine. That is the whole difference
//! between the plain loop and the green one (`zmqloop::green::eventloop`).
//!
//! Each iteration runs the callbacks queued before it, polls (without waiting while callbacks
//! are pending, and only every [`POLL_EVERY`] iterations while they keep coming, or not at all
//! while no handler asks for events), runs the due timeouts, then the handlers of ready sockets
//! and fds.
//!
//! # Invariants
//! - The poller owns what the handlers watch: each socket's `Rc` (the loop keeps the socket
//!   open until its handler is removed, and hands the `Rc` back then) and each fd's membership,
//!   plus the loop's wake-up eventfd. `handlers` holds exactly one handler per poller key but
//!   the eventfd's, so a handler is found by key in O(1) and the loop holds no reference into
//!   the poller (and has no `unsafe` code).
//! - A paused handler (empty events) stays registered under its key but is out of the poll set:
//!   it costs nothing in a wait.
//! - No `RefCell` borrow is held while user code runs: callbacks, timers and handlers are taken
//!   out (or `Rc`-cloned) first, so they may call back into the loop freely; what a removed
//!   handler owned (its closure, its socket's `Rc`) is dropped after the borrows end.
//! - No `RefCell` borrow is held across a park either: the wait borrows the poller only between
//!   its parks ([`KeyedPoller::poll_shared`]). So code that runs on this thread while the loop
//!   is parked (another hub task, a may coroutine on the loop's worker) may change what the loop
//!   waits for: add, pause, resume or remove handlers, make, flush, stop or close streams, close
//!   the loop. Each change reaches the poller, and the epoll set the wait parks on, when it is
//!   made, never later: a removal hands back (or drops) the socket's `Rc` before it returns, so
//!   a context can be terminated right after. A handler added or resumed while the loop waits
//!   wakes it through the eventfd (`polling` says when), since a socket whose messages were
//!   waiting already signals nothing; a pause or a removal needs no wake-up.
//! - A removed handler is never called after its removal returns: the loop looks each handler
//!   up by key just before calling it (keys are never reused), in `dispatch` and in
//!   `notify_termination` alike.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::os::unix::io::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zmqloop_green::wake_fd::WakeFd;
use zmqloop_green::{KeyedPoller, PollEvents, PollKey, PollSource, Socket};

use super::timers::Timers;

/// A queued callback: a one-shot closure, or a shared one that is queued again and again
/// without allocating (a busy `ZmqStream`'s next pass).
pub(crate) enum Callback {
    /// Runs once, and is dropped after.
    Once(Box<dyn FnOnce()>),
    /// A clone of a callback kept elsewhere (the stream's pass), queued once per run.
    Shared(Rc<dyn Fn()>),
}

impl Callback {
    fn run(self) {
        match self {
            Callback::Once(f) => f(),
            Callback::Shared(f) => f(),
        }
    }
}

/// While callbacks keep coming, the loop polls (with a zero timeout) once every this many
/// iterations instead of every iteration: a poll costs a syscall per socket, a callback
/// iteration (a busy stream's next message) much less. Handlers still get a look at least
/// every `POLL_EVERY` iterations.
const POLL_EVERY: u32 = 16;
type HandlerFn = Rc<RefCell<dyn FnMut(PollEvents)>>;

/// A handler of a socket or fd; what it watches is its key's member in the poller.
struct Handler {
    /// The events asked for. Invariant: the events of its key's member in the poller (both are
    /// set together); an event of the last poll that a handler no longer asks for is not
    /// dispatched to it.
    events: PollEvents,
    /// The user's closure. Shared so that it is called from a clone, with no borrow of
    /// `handlers` held (module invariants); borrowed mutably only while it runs, so a handler
    /// that re-enters it (through `flush`, say) is refused by the `RefCell`, not run twice.
    callback: HandlerFn,
}

/// What other threads may do to a loop: queue callbacks, stop it. The eventfd wakes its poll.
struct Remote {
    /// Callbacks queued by other threads, in order. The loop moves them all to its own queue
    /// at the start of an iteration in which `queued` is set.
    callbacks: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    /// Set when `callbacks` may hold something: the loop looks at the mutex only then.
    /// Invariant: set after each push and before the wake-up, and cleared by the loop before it
    /// takes the callbacks, so no callback is left behind unseen.
    queued: AtomicBool,
    /// A stop asked by [`IOLoopHandle::stop`]; the loop clears it when it stops for it.
    stop: AtomicBool,
    /// Wakes the loop's poll: its poller member under `Inner::wake_key` for the loop's whole
    /// life (this `Arc` outlives the loop's poller), read empty by the loop when it fires.
    eventfd: WakeFd,
}

impl Remote {
    fn wake(&self) {
        self.eventfd.wake();
    }
}

/// The loop's state, shared by its [`IOLoop`] handles (and weakly by its [`Timeout`]s and the
/// closures it owns). Invariants common to the fields: module doc.
struct Inner {
    /// Every handler's socket or fd, and the wake-up eventfd (module invariants). Borrowed
    /// only between the parks of the loop's wait, never across one, so that code running while
    /// the loop waits may change it.
    poller: RefCell<KeyedPoller>,
    /// The poller key of the wake-up eventfd (`remote.eventfd`), registered for `POLLIN` from
    /// `new` on and never removed; no handler has it.
    wake_key: PollKey,
    /// One handler per poller key but `wake_key`, and no other (module invariants): updating or
    /// dispatching costs O(1) whatever the number of streams.
    handlers: RefCell<HashMap<PollKey, Handler>>,
    /// Callbacks for the next iterations, in the order they were queued. An iteration runs
    /// those queued before it began (callbacks they queue wait for the next); while it holds
    /// any, the loop polls without waiting.
    callbacks: RefCell<VecDeque<Callback>>,
    /// The pending timeouts (timers, periodic callbacks and tickets are chains of them). The
    /// poll waits no longer than the earliest deadline.
    timers: RefCell<Timers>,
    /// What other threads share with the loop (`IOLoopHandle`): their callbacks, their stop
    /// request, the eventfd.
    remote: Arc<Remote>,
    /// `start` is running: set exactly between its entry and its return.
    running: Cell<bool>,
    /// A stop asked on this thread: `start` returns after its current iteration, or at once if
    /// it was not running; cleared by `start` on its way out (or in).
    stop_requested: Cell<bool>,
    /// The buffer of the ready list of each poll, handed to `dispatch` and back so that an
    /// iteration allocates nothing; what it holds between iterations is stale (cleared first).
    ready: RefCell<Vec<(PollKey, PollEvents)>>,
    /// Iterations since the last poll (see `POLL_EVERY`): never above `POLL_EVERY`, reset by
    /// each poll.
    unpolled: Cell<u32>,
    /// How many handlers ask for events (are not paused). Invariant: the number of `handlers`
    /// whose `events` are not empty. While it is 0 a busy loop does not poll: the poll could
    /// only report the wake-up eventfd, whose news (remote callbacks, a stop) each iteration
    /// reads from `remote`'s flags anyway. A busy `ZmqStream` pauses its handler while its
    /// next pass is queued, so one busy stream costs its loop no poll.
    watching: Cell<usize>,
    /// The loop is in its poll (parked, when it runs in a coroutine or hub task): set exactly
    /// around the wait. Code on this thread that runs meanwhile (another hub task or
    /// coroutine) and gives the loop something new to look at must wake it through the eventfd.
    polling: Cell<bool>,
    /// The delay of tickets ([`IOLoop::set_ticket_delay`]), read when a ticket is (re)armed.
    ticket_delay: Cell<Duration>,
}

/// An event loop on the current thread. Cheap to clone (clones share the loop); not `Send`.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use zmqloop::eventloop::IOLoop;
///
/// let ioloop = IOLoop::new().unwrap();
/// let fired = Rc::new(Cell::new(0));
/// let counter = fired.clone();
/// let stopper = ioloop.clone();
/// ioloop.call_later(Duration::from_millis(5), move || {
///     counter.set(counter.get() + 1);
///     stopper.stop();
/// });
/// ioloop.start().unwrap();
/// assert_eq!(fired.get(), 1);
/// ```
#[derive(Clone)]
pub struct IOLoop {
    /// The loop itself; every clone shares it.
    inner: Rc<Inner>,
}

/// Two handles are equal when they are clones of one loop.
impl PartialEq for IOLoop {
    fn eq(&self, other: &IOLoop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for IOLoop {}

/// A thread-safe handle to an [`IOLoop`]: queue callbacks and stop it from any thread.
#[derive(Clone)]
pub struct IOLoopHandle {
    /// The part of the loop other threads may touch. It may outlive the loop: a callback
    /// queued then never runs, a stop does nothing.
    remote: Arc<Remote>,
}

impl IOLoopHandle {
    /// Runs `callback` on the loop's next iteration, waking the loop if it is waiting.
    pub fn add_callback(&self, callback: impl FnOnce() + Send + 'static) {
        self.remote
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(callback));
        self.remote.queued.store(true, Ordering::SeqCst);
        self.remote.wake();
    }

    /// Makes the loop's `start` return (after its current iteration).
    pub fn stop(&self) {
        self.remote.stop.store(true, Ordering::SeqCst);
        self.remote.wake();
    }
}

/// A pending timeout from [`IOLoop::call_later`] or [`IOLoop::call_at`].
#[derive(Clone)]
pub struct Timeout {
    /// The timeout's number in the loop's timers; never reused, so a stale `Timeout` names
    /// nothing.
    seq: u64,
    /// The loop, weakly: a timeout does not keep its loop alive.
    inner: Weak<Inner>,
}

impl Timeout {
    /// Cancels the timeout; returns false if it already ran or was cancelled.
    pub fn cancel(&self) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        let callback = inner.timers.borrow_mut().cancel(self.seq);
        callback.is_some() // dropped here, after the borrow
    }

    /// Whether the timeout is still pending.
    pub fn is_pending(&self) -> bool {
        self.inner
            .upgrade()
            .is_some_and(|inner| inner.timers.borrow().is_pending(self.seq))
    }
}

/// Logs and swallows a panic from user code: one failing callback must not stop the loop.
fn guarded(what: &str, f: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".into());
        log::error!("zmqloop: a {what} panicked: {message}; the loop goes on");
    }
}

fn ms_until(deadline: Instant) -> i64 {
    let wait = deadline.saturating_duration_since(Instant::now());
    i64::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(i64::MAX)
}

impl IOLoop {
    /// A new loop on the current thread, with no handlers, callbacks or timeouts: for tests
    /// and for several loops in one place. [`IOLoop::current`] gives the place's own loop.
    ///
    /// # Errors
    /// The OS error if the loop's wake-up eventfd cannot be made (`EMFILE`, `ENFILE`: out of
    /// fds).
    ///
    /// # Examples
    /// ```
    /// use zmqloop::eventloop::IOLoop;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let stopper = ioloop.clone(); // clones share the loop
    /// ioloop.add_callback(move || stopper.stop());
    /// ioloop.start()?; // runs the callback, which stops the loop
    /// assert!(!ioloop.is_running());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> std::io::Result<IOLoop> {
        let eventfd = WakeFd::new()?;
        let mut poller = KeyedPoller::new();
        let wake_key = poller
            .register_fd(eventfd.as_raw_fd(), zmqloop_green::POLLIN)
            .map_err(std::io::Error::from)?;
        Ok(IOLoop {
            inner: Rc::new(Inner {
                poller: RefCell::new(poller),
                wake_key,
                handlers: RefCell::new(HashMap::new()),
                callbacks: RefCell::new(VecDeque::new()),
                timers: RefCell::new(Timers::default()),
                remote: Arc::new(Remote {
                    callbacks: Mutex::new(Vec::new()),
                    queued: AtomicBool::new(false),
                    stop: AtomicBool::new(false),
                    eventfd,
                }),
                running: Cell::new(false),
                stop_requested: Cell::new(false),
                ready: RefCell::new(Vec::new()),
                unpolled: Cell::new(0),
                watching: Cell::new(0),
                polling: Cell::new(false),
                ticket_delay: Cell::new(Duration::from_secs(1)),
            }),
        })
    }

    /// A handle for other threads.
    pub fn handle(&self) -> IOLoopHandle {
        IOLoopHandle {
            remote: self.inner.remote.clone(),
        }
    }

    /// The key of `socket`'s handler (ENOENT if it has none).
    fn socket_key(&self, socket: &Socket) -> zmqloop_green::Result<PollKey> {
        let key = self.inner.poller.borrow().key_of(socket);
        key.ok_or(zmqloop_green::Error::ENOENT)
    }

    /// The key of the plain fd `fd`'s handler (ENOENT if it has none).
    fn fd_key(&self, fd: RawFd) -> zmqloop_green::Result<PollKey> {
        let key = self.inner.poller.borrow().key_of_fd(fd);
        key.filter(|&key| key != self.inner.wake_key)
            .ok_or(zmqloop_green::Error::ENOENT)
    }

    /// Calls `handler(events)` whenever `socket` has any of `events` (empty events: the
    /// handler is kept but paused, see [`update_handler`](IOLoop::update_handler)). The loop
    /// keeps the socket alive until the handler is removed, and hands its reference back then
    /// ([`remove_handler`](IOLoop::remove_handler), [`close`](IOLoop::close)). May be called
    /// while the loop runs, from a handler or callback, or from another hub task or coroutine of
    /// the loop's thread while the loop waits: the new handler is polled at once.
    ///
    /// # Errors
    /// EBUSY if the socket already has a handler; the socket's own error if its fd cannot be
    /// read (ETERM once its context is terminated); an OS error if the loop's epoll set
    /// refuses the fd (a loop that runs in a coroutine or hub task has one). The loop then
    /// keeps nothing of the socket or the handler.
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop::eventloop::IOLoop;
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = Rc::new(ctx.socket(zmq::PULL)?);
    /// pull.bind("inproc://add-handler-doc")?;
    /// let push = ctx.socket(zmq::PUSH)?;
    /// push.connect("inproc://add-handler-doc")?;
    /// push.send("hello", 0)?;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let got = Rc::new(RefCell::new(None));
    /// let (socket, seen, stopper) = (pull.clone(), got.clone(), ioloop.clone());
    /// ioloop.add_handler(pull.clone(), zmq::POLLIN, move |_events| {
    ///     // A panic here would be logged, and the loop would go on: record, assert later.
    ///     *seen.borrow_mut() = Some(socket.recv_string(zmq::DONTWAIT));
    ///     stopper.stop();
    /// })?;
    /// let again = ioloop.add_handler(pull.clone(), zmq::POLLIN, |_| {});
    /// assert_eq!(again, Err(zmq::Error::EBUSY)); // one handler per socket
    ///
    /// ioloop.start()?;
    /// assert_eq!(got.borrow_mut().take(), Some(Ok(Ok("hello".to_owned()))));
    /// let back = ioloop.remove_handler(&pull)?; // the loop's reference
    /// assert!(Rc::ptr_eq(&back, &pull));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_handler(
        &self,
        socket: Rc<Socket>,
        events: PollEvents,
        handler: impl FnMut(PollEvents) + 'static,
    ) -> zmqloop_green::Result<()> {
        let key = self.inner.poller.borrow_mut().register(socket, events)?;
        self.insert_handler(key, events, handler);
        Ok(())
    }

    /// Calls `handler(events)` whenever the plain fd `fd` has any of `events`. The fd must
    /// stay open until the handler is removed.
    ///
    /// # Errors
    /// EBUSY if the fd already has a handler; an OS error if the loop's epoll set refuses the
    /// fd (EBADF, as `ENOTSOCK`, if it is not open; a loop that runs in a coroutine or hub task
    /// has an epoll set).
    pub fn add_fd_handler(
        &self,
        fd: RawFd,
        events: PollEvents,
        handler: impl FnMut(PollEvents) + 'static,
    ) -> zmqloop_green::Result<()> {
        let key = self.inner.poller.borrow_mut().register_fd(fd, events)?;
        self.insert_handler(key, events, handler);
        Ok(())
    }

    fn insert_handler(
        &self,
        key: PollKey,
        events: PollEvents,
        handler: impl FnMut(PollEvents) + 'static,
    ) {
        let callback: HandlerFn = Rc::new(RefCell::new(handler));
        let handler = Handler { events, callback };
        self.inner.handlers.borrow_mut().insert(key, handler);
        self.count_watching(PollEvents::empty(), events);
        self.wake_if_polling(); // a socket with messages waiting signals nothing
    }

    /// Changes the events a socket's handler waits for (ENOENT if it has none). Empty events
    /// keep the handler but pause it.
    pub fn update_handler(&self, socket: &Socket, events: PollEvents) -> zmqloop_green::Result<()> {
        self.set_events(self.socket_key(socket)?, events)
    }

    /// Changes the events a plain fd's handler waits for (ENOENT if it has none).
    pub fn update_fd_handler(&self, fd: RawFd, events: PollEvents) -> zmqloop_green::Result<()> {
        self.set_events(self.fd_key(fd)?, events)
    }

    fn set_events(&self, key: PollKey, events: PollEvents) -> zmqloop_green::Result<()> {
        let mut handlers = self.inner.handlers.borrow_mut();
        let handler = handlers.get_mut(&key).expect("a key of a handler");
        let before = std::mem::replace(&mut handler.events, events);
        self.count_watching(before, events);
        let modified = self.inner.poller.borrow_mut().modify(key, events);
        if !events.is_empty() {
            self.wake_if_polling(); // a resumed socket with messages waiting signals nothing
        }
        modified
    }

    /// Removes a socket's handler and returns the loop's reference to the socket (ENOENT if
    /// it has none).
    pub fn remove_handler(&self, socket: &Socket) -> zmqloop_green::Result<Rc<Socket>> {
        let key = self.socket_key(socket)?;
        match self.remove_key(key) {
            (_, PollSource::Socket(socket)) => Ok(socket),
            (_, PollSource::Fd(_)) => unreachable!("found as a socket"),
        }
    }

    /// Removes a plain fd's handler (ENOENT if it has none).
    pub fn remove_fd_handler(&self, fd: RawFd) -> zmqloop_green::Result<()> {
        let key = self.fd_key(fd)?;
        self.remove_key(key);
        Ok(())
    }

    /// Removes the handler of `key` and its poller member; both are handed back to be dropped
    /// after the borrows end (module invariants).
    fn remove_key(&self, key: PollKey) -> (Handler, PollSource) {
        let handler = self.inner.handlers.borrow_mut().remove(&key);
        let source = self.inner.poller.borrow_mut().unregister(key);
        let handler = handler.expect("a key of a handler");
        self.count_watching(handler.events, PollEvents::empty());
        (handler, source.expect("a key of the poller"))
    }

    /// Keeps `watching` right when a handler's events go from `before` to `after`.
    fn count_watching(&self, before: PollEvents, after: PollEvents) {
        let watching = self.inner.watching.get();
        match (before.is_empty(), after.is_empty()) {
            (true, false) => self.inner.watching.set(watching + 1),
            (false, true) => self.inner.watching.set(watching - 1),
            _ => {}
        }
    }

    /// Runs `callback` on the next iteration of the loop (callbacks added while callbacks run
    /// wait for the iteration after). Not thread-safe: see [`IOLoopHandle::add_callback`].
    pub fn add_callback(&self, callback: impl FnOnce() + 'static) {
        self.queue(Callback::Once(Box::new(callback)));
    }

    /// Queues a shared callback (no allocation; see [`Callback::Shared`]).
    pub(crate) fn add_shared_callback(&self, callback: &Rc<dyn Fn()>) {
        self.queue(Callback::Shared(callback.clone()));
    }

    fn queue(&self, callback: Callback) {
        self.inner.callbacks.borrow_mut().push_back(callback);
        self.wake_if_polling();
    }

    /// Interrupts the loop's wait when another task (hub, or may coroutine on this thread's
    /// loop) changes what the loop waits for while it is parked in its poll.
    fn wake_if_polling(&self) {
        if self.inner.polling.get() {
            self.inner.remote.wake();
        }
    }

    /// Runs `callback` once, `delay` from now.
    pub fn call_later(&self, delay: Duration, callback: impl FnOnce() + 'static) -> Timeout {
        self.call_at(Instant::now() + delay, callback)
    }

    /// Runs `callback` once at `deadline` (timeouts with the same deadline run in the order
    /// they were added).
    pub fn call_at(&self, deadline: Instant, callback: impl FnOnce() + 'static) -> Timeout {
        let seq = self
            .inner
            .timers
            .borrow_mut()
            .add(deadline, Box::new(callback));
        self.wake_if_polling(); // the wait was computed without this deadline
        Timeout {
            seq,
            inner: Rc::downgrade(&self.inner),
        }
    }

    /// Cancels `timeout` (same as [`Timeout::cancel`]).
    pub fn remove_timeout(&self, timeout: &Timeout) -> bool {
        timeout.cancel()
    }

    /// The delay of [tickets](IOLoop::add_ticket) (default 1 s).
    pub fn set_ticket_delay(&self, delay: Duration) {
        self.inner.ticket_delay.set(delay);
    }

    pub(crate) fn ticket_delay(&self) -> Duration {
        self.inner.ticket_delay.get()
    }

    /// Whether the loop has nothing to do but the callback running now: no other callback
    /// queued (remote ones included), no handler asking for events, no timeout, no stop asked.
    /// A busy stream then handles its next message in the same pass, sparing an iteration.
    pub(crate) fn has_nothing_else(&self) -> bool {
        self.inner.callbacks.borrow().is_empty()
            && self.inner.watching.get() == 0
            && self.inner.timers.borrow().is_empty()
            && !self.inner.stop_requested.get()
            && !self.inner.remote.queued.load(Ordering::Relaxed)
            && !self.inner.remote.stop.load(Ordering::Relaxed)
    }

    /// Whether `start` is running.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Makes `start` return after the current iteration; called before `start`, makes the
    /// next `start` return at once.
    pub fn stop(&self) {
        self.inner.stop_requested.set(true);
        self.wake_if_polling();
    }

    /// Removes every handler, callback and timeout (dropping the loop's references to its
    /// sockets).
    pub fn close(&self) {
        let keys: Vec<PollKey> = self.inner.handlers.borrow().keys().copied().collect();
        for key in keys {
            drop(self.remove_key(key)); // after the borrows: it may own a socket's last Rc
        }
        // Dropped after the borrows end: dropping a callback may run code that uses the loop.
        let callbacks = std::mem::take(&mut *self.inner.callbacks.borrow_mut());
        let timers = self.inner.timers.borrow_mut().clear();
        drop(callbacks);
        drop(timers);
    }

    /// Runs the loop until [`stop`](IOLoop::stop) (or [`IOLoopHandle::stop`] from another
    /// thread). Returns `Ok` when stopped or when the sockets' context is terminated (ETERM ends
    /// the loop quietly, after calling each socket handler once with `POLLERR` so that streams
    /// close); other poll errors are returned. In a may coroutine or a hub task the waits park
    /// only that coroutine or task.
    ///
    /// # Errors
    /// What the poll returns but ETERM: EINTR when a signal interrupts a wait on a plain thread
    /// (the loop can be started again); in a coroutine or hub task, an OS error if the wait
    /// cannot be set up (out of fds for its epoll set, or a handler's fd that the epoll set
    /// refuses). Handlers, callbacks and timeouts stay as they were.
    ///
    /// # Panics
    /// If the loop is already running.
    ///
    /// # Examples
    /// ```
    /// use zmqloop::eventloop::IOLoop;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let handle = ioloop.handle(); // Send: for other threads
    /// let other = std::thread::spawn(move || handle.stop());
    /// ioloop.start()?; // returns once stopped, whether the stop came before or during it
    /// other.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(&self) -> zmqloop_green::Result<()> {
        assert!(!self.is_running(), "zmqloop: IOLoop::start while it runs");
        if self.inner.stop_requested.replace(false) {
            return Ok(());
        }
        self.inner.running.set(true);
        let outcome = self.run();
        self.inner.running.set(false);
        self.inner.stop_requested.set(false);
        outcome
    }

    fn run(&self) -> zmqloop_green::Result<()> {
        loop {
            self.take_remote_callbacks();
            // Only those queued before this iteration: callbacks they add wait for the next.
            let queued = self.inner.callbacks.borrow().len();
            for _ in 0..queued {
                let callback = self.inner.callbacks.borrow_mut().pop_front();
                match callback {
                    Some(callback) => guarded("callback", || callback.run()),
                    None => break, // `close` emptied the queue
                }
            }
            if self.should_stop() {
                return Ok(());
            }
            let busy = !self.inner.callbacks.borrow().is_empty();
            if busy && !self.busy_poll_due() {
                // Callbacks are pending (e.g. busy streams): run them again before polling.
                self.run_due_timers();
                continue;
            }
            self.inner.unpolled.set(0);
            let timeout = if busy {
                0
            } else {
                self.inner
                    .timers
                    .borrow_mut()
                    .next_deadline()
                    .map_or(-1, ms_until)
            };
            let ready = match self.poll(timeout) {
                Ok(ready) => ready,
                Err(zmqloop_green::Error::ETERM) => {
                    log::debug!("zmqloop: IOLoop ends: context terminated");
                    self.notify_termination();
                    return Ok(());
                }
                Err(err) => return Err(err),
            };
            self.run_due_timers();
            self.dispatch(ready);
            if self.should_stop() {
                return Ok(());
            }
        }
    }

    /// Whether an iteration that has callbacks pending polls: once every [`POLL_EVERY`]
    /// iterations, and never while no handler asks for events (`watching`).
    fn busy_poll_due(&self) -> bool {
        let unpolled = self.inner.unpolled.get();
        if unpolled < POLL_EVERY {
            self.inner.unpolled.set(unpolled + 1);
            return false;
        }
        self.inner.watching.get() > 0
    }

    /// Calls every socket handler once with `POLLERR`, so that each can notice the terminated
    /// context (a `ZmqStream` closes itself) before `start` returns.
    fn notify_termination(&self) {
        let keys: Vec<PollKey> = {
            let poller = self.inner.poller.borrow();
            let on_socket =
                |key: &PollKey| matches!(poller.source(*key), Some(PollSource::Socket(_)));
            let handlers = self.inner.handlers.borrow();
            handlers.keys().copied().filter(on_socket).collect()
        };
        for key in keys {
            // Looked up at the call: one removed by an earlier call is not called.
            let callback = self.handler(key);
            if let Some(callback) = callback {
                guarded("handler", || {
                    (callback.borrow_mut())(zmqloop_green::POLLERR)
                });
            }
        }
    }

    /// The callback of the handler of `key`, if it still has one.
    fn handler(&self, key: PollKey) -> Option<HandlerFn> {
        let handlers = self.inner.handlers.borrow();
        handlers.get(&key).map(|handler| handler.callback.clone())
    }

    fn run_due_timers(&self) {
        if self.inner.timers.borrow().is_empty() {
            return;
        }
        let now = Instant::now();
        loop {
            let due = self.inner.timers.borrow_mut().pop_due(now);
            match due {
                Some(timer) => guarded("timeout", timer),
                None => return,
            }
        }
    }

    fn should_stop(&self) -> bool {
        self.inner.stop_requested.get()
            || (self.inner.remote.stop.load(Ordering::Relaxed)
                && self.inner.remote.stop.swap(false, Ordering::SeqCst))
    }

    fn take_remote_callbacks(&self) {
        if !self.inner.remote.queued.load(Ordering::Relaxed)
            || !self.inner.remote.queued.swap(false, Ordering::SeqCst)
        {
            return;
        }
        let remote: Vec<_> = std::mem::take(
            &mut *self
                .inner
                .remote
                .callbacks
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let mut callbacks = self.inner.callbacks.borrow_mut();
        for callback in remote {
            callbacks.push_back(Callback::Once(callback));
        }
    }

    /// Polls and returns the ready handlers' keys with their events. The poller is borrowed
    /// between parks only (module invariants).
    fn poll(&self, timeout: i64) -> zmqloop_green::Result<Vec<(PollKey, PollEvents)>> {
        self.inner.polling.set(true);
        let polled = KeyedPoller::poll_shared(&self.inner.poller, timeout);
        self.inner.polling.set(false);
        polled?;
        let poller = self.inner.poller.borrow();
        // The buffer of the previous iteration, reused: no allocation per poll.
        let mut ready = std::mem::take(&mut *self.inner.ready.borrow_mut());
        ready.clear();
        for (key, events) in poller.ready() {
            if key == self.inner.wake_key {
                self.inner.remote.eventfd.clear();
            } else {
                ready.push((key, events));
            }
        }
        Ok(ready)
    }

    fn dispatch(&self, ready: Vec<(PollKey, PollEvents)>) {
        for &(key, events) in &ready {
            let callback = {
                let handlers = self.inner.handlers.borrow();
                handlers
                    .get(&key)
                    .filter(|h| {
                        h.events.intersects(events) || events.contains(zmqloop_green::POLLERR)
                    })
                    .map(|h| h.callback.clone())
            };
            // Removed (or paused) by an earlier handler of this iteration: skip.
            if let Some(callback) = callback {
                guarded("handler", || (callback.borrow_mut())(events));
            }
        }
        *self.inner.ready.borrow_mut() = ready;
    }
}
