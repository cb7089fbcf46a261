//! An echo server written with `ZmqStream` on an `IOLoop`, measured side by side against a
//! plain blocking echo loop (same process, same client, alternating rounds): the ratio is
//! stream echo throughput / blocking echo throughput.
//!
//! `cargo run --release --example stream_echo [messages]` (default 200,000 round trips over
//! inproc with a window of 100 messages in flight).

use std::time::{Duration, Instant};

use zmqloop::eventloop::{IOLoop, ZmqStream};
use zmqloop::green as zmq;

const WINDOW: usize = 100;

/// Drives `count` messages through an echo at `endpoint` with a DEALER keeping `WINDOW` in
/// flight; returns round trips per second.
fn client(ctx: &zmq::Context, endpoint: &str, count: usize) -> f64 {
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.connect(endpoint).unwrap();
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
    count as f64 / start.elapsed().as_secs_f64()
}

fn blocking_echo(count: usize) -> f64 {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER).unwrap();
    router.bind("inproc://echo-blocking").unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..count {
            let frames = router.recv_multipart(0).unwrap();
            router.send_multipart(frames, 0).unwrap();
        }
    });
    let rate = client(&ctx, "inproc://echo-blocking", count);
    server.join().unwrap();
    rate
}

fn stream_echo(count: usize) -> f64 {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER).unwrap();
    router.bind("inproc://echo-stream").unwrap();
    let server = std::thread::spawn(move || {
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
    });
    let rate = client(&ctx, "inproc://echo-stream", count);
    server.join().unwrap();
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(200_000, |a| a.parse().expect("messages: a number"));
    let (mut blocking, mut stream) = (Vec::new(), Vec::new());
    for round in 1..=3 {
        blocking.push(blocking_echo(count));
        stream.push(stream_echo(count));
        println!(
            "round {round}: blocking echo {:.0} k msg/s, ZmqStream echo {:.0} k msg/s",
            blocking[round - 1] / 1e3,
            stream[round - 1] / 1e3
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (b, s) = (median(blocking), median(stream));
    println!(
        "median: blocking {:.0} k msg/s, ZmqStream {:.0} k msg/s, ratio {:.2}",
        b / 1e3,
        s / 1e3,
        s / b
    );
}
