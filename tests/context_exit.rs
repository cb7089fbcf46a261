//! The end of a context inside coroutines and hub tasks: dropping its last handle keeps `zmq`'s
//! guarantee (the drop returns once LINGER is honoured, so a program may exit right after it
//! without losing what it queued) while parking only the dropping coroutine; a drop that runs
//! while its coroutine unwinds, or that is cancelled while it waits, neither hangs nor aborts.

mod common;
use std::cell::Cell;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{bind_tcp, run, zmq, Ping, LIMIT};
use zmqloop::green::hub::{self, Hub};

/// Messages the child program sends before it ends.
const MESSAGES: usize = 20_000;
/// Set (to the endpoint to send to) when this test binary runs as the child program.
const CHILD_ENDPOINT: &str = "ZMQLOOP_TEST_EXIT_ENDPOINT";

/// The child program of the next test, run in its own process. Its `main` body runs in a
/// coroutine on one worker and ends the zguide way: send, let the socket and the context
/// drop, return; then the process exits at once, as after `main`. A no-op in normal runs.
#[test]
fn child_program_that_sends_then_ends() {
    let Ok(endpoint) = std::env::var(CHILD_ENDPOINT) else {
        return;
    };
    common::init();
    let main_body = zmq::spawn(move || {
        let ctx = zmq::Context::new();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        let payload = vec![b'x'; 1024];
        for _ in 0..MESSAGES {
            push.send(&payload[..], 0).unwrap();
        }
        push.send("END", 0).unwrap();
        // Returning drops `push` and then `ctx`, the context's last handle.
    });
    main_body.join().unwrap();
    std::process::exit(0); // what returning from `main` does: nothing else gets to run
}

#[test]
fn a_program_whose_main_ends_in_a_coroutine_delivers_everything_it_queued() {
    common::on_thread(LIMIT, || {
        let ctx = zmq::Context::new(); // a plain thread: plain blocking zmq calls
        let pull = ctx.socket(zmq::PULL).unwrap();
        let endpoint = bind_tcp(&pull);
        pull.set_rcvtimeo(10_000).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_program_that_sends_then_ends",
                "--nocapture",
            ])
            .env(CHILD_ENDPOINT, &endpoint)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut received = 0;
        loop {
            match pull.recv_bytes(0) {
                Ok(message) if message == b"END" => break,
                Ok(_) => received += 1,
                Err(err) => panic!(
                    "{received} of {MESSAGES} messages and no END arrived ({err}): the child \
                     exited before its context had sent them"
                ),
            }
        }
        assert_eq!(received, MESSAGES);
        assert!(child.wait().unwrap().success(), "the child program failed");
    });
}

/// A PUSH socket holding a message for a peer that never comes, kept `linger_ms` after close,
/// and the only handle left of its context.
fn lingering_socket(linger_ms: i32) -> zmq::Socket {
    let ctx = zmq::Context::new();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.set_linger(linger_ms).unwrap();
    push.connect("tcp://127.0.0.1:1").unwrap(); // nothing listens there
    push.send("pending", zmq::DONTWAIT).unwrap();
    push
}

const LINGER: Duration = Duration::from_millis(300);
/// How much earlier than `LINGER` (by `Instant`) libzmq may end a linger: its timers run on a
/// millisecond clock of its own, which it caches between reads, so a drop measured at
/// 299.99995 ms for a 300 ms linger is on time. A drop that did not wait returns in well under
/// a millisecond.
const CLOCK_SLACK: Duration = Duration::from_millis(5);

/// Fails unless a drop that `took` this long waited for [`LINGER`], and no longer than ten
/// times it.
fn assert_waited_for_linger(took: Duration) {
    assert!(
        took >= LINGER - CLOCK_SLACK,
        "the drop returned before LINGER: {took:?}"
    );
    assert!(
        took < LINGER * 10,
        "the drop did not honour LINGER: {took:?}"
    );
}

#[test]
fn the_last_drop_in_a_coroutine_waits_for_linger_and_parks_only_its_coroutine() {
    run(|| {
        let push = lingering_socket(LINGER.as_millis() as i32);
        let ping = Ping::start();
        let before = ping.rounds();
        let start = Instant::now();
        drop(push); // the last handle of the context: termination waits for the linger
        let took = start.elapsed();
        let rounds = ping.rounds() - before;
        ping.stop();
        assert_waited_for_linger(took);
        assert!(
            rounds >= 10,
            "only {rounds} probe rounds while the drop waited {took:?}: it blocked the worker"
        );
    });
}

#[test]
fn the_last_drop_in_a_hub_task_waits_for_linger_and_parks_only_its_task() {
    common::on_thread(LIMIT, || {
        let hub = Hub::new().unwrap();
        let ticks = Rc::new(Cell::new(0u32));
        let (counter, stop) = (ticks.clone(), Rc::new(Cell::new(false)));
        let stopper = stop.clone();
        let ticker = hub.spawn(move || {
            while !stop.get() {
                hub::sleep(Duration::from_millis(1)); // needs the hub's thread to come back
                counter.set(counter.get() + 1);
            }
        });
        let (took, during) = hub.block_on(move || {
            let push = lingering_socket(LINGER.as_millis() as i32);
            let before = ticks.get();
            let start = Instant::now();
            drop(push);
            let took = start.elapsed();
            stopper.set(true);
            (took, ticks.get() - before)
        });
        hub.run();
        ticker.try_join().unwrap().unwrap();
        assert_waited_for_linger(took);
        assert!(
            during >= 10,
            "only {during} ticks while the drop waited {took:?}: it blocked the hub"
        );
    });
}

/// A linger far beyond the tests' time limit: a drop that waited for it would fail as hung.
const FOREVER_MS: i32 = 600_000;

#[test]
fn a_last_drop_while_a_coroutine_panics_neither_waits_nor_aborts() {
    run(|| {
        let ping = Ping::start();
        let victim = zmq::spawn(|| {
            let _push = lingering_socket(FOREVER_MS); // dropped while unwinding
            panic!("failure on purpose, with a context to drop");
        });
        let panic = victim.join().unwrap_err();
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"failure on purpose, with a context to drop")
        );
        ping.wait_rounds(5); // the worker runs the others on
        ping.stop();
    });
}

#[test]
fn cancelling_a_coroutine_that_waits_in_the_last_drop_unwinds_it() {
    run(|| {
        let (parking_tx, parking_rx) = may::sync::mpsc::channel();
        let victim = zmq::spawn(move || {
            let push = lingering_socket(FOREVER_MS);
            parking_tx.send(()).unwrap();
            drop(push); // parks until the linger is over, in ten minutes
        });
        parking_rx.recv().unwrap(); // one worker: the victim has parked by now
        may::coroutine::yield_now();
        // SAFETY: cancelling unwinds the victim's stack; it owns everything it touches.
        unsafe { victim.coroutine().cancel() };
        assert!(
            victim.join().is_err(),
            "the cancelled drop returned normally"
        );
    });
}

#[test]
fn cancelling_a_hub_task_that_waits_in_the_last_drop_unwinds_it() {
    common::on_thread(LIMIT, || {
        let hub = Hub::new().unwrap();
        let victim = Rc::new(hub.spawn(|| drop(lingering_socket(FOREVER_MS))));
        let canceller = victim.clone();
        hub.block_on(move || {
            hub::yield_now(); // the victim parks in its drop
            canceller.cancel();
        });
        hub.run();
        let victim = Rc::try_unwrap(victim).ok().unwrap();
        let panic = victim.try_join().expect("finished").unwrap_err();
        assert!(panic.downcast_ref::<hub::Cancelled>().is_some());
    });
}
