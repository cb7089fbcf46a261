//! Spawning coroutines for green sockets on may.
//!
//! # Stack size
//! may gives every coroutine a fixed stack, 0x1000 words (32 KiB) by default, and a coroutine
//! that overflows it crashes the process. The green calls themselves are shallow: the deepest
//! green path measured (tcp REQ/REP and ROUTER/DEALER loops with multipart messages, RCVTIMEO,
//! context termination; `cargo run --example stack_usage`) used 383 words (3 KiB) in a release
//! build and 873 words (7 KiB) in a debug build, so may's default leaves most of its 32 KiB to
//! user code. [`spawn`] uses may's configured default when it is at
//! least [`MIN_STACK_WORDS`] and that minimum otherwise; a program that calls `may::go!`
//! directly must keep `may::config().set_stack_size` at or above [`MIN_STACK_WORDS`] plus
//! whatever its own code needs.
//!
//! # may's configuration: zmqloop's defaults
//! may reads its configuration once, when its scheduler starts (the first coroutine spawned).
//! The first [`spawn`] changes two of may's defaults before that, unless the program called
//! [`keep_may_config`] first (or spawned with may itself first, when it is too late for
//! either):
//!
//! - **Unpinned workers** (may pins each worker to a core by default). Every wake-up of a
//!   green socket comes from one of libzmq's I/O threads, which the kernel moves between cores
//!   at will; a worker pinned to a core cannot follow, so more wake-ups cross cores. Measured
//!   on a 2-core VM (`cargo run --release --example compare -- --only REQ --rounds 31`, with
//!   and without `--pin-workers`): a tcp REQ/REP round trip took 1.03x the blocking time with
//!   unpinned workers and 1.19x with pinned ones.
//! - **A coroutine pool that fills as coroutines finish** (may keeps up to 1000 finished
//!   coroutines for reuse and creates all 1000 when it starts, 8 MB of stacks nobody asked
//!   for). zmqloop starts may with a pool of one (may reads 0 as "its default", 1000) and
//!   lets it keep up to [`POOLED_COROUTINES`]:
//!   a coroutine that finishes keeps its stack for the next spawn instead of unmapping it, an
//!   `munmap` whose TLB shootdown costs every other core an interrupt. 10,000 clients of 10
//!   requests each over inproc used 25-35% less CPU for the same work
//!   (`cargo run --release -p zmqloop-peers --example scale`, see the README). The memory it
//!   keeps is the stacks of the most coroutines that finished together, as a memory
//!   allocator keeps freed memory; lower it with `may::config().set_pool_capacity` after the
//!   first `spawn`. Only coroutines with may's configured stack size are pooled.
//!
//! Other settings are the program's, first thing in `main`:
//!
//! ```
//! use zmqloop_green as zmq; // in applications: `use zmqloop::green as zmq;`
//!
//! zmq::may::config().set_workers(2); // default: one worker per CPU
//! ```
//!
//! The worker count is a trade-off: with one worker, coroutines that exchange messages over
//! inproc share a core and its cache (1 KiB PUSH/PULL ran at 2.2x blocking threads' rate, 16 B
//! at 1.3x), while calls that wait on libzmq's I/O thread suffer (a tcp round trip took 1.47x
//! the blocking time, against 1.03x with two workers); one worker per core is the balanced
//! choice.
//!
//! A process with many idle connections may also lengthen may's idle tick: an idle worker wakes
//! from `epoll_wait` every 10 ms (`set_timeout_ns`, may's chance to steal work from a busy
//! worker), which is most of what 10,000 parked green sockets cost (0.8-0.9% of a core in
//! all; 0.24% with `set_timeout_ns(100_000_000)`, `cargo run --release --example idle_cost`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use may::coroutine::{Builder, JoinHandle};

/// The smallest stack, in machine words, that [`spawn`] gives a coroutine (16 KiB on 64-bit
/// targets): over twice what the deepest green path was measured to use, even in debug builds.
pub const MIN_STACK_WORDS: usize = 0x800;

/// How many finished coroutines may keeps for reuse under zmqloop's defaults (see the module
/// docs): far more than a 2-core machine runs at once, and no more than the stacks of the
/// most coroutines that were alive together.
pub const POOLED_COROUTINES: usize = 65_536;

/// may's own pool capacity (may 0.3): a value zmqloop takes for "not set by the program".
const MAY_DEFAULT_POOL_CAPACITY: usize = 1000;

/// Set by [`keep_may_config`].
static KEEP_MAY_CONFIG: AtomicBool = AtomicBool::new(false);

/// Makes [`spawn`] leave may's configuration exactly as the program set it: workers stay
/// pinned and the coroutine pool stays may's (see the module docs). Call it before the first
/// `spawn`.
///
/// ```
/// use zmqloop_green as zmq;
///
/// zmq::keep_may_config();
/// zmq::spawn(|| ()).join().unwrap();
/// assert!(zmq::may::config().get_worker_pin()); // may's default, kept
/// assert_eq!(zmq::may::config().get_pool_capacity(), 1000);
/// ```
///
/// Without it, the first `spawn` applies zmqloop's defaults:
///
/// ```
/// use zmqloop_green as zmq;
///
/// zmq::spawn(|| ()).join().unwrap();
/// assert!(!zmq::may::config().get_worker_pin());
/// assert_eq!(zmq::may::config().get_pool_capacity(), zmq::POOLED_COROUTINES);
/// ```
pub fn keep_may_config() {
    KEEP_MAY_CONFIG.store(true, Ordering::SeqCst);
}

/// Applies zmqloop's defaults for may once, before may's scheduler starts (see the module
/// docs); inside a coroutine may runs already and nothing is changed.
fn apply_may_defaults() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if KEEP_MAY_CONFIG.load(Ordering::SeqCst) || may::coroutine::is_coroutine() {
            return;
        }
        let config = may::config();
        config.set_worker_pin(false);
        if config.get_pool_capacity() == MAY_DEFAULT_POOL_CAPACITY {
            // may fills its pool to this when it starts; 0 would read as its default (1000).
            config.set_pool_capacity(1);
            start_may();
            config.set_pool_capacity(POOLED_COROUTINES); // kept from now on, as they finish
        }
        log::debug!("zmqloop: may starts with unpinned workers and a pool that fills on use");
    });
}

/// Starts may's scheduler (if it has not started yet) with one empty coroutine.
fn start_may() {
    // SAFETY: the coroutine does nothing, so neither of may's hazards (thread-local storage
    // across a yield, stack overflow) can arise.
    let started = unsafe { Builder::new().spawn(|| {}) };
    match started.map(JoinHandle::join) {
        Ok(Ok(())) => {}
        _ => log::warn!("zmqloop: cannot start may's scheduler ahead of the first spawn"),
    }
}

/// Spawns `f` as a may coroutine, ready to use green sockets, and returns its join handle.
///
/// The stack is may's configured default, or [`MIN_STACK_WORDS`] if that is smaller (see the
/// module docs). A panic inside `f` is reported by `JoinHandle::join`. The coroutine's
/// [local values](crate::local) are dropped at the end of `f`, inside the coroutine, before
/// `join` returns.
///
/// # Panics
/// If may cannot allocate the coroutine's stack.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    apply_may_defaults();
    let default = may::config().get_stack_size();
    let builder = if default >= MIN_STACK_WORDS {
        Builder::new() // may's default size: stacks come from may's pool
    } else {
        Builder::new().stack_size(MIN_STACK_WORDS)
    };
    let body = move || {
        let _locals = crate::sched::EndOfBody; // dropped before the join handle has the result
        f()
    };
    // SAFETY: may marks spawning unsafe for two hazards: thread-local storage held across a
    // yield (a coroutine may resume on another thread) and stack overflow. The green calls keep
    // no thread-local state across a park (libzmq's errno is read before any yield; the
    // coroutine's locals live in may's coroutine-local storage, which moves with it), and the
    // stack is at least MIN_STACK_WORDS, over twice their measured need; what `f` itself does is
    // the caller's, exactly as with `may::go!`.
    unsafe { builder.spawn(body) }.expect("zmqloop: cannot spawn a coroutine")
}
