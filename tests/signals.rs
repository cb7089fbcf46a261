//! Signals delivered to threads that wait in zmqloop's blocking calls: outside any scheduler
//! those calls are libzmq's `zmq_poll`, which returns EINTR when a signal handler runs, even
//! one installed with `SA_RESTART`. Each test interrupts a thread it knows to be waiting on
//! file descriptors (checked in `/proc`), waits until the handler has run there, and checks
//! that the wait went on.
//!
//! The tests of this binary run one at a time: the handler is process-wide and the threads
//! are found by name.

mod common;

use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use common::{zap, zmq};
use zmq::task;
use zmqloop::auth::{Authenticator, THREAD_NAME};
use zmqloop_fixtures::threads::{self, SignalProbe};

/// How long a test waits for a thread to reach its wait, or for a handler to run.
const WAIT: Duration = Duration::from_secs(10);

/// Runs the tests of this binary one at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_signal_while_joining_a_task_on_a_plain_thread_does_not_end_the_join() {
    let _serial = one_at_a_time();
    let probe = SignalProbe::install(libc::SIGUSR1);
    common::on_thread(common::LIMIT, move || {
        let joiner = threads::current_tid();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let job = task::Builder::new()
            .name("signals-job")
            .spawn_here(move || go_rx.recv_timeout(common::LIMIT).is_ok())
            .unwrap();
        let kicker = std::thread::spawn(move || {
            assert!(
                threads::wait_until_waiting_on_fds(joiner, WAIT),
                "the joiner never waited in poll"
            );
            assert!(probe.interrupt(joiner, WAIT), "the handler did not run");
            go_tx.send(()).unwrap();
        });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.join()));
        kicker.join().unwrap();
        assert!(
            outcome.expect("join panicked on EINTR").unwrap(),
            "the job saw its go signal"
        );
    });
}

#[test]
fn a_signal_to_a_thread_authenticator_leaves_it_serving() {
    let _serial = one_at_a_time();
    let probe = SignalProbe::install(libc::SIGUSR1);
    common::on_thread(common::LIMIT, move || {
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        auth.deny(&["192.0.2.1"]).unwrap();
        auth.start().unwrap();
        let zap = common::zap::requester(&ctx, 5000);
        let ask = |id, address| common::zap::status_of(&zap, zap::null_request(id, "", address));
        assert_eq!(ask("1", "192.0.2.1"), Ok("400".into()), "it serves");
        let [tid] = threads::tids_named(THREAD_NAME)[..] else {
            panic!("not one thread named {THREAD_NAME}");
        };
        assert!(
            threads::wait_until_waiting_on_fds(tid, WAIT),
            "the authenticator never waited in poll"
        );
        assert!(probe.interrupt(tid, WAIT), "the handler did not run");
        assert!(auth.is_alive(), "a signal ended the authenticator");
        assert_eq!(ask("2", "192.0.2.1"), Ok("400".into()), "it still serves");
        assert_eq!(ask("3", "192.0.2.2"), Ok("200".into()));
        auth.stop().unwrap();
    });
}
