//! The current loop (tornado's `IOLoop.current()`): [`IOLoop::current`],
//! [`IOLoop::make_current`], [`IOLoop::clear_current`].
//!
//! Each place code runs in (a plain thread, a may coroutine, a hub task) keeps its current loop
//! in the green layer's local storage ([`green::local`](crate::green::local)), which finds the place through
//! the scheduler seam: this file names no scheduler. Why one loop per coroutine and per hub task
//! rather than per thread or per hub: [`IOLoop::current`].

use std::cell::RefCell;

use zmqloop_green::local;

use super::IOLoop;

/// The current loop of one place (thread, coroutine or hub task), in the green layer's local
/// storage. A private type: no other code can reach it through `local::with`.
#[derive(Default)]
struct CurrentLoop(
    /// The loop `current()` returns; `None` before the first `current()` or `make_current()`
    /// and after `clear_current()`. Borrowed only for a clone or a swap, never while a loop is
    /// dropped (a drop may run code that asks for the current loop).
    RefCell<Option<IOLoop>>,
);

impl IOLoop {
    /// The current loop of the place the calling code runs in, made on the first call there
    /// (tornado's `IOLoop.current()`): streams, timers and callbacks need a loop, and the
    /// current loop spares passing one everywhere. Every call in one place returns the same
    /// loop (clones of it), until [`clear_current`](IOLoop::clear_current) or
    /// [`make_current`](IOLoop::make_current) changes it.
    ///
    /// # One current loop per thread, per may coroutine, per hub task
    /// tornado keeps one per thread. Here the place is where the code runs, as the green layer
    /// sees it ([`green::local`](crate::green::local)): a plain thread, a may coroutine, or a hub task, each
    /// with a loop of its own.
    /// - **A may coroutine has its own**, not its worker thread's: may is M:N, so a coroutine may
    ///   resume on another worker after any park (a thread's loop would change under it, and an
    ///   `IOLoop` is not `Send`), and the coroutines that share a worker run code of their own,
    ///   which may each start its loop (`start` on a loop that runs already panics).
    /// - **A hub task has its own** too, although the tasks of a hub share one thread: the same
    ///   code then means the same under both schedulers (green calls behave the same in both,
    ///   and the hub is where may code goes to find what blocks), and each task can start its
    ///   current loop. Tasks that should share a loop share it by hand: hub tasks need not be
    ///   `Send`, so a clone moves into another task, or becomes its current loop with
    ///   [`make_current`](IOLoop::make_current).
    /// - Code on a plain thread, and code on a hub's thread outside its tasks, has the thread's.
    ///
    /// A loop started in a coroutine or hub task parks only that coroutine or task while it
    /// waits: the others of its thread go on, each with its own loop.
    ///
    /// # Lifetime
    /// The place keeps its current loop until [`clear_current`](IOLoop::clear_current), a
    /// [`make_current`](IOLoop::make_current) of another loop, or the end of the place: a hub
    /// task, or a coroutine started by `zmq::spawn`, drops it at the end of its body, inside it
    /// (a context's last drop there parks only it) and before its join handle has the result; a
    /// thread at its exit; a coroutine started with may directly, after its end, where may drops
    /// its locals ([`green::local`](crate::green::local)). Rust does not promise to run the main
    /// thread's thread-local destructors when the process exits: there, close the streams (or
    /// `clear_current()`) before `main` returns if their queued messages matter.
    /// [`close`](IOLoop::close) empties a loop but leaves it usable, so a closed loop stays
    /// current: the next `current()` returns it, empty.
    ///
    /// # Panics
    /// If a loop is to be made and its wake-up eventfd cannot be (`EMFILE`, `ENFILE`: out of
    /// file descriptors): tornado's `current()` cannot fail, and neither can this one but for
    /// that. [`IOLoop::new`] returns the error instead; install its loop with
    /// [`make_current`](IOLoop::make_current).
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// /// Needs no loop passed in: it uses the current one.
    /// fn ping_later(push: zmq::Socket) -> zmq::Result<ZmqStream> {
    ///     let stream = ZmqStream::new(push, &IOLoop::current())?;
    ///     let sender = stream.clone();
    ///     IOLoop::current().call_later(Duration::from_millis(1), move || sender.send("ping"));
    ///     Ok(stream)
    /// }
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = ctx.socket(zmq::PULL)?;
    /// pull.bind("inproc://current-doc")?;
    /// let push = ctx.socket(zmq::PUSH)?;
    /// push.connect("inproc://current-doc")?;
    ///
    /// let ioloop = IOLoop::current();
    /// assert_eq!(ioloop, IOLoop::current()); // the same loop, on this thread
    /// let _pinger = ping_later(push)?;
    /// let inbox = ZmqStream::new(pull, &ioloop)?;
    /// let got = Rc::new(Cell::new(0));
    /// let count = got.clone();
    /// inbox.on_recv(move |_frames| {
    ///     count.set(count.get() + 1);
    ///     IOLoop::current().stop(); // no loop captured: this thread's current one
    /// });
    /// ioloop.start()?;
    /// assert_eq!(got.get(), 1);
    ///
    /// // A coroutine has a current loop of its own; started there, it parks only that coroutine.
    /// let in_coroutine = zmq::spawn(|| {
    ///     IOLoop::current().add_callback(|| IOLoop::current().stop());
    ///     IOLoop::current().start()
    /// });
    /// in_coroutine.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn current() -> IOLoop {
        local::with(|current: &CurrentLoop| {
            let installed = current.0.borrow().clone();
            installed.unwrap_or_else(|| {
                let made = IOLoop::new().unwrap_or_else(|err| {
                    panic!(
                        "zmqloop: IOLoop::current cannot make a loop: {err} (out of file \
                         descriptors?); IOLoop::new returns this error, and make_current \
                         installs its loop"
                    )
                });
                current.0.replace(Some(made.clone()));
                made
            })
        })
    }

    /// Makes this loop the current loop of the calling code's place (thread, may coroutine or
    /// hub task), as tornado's `make_current`, and returns the loop it replaces, if any (dropped
    /// unless kept: a loop with no handle left closes its sockets).
    ///
    /// ```
    /// use zmqloop::eventloop::IOLoop;
    ///
    /// let mine = IOLoop::new()?;
    /// let before = mine.make_current();
    /// assert!(before.is_none()); // nothing asked for a current loop on this thread yet
    /// assert_eq!(IOLoop::current(), mine);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn make_current(&self) -> Option<IOLoop> {
        local::with(|current: &CurrentLoop| current.0.replace(Some(self.clone())))
    }

    /// Forgets the current loop of the calling code's place and returns it, if there was one:
    /// the next [`current`](IOLoop::current) there makes a new loop. A loop that runs goes on
    /// running; it is only no longer current.
    ///
    /// ```
    /// use zmqloop::eventloop::IOLoop;
    ///
    /// let first = IOLoop::current();
    /// assert_eq!(IOLoop::clear_current(), Some(first.clone()));
    /// assert_eq!(IOLoop::clear_current(), None);
    /// assert_ne!(IOLoop::current(), first); // a fresh one
    /// ```
    pub fn clear_current() -> Option<IOLoop> {
        local::with(|current: &CurrentLoop| current.0.take())
    }
}
