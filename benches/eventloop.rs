//! ZmqStream echo against a plain blocking echo loop, same process run (criterion): a DEALER
//! client keeps 100 messages in flight to a ROUTER echo over inproc, served either by a thread
//! looping on blocking `recv_multipart`/`send_multipart` or by a `ZmqStream` on an `IOLoop`.
//! Target: the stream reaches at least 0.8x the blocking loop's throughput.
//!
//! `cargo bench --bench eventloop`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zmqloop::eventloop::{IOLoop, ZmqStream};
use zmqloop::green as zmq;

const WINDOW: usize = 100;

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

/// Runs `count` round trips against an echo server started by `serve` on another thread.
fn run(name: &str, count: usize, serve: fn(zmq::Socket, usize)) -> Duration {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER).unwrap();
    let endpoint = format!("inproc://bench-{name}");
    router.bind(&endpoint).unwrap();
    let server = std::thread::spawn(move || serve(router, count));
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.connect(&endpoint).unwrap();
    let elapsed = drive(&dealer, count);
    server.join().unwrap();
    elapsed
}

fn serve_blocking(router: zmq::Socket, count: usize) {
    for _ in 0..count {
        let frames = router.recv_multipart(0).unwrap();
        router.send_multipart(frames, 0).unwrap();
    }
}

fn serve_stream(router: zmq::Socket, count: usize) {
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

fn echo(c: &mut Criterion) {
    const BATCH: usize = 20_000;
    let mut group = c.benchmark_group("echo inproc 16 B");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("blocking loop", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run("blocking", BATCH, serve_blocking))
                .sum()
        })
    });
    group.bench_function("ZmqStream", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| run("stream", BATCH, serve_stream)).sum())
    });
    group.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
