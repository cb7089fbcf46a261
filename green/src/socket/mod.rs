//! The green [`Socket`]: `zmq::Socket` with every blocking call re-implemented on the readiness
//! loop, and everything else delegated unchanged.
//!
//! The wrapper deliberately has no `Deref` to `zmq::Socket`: a method forgotten here must fail
//! to compile in user code, not silently block the thread. Each method keeps the signature of
//! its `zmq` original.
//!
//! Files: `mod.rs` (this: the type, its lifecycle, sending and receiving), `wait.rs` (the socket
//! as the readiness rule sees it), `options.rs` (the delegated socket options), `raw.rs` (the
//! one unsafe call: sending a message libzmq leaves intact on EAGAIN), `monitor.rs` (socket
//! monitors and their safe teardown).

mod monitor;
mod options;
mod parts;
mod raw;
mod wait;

pub use parts::PartsNotSent;

pub(crate) use raw::share as share_message;

use std::cell::{Cell, RefCell, RefMut};
use std::mem::ManuallyDrop;
use std::os::raw::c_void;
use std::os::unix::io::{AsRawFd, RawFd};
use std::string::FromUtf8Error;

use zmq::{Message, PollEvents, Result};

use crate::context::Context;
use crate::poll_item::PollItem;
use crate::readiness::Direction;
use crate::sched::Registration;

/// A green ZeroMQ socket: the API of `zmq::Socket`, whose blocking calls park the calling
/// coroutine instead of the OS thread.
///
/// Like `zmq::Socket` it is `Send` but not `Sync`: one owner at a time, which may move it between
/// threads and coroutines. Outside any coroutine every call behaves exactly like `zmq`.
pub struct Socket {
    /// The scheduler registration of `fd`. Invariant: released before `inner` is closed (see
    /// [`Registration`]); `Drop` and `into_raw` do it.
    registration: RefCell<Registration>,
    /// The notification fd (`ZMQ_FD`), read on the first wait.
    fd: Cell<Option<RawFd>>,
    /// Whether the last send that went out had `SNDMORE`, so that the next send continues a
    /// message: when the pipe a message was going to ends half-way, libzmq refuses the rest,
    /// and such a send must then do what libzmq's blocking send does (`wait.rs`,
    /// `continue_message`).
    in_message: Cell<bool>,
    inner: ManuallyDrop<zmq::Socket>,
    /// The libzmq socket (`inner`'s pointer), kept for the calls `zmq::Socket` does not expose.
    raw: *mut c_void,
    /// Keeps the context alive (and unterminated) while this socket lives, as `zmq` does.
    context: Option<Context>,
    /// Links to this socket's monitor socket, or, on a monitor socket, to the socket it
    /// monitors. Invariant: ended (`MonitorLinks::end`) before `inner` is closed.
    monitor_links: monitor::MonitorLinks,
}

// SAFETY: a libzmq socket may be used from any thread as long as uses do not overlap (the same
// contract under which `zmq::Socket` is Send). `raw` is that socket's pointer, the registration
// and the fd cell are only touched through `&self`/`&mut self` of this !Sync type, and the
// registration's own parts are thread-agnostic handles (may's event data, an Arc'd timer slot).
unsafe impl Send for Socket {}

// Unwind safety, as for `zmq::Socket`: the interior mutability (the fd cache and the
// registration) holds no invariant a panic could break half-way; at any point each is either
// empty or a valid handle.
impl std::panic::UnwindSafe for Socket {}
impl std::panic::RefUnwindSafe for Socket {}

/// Something that can be sent over a green [`Socket`]; the green counterpart of `zmq::Sendable`.
///
/// Every `T: Into<Message>` is `Sendable` (`&[u8]`, `Vec<u8>`, `&str`, `String` via `&String`,
/// `Message`...).
pub trait Sendable {
    /// Sends `self` over `socket` as one message part.
    fn send(self, socket: &Socket, flags: i32) -> Result<()>;
}

impl<T> Sendable for T
where
    T: Into<Message>,
{
    fn send(self, socket: &Socket, flags: i32) -> Result<()> {
        socket.send_message(self.into(), flags)
    }
}

impl Socket {
    pub(crate) fn from_zmq(inner: zmq::Socket, raw: *mut c_void, context: Option<Context>) -> Self {
        Socket {
            registration: RefCell::new(Registration::default()),
            fd: Cell::new(None),
            in_message: Cell::new(false),
            inner: ManuallyDrop::new(inner),
            raw,
            context,
            monitor_links: monitor::MonitorLinks::default(),
        }
    }

    /// Consumes the socket and returns the raw libzmq socket pointer, as
    /// `zmq::Socket::into_raw` does (the caller must close it, or pass it to `from_raw`).
    ///
    /// A monitor started by [`get_monitor_socket`](Socket::get_monitor_socket) on this socket
    /// (or, on a monitor socket, the monitoring it reads) stops first: once raw, the socket's
    /// closing can no longer be seen.
    pub fn into_raw(mut self) -> *mut c_void {
        self.monitor_links.end();
        self.registration.get_mut().release();
        drop(self.context.take());
        // SAFETY: `self` is forgotten right below, so `inner` is taken out exactly once and
        // never dropped in place; the registration (released) and context (taken) own nothing.
        let inner = unsafe { ManuallyDrop::take(&mut self.inner) };
        std::mem::forget(self);
        inner.into_raw()
    }

    /// Creates a green socket from a raw libzmq socket pointer, taking ownership of it.
    ///
    /// # Safety
    /// As for `zmq::Socket::from_raw`: `sock` must be a live libzmq socket (for instance from
    /// [`Socket::into_raw`]) that nothing else closes or uses concurrently.
    pub unsafe fn from_raw(sock: *mut c_void) -> Socket {
        // SAFETY: forwarded to the caller's contract above.
        let inner = unsafe { zmq::Socket::from_raw(sock) };
        Socket::from_zmq(inner, sock, None)
    }

    /// Returns the raw libzmq socket pointer (still owned by this socket).
    pub fn as_mut_ptr(&mut self) -> *mut c_void {
        self.raw
    }

    /// Accepts connections on `endpoint`.
    pub fn bind(&self, endpoint: &str) -> Result<()> {
        self.inner.bind(endpoint)
    }

    /// Stops accepting connections on `endpoint`.
    pub fn unbind(&self, endpoint: &str) -> Result<()> {
        self.inner.unbind(endpoint)
    }

    /// Connects to `endpoint`.
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        self.inner.connect(endpoint)
    }

    /// Disconnects from a previously connected `endpoint`. `EINVAL` on a monitor socket in use
    /// (see [`get_monitor_socket`](Socket::get_monitor_socket)).
    pub fn disconnect(&self, endpoint: &str) -> Result<()> {
        self.monitor_links.check_disconnect()?;
        self.inner.disconnect(endpoint)
    }

    /// Sends one message part; in a coroutine, parks until the socket can take it.
    ///
    /// Outside any coroutine it is `zmq`'s blocking send, with the same outcome (a send that
    /// has to wait makes one non-blocking try first; one that continues a message does not).
    ///
    /// # Errors
    /// EAGAIN with `DONTWAIT` when the socket cannot take the message now, or when `SNDTIMEO`
    /// passes; every other libzmq error at once (EFSM on a REP that owes no reply, ETERM when
    /// the context is terminated, EHOSTUNREACH for an unroutable `ROUTER_MANDATORY` message...).
    /// A message that was not sent is not lost: the caller still has it (or its copy).
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// use zmqloop_green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let push = ctx.socket(zmq::PUSH).unwrap(); // no peer: a send must wait
    /// push.set_sndtimeo(50).unwrap();
    /// let waiting = zmq::spawn(move || {
    ///     let start = Instant::now();
    ///     let outcome = push.send("nobody takes this", 0); // parks only this coroutine
    ///     (outcome, start.elapsed())
    /// });
    /// let (outcome, waited) = waiting.join().unwrap();
    /// assert_eq!(outcome, Err(zmq::Error::EAGAIN));
    /// assert!(waited >= Duration::from_millis(50));
    /// ```
    pub fn send<T>(&self, data: T, flags: i32) -> Result<()>
    where
        T: Sendable,
    {
        data.send(self, flags)
    }

    /// Sends a `Message`.
    #[deprecated(since = "0.9.0", note = "Use `send` instead")]
    pub fn send_msg(&self, msg: Message, flags: i32) -> Result<()> {
        self.send(msg, flags)
    }

    /// Sends a string.
    #[deprecated(since = "0.9.0", note = "Use `send` instead")]
    pub fn send_str(&self, data: &str, flags: i32) -> Result<()> {
        self.send(data, flags)
    }

    /// Sends a multipart message; every part but the last goes with `SNDMORE`.
    ///
    /// Only the first part can wait: libzmq accepts the rest of a message once its first part
    /// is in, and no other call can run on this socket in between (it is not `Sync`).
    pub fn send_multipart<I, T>(&self, iter: I, flags: i32) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: Into<Message>,
    {
        let mut parts = iter.into_iter().peekable();
        while let Some(part) = parts.next() {
            let more = if parts.peek().is_some() {
                zmq::SNDMORE
            } else {
                0
            };
            self.send_message(part.into(), flags | more)?;
        }
        Ok(())
    }

    /// Receives a message part into `msg`; in a coroutine, parks until one arrives.
    ///
    /// Outside any coroutine it is `zmq`'s blocking receive, with the same outcome (one that
    /// has to wait makes one non-blocking try first).
    ///
    /// # Errors
    /// EAGAIN with `DONTWAIT` when nothing is queued, or when `RCVTIMEO` passes; every other
    /// libzmq error at once (EFSM on a REQ that has not sent its request, ETERM when the
    /// context is terminated...).
    ///
    /// # Examples
    /// ```
    /// use zmqloop_green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = ctx.socket(zmq::PULL).unwrap();
    /// pull.bind("inproc://recv-doc").unwrap();
    /// let push = ctx.socket(zmq::PUSH).unwrap();
    /// push.connect("inproc://recv-doc").unwrap();
    /// let receiver = zmq::spawn(move || {
    ///     let mut msg = zmq::Message::new();
    ///     pull.recv(&mut msg, 0).unwrap(); // parks until the message comes
    ///     msg.as_str().unwrap().to_owned()
    /// });
    /// push.send("hello", 0).unwrap();
    /// assert_eq!(receiver.join().unwrap(), "hello");
    /// ```
    pub fn recv(&self, msg: &mut Message, flags: i32) -> Result<()> {
        self.drive(Direction::Recv, flags, |flags| self.inner.recv(msg, flags))
    }

    /// Receives a message part into `bytes`; returns the part's full length, which is larger
    /// than `bytes.len()` when the part was truncated.
    pub fn recv_into(&self, bytes: &mut [u8], flags: i32) -> Result<usize> {
        self.drive(Direction::Recv, flags, |flags| {
            self.inner.recv_into(bytes, flags)
        })
    }

    /// Receives a message part into a new `Message`.
    pub fn recv_msg(&self, flags: i32) -> Result<Message> {
        let mut msg = Message::new();
        self.recv(&mut msg, flags).map(|()| msg)
    }

    /// Receives a message part as bytes.
    pub fn recv_bytes(&self, flags: i32) -> Result<Vec<u8>> {
        self.recv_msg(flags).map(|msg| msg.to_vec())
    }

    /// Receives a message part as a `String`; invalid UTF-8 comes back as the bytes in `Err`.
    pub fn recv_string(&self, flags: i32) -> Result<std::result::Result<String, Vec<u8>>> {
        self.recv_bytes(flags)
            .map(|bytes| String::from_utf8(bytes).map_err(FromUtf8Error::into_bytes))
    }

    /// Receives all parts of a multipart message.
    pub fn recv_multipart(&self, flags: i32) -> Result<Vec<Vec<u8>>> {
        let mut parts = Vec::new();
        let mut msg = Message::new();
        loop {
            self.recv(&mut msg, flags)?;
            parts.push(msg.to_vec());
            if !msg.get_more() {
                return Ok(parts);
            }
        }
    }

    /// Whether this socket's context has begun terminating (`Context::destroy`, or the drop of
    /// its last handle): every call on the socket fails with ETERM from then on, even one made
    /// before libzmq has told this particular socket (it stops the sockets of a context one
    /// by one). A zmqloop extension, not in `zmq`; always false for a socket made with
    /// [`Socket::from_raw`], whose context zmqloop does not know.
    ///
    /// ```
    /// use zmqloop_green as zmq;
    ///
    /// let mut ctx = zmq::Context::new();
    /// let socket = ctx.socket(zmq::PULL).unwrap();
    /// assert!(!socket.is_context_terminated());
    /// let closer = std::thread::spawn(move || {
    ///     // Parks until the termination below reaches this socket.
    ///     assert_eq!(socket.recv_bytes(0), Err(zmq::Error::ETERM));
    ///     assert!(socket.is_context_terminated());
    /// });
    /// ctx.destroy().unwrap(); // returns once the socket above is closed
    /// closer.join().unwrap();
    /// ```
    pub fn is_context_terminated(&self) -> bool {
        self.context.as_ref().is_some_and(Context::is_terminating)
    }

    /// Creates a [`PollItem`] for this socket.
    pub fn as_poll_item(&self, events: PollEvents) -> PollItem<'_> {
        PollItem::from_socket(self, events)
    }

    /// Sends an owned message under the readiness rule; the message survives every EAGAIN.
    fn send_message(&self, mut msg: Message, flags: i32) -> Result<()> {
        self.drive_send(flags, |flags| raw::send_msg(self.raw, &mut msg, flags))
    }

    pub(crate) fn raw_socket(&self) -> *mut c_void {
        self.raw
    }

    /// The notification fd, cached after the first read.
    pub(crate) fn notification_fd(&self) -> Result<RawFd> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd);
        }
        let fd = self.inner.get_fd()?;
        self.fd.set(Some(fd));
        Ok(fd)
    }

    /// The scheduler registration, held for the whole of one wait.
    ///
    /// EBUSY if another wait on this socket holds it: only hub tasks sharing the socket
    /// through an `Rc` can get here (a `Socket` is not `Sync`), and a socket has one waiter at a
    /// time, as in pyzmq's green sockets.
    pub(crate) fn registration(&self) -> Result<RefMut<'_, Registration>> {
        self.registration.try_borrow_mut().map_err(|_| {
            log::debug!("zmqloop: two tasks waiting on one socket at once; the second gets EBUSY");
            zmq::Error::EBUSY
        })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // Monitoring stops before either socket of a monitor pair closes (libzmq #3575).
        self.monitor_links.end();
        // The registration goes first: once `inner` is closed, libzmq's reaper closes the fd
        // and may hand its number to a new socket.
        self.registration.get_mut().release();
        // SAFETY: `inner` is dropped exactly once, here; `into_raw` forgets `self` instead.
        unsafe { ManuallyDrop::drop(&mut self.inner) };
    }
}

impl AsRawFd for Socket {
    /// The notification fd (`ZMQ_FD`), as for `zmq::Socket`.
    fn as_raw_fd(&self) -> RawFd {
        self.get_fd().expect("zmqloop: cannot read ZMQ_FD")
    }
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}
