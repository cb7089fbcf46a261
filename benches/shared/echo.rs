//! The echo fixture of the `ZmqStream` comparison, written once: a DEALER client keeps
//! [`WINDOW`] 16 B messages in flight to a ROUTER echo over inproc, served on another thread
//! either by a blocking loop ([`serve_blocking`]) or by a `ZmqStream` on an `IOLoop`
//! ([`serve_stream`]). Included as module `echo_fixture` by `benches/eventloop.rs`
//! (`#[path = "shared/echo.rs"]`) and by `examples/stream_echo.rs`
//! (`#[path = "../benches/shared/echo.rs"]`); it sits in a subdirectory so that cargo does not
//! take it for a benchmark of its own.

use std::time::{Duration, Instant};

use zmqloop::eventloop::{IOLoop, ZmqStream};
use zmqloop::green as zmq;

/// Messages the client keeps in flight.
pub const WINDOW: usize = 100;

/// Sends `count` messages on `dealer`, keeping up to [`WINDOW`] in flight, and receives every
/// echo; returns the time from the first send to the last receive.
fn drive(dealer: &zmq::Socket, count: usize) -> Duration {
    let start = Instant::now();
    let (mut sent, mut received) = (0, 0);
    while received < count {
        while sent < count && sent - received < WINDOW {
            dealer.send("ping 16 bytes..", 0).unwrap();
            sent += 1;
        }
        dealer.recv_bytes(0).unwrap();
        received += 1;
    }
    start.elapsed()
}

/// Runs `count` round trips against an echo server started by `serve` on another thread, on a
/// fresh context (`name` names the inproc endpoint); returns the client's time, from its first
/// send to its last receive (setup and the server's join are not timed).
pub fn run(name: &str, count: usize, serve: fn(zmq::Socket, usize)) -> Duration {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER).unwrap();
    let endpoint = format!("inproc://echo-{name}");
    router.bind(&endpoint).unwrap();
    let server = std::thread::spawn(move || serve(router, count));
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.connect(&endpoint).unwrap();
    let elapsed = drive(&dealer, count);
    server.join().unwrap();
    elapsed
}

/// Echoes `count` messages with blocking `recv_multipart` / `send_multipart`.
pub fn serve_blocking(router: zmq::Socket, count: usize) {
    for _ in 0..count {
        let frames = router.recv_multipart(0).unwrap();
        router.send_multipart(frames, 0).unwrap();
    }
}

/// Echoes `count` messages with a `ZmqStream` on an `IOLoop` of this thread, then flushes and
/// stops the loop.
pub fn serve_stream(router: zmq::Socket, count: usize) {
    let ioloop = IOLoop::new().unwrap();
    let stream = ZmqStream::new(router, &ioloop).unwrap();
    let stopper = ioloop.clone();
    let mut echoed = 0;
    stream.on_recv_stream(move |stream, frames| {
        stream.send_multipart(frames);
        echoed += 1;
        if echoed == count {
            stream.flush(zmq::POLLOUT, None);
            stopper.stop();
        }
    });
    ioloop.start().unwrap();
}
