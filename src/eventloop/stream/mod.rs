//! [`ZmqStream`]: a socket on an [`IOLoop`] driven by callbacks (pyzmq's ZMQStream).
//!
//! A pass makes one round, at most one receive then at most one send, each tried with
//! `DONTWAIT` (the try is the readiness check: an `EAGAIN` costs one libzmq call, where reading
//! `ZMQ_EVENTS` would cost a syscall per pass). A pass that made progress schedules the next one
//! as a loop callback, so a busy stream moves one message per loop iteration and two busy
//! streams take turns; while that pass is queued the stream's handler is paused (the pass tries
//! the socket anyway, and a loop none of whose handlers asks for events skips its polls). While
//! the loop has nothing else to do (no other callback, no handler asking for events, no timeout,
//! no stop: `IOLoop::has_nothing_else`) a pass goes on with further rounds, up to `PASS_BATCH`
//! (32), sparing the loop's iterations; anything else to do makes it one round again.
//! A pass that made no progress leaves the stream to the loop's poll, registered for exactly
//! what it still wants (input while a receive callback is set, output while sends are queued).
//!
//! As pyzmq's documentation says of `ZMQStream.send`, a queued message waits until the socket
//! can send it: at the high-water mark (EAGAIN), and while the socket's pattern forbids sending
//! (EFSM: a REQ awaiting its reply, a REP before its request), it stays first in the queue and
//! goes when the socket allows. Only errors that will not go away (EHOSTUNREACH on a
//! `ROUTER_MANDATORY` socket, ENOTSUP, ETERM...) are reported to its callback and drop it: the
//! whole errno table is in `sending.rs`, and in [`ZmqStream::send_multipart`]'s errors.
//!
//! A send never spins on a `POLLOUT` that lies. ROUTER with `ROUTER_MANDATORY` (a full peer
//! while another has room), STREAM and PUB/XPUB with `XPUB_NODROP` report `POLLOUT` while a send
//! to a full peer fails with EAGAIN; a stream that polled for `POLLOUT` again would make the
//! loop return from its poll at once, forever (pyzmq's ZMQStream does). Here a send that meets
//! EAGAIN reads `ZMQ_EVENTS` once and tries once more if `POLLOUT` shows; if that fails too, the
//! stream stops asking for `POLLOUT` and watches its socket's notification fd with an fd handler
//! until the fd signals (the full peer made room, or anything else reached the socket), then
//! tries again: the loop sleeps meanwhile, the message stays first in the queue (nothing is lost
//! or reordered), and the stream keeps receiving. `sending.rs` has the rule and the watch.
//!
//! Unlike pyzmq, the queue can be bounded ([`ZmqStream::set_send_queue_limit`]): a send beyond
//! the limit is refused at once with EAGAIN, so a producer faster than its peer learns it
//! instead of growing memory without bound; [`ZmqStream::queued`] says how many wait.
//!
//! Where pyzmq falls short, this does not: a panicking callback is logged and the stream goes
//! on; a send that fails for good (e.g. `EHOSTUNREACH` on a `ROUTER_MANDATORY` socket) is
//! reported to its callback and dropped instead of blocking the queue; `close` flushes queued
//! sends within its linger (waiting for the socket's fd, never for `POLLOUT`) and reports every
//! message it could not send.
//!
//! # Zero-copy frames (pyzmq's `copy=False`)
//!
//! Two kinds of callbacks and sends, which a stream mixes freely:
//! - Bytes, for convenience: [`on_recv`](ZmqStream::on_recv) gets each frame copied out into a
//!   `Vec<u8>`, [`send_multipart`](ZmqStream::send_multipart) takes byte frames, and the send
//!   callbacks ([`on_send`](ZmqStream::on_send), `send_multipart_with`) see the frames sent.
//! - Messages, without copies: [`on_recv_msgs`](ZmqStream::on_recv_msgs) gets the
//!   `zmq::Message`s as libzmq handed them, and [`send_msgs`](ZmqStream::send_msgs) takes
//!   messages, or anything `Into<Message>` (a `Vec<u8>` is moved in, not copied), and hands them
//!   to libzmq as they are. So an echo (`stream.send_msgs(msgs)` in the receive callback) copies
//!   no byte; the stream even reuses the `Vec` of a message libzmq took for its next receive.
//!
//! A message libzmq takes is gone (`zmq::Message` has no `Clone`, and sharing it would cost a
//! reference count per frame): a message send reports `Ok(())` on success, and on failure hands
//! the messages back, intact, in an [`Unsent`] (a failed `DONTWAIT` send leaves them untouched),
//! to its own callback ([`send_msgs_with`](ZmqStream::send_msgs_with)) or else to the stream's
//! [`on_send_msgs`](ZmqStream::on_send_msgs). Each send reports to one callback at most: its
//! own, else the stream's callback of its kind if one is set when it leaves the queue (with
//! neither, nobody is told).
//!
//! A byte send keeps its frames only while a callback will see them: then each try copies them
//! into new messages, as before. With no callback for it (no `send_multipart_with`, no
//! `on_send` when it is tried), the try moves the frames into messages instead, without copying
//! those over 33 bytes (smaller ones are copied into libzmq's inline storage, which is cheaper
//! than the allocation a moved buffer costs libzmq). `outgoing.rs` has the queued message and
//! this rule.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use zmqloop_green::{Message, PollEvents, Socket, POLLIN, POLLOUT};

use super::ioloop::IOLoop;
use outgoing::{ByteFrames, MsgsDone, Outgoing, Refused, SendDone};
use sending::{send_now, send_within, SendWait};

pub use outgoing::Unsent;

mod outgoing;
mod pass;
mod sending;

/// A received multipart message: one `Vec<u8>` per frame.
pub type Frames = Vec<Vec<u8>>;

type BytesRecvCallback = Rc<RefCell<dyn FnMut(&ZmqStream, Frames)>>;
type MsgsRecvCallback = Rc<RefCell<dyn FnMut(&ZmqStream, Vec<Message>)>>;

/// The receive callback: of bytes (`on_recv`) or of messages (`on_recv_msgs`).
#[derive(Clone)]
enum RecvCallback {
    /// Gets each message's frames copied out as bytes.
    Bytes(BytesRecvCallback),
    /// Gets each message's frames as libzmq handed them.
    Msgs(MsgsRecvCallback),
}

impl RecvCallback {
    /// Whether the callback is running (it called `flush` itself): it cannot be called again.
    fn busy(&self) -> bool {
        match self {
            RecvCallback::Bytes(callback) => callback.try_borrow_mut().is_err(),
            RecvCallback::Msgs(callback) => callback.try_borrow_mut().is_err(),
        }
    }
}

type SendCallback = Rc<RefCell<dyn FnMut(&ZmqStream, &[Vec<u8>], &zmqloop_green::Result<()>)>>;
type MsgsSendCallback = Rc<RefCell<dyn FnMut(&ZmqStream, Result<(), Unsent>)>>;

/// A stream's state, shared by its [`ZmqStream`] handles; the loop's handlers of the stream
/// hold it weakly, so a stream whose handles are all dropped leaves the loop (`Drop`).
struct StreamInner {
    /// The loop the stream runs on (a strong handle: the loop holds nothing strong of the
    /// stream, so there is no cycle).
    ioloop: IOLoop,
    /// The socket; `None` exactly once the stream is closed, and for good. While it is `Some`,
    /// the loop's handler made by `new` holds the other `Rc` until `close` removes both (or the
    /// loop's own `close` removes the handler: the stream then logs that it cannot rearm).
    socket: RefCell<Option<Rc<Socket>>>,
    /// The receive callback, `Some` while one is set (`receiving`): an open stream then polls
    /// for `POLLIN` (outside a pass). Cloned out before each call, so that a callback may
    /// replace itself.
    on_recv: RefCell<Option<RecvCallback>>,
    /// The send callback of byte sends queued without their own; cloned out before each call.
    /// Read before each try of such a send: while it is `None` the try moves the frames into
    /// messages instead of keeping them (module doc).
    on_send: RefCell<Option<SendCallback>>,
    /// Outcomes for the send callback made while it runs (it sent from inside itself, and the
    /// send was refused at once): handed to it, in order, as soon as it returns, so that it is
    /// never re-entered and no outcome is lost. Empty whenever no send callback runs.
    reports_waiting: RefCell<VecDeque<(Frames, zmqloop_green::Result<()>)>>,
    /// The send callback of message sends queued without their own; cloned out before each
    /// call.
    on_send_msgs: RefCell<Option<MsgsSendCallback>>,
    /// `reports_waiting` for `on_send_msgs`: outcomes of message sends made while it runs.
    msgs_reports_waiting: RefCell<VecDeque<Result<(), Unsent>>>,
    /// The `Vec` each receive fills, so that receiving allocates none: empty (no frame) but
    /// for the span of one receive; a message callback takes it, and a message send that libzmq
    /// took gives its own back (`recycle`). Never borrowed while a callback runs.
    recv_buffer: RefCell<Vec<Message>>,
    /// Run once by `close`, taken out before it runs.
    on_close: RefCell<Option<Box<dyn FnOnce()>>>,
    /// The messages libzmq has not taken yet, in order: the first stays first until libzmq
    /// takes it or refuses it for good, and each leaves with exactly one report. Empty once
    /// closed (a send then is reported ENOTSOCK at once). Never borrowed while a callback runs.
    /// No send makes it longer than `send_queue_limit` (a lower limit set later lets it drain).
    queue: RefCell<VecDeque<Outgoing>>,
    /// The most messages `queue` takes (`set_send_queue_limit`): a send that finds it that long
    /// is refused with EAGAIN at once. `None` (the default): unbounded, as pyzmq.
    send_queue_limit: Cell<Option<usize>>,
    /// What the first queued send waits on if it met a lying `POLLOUT` (module doc); ended by
    /// `close`, or by `Drop` if the stream is dropped without it.
    send_wait: SendWait,
    /// The events the loop's handler waits for: what `rearm` last gave `update_handler` (empty
    /// at first). `rearm` changes the handler only when what the stream wants differs.
    registered: Cell<PollEvents>,
    /// A pass is queued as a loop callback: at most one is, so a busy stream costs one
    /// callback per iteration.
    pass_scheduled: Cell<bool>,
    /// A pass is running: sends queued meanwhile are its business (it sends and rearms after),
    /// so they schedule nothing.
    in_pass: Cell<bool>,
    /// `close` is sending the queue: it holds the first message (possibly parked in another
    /// task, within its linger), so passes send nothing, and do not poll for `POLLOUT`, until
    /// it ends. Never cleared: the stream is closed once `close` returns.
    closing: Cell<bool>,
    /// The callback that runs a pass, queued by reference (no allocation per pass); it holds
    /// the stream weakly (no cycle through the loop).
    pass_callback: Rc<dyn Fn()>,
}

/// A socket on an [`IOLoop`], with queued sends and receive/send callbacks. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use zmqloop::eventloop::{IOLoop, ZmqStream};
/// use zmqloop::green as zmq;
///
/// let ctx = zmq::Context::new();
/// let ioloop = IOLoop::new().unwrap();
/// let server = ctx.socket(zmq::REP).unwrap();
/// server.bind("inproc://stream-doc").unwrap();
/// let client = ctx.socket(zmq::REQ).unwrap();
/// client.connect("inproc://stream-doc").unwrap();
///
/// let echo = ZmqStream::new(server, &ioloop).unwrap();
/// echo.on_recv_stream(|stream, frames| stream.send_multipart(frames));
/// let client = ZmqStream::new(client, &ioloop).unwrap();
/// let stopper = ioloop.clone();
/// client.on_recv(move |frames| {
///     assert_eq!(frames, vec![b"hello".to_vec()]);
///     stopper.stop();
/// });
/// client.send("hello");
/// ioloop.start().unwrap();
/// ```
#[derive(Clone)]
pub struct ZmqStream {
    /// The stream itself; every clone shares it.
    inner: Rc<StreamInner>,
}

/// A stream whose every handle is dropped without `close` leaves the loop at once, whatever
/// its handler waits for (nothing: a stream that never asked for events, a busy one whose next
/// pass is queued, one whose stalled send is retried on a timer): this is the only place that
/// does it, as the handlers hold the stream weakly and do nothing once it is gone. Leaving the
/// loop drops the socket (unless its owner holds it).
impl Drop for StreamInner {
    fn drop(&mut self) {
        let socket = self.socket.get_mut().take();
        if let Some(socket) = socket {
            self.send_wait.end(&self.ioloop); // before the socket (and its fd) closes
            let _ = self.ioloop.remove_handler(&socket);
        }
    }
}

fn log_panic(what: &str, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::error!("zmqloop: a ZmqStream {what} callback panicked; the stream goes on");
    }
}

impl ZmqStream {
    /// Puts `socket` on `ioloop`: the stream owns it from now on (through
    /// [`socket`](ZmqStream::socket) it can still be read or set), and nothing is received
    /// until a receive callback is set ([`on_recv`](ZmqStream::on_recv)). The loop need not run
    /// yet; it may also be waiting, in another hub task or coroutine of this thread.
    ///
    /// # Errors
    /// As [`IOLoop::add_handler`]: the socket's own error if its fd cannot be read (ETERM once
    /// its context is terminated), or an OS error if the loop's epoll set refuses the fd. The
    /// socket is then closed.
    ///
    /// # Examples
    /// ```
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let ioloop = IOLoop::new()?;
    /// let socket = ctx.socket(zmq::PULL)?;
    /// socket.bind("inproc://stream-new-doc")?;
    /// let stream = ZmqStream::new(socket, &ioloop)?;
    /// assert!(!stream.receiving() && !stream.sending());
    /// assert_eq!(stream.socket().unwrap().get_socket_type()?, zmq::PULL);
    /// stream.close(None);
    /// assert!(stream.closed() && stream.socket().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(socket: Socket, ioloop: &IOLoop) -> zmqloop_green::Result<ZmqStream> {
        let socket = Rc::new(socket);
        let inner = Rc::new_cyclic(|weak_pass: &Weak<StreamInner>| StreamInner {
            ioloop: ioloop.clone(),
            socket: RefCell::new(Some(socket.clone())),
            on_recv: RefCell::new(None),
            on_send: RefCell::new(None),
            reports_waiting: RefCell::new(VecDeque::new()),
            on_send_msgs: RefCell::new(None),
            msgs_reports_waiting: RefCell::new(VecDeque::new()),
            recv_buffer: RefCell::new(Vec::new()),
            on_close: RefCell::new(None),
            queue: RefCell::new(VecDeque::new()),
            send_queue_limit: Cell::new(None),
            send_wait: SendWait::default(),
            registered: Cell::new(PollEvents::empty()),
            pass_scheduled: Cell::new(false),
            in_pass: Cell::new(false),
            closing: Cell::new(false),
            pass_callback: {
                let weak_pass = weak_pass.clone();
                Rc::new(move || {
                    if let Some(inner) = weak_pass.upgrade() {
                        inner.pass_scheduled.set(false);
                        ZmqStream { inner }.pass();
                    }
                })
            },
        });
        // Weak: the loop owns the handler. A dropped stream has left the loop (`Drop`).
        let weak: Weak<StreamInner> = Rc::downgrade(&inner);
        ioloop.add_handler(socket, PollEvents::empty(), move |events| {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let stream = ZmqStream { inner };
            if events.contains(zmqloop_green::POLLERR) {
                stream.close_if_terminated();
            } else {
                stream.pass();
            }
        })?;
        Ok(ZmqStream { inner })
    }

    /// The socket (to read or set options), or `None` once closed.
    pub fn socket(&self) -> Option<Rc<Socket>> {
        self.inner.socket.borrow().clone()
    }

    /// The loop this stream runs on.
    pub fn ioloop(&self) -> &IOLoop {
        &self.inner.ioloop
    }

    /// Calls `callback` with every message received (all its frames), on the loop, one
    /// message per round of a pass (module doc: one round, or up to 32 while the loop has
    /// nothing else to do); a callback set again replaces the last one. Messages that arrived
    /// before are received too.
    ///
    /// A panic of the callback is logged (error level) and the stream goes on. A receive that
    /// fails is logged (warn level), except ETERM, which closes the stream quietly.
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = ctx.socket(zmq::PULL)?;
    /// pull.bind("inproc://on-recv-doc")?;
    /// let push = ctx.socket(zmq::PUSH)?;
    /// push.connect("inproc://on-recv-doc")?;
    /// push.send_multipart(["key", "value"], 0)?;
    /// push.send("end", 0)?;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let stream = ZmqStream::new(pull, &ioloop)?;
    /// let got = Rc::new(RefCell::new(Vec::new()));
    /// let (seen, stopper) = (got.clone(), ioloop.clone());
    /// stream.on_recv(move |frames| {
    ///     if frames == [b"end"] {
    ///         stopper.stop();
    ///     }
    ///     seen.borrow_mut().push(frames);
    /// });
    /// ioloop.start()?;
    /// assert_eq!(*got.borrow(), [vec![b"key".to_vec(), b"value".to_vec()], vec![b"end".to_vec()]]);
    /// stream.close(None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_recv(&self, mut callback: impl FnMut(Frames) + 'static) {
        self.on_recv_stream(move |_, frames| callback(frames));
    }

    /// Like [`on_recv`](ZmqStream::on_recv), with the stream passed to the callback.
    pub fn on_recv_stream(&self, callback: impl FnMut(&ZmqStream, Frames) + 'static) {
        self.set_on_recv(RecvCallback::Bytes(Rc::new(RefCell::new(callback))));
    }

    /// Calls `callback` with every message received, its frames as the `zmq::Message`s libzmq
    /// handed them, without copying a byte (pyzmq's `on_recv(callback, copy=False)`); they
    /// deref to `[u8]`, and [`send_msgs`](ZmqStream::send_msgs) sends them on as they are.
    /// Otherwise as [`on_recv`](ZmqStream::on_recv), which it replaces (a stream has one
    /// receive callback).
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = ctx.socket(zmq::PULL)?;
    /// pull.bind("inproc://on-recv-msgs-doc")?;
    /// let push = ctx.socket(zmq::PUSH)?;
    /// push.connect("inproc://on-recv-msgs-doc")?;
    /// push.send_multipart(["key", "value"], 0)?;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let stream = ZmqStream::new(pull, &ioloop)?;
    /// let got = Rc::new(RefCell::new(Vec::new()));
    /// let (seen, stopper) = (got.clone(), ioloop.clone());
    /// stream.on_recv_msgs(move |msgs: Vec<zmq::Message>| {
    ///     seen.borrow_mut().extend(msgs.iter().map(|msg| msg.as_str().unwrap().to_owned()));
    ///     stopper.stop();
    /// });
    /// ioloop.start()?;
    /// assert_eq!(*got.borrow(), ["key", "value"]);
    /// stream.close(None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_recv_msgs(&self, mut callback: impl FnMut(Vec<Message>) + 'static) {
        self.on_recv_stream_msgs(move |_, msgs| callback(msgs));
    }

    /// Like [`on_recv_msgs`](ZmqStream::on_recv_msgs), with the stream passed to the callback:
    /// a zero-copy echo is `stream.on_recv_stream_msgs(|stream, msgs| stream.send_msgs(msgs))`.
    pub fn on_recv_stream_msgs(&self, callback: impl FnMut(&ZmqStream, Vec<Message>) + 'static) {
        self.set_on_recv(RecvCallback::Msgs(Rc::new(RefCell::new(callback))));
    }

    fn set_on_recv(&self, callback: RecvCallback) {
        *self.inner.on_recv.borrow_mut() = Some(callback);
        self.schedule_pass(); // messages may be waiting already; the pass re-registers
    }

    /// Stops receiving: messages stay in libzmq (up to the socket's RCVHWM) until a receive
    /// callback is set again.
    pub fn stop_on_recv(&self) {
        *self.inner.on_recv.borrow_mut() = None;
        self.rearm();
    }

    /// Calls `callback(frames, status)` after each byte send queued without its own callback
    /// (`send`, `send_string`, `send_multipart`): `Ok` once libzmq took the message, the error
    /// otherwise. Message sends report to [`on_send_msgs`](ZmqStream::on_send_msgs) instead.
    ///
    /// While it is set, each such send keeps its frames for it (and copies them into messages
    /// at each try); without it they are moved into messages (module doc).
    pub fn on_send(
        &self,
        mut callback: impl FnMut(&[Vec<u8>], &zmqloop_green::Result<()>) + 'static,
    ) {
        self.on_send_stream(move |_, frames, status| callback(frames, status));
    }

    /// Like [`on_send`](ZmqStream::on_send), with the stream passed to the callback.
    pub fn on_send_stream(
        &self,
        callback: impl FnMut(&ZmqStream, &[Vec<u8>], &zmqloop_green::Result<()>) + 'static,
    ) {
        *self.inner.on_send.borrow_mut() = Some(Rc::new(RefCell::new(callback)));
    }

    /// Calls `callback(outcome)` after each message send queued without its own callback
    /// ([`send_msgs`](ZmqStream::send_msgs), [`send_msg`](ZmqStream::send_msg)): `Ok(())` once
    /// libzmq took the message (which is then gone), else an [`Unsent`] with the error and the
    /// messages handed back, intact, to be sent again or dropped.
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let router = ctx.socket(zmq::ROUTER)?;
    /// router.set_router_mandatory(true)?; // an unknown peer is an error, not a silent drop
    /// let ioloop = IOLoop::new()?;
    /// let stream = ZmqStream::new(router, &ioloop)?;
    /// let back = Rc::new(RefCell::new(None));
    /// let seen = back.clone();
    /// stream.on_send_stream_msgs(move |stream, outcome| {
    ///     *seen.borrow_mut() = Some(outcome.unwrap_err());
    ///     stream.ioloop().stop();
    /// });
    /// stream.send_msgs([zmq::Message::from("nobody"), zmq::Message::from(vec![1u8; 64])]);
    /// ioloop.start()?;
    /// let unsent = back.borrow_mut().take().unwrap();
    /// assert_eq!(unsent.error, zmq::Error::EHOSTUNREACH);
    /// assert_eq!(&unsent.msgs[1][..], &[1u8; 64][..]); // intact, to send again
    /// stream.close(None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_send_msgs(&self, mut callback: impl FnMut(Result<(), Unsent>) + 'static) {
        self.on_send_stream_msgs(move |_, outcome| callback(outcome));
    }

    /// Like [`on_send_msgs`](ZmqStream::on_send_msgs), with the stream passed to the callback.
    pub fn on_send_stream_msgs(
        &self,
        callback: impl FnMut(&ZmqStream, Result<(), Unsent>) + 'static,
    ) {
        *self.inner.on_send_msgs.borrow_mut() = Some(Rc::new(RefCell::new(callback)));
    }

    /// Removes both send callbacks (of byte sends and of message sends).
    pub fn stop_on_send(&self) {
        *self.inner.on_send.borrow_mut() = None;
        *self.inner.on_send_msgs.borrow_mut() = None;
    }

    /// Runs `callback` once the stream is closed.
    pub fn set_close_callback(&self, callback: impl FnOnce() + 'static) {
        *self.inner.on_close.borrow_mut() = Some(Box::new(callback));
    }

    /// Queues a one-frame message.
    pub fn send(&self, frame: impl Into<Vec<u8>>) {
        self.send_multipart(vec![frame.into()]);
    }

    /// Queues a one-frame UTF-8 message.
    pub fn send_string(&self, text: &str) {
        self.send(text.as_bytes());
    }

    /// Queues a multipart message; it is sent when the socket can take it, one message per
    /// round of a pass (module doc), in order, and its outcome goes to the send callback ([`on_send`]). Sending never
    /// blocks the loop: a message libzmq cannot take yet stays first in the queue and goes when
    /// the socket allows, whether it lacked room (EAGAIN at the high-water mark; the loop waits,
    /// never spinning on a `POLLOUT` that lies: module doc) or its pattern forbade sending now
    /// (EFSM: a REQ stream queues its next request until the reply to the last one has been
    /// received, a REP stream its reply until a request has been). Either wait costs the loop
    /// nothing while nothing happens on the socket.
    ///
    /// # Errors
    /// Reported to the send callback, never returned or lost; the message then leaves the
    /// queue (the errno table is in `sending.rs`):
    /// - EAGAIN at once, without queueing, when the queue is at its
    ///   [limit](ZmqStream::set_send_queue_limit);
    /// - ENOTSOCK at once on a closed stream;
    /// - the send's error when libzmq refuses the message for good: EHOSTUNREACH from a
    ///   `ROUTER_MANDATORY` socket that does not know the peer, ENOTSUP from a socket type that
    ///   cannot send, EINVAL, ETERM (which also closes the stream), any error but EAGAIN, EFSM
    ///   and EINTR, which only make the message wait.
    ///
    /// [`close`](ZmqStream::close) reports what it could not send.
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = ctx.socket(zmq::PULL)?;
    /// pull.bind("inproc://send-multipart-doc")?;
    /// let push = ctx.socket(zmq::PUSH)?;
    /// push.connect("inproc://send-multipart-doc")?;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let stream = ZmqStream::new(push, &ioloop)?;
    /// let outcomes = Rc::new(RefCell::new(Vec::new()));
    /// let seen = outcomes.clone();
    /// stream.on_send_stream(move |stream, frames, status| {
    ///     seen.borrow_mut().push((frames.len(), *status));
    ///     if seen.borrow().len() == 2 {
    ///         stream.ioloop().stop();
    ///     }
    /// });
    /// stream.send_multipart(["header", "body"]);
    /// stream.send("last");
    /// assert!(stream.sending()); // queued: the loop sends
    /// ioloop.start()?;
    /// assert_eq!(*outcomes.borrow(), [(2, Ok(())), (1, Ok(()))]);
    /// assert_eq!(pull.recv_multipart(0)?, [b"header".to_vec(), b"body".to_vec()]);
    /// assert_eq!(pull.recv_bytes(0)?, b"last");
    /// stream.close(None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`on_send`]: ZmqStream::on_send
    pub fn send_multipart<I, T>(&self, frames: I)
    where
        I: IntoIterator<Item = T>,
        T: Into<Vec<u8>>,
    {
        let frames = frames.into_iter().map(Into::into).collect();
        self.enqueue(Outgoing::Bytes(ByteFrames::Kept(frames)));
    }

    /// Queues a multipart message whose outcome goes to `done` (instead of the stream's send
    /// callback).
    pub fn send_multipart_with<I, T>(
        &self,
        frames: I,
        done: impl FnOnce(&[Vec<u8>], &zmqloop_green::Result<()>) + 'static,
    ) where
        I: IntoIterator<Item = T>,
        T: Into<Vec<u8>>,
    {
        let done: SendDone = Box::new(done);
        let frames = frames.into_iter().map(Into::into).collect();
        self.enqueue(Outgoing::BytesWith(frames, done));
    }

    /// Queues a one-frame message without copying it (see [`send_msgs`](ZmqStream::send_msgs)).
    pub fn send_msg(&self, msg: impl Into<Message>) {
        self.send_msgs([msg.into()]);
    }

    /// Queues a multipart message whose frames are `zmq::Message`s, or anything
    /// `Into<Message>`, and hands them to libzmq as they are: a `Message` (from
    /// [`on_recv_msgs`](ZmqStream::on_recv_msgs), say) or a `Vec<u8>` is not copied (a `Vec`
    /// whose capacity exceeds its length is shrunk first, which may move it); a `&[u8]` or
    /// `&str` is copied once, into its message. Sent as
    /// [`send_multipart`](ZmqStream::send_multipart) sends (in order with every other send,
    /// when the socket can take it); its outcome goes to
    /// [`on_send_msgs`](ZmqStream::on_send_msgs): `Ok(())`, or the error with the messages
    /// handed back ([`Unsent`]).
    ///
    /// # Errors
    /// Those of [`send_multipart`](ZmqStream::send_multipart) (a message waits while the
    /// socket lacks room or its pattern forbids the send; it is refused at once on a closed
    /// stream or a full queue, or by libzmq for good), each reported with the messages handed
    /// back intact.
    ///
    /// # Examples
    /// ```
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = ctx.socket(zmq::PULL)?;
    /// pull.bind("inproc://send-msgs-doc")?;
    /// let push = ctx.socket(zmq::PUSH)?;
    /// push.connect("inproc://send-msgs-doc")?;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let stream = ZmqStream::new(push, &ioloop)?;
    /// let body = vec![42u8; 4096];
    /// let at = body.as_ptr();
    /// stream.send_msgs([zmq::Message::from("header"), zmq::Message::from(body)]);
    /// stream.on_send_stream_msgs(|stream, outcome| {
    ///     assert!(outcome.is_ok());
    ///     stream.ioloop().stop();
    /// });
    /// ioloop.start()?;
    /// let header = pull.recv_msg(0)?;
    /// let body = pull.recv_msg(0)?;
    /// assert_eq!((&header[..], body.len()), (&b"header"[..], 4096));
    /// assert_eq!(body.as_ptr(), at); // inproc: the very buffer, never copied
    /// stream.close(None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_msgs<I, T>(&self, msgs: I)
    where
        I: IntoIterator<Item = T>,
        T: Into<Message>,
    {
        // A `Vec<Message>` is collected in place: no allocation.
        self.enqueue(Outgoing::Msgs(msgs.into_iter().map(Into::into).collect()));
    }

    /// Queues a message send whose outcome goes to `done` (instead of the stream's
    /// [`on_send_msgs`](ZmqStream::on_send_msgs)): `Ok(())`, or the error with the messages
    /// handed back ([`Unsent`]).
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let ioloop = IOLoop::new()?;
    /// let stream = ZmqStream::new(ctx.socket(zmq::PUSH)?, &ioloop)?;
    /// stream.close(None);
    /// let back = Rc::new(RefCell::new(None));
    /// let seen = back.clone();
    /// stream.send_msgs_with([vec![1u8; 100]], move |outcome| *seen.borrow_mut() = Some(outcome));
    /// let unsent = back.borrow_mut().take().unwrap().unwrap_err();
    /// assert_eq!(unsent.error, zmq::Error::ENOTSOCK); // the stream is closed
    /// assert_eq!(&unsent.msgs[0][..], &[1u8; 100][..]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_msgs_with<I, T>(&self, msgs: I, done: impl FnOnce(Result<(), Unsent>) + 'static)
    where
        I: IntoIterator<Item = T>,
        T: Into<Message>,
    {
        let done: MsgsDone = Box::new(done);
        self.enqueue(Outgoing::MsgsWith(
            msgs.into_iter().map(Into::into).collect(),
            done,
        ));
    }

    fn enqueue(&self, outgoing: Outgoing) {
        if let Some(refusal) = self.refuses_sends() {
            self.report(outgoing, Err(refusal));
            return;
        }
        self.inner.queue.borrow_mut().push_back(outgoing);
        // Inside a pass (a receive callback answering) the pass itself sends and re-registers;
        // elsewhere a pass is scheduled. Re-registering here would cost two handler updates
        // per request/reply.
        if !self.inner.in_pass.get() {
            self.schedule_pass();
        }
    }

    /// Why a send now would be refused at once: ENOTSOCK once closed, EAGAIN while the queue
    /// is at its limit.
    fn refuses_sends(&self) -> Option<zmqloop_green::Error> {
        if self.closed() {
            return Some(zmqloop_green::Error::ENOTSOCK);
        }
        let limit = self.inner.send_queue_limit.get();
        limit
            .is_some_and(|limit| self.queued() >= limit)
            .then_some(zmqloop_green::Error::EAGAIN)
    }

    /// How many messages wait in the send queue: queued, not yet taken by libzmq (nor refused).
    /// A message waiting for room or for its pattern counts; one that libzmq took does not,
    /// even if it is still in libzmq's own pipe (up to the socket's `SNDHWM`).
    ///
    /// # Examples
    /// See [`set_send_queue_limit`](ZmqStream::set_send_queue_limit).
    pub fn queued(&self) -> usize {
        self.inner.queue.borrow().len()
    }

    /// Bounds the send queue: with `Some(limit)`, a send that finds [`queued`] at `limit` (or
    /// above) is refused at once: its callback (the per-send one of
    /// [`send_multipart_with`](ZmqStream::send_multipart_with), else the stream's
    /// [`on_send`](ZmqStream::on_send)) gets EAGAIN before the send returns, and the message is
    /// not queued. `None`, the default, leaves the queue unbounded, as pyzmq's. pyzmq has no
    /// such limit: a producer faster than its peer grows the queue without bound there.
    ///
    /// A limit lower than what is queued drops nothing: the queue drains as the socket takes
    /// it, and sends are accepted again once it is below the limit. `Some(0)` refuses every
    /// send. A send refused from inside the stream's own send callback is reported to it as
    /// soon as it returns (a callback is never re-entered).
    ///
    /// # Examples
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = ctx.socket(zmq::PULL)?;
    /// pull.bind("inproc://send-queue-limit-doc")?;
    /// let push = ctx.socket(zmq::PUSH)?;
    /// push.connect("inproc://send-queue-limit-doc")?;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let stream = ZmqStream::new(push, &ioloop)?;
    /// stream.set_send_queue_limit(Some(2));
    /// assert_eq!(stream.send_queue_limit(), Some(2));
    /// stream.send("one");
    /// stream.send("two");
    /// assert_eq!(stream.queued(), 2); // the loop has not run yet
    ///
    /// let refused = Rc::new(RefCell::new(None));
    /// let outcome = refused.clone();
    /// stream.send_multipart_with(["three"], move |frames, status| {
    ///     *outcome.borrow_mut() = Some((frames.to_vec(), *status));
    /// });
    /// // Reported before the send returned, and not queued.
    /// assert_eq!(*refused.borrow(), Some((vec![b"three".to_vec()], Err(zmq::Error::EAGAIN))));
    /// assert_eq!(stream.queued(), 2);
    ///
    /// stream.flush(zmq::POLLOUT, None); // libzmq takes both
    /// assert_eq!(stream.queued(), 0);
    /// stream.send("three"); // accepted again
    /// assert_eq!(stream.queued(), 1);
    /// stream.close(Some(std::time::Duration::from_secs(1)));
    /// for expected in ["one", "two", "three"] {
    ///     assert_eq!(pull.recv_string(0)?.unwrap(), expected);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`queued`]: ZmqStream::queued
    pub fn set_send_queue_limit(&self, limit: Option<usize>) {
        self.inner.send_queue_limit.set(limit);
    }

    /// The send queue's limit ([`set_send_queue_limit`](ZmqStream::set_send_queue_limit));
    /// `None`: unbounded.
    pub fn send_queue_limit(&self) -> Option<usize> {
        self.inner.send_queue_limit.get()
    }

    /// Whether a receive callback is set.
    pub fn receiving(&self) -> bool {
        self.inner.on_recv.borrow().is_some()
    }

    /// Whether sends are queued.
    pub fn sending(&self) -> bool {
        !self.inner.queue.borrow().is_empty()
    }

    /// Whether the stream is closed.
    pub fn closed(&self) -> bool {
        self.inner.socket.borrow().is_none()
    }

    /// Handles pending work now instead of waiting for the loop: up to `limit` messages
    /// (`None`: until nothing is left), receives if `events` has POLLIN, sends if POLLOUT.
    /// Returns how many messages were handled.
    pub fn flush(&self, events: PollEvents, limit: Option<usize>) -> usize {
        let Some(socket) = self.socket() else {
            return 0;
        };
        let mut handled = 0;
        let room = |handled: usize| limit.is_none_or(|limit| handled < limit);
        while room(handled) {
            let mut progress = false;
            if events.contains(POLLIN) && self.receiving() && self.handle_recv(&socket) {
                handled += 1;
                progress = true;
            }
            if room(handled)
                && events.contains(POLLOUT)
                && self.sending()
                && self.handle_send(&socket)
            {
                handled += 1;
                progress = true;
            }
            if !progress || self.closed() {
                break;
            }
        }
        self.rearm();
        handled
    }

    /// Closes the stream: sends what it can of the queue within `linger` (None: do not wait),
    /// reports every message it could not send to its callback, removes the socket from the
    /// loop, closes it with that linger, and runs the close callback. Calling it again does
    /// nothing. Within the linger it waits for room (parking only the caller in a coroutine or
    /// hub task); it may be called while the loop runs, or waits in another task, and the loop
    /// lets go of the socket before `close` returns.
    ///
    /// # Errors
    /// Reported, not returned: each queued message goes to its send callback, with `Ok`, the
    /// send's error, EAGAIN if the linger ran out first, or EFSM if the socket's pattern still
    /// forbade it (a REQ awaiting its reply, a REP its request: `close` receives nothing, so
    /// it does not wait for them). Sends on the stream afterwards are reported ENOTSOCK at once.
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let pull = ctx.socket(zmq::PULL)?;
    /// pull.bind("inproc://close-doc")?;
    /// let push = ctx.socket(zmq::PUSH)?;
    /// push.connect("inproc://close-doc")?;
    ///
    /// let ioloop = IOLoop::new()?;
    /// let stream = ZmqStream::new(push, &ioloop)?;
    /// let closed = Rc::new(Cell::new(false));
    /// let flag = closed.clone();
    /// stream.set_close_callback(move || flag.set(true));
    /// stream.send("queued"); // the loop has not run: still queued
    /// stream.close(Some(Duration::from_secs(1))); // sends it first, within the linger
    /// assert!(closed.get() && stream.closed());
    /// assert_eq!(pull.recv_string(0)?.unwrap(), "queued");
    ///
    /// let late = Rc::new(Cell::new(None));
    /// let outcome = late.clone();
    /// stream.send_multipart_with(["late"], move |_, status| outcome.set(Some(*status)));
    /// assert_eq!(late.get(), Some(Err(zmq::Error::ENOTSOCK)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self, linger: Option<Duration>) {
        let Some(socket) = self.socket() else {
            return;
        };
        let deadline = linger.map(|linger| Instant::now() + linger);
        // From now on passes send nothing (`closing`): the loop stops watching for room, so
        // that a signal for it cannot make the loop spin while this call waits in another task.
        self.inner.closing.set(true);
        self.inner.send_wait.end(&self.inner.ioloop);
        self.rearm();
        loop {
            // Popped in its own statement: the queue must not stay borrowed while callbacks
            // (which may queue more) run.
            let next = self.inner.queue.borrow_mut().pop_front();
            let Some(mut outgoing) = next else {
                break;
            };
            // Bytes kept as bytes: while `send_within` parks, other tasks may set `on_send`.
            outgoing.prepare(true);
            let mut status = send_now(&socket, &mut outgoing);
            let left = deadline.map_or(Duration::ZERO, |d| {
                d.saturating_duration_since(Instant::now())
            });
            let full = |status: &Result<(), Refused>| matches!(status, Err(r) if r.error == zmqloop_green::Error::EAGAIN && !r.broken);
            if full(&status) && !left.is_zero() {
                status = send_within(&socket, &mut outgoing, left);
            }
            self.report(outgoing, status.map_err(|refusal| refusal.error));
        }
        self.inner.send_wait.end(&self.inner.ioloop); // before the socket (and its fd) closes
        let linger_ms = linger.map_or(0, |l| i32::try_from(l.as_millis()).unwrap_or(i32::MAX));
        let _ = socket.set_linger(linger_ms);
        let _ = self.inner.ioloop.remove_handler(&socket);
        *self.inner.socket.borrow_mut() = None;
        drop(socket); // closes it unless the user holds another reference
        let on_close = self.inner.on_close.borrow_mut().take();
        if let Some(on_close) = on_close {
            log_panic("close", on_close);
        }
    }

    /// Closes the stream quietly if its context is gone. Asks the context first: libzmq stops
    /// a context's sockets one by one, so this socket may not have seen ETERM yet when the
    /// loop's poll reports another one's.
    fn close_if_terminated(&self) {
        let Some(socket) = self.socket() else {
            return;
        };
        if socket.is_context_terminated() || socket.get_events() == Err(zmqloop_green::Error::ETERM)
        {
            self.close(None);
        }
    }
}
