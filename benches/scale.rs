//! Criterion version of the scale scenario (`zmqloop_fixtures::scale`): N DEALER clients, each
//! with its own socket and task, against one ROUTER echo over inproc, 10 requests of 16 B per
//! client, for N = 100 and 1000, on plain threads (`blocking`), may coroutines (`may`, two
//! unpinned workers), hub tasks on one thread (`hub`) and on two hubs, one per thread
//! (`hubs`). Every iteration sets the scenario up afresh and times its run phase only (from
//! the echo's start to the last reply).
//!
//! `cargo bench --bench scale`. For 10,000 clients, tcp, memory and the comparison with tmq on
//! tokio, use the scale example of the `zmqloop-peers` package (see the README).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zmqloop_fixtures::scale::{self, Config, Side, Transport};

const REQUESTS: usize = 10;

fn scale_inproc(c: &mut Criterion) {
    for clients in [100, 1000] {
        let mut group = c.benchmark_group(format!("scale_inproc_{clients}_clients"));
        group
            .sample_size(10)
            .warm_up_time(std::time::Duration::from_secs(1))
            .measurement_time(std::time::Duration::from_secs(5))
            .throughput(Throughput::Elements((clients * REQUESTS) as u64));
        let config = Config {
            clients,
            requests: REQUESTS,
            transport: Transport::Inproc,
            workers: 2,
            io_threads: 1,
            teardown: true,
        };
        for (name, side) in [
            ("blocking", Side::Blocking),
            ("may", Side::May),
            ("hub", Side::Hub),
            ("hubs", Side::Hubs),
        ] {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| scale::run(side, &config).run).sum())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, scale_inproc);
criterion_main!(benches);
