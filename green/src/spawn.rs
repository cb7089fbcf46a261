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
//! # Configuring may
//! may reads its configuration once, when the first coroutine is spawned, so a program sets it
//! first thing in `main`:
//!
//! ```
//! use zmqloop_green as zmq; // in applications: `use zmqloop::green as zmq;`
//!
//! zmq::may::config()
//!     .set_workers(2) // default: one worker per CPU
//!     .set_worker_pin(false); // default: each worker pinned to a core
//! ```
//!
//! Unpinned workers are what we recommend with libzmq. Every wake-up of a green socket comes
//! from one of libzmq's I/O threads, which the kernel moves between cores at will; a worker
//! pinned to a core cannot follow, so more wake-ups cross cores. Measured on a 2-core VM
//! (`cargo run --release --example compare -- --only REQ --rounds 31`, with and without
//! `--pin-workers`): a tcp REQ/REP round trip took 1.03x the blocking time with unpinned
//! workers and 1.19x with pinned ones; throughput scenarios did not change beyond noise.
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

use may::coroutine::{Builder, JoinHandle};

/// The smallest stack, in machine words, that [`spawn`] gives a coroutine (16 KiB on 64-bit
/// targets): over twice what the deepest green path was measured to use, even in debug builds.
pub const MIN_STACK_WORDS: usize = 0x800;

/// Spawns `f` as a may coroutine, ready to use green sockets, and returns its join handle.
///
/// The stack is may's configured default, or [`MIN_STACK_WORDS`] if that is smaller (see the
/// module docs). A panic inside `f` is reported by `JoinHandle::join`.
///
/// # Panics
/// If may cannot allocate the coroutine's stack.
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let default = may::config().get_stack_size();
    let builder = if default >= MIN_STACK_WORDS {
        Builder::new() // may's default size: stacks come from may's pool
    } else {
        Builder::new().stack_size(MIN_STACK_WORDS)
    };
    // SAFETY: may marks spawning unsafe for two hazards: thread-local storage held across a
    // yield (a coroutine may resume on another thread) and stack overflow. The green calls keep
    // no thread-local state across a park (libzmq's errno is read before any yield), and the
    // stack is at least MIN_STACK_WORDS, over twice their measured need; what `f` itself does is
    // the caller's, exactly as with `may::go!`.
    unsafe { builder.spawn(f) }.expect("zmqloop: cannot spawn a coroutine")
}
