//! A stream's end while its loop is busy: closed by one of its own callbacks in the middle of
//! a pass of several rounds, closed from another task while its loop runs (queued sends keep
//! their order, the loop does not spin), and dropped without `close` while its handler is
//! paused, stalled or idle (the loop lets go of its socket). Each test failed before its fix.

use std::cell::Cell;
use std::panic::resume_unwind;
use std::rc::Rc;
use std::time::Duration;

use zmqloop::green as zmq;
use zmqloop::green::eventloop::{Frames, IOLoop, ZmqStream};
use zmqloop::green::hub;

use crate::{hub_wait_for, on_hub, pull_stream, seen, Seen};

/// Runs `ioloop` in this hub task until another task stops it, once `flag` is raised and the
/// loop is parked in its poll: a stop asked from a loop callback would end a pass's batch
/// (`has_nothing_else`) and hide what the tests look at.
fn run_until_parked_after(ioloop: &IOLoop, flag: &Rc<Cell<bool>>) {
    let (stopper, raised) = (ioloop.clone(), flag.clone());
    let other = hub::spawn(move || {
        hub_wait_for(&raised);
        stopper.stop();
    });
    ioloop.start().unwrap();
    other.join().unwrap_or_else(|panic| resume_unwind(panic));
}

/// Queues three messages (`words`) for a PULL stream whose receive callback records the first
/// frame of each, then calls `react` with the stream, the frames and a flag that `react` raises
/// once it has closed the stream; runs the loop until then. Returns the stream and the record.
fn received_until_closed_by(
    name: &str,
    words: [&str; 3],
    react: impl Fn(&ZmqStream, &Frames, &Rc<Cell<bool>>) + 'static,
) -> (ZmqStream, Vec<String>) {
    let ctx = zmq::Context::new();
    let ioloop = IOLoop::new().unwrap();
    let (stream, push) = pull_stream(&ctx, &ioloop, name);
    for word in words {
        push.send(word, 0).unwrap();
    }
    let got: Seen<String> = seen();
    let closed = Rc::new(Cell::new(false));
    let (g, c) = (got.clone(), closed.clone());
    stream.on_recv_stream(move |stream, frames| {
        g.borrow_mut()
            .push(String::from_utf8(frames[0].clone()).unwrap());
        react(stream, &frames, &c);
    });
    run_until_parked_after(&ioloop, &closed);
    let got = got.take();
    (stream, got)
}

#[test]
fn a_stream_closed_by_its_receive_callback_receives_nothing_more() {
    on_hub(|| {
        let (stream, got) = received_until_closed_by(
            "ev-teardown-close-in-recv",
            ["quit", "after-1", "after-2"],
            |stream, frames, closed| {
                if frames[0] == b"quit" {
                    stream.close(None);
                    closed.set(true);
                }
            },
        );
        assert!(stream.closed());
        assert_eq!(
            got,
            ["quit"],
            "the receive callback was called after the stream was closed"
        );
    });
}

#[test]
fn a_stream_closed_by_its_send_callback_receives_nothing_more() {
    on_hub(|| {
        // A PULL socket cannot send: the first receive's send is refused (ENOTSUP), and its
        // callback closes the stream.
        let (stream, got) = received_until_closed_by(
            "ev-teardown-close-in-send",
            ["one", "two", "three"],
            |stream, _, closed| {
                let (closer, c) = (stream.clone(), closed.clone());
                stream.send_msgs_with([zmq::Message::from("x")], move |_| {
                    closer.close(None);
                    c.set(true);
                });
            },
        );
        assert!(stream.closed());
        assert_eq!(
            got,
            ["one"],
            "the receive callback was called after the stream was closed"
        );
    });
}

/// A ROUTER_MANDATORY stream with "first" queued for its full peer and "second" for the other,
/// each send's report recorded (its second frame and status), and a hub task that closes the
/// stream (300 ms linger: "slow" never reads) once the loop has made its first pass, raising
/// `closing` just before, then stops the loop.
struct CloseInAnotherTask {
    ioloop: IOLoop,
    stream: ZmqStream,
    reports: Seen<(String, zmq::Result<()>)>,
    /// Raised just before `close` is called (which then parks, holding "first").
    closing: Rc<Cell<bool>>,
    close_task: hub::JoinHandle<()>,
    /// The peer with room, for a test to take.
    fast: Option<zmq::Socket>,
    /// The full peer, kept open.
    _slow: zmq::Socket,
}

impl CloseInAnotherTask {
    fn new(ctx: &zmq::Context) -> CloseInAnotherTask {
        let full = crate::common::full::full_router_mandatory(ctx);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(full.router, &ioloop).unwrap();
        let reports: Seen<(String, zmq::Result<()>)> = seen();
        let r = reports.clone();
        stream.on_send(move |frames, status| {
            r.borrow_mut()
                .push((String::from_utf8(frames[1].clone()).unwrap(), *status));
        });
        stream.send_multipart(["slow", "first"]); // its peer is full: it waits
        stream.send_multipart(["fast", "second"]);
        let started = crate::started_flag(&ioloop); // after the first pass (it stalls)
        let closing = Rc::new(Cell::new(false));
        let (closer, c, stopper) = (stream.clone(), closing.clone(), ioloop.clone());
        let close_task = hub::spawn(move || {
            hub_wait_for(&started);
            c.set(true);
            closer.close(Some(Duration::from_millis(300))); // parks: "slow" never reads
            stopper.stop();
        });
        CloseInAnotherTask {
            ioloop,
            stream,
            reports,
            closing,
            close_task,
            fast: Some(full.fast),
            _slow: full.slow,
        }
    }

    /// The messages reported, in the order of their reports.
    fn order(&self) -> Vec<String> {
        self.reports
            .borrow()
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }
}

#[test]
fn sends_queued_behind_the_one_close_is_waiting_on_do_not_overtake_it() {
    // `close` may run in another hub task than the loop's; while it waits (within its linger)
    // for room for the first queued message, which it has taken out of the queue, the loop's
    // passes must not send what is queued behind it.
    on_hub(|| {
        let ctx = zmq::Context::new();
        let test = CloseInAnotherTask::new(&ctx);
        let (sender, c) = (test.stream.clone(), test.closing.clone());
        let send_task = hub::spawn(move || {
            hub_wait_for(&c); // `close` is parked now, holding "first"
            sender.send_multipart(["fast", "third"]); // wakes the loop: a pass is queued
        });
        test.ioloop.start().unwrap();
        send_task
            .join()
            .unwrap_or_else(|panic| resume_unwind(panic));
        let order = test.order();
        let reports = test.reports.clone();
        test.close_task
            .join()
            .unwrap_or_else(|panic| resume_unwind(panic));
        assert_eq!(
            order,
            ["first", "second", "third"],
            "reports out of queue order: {:?}",
            reports.borrow()
        );
    });
}

#[test]
fn a_close_waiting_in_another_task_does_not_make_the_loop_spin_on_its_socket() {
    // While `close` waits for room in another hub task, the socket's fd signals (a message
    // comes in): the loop must not spin on it (a spinning loop never parks, so `close` never
    // resumes: "hung"), and the queue keeps its order.
    on_hub(|| {
        let ctx = zmq::Context::new();
        let mut test = CloseInAnotherTask::new(&ctx);
        let fast = test.fast.take().unwrap();
        let c = test.closing.clone();
        let wake_task = hub::spawn(move || {
            hub_wait_for(&c);
            fast.send("wake", 0).unwrap(); // signals the router's fd
            fast
        });
        test.ioloop.start().unwrap();
        let _fast = wake_task
            .join()
            .unwrap_or_else(|panic| resume_unwind(panic));
        let order = test.order();
        let reports = test.reports.clone();
        test.close_task
            .join()
            .unwrap_or_else(|panic| resume_unwind(panic));
        assert_eq!(order, ["first", "second"], "{:?}", reports.borrow());
    });
}

#[test]
fn a_busy_stream_dropped_by_its_receive_callback_leaves_the_loop_and_frees_its_socket() {
    // A busy stream's handler is paused while its next pass is queued; if every handle is
    // dropped meanwhile, that pass finds no stream, and nothing may be left holding the socket.
    crate::within(crate::LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-teardown-dropped-busy");
        for word in ["one", "two", "three"] {
            push.send(word, 0).unwrap();
        }
        let socket = Rc::downgrade(&stream.socket().unwrap());
        let holder = Rc::new(std::cell::RefCell::new(Some(stream.clone())));
        drop(stream);
        let h = holder.clone();
        holder
            .borrow()
            .as_ref()
            .unwrap()
            .on_recv(move |_| drop(h.borrow_mut().take()));
        crate::run_until_released(&ioloop, &socket, crate::ms(2000));
        assert!(holder.borrow().is_none());
        ioloop.close();
    });
}

#[test]
fn a_stalled_stream_retrying_on_a_timer_dropped_without_close_leaves_the_loop() {
    // The stalled send's fd cannot be watched (someone else's handler has the fd), so it is
    // retried on a timer; once every handle is dropped, the retry finds no stream, and the
    // stream's handler is paused (no POLLOUT while stalled, no receive callback): nothing else
    // would ever let go of the socket.
    crate::within(crate::LIMIT, || {
        let ctx = zmq::Context::new();
        let (publisher, _sub, _queued) = crate::common::full::full_nodrop_publisher(&ctx, zmq::PUB);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(publisher, &ioloop).unwrap();
        let socket = Rc::downgrade(&stream.socket().unwrap());
        let fd = stream.socket().unwrap().get_fd().unwrap();
        let drained = socket.clone();
        ioloop
            .add_fd_handler(fd, zmq::POLLIN, move |_| {
                if let Some(socket) = drained.upgrade() {
                    let _ = socket.get_events();
                }
            })
            .unwrap();
        stream.send("stalls");
        let holder = Rc::new(std::cell::RefCell::new(Some(stream)));
        let h = holder.clone();
        ioloop.add_callback(move || drop(h.borrow_mut().take())); // after the stalling pass
        crate::run_until_released(&ioloop, &socket, crate::ms(2000));
        let _ = ioloop.remove_fd_handler(fd);
        ioloop.close();
    });
}

#[test]
fn an_idle_stream_dropped_without_close_lets_go_of_its_socket() {
    // Pre-existing (not issue 14): a stream that never asked for events has its handler
    // paused from `new` on; dropped without `close`, no event ever calls its `abandon`.
    crate::within(crate::LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, _push) = pull_stream(&ctx, &ioloop, "ev-teardown-dropped-idle");
        let socket = Rc::downgrade(&stream.socket().unwrap());
        drop(stream);
        crate::run_until_released(&ioloop, &socket, crate::ms(2000));
        ioloop.close();
    });
}
