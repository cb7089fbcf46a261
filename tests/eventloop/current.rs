//! The current loop (`IOLoop::current`): one per plain thread, per may coroutine (two on ONE
//! worker each run their own, parking only themselves; a coroutine keeps its own when may
//! resumes it on another thread) and per hub task (not per hub; the hub's
//! thread outside its tasks has the thread's); `make_current` and `clear_current`; a closed
//! current loop stays current and usable; a place's loop is dropped at the place's end (a
//! coroutine's and a hub task's inside them, before their join returns; a `may::go!`
//! coroutine's after its end, without blocking the worker); a loop from `current()` drives
//! streams and timers.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use zmqloop::eventloop::{IOLoop, ZmqStream};
use zmqloop::green as zmq;
use zmqloop::green::hub::{self, Hub};
use zmqloop::green::task::{self, RunsOn};

use crate::{bump, common, counter, frames, hub_wait_for, ms, on_hub, recv_within, within, LIMIT};

/// Where code runs, as the green layer tells it: a job started here runs as a may coroutine, a
/// hub task, or (outside both) on a thread.
fn where_am_i() -> RunsOn {
    task::spawn_here(|| ()).runs_on()
}

/// Reports, when dropped, where its drop ran.
struct DropSignal(mpsc::Sender<RunsOn>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(where_am_i());
    }
}

/// A receiver told where the current loop's timers were dropped: a far timeout owns a
/// [`DropSignal`], so it drops when the loop does (or is closed).
fn signal_when_current_loop_drops() -> mpsc::Receiver<RunsOn> {
    let (tx, rx) = mpsc::channel();
    let signal = DropSignal(tx);
    IOLoop::current().call_later(Duration::from_secs(3600), move || drop(signal));
    rx
}

#[test]
fn current_is_one_loop_per_thread() {
    let (this_running, other_running) = within(LIMIT, || {
        let ioloop = IOLoop::current();
        assert_eq!(
            ioloop,
            IOLoop::current(),
            "the same loop twice on one thread"
        );
        let seen = Rc::new(Cell::new(None));
        let record = seen.clone();
        ioloop.add_callback(move || {
            // This thread's loop runs; another thread's current loop must be another one.
            let other = thread::spawn(|| {
                let other = IOLoop::current();
                let running = other.is_running();
                other.add_callback(|| IOLoop::current().stop());
                other.start().unwrap();
                running
            });
            record.set(Some((
                IOLoop::current().is_running(),
                other.join().unwrap(),
            )));
            IOLoop::current().stop();
        });
        ioloop.start().unwrap();
        assert_eq!(IOLoop::current(), ioloop, "still the same after it ran");
        seen.get().expect("the loop ran its callback")
    });
    assert!(
        this_running,
        "inside its callback, the thread's current loop runs"
    );
    assert!(
        !other_running,
        "the other thread's current loop is its own, not running"
    );
}

#[test]
fn a_thread_s_current_loop_and_its_sockets_go_when_the_thread_exits() {
    within(LIMIT, || {
        let mut ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&common::inproc("ev-current-exit")).unwrap();
        let dropped = thread::spawn(move || {
            let stream = ZmqStream::new(pull, &IOLoop::current()).unwrap();
            stream.on_recv(|_| {}); // the loop's handler keeps the socket
            signal_when_current_loop_drops()
        })
        .join()
        .unwrap();
        assert_eq!(dropped.recv_timeout(LIMIT), Ok(RunsOn::Thread));
        // Blocks until every socket is closed: a socket still held would hang the test.
        ctx.destroy().unwrap();
    });
}

#[test]
fn make_current_installs_a_loop_and_clear_current_forgets_it() {
    within(LIMIT, || {
        let mine = IOLoop::new().unwrap();
        assert_eq!(
            mine.make_current(),
            None,
            "nothing was current on a fresh thread"
        );
        assert_eq!(IOLoop::current(), mine);
        let other = IOLoop::new().unwrap();
        assert_eq!(
            other.make_current(),
            Some(mine.clone()),
            "the one it replaces"
        );
        assert_eq!(IOLoop::current(), other);

        assert_eq!(IOLoop::clear_current(), Some(other.clone()));
        assert_eq!(IOLoop::clear_current(), None, "nothing current any more");
        let fresh = IOLoop::current();
        assert!(fresh != mine && fresh != other, "current() made a new loop");
        assert_eq!(IOLoop::current(), fresh);

        // The place held the only handle: clearing it drops the loop.
        let dropped = signal_when_current_loop_drops();
        drop(fresh);
        assert!(dropped.try_recv().is_err(), "still current, still alive");
        drop(IOLoop::clear_current());
        assert_eq!(dropped.try_recv(), Ok(RunsOn::Thread));
    });
}

#[test]
fn a_closed_current_loop_stays_current_and_usable() {
    let (before_close, after_close) = within(LIMIT, || {
        let ioloop = IOLoop::current();
        let before = counter();
        let b = before.clone();
        ioloop.call_later(ms(1), move || {
            bump(&b);
        });
        ioloop.close();
        assert_eq!(
            IOLoop::current(),
            ioloop,
            "close empties the loop; it stays current"
        );
        let after = counter();
        let a = after.clone();
        IOLoop::current().call_later(ms(5), move || {
            bump(&a);
            IOLoop::current().stop();
        });
        IOLoop::current().start().unwrap();
        (before.get(), after.get())
    });
    assert_eq!(before_close, 0, "close dropped the timeout");
    assert_eq!(after_close, 1, "the closed loop ran what was added after");
}

#[test]
fn clear_current_leaves_a_running_loop_running() {
    let (was_current, fresh_differs, later_ran) = within(LIMIT, || {
        let ioloop = IOLoop::current();
        let seen = Rc::new(Cell::new((false, false)));
        let record = seen.clone();
        let running = ioloop.clone();
        ioloop.add_callback(move || {
            let cleared = IOLoop::clear_current();
            let fresh = IOLoop::current();
            record.set((cleared.as_ref() == Some(&running), fresh != running));
        });
        let later = counter();
        let (l, stopper) = (later.clone(), ioloop.clone());
        ioloop.call_later(ms(5), move || {
            bump(&l);
            stopper.stop();
        });
        ioloop.start().unwrap();
        let (was_current, fresh_differs) = seen.get();
        (was_current, fresh_differs, later.get())
    });
    assert!(was_current, "clear_current returned the running loop");
    assert!(fresh_differs, "the next current() made another loop");
    assert_eq!(
        later_ran, 1,
        "the cleared loop went on running until stopped"
    );
}

/// What a coroutine or hub task found running its current loop: whether that loop was already
/// running when it asked for it, the frames it received, whether `current()` was still the
/// same loop after the loop ran.
type Found = (bool, Vec<Vec<u8>>, bool);

/// Runs the current loop with a stream on `pull` until a message comes (its callback stops the
/// loop through `current()`); `started` runs in the loop's first iteration.
fn current_loop_until_a_message(pull: zmq::Socket, started: impl FnOnce() + 'static) -> Found {
    let ioloop = IOLoop::current();
    let was_running = ioloop.is_running();
    let stream = ZmqStream::new(pull, &ioloop).unwrap();
    let got = Rc::new(Cell::new(None));
    let record = got.clone();
    stream.on_recv(move |frames| {
        record.set(Some(
            frames.into_iter().map(|frame| frame.to_vec()).collect(),
        ));
        IOLoop::current().stop(); // this place's loop, even with another on the thread
    });
    ioloop.add_callback(started);
    ioloop.start().unwrap();
    let same = IOLoop::current() == ioloop;
    stream.close(None);
    (was_running, got.take().expect("a message"), same)
}

/// Checks what two places found ([`current_loop_until_a_message`]): a got "to a", b "to b".
fn check_own_loops(a: Found, b: Found) {
    let ((a_was_running, a_got, a_same), (b_was_running, b_got, b_same)) = (a, b);
    assert!(
        !a_was_running && !b_was_running,
        "each place's loop is its own"
    );
    assert_eq!(a_got, [b"to a".to_vec()]);
    assert_eq!(b_got, [b"to b".to_vec()]);
    assert!(
        a_same && b_same,
        "current() is the same loop across the parks"
    );
}

#[test]
fn two_coroutines_on_one_worker_each_run_their_own_current_loop() {
    common::run(|| {
        let ctx = zmq::Context::new();
        let (pull_a, push_a) = common::socket_pair(&ctx, "ev-current-co", zmq::PULL, zmq::PUSH);
        let (pull_b, push_b) = common::socket_pair(&ctx, "ev-current-co", zmq::PULL, zmq::PUSH);
        let (started_tx, started_rx) = may::sync::mpsc::channel();
        let (go_b_tx, go_b_rx) = may::sync::mpsc::channel();
        let a_started = started_tx.clone();
        let a = zmq::spawn(move || {
            current_loop_until_a_message(pull_a, move || a_started.send(()).unwrap())
        });
        started_rx.recv().unwrap(); // a's loop runs (parked in its poll)
                                    // b asks for its current loop while a's runs on the same (single) worker.
        let b = zmq::spawn(move || {
            go_b_rx.recv().unwrap(); // parks: a's loop runs meanwhile
            current_loop_until_a_message(pull_b, move || started_tx.send(()).unwrap())
        });
        go_b_tx.send(()).unwrap();
        started_rx.recv().unwrap(); // b's loop runs too

        let ping = common::Ping::start();
        ping.wait_rounds(5); // both loops wait, and the worker stays free
        ping.stop();
        push_b.send("to b", 0).unwrap();
        push_a.send("to a", 0).unwrap();
        check_own_loops(common::join(a), common::join(b));
    });
}

#[test]
fn a_coroutine_s_current_loop_follows_it_to_another_thread() {
    let (moved, same) = common::run(|| {
        let ioloop = IOLoop::current();
        let thread = thread::current().id();
        // may resumes a coroutine woken from sleep on its timer thread (`docs/may.md`).
        may::coroutine::sleep(ms(1));
        (
            thread::current().id() != thread,
            IOLoop::current() == ioloop,
        )
    });
    assert!(moved, "may resumed the coroutine on another thread");
    assert!(
        same,
        "its current loop is the coroutine's, not the thread's"
    );
}

#[test]
fn a_coroutine_s_current_loop_is_dropped_inside_it_before_its_join_returns() {
    common::run(|| {
        let dropped = common::join(zmq::spawn(signal_when_current_loop_drops));
        assert_eq!(dropped.try_recv(), Ok(RunsOn::MayCoroutine));
    });
}

#[test]
fn a_may_go_coroutine_s_current_loop_is_dropped_after_its_end_without_blocking_the_worker() {
    common::logs::capture();
    common::run(|| {
        // A peer that is not there: the message waits in the PUSH socket's queue, and with
        // LINGER -1 its context's termination waits for it.
        let peer_ctx = zmq::Context::new();
        let pull = peer_ctx.socket(zmq::PULL).unwrap();
        let endpoint = common::bind_tcp(&pull);
        pull.unbind(&endpoint).unwrap();
        let target = endpoint.clone();
        // SAFETY: the coroutine keeps nothing thread-local across a park, and may's default
        // stack (set by `common::init`'s may config, at least zmqloop's minimum) suffices.
        let raw = unsafe {
            may::coroutine::Builder::new().spawn(move || {
                let ctx = zmq::Context::new();
                let push = ctx.socket(zmq::PUSH).unwrap();
                push.connect(&target).unwrap();
                push.send("queued", zmq::DONTWAIT).unwrap();
                // The current loop's handler holds the socket, and the socket the context.
                IOLoop::current()
                    .add_handler(Rc::new(push), zmq::POLLIN, |_| {})
                    .unwrap();
                signal_when_current_loop_drops()
                // `ctx` goes here: the loop's socket holds the last handle.
            })
        }
        .unwrap();
        let dropped = common::join(raw);
        // may drops the coroutine's locals on this worker once the join has fired: wait for it
        // here (parking: the worker must be free to do it).
        let place = loop {
            match dropped.try_recv() {
                Ok(place) => break place,
                Err(_) => may::coroutine::sleep(ms(1)),
            }
        };
        assert_eq!(place, RunsOn::Thread, "dropped outside any coroutine");
        let ping = common::Ping::start();
        ping.wait_rounds(3); // a termination that blocked the worker would hang here
        ping.stop();
        let warned = common::logs::matching(log::Level::Warn, "dropped by may after its coroutine");
        assert!(!warned.is_empty(), "the background termination is logged");
        // The peer comes: the queued message goes out, and the termination ends.
        pull.bind(&endpoint).unwrap();
        assert_eq!(recv_within(&pull, LIMIT), frames(&["queued"]));
    });
}

#[test]
fn two_hub_tasks_each_run_their_own_current_loop() {
    on_hub(|| {
        let ctx = zmq::Context::new();
        let (pull_a, push_a) = common::socket_pair(&ctx, "ev-current-hub", zmq::PULL, zmq::PUSH);
        let (pull_b, push_b) = common::socket_pair(&ctx, "ev-current-hub", zmq::PULL, zmq::PUSH);
        let (a_started, b_started) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let a = hub::spawn({
            let started = a_started.clone();
            move || current_loop_until_a_message(pull_a, move || started.set(true))
        });
        // b asks for its current loop once a's runs, on the same thread.
        let b = hub::spawn({
            let (go, started) = (a_started.clone(), b_started.clone());
            move || {
                hub_wait_for(&go);
                current_loop_until_a_message(pull_b, move || started.set(true))
            }
        });
        hub_wait_for(&b_started);
        let alive = counter(); // another task keeps running while both loops wait
        let ticker = hub::spawn({
            let alive = alive.clone();
            move || {
                for _ in 0..3 {
                    hub::sleep(ms(1));
                    bump(&alive);
                }
            }
        });
        ticker.join().unwrap();
        assert_eq!(alive.get(), 3);
        push_b.send("to b", 0).unwrap();
        push_a.send("to a", 0).unwrap();
        check_own_loops(a.join().unwrap(), b.join().unwrap());
    });
}

#[test]
fn a_hub_task_s_loop_is_its_own_and_the_hub_thread_keeps_the_thread_s() {
    within(LIMIT, || {
        let hub = Hub::new().unwrap();
        let thread_loop = IOLoop::current();
        let outside = thread_loop.clone();
        let (differs, stable, shared) = hub.block_on(move || {
            let mine = IOLoop::current();
            hub::sleep(ms(1)); // a park
            let stable = IOLoop::current() == mine;
            let lent = mine.clone(); // hub tasks need not be Send: a loop can be shared by hand
            let shared = hub::spawn(move || {
                lent.make_current();
                IOLoop::current() == lent
            });
            (mine != outside, stable, shared.join().unwrap())
        });
        assert!(differs, "a task's current loop is not its thread's");
        assert!(stable, "the same loop across a park");
        assert!(shared, "make_current in another task shares the loop");
        assert_eq!(
            IOLoop::current(),
            thread_loop,
            "outside tasks: the thread's loop"
        );
        let first = hub.block_on(IOLoop::current);
        let second = hub.block_on(IOLoop::current);
        assert_ne!(first, second, "each block_on is a task of its own");
    });
}

#[test]
fn a_hub_task_s_current_loop_is_dropped_inside_it_before_its_join_returns() {
    on_hub(|| {
        let dropped = hub::spawn(signal_when_current_loop_drops).join().unwrap();
        assert_eq!(dropped.try_recv(), Ok(RunsOn::HubTask));
    });
}

#[test]
fn a_loop_from_current_drives_streams_and_timers() {
    let (replies, ticks) = within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (rep, req) = common::socket_pair(&ctx, "ev-current-echo", zmq::REP, zmq::REQ);
        let echo = ZmqStream::new(rep, &IOLoop::current()).unwrap();
        echo.on_recv_stream(|stream, frames| stream.send_multipart(frames));

        let client_done = Arc::new(AtomicBool::new(false));
        let done = client_done.clone();
        let client = thread::spawn(move || {
            req.set_rcvtimeo(LIMIT.as_millis() as i32).unwrap();
            let mut replies = Vec::new();
            for i in 0..3 {
                req.send(format!("request {i}").as_str(), 0).unwrap();
                replies.push(req.recv_string(0).unwrap().unwrap());
            }
            done.store(true, Ordering::SeqCst);
            replies
        });
        // Stops the loop once the client is done and the timer has ticked thrice.
        let ticks = counter();
        let t = ticks.clone();
        let timer = IOLoop::current().add_timer(ms(1), 0, move || {
            if bump(&t) >= 3 && client_done.load(Ordering::SeqCst) {
                IOLoop::current().stop();
            }
        });
        IOLoop::current().start().unwrap();
        timer.cancel();
        echo.close(None);
        (client.join().unwrap(), ticks.get())
    });
    assert_eq!(replies, ["request 0", "request 1", "request 2"]);
    assert!(ticks >= 3);
}
