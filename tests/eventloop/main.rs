//! `zmqloop::eventloop`: the contract of [`IOLoop`] and [`ZmqStream`], every test bounded in
//! time. One test binary, one file per subject:
//!
//! - `handlers`: socket (`Rc<Socket>`) and plain-fd handlers get their events, refuse a second
//!   registration (EBUSY), pause with empty events, stop when removed.
//! - `callbacks`: run on the next iteration; one added by a callback waits for the following
//!   iteration; pending callbacks keep the poll from waiting, yet a busy callback chain does not
//!   starve ready handlers; `IOLoopHandle` wakes a waiting loop from another thread (callback
//!   on the loop thread) and stops it.
//! - `timeouts`: `call_later`/`call_at` in deadline order (ties in insertion order), never
//!   early; cancel / `remove_timeout`.
//! - `periodic`: `PeriodicCallback` (start/stop/is_running, one tick per period, missed ticks
//!   skipped, not bunched); `add_timer` with a count and until cancelled; tickets (delay, reset,
//!   cancel).
//! - `lifecycle`: stop before start, start/stop/start, `close` drops handlers, callbacks and
//!   timeouts, ETERM ends `start` with `Ok` quietly (a handler removed by another's ETERM
//!   report is not told), panicking handlers/callbacks/timeouts are logged and the loop goes on.
//! - `stream`: ZmqStream's whole multipart messages, pause/resume without loss, send callbacks
//!   (per stream and per send) in order, `flush` counts and limits, state queries, panicking
//!   receive callback, ROUTER_MANDATORY errors not blocking the queue, fairness between busy
//!   streams; a busy stream alone on its loop (several messages per pass, no polls) still lets
//!   in a ready handler, a due timeout, remote callbacks and a remote stop.
//! - `stream_teardown`: a stream closed by one of its callbacks in the middle of a pass receives nothing
//!   more; sends queued behind the message `close` waits on (in another hub task) do not
//!   overtake it, nor does the loop spin meanwhile; a busy stream dropped while its next pass
//!   is queued (its handler paused), or while its stalled send is retried on a timer, or idle
//!   from the start, lets go of its socket when dropped.
//! - `send_waits`: queued sends wait for the socket: REQ and REP until their pattern allows
//!   (EFSM), DEALER at its high-water mark until the peer reads; only errors that will not go
//!   away (EHOSTUNREACH on ROUTER_MANDATORY, ENOTSUP) drop a message, and only that one; the
//!   send queue's limit refuses a send at once with EAGAIN.
//! - `stream_msgs`: zero-copy frames: `on_recv_msgs` gets the bytes sent; large frames cross a
//!   stream without a copy both ways (proved by pointer over inproc), as do the byte sends no
//!   callback watches; a refused or unsendable message send hands its messages back intact;
//!   byte and message sends keep one order, each reporting to its own kind of callback.
//! - `stream_close`: `close` with linger (delivers, or reports every undelivered message), close
//!   callback once, callbacks run by `close` using the stream, a dropped stream freeing its
//!   socket, ETERM with streams (quiet, and nothing left holding a socket).
//! - `current`: `IOLoop::current` is one loop per plain thread, per may coroutine (two on ONE
//!   worker each run their own) and per hub task; `make_current`, `clear_current`; a closed
//!   current loop stays current; a place's loop goes with the place (inside a coroutine or hub
//!   task before its join returns; after a `may::go!` coroutine's end without blocking the
//!   worker); streams and timers on it.
//! - `green`: the same loop inside a may coroutine (on ONE worker) and inside a hub task parks
//!   only that coroutine/task, is woken by what other hub tasks add, and ends with `Ok` on
//!   ETERM.
//! - `waiting`: what other hub tasks (or a coroutine on the loop's worker) change while the
//!   loop waits in its poll (handlers added, paused, resumed, removed; streams made, flushed,
//!   stopped, closed; the loop closed) takes effect at once, without a panic; removed handlers
//!   are never called again and their sockets are let go when the removal returns.
//!
//! This file holds the harness they share. Some tests reproduce bugs found while writing them;
//! the library is fixed, and they guard against regressions.
//!
//! Plain-thread loops run on a spawned thread under [`within`]: a hang fails the test with
//! "hung" instead of stalling the suite. Assertions are made outside loop callbacks, because
//! the loop catches (and logs) panics of callbacks by design. The suite shares `tests/common`
//! with the other test binaries.

#[path = "../common/mod.rs"]
mod common;

mod callbacks;
mod current;
mod green;
mod handlers;
mod lifecycle;
mod periodic;
mod send_waits;
mod stream;
mod stream_close;
mod stream_msgs;
mod stream_teardown;
mod timeouts;
mod waiting;

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use zmqloop::eventloop::{Frames, IOLoop, ZmqStream};
use zmqloop::green as zmq;
use zmqloop::green::hub::Hub;

/// Bound of each plain-thread test body.
const LIMIT: Duration = Duration::from_secs(30);

/// Runs `body` on a fresh thread (the loop thread) and waits at most `limit` for it.
///
/// # Panics
/// With the body's own panic, or with "hung" if it did not finish within `limit`.
fn within<T, F>(limit: Duration, body: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    common::logs::capture();
    common::on_thread(limit, body)
}

/// Runs `body` as the main task of a hub on a fresh thread, under [`LIMIT`].
fn on_hub<T, F>(body: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    within(LIMIT, move || {
        let hub = Hub::new().unwrap();
        hub.block_on(body)
    })
}

/// A record shared with loop callbacks.
type Seen<T> = Rc<RefCell<Vec<T>>>;

fn seen<T>() -> Seen<T> {
    Rc::new(RefCell::new(Vec::new()))
}

fn counter() -> Rc<Cell<usize>> {
    Rc::new(Cell::new(0))
}

fn bump(count: &Cell<usize>) -> usize {
    count.set(count.get() + 1);
    count.get()
}

/// A [`counter`] and a callback that bumps it.
fn counting() -> (Rc<Cell<usize>>, impl Fn() + 'static) {
    let count = counter();
    let c = count.clone();
    (count, move || {
        bump(&c);
    })
}

/// Runs `ioloop` until nothing holds `socket` any more (checked every millisecond from inside
/// the loop) and stops it then; fails the test if something still holds it after `limit`:
/// for a stream that must let go of its socket.
fn run_until_released<T: 'static>(ioloop: &IOLoop, socket: &std::rc::Weak<T>, limit: Duration) {
    let deadline = Instant::now() + limit;
    let released = Rc::new(Cell::new(false));
    let check = {
        let (socket, released, stopper) = (socket.clone(), released.clone(), ioloop.clone());
        zmqloop::eventloop::PeriodicCallback::new(ioloop, ms(1), move || {
            released.set(socket.upgrade().is_none());
            if released.get() || Instant::now() >= deadline {
                stopper.stop();
            }
        })
    };
    check.start();
    ioloop.start().unwrap();
    check.stop();
    assert!(
        released.get(),
        "the loop still holds the socket of a dropped stream after {limit:?}"
    );
}

/// Stops `ioloop` after `delay` (an observation window for things that must NOT happen).
fn stop_after(ioloop: &IOLoop, delay: Duration) {
    let stopper = ioloop.clone();
    ioloop.call_later(delay, move || stopper.stop());
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A receiver that gets `()` when `ioloop` runs its first iteration (after which it waits, if
/// nothing else is due).
fn started_signal(ioloop: &IOLoop) -> mpsc::Receiver<()> {
    let (started_tx, started_rx) = mpsc::channel();
    ioloop.add_callback(move || started_tx.send(()).unwrap());
    started_rx
}

/// A flag that `ioloop` raises in its first iteration.
fn started_flag(ioloop: &IOLoop) -> Rc<Cell<bool>> {
    let flag = Rc::new(Cell::new(false));
    let f = flag.clone();
    ioloop.add_callback(move || f.set(true));
    flag
}

/// Lets the other tasks of this hub run until `flag` is raised. Hub tasks take turns on one
/// thread: once the [`started_flag`] of a loop run by another task is raised, that task is
/// parked in the loop's poll whenever this one runs (if the loop has nothing else due).
fn hub_wait_for(flag: &Cell<bool>) {
    while !flag.get() {
        zmqloop::green::hub::yield_now();
    }
}

/// Terminates `ctx` on another thread once `ioloop` has run its first iteration (`destroy`
/// blocks until every socket is closed: it cannot run on the loop thread); the receiver gets
/// its outcome.
fn destroy_once_started(ioloop: &IOLoop, ctx: &zmq::Context) -> mpsc::Receiver<zmq::Result<()>> {
    let started = started_signal(ioloop);
    let mut terminator = ctx.clone();
    let (destroyed_tx, destroyed_rx) = mpsc::channel();
    thread::spawn(move || {
        started.recv().unwrap();
        let _ = destroyed_tx.send(terminator.destroy());
    });
    destroyed_rx
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2() writes.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2 failed");
    // SAFETY: both fds are new and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn write_byte(fd: &OwnedFd, byte: u8) {
    // SAFETY: writes one byte from a valid buffer to a pipe this test owns.
    let n = unsafe { libc::write(fd.as_raw_fd(), [byte].as_ptr().cast(), 1) };
    assert_eq!(n, 1, "pipe write failed");
}

/// Reads what is in the (non-blocking) pipe.
fn read_available(fd: RawFd) -> Vec<u8> {
    let mut buf = [0u8; 64];
    // SAFETY: reads at most 64 bytes into a valid buffer from a pipe this test owns.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    buf[..usize::try_from(n).unwrap_or(0)].to_vec()
}

/// A plain (not on the loop) socket's next message, failing instead of hanging.
fn recv_within(socket: &zmq::Socket, timeout: Duration) -> Frames {
    socket.set_rcvtimeo(timeout.as_millis() as i32).unwrap();
    socket
        .recv_multipart(0)
        .unwrap_or_else(|err| panic!("nothing received within {timeout:?}: {err}"))
}

fn frames(parts: &[&str]) -> Frames {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// Registers a PULL socket, bound to a fresh inproc endpoint named after `name`, on `ioloop`
/// with a handler that does nothing and does not capture the loop: the loop's handlers own the
/// only reference to the socket, released by `close`.
fn add_idle_pull_handler(ctx: &zmq::Context, ioloop: &IOLoop, name: &str) {
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind(&common::inproc(name)).unwrap();
    ioloop
        .add_handler(Rc::new(pull), zmq::POLLIN, |_| {})
        .unwrap();
}

/// Counts the loop's iterations with a timeout that is due at once and re-adds itself.
fn count_iterations(ioloop: &IOLoop, count: Rc<Cell<usize>>) {
    let next = ioloop.clone();
    ioloop.call_at(Instant::now(), move || {
        bump(&count);
        count_iterations(&next, count);
    });
}

/// A ROUTER with `ROUTER_MANDATORY` bound to a fresh inproc endpoint named after `name`, and a
/// DEALER with the routing id `known` connected to it, which has sent it `hello` (still queued
/// in the ROUTER: once received, the ROUTER knows the peer).
fn router_mandatory_and_known_peer(ctx: &zmq::Context, name: &str) -> (zmq::Socket, zmq::Socket) {
    let endpoint = common::inproc(name);
    let router = ctx.socket(zmq::ROUTER).unwrap();
    router.set_router_mandatory(true).unwrap();
    router.bind(&endpoint).unwrap();
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.set_identity(b"known").unwrap();
    dealer.connect(&endpoint).unwrap();
    dealer.send("hello", 0).unwrap();
    (router, dealer)
}

/// A stream on a `kind` socket bound to a fresh inproc endpoint named after `name`, and the
/// `peer` socket connected to it (not on the loop).
fn stream_and_peer(
    ctx: &zmq::Context,
    ioloop: &IOLoop,
    name: &str,
    kind: zmq::SocketType,
    peer: zmq::SocketType,
) -> (ZmqStream, zmq::Socket) {
    let (near, far) = common::socket_pair(ctx, name, kind, peer);
    (ZmqStream::new(near, ioloop).unwrap(), far)
}

/// A bound PULL stream and the PUSH socket connected to it (not on the loop).
fn pull_stream(ctx: &zmq::Context, ioloop: &IOLoop, name: &str) -> (ZmqStream, zmq::Socket) {
    stream_and_peer(ctx, ioloop, name, zmq::PULL, zmq::PUSH)
}

/// A stream that records each message it receives and stops the loop at the `count`th.
fn receive_count(stream: &ZmqStream, count: usize) -> Seen<Frames> {
    let got: Seen<Frames> = seen();
    let (record, stopper) = (got.clone(), stream.ioloop().clone());
    stream.on_recv(move |frames| {
        record.borrow_mut().push(frames);
        if record.borrow().len() == count {
            stopper.stop();
        }
    });
    got
}
