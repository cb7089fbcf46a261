//! The cooperative layer of zmqloop: a drop-in replacement for the [`zmq`] crate (0.10) whose
//! blocking calls park the calling coroutine instead of the OS thread.
//!
//! Users normally reach this crate as `zmqloop::green`:
//!
//! ```
//! use zmqloop_green as zmq; // in applications: `use zmqloop::green as zmq;`
//!
//! let ctx = zmq::Context::new();
//! let server = ctx.socket(zmq::REP).unwrap();
//! server.bind("inproc://doc-echo").unwrap();
//! let client = ctx.socket(zmq::REQ).unwrap();
//! client.connect("inproc://doc-echo").unwrap();
//!
//! // The server runs as a coroutine; its `recv` parks only that coroutine.
//! let echo = zmq::spawn(move || {
//!     let request = server.recv_msg(0).unwrap();
//!     server.send(request, 0).unwrap();
//! });
//! client.send("hello", 0).unwrap();
//! assert_eq!(client.recv_string(0).unwrap().unwrap(), "hello");
//! echo.join().unwrap();
//! ```
//!
//! # How it is built
//! - Everything of `zmq` that cannot block is re-exported unchanged from this crate's root.
//! - [`Context`] owns the libzmq context itself (to reach options `zmq::Context` hides and to
//!   terminate it without blocking a scheduler worker) and hands out green [`Socket`]s.
//! - [`Socket`] wraps a `zmq::Socket` without dereferencing to it: option accessors delegate,
//!   and every call that can block goes through the readiness loop in `readiness`.
//! - The readiness loop parks through the scheduler seam in `sched`, which alone knows about
//!   the schedulers (may, and the single-threaded [`hub`]). Outside any coroutine the plain
//!   blocking call runs. Work that zmqloop starts itself (devices, the authenticator) starts
//!   on the caller's scheduler through the same seam ([`task::spawn_here`]), and state that
//!   belongs to where code runs (one value per thread, coroutine or hub task) lives in
//!   [`local`] (the event loop's `IOLoop::current`).
//!
//! See `ARCHITECTURE.md` at the repository root for the layers and the readiness rule.
#![warn(missing_docs, missing_debug_implementations)]

mod context;
pub mod curve;
mod errors;
pub mod fallback;
pub mod hub;
pub mod local;
pub mod monitor;
mod poll;
mod poll_item;
mod proxy;
mod readiness;
mod sched;
mod socket;
mod spawn;
pub mod task;
pub mod wake_fd;

pub use context::Context;
pub use poll::{poll, KeyedPoller, PollKey, PollSource, PollTarget, Poller};
pub use poll_item::PollItem;
pub use proxy::{
    device, proxy, proxy_steerable, proxy_steerable_with_capture, proxy_with_capture,
    unknown_proxy_commands, ProxyStatistics, SideStatistics,
};
pub use socket::{PartsNotSent, Sendable, Socket};
pub use spawn::{keep_may_config, spawn, MIN_STACK_WORDS, POOLED_COROUTINES};

/// The `may` coroutine library that runs green sockets by default, re-exported for advanced use
/// (custom `Builder`s, `may::config()`, channels).
pub use may;

// The non-blocking part of `zmq` 0.10, re-exported unchanged so that `use zmqloop::green as zmq;`
// compiles every program written for `zmq`.
pub use zmq::SocketType::{
    DEALER, PAIR, PUB, PULL, PUSH, REP, REQ, ROUTER, STREAM, SUB, XPUB, XSUB,
};
pub use zmq::{
    has, version, z85_decode, z85_encode, CurveKeyPair, DecodeError, EncodeError, Error, Mechanism,
    Message, PollEvents, Result, SocketEvent, SocketType, DONTWAIT, POLLERR, POLLIN, POLLOUT,
    SNDMORE,
};
