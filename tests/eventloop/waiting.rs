//! Changes made while the loop waits: another hub task, or a may coroutine on the loop's worker,
//! adds, pauses, resumes or removes handlers, creates, flushes, stops or closes a stream, or
//! closes the loop while the loop is parked in its poll. Nothing panics; the loop is woken, so
//! the change takes effect at once (a loop that was not woken would sleep until the watchdog
//! stops it); a removed handler is never called again, and the loop's reference to its socket
//! is gone when the removal returns, so that the context can be terminated.

use std::cell::Cell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::io::RawFd;
use std::panic::resume_unwind;
use std::rc::Rc;
use std::thread::{self, ThreadId};
use std::time::Duration;

use zmqloop::green as zmq;
use zmqloop::green::eventloop::{IOLoop, ZmqStream};
use zmqloop::green::hub;

use crate::{
    bump, common, counter, counting, hub_wait_for, ms, on_hub, pipe, pull_stream, read_available,
    seen, started_flag, write_byte, Seen, LIMIT,
};

/// How long a parked loop is left alone before the watchdog stops it: far above the time a
/// woken loop takes to act, far below the test's bound.
const WATCHDOG: Duration = Duration::from_secs(2);

/// How a [`while_parked`] run ended.
struct Parked<T> {
    /// What the change returned.
    out: T,
    /// The watchdog stopped the loop: the change did not take effect at once.
    watchdog: bool,
}

/// Runs `ioloop` in this hub task and `change` in another task once the loop is parked in its
/// poll with nothing due. The loop runs until something stops it: the change's effect, or the
/// watchdog after [`WATCHDOG`]. A panic of the change is raised again here.
fn while_parked<T: 'static>(ioloop: &IOLoop, change: impl FnOnce() -> T + 'static) -> Parked<T> {
    let started = started_flag(ioloop);
    let other = hub::spawn(move || {
        hub_wait_for(&started);
        change()
    });
    let fired = Rc::new(Cell::new(false));
    let (f, handle) = (fired.clone(), ioloop.handle());
    let watchdog = hub::spawn(move || {
        hub::sleep(WATCHDOG);
        f.set(true);
        handle.stop();
    });
    ioloop.start().unwrap();
    watchdog.cancel();
    let out = other.join().unwrap_or_else(|panic| resume_unwind(panic));
    Parked {
        out,
        watchdog: fired.get(),
    }
}

/// Checks that a change succeeded and took effect at once: otherwise `failure` (what did not
/// happen) until the watchdog stopped the loop.
fn assert_at_once(parked: Parked<zmq::Result<()>>, failure: &str) {
    assert_eq!(parked.out, Ok(()));
    assert!(
        !parked.watchdog,
        "{failure} until the watchdog stopped the loop"
    );
}

/// Stops `ioloop` after an observation window in which it runs (for what must NOT happen).
fn stop_after_a_while(ioloop: &IOLoop) {
    hub::sleep(ms(50));
    ioloop.stop();
}

/// A handler that records what `read` returns and stops `ioloop`.
fn recording(
    ioloop: &IOLoop,
    got: &Seen<String>,
    read: impl Fn() -> String + 'static,
) -> impl FnMut(zmq::PollEvents) + 'static {
    let (ioloop, got) = (ioloop.clone(), got.clone());
    move |_| {
        got.borrow_mut().push(read());
        ioloop.stop();
    }
}

/// What a socket's handler reads: its next message.
fn next_message(socket: &Rc<zmq::Socket>) -> impl Fn() -> String + 'static {
    let socket = socket.clone();
    move || socket.recv_string(zmq::DONTWAIT).unwrap().unwrap()
}

/// What an fd's handler reads: the bytes in the pipe.
fn pipe_bytes(fd: RawFd) -> impl Fn() -> String + 'static {
    move || format!("{:?}", read_available(fd))
}

/// What the handler tests watch: a PULL socket with its PUSH peer (named after `name`), and a
/// pipe (read end, write end); the context comes first, to be dropped last.
fn watched(name: &str) -> (zmq::Context, Rc<zmq::Socket>, zmq::Socket, OwnedFd, OwnedFd) {
    let ctx = zmq::Context::new();
    let (pull, push) = common::socket_pair(&ctx, name, zmq::PULL, zmq::PUSH);
    let (reader, writer) = pipe();
    (ctx, Rc::new(pull), push, reader, writer)
}

#[test]
fn handlers_added_while_the_loop_waits_get_their_events_at_once() {
    on_hub(|| {
        let (_ctx, pull, push, reader, writer) = watched("ev-wait-add");
        push.send("waiting", 0).unwrap();
        pull.get_events().unwrap(); // drains its fd: only a wake-up gets the socket polled
        write_byte(&writer, 7);
        let fd = reader.as_raw_fd();

        let ioloop = IOLoop::new().unwrap();
        let got: Seen<String> = seen();
        let (l, handler) = (
            ioloop.clone(),
            recording(&ioloop, &got, next_message(&pull)),
        );
        let parked = while_parked(&ioloop, move || l.add_handler(pull, zmq::POLLIN, handler));
        assert_at_once(parked, "the loop did not poll the new handler's socket");
        assert_eq!(*got.borrow(), ["waiting"]);

        let (l, handler) = (ioloop.clone(), recording(&ioloop, &got, pipe_bytes(fd)));
        let parked = while_parked(&ioloop, move || l.add_fd_handler(fd, zmq::POLLIN, handler));
        assert_at_once(parked, "the new fd handler was not called");
        assert_eq!(*got.borrow(), ["waiting", "[7]"]);
        ioloop.close();
    });
}

#[test]
fn handlers_paused_while_the_loop_waits_stay_quiet_and_resume_at_once() {
    on_hub(|| {
        let (_ctx, pull, push, reader, writer) = watched("ev-wait-pause");
        let fd = reader.as_raw_fd();

        let ioloop = IOLoop::new().unwrap();
        let got: Seen<String> = seen();
        let on_socket = recording(&ioloop, &got, next_message(&pull));
        ioloop
            .add_handler(pull.clone(), zmq::POLLIN, on_socket)
            .unwrap();
        let on_fd = recording(&ioloop, &got, pipe_bytes(fd));
        ioloop.add_fd_handler(fd, zmq::POLLIN, on_fd).unwrap();

        let (l, g) = (ioloop.clone(), got.clone());
        let parked = while_parked(&ioloop, move || {
            let paused = (
                l.update_handler(&pull, zmq::PollEvents::empty()),
                l.update_fd_handler(fd, zmq::PollEvents::empty()),
            );
            push.send("while paused", 0).unwrap();
            write_byte(&writer, 1);
            hub::sleep(ms(50)); // the loop runs meanwhile
            let calls_while_paused = g.borrow().len();
            pull.get_events().unwrap(); // drains its fd: only a wake-up gets the socket polled
            let resumed = l.update_handler(&pull, zmq::POLLIN);
            // Kept open: closing the PUSH socket would signal the PULL socket's fd.
            (paused, calls_while_paused, resumed, (push, writer))
        });
        let (paused, calls_while_paused, resumed, _kept) = parked.out;
        assert_eq!(paused, (Ok(()), Ok(())));
        assert_eq!(calls_while_paused, 0, "a paused handler was called");
        assert_eq!(resumed, Ok(()));
        assert!(
            !parked.watchdog,
            "the loop did not poll the resumed socket until the watchdog stopped it"
        );
        assert_eq!(*got.borrow(), ["while paused"]);

        let l = ioloop.clone();
        let parked = while_parked(&ioloop, move || l.update_fd_handler(fd, zmq::POLLIN));
        assert_at_once(parked, "the resumed fd handler was not called");
        assert_eq!(*got.borrow(), ["while paused", "[1]"]);
        ioloop.close();
    });
}

#[test]
fn handlers_removed_while_the_loop_waits_are_never_called_and_let_go_at_once() {
    on_hub(|| {
        let (_ctx, pull, push, reader, writer) = watched("ev-wait-remove");
        let fd = reader.as_raw_fd();

        let ioloop = IOLoop::new().unwrap();
        let calls = counter();
        let (on_socket, on_fd) = (calls.clone(), calls.clone());
        ioloop
            .add_handler(pull.clone(), zmq::POLLIN, move |_| {
                bump(&on_socket);
            })
            .unwrap();
        ioloop
            .add_fd_handler(fd, zmq::POLLIN, move |_| {
                bump(&on_fd);
            })
            .unwrap();
        let only_ours = Rc::downgrade(&calls); // the handlers hold the counter's other refs

        let l = ioloop.clone();
        let parked = while_parked(&ioloop, move || {
            let removed = l.remove_handler(&pull).map(|back| Rc::ptr_eq(&back, &pull));
            let removed_fd = l.remove_fd_handler(fd);
            let socket_refs = Rc::strong_count(&pull);
            let handler_refs = only_ours.strong_count();
            push.send("after removal", 0).unwrap();
            write_byte(&writer, 1);
            stop_after_a_while(&l);
            (removed, removed_fd, socket_refs, handler_refs, pull, writer)
        });
        let (removed, removed_fd, socket_refs, handler_refs, pull, _writer) = parked.out;
        assert_eq!((removed, removed_fd), (Ok(true), Ok(())));
        assert_eq!(
            socket_refs, 1,
            "the loop still held the socket after remove_handler returned"
        );
        assert_eq!(
            handler_refs, 1,
            "the loop still held the removed handlers after their removal returned"
        );
        assert_eq!(calls.get(), 0, "a removed handler was called");
        assert_eq!(
            pull.recv_string(zmq::DONTWAIT).unwrap().unwrap(),
            "after removal"
        );
        assert_eq!(read_available(fd), vec![1]);
    });
}

#[test]
fn a_stream_made_while_the_loop_waits_receives_at_once() {
    on_hub(|| {
        let ctx = zmq::Context::new();
        let (pull, push) = common::socket_pair(&ctx, "ev-wait-new", zmq::PULL, zmq::PUSH);
        push.send("waiting", 0).unwrap();
        pull.get_events().unwrap(); // drains its fd: only a wake-up gets the socket polled

        let ioloop = IOLoop::new().unwrap();
        let got: Seen<String> = seen();
        let (l, g) = (ioloop.clone(), got.clone());
        let parked = while_parked(&ioloop, move || {
            let stream = ZmqStream::new(pull, &l)?;
            let stopper = l.clone();
            stream.on_recv(move |frames| {
                g.borrow_mut()
                    .push(String::from_utf8_lossy(&frames[0]).into_owned());
                stopper.stop();
            });
            Ok::<_, zmq::Error>(stream)
        });
        let stream = parked.out.unwrap();
        assert!(
            !parked.watchdog,
            "the new stream received nothing until the watchdog stopped the loop"
        );
        assert_eq!(*got.borrow(), ["waiting"]);
        stream.close(None);
    });
}

#[test]
fn a_stream_stopped_while_the_loop_waits_receives_nothing_more() {
    on_hub(|| {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-wait-stop-recv");
        let (calls, on_recv) = counting();
        stream.on_recv(move |_| on_recv());

        let (l, s) = (ioloop.clone(), stream.clone());
        let parked = while_parked(&ioloop, move || {
            s.stop_on_recv();
            push.send("kept in the socket", 0).unwrap();
            stop_after_a_while(&l);
        });
        assert!(!parked.watchdog);
        assert_eq!(
            calls.get(),
            0,
            "a stopped stream's receive callback was called"
        );
        let socket = stream.socket().unwrap();
        assert_eq!(
            socket.recv_string(zmq::DONTWAIT).unwrap().unwrap(),
            "kept in the socket"
        );
        stream.close(None);
    });
}

#[test]
fn a_stream_flushed_while_the_loop_waits_sends_once_it_can() {
    on_hub(|| {
        let ctx = zmq::Context::new();
        let push = ctx.socket(zmq::PUSH).unwrap();
        let endpoint = common::inproc("ev-wait-flush");
        push.bind(&endpoint).unwrap(); // no peer yet: nothing can be sent

        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let (l, s) = (ioloop.clone(), stream.clone());
        let parked = while_parked(&ioloop, move || {
            s.send("queued");
            // Tried now, before the loop's pass: EAGAIN, so the stream asks for POLLOUT.
            let flushed = s.flush(zmq::POLLOUT, None);
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.set_rcvtimeo(1000).unwrap();
            pull.connect(&endpoint).unwrap(); // POLLOUT: the loop sends
            let received = pull.recv_string(0).map(Result::unwrap);
            l.stop();
            (flushed, received)
        });
        assert!(!parked.watchdog);
        assert_eq!(parked.out, (0, Ok("queued".to_owned())));
        assert!(!stream.sending());
        stream.close(None);
    });
}

#[test]
fn a_stream_closed_while_the_loop_waits_lets_its_context_terminate() {
    on_hub(|| {
        let mut ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-wait-close");
        let (calls, on_recv) = counting();
        stream.on_recv(move |_| on_recv());
        let (closes, on_close) = counting();
        stream.set_close_callback(on_close);
        let socket = Rc::downgrade(&stream.socket().unwrap());

        let l = ioloop.clone();
        let parked = while_parked(&ioloop, move || {
            stream.close(None);
            let released = socket.upgrade().is_none();
            drop(push);
            // Waits for every socket of the context to close: only if none is left.
            let destroyed = released.then(|| ctx.destroy());
            l.stop();
            (released, destroyed)
        });
        assert!(!parked.watchdog);
        assert_eq!(
            parked.out,
            (true, Some(Ok(()))),
            "the loop still held the closed stream's socket"
        );
        assert_eq!(closes.get(), 1);
        assert_eq!(calls.get(), 0);
    });
}

#[test]
fn a_loop_closed_while_it_waits_calls_nothing_more_and_lets_go_of_its_sockets() {
    on_hub(|| {
        let mut ctx = zmq::Context::new();
        let (pull, push) = common::socket_pair(&ctx, "ev-wait-loop-close", zmq::PULL, zmq::PUSH);
        let socket = {
            let pull = Rc::new(pull);
            let socket = Rc::downgrade(&pull);
            let ioloop_only = pull; // the loop holds the only reference
            (socket, ioloop_only)
        };
        let (reader, writer) = pipe();
        let fd = reader.as_raw_fd();

        let ioloop = IOLoop::new().unwrap();
        let calls = counter();
        let (on_socket, on_fd, on_timeout) = (calls.clone(), calls.clone(), calls.clone());
        ioloop
            .add_handler(socket.1, zmq::POLLIN, move |_| {
                bump(&on_socket);
            })
            .unwrap();
        ioloop
            .add_fd_handler(fd, zmq::POLLIN, move |_| {
                bump(&on_fd);
            })
            .unwrap();
        let timeout = ioloop.call_later(ms(20), move || {
            bump(&on_timeout);
        });

        let l = ioloop.clone();
        let weak = socket.0;
        let parked = while_parked(&ioloop, move || {
            l.close();
            let released = weak.upgrade().is_none();
            write_byte(&writer, 1);
            stop_after_a_while(&l); // past the timeout's deadline too
            drop(push);
            let destroyed = released.then(|| ctx.destroy());
            (released, destroyed, writer)
        });
        let (released, destroyed, _writer) = parked.out;
        assert!(!parked.watchdog);
        assert!(released, "the closed loop still held its socket");
        assert_eq!(destroyed, Some(Ok(())));
        assert!(!timeout.is_pending());
        assert_eq!(
            calls.get(),
            0,
            "a handler or timeout ran after the loop was closed"
        );
    });
}

/// A value handed to another may coroutine of this thread: may's `spawn` wants `Send`, and the
/// loop's handles are `Rc`s. It is reached only on the thread that made it (checked).
struct OnThisThread<T> {
    /// `None` once taken.
    value: Option<T>,
    /// The thread that made it.
    thread: ThreadId,
}

// SAFETY: the value is only taken out (`take`) or dropped (`Drop`) on the thread that made it:
// both check the thread first, and `Drop` leaks the value anywhere else; so the value's
// non-thread-safe parts (the `Rc` counts) are only ever touched by one thread.
unsafe impl<T> Send for OnThisThread<T> {}

impl<T> OnThisThread<T> {
    fn new(value: T) -> Self {
        OnThisThread {
            value: Some(value),
            thread: thread::current().id(),
        }
    }

    /// The value, on the thread that made it.
    ///
    /// # Panics
    /// On any other thread (may would then have moved the coroutine: the test's premise).
    fn take(mut self) -> T {
        assert_eq!(
            thread::current().id(),
            self.thread,
            "the coroutines did not share the worker thread"
        );
        self.value.take().expect("taken once")
    }
}

impl<T> Drop for OnThisThread<T> {
    fn drop(&mut self) {
        if thread::current().id() != self.thread {
            std::mem::forget(self.value.take());
        }
    }
}

#[test]
fn a_coroutine_on_the_loops_worker_changes_the_waiting_loop() {
    common::run_within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-wait-may");
        stream.on_recv(|_| {});
        let closed_socket = Rc::downgrade(&stream.socket().unwrap());
        let (pull, push_new) = common::socket_pair(&ctx, "ev-wait-may-new", zmq::PULL, zmq::PUSH);
        push_new.send("waiting", 0).unwrap();
        pull.get_events().unwrap(); // drains its fd: only a wake-up gets the socket polled
        let got = Rc::new(Cell::new(false));
        let started = started_flag(&ioloop);

        let shared = OnThisThread::new((
            ioloop.clone(),
            stream,
            closed_socket,
            pull,
            got.clone(),
            started,
        ));
        let other = zmq::spawn(move || {
            let (ioloop, stream, closed_socket, pull, got, started) = shared.take();
            while !started.get() {
                may::coroutine::sleep(ms(1)); // the loop then waits in its poll
            }
            stream.close(None);
            let released = closed_socket.upgrade().is_none();
            let stopper = ioloop.clone();
            let added = ioloop.add_handler(Rc::new(pull), zmq::POLLIN, move |_| {
                got.set(true);
                stopper.stop();
            });
            (released, added)
        });
        let handle = ioloop.handle();
        let watchdog = zmq::spawn(move || {
            may::coroutine::sleep(WATCHDOG);
            handle.stop();
        });
        ioloop.start().unwrap();
        let (released, added) = common::join(other);
        // SAFETY: cancelling unwinds the watchdog's stack; it owns everything it touches.
        unsafe { watchdog.coroutine().cancel() };
        let _ = watchdog.join();
        assert_eq!(added, Ok(()));
        assert!(released, "the loop still held the closed stream's socket");
        assert!(
            got.get(),
            "the new handler was not called before the watchdog"
        );
        drop(push);
        ioloop.close();
    });
}
