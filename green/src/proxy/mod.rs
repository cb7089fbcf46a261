//! The green proxy family: `proxy`, `proxy_with_capture`, `proxy_steerable`,
//! `proxy_steerable_with_capture` with `zmq`'s exact signatures, built on green calls
//! (`zmq_proxy` itself would block the OS thread).
//!
//! Behaviour follows libzmq 4.3's `zmq_proxy_steerable`:
//! - whole multipart messages are forwarded in both directions (frontend first), in bursts;
//! - the capture socket gets a copy of every frame, with its `SNDMORE` flag;
//! - the control socket takes `PAUSE`, `RESUME`, `TERMINATE` (the proxy returns `Ok`) and
//!   `STATISTICS` (the reply is 8 frames of native-endian u64: frontend messages in, bytes in,
//!   messages out, bytes out, then the same for the backend; a multipart message counts once);
//! - any other command is logged, counted ([`unknown_proxy_commands`]) and ignored, where
//!   libzmq aborts the process;
//! - context termination ends it with `Err(ETERM)`;
//! - at a peer's high-water mark the proxy coroutine parks in its send (back-pressure):
//!   nothing is dropped that libzmq itself would not drop.
//!
//! `core.rs` holds the loop, shared with the devices of `device.rs`.

mod core;
pub mod device;

use zmq::Result;

pub use self::core::{unknown_proxy_commands, ProxyStatistics, SideStatistics};
pub(crate) use self::core::{Capture, Proxy};
use crate::socket::Socket;

/// Forwards messages between `frontend` and `backend` until the context is terminated
/// (returns `Err(ETERM)`); in a coroutine, parks only the coroutine while idle.
pub fn proxy(frontend: &Socket, backend: &Socket) -> Result<()> {
    Proxy::new(frontend, backend).run()
}

/// [`proxy`] with a copy of every frame sent to `capture`.
pub fn proxy_with_capture(
    frontend: &mut Socket,
    backend: &mut Socket,
    capture: &mut Socket,
) -> Result<()> {
    Proxy::new(frontend, backend)
        .capture(Capture::Frames(capture))
        .run()
}

/// [`proxy`] steered by commands received on `control` (PAUSE, RESUME, TERMINATE,
/// STATISTICS; see the module docs). Returns `Ok` after TERMINATE.
///
/// # Errors
/// ETERM when the context is terminated; any other error of a receive or send on the three
/// sockets (the proxy stops at the first).
///
/// # Examples
/// ```
/// use zmqloop_green as zmq;
///
/// let ctx = zmq::Context::new();
/// let socket = |kind, endpoint: &str| {
///     let socket = ctx.socket(kind).unwrap();
///     socket.bind(endpoint).unwrap();
///     socket
/// };
/// let mut frontend = socket(zmq::PULL, "inproc://steer-doc-in");
/// let mut backend = socket(zmq::PUSH, "inproc://steer-doc-out");
/// let mut control = socket(zmq::PAIR, "inproc://steer-doc-control");
/// let proxy = zmq::spawn(move || {
///     zmq::proxy_steerable(&mut frontend, &mut backend, &mut control)
/// });
/// let steer = ctx.socket(zmq::PAIR).unwrap();
/// steer.connect("inproc://steer-doc-control").unwrap();
/// steer.send("TERMINATE", 0).unwrap();
/// assert_eq!(proxy.join().unwrap(), Ok(()));
/// ```
pub fn proxy_steerable(
    frontend: &mut Socket,
    backend: &mut Socket,
    control: &mut Socket,
) -> Result<()> {
    Proxy::new(frontend, backend).control(control).run()
}

/// [`proxy_steerable`] with a copy of every frame sent to `capture`.
pub fn proxy_steerable_with_capture(
    frontend: &mut Socket,
    backend: &mut Socket,
    capture: &mut Socket,
    control: &mut Socket,
) -> Result<()> {
    Proxy::new(frontend, backend)
        .capture(Capture::Frames(capture))
        .control(control)
        .run()
}
