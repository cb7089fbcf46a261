//! The fallback timer: a wake-up that never arrives (dropped on purpose through the
//! `fault-injection` hook) is recovered by the timer, counted, and costs at most about one
//! fallback interval, for a socket call and for a green poll. Kept in its own test binary because it changes process-wide settings.

mod common;
use std::time::{Duration, Instant};

use common::{inproc, join, run, zmq};

#[test]
fn a_dropped_fd_wakeup_is_recovered_by_the_fallback_timer_and_counted() {
    run(|| {
        zmq::fallback::set_fallback_interval(Duration::from_millis(100));
        let ctx = zmq::Context::new();
        let endpoint = inproc("missed-edge");
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&endpoint).unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();

        let missed_before = zmq::fallback::missed_edges();
        zmq::fallback::fault::drop_fd_wakeups(1);
        // Runs once the receiver parks (one worker): its message's edge will be dropped.
        let sender = zmq::spawn(move || {
            push.send("lost edge", 0).unwrap();
            push
        });
        let start = Instant::now();
        assert_eq!(pull.recv_string(0).unwrap().unwrap(), "lost edge");
        let waited = start.elapsed();
        assert_eq!(
            zmq::fallback::fault::pending_drops(),
            0,
            "no fd wake-up was dropped"
        );
        assert_eq!(zmq::fallback::missed_edges(), missed_before + 1);
        assert!(
            waited >= Duration::from_millis(50),
            "recovered too early ({waited:?}): not by the timer?"
        );
        assert!(
            waited < Duration::from_millis(1500),
            "recovered after {waited:?}, far beyond the 100 ms interval"
        );
        drop(join(sender));

        // With no fault injected the same exchange counts no missed edge.
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        let sender = zmq::spawn(move || {
            push.send("normal", 0).unwrap();
            push
        });
        assert_eq!(pull.recv_string(0).unwrap().unwrap(), "normal");
        assert_eq!(zmq::fallback::missed_edges(), missed_before + 1);
        drop(join(sender));

        // The same for a green poll (it parks through the same seam, on its own epoll set).
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        zmq::fallback::fault::drop_fd_wakeups(1);
        let sender = zmq::spawn(move || {
            push.send("polled", 0).unwrap();
            push
        });
        let start = Instant::now();
        let mut items = [pull.as_poll_item(zmq::POLLIN)];
        assert_eq!(zmq::poll(&mut items, 10_000).unwrap(), 1);
        let waited = start.elapsed();
        assert_eq!(
            zmq::fallback::fault::pending_drops(),
            0,
            "no poll wake-up was dropped"
        );
        assert_eq!(zmq::fallback::missed_edges(), missed_before + 2);
        assert!(
            waited >= Duration::from_millis(50) && waited < Duration::from_millis(1500),
            "poll recovered after {waited:?}, not by a 100 ms fallback"
        );
        assert_eq!(pull.recv_string(0).unwrap().unwrap(), "polled");
        drop(join(sender));
    });
}

#[test]
#[should_panic(expected = "at least 1 ms")]
fn a_zero_fallback_interval_is_refused() {
    zmq::fallback::set_fallback_interval(Duration::ZERO);
}
