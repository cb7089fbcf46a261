//! Criterion benchmarks: zmqloop's green sockets on may coroutines against the plain blocking
//! `zmq` crate on OS threads, side by side in one process run.
//!
//! Every scenario is one criterion group with two functions:
//! - `blocking`: plain `zmq`, every task on its own OS thread, blocking calls;
//! - `green`: `zmqloop::green` sockets, every task a may coroutine (`zmqloop::green::spawn`) on
//!   two may workers (one per core of the 2-core reference machine).
//!
//! Both sides run the very same fixtures, those of `zmqloop_fixtures::side_by_side` (shared with
//! `benches/proxy.rs` and `examples/compare.rs`; its module doc has the measurement rules, what
//! each clock measures), written once and expanded in module `blocking` and in module `green`.
//! A fixture's sockets and tasks are set up once per benchmark, outside the timed region, and
//! then fed through channels, so an iteration times messaging only:
//!
//! - PUSH/PULL throughput, 16 B and 1 KiB, inproc and tcp: one long-lived producer and one
//!   consumer; an iteration is a batch of messages, timed from the first send to the last
//!   receive. Reported in messages per second.
//! - REQ/REP round trip, tcp, 16 B: a REQ client task and a REP echo task; an iteration is one
//!   round trip, timed by the client. Reported as time per round trip.
//! - DEALER/ROUTER echo, inproc: one ROUTER echo task and 1000 DEALER clients, each with its own
//!   socket and task; an iteration is 10 requests per client, each waiting for its reply, timed
//!   from the start signal to the last client's last reply. Reported in requests per second.
//!   With the ROUTER that is 1001 sockets: `zmq::Context` cannot raise libzmq's 1023-socket cap,
//!   so the plain side stays under it; the green context raises it to 4096 anyway.
//!
//! Run with `cargo bench --bench green_vs_blocking` (about two minutes on 2 cores; `-- --quick`
//! for a rough pass). Samples are few and short (10 samples, 1 s warm-up, 3 s measurement) to
//! keep the whole run within minutes; compare the two functions of a group, not runs across
//! machines.

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};

use zmqloop_fixtures::side_by_side::{self as fixtures, blocking, green, Transport};

/// Messages per iteration of the 16 B throughput benchmarks.
const SMALL_BATCH: u64 = 100_000;
/// Messages per iteration of the 1 KiB throughput benchmarks.
const LARGE_BATCH: u64 = 20_000;
/// DEALER clients of the echo benchmark (plus the ROUTER: 1001 sockets, under libzmq's default
/// cap of 1023, which a plain `zmq::Context` cannot raise).
const CLIENTS: usize = 1000;
/// Requests each DEALER client makes per iteration.
const REQUESTS_PER_CLIENT: u64 = 10;

/// PUSH/PULL throughput: `batch` messages of `size` bytes per iteration.
fn push_pull(c: &mut Criterion, transport: Transport, size: usize, batch: u64) {
    let mut group = c.benchmark_group(format!("push_pull_{}_{size}B", transport.name()));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(batch));

    let fixture = blocking::PushPull::new(transport, size);
    group.bench_function("blocking", |b| {
        b.iter_custom(|iters| fixture.run(iters * batch))
    });
    fixture.finish();

    let fixture = green::PushPull::new(transport, size);
    group.bench_function("green", |b| {
        b.iter_custom(|iters| fixture.run(iters * batch))
    });
    fixture.finish();

    group.finish();
}

fn push_pull_16b(c: &mut Criterion) {
    push_pull(c, Transport::Inproc, 16, SMALL_BATCH);
    push_pull(c, Transport::Tcp, 16, SMALL_BATCH);
}

fn push_pull_1kib(c: &mut Criterion) {
    push_pull(c, Transport::Inproc, 1024, LARGE_BATCH);
    push_pull(c, Transport::Tcp, 1024, LARGE_BATCH);
}

/// REQ/REP latency over tcp: one round trip per iteration.
fn req_rep(c: &mut Criterion) {
    let mut group = c.benchmark_group("req_rep_tcp_16B");

    let fixture = blocking::ReqRep::new(Transport::Tcp);
    group.bench_function("blocking", |b| b.iter_custom(|iters| fixture.run(iters)));
    fixture.finish();

    let fixture = green::ReqRep::new(Transport::Tcp);
    group.bench_function("green", |b| b.iter_custom(|iters| fixture.run(iters)));
    fixture.finish();

    group.finish();
}

/// DEALER/ROUTER echo over inproc: every client makes `REQUESTS_PER_CLIENT` requests per
/// iteration.
fn dealer_router(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("dealer_router_inproc_{CLIENTS}_clients"));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(CLIENTS as u64 * REQUESTS_PER_CLIENT));

    let fixture = blocking::DealerRouter::new(CLIENTS);
    group.bench_function("blocking", |b| {
        b.iter_custom(|iters| fixture.run(iters * REQUESTS_PER_CLIENT))
    });
    fixture.finish();

    let fixture = green::DealerRouter::new(CLIENTS);
    group.bench_function("green", |b| {
        b.iter_custom(|iters| fixture.run(iters * REQUESTS_PER_CLIENT))
    });
    fixture.finish();

    group.finish();
}

criterion_group! {
    name = benches;
    config = fixtures::short_criterion();
    targets = push_pull_16b, push_pull_1kib, req_rep, dealer_router
}

fn main() {
    // One may worker per core of the 2-core reference machine.
    fixtures::bench_main(2, benches);
}
