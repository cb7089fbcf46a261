//! `zmqloop::eventloop`: the contract of [`IOLoop`] and [`ZmqStream`], every test bounded in
//! time.
//!
//! What it proves:
//! - IOLoop handlers: socket (`Rc<Socket>`) and plain-fd handlers get their events, refuse a
//!   second registration (EBUSY), pause with empty events, stop when removed; `close` drops them.
//! - Callbacks: run on the next iteration; one added by a callback waits for the following
//!   iteration; pending callbacks keep the poll from waiting, yet a busy callback chain does not
//!   starve ready handlers; `IOLoopHandle` wakes a waiting loop from another thread (callback
//!   on the loop thread) and stops it.
//! - Timers: `call_later`/`call_at` in deadline order (ties in insertion order), never early;
//!   cancel / `remove_timeout`; `PeriodicCallback` (start/stop/is_running, one tick per period,
//!   missed ticks skipped, not bunched); `add_timer` with a count and until cancelled; tickets
//!   (delay, reset, cancel).
//! - Lifecycle: stop before start, start/stop/start, `close`, ETERM ends `start` with `Ok`
//!   quietly, panicking handlers/callbacks/timeouts are logged and the loop goes on.
//! - ZmqStream: whole multipart messages, pause/resume without loss, send callbacks (per stream
//!   and per send) in order, `flush` counts and limits, state queries, `close` with linger
//!   (delivers, or reports every undelivered message), close callback once, panicking receive
//!   callback, ROUTER_MANDATORY errors not blocking the queue, fairness between busy streams,
//!   ETERM with streams (quiet, and nothing left holding a socket).
//! - Green: the same loop inside a may coroutine (on ONE worker) and inside a hub task parks
//!   only that coroutine/task, and ends with `Ok` on ETERM.
//!
//! Some tests reproduce bugs found while writing this file; the library is fixed, and they
//! guard against regressions.
//!
//! Plain-thread loops run on a spawned thread under [`within`]: a hang fails the test with
//! "hung" instead of stalling the suite. Assertions are made outside loop callbacks, because
//! the loop catches (and logs) panics of callbacks by design.

mod common;

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use zmqloop::eventloop::{Frames, IOLoop, PeriodicCallback, Ticket, Timer, ZmqStream};
use zmqloop::green as zmq;
use zmqloop::green::hub::{self, Hub};

/// Bound of each plain-thread test body.
const LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Harness

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

// ---------------------------------------------------------------------------------------------
// IOLoop: handlers

#[test]
fn socket_handler_gets_events_pauses_and_stops_when_removed() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (pull, push) = common::socket_pair(&ctx, "ev-socket-handler", zmq::PULL, zmq::PUSH);
        let pull = Rc::new(pull);

        let ioloop = IOLoop::new().unwrap();
        let got: Seen<(String, zmq::PollEvents)> = seen();
        let handler = {
            let (pull, got, stopper) = (pull.clone(), got.clone(), ioloop.clone());
            move |events: zmq::PollEvents| {
                let message = pull.recv_string(zmq::DONTWAIT).unwrap().unwrap();
                got.borrow_mut().push((message, events));
                stopper.stop();
            }
        };
        ioloop
            .add_handler(pull.clone(), zmq::POLLIN, handler)
            .unwrap();
        assert_eq!(
            ioloop.add_handler(pull.clone(), zmq::POLLIN, |_| {}),
            Err(zmq::Error::EBUSY),
            "a second handler for the same socket must be refused"
        );

        push.send("a", 0).unwrap();
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 1);
        assert_eq!(got.borrow()[0].0, "a");
        assert!(got.borrow()[0].1.contains(zmq::POLLIN));

        // Empty events pause the handler: the message stays in the socket.
        ioloop
            .update_handler(&pull, zmq::PollEvents::empty())
            .unwrap();
        push.send("b", 0).unwrap();
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 1, "a paused handler was called");

        // Resumed: it gets the message that waited.
        ioloop.update_handler(&pull, zmq::POLLIN).unwrap();
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 2);
        assert_eq!(got.borrow()[1].0, "b");

        // Removed: the loop hands its reference back and never calls the handler again.
        let returned = ioloop.remove_handler(&pull).unwrap();
        assert!(Rc::ptr_eq(&returned, &pull));
        drop(returned);
        assert_eq!(
            Rc::strong_count(&pull),
            1,
            "the loop (or the removed handler) still holds the socket"
        );
        push.send("c", 0).unwrap();
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 2, "a removed handler was called");
        assert_eq!(recv_within(&pull, ms(1000)), frames(&["c"]));

        assert_eq!(ioloop.remove_handler(&pull).err(), Some(zmq::Error::ENOENT));
        assert_eq!(
            ioloop.update_handler(&pull, zmq::POLLIN),
            Err(zmq::Error::ENOENT)
        );
    });
}

#[test]
fn fd_handler_gets_events_pauses_and_stops_when_removed() {
    within(LIMIT, || {
        let (reader, writer) = pipe();
        let fd = reader.as_raw_fd();
        let ioloop = IOLoop::new().unwrap();
        let got: Seen<(Vec<u8>, zmq::PollEvents)> = seen();
        let handler = {
            let (got, stopper) = (got.clone(), ioloop.clone());
            move |events: zmq::PollEvents| {
                got.borrow_mut().push((read_available(fd), events));
                stopper.stop();
            }
        };
        ioloop.add_fd_handler(fd, zmq::POLLIN, handler).unwrap();
        assert_eq!(
            ioloop.add_fd_handler(fd, zmq::POLLIN, |_| {}),
            Err(zmq::Error::EBUSY),
            "a second handler for the same fd must be refused"
        );

        write_byte(&writer, 1);
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 1);
        assert_eq!(got.borrow()[0].0, vec![1]);
        assert!(got.borrow()[0].1.contains(zmq::POLLIN));

        ioloop
            .update_fd_handler(fd, zmq::PollEvents::empty())
            .unwrap();
        write_byte(&writer, 2);
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 1, "a paused fd handler was called");

        ioloop.update_fd_handler(fd, zmq::POLLIN).unwrap();
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 2);
        assert_eq!(got.borrow()[1].0, vec![2]);

        ioloop.remove_fd_handler(fd).unwrap();
        write_byte(&writer, 3);
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 2, "a removed fd handler was called");
        assert_eq!(read_available(fd), vec![3]);

        assert_eq!(ioloop.remove_fd_handler(fd), Err(zmq::Error::ENOENT));
        assert_eq!(
            ioloop.update_fd_handler(fd, zmq::POLLIN),
            Err(zmq::Error::ENOENT)
        );

        // POLLOUT on the write end: ready at once.
        let out = seen();
        let (record, stopper) = (out.clone(), ioloop.clone());
        ioloop
            .add_fd_handler(writer.as_raw_fd(), zmq::POLLOUT, move |events| {
                record.borrow_mut().push(events);
                stopper.stop();
            })
            .unwrap();
        ioloop.start().unwrap();
        assert_eq!(out.borrow().len(), 1);
        assert!(out.borrow()[0].contains(zmq::POLLOUT));
        ioloop.remove_fd_handler(writer.as_raw_fd()).unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// IOLoop: callbacks

/// Counts the loop's iterations with a timeout that is due at once and re-adds itself.
fn count_iterations(ioloop: &IOLoop, count: Rc<Cell<usize>>) {
    let next = ioloop.clone();
    ioloop.call_at(Instant::now(), move || {
        bump(&count);
        count_iterations(&next, count);
    });
}

#[test]
fn a_callback_added_by_a_callback_runs_in_the_following_iteration() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        // A timeout due at once that re-adds itself: every iteration runs it exactly once
        // (the re-added one is due in the next), so it counts iterations.
        let iteration = counter();
        count_iterations(&ioloop, iteration.clone());
        let order: Seen<(&str, usize)> = seen();
        let (l, o, it) = (ioloop.clone(), order.clone(), iteration.clone());
        ioloop.add_callback(move || {
            o.borrow_mut().push(("a", it.get()));
            let (l2, o2, it2) = (l.clone(), o.clone(), it.clone());
            l.add_callback(move || {
                o2.borrow_mut().push(("a2", it2.get()));
                let (l3, o3, it3) = (l2.clone(), o2.clone(), it2.clone());
                l2.add_callback(move || {
                    o3.borrow_mut().push(("a3", it3.get()));
                    l3.stop();
                });
            });
        });
        let (o, it) = (order.clone(), iteration.clone());
        ioloop.add_callback(move || o.borrow_mut().push(("b", it.get())));

        ioloop.start().unwrap();
        assert_eq!(
            *order.borrow(),
            [("a", 0), ("b", 0), ("a2", 1), ("a3", 2)],
            "callbacks must run in the iteration after the one that added them"
        );
        ioloop.close();
    });
}

#[test]
fn pending_callbacks_keep_the_poll_from_waiting() {
    // No handlers and no timers: if the poll waited while a callback is pending, it would wait
    // forever and the test would fail with "hung".
    within(LIMIT, || {
        fn chain(ioloop: IOLoop, count: Rc<Cell<usize>>) {
            if bump(&count) == 100 {
                ioloop.stop();
                return;
            }
            let next = ioloop.clone();
            ioloop.add_callback(move || chain(next, count));
        }
        let ioloop = IOLoop::new().unwrap();
        let count = counter();
        let (l, c) = (ioloop.clone(), count.clone());
        ioloop.add_callback(move || chain(l, c));
        ioloop.start().unwrap();
        assert_eq!(count.get(), 100);
    });
}

#[test]
fn a_busy_callback_chain_does_not_starve_handlers() {
    within(LIMIT, || {
        fn forever(ioloop: IOLoop, count: Rc<Cell<usize>>) {
            bump(&count);
            let next = ioloop.clone();
            ioloop.add_callback(move || forever(next, count));
        }
        let ioloop = IOLoop::new().unwrap();
        let (reader, writer) = pipe();
        write_byte(&writer, 1);
        let chain = counter();
        let at_handler = Rc::new(Cell::new(None));
        let (l, c, at) = (ioloop.clone(), chain.clone(), at_handler.clone());
        ioloop
            .add_fd_handler(reader.as_raw_fd(), zmq::POLLIN, move |_| {
                at.set(Some(c.get()));
                l.stop();
            })
            .unwrap();
        let (l, c) = (ioloop.clone(), chain.clone());
        ioloop.add_callback(move || forever(l, c));
        ioloop.start().unwrap();
        let at = at_handler.get().expect("the ready fd's handler never ran");
        assert!(
            (1..=100).contains(&at),
            "the ready handler ran only after {at} iterations of a callback chain"
        );
        ioloop.close(); // drops the pending link of the chain
    });
}

#[test]
fn a_handle_wakes_a_waiting_loop_from_another_thread() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let handle = ioloop.handle();
        // After its first iteration the loop waits with no timer and no handler.
        let started = started_signal(&ioloop);
        let (ran_tx, ran_rx) = mpsc::channel();
        let helper = thread::spawn(move || {
            started.recv().unwrap();
            let stopper = handle.clone();
            handle.add_callback(move || {
                ran_tx.send(thread::current().id()).unwrap();
                stopper.stop();
            });
        });
        ioloop.start().unwrap();
        helper.join().unwrap();
        assert_eq!(
            ran_rx.try_recv().expect("the remote callback did not run"),
            thread::current().id(),
            "a remote callback must run on the loop thread"
        );
    });
}

#[test]
fn a_handle_stops_a_waiting_loop_from_another_thread() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let handle = ioloop.handle();
        let started = started_signal(&ioloop);
        let helper = thread::spawn(move || {
            started.recv().unwrap();
            handle.stop();
        });
        ioloop.start().unwrap();
        assert!(!ioloop.is_running());
        helper.join().unwrap();
        // It can be started again afterwards (the remote stop was consumed).
        stop_after(&ioloop, ms(20));
        let started = Instant::now();
        ioloop.start().unwrap();
        assert!(
            started.elapsed() >= ms(20),
            "a consumed remote stop stopped again"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// IOLoop: timeouts

#[test]
fn timeouts_run_in_deadline_order_then_insertion_order_never_early() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let t0 = Instant::now();
        let order: Seen<(&str, Duration)> = seen();
        let record = |name: &'static str| {
            let order = order.clone();
            move || order.borrow_mut().push((name, t0.elapsed()))
        };
        let last = record("c");
        let stopper = ioloop.clone();
        ioloop.call_later(ms(30), move || {
            last();
            stopper.stop();
        });
        ioloop.call_later(ms(10), record("a"));
        let tie = t0 + ms(20);
        ioloop.call_at(tie, record("b1"));
        ioloop.call_at(tie, record("b2"));
        ioloop.call_at(tie, record("b3"));
        ioloop.call_at(t0, record("now"));
        ioloop.start().unwrap();

        let order = order.borrow();
        let names: Vec<_> = order.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["now", "a", "b1", "b2", "b3", "c"]);
        for (name, at) in order.iter() {
            let due = match *name {
                "now" => ms(0),
                "a" => ms(10),
                "c" => ms(30),
                _ => ms(20),
            };
            assert!(*at >= due, "{name} ran early: {at:?} < {due:?}");
        }
    });
}

#[test]
fn cancelled_timeouts_never_run() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let ran: Seen<&str> = seen();
        let record = |name: &'static str| {
            let ran = ran.clone();
            move || ran.borrow_mut().push(name)
        };
        let cancelled = ioloop.call_later(ms(5), record("cancelled"));
        let removed = ioloop.call_later(ms(5), record("removed"));
        // Far in the future, so never due in the same iteration as its canceller (that case
        // is `a_timeout_cancelled_by_one_due_in_the_same_iteration_does_not_run`).
        let later = ioloop.call_later(Duration::from_secs(10), record("cancelled by a timeout"));
        let runs = ioloop.call_later(ms(10), record("runs"));
        let cancel_result = Rc::new(Cell::new(None));
        let (result, victim, l) = (cancel_result.clone(), later.clone(), ioloop.clone());
        ioloop.call_later(ms(15), move || {
            result.set(Some(victim.cancel()));
            stop_after(&l, ms(30));
        });

        assert!(cancelled.is_pending());
        assert!(cancelled.cancel());
        assert!(!cancelled.is_pending());
        assert!(!cancelled.cancel(), "a second cancel must return false");
        assert!(ioloop.remove_timeout(&removed));
        assert!(!removed.is_pending());

        ioloop.start().unwrap();
        assert_eq!(*ran.borrow(), ["runs"]);
        assert_eq!(cancel_result.get(), Some(true));
        assert!(!runs.is_pending());
        assert!(
            !runs.cancel(),
            "cancel must return false once the timeout ran"
        );
        assert!(!ioloop.remove_timeout(&runs));
    });
}

#[test]
fn a_timeout_cancelled_by_one_due_in_the_same_iteration_does_not_run() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let deadline = Instant::now() + ms(5);
        let victim_ran = Rc::new(Cell::new(false));
        let cancelled = Rc::new(Cell::new(None));
        let slot: Rc<RefCell<Option<zmqloop::eventloop::Timeout>>> = Rc::new(RefCell::new(None));
        let (c, s) = (cancelled.clone(), slot.clone());
        // Same deadline, added first: runs first, in the same iteration as the victim.
        ioloop.call_at(deadline, move || {
            c.set(s.borrow().as_ref().map(|victim| victim.cancel()));
        });
        let v = victim_ran.clone();
        *slot.borrow_mut() = Some(ioloop.call_at(deadline, move || v.set(true)));
        stop_after(&ioloop, ms(30));
        ioloop.start().unwrap();
        assert_eq!(
            cancelled.get(),
            Some(true),
            "cancel() of a timeout not run yet"
        );
        assert!(!victim_ran.get(), "a cancelled timeout ran");
    });
}

// ---------------------------------------------------------------------------------------------
// IOLoop: periodic callbacks, repeating timers, tickets

/// After `delay`, stops `periodic` from outside its work, records the count of `ticks` at that
/// moment and stops the loop `watch` later (a window for ticks that must not come). Returns the
/// recorded count (0 until then).
fn stop_periodic_later(
    ioloop: &IOLoop,
    periodic: &Rc<PeriodicCallback>,
    ticks: &Rc<Cell<usize>>,
    delay: Duration,
    watch: Duration,
) -> Rc<Cell<usize>> {
    let at_stop = Rc::new(Cell::new(0));
    let (p, t, l, a) = (
        periodic.clone(),
        ticks.clone(),
        ioloop.clone(),
        at_stop.clone(),
    );
    ioloop.call_later(delay, move || {
        p.stop();
        a.set(t.get());
        stop_after(&l, watch);
    });
    at_stop
}

#[test]
fn periodic_callback_ticks_until_stopped() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let ticks = counter();
        let fifth_after = Rc::new(Cell::new(None));
        let slot: Rc<RefCell<Option<Rc<PeriodicCallback>>>> = Rc::new(RefCell::new(None));
        let started = Instant::now();
        let periodic = {
            let (ticks, slot, stopper) = (ticks.clone(), slot.clone(), ioloop.clone());
            let fifth = fifth_after.clone();
            Rc::new(PeriodicCallback::new(&ioloop, ms(10), move || {
                if bump(&ticks) == 5 {
                    fifth.set(Some(started.elapsed()));
                    // Stop from inside the work, then watch for 50 ms.
                    if let Some(periodic) = slot.borrow().as_ref() {
                        periodic.stop();
                    }
                    stop_after(&stopper, ms(50));
                }
            }))
        };
        *slot.borrow_mut() = Some(periodic.clone());
        assert!(!periodic.is_running());
        periodic.start();
        periodic.start(); // a second start must not start a second chain
        assert!(periodic.is_running());
        ioloop.start().unwrap();
        assert_eq!(ticks.get(), 5, "ticks after stop()");
        assert!(!periodic.is_running());
        // Ticks fall on the 10 ms grid, at most one per period: the fifth one cannot come
        // before 50 ms (a doubled chain, or bunching, would make it early).
        let fifth = fifth_after.get().unwrap();
        assert!(
            fifth >= ms(50),
            "five ticks of a 10 ms period took only {fifth:?}"
        );

        // Started again, then stopped from outside the work.
        periodic.start();
        let at_stop = stop_periodic_later(&ioloop, &periodic, &ticks, ms(40), ms(40));
        ioloop.start().unwrap();
        assert!(
            at_stop.get() > 5,
            "a restarted periodic callback did not tick"
        );
        assert_eq!(ticks.get(), at_stop.get(), "ticks after stop()");
        slot.borrow_mut().take(); // breaks the cycle periodic -> work -> slot
    });
}

#[test]
fn periodic_callback_restarted_from_its_own_work_keeps_one_chain() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let ticks = counter();
        let slot: Rc<RefCell<Option<Rc<PeriodicCallback>>>> = Rc::new(RefCell::new(None));
        let periodic = {
            let (ticks, slot) = (ticks.clone(), slot.clone());
            Rc::new(PeriodicCallback::new(&ioloop, ms(10), move || {
                if bump(&ticks) == 1 {
                    if let Some(periodic) = slot.borrow().as_ref() {
                        periodic.stop(); // restart: e.g. to change phase
                        periodic.start();
                    }
                }
            }))
        };
        *slot.borrow_mut() = Some(periodic.clone());
        periodic.start();
        let at_stop = stop_periodic_later(&ioloop, &periodic, &ticks, ms(55), ms(50));
        ioloop.start().unwrap();
        slot.borrow_mut().take();
        assert_eq!(ticks.get(), at_stop.get(), "ticks after stop()");
        assert!(
            at_stop.get() <= 7,
            "{} ticks in 55 ms of a 10 ms period: two chains",
            at_stop.get()
        );
    });
}

#[test]
fn periodic_callback_skips_missed_ticks_instead_of_bunching_them() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let (ticks, tick) = counting();
        let periodic = PeriodicCallback::new(&ioloop, ms(10), tick);
        periodic.start();
        let before = Rc::new(Cell::new(0));
        let after = Rc::new(Cell::new(0));
        let (l, t, b, a) = (ioloop.clone(), ticks.clone(), before.clone(), after.clone());
        ioloop.call_later(ms(25), move || {
            // The loop thread is busy for ~55 ms: five or six ticks are missed.
            thread::sleep(ms(55));
            b.set(t.get());
            let (l2, t2) = (l.clone(), t.clone());
            l.call_later(ms(3), move || {
                a.set(t2.get());
                l2.stop();
            });
        });
        ioloop.start().unwrap();
        periodic.stop();
        assert!(before.get() >= 1, "the periodic callback never ticked");
        let jump = after.get() - before.get();
        assert!(
            (1..5).contains(&jump),
            "after a 55 ms stall the tick count jumped by {jump}: missed ticks must be skipped \
             (one late tick), not bunched"
        );
    });
}

#[test]
fn a_panicking_periodic_callback_or_timer_keeps_ticking_and_logs_each_panic() {
    within(LIMIT, || {
        common::logs::capture();
        let ioloop = IOLoop::new().unwrap();
        let (ticks, calls) = (counter(), counter());
        let (t, c) = (ticks.clone(), calls.clone());
        let periodic = PeriodicCallback::new(&ioloop, ms(10), move || {
            bump(&t);
            panic!("tick failure on purpose");
        });
        periodic.start();
        let timer = ioloop.add_timer(ms(10), 0, move || {
            bump(&c);
            panic!("timer failure on purpose");
        });
        // Stops the loop once both have failed five times. Had the first panic stopped them,
        // only the two-second guard would end the loop, with one call each.
        let (t, c, l) = (ticks.clone(), calls.clone(), ioloop.clone());
        let _watch = ioloop.add_timer(ms(5), 0, move || {
            if t.get() >= 5 && c.get() >= 5 {
                l.stop();
            }
        });
        stop_after(&ioloop, Duration::from_secs(2));
        ioloop.start().unwrap();
        assert!(
            ticks.get() >= 5,
            "{} ticks: a panic stopped the periodic callback",
            ticks.get()
        );
        assert!(
            calls.get() >= 5,
            "{} calls: a panic stopped the timer",
            calls.get()
        );
        assert!(periodic.is_running() && timer.is_active());
        let logs = common::logs::here();
        let logged = |what: &str| logs.iter().filter(|line| line.contains(what)).count();
        assert_eq!(
            logged("tick failure on purpose"),
            ticks.get(),
            "one log line per tick"
        );
        assert_eq!(
            logged("timer failure on purpose"),
            calls.get(),
            "one log line per call"
        );
        periodic.stop();
    });
}

#[test]
fn add_timer_runs_the_given_number_of_times_or_until_cancelled() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let three = counter();
        let (c, l) = (three.clone(), ioloop.clone());
        let timer = ioloop.add_timer(ms(5), 3, move || {
            if bump(&c) == 3 {
                stop_after(&l, ms(50)); // watch for a fourth call
            }
        });
        assert!(timer.is_active());
        ioloop.start().unwrap();
        assert_eq!(three.get(), 3);
        assert!(!timer.is_active());

        // times = 0: until cancelled (here from inside its own work, at the tenth call).
        let endless = counter();
        let slot: Rc<RefCell<Option<Timer>>> = Rc::new(RefCell::new(None));
        let (c, l, s) = (endless.clone(), ioloop.clone(), slot.clone());
        let timer = ioloop.add_timer(ms(2), 0, move || {
            if bump(&c) == 10 {
                if let Some(timer) = s.borrow().as_ref() {
                    timer.cancel();
                }
                stop_after(&l, ms(50));
            }
        });
        *slot.borrow_mut() = Some(timer);
        ioloop.start().unwrap();
        assert_eq!(endless.get(), 10);
        assert!(!slot.borrow().as_ref().unwrap().is_active());

        // Cancelled from outside before it ever ran.
        let (never, call) = counting();
        let timer = ioloop.add_timer(ms(5), 0, call);
        timer.cancel();
        assert!(!timer.is_active());
        stop_after(&ioloop, ms(40));
        ioloop.start().unwrap();
        assert_eq!(never.get(), 0);
    });
}

#[test]
fn tickets_fire_after_the_delay_unless_reset_or_cancelled() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        // Long against the 10 ms of the reset/cancel below, so that they never share an
        // iteration with the tickets' first deadline.
        ioloop.set_ticket_delay(ms(150));
        let t0 = Instant::now();
        let fired: Seen<(&str, Duration)> = seen();
        let record = |name: &'static str| {
            let fired = fired.clone();
            move || fired.borrow_mut().push((name, t0.elapsed()))
        };
        let plain = ioloop.add_ticket(record("plain"));
        let (f, l) = (fired.clone(), ioloop.clone());
        let reset: Rc<Ticket> = Rc::new(ioloop.add_ticket(move || {
            f.borrow_mut().push(("reset", t0.elapsed()));
            // The cancelled one was due at 150 ms, before this one: it would have run by now.
            stop_after(&l, ms(10));
        }));
        let cancelled = Rc::new(ioloop.add_ticket(record("cancelled")));
        assert!(plain.is_pending() && reset.is_pending() && cancelled.is_pending());
        let (r, c) = (reset.clone(), cancelled.clone());
        ioloop.call_later(ms(10), move || {
            r.reset(); // postponed to >= 160 ms
            c.cancel();
        });
        ioloop.start().unwrap();

        let fired = fired.borrow();
        let names: Vec<_> = fired.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["plain", "reset"]);
        assert!(
            fired[0].1 >= ms(150),
            "a ticket fired early: {:?}",
            fired[0].1
        );
        assert!(
            fired[1].1 >= ms(160),
            "a reset ticket fired at {:?}, before its postponed deadline",
            fired[1].1
        );
        assert!(!plain.is_pending());
        assert!(!cancelled.is_pending());
    });
}

// ---------------------------------------------------------------------------------------------
// IOLoop: lifecycle, close, ETERM, panics

#[test]
fn stop_before_start_returns_at_once_and_the_loop_restarts() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        // Nothing could wake this loop: start returns only thanks to the earlier stop.
        ioloop.stop();
        ioloop.start().unwrap();
        assert!(!ioloop.is_running());

        let runs = counter();
        let running_inside = Rc::new(Cell::new(false));
        for round in 1..=3 {
            let (l, r, inside) = (ioloop.clone(), runs.clone(), running_inside.clone());
            ioloop.add_callback(move || {
                inside.set(l.is_running());
                bump(&r);
                l.stop();
            });
            ioloop.start().unwrap();
            assert_eq!(runs.get(), round);
            assert!(running_inside.get(), "is_running was false inside start");
            assert!(!ioloop.is_running());
        }
        stop_after(&ioloop, ms(5));
        ioloop.start().unwrap();
    });
}

#[test]
fn close_removes_handlers_callbacks_and_timeouts() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (pull, push) = common::socket_pair(&ctx, "ev-close", zmq::PULL, zmq::PUSH);
        let pull = Rc::new(pull);
        push.send("ready", 0).unwrap();
        let (_reader, writer) = pipe();

        let ioloop = IOLoop::new().unwrap();
        let fired: Seen<&str> = seen();
        let record = |name: &'static str| {
            let fired = fired.clone();
            move || fired.borrow_mut().push(name)
        };
        let on_socket = record("socket handler");
        ioloop
            .add_handler(pull.clone(), zmq::POLLIN, move |_| on_socket())
            .unwrap();
        let on_fd = record("fd handler");
        ioloop
            .add_fd_handler(writer.as_raw_fd(), zmq::POLLOUT, move |_| on_fd())
            .unwrap();
        ioloop.add_callback(record("callback"));
        let timeout = ioloop.call_later(ms(1), record("timeout"));
        assert_eq!(Rc::strong_count(&pull), 2);

        ioloop.close();
        assert_eq!(
            Rc::strong_count(&pull),
            1,
            "close must drop the loop's socket"
        );
        assert!(!timeout.is_pending());
        assert_eq!(
            ioloop.update_handler(&pull, zmq::POLLIN),
            Err(zmq::Error::ENOENT)
        );
        assert_eq!(
            ioloop.remove_fd_handler(writer.as_raw_fd()),
            Err(zmq::Error::ENOENT)
        );

        // Ready socket, always-writable fd, due timeout, pending callback: none of them runs.
        stop_after(&ioloop, ms(30));
        ioloop.start().unwrap();
        assert!(
            fired.borrow().is_empty(),
            "ran after close: {:?}",
            fired.borrow()
        );

        // The loop is usable again, and the socket can be registered again.
        let on_socket = record("socket handler again");
        let stopper = ioloop.clone();
        ioloop
            .add_handler(pull.clone(), zmq::POLLIN, move |_| {
                on_socket();
                stopper.stop();
            })
            .unwrap();
        ioloop.start().unwrap();
        assert_eq!(*fired.borrow(), ["socket handler again"]);
        ioloop.close();
    });
}

#[test]
fn a_timeout_from_before_close_does_not_touch_later_timeouts() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let stale = ioloop.call_later(Duration::from_secs(3600), || {});
        ioloop.close();
        let ran = Rc::new(Cell::new(false));
        let (r, l) = (ran.clone(), ioloop.clone());
        let _fresh = ioloop.call_later(ms(1), move || {
            r.set(true);
            l.stop();
        });
        assert!(!stale.is_pending(), "a closed-away timeout reports pending");
        assert!(
            !stale.cancel(),
            "a closed-away timeout cancelled a new timeout"
        );
        stop_after(&ioloop, ms(100));
        ioloop.start().unwrap();
        assert!(ran.get(), "the new timeout never ran");
    });
}

#[test]
fn cancelling_a_timeout_that_owns_a_pending_ticket_does_not_panic() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let expired = Rc::new(Cell::new(false));
        let e = expired.clone();
        let ticket = ioloop.add_ticket(move || e.set(true));
        // A timeout owning the ticket (e.g. "reset it later"), cancelled before it runs.
        let timeout = ioloop.call_later(ms(10), move || ticket.reset());
        assert!(timeout.cancel());
        ioloop.set_ticket_delay(ms(1));
        stop_after(&ioloop, ms(20));
        ioloop.start().unwrap();
        assert!(!expired.get(), "the dropped ticket still fired");
    });
}

#[test]
fn closing_a_loop_whose_timeout_owns_a_periodic_callback_does_not_panic() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let (ticks, tick) = counting();
        let periodic = PeriodicCallback::new(&ioloop, ms(1), tick);
        periodic.start();
        ioloop.call_later(Duration::from_secs(3600), move || periodic.stop());
        ioloop.close();
        stop_after(&ioloop, ms(20));
        ioloop.start().unwrap();
        assert_eq!(
            ticks.get(),
            0,
            "a periodic callback dropped by close() still ticked"
        );
    });
}

#[test]
fn context_termination_ends_start_with_ok() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        // The loop's handler holds the only reference to its socket, released by close() below.
        add_idle_pull_handler(&ctx, &ioloop, "ev-eterm-loop");
        let destroyed = destroy_once_started(&ioloop, &ctx);
        let outcome = ioloop.start();
        ioloop.close();
        assert_eq!(outcome, Ok(()), "ETERM must end start() with Ok");
        assert_eq!(destroyed.recv().unwrap(), Ok(()));
        assert!(
            common::logs::here().is_empty(),
            "ETERM was not quiet: {:?}",
            common::logs::here()
        );
        // Closed, the loop holds nothing of the dead context and runs again.
        stop_after(&ioloop, ms(10));
        assert_eq!(ioloop.start(), Ok(()));
    });
}

#[test]
fn panicking_handlers_callbacks_and_timeouts_are_logged_and_the_loop_goes_on() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        // Stops the loop once the handler ran again (bit 1) and the later timeout ran (bit 2).
        let done = Rc::new(Cell::new(0u8));
        let finish = {
            let (done, l) = (done.clone(), ioloop.clone());
            Rc::new(move |bit: u8| {
                done.set(done.get() | bit);
                if done.get() == 3 {
                    l.stop();
                }
            })
        };
        let (reader, writer) = pipe();
        // Kept open until the end: EOF would make the pipe readable for ever.
        let writer = Rc::new(writer);
        let fd = reader.as_raw_fd();
        let handled = counter();
        let (h, l, w, f) = (
            handled.clone(),
            ioloop.clone(),
            writer.clone(),
            finish.clone(),
        );
        ioloop
            .add_fd_handler(fd, zmq::POLLIN, move |_| {
                let bytes = read_available(fd);
                if bump(&h) == 1 {
                    // The next byte comes only after this call: the handler must get it.
                    let w = w.clone();
                    l.add_callback(move || write_byte(&w, 2));
                    panic!("handler failure on purpose ({bytes:?})");
                }
                f(1);
            })
            .unwrap();
        write_byte(&writer, 1);
        let after: Seen<&str> = seen();
        ioloop.add_callback(|| panic!("callback failure on purpose"));
        let a = after.clone();
        ioloop.add_callback(move || a.borrow_mut().push("callback after the panicking one"));
        ioloop.call_later(ms(1), || panic!("timeout failure on purpose"));
        let (a, f) = (after.clone(), finish.clone());
        ioloop.call_later(ms(2), move || {
            a.borrow_mut().push("timeout after the panicking one");
            f(2);
        });
        ioloop.start().unwrap();
        assert_eq!(
            *after.borrow(),
            [
                "callback after the panicking one",
                "timeout after the panicking one",
            ]
        );
        assert_eq!(handled.get(), 2, "the fd handler was not called again");
        let logs = common::logs::here();
        for what in ["callback", "timeout", "handler"] {
            assert!(
                logs.iter()
                    .any(|line| line.contains(&format!("a {what} panicked"))),
                "the panicking {what} was not logged: {logs:?}"
            );
        }
        ioloop.close();
    });
}

// ---------------------------------------------------------------------------------------------
// ZmqStream

/// A bound PULL stream and the PUSH socket connected to it (not on the loop).
fn pull_stream(ctx: &zmq::Context, ioloop: &IOLoop, name: &str) -> (ZmqStream, zmq::Socket) {
    let (pull, push) = common::socket_pair(ctx, name, zmq::PULL, zmq::PUSH);
    (ZmqStream::new(pull, ioloop).unwrap(), push)
}

#[test]
fn stream_on_recv_gets_whole_multipart_messages() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-multipart");
        push.send_multipart(["a", "b", "c"], 0).unwrap();
        push.send("d", 0).unwrap();
        push.send_multipart([&b""[..], &b"\x00\xff"[..]], 0)
            .unwrap();
        let got: Seen<Frames> = seen();
        let (g, l) = (got.clone(), ioloop.clone());
        assert!(!stream.receiving());
        stream.on_recv(move |frames| {
            g.borrow_mut().push(frames);
            if g.borrow().len() == 3 {
                l.stop();
            }
        });
        assert!(stream.receiving());
        ioloop.start().unwrap();
        assert_eq!(
            *got.borrow(),
            [
                frames(&["a", "b", "c"]),
                frames(&["d"]),
                vec![vec![], vec![0, 255]]
            ]
        );
        stream.close(None);
    });
}

#[test]
fn stop_on_recv_pauses_and_resuming_loses_nothing() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-pause");
        for i in 0..3 {
            push.send(format!("{i}").as_str(), 0).unwrap();
        }
        let got: Seen<String> = seen();
        let handler = {
            let (got, ioloop) = (got.clone(), ioloop.clone());
            move |stream: &ZmqStream, frames: Frames| {
                got.borrow_mut()
                    .push(String::from_utf8(frames[0].clone()).unwrap());
                let n = got.borrow().len();
                if n == 3 {
                    stream.stop_on_recv(); // pause from inside the callback
                    ioloop.stop();
                } else if n == 103 {
                    ioloop.stop();
                }
            }
        };
        let handler = Rc::new(RefCell::new(handler));
        let h = handler.clone();
        stream.on_recv_stream(move |s, f| (h.borrow_mut())(s, f));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 3);
        assert!(!stream.receiving());

        for i in 3..103 {
            push.send(format!("{i}").as_str(), 0).unwrap();
        }
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 3, "a paused stream delivered messages");

        let h = handler.clone();
        stream.on_recv_stream(move |s, f| (h.borrow_mut())(s, f));
        ioloop.start().unwrap();
        let expected: Vec<String> = (0..103).map(|i| i.to_string()).collect();
        assert_eq!(*got.borrow(), expected, "messages lost or reordered");
        stream.close(None);
        ioloop.close();
    });
}

#[test]
fn stream_sends_in_order_and_reports_each_send() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (pull, push) = common::socket_pair(&ctx, "ev-send", zmq::PULL, zmq::PUSH);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();

        let reported: Seen<(Frames, zmq::Result<()>)> = seen();
        let (r, l) = (reported.clone(), ioloop.clone());
        stream.on_send(move |frames, status| {
            r.borrow_mut().push((frames.to_vec(), *status));
            if r.borrow().len() == 4 {
                l.stop();
            }
        });
        let own: Seen<(Frames, zmq::Result<()>)> = seen();
        assert!(!stream.sending());
        stream.send("one");
        stream.send_string("two");
        let o = own.clone();
        stream.send_multipart_with(["three", "parts"], move |frames, status| {
            o.borrow_mut().push((frames.to_vec(), *status));
        });
        stream.send_multipart(vec![b"four".to_vec(), b"4".to_vec()]);
        stream.send("five");
        assert!(stream.sending());
        ioloop.start().unwrap();
        assert!(!stream.sending());

        let expected_stream = [
            frames(&["one"]),
            frames(&["two"]),
            frames(&["four", "4"]),
            frames(&["five"]),
        ];
        let reported = reported.borrow();
        let sent: Vec<_> = reported.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(sent, expected_stream, "on_send order");
        assert!(reported.iter().all(|(_, status)| status.is_ok()));
        assert_eq!(
            *own.borrow(),
            [(frames(&["three", "parts"]), Ok(()))],
            "the per-send callback must get its own outcome (and on_send must not)"
        );
        let received: Vec<_> = (0..5).map(|_| recv_within(&pull, ms(2000))).collect();
        assert_eq!(
            received,
            [
                frames(&["one"]),
                frames(&["two"]),
                frames(&["three", "parts"]),
                frames(&["four", "4"]),
                frames(&["five"]),
            ],
            "queue order"
        );
        stream.close(None);
    });
}

#[test]
fn flush_handles_what_is_pending_up_to_the_limit() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (near, far) = common::socket_pair(&ctx, "ev-flush", zmq::DEALER, zmq::DEALER);
        for i in 0..5 {
            far.send(format!("in{i}").as_str(), 0).unwrap();
        }
        let ioloop = IOLoop::new().unwrap(); // never started: flush works without it
        let stream = ZmqStream::new(near, &ioloop).unwrap();
        let (received, receive) = counting();
        stream.on_recv(move |_| receive());
        let sent = counter();
        let s = sent.clone();
        stream.on_send(move |_, status| {
            assert!(status.is_ok());
            bump(&s);
        });
        for i in 0..5 {
            stream.send(format!("out{i}"));
        }

        assert_eq!(stream.flush(zmq::POLLIN, Some(2)), 2);
        assert_eq!((received.get(), sent.get()), (2, 0));
        assert_eq!(stream.flush(zmq::POLLOUT, Some(2)), 2);
        assert_eq!((received.get(), sent.get()), (2, 2));
        assert_eq!(stream.flush(zmq::POLLIN | zmq::POLLOUT, Some(3)), 3);
        assert_eq!(received.get() + sent.get(), 7);
        assert_eq!(stream.flush(zmq::POLLIN | zmq::POLLOUT, None), 3);
        assert_eq!((received.get(), sent.get()), (5, 5));
        assert_eq!(stream.flush(zmq::POLLIN | zmq::POLLOUT, None), 0);
        assert!(!stream.sending());
        for i in 0..5 {
            assert_eq!(
                recv_within(&far, ms(2000)),
                vec![format!("out{i}").into_bytes()]
            );
        }
        stream.close(None);
    });
}

#[test]
fn flush_called_inside_on_recv_loses_no_message() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (near, far) = common::socket_pair(&ctx, "ev-flush-nested", zmq::DEALER, zmq::DEALER);
        for i in 0..3 {
            far.send(format!("m{i}").as_str(), 0).unwrap();
        }
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(near, &ioloop).unwrap();
        let got: Seen<String> = seen();
        let g = got.clone();
        stream.on_recv_stream(move |stream, frames| {
            g.borrow_mut()
                .push(String::from_utf8(frames[0].clone()).unwrap());
            // Nested: must not receive a message it cannot hand to this very callback.
            stream.flush(zmq::POLLIN, None);
        });
        stream.flush(zmq::POLLIN, None);
        assert_eq!(*got.borrow(), ["m0", "m1", "m2"]);
        stream.close(None);
    });
}

#[test]
fn a_stream_dropped_without_close_leaves_the_loop_and_frees_its_socket() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-dropped-stream");
        stream.on_recv(|_| {});
        let socket = Rc::downgrade(&stream.socket().unwrap());
        let holder = Rc::new(RefCell::new(Some(stream)));
        let h = holder.clone();
        // Once the loop has registered the stream for POLLIN: drop every handle, then make the
        // socket readable. Nothing can receive any more; the loop must let go of the socket
        // (else it would report it ready on every poll: a busy loop).
        ioloop.call_later(ms(20), move || {
            drop(h.borrow_mut().take());
            push.send("unwanted", 0).unwrap();
        });
        stop_after(&ioloop, ms(200));
        ioloop.start().unwrap();
        assert!(
            socket.upgrade().is_none(),
            "the loop still holds the socket of a dropped stream"
        );
        ioloop.close();
    });
}

#[test]
fn close_with_linger_delivers_the_queue_and_runs_the_close_callback_once() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        let endpoint = common::bind_tcp(&pull);
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.set_sndhwm(5).unwrap(); // most of the queue must wait for the connection
        push.connect(&endpoint).unwrap();
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let outcomes: Seen<zmq::Result<()>> = seen();
        let o = outcomes.clone();
        stream.on_send(move |_, status| o.borrow_mut().push(*status));
        let (closes, on_close) = counting();
        stream.set_close_callback(on_close);
        for i in 0..50 {
            stream.send(format!("{i}"));
        }
        assert!(!stream.closed());
        stream.close(Some(Duration::from_secs(10)));
        assert!(stream.closed());
        assert!(stream.socket().is_none());
        assert_eq!(closes.get(), 1);
        assert_eq!(
            outcomes.borrow().len(),
            50,
            "a queued message was not reported"
        );
        assert!(
            outcomes.borrow().iter().all(Result::is_ok),
            "{:?}",
            outcomes.borrow()
        );
        for i in 0..50 {
            assert_eq!(
                recv_within(&pull, ms(5000)),
                vec![format!("{i}").into_bytes()]
            );
        }

        stream.close(Some(ms(10))); // harmless
        assert_eq!(closes.get(), 1, "the close callback ran twice");
        // Sending on a closed stream is reported, not silently dropped.
        let late = Rc::new(RefCell::new(None));
        let l = late.clone();
        stream.send_multipart_with(["late"], move |_, status| *l.borrow_mut() = Some(*status));
        assert!(
            matches!(*late.borrow(), Some(Err(_))),
            "{:?}",
            late.borrow()
        );
        assert!(!stream.sending());
    });
}

#[test]
fn close_reports_every_message_it_could_not_send() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.set_sndhwm(1).unwrap();
        push.bind(&common::inproc("ev-nowhere")).unwrap(); // no peer: nothing can be sent
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let via_stream: Seen<(Frames, zmq::Result<()>)> = seen();
        let v = via_stream.clone();
        stream.on_send(move |frames, status| v.borrow_mut().push((frames.to_vec(), *status)));
        let via_own: Seen<(Frames, zmq::Result<()>)> = seen();
        for i in 0..6 {
            if i % 2 == 0 {
                stream.send(format!("{i}"));
            } else {
                let o = via_own.clone();
                stream.send_multipart_with([format!("{i}")], move |frames, status| {
                    o.borrow_mut().push((frames.to_vec(), *status))
                });
            }
        }
        // A few loop iterations first: the sends stay queued (EAGAIN is not an outcome yet).
        stop_after(&ioloop, ms(20));
        ioloop.start().unwrap();
        assert!(via_stream.borrow().is_empty() && via_own.borrow().is_empty());
        assert!(stream.sending());

        let started = Instant::now();
        stream.close(Some(ms(50)));
        let took = started.elapsed();
        assert!(took >= ms(40), "close did not honour the linger: {took:?}");
        assert!(took < Duration::from_secs(5), "close took {took:?}");
        let all: Vec<_> = via_stream
            .borrow()
            .iter()
            .chain(via_own.borrow().iter())
            .cloned()
            .collect();
        assert_eq!(all.len(), 6, "each queued message must be reported once");
        assert!(
            all.iter()
                .all(|(_, status)| *status == Err(zmq::Error::EAGAIN)),
            "{all:?}"
        );
        let mut reported: Vec<Frames> = all.into_iter().map(|(frames, _)| frames).collect();
        reported.sort();
        let mut expected: Vec<Frames> = (0..6).map(|i| vec![format!("{i}").into_bytes()]).collect();
        expected.sort();
        assert_eq!(reported, expected);
        assert_eq!(
            via_own.borrow().len(),
            3,
            "per-send callbacks got their own"
        );
        assert!(!stream.sending());
        assert!(stream.closed());
        ioloop.close();
    });
}

#[test]
fn a_panicking_receive_callback_does_not_stall_the_stream() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-recv-panic");
        push.send("boom", 0).unwrap();
        push.send("next", 0).unwrap();
        let got: Seen<Frames> = seen();
        let (g, l) = (got.clone(), ioloop.clone());
        stream.on_recv(move |frames| {
            if frames == [b"boom".to_vec()] {
                panic!("receive callback failure on purpose");
            }
            g.borrow_mut().push(frames);
            l.stop();
        });
        ioloop.start().unwrap();
        assert_eq!(*got.borrow(), [frames(&["next"])]);
        assert!(stream.receiving());
        assert!(
            common::logs::here().iter().any(|l| l.contains("panicked")),
            "the panic was not logged: {:?}",
            common::logs::here()
        );
        stream.close(None);
    });
}

#[test]
fn router_mandatory_unreachable_peer_is_reported_and_the_queue_goes_on() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let endpoint = common::inproc("ev-router");
        let router = ctx.socket(zmq::ROUTER).unwrap();
        router.set_router_mandatory(true).unwrap();
        router.bind(&endpoint).unwrap();
        let dealer = ctx.socket(zmq::DEALER).unwrap();
        dealer.set_identity(b"known").unwrap();
        dealer.connect(&endpoint).unwrap();
        dealer.send("hello", 0).unwrap();

        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(router, &ioloop).unwrap();
        let outcomes: Seen<(&str, zmq::Result<()>)> = seen();
        let (o, l) = (outcomes.clone(), ioloop.clone());
        stream.on_recv_stream(move |stream, frames| {
            assert_eq!(frames[0], b"known");
            let first = o.clone();
            stream.send_multipart_with(["nobody", "x"], move |_, status| {
                first.borrow_mut().push(("nobody", *status));
            });
            let (second, stopper) = (o.clone(), l.clone());
            stream.send_multipart_with(["known", "y"], move |_, status| {
                second.borrow_mut().push(("known", *status));
                stopper.stop();
            });
        });
        ioloop.start().unwrap();
        assert_eq!(
            *outcomes.borrow(),
            [("nobody", Err(zmq::Error::EHOSTUNREACH)), ("known", Ok(()))]
        );
        assert_eq!(recv_within(&dealer, ms(2000)), frames(&["y"]));
        stream.close(None);
    });
}

#[test]
fn two_busy_streams_progress_alternately() {
    within(LIMIT, || {
        const EACH: usize = 2000;
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let order: Seen<char> = seen();
        let mut keep = Vec::new();
        for name in ['A', 'B'] {
            let endpoint = common::inproc("ev-fair");
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.set_rcvhwm(0).unwrap();
            pull.bind(&endpoint).unwrap();
            let push = ctx.socket(zmq::PUSH).unwrap();
            push.set_sndhwm(0).unwrap();
            push.connect(&endpoint).unwrap();
            for i in 0..EACH {
                push.send(format!("{name}{i}").as_str(), 0).unwrap();
            }
            let stream = ZmqStream::new(pull, &ioloop).unwrap();
            let (o, l) = (order.clone(), ioloop.clone());
            stream.on_recv(move |_| {
                o.borrow_mut().push(name);
                if o.borrow().len() == 2 * EACH {
                    l.stop();
                }
            });
            keep.push((stream, push));
        }
        ioloop.start().unwrap();

        let order = order.borrow();
        assert_eq!(order.iter().filter(|&&c| c == 'A').count(), EACH);
        // While both have work (until one of them has had all its messages), no long runs.
        let mut seen_a = 0;
        let mut seen_b = 0;
        let mut run = 0;
        let mut longest = 0;
        let mut previous = ' ';
        for &c in order.iter() {
            if seen_a == EACH || seen_b == EACH {
                break;
            }
            if c == 'A' {
                seen_a += 1;
            } else {
                seen_b += 1;
            }
            run = if c == previous { run + 1 } else { 1 };
            previous = c;
            longest = longest.max(run);
        }
        assert!(
            longest <= 3,
            "one stream got {longest} deliveries in a row while the other had work"
        );
        for (stream, _) in keep {
            stream.close(None);
        }
    });
}

/// Streams on a loop whose context is terminated by another thread; returns start's outcome
/// and, for each stream, whether it was closed and how often its close callback ran, then
/// drops everything (without closing the streams) and waits for `destroy` to finish.
fn terminate_under_streams() -> (zmq::Result<()>, Vec<(bool, usize)>) {
    let ctx = zmq::Context::new();
    let ioloop = IOLoop::new().unwrap();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind(&common::inproc("ev-eterm-pull")).unwrap();
    let receiver = ZmqStream::new(pull, &ioloop).unwrap();
    receiver.on_recv(|_| {});
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.bind(&common::inproc("ev-eterm-push")).unwrap(); // no peer: the queue waits
    let sender = ZmqStream::new(push, &ioloop).unwrap();
    sender.send("stuck");
    let streams = [receiver, sender];
    let closes: Vec<_> = streams
        .iter()
        .map(|stream| {
            let (count, on_close) = counting();
            stream.set_close_callback(on_close);
            count
        })
        .collect();
    let destroyed = destroy_once_started(&ioloop, &ctx);
    let outcome = ioloop.start();
    let states = streams
        .iter()
        .zip(&closes)
        .map(|(stream, count)| (stream.closed(), count.get()))
        .collect();
    // Dropping the streams and the loop (no close) must release the sockets.
    drop(streams);
    drop(ioloop);
    let destroyed = destroyed.recv_timeout(Duration::from_secs(10)).expect(
        "Context::destroy did not finish after the streams and the loop were dropped: \
         something still holds a socket",
    );
    assert_eq!(destroyed, Ok(()));
    (outcome, states)
}

#[test]
fn context_termination_ends_a_loop_with_streams_quietly() {
    within(LIMIT, || {
        let (outcome, _) = terminate_under_streams();
        assert_eq!(outcome, Ok(()), "ETERM must end start() with Ok");
        assert!(
            common::logs::here().is_empty(),
            "ETERM was not quiet: {:?}",
            common::logs::here()
        );
    });
}

#[test]
fn context_termination_closes_the_streams() {
    within(LIMIT, || {
        let (outcome, states) = terminate_under_streams();
        assert_eq!(outcome, Ok(()));
        assert_eq!(
            states,
            [(true, 1), (true, 1)],
            "(closed, close callbacks) of each stream after ETERM"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Green: the loop inside a may coroutine and inside a hub task

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
        hub::yield_now();
    }
}

/// Makes `n` request/reply round trips on `req` with an echo server: each reply must be the
/// request.
fn echo_round_trips(req: &zmq::Socket, n: usize) {
    for i in 0..n {
        req.send(format!("request {i}").as_str(), 0).unwrap();
        assert_eq!(req.recv_string(0).unwrap().unwrap(), format!("request {i}"));
    }
}

#[test]
fn green_ioloop_in_a_coroutine_parks_only_that_coroutine() {
    use zmqloop::green::eventloop::{IOLoop, ZmqStream};
    common::run_within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (rep, req) = common::socket_pair(&ctx, "ev-green-may", zmq::REP, zmq::REQ);

        let ioloop = IOLoop::new().unwrap();
        let echo = ZmqStream::new(rep, &ioloop).unwrap();
        echo.on_recv_stream(|stream, frames| stream.send_multipart(frames));
        let (ticks, tick) = counting();
        let timer = ioloop.add_timer(ms(5), 0, tick);

        let ping = common::Ping::start();
        let handle = ioloop.handle();
        // On the same (single) worker: it runs only if the loop parks instead of blocking.
        let client = zmq::spawn(move || {
            echo_round_trips(&req, 50);
            let before = ping.rounds();
            ping.wait_rounds(5); // the worker stays free while the loop waits
            let rounds = ping.rounds() - before;
            ping.stop();
            handle.stop();
            rounds
        });
        ioloop.start().unwrap();
        let rounds = common::join(client);
        assert!(rounds >= 5);
        assert!(ticks.get() >= 1, "the loop's timer never ran");
        timer.cancel();
        echo.close(None);
        ioloop.close();
    });
}

#[test]
fn green_ioloop_in_a_hub_task_serves_another_task() {
    use zmqloop::green::eventloop::{IOLoop, ZmqStream};
    on_hub(|| {
        let ctx = zmq::Context::new();
        let (router, req) = common::socket_pair(&ctx, "ev-green-hub", zmq::ROUTER, zmq::REQ);

        let ioloop = IOLoop::new().unwrap();
        let echo = ZmqStream::new(router, &ioloop).unwrap();
        let served = counter();
        let s = served.clone();
        echo.on_recv_stream(move |stream, frames| {
            bump(&s);
            stream.send_multipart(frames);
        });
        let handle = ioloop.handle();
        let client = hub::spawn(move || {
            echo_round_trips(&req, 50);
            handle.stop();
        });
        ioloop.start().unwrap();
        client.join().unwrap();
        assert_eq!(served.get(), 50);
        echo.close(None);
        ioloop.close();
    });
}

/// Checks that `job`, handed by another hub task with `hand_over` (as a `what`) to a green loop
/// parked with nothing due (no timers, no handlers), wakes the loop and runs within a second.
/// A watchdog stops the loop after 2 s, so that the failure is an assertion rather than a hang.
fn assert_a_hand_over_wakes_a_parked_loop(what: &str, hand_over: fn(&IOLoop, Box<dyn FnOnce()>)) {
    let waited = on_hub(move || {
        let ioloop = IOLoop::new().unwrap();
        let ran_after = Rc::new(Cell::new(None));
        let (l, ran) = (ioloop.clone(), ran_after.clone());
        let started = started_flag(&ioloop);
        let other = hub::spawn(move || {
            hub_wait_for(&started); // the loop is parked now, with no deadline
            let stopper = l.clone();
            let start = Instant::now();
            let job = move || {
                ran.set(Some(start.elapsed()));
                stopper.stop();
            };
            hand_over(&l, Box::new(job));
        });
        let handle = ioloop.handle();
        let watchdog = hub::spawn(move || {
            hub::sleep(Duration::from_secs(2));
            handle.stop();
        });
        ioloop.start().unwrap();
        other.join().unwrap();
        watchdog.cancel();
        ran_after.get()
    });
    assert!(
        waited.is_some_and(|w| w < Duration::from_secs(1)),
        "a {what} added by another task on the loop's thread did not wake the parked loop \
         (ran after {waited:?})"
    );
}

#[test]
fn green_ioloop_callback_from_another_hub_task_wakes_the_loop() {
    assert_a_hand_over_wakes_a_parked_loop("callback", |ioloop, job| ioloop.add_callback(job));
}

#[test]
fn green_ioloop_timeout_added_by_another_hub_task_wakes_the_loop() {
    assert_a_hand_over_wakes_a_parked_loop("timeout", |ioloop, job| {
        ioloop.call_later(ms(10), job);
    });
}

/// A green loop in a hub task with a socket handler; another task terminates the context.
/// Returns both outcomes of `start` (the second after `close`).
fn green_loop_through_eterm() -> (zmq::Result<()>, zmq::Result<()>) {
    use zmqloop::green::eventloop::IOLoop;
    let mut ctx = zmq::Context::new();
    let ioloop = IOLoop::new().unwrap();
    add_idle_pull_handler(&ctx, &ioloop, "ev-green-eterm");
    let started = started_flag(&ioloop);
    let destroyer = hub::spawn(move || {
        hub_wait_for(&started); // the loop is parked in its poll now
        ctx.destroy() // parks this task until the loop's socket is closed
    });
    let first = ioloop.start();
    ioloop.close(); // releases the socket: destroy() can finish
    assert_eq!(destroyer.join().unwrap(), Ok(()));
    stop_after(&ioloop, ms(10));
    let second = ioloop.start();
    (first, second)
}

#[test]
fn green_ioloop_in_a_hub_task_ends_with_ok_on_eterm() {
    on_hub(|| {
        let (first, _) = green_loop_through_eterm();
        assert_eq!(first, Ok(()), "ETERM must end start() with Ok");
    });
}

#[test]
fn green_ioloop_closed_after_eterm_starts_again_cleanly() {
    on_hub(|| {
        let (first, second) = green_loop_through_eterm();
        assert_eq!(first, Ok(()));
        assert_eq!(
            second,
            Ok(()),
            "the closed loop still polls the socket of the terminated context"
        );
    });
}

#[test]
fn callbacks_run_by_close_may_use_the_stream_again() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap(); // no peer: queued sends cannot go
        push.set_sndhwm(1).unwrap();
        push.bind(&format!("inproc://close-reentrant-{}", std::process::id()))
            .unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let reported = Rc::new(Cell::new(0));
        let resent_reported = Rc::new(Cell::new(0));
        let counter = resent_reported.clone();
        stream.on_send(move |_, status| {
            assert!(status.is_err());
            counter.set(counter.get() + 1);
        });
        for _ in 0..3 {
            let again = stream.clone();
            let reported = reported.clone();
            stream.send_multipart_with(["queued"], move |_, status| {
                assert!(status.is_err());
                reported.set(reported.get() + 1);
                again.send("queued by a callback during close"); // re-entrant
            });
        }
        let closer = stream.clone();
        let close_callback_done = Rc::new(Cell::new(false));
        let done = close_callback_done.clone();
        stream.set_close_callback(move || {
            closer.set_close_callback(|| {}); // re-entrant
            done.set(true);
        });
        stream.close(None);
        assert_eq!(reported.get(), 3);
        // The messages queued by the callbacks were reported too, none silently dropped
        // (a callback that panicked on a held borrow would have lost them).
        assert_eq!(resent_reported.get(), 3);
        assert!(
            close_callback_done.get(),
            "the close callback could not use the stream"
        );
        assert!(stream.closed());
    });
}
