//! A `ZmqStream` whose queued send meets a `POLLOUT` that lies must not spin. ROUTER with
//! `ROUTER_MANDATORY` addressing a full peer while another has room, STREAM to a tcp peer that
//! does not read, and XPUB with `XPUB_NODROP` to a full subscriber all report `POLLOUT` while
//! their send fails with EAGAIN; a stream that polled for `POLLOUT` again after each EAGAIN
//! would turn the loop into a busy loop for as long as the peer stays full.
//!
//! Each case stalls a stream for a second on a plain-thread loop or in a hub task and checks:
//! the process's CPU time over the stall stays near idle; the stalled stream keeps receiving,
//! and other streams and callbacks keep running (ROUTER case); once the peer drains, the queued
//! messages arrive, in order, none lost, within a bound. Also: a stream that cannot watch its
//! socket's fd retries on a timer (logged once); a stalled stream dropped without `close` leaves
//! the loop; `close` with a linger waits for a stalled send without spinning; where `POLLOUT`
//! is exact (PUSH) a full stream still waits for it, and its queue goes through in order.
//!
//! The pattern's waits too: a REQ stream with requests queued while its reply has not come, and
//! a REP stream with a reply queued before its request, keep their messages (libzmq refuses
//! them with EFSM) and wait for `POLLOUT` without spinning; once the peer answers (or asks),
//! every message goes, in order, none reported as an error.
//!
//! Alone in its test binary, and one case at a time, so that the process's CPU time measures
//! the stalled loop only.

mod common;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::full::{
    fill_stream, full_nodrop_publisher, full_router_mandatory, read_bytes, stream_to_raw_peer,
};
use common::{zmq, LIMIT};
use zmqloop::eventloop::{Frames, IOLoop, IOLoopHandle, PeriodicCallback, ZmqStream};
use zmqloop_fixtures::measure::cpu_time;

/// How long each stream stays stalled while the CPU time is measured.
const STALL: Duration = Duration::from_secs(1);
/// The CPU the whole process may use over the stall: a tenth of it. A loop that spins burns
/// nearly all of it (before the fix: 0.88-0.98 s in each case).
const BUDGET: Duration = Duration::from_millis(100);
/// How long the queued messages may take to arrive once the peer drains.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// One case at a time in this binary: the CPU time is the process's.
static ALONE: Mutex<()> = Mutex::new(());

/// Where the loop runs.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// On a plain thread: its wait is a blocking `zmq_poll`.
    Thread,
    /// In a hub task: its wait parks the task on an epoll set.
    Hub,
}

/// Runs `body` on a fresh thread, in a hub task there if `place` says so, under [`LIMIT`].
fn on_loop_thread<T, F>(place: Place, body: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    common::on_thread(LIMIT, move || match place {
        Place::Thread => body(),
        Place::Hub => zmq::hub::Hub::new().unwrap().block_on(body),
    })
}

/// A socket whose sends stall: its peer is full while `POLLOUT` is set.
struct Stalled {
    socket: zmq::Socket,
    /// What the stream queues, in order; the test waits for the last one.
    sends: Vec<Frames>,
    /// Makes the peer take everything (called on the loop once the stall has been measured);
    /// reports through [`Arrived`] once the last send is in.
    drain: Drain,
}

/// See [`Stalled::drain`].
type Drain = Box<dyn FnOnce(&IOLoop, Arrived)>;

/// Received messages, each as its frames concatenated.
type Received = Rc<RefCell<Vec<Vec<u8>>>>;

/// A stream of `socket` on `ioloop` that records what it receives in `got` and reports
/// `arrived` when a message whose first frame is `last` comes.
fn receive_until(
    ioloop: &IOLoop,
    socket: zmq::Socket,
    last: Vec<u8>,
    arrived: Arrived,
    got: Received,
) -> ZmqStream {
    let stream = ZmqStream::new(socket, ioloop).unwrap();
    let mut arrived = Some(arrived);
    stream.on_recv(move |frames| {
        let is_last = frames[0] == last;
        got.borrow_mut().push(frames.concat());
        if is_last {
            arrived.take().into_iter().for_each(Arrived::now);
        }
    });
    stream
}

/// Reports, from any thread, that the last queued send reached the peer: stops the loop.
struct Arrived {
    flag: Arc<AtomicBool>,
    handle: IOLoopHandle,
}

impl Arrived {
    fn now(self) {
        self.flag.store(true, Ordering::SeqCst);
        self.handle.stop();
    }
}

/// What a stall looked like.
struct Outcome {
    /// The process's CPU time over the stall.
    cpu: Duration,
    /// Whether the last send arrived within [`DRAIN_LIMIT`] of the drain's start.
    arrived: bool,
    /// Whether the stream still had sends queued when the loop stopped.
    still_sending: bool,
}

/// Queues `case.sends` on a stream of `case.socket`, lets `beside` add other work to the loop
/// (it returns what to run when the stall ends), measures the CPU time over [`STALL`], then
/// drains the peer and runs the loop until the last send arrives or [`DRAIN_LIMIT`] passes.
fn stall_then_drain(
    case: Stalled,
    beside: impl FnOnce(&IOLoop, &ZmqStream) -> Box<dyn FnOnce()>,
) -> Outcome {
    let ioloop = IOLoop::new().unwrap();
    let stream = ZmqStream::new(case.socket, &ioloop).unwrap();
    for frames in case.sends {
        stream.send_multipart(frames);
    }
    let at_stall_end = beside(&ioloop, &stream);
    let flag = Arc::new(AtomicBool::new(false));
    let arrived = Arrived {
        flag: flag.clone(),
        handle: ioloop.handle(),
    };
    let cpu = Rc::new(Cell::new(Duration::ZERO));
    let (measured, drain, on_loop) = (cpu.clone(), case.drain, ioloop.clone());
    // Queued after the stream's first pass: the window opens once the send has stalled.
    ioloop.add_callback(move || {
        let start = cpu_time();
        let later = on_loop.clone();
        on_loop.call_later(STALL, move || {
            measured.set(cpu_time() - start);
            at_stall_end();
            drain(&later, arrived);
            let stopper = later.clone();
            later.call_later(DRAIN_LIMIT, move || stopper.stop());
        });
    });
    ioloop.start().unwrap();
    let outcome = Outcome {
        cpu: cpu.get(),
        arrived: flag.load(Ordering::SeqCst),
        still_sending: stream.sending(),
    };
    stream.close(None);
    ioloop.close(); // drops the loop's own clones held by its timeouts
    outcome
}

fn check(name: &str, outcome: &Outcome) {
    eprintln!("{name}: {:?} of CPU over a {STALL:?} stall", outcome.cpu);
    assert!(
        outcome.cpu < BUDGET,
        "{name}: the loop used {:?} of CPU over a {STALL:?} stall: it spins",
        outcome.cpu
    );
    assert!(
        outcome.arrived,
        "{name}: the queued messages had not arrived {DRAIN_LIMIT:?} after the peer drained"
    );
    assert!(!outcome.still_sending, "{name}: sends still queued");
}

fn frames(parts: &[&str]) -> Frames {
    parts.iter().map(|part| part.as_bytes().to_vec()).collect()
}

/// The ROUTER_MANDATORY case, with a second peer pinging the stalled stream every 10 ms from
/// a periodic callback: the stalled stream must keep receiving, and the other stream and the
/// callback keep running.
fn router_mandatory(place: Place) {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let (outcome, pings, ticks, got, queued) = on_loop_thread(place, || {
        let ctx = zmq::Context::new();
        let full = full_router_mandatory(&ctx);
        let got = Received::default();
        let keep: Rc<RefCell<Vec<ZmqStream>>> = Rc::default();
        let (slow, received, keeper) = (full.slow, got.clone(), keep.clone());
        let case = Stalled {
            socket: full.router,
            sends: vec![frames(&["slow", "last-1"]), frames(&["slow", "last-2"])],
            drain: Box::new(move |ioloop, arrived| {
                let slow = receive_until(ioloop, slow, b"last-2".to_vec(), arrived, received);
                keeper.borrow_mut().push(slow);
            }),
        };
        let (pings, ticks) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let during = Rc::new(Cell::new((0, 0)));
        let (fast, counted, ticked, snapshot) =
            (full.fast, pings.clone(), ticks.clone(), during.clone());
        let outcome = stall_then_drain(case, |ioloop, router| {
            router.on_recv(move |frames| {
                if frames == [b"fast".to_vec(), b"ping".to_vec()] {
                    counted.set(counted.get() + 1);
                }
            });
            let fast = ZmqStream::new(fast, ioloop).unwrap();
            let pinger = PeriodicCallback::new(ioloop, Duration::from_millis(10), move || {
                ticked.set(ticked.get() + 1);
                fast.send("ping");
            });
            pinger.start();
            Box::new(move || {
                snapshot.set((pings.get(), ticks.get()));
                pinger.stop();
            })
        });
        let got = got.borrow().clone();
        let (pings, ticks) = during.get();
        for stream in keep.borrow().iter() {
            stream.close(None);
        }
        (outcome, pings, ticks, got, full.queued)
    });
    let name = format!("ROUTER_MANDATORY ({place:?})");
    check(&name, &outcome);
    // At 10 ms a tick, about 100 of each; a loop stalled with its stream would have none.
    assert!(
        ticks >= 10,
        "{name}: {ticks} ticks of the periodic callback"
    );
    assert!(
        pings >= 10,
        "{name}: the stalled stream received {pings} pings"
    );
    let mut expected = vec![b"x".to_vec(); queued];
    expected.extend([b"last-1".to_vec(), b"last-2".to_vec()]);
    assert_eq!(got, expected, "{name}: lost or reordered");
}

#[test]
fn router_mandatory_stall_parks_a_plain_thread_loop() {
    router_mandatory(Place::Thread);
}

#[test]
fn router_mandatory_stall_parks_a_loop_in_a_hub_task() {
    router_mandatory(Place::Hub);
}

/// What else a case puts on the loop; returns what to run when the stall ends.
type Beside = fn(&IOLoop, &ZmqStream) -> Box<dyn FnOnce()>;

fn nothing_beside(_: &IOLoop, _: &ZmqStream) -> Box<dyn FnOnce()> {
    Box::new(|| {})
}

/// The XPUB_NODROP case: a subscriber drains its full pipe on the loop.
fn xpub_nodrop(place: Place, beside: Beside) {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let (outcome, got, queued) = on_loop_thread(place, move || {
        let ctx = zmq::Context::new();
        let (xpub, sub, queued) = full_nodrop_publisher(&ctx, zmq::XPUB);
        let got = Received::default();
        let keep: Rc<RefCell<Vec<ZmqStream>>> = Rc::default();
        let (received, keeper) = (got.clone(), keep.clone());
        let case = Stalled {
            socket: xpub,
            sends: vec![frames(&["last"])],
            drain: Box::new(move |ioloop, arrived| {
                let sub = receive_until(ioloop, sub, b"last".to_vec(), arrived, received);
                keeper.borrow_mut().push(sub);
            }),
        };
        let outcome = stall_then_drain(case, beside);
        let got = got.borrow().clone();
        for stream in keep.borrow().iter() {
            stream.close(None);
        }
        (outcome, got, queued)
    });
    let name = format!("XPUB_NODROP ({place:?})");
    check(&name, &outcome);
    let mut expected = vec![b"x".to_vec(); queued];
    expected.push(b"last".to_vec());
    assert_eq!(got, expected, "{name}: lost or reordered");
}

#[test]
fn xpub_nodrop_stall_parks_a_plain_thread_loop() {
    xpub_nodrop(Place::Thread, nothing_beside);
}

#[test]
fn xpub_nodrop_stall_parks_a_loop_in_a_hub_task() {
    xpub_nodrop(Place::Hub, nothing_beside);
}

/// The loop's handler for the stream's socket's fd is someone else's, so the stream cannot
/// watch the fd: it says so once, and tries its stalled send on a timer instead (still no spin,
/// nothing lost).
#[test]
fn a_stall_whose_fd_cannot_be_watched_is_retried_on_a_timer() {
    common::logs::capture();
    xpub_nodrop(Place::Thread, |ioloop, stream| {
        let socket = stream.socket().unwrap();
        let fd = socket.get_fd().unwrap();
        // It drains the fd, as a handler of a zmq socket's fd must.
        ioloop
            .add_fd_handler(fd, zmq::POLLIN, move |_| {
                let _ = socket.get_events();
            })
            .unwrap();
        Box::new(|| {})
    });
    let warnings = common::logs::matching(log::Level::Warn, "cannot watch its socket's fd");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

/// A stream that answers every message it receives with the same frames, and reports
/// `arrived` when one whose first frame is `last` comes.
fn echo_until(
    ioloop: &IOLoop,
    socket: zmq::Socket,
    last: &'static [u8],
    arrived: Arrived,
) -> ZmqStream {
    let stream = ZmqStream::new(socket, ioloop).unwrap();
    let mut arrived = Some(arrived);
    stream.on_recv_stream(move |stream, frames| {
        if frames[0] == last {
            arrived.take().into_iter().for_each(Arrived::now);
        }
        stream.send_multipart(frames);
    });
    stream
}

/// Send outcomes, in order.
type Reports = Rc<RefCell<Vec<(Frames, zmq::Result<()>)>>>;

/// Makes `stream` record the outcome of each of its sends, and receive (a REQ or REP stream
/// must, for its pattern to move on), recording what it receives in `got`.
fn record_traffic(stream: &ZmqStream, reports: &Reports, got: &Received) {
    let (record, got) = (reports.clone(), got.clone());
    stream.on_send(move |frames, status| record.borrow_mut().push((frames.to_vec(), *status)));
    stream.on_recv(move |frames| got.borrow_mut().push(frames.concat()));
}

/// What a pattern stall returns: the outcome, the stream's send reports, what it received.
type PatternOutcome = (Outcome, Vec<(Frames, zmq::Result<()>)>, Vec<Vec<u8>>);

/// A REQ or REP stream (`kind`) with `sends` queued that its pattern refuses (EFSM) through the
/// stall: its peer (the other of REQ and REP) is silent until the drain puts it on the loop
/// with `peer_on_loop`, which makes the pattern move and reports when the last message is in.
fn pattern_stall(
    place: Place,
    kind: zmq::SocketType,
    sends: Vec<Frames>,
    peer_on_loop: fn(&IOLoop, zmq::Socket, Arrived) -> ZmqStream,
) -> PatternOutcome {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    on_loop_thread(place, move || {
        let ctx = zmq::Context::new();
        let (rep, req) = common::socket_pair(&ctx, "stall-pattern", zmq::REP, zmq::REQ);
        let (socket, peer) = if kind == zmq::REQ {
            (req, rep)
        } else {
            (rep, req)
        };
        let keep: Rc<RefCell<Vec<ZmqStream>>> = Rc::default();
        let keeper = keep.clone();
        let case = Stalled {
            socket,
            sends,
            drain: Box::new(move |ioloop, arrived| {
                keeper
                    .borrow_mut()
                    .push(peer_on_loop(ioloop, peer, arrived));
            }),
        };
        let (reports, received) = (Reports::default(), Received::default());
        let outcome = stall_then_drain(case, |_, stream| {
            record_traffic(stream, &reports, &received);
            Box::new(|| {})
        });
        for stream in keep.borrow().iter() {
            stream.close(None);
        }
        let reports = reports.borrow().clone();
        let received = received.borrow().clone();
        (outcome, reports, received)
    })
}

/// The REQ case: three requests queued, the REP peer silent through the stall (the first
/// request waits in it, the others in the stream), then an echo that ends the case when the
/// last request reaches it.
fn req_awaiting_its_reply(place: Place) {
    let requests = vec![frames(&["q0"]), frames(&["q1"]), frames(&["last"])];
    let (outcome, reports, replies) =
        pattern_stall(place, zmq::REQ, requests, |ioloop, rep, arrived| {
            echo_until(ioloop, rep, b"last", arrived)
        });
    let name = format!("REQ awaiting its reply ({place:?})");
    check(&name, &outcome);
    let sent: Vec<_> = ["q0", "q1", "last"].map(|q| (frames(&[q]), Ok(()))).into();
    assert_eq!(
        reports, sent,
        "{name}: every request sent, in order, none refused"
    );
    let first = [b"q0".to_vec(), b"q1".to_vec()];
    assert!(replies.starts_with(&first), "{name}: replies {replies:?}");
}

#[test]
fn a_req_stream_awaiting_its_reply_parks_a_plain_thread_loop() {
    req_awaiting_its_reply(Place::Thread);
}

#[test]
fn a_req_stream_awaiting_its_reply_parks_a_loop_in_a_hub_task() {
    req_awaiting_its_reply(Place::Hub);
}

/// The REP case: a reply queued before any request, no request through the stall, then a REQ
/// stream asks, and the case ends when the reply comes.
#[test]
fn a_rep_stream_with_a_reply_before_its_request_parks_the_loop() {
    let early = vec![frames(&["early"])];
    let (outcome, reports, requests) =
        pattern_stall(Place::Thread, zmq::REP, early, |ioloop, req, arrived| {
            let client =
                receive_until(ioloop, req, b"early".to_vec(), arrived, Received::default());
            client.send("request");
            client
        });
    check("REP before its request", &outcome);
    assert_eq!(reports, [(frames(&["early"]), Ok(()))]);
    assert_eq!(requests, [b"request".to_vec()]);
}

/// The STREAM case: a plain thread reads the tcp peer's socket to the end.
#[test]
fn stream_stall_parks_a_plain_thread_loop() {
    const CHUNK: usize = 64 * 1024;
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = on_loop_thread(Place::Thread, || {
        let ctx = zmq::Context::new();
        let (socket, id, mut raw) = stream_to_raw_peer(&ctx);
        let chunk = vec![7u8; CHUNK];
        let queued = fill_stream(&socket, &id, &chunk);
        let case = Stalled {
            socket,
            sends: vec![vec![id, chunk]],
            drain: Box::new(move |_, arrived| {
                std::thread::spawn(move || {
                    read_bytes(&mut raw, (queued + 1) * CHUNK);
                    arrived.now();
                });
            }),
        };
        stall_then_drain(case, nothing_beside)
    });
    check("STREAM (Thread)", &outcome);
}

/// A stalled stream dropped without `close`: when its fd next signals (the peer drains), the
/// loop lets go of the fd watch and of the socket, as it does for any dropped stream.
#[test]
fn a_stalled_stream_dropped_without_close_leaves_the_loop() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    on_loop_thread(Place::Thread, || {
        let ctx = zmq::Context::new();
        let (xpub, sub, queued) = full_nodrop_publisher(&ctx, zmq::XPUB);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(xpub, &ioloop).unwrap();
        let (socket, fd) = {
            let socket = stream.socket().unwrap();
            (Rc::downgrade(&socket), socket.get_fd().unwrap())
        };
        stream.send("dropped with its stream");
        let holder = Rc::new(RefCell::new(Some(stream)));
        let (stream, on_loop) = (holder.clone(), ioloop.clone());
        // Queued after the stream's first pass, which stalls the send.
        ioloop.add_callback(move || {
            drop(stream.borrow_mut().take());
            for _ in 0..queued {
                sub.recv_bytes(0).unwrap(); // makes room: the publisher's fd signals
            }
            let stopper = on_loop.clone();
            on_loop.call_later(Duration::from_millis(200), move || stopper.stop());
        });
        ioloop.start().unwrap();
        assert!(
            socket.upgrade().is_none(),
            "the loop still holds the socket of a dropped stream"
        );
        assert_eq!(
            ioloop.update_fd_handler(fd, zmq::POLLIN),
            Err(zmq::Error::ENOENT),
            "the fd watch of a dropped stream is still on the loop"
        );
        ioloop.close();
    });
}

/// `close` with a linger flushes a stalled send by waiting for the socket's fd, not for
/// `POLLOUT`: it idles until the linger passes (the message is then reported with EAGAIN), or
/// sends as soon as the peer makes room.
#[test]
fn close_waits_for_a_stalled_send_without_spinning() {
    const LINGER: Duration = Duration::from_millis(500);
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    on_loop_thread(Place::Thread, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let stalled_stream = |last: &str| {
            let (xpub, sub, queued) = full_nodrop_publisher(&ctx, zmq::XPUB);
            let stream = ZmqStream::new(xpub, &ioloop).unwrap();
            let status: Rc<RefCell<Vec<zmq::Result<()>>>> = Rc::default();
            let record = status.clone();
            stream.on_send(move |_, outcome| record.borrow_mut().push(*outcome));
            stream.send(last);
            stream.flush(zmq::POLLOUT, None); // stalls the send
            (stream, sub, queued, status)
        };

        // Nobody drains: the whole linger passes, idle, and the message is reported.
        let (stream, _sub, _, status) = stalled_stream("undelivered");
        let (cpu, start) = (cpu_time(), std::time::Instant::now());
        stream.close(Some(LINGER));
        let (used, waited) = (cpu_time() - cpu, start.elapsed());
        eprintln!("close: {used:?} of CPU over a {waited:?} linger");
        // libzmq times a blocking send with a clock of 1 ms precision.
        let early = Duration::from_millis(2);
        assert!(waited + early >= LINGER, "close returned after {waited:?}");
        assert!(
            used < BUDGET,
            "close used {used:?} of CPU over {waited:?}: it spins"
        );
        assert_eq!(*status.borrow(), [Err(zmq::Error::EAGAIN)]);

        // A reader makes room while close waits: the message goes.
        let (stream, sub, queued, status) = stalled_stream("delivered");
        let reader = std::thread::spawn(move || {
            for _ in 0..queued {
                sub.recv_bytes(0).unwrap();
            }
            let last = sub.recv_bytes(0).unwrap();
            (sub, last)
        });
        stream.close(Some(DRAIN_LIMIT));
        assert_eq!(*status.borrow(), [Ok(())]);
        let (sub, last) = reader.join().unwrap();
        assert_eq!(last, b"delivered");
        drop(sub);
        ioloop.close();
    });
}

/// Where `POLLOUT` is exact (PUSH), a send that meets EAGAIN waits for `POLLOUT` in the loop's
/// poll: a queue far longer than the pipe goes through in order as the peer reads it.
#[test]
fn a_full_push_stream_waits_for_pollout_and_sends_its_queue_in_order() {
    const MESSAGES: usize = 200;
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let got = on_loop_thread(Place::Thread, || {
        let ctx = zmq::Context::new();
        let (push, pull) = common::full::small_pipe(&ctx, "stall-push", zmq::PUSH, zmq::PULL);
        let ioloop = IOLoop::new().unwrap();
        let sender = ZmqStream::new(push, &ioloop).unwrap();
        for i in 0..MESSAGES {
            sender.send(i.to_string());
        }
        let got = Received::default();
        let flag = Arc::new(AtomicBool::new(false));
        let arrived = Arrived {
            flag: flag.clone(),
            handle: ioloop.handle(),
        };
        let last = (MESSAGES - 1).to_string().into_bytes();
        let receiver = receive_until(&ioloop, pull, last, arrived, got.clone());
        let stopper = ioloop.clone();
        ioloop.call_later(DRAIN_LIMIT, move || stopper.stop());
        ioloop.start().unwrap();
        assert!(flag.load(Ordering::SeqCst), "the queue did not get through");
        sender.close(None);
        receiver.close(None);
        ioloop.close();
        let got = got.borrow().clone();
        got
    });
    let expected: Vec<Vec<u8>> = (0..MESSAGES).map(|i| i.to_string().into_bytes()).collect();
    assert_eq!(got, expected);
}
