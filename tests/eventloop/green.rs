//! Green: the same loop inside a may coroutine (on ONE worker) and inside a hub task parks only
//! that coroutine or task, is woken by callbacks and timeouts that other hub tasks add, and ends
//! with `Ok` on ETERM.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use zmqloop::eventloop::IOLoop;
use zmqloop::green as zmq;
use zmqloop::green::hub;

use crate::{
    add_idle_pull_handler, bump, common, counter, counting, hub_wait_for, ms, on_hub, started_flag,
    stop_after, LIMIT,
};

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
