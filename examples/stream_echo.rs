//! An echo server written with `ZmqStream` on an `IOLoop`, measured side by side against a
//! plain blocking echo loop (same process, same client, alternating rounds): the ratio is
//! stream echo throughput / blocking echo throughput. The fixture (client, both echo servers) is
//! `zmqloop_fixtures::echo`, shared with the `eventloop` bench.
//!
//! `cargo run --release --example stream_echo [messages]` (default 200,000 round trips over
//! inproc with a window of 100 messages in flight).

use std::time::Duration;

use zmqloop_fixtures::echo as echo_fixture;

/// Round trips per second through the echo served by `serve` (one fresh setup, timed as
/// `echo_fixture::run` times it).
fn rate(name: &str, count: usize, serve: fn(zmqloop::green::Socket, usize)) -> f64 {
    count as f64 / echo_fixture::run(name, count, serve).as_secs_f64()
}

fn blocking_echo(count: usize) -> f64 {
    rate("blocking", count, echo_fixture::serve_blocking)
}

fn stream_echo(count: usize) -> f64 {
    rate("stream", count, echo_fixture::serve_stream)
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
