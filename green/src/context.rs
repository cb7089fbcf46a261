//! The green [`Context`]: `zmq::Context`'s API on a libzmq context this crate owns itself.
//!
//! Owning the raw context (rather than wrapping `zmq::Context`) buys three things:
//! - context options `zmq::Context` hides: [`Context::set_max_sockets`] above all, since
//!   libzmq caps a context at 1023 sockets by default;
//! - termination that never blocks a scheduler worker: inside a coroutine, `zmq_ctx_term` runs
//!   on a helper thread while only the caller parks ([`Context::destroy`], and the drop of the
//!   last handle, which like `zmq`'s returns once LINGER is honoured), so other coroutines on
//!   the worker keep running and can close the sockets the termination waits for;
//! - one termination per context (`zmq` terminates twice after `destroy`), and no call that
//!   reaches the context once it is terminated: `zmq_ctx_term` frees it, so a handle that
//!   outlives [`Context::destroy`] gets ETERM from [`Context::socket`] and the option calls
//!   instead of passing libzmq a freed pointer (as `zmq` does).
//!
//! The `zmq` crate's facts behind this, and how to check them again: `docs/zmq-crate.md`.

use std::os::raw::{c_int, c_void};
use std::sync::{Arc, RwLock};

use zmq::{Result, SocketType};

use crate::errors::zmq_errno;
use crate::sched;
use crate::socket::Socket;

/// A ZeroMQ context that hands out green [`Socket`]s. Cheap to clone (the clones share one
/// libzmq context) and `Send + Sync`, like `zmq::Context`.
///
/// Every socket keeps a clone, so the context is terminated only when the last handle and the
/// last socket are gone, or by an explicit [`destroy`](Context::destroy). As in `zmq`, that last
/// drop returns once every socket has sent what its LINGER allows (a program may exit right
/// after it without losing queued messages); in a coroutine or hub task only the caller waits.
/// A drop that runs while its coroutine unwinds (a panic, a cancellation) cannot wait: it
/// terminates the context in the background and logs a warning. Call `destroy` first where
/// that matters.
#[derive(Clone)]
pub struct Context {
    raw: Arc<RawContext>,
}

struct RawContext {
    ctx: *mut c_void,
    /// Set, under the write lock, when termination starts. Every call that hands `ctx` to
    /// libzmq holds the read lock and checks it first ([`RawContext::with_live`]), so no call
    /// can reach the context after `zmq_ctx_term` may have freed it.
    terminated: RwLock<bool>,
}

impl RawContext {
    /// Runs `call` with the context pointer, or fails with ETERM once termination has begun.
    fn with_live<T>(&self, call: impl FnOnce(*mut c_void) -> Result<T>) -> Result<T> {
        let terminated = self.terminated.read().unwrap_or_else(|e| e.into_inner());
        if *terminated {
            return Err(zmq::Error::ETERM);
        }
        call(self.ctx)
    }

    /// Whether termination has begun.
    fn is_terminating(&self) -> bool {
        *self.terminated.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the context as terminating; false if it already was.
    fn begin_termination(&self) -> bool {
        let mut terminated = self.terminated.write().unwrap_or_else(|e| e.into_inner());
        !std::mem::replace(&mut *terminated, true)
    }
}

// SAFETY: a libzmq context is thread-safe (its API may be called from any thread at once); the
// pointer is never freed before the last Arc is dropped.
unsafe impl Send for RawContext {}
// SAFETY: as above.
unsafe impl Sync for RawContext {}

/// The raw context pointer, moved to the thread that terminates it.
struct TermJob(*mut c_void);

// SAFETY: zmq_ctx_term may be called from any thread; the job is the pointer's last user.
unsafe impl Send for TermJob {}

impl TermJob {
    fn run(self) -> Result<()> {
        loop {
            // SAFETY: the pointer came from zmq_ctx_new and is terminated only here, once.
            if unsafe { zmq_sys::zmq_ctx_term(self.0) } == 0 {
                return Ok(());
            }
            match zmq_errno() {
                zmq::Error::EINTR => continue,
                err => return Err(err),
            }
        }
    }
}

impl Drop for RawContext {
    /// The last handle (context or socket) is gone: terminate, keeping `zmq`'s guarantee that
    /// the drop returns once libzmq has sent what LINGER allows (see [`terminate_dropped`]).
    fn drop(&mut self) {
        if self.begin_termination() {
            terminate_dropped(TermJob(self.ctx));
        }
    }
}

/// Terminates a context whose last handle was dropped.
///
/// As in `zmq`, the drop returns once termination is over: every socket has sent what its
/// LINGER allows, so a program that sends and then lets its context go loses nothing when it
/// exits. On a plain thread it blocks the thread; in a coroutine or hub task it parks only the
/// caller while a helper thread runs `zmq_ctx_term`, and the others keep running.
///
/// Three cases cannot wait, and hand termination to a background thread instead (logged at
/// warn level: messages still queued are lost if the process exits before it is over; call
/// [`Context::destroy`] before the last handle goes to be sure):
/// - the drop runs when may drops the [local values](crate::local) of a coroutine that has
///   ended (one started with may directly): on a worker thread, outside any coroutine, where
///   blocking would stall every coroutine of the worker;
/// - the drop runs while its coroutine unwinds (a panic, or may's cancellation): a coroutine
///   cannot park while it unwinds (the next coroutine on its thread would run as if it were
///   panicking too);
/// - a cancellation arrives while the drop waits: the coroutine unwinds at once, and
///   termination goes on without it.
fn terminate_dropped(job: TermJob) {
    let outcome = if sched::after_coroutine_end() {
        log::warn!(
            "zmqloop: the last handle of a context was dropped by may after its coroutine \
             ended (a local value of a coroutine not started by zmq::spawn); it terminates \
             in the background, and messages still queued are lost if the process exits first"
        );
        sched::detach(move || report_termination(job.run()));
        return;
    } else if sched::current().is_none() {
        job.run()
    } else if std::thread::panicking() {
        log::warn!(
            "zmqloop: the last handle of a context was dropped while its coroutine unwinds; \
             it terminates in the background, and messages still queued are lost if the \
             process exits first"
        );
        sched::detach(move || report_termination(job.run()));
        return;
    } else {
        sched::run_off_thread(move || job.run()).and_then(|outcome| outcome)
    };
    report_termination(outcome);
}

fn report_termination(outcome: Result<()>) {
    if let Err(err) = outcome {
        log::warn!("zmqloop: terminating a dropped context failed: {err}");
    }
}

impl Context {
    /// Creates a new libzmq context.
    ///
    /// # Panics
    /// If libzmq cannot create one (out of file descriptors), as a context is needed for
    /// anything else.
    pub fn new() -> Context {
        // SAFETY: plain constructor call.
        let ctx = unsafe { zmq_sys::zmq_ctx_new() };
        assert!(
            !ctx.is_null(),
            "zmqloop: zmq_ctx_new failed: {}",
            zmq_errno()
        );
        Context {
            raw: Arc::new(RawContext {
                ctx,
                terminated: RwLock::new(false),
            }),
        }
    }

    /// Whether this context has begun terminating (`destroy`, or the drop of its last
    /// handle): from then on every call through it, and on its sockets, fails with ETERM.
    pub(crate) fn is_terminating(&self) -> bool {
        self.raw.is_terminating()
    }

    /// `zmq_ctx_shutdown`: every socket's next call fails with ETERM, and nothing waits (for
    /// unit tests that need a termination under way at a given point).
    #[cfg(test)]
    pub(crate) fn shutdown(&self) {
        self.raw
            .with_live(|ctx| {
                // SAFETY: `with_live` passes the context only while it is not terminated.
                let rc = unsafe { zmq_sys::zmq_ctx_shutdown(ctx) };
                assert_eq!(rc, 0, "zmq_ctx_shutdown: {}", zmq_errno());
                Ok(())
            })
            .unwrap();
    }

    fn get_option(&self, option: u32) -> Result<i32> {
        self.raw.with_live(|ctx| {
            // SAFETY: `with_live` passes the context only while it is not terminated.
            let rc = unsafe { zmq_sys::zmq_ctx_get(ctx, option as c_int) };
            if rc == -1 {
                return Err(zmq_errno());
            }
            Ok(rc)
        })
    }

    fn set_option(&self, option: u32, value: i32) -> Result<()> {
        self.raw.with_live(|ctx| {
            // SAFETY: `with_live` passes the context only while it is not terminated.
            if unsafe { zmq_sys::zmq_ctx_set(ctx, option as c_int, value) } == -1 {
                return Err(zmq_errno());
            }
            Ok(())
        })
    }

    /// The size of libzmq's I/O thread pool.
    pub fn get_io_threads(&self) -> Result<i32> {
        self.get_option(zmq_sys::ZMQ_IO_THREADS)
    }

    /// Sets the size of libzmq's I/O thread pool (before the first socket is created).
    pub fn set_io_threads(&self, value: i32) -> Result<()> {
        self.set_option(zmq_sys::ZMQ_IO_THREADS, value)
    }

    /// The most sockets this context may have open at once (libzmq's default: 1023).
    pub fn get_max_sockets(&self) -> Result<i32> {
        self.get_option(zmq_sys::ZMQ_MAX_SOCKETS)
    }

    /// Sets the most sockets this context may have open at once. Raise it before running more
    /// than about a thousand green sockets; it cannot exceed [`Context::get_socket_limit`].
    ///
    /// Set it before the first socket is created: libzmq sizes its tables then and ignores
    /// later changes. Closed sockets free their slot asynchronously (on libzmq's reaper
    /// thread), so leave headroom over the number open at once.
    pub fn set_max_sockets(&self, value: i32) -> Result<()> {
        self.set_option(zmq_sys::ZMQ_MAX_SOCKETS, value)
    }

    /// The largest value [`Context::set_max_sockets`] accepts.
    pub fn get_socket_limit(&self) -> Result<i32> {
        self.get_option(zmq_sys::ZMQ_SOCKET_LIMIT)
    }

    /// Creates a green socket of the given type.
    ///
    /// # Errors
    /// ETERM once the context is terminated (or being terminated); EMFILE when the context
    /// already has its maximum of sockets ([`Context::set_max_sockets`]) or the process is out
    /// of file descriptors.
    ///
    /// # Examples
    /// ```
    /// use zmqloop_green as zmq;
    ///
    /// let mut ctx = zmq::Context::new();
    /// let socket = ctx.socket(zmq::DEALER).unwrap();
    /// drop(socket);
    /// ctx.destroy().unwrap();
    /// assert_eq!(ctx.socket(zmq::DEALER).err(), Some(zmq::Error::ETERM));
    /// ```
    pub fn socket(&self, socket_type: SocketType) -> Result<Socket> {
        let raw = self.raw.with_live(|ctx| {
            // SAFETY: `with_live` passes the context only while it is not terminated; a null
            // result is handled below.
            let raw = unsafe { zmq_sys::zmq_socket(ctx, socket_type_to_raw(socket_type)) };
            if raw.is_null() {
                return Err(zmq_errno());
            }
            Ok(raw)
        })?;
        // SAFETY: `raw` is a new socket that only the returned green socket owns.
        let inner = unsafe { zmq::Socket::from_raw(raw) };
        Ok(Socket::from_zmq(inner, raw, Some(self.clone())))
    }

    /// Terminates the context: blocked and parked calls on its sockets fail with ETERM, and
    /// this call returns once every socket is closed (after its linger).
    ///
    /// Inside a coroutine only the calling coroutine waits; the worker thread keeps running
    /// the others. Later drops of the handles do not terminate again, and a second `destroy`
    /// (through any handle) returns `Ok` at once.
    ///
    /// # Errors
    /// libzmq's error from `zmq_ctx_term`; inside a coroutine also the error of starting the
    /// helper thread that runs it (EMFILE, ENOMEM...), in which case the context is left
    /// unterminated.
    pub fn destroy(&mut self) -> Result<()> {
        if !self.raw.begin_termination() {
            return Ok(()); // terminated (or being terminated) through another handle
        }
        let raw = self.raw.clone();
        sched::run_off_thread(move || TermJob(raw.ctx).run())?
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("ctx", &self.raw.ctx)
            .finish()
    }
}

/// libzmq's number for a socket type (`zmq::SocketType::to_raw` is private).
fn socket_type_to_raw(socket_type: SocketType) -> c_int {
    use SocketType::*;
    let raw = match socket_type {
        PAIR => zmq_sys::ZMQ_PAIR,
        PUB => zmq_sys::ZMQ_PUB,
        SUB => zmq_sys::ZMQ_SUB,
        REQ => zmq_sys::ZMQ_REQ,
        REP => zmq_sys::ZMQ_REP,
        DEALER => zmq_sys::ZMQ_DEALER,
        ROUTER => zmq_sys::ZMQ_ROUTER,
        PULL => zmq_sys::ZMQ_PULL,
        PUSH => zmq_sys::ZMQ_PUSH,
        XPUB => zmq_sys::ZMQ_XPUB,
        XSUB => zmq_sys::ZMQ_XSUB,
        STREAM => zmq_sys::ZMQ_STREAM,
    };
    raw as c_int
}
