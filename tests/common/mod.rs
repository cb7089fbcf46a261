//! Shared harness for the integration tests.
//!
//! - [`init`] configures may with ONE worker thread before any coroutine exists, so a green call
//!   that blocked the OS thread would stall every other coroutine of the test and fail it.
//! - [`run`] runs a test body as a coroutine with a time limit, [`on_thread`] on a fresh OS
//!   thread with one: a hang fails with a message instead of stalling CI.
//! - [`Ping`] is a liveness probe that needs the worker thread: two coroutines bouncing a token
//!   through may channels every millisecond. Used to prove that a parked call leaves the worker free.
//! - [`logs`] captures log lines, to check what the crate logs; [`fds`] makes pipes for the
//!   poll tests; [`full`] sockets whose peer is full (those whose POLLOUT lies above all);
//!   [`zap`] talks ZAP to an authenticator directly.

#![allow(dead_code)]

pub mod fds;
pub mod full;
#[allow(unused_imports)] // not every test binary checks logs
pub use zmqloop_fixtures::logs;
pub mod zap;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::time::Duration;

pub use zmqloop::green as zmq;

/// A generous bound for any single test body.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Configures may with one worker (once per test binary).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        may::config().set_workers(1).set_worker_pin(false);
    });
}

/// Runs `body` as a coroutine on the single worker and waits at most `limit` for it.
///
/// # Panics
/// With the body's own panic, or with "hung" if it did not finish within `limit`.
pub fn run_within<T, F>(limit: Duration, body: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    init();
    let (done_tx, done_rx) = mpsc::channel();
    let handle = zmq::spawn(move || {
        let out = body();
        let _ = done_tx.send(());
        out
    });
    finish_within(limit, done_rx, || handle.join())
}

/// Runs `body` on a fresh OS thread and waits at most `limit` for it (for plain-thread event
/// loops and hubs, which must own their thread).
///
/// # Panics
/// With the body's own panic, or with "hung" if it did not finish within `limit`.
pub fn on_thread<T, F>(limit: Duration, body: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (done_tx, done_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let out = body();
        let _ = done_tx.send(());
        out
    });
    finish_within(limit, done_rx, || thread.join())
}

/// Waits for the body's completion signal at most `limit`, then collects its outcome.
fn finish_within<T>(
    limit: Duration,
    done: mpsc::Receiver<()>,
    join: impl FnOnce() -> std::thread::Result<T>,
) -> T {
    match done.recv_timeout(limit) {
        // Disconnected: the body panicked before signalling; `join` reports the panic.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!(
                "test body hung: not finished after {limit:?} (a blocked thread or a lost wake-up)"
            )
        }
    }
}

/// [`run_within`] with [`LIMIT`].
pub fn run<T, F>(body: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_within(LIMIT, body)
}

/// Joins a coroutine from inside another coroutine, re-raising its panic.
pub fn join<T>(handle: may::coroutine::JoinHandle<T>) -> T {
    match handle.join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A liveness probe: two coroutines bounce a token through may channels until stopped. It only
/// makes progress while the (single) worker thread is free to run coroutines.
pub struct Ping {
    rounds: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    handles: Vec<may::coroutine::JoinHandle<()>>,
}

impl Ping {
    pub fn start() -> Ping {
        let rounds = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a_tx, a_rx) = may::sync::mpsc::channel::<()>();
        let (b_tx, b_rx) = may::sync::mpsc::channel::<()>();
        let echo = zmq::spawn(move || {
            while a_rx.recv().is_ok() {
                if b_tx.send(()).is_err() {
                    break;
                }
            }
        });
        let counter = {
            let rounds = rounds.clone();
            let stop = stop.clone();
            zmq::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    a_tx.send(()).unwrap();
                    b_rx.recv().unwrap();
                    rounds.fetch_add(1, Ordering::SeqCst);
                    // Sleep rather than yield: may runs a worker's local queue until it is empty
                    // before it looks at I/O and the global queue, so a yielding loop would
                    // starve every parked green call.
                    may::coroutine::sleep(Duration::from_millis(1));
                }
                drop(a_tx);
            })
        };
        Ping {
            rounds,
            stop,
            handles: vec![echo, counter],
        }
    }

    pub fn rounds(&self) -> usize {
        self.rounds.load(Ordering::SeqCst)
    }

    /// The probe's round counter, for another coroutine to watch ([`wait_for_rounds`]).
    pub fn counter(&self) -> Arc<AtomicUsize> {
        self.rounds.clone()
    }

    /// Parks the calling coroutine until the probe has made `n` more rounds.
    pub fn wait_rounds(&self, n: usize) {
        wait_for_rounds(&self.rounds, n);
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for handle in self.handles {
            join(handle);
        }
    }
}

/// Parks the calling coroutine until a [`Ping`] `counter` has made `n` more rounds.
pub fn wait_for_rounds(counter: &AtomicUsize, n: usize) {
    let target = counter.load(Ordering::SeqCst) + n;
    while counter.load(Ordering::SeqCst) < target {
        may::coroutine::sleep(Duration::from_millis(1));
    }
}

/// A unique inproc endpoint name.
pub fn inproc(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("inproc://{name}-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// A socket of type `bound` bound to a fresh inproc endpoint named after `name` ([`inproc`]),
/// and one of type `connected` connected to it, in that order.
pub fn socket_pair(
    ctx: &zmq::Context,
    name: &str,
    bound: zmq::SocketType,
    connected: zmq::SocketType,
) -> (zmq::Socket, zmq::Socket) {
    let endpoint = inproc(name);
    let near = ctx.socket(bound).unwrap();
    near.bind(&endpoint).unwrap();
    let far = ctx.socket(connected).unwrap();
    far.connect(&endpoint).unwrap();
    (near, far)
}

/// Binds `socket` to an ephemeral tcp port on loopback and returns the endpoint to connect to.
pub fn bind_tcp(socket: &zmq::Socket) -> String {
    socket.bind("tcp://127.0.0.1:*").unwrap();
    socket.get_last_endpoint().unwrap().unwrap()
}
