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
//! See `ARCHITECTURE.md` for how the layers fit together.
#![warn(missing_docs)]

/// The green (cooperative) `zmq` API: the whole of the `zmq` crate's API, with green
/// `Context` and `Socket`. See the [`zmqloop_green`] crate docs.
pub use zmqloop_green as green;
