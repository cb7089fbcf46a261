//! zmqloop: cooperative ZeroMQ for Rust.
//!
//! - [`green`]: a drop-in replacement for the `zmq` crate (0.10). Write
//!   `use zmqloop::green as zmq;`, run each connection in a coroutine
//!   ([`green::spawn`]), and every call that would block the OS thread parks only the
//!   coroutine until the socket is ready.
//!
//! ```
//! use zmqloop::green as zmq;
//!
//! let ctx = zmq::Context::new();
//! let pull = ctx.socket(zmq::PULL).unwrap();
//! pull.bind("inproc://tour").unwrap();
//! let producer = {
//!     let push = ctx.socket(zmq::PUSH).unwrap();
//!     push.connect("inproc://tour").unwrap();
//!     zmq::spawn(move || {
//!         for i in 0..3 {
//!             push.send(&format!("job {i}"), 0).unwrap();
//!         }
//!     })
//! };
//! for i in 0..3 {
//!     assert_eq!(pull.recv_string(0).unwrap().unwrap(), format!("job {i}"));
//! }
//! producer.join().unwrap();
//! ```
//!
//! - [`eventloop`]: an IOLoop with ZmqStream (pyzmq's `zmq.eventloop`), running on the green
//!   poller, so it also runs inside a coroutine as `zmqloop::green::eventloop`.
//!
//! - [`auth`]: ZAP authentication (pyzmq's `zmq.auth`): an `Authenticator` with address
//!   lists, PLAIN passwords and CURVE keys, running as a green task, and CURVE certificates.
//!
//! See `ARCHITECTURE.md` for how the layers fit together.
#![warn(missing_docs, missing_debug_implementations)]

pub mod auth;
pub mod eventloop;

/// The green (cooperative) `zmq` API: the whole of the `zmq` crate's API, with green
/// `Context` and `Socket`, plus green poll, proxies, devices and the hub. See the
/// [`zmqloop_green`] crate docs.
pub mod green {
    pub use zmqloop_green::*;

    /// The event loop running on the green poller: the same [`IOLoop`](crate::eventloop::IOLoop)
    /// and [`ZmqStream`](crate::eventloop::ZmqStream) as `zmqloop::eventloop`; started inside a
    /// may coroutine or a hub task, the loop parks only that coroutine while it waits.
    pub mod eventloop {
        pub use crate::eventloop::*;
    }
}
