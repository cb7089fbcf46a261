//! The IOLoop's lifecycle: stop before start, start/stop/start, `close` (handlers, callbacks and
//! timeouts dropped, nothing left that touches later ones), ETERM ending `start` with `Ok`
//! quietly (each handler told once, unless another removed it first), panicking handlers,
//! callbacks and timeouts logged while the loop goes on.

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use zmqloop::eventloop::{IOLoop, PeriodicCallback};
use zmqloop::green as zmq;

use crate::{
    add_idle_pull_handler, bump, common, counter, counting, destroy_once_started, ms, pipe,
    read_available, seen, stop_after, within, write_byte, Seen, LIMIT,
};

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
fn a_handler_removed_while_termination_is_reported_is_not_called() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (a, push_a) = common::socket_pair(&ctx, "ev-eterm-remove-a", zmq::PULL, zmq::PUSH);
        let (b, push_b) = common::socket_pair(&ctx, "ev-eterm-remove-b", zmq::PULL, zmq::PUSH);
        let (a, b) = (Rc::new(a), Rc::new(b));
        let ioloop = IOLoop::new().unwrap();
        let told = counter();
        // Each handler removes the other's when told of the termination: whichever is told
        // first, the other must not be told after its removal.
        for (mine, other) in [(a.clone(), b.clone()), (b, a)] {
            let (l, t) = (ioloop.clone(), told.clone());
            ioloop
                .add_handler(mine, zmq::POLLIN, move |events| {
                    if events.contains(zmq::POLLERR) {
                        bump(&t);
                        let _ = l.remove_handler(&other);
                    }
                })
                .unwrap();
        }
        let destroyed = destroy_once_started(&ioloop, &ctx);
        assert_eq!(ioloop.start(), Ok(()));
        ioloop.close(); // releases the sockets: destroy() can finish
        drop((push_a, push_b));
        assert_eq!(destroyed.recv().unwrap(), Ok(()));
        assert_eq!(
            told.get(),
            1,
            "a handler was told of the termination after its removal"
        );
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
