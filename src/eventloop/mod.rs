//! `zmqloop::eventloop`: an IOLoop and ZmqStream for callback-style servers (pyzmq's
//! `zmq.eventloop`), in Rust.
//!
//! - [`IOLoop`]: handlers for sockets and fds, callbacks (with a thread-safe
//!   [`IOLoopHandle`]), timeouts, [`PeriodicCallback`], zloop's repeating [`Timer`]s and
//!   [`Ticket`]s.
//! - [`ZmqStream`]: a socket on the loop with receive/send callbacks and a send queue.
//! - [`IOLoop::current`]: the loop of the place the code runs in (a plain thread, a may
//!   coroutine or a hub task, each its own), made on first use, so that streams and timers
//!   need not be handed a loop everywhere.
//!
//! One implementation serves both worlds: the loop waits with the green poller, which blocks a
//! plain thread like `zmq_poll` and, inside a may coroutine or a hub task, parks only that
//! coroutine (so an IOLoop shares its thread with other coroutines). The same types are
//! reachable as `zmqloop::green::eventloop` for that use.
//!
//! Files: `ioloop.rs` (handlers, callbacks, the loop), `current.rs` (the current loop: one
//! per thread, coroutine or hub task, and why), `timers.rs` (timeouts), `periodic.rs`
//! (periodic callbacks, repeating timers, tickets), `stream/` (ZmqStream: `mod.rs` the type and
//! its API, `pass.rs` a pass's receives and sends and their reports, `outgoing.rs` a queued
//! message, bytes or zero-copy `zmq::Message`s, and what its outcome hands back, `sending.rs`
//! how a queued message is sent without spinning), `monitor.rs` (socket monitor events on a
//! ZmqStream).

mod current;
mod debug;
mod ioloop;
mod monitor;
mod periodic;
mod stream;
mod timers;

pub use ioloop::{IOLoop, IOLoopHandle, Timeout};
pub use periodic::{PeriodicCallback, Ticket, Timer};
pub use stream::{Frames, Unsent, ZmqStream};
