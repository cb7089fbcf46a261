//! IOLoop callbacks: they run on the next iteration; one added by a callback waits for the
//! following iteration; pending callbacks keep the poll from waiting, yet a busy callback chain
//! does not starve ready handlers; an `IOLoopHandle` wakes a waiting loop from another thread
//! (the callback runs on the loop thread) and stops it.

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use zmqloop::eventloop::IOLoop;
use zmqloop::green as zmq;

use crate::{
    bump, count_iterations, counter, ms, pipe, seen, started_signal, stop_after, within,
    write_byte, Seen, LIMIT,
};

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
