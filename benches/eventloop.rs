//! ZmqStream echo against a plain blocking echo loop, same process run (criterion): a DEALER
//! client keeps 100 messages in flight to a ROUTER echo over inproc, served either by a thread
//! looping on blocking receives and sends (copying each frame, or passing libzmq's messages on)
//! or by a `ZmqStream` on an `IOLoop` (byte frames, or zero-copy messages). The fixture is
//! `zmqloop_fixtures::echo` (shared with `examples/stream_echo.rs`); every iteration sets it up
//! afresh and times the client only, from its first send to its last receive. Target: the
//! zero-copy stream reaches at least the copying blocking loop's throughput.
//!
//! `cargo bench --bench eventloop`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use zmqloop_fixtures::echo::{run, SIDES};

fn echo(c: &mut Criterion) {
    const BATCH: usize = 20_000;
    let mut group = c.benchmark_group("echo inproc 16 B");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(BATCH as u64));
    for (name, serve) in SIDES {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run(name, BATCH, serve)).sum())
        });
    }
    group.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
