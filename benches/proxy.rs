//! Criterion benchmark: the green `zmq::proxy` running as a may coroutine against the plain
//! `zmq::proxy` (libzmq's `zmq_proxy`) on an OS thread, carrying the same request-reply traffic
//! in one process run.
//!
//! The traffic, zguide's extended request-reply pattern with pipelining:
//!
//! ```text
//! 16 DEALER clients -> ROUTER frontend | proxy | DEALER backend -> 4 DEALER echo workers
//! ```
//!
//! Every client keeps up to 50 requests of 16 B in flight (well under the high-water mark, so
//! the ROUTER never drops a reply) and the workers send every `[identity, body]` back as is.
//! Each request crosses the proxy twice (request and reply), so the proxy is the busiest task.
//!
//! Both sides run the very same fixture, `Proxy` of `zmqloop_fixtures::side_by_side` (shared with
//! `benches/green_vs_blocking.rs` and `examples/compare.rs`; its module doc has the measurement
//! rules), written once and expanded in module `blocking` (the `zmq` crate, every task on its own
//! OS thread, the proxy included) and in module `green` (`zmqloop::green`, every task a coroutine
//! through `zmqloop::green::spawn` on two may workers, the proxy included). Sockets and tasks are
//! set up once per benchmark, and every client makes one request before any timing. An iteration
//! is [`REQUESTS_PER_CLIENT`] requests per client; the clock runs from the start signal to the
//! last client's last reply. Throughput is in messages through the proxy (two per request). Both
//! proxies are stopped by terminating their context (the plain one returns `ETERM`, the green one
//! too).
//!
//! Run with `cargo bench --bench proxy` (about a minute on 2 cores; `-- --quick` for a rough
//! pass). Few and short samples (10 samples, 1 s warm-up, 3 s measurement): compare the two
//! functions of a group, not runs across machines.

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};

use zmqloop_fixtures::side_by_side::{self as fixtures, blocking, green, Transport};

/// DEALER clients.
const CLIENTS: usize = 16;
/// DEALER echo workers behind the proxy.
const WORKERS: usize = 4;
/// Requests each client makes per iteration (up to `fixtures::WINDOW` of them in flight).
const REQUESTS_PER_CLIENT: u64 = 500;

/// The proxy over `transport`: every client makes [`REQUESTS_PER_CLIENT`] requests per
/// iteration, two messages through the proxy each.
fn proxy(c: &mut Criterion, transport: Transport) {
    let mut group = c.benchmark_group(format!(
        "proxy_{}_{CLIENTS}_clients_{WORKERS}_workers",
        transport.name()
    ));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(
        2 * CLIENTS as u64 * REQUESTS_PER_CLIENT,
    ));

    let fixture = blocking::Proxy::new(transport, CLIENTS, WORKERS);
    group.bench_function("zmq_proxy_os_thread", |b| {
        b.iter_custom(|iters| fixture.run(iters * REQUESTS_PER_CLIENT))
    });
    fixture.finish();

    let fixture = green::Proxy::new(transport, CLIENTS, WORKERS);
    group.bench_function("green_proxy_coroutine", |b| {
        b.iter_custom(|iters| fixture.run(iters * REQUESTS_PER_CLIENT))
    });
    fixture.finish();

    group.finish();
}

fn proxy_inproc(c: &mut Criterion) {
    proxy(c, Transport::Inproc);
}

fn proxy_tcp(c: &mut Criterion) {
    proxy(c, Transport::Tcp);
}

criterion_group! {
    name = benches;
    config = fixtures::short_criterion();
    targets = proxy_inproc, proxy_tcp
}

fn main() {
    // One may worker per core of the 2-core reference machine.
    fixtures::bench_main(2, benches);
}
