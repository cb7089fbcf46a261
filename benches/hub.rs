//! Criterion benchmarks: the single-threaded hub (`zmqloop::green::hub::Hub`, corosensei tasks
//! on one OS thread) against may coroutines on ONE worker and against blocking OS threads, side
//! by side in one process run.
//!
//! Every scenario is one criterion group with three functions:
//! - `blocking`: the plain `zmq` crate, every task on its own OS thread, blocking calls (the
//!   `blocking` fixtures of `zmqloop_fixtures::side_by_side`);
//! - `may`: `zmqloop::green` sockets, every task a may coroutine (`zmqloop::green::spawn`), with
//!   may configured for one worker (`may::config().set_workers(1)`, the first thing `main` does)
//!   (the `green` fixtures of `zmqloop_fixtures::side_by_side`);
//! - `hub`: `zmqloop::green` sockets, every task a hub task on the benchmark's own thread
//!   (`Hub::spawn`, driven by `Hub::block_on` / `Hub::run`): the fixtures of module `on_hub`
//!   below. Hub tasks are not `Send`, so they cannot run the shared fixtures, whose tasks are
//!   commanded through channels; they run the shared fixtures' very socket code instead (the
//!   public pieces of `fixtures::green`: the same echo loops, round trips and requests).
//!
//! `may` and `hub` use green contexts raised to 4096 sockets (`set_max_sockets`); `blocking` a
//! plain `zmq::Context`, which cannot raise libzmq's 1023-socket cap: the 1000 DEALERs, the
//! ROUTER and the stopper of the DEALER/ROUTER scenario stay under it. Sockets and long-lived
//! tasks are set up once per benchmark, outside the timed region; every clock below is read by
//! the tasks themselves, except the start of the DEALER/ROUTER runs of `blocking` and `may`.
//!
//! - `req_rep_inproc_16B`: a REQ client and a long-lived REP echo task over inproc, 16 B
//!   requests, 1000 warm-up round trips first. An iteration is one round trip, timed by the
//!   client around a run of round trips (blocking/may: a long-lived client task told by channel
//!   how many to make; hub: `block_on` of a client task). Reported as time per round trip.
//!   A fourth function, `hub_watchdog`, is `hub` with the blocking detector on
//!   (`Builder::max_blocking_time(100 ms)`): its cost per task switch.
//! - `dealer_router_inproc_1000_clients`: one long-lived ROUTER echo task and 1000 DEALER
//!   clients over inproc, all connected and warmed (one request each) before any timing. An
//!   iteration is 10 requests per client, each waiting for its reply; reported in requests per
//!   second. Blocking/may: long-lived client tasks get a start command by channel; the clock runs
//!   from just before the first command (read by the benchmark's thread) to the last client's
//!   last reply. Hub: the client tasks (which have no channel to park on) are spawned before the
//!   clock starts, behind a first task that reads the start time; the clock stops when a task
//!   joining all clients has joined the last one. So the hub's figure includes each client
//!   task's first switch-in, and not its spawn.
//! - `spawn_join`: trivial tasks (empty closures) spawned and joined in batches of 1000 (hub:
//!   1000 `spawn`s then `run()`; may: 1000 spawns then `join` each; blocking: 1000
//!   `std::thread::spawn`s then `join` each). An iteration is one task, so criterion reports the
//!   time per spawn + join.
//!
//! - `yield_switch_100_tasks`: 100 hub tasks yielding in turn, no I/O; an iteration is one
//!   yield (one task switch). `hub` and `hub_watchdog` only: the blocking detector's cost per
//!   switch, which a round trip's system calls would hide.
//!
//! Run with `cargo bench --bench hub` (one to one and a half minutes on 2 cores, most of it
//! criterion's plotting: under a minute with `-- --noplot`; `-- --quick` for a rough pass, or a
//! group name such as `-- spawn_join` to run one scenario). Samples are few and short (10
//! samples, 1 s warm-up, 3 s measurement): compare the functions of a group, not runs across
//! machines.

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use std::time::{Duration, Instant};

use zmqloop_fixtures::side_by_side::{self as fixtures, blocking, green, Transport};

/// DEALER clients of the echo benchmark.
const CLIENTS: usize = 1000;
/// Requests each DEALER client makes per iteration.
const REQUESTS_PER_CLIENT: u64 = 10;
/// Tasks spawned before they are joined in the spawn benchmark.
const SPAWN_BATCH: u64 = 1000;
/// Tasks taking turns in the task-switch benchmark.
const YIELD_TASKS: u64 = 100;

/// Every task a hub task on the calling thread, running the socket code of `fixtures::green`.
mod on_hub {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use zmqloop::green as zmq;
    use zmqloop::green::hub::Hub;

    use zmqloop_fixtures::side_by_side::{green, Transport, WARM_UP};

    fn hub() -> Hub {
        Hub::new().expect("create a hub")
    }

    /// A hub with the blocking detector on.
    pub fn watched_hub() -> Hub {
        Hub::builder()
            .max_blocking_time(Duration::from_millis(100))
            .build()
            .expect("create a hub")
    }

    /// A REP echo task parked on the hub between runs; each run is a client task driven by
    /// `block_on`.
    pub struct ReqRep {
        hub: Hub,
        req: Rc<zmq::Socket>,
        context: zmq::Context,
    }

    impl ReqRep {
        /// Connects the pair over `transport`, starts the echo task and makes [`WARM_UP`] round
        /// trips.
        pub fn new(transport: Transport) -> ReqRep {
            ReqRep::on(hub(), transport)
        }

        /// [`ReqRep::new`] on the given hub.
        pub fn on(hub: Hub, transport: Transport) -> ReqRep {
            let context = green::context();
            let (req, rep) = green::req_rep_pair(&context, transport);
            hub.spawn(move || green::echo_rep(rep));
            let fixture = ReqRep {
                hub,
                req: Rc::new(req),
                context,
            };
            fixture.run(WARM_UP);
            fixture
        }

        /// Makes `count` round trips; returns their total time.
        pub fn run(&self, count: u64) -> Duration {
            let req = self.req.clone();
            self.hub.block_on(move || green::round_trips(&req, count))
        }

        /// Stops the echo task, then terminates the context.
        pub fn finish(self) {
            let ReqRep { hub, req, context } = self;
            let stopper = req.clone();
            hub.block_on(move || green::stop_rep(&stopper));
            hub.run();
            assert_eq!(hub.tasks(), 0, "the REP echo task did not finish");
            drop(hub);
            drop(req);
            drop(context);
        }
    }

    /// One ROUTER echo task parked on the hub between runs and many connected DEALER sockets
    /// over inproc; each run spawns one client task per DEALER.
    pub struct DealerRouter {
        hub: Hub,
        dealers: Vec<Rc<zmq::Socket>>,
        endpoint: String,
        context: zmq::Context,
    }

    impl DealerRouter {
        /// Starts the ROUTER echo task, connects `clients` DEALERs and has every client make
        /// one request.
        pub fn new(clients: usize) -> DealerRouter {
            let context = green::context();
            let (router, endpoint) = green::router(&context, Transport::Inproc);
            let hub = hub();
            hub.spawn(move || green::echo_router(router));
            let dealers = (0..clients)
                .map(|_| Rc::new(green::dealer(&context, &endpoint)))
                .collect();
            let fixture = DealerRouter {
                hub,
                dealers,
                endpoint,
                context,
            };
            fixture.run(1);
            fixture
        }

        /// Has every client make `requests` requests; returns the time from the first task's
        /// start to the last client's end (the spawns come before the clock starts).
        pub fn run(&self, requests: u64) -> Duration {
            // The hub runs ready tasks in spawn order: this one reads the clock first.
            let start = Rc::new(Cell::new(None));
            let start_writer = start.clone();
            self.hub
                .spawn(move || start_writer.set(Some(Instant::now())));
            let clients: Vec<_> = self
                .dealers
                .iter()
                .map(|dealer| {
                    let dealer = dealer.clone();
                    self.hub
                        .spawn(move || green::requests_one_by_one(&dealer, requests))
                })
                .collect();
            let end = self.hub.block_on(move || {
                for client in clients {
                    client.join().expect("a DEALER client panicked");
                }
                Instant::now()
            });
            end.duration_since(start.get().expect("the start task ran"))
        }

        /// Stops the ROUTER echo task, then terminates the context.
        pub fn finish(self) {
            let DealerRouter {
                hub,
                dealers,
                endpoint,
                context,
            } = self;
            let stopper_context = context.clone();
            let stopper = hub.block_on(move || green::stop_router(&stopper_context, &endpoint));
            hub.run();
            assert_eq!(hub.tasks(), 0, "the ROUTER echo task did not finish");
            drop(stopper);
            drop(hub);
            drop(dealers);
            drop(context);
        }
    }

    /// Spawns `count` trivial tasks, [`crate::SPAWN_BATCH`] at a time, each batch run to its
    /// end by `Hub::run`; returns the total time.
    pub fn spawn_join(hub: &Hub, count: u64) -> Duration {
        crate::in_batches(count, |batch| {
            for _ in 0..batch {
                hub.spawn(|| {});
            }
            hub.run();
        })
    }

    /// A hub for [`spawn_join`].
    pub fn spawn_hub() -> Hub {
        hub()
    }

    /// Has [`crate::YIELD_TASKS`] tasks yield in turn until they have made `count` yields in
    /// all (rounded up to a multiple of the task count); returns the time, spawns included.
    pub fn yield_switches(hub: &Hub, count: u64) -> Duration {
        let per_task = count.div_ceil(crate::YIELD_TASKS);
        let start = Instant::now();
        for _ in 0..crate::YIELD_TASKS {
            hub.spawn(move || {
                for _ in 0..per_task {
                    zmqloop::green::hub::yield_now();
                }
            });
        }
        hub.run();
        start.elapsed()
    }
}

/// Runs `count` tasks as `run_batch(n)` calls of at most [`SPAWN_BATCH`] tasks each, where
/// `run_batch(n)` spawns `n` trivial tasks and joins them; returns the total time.
fn in_batches(count: u64, mut run_batch: impl FnMut(u64)) -> Duration {
    let start = Instant::now();
    let mut left = count;
    while left > 0 {
        let batch = left.min(SPAWN_BATCH);
        run_batch(batch);
        left -= batch;
    }
    start.elapsed()
}

/// Spawns and joins `count` trivial OS threads, [`SPAWN_BATCH`] at a time; returns the total
/// time.
fn spawn_join_threads(count: u64) -> Duration {
    in_batches(count, |batch| {
        let handles: Vec<_> = (0..batch).map(|_| std::thread::spawn(|| {})).collect();
        for handle in handles {
            handle.join().expect("a trivial thread panicked");
        }
    })
}

/// Spawns and joins `count` trivial may coroutines, [`SPAWN_BATCH`] at a time; returns the
/// total time.
fn spawn_join_may(count: u64) -> Duration {
    in_batches(count, |batch| {
        let handles: Vec<_> = (0..batch).map(|_| zmqloop::green::spawn(|| {})).collect();
        for handle in handles {
            handle.join().expect("a trivial coroutine panicked");
        }
    })
}

/// Benchmarks one fixture as function `$function` of `$group`: sets it up with `$fixture`
/// (untimed), has criterion time `run(iters * $per_iteration)` for its `iters` iterations, then
/// finishes it.
macro_rules! bench_fixture {
    ($group:ident, $function:literal, $fixture:expr, $per_iteration:expr) => {
        let fixture = $fixture;
        $group.bench_function($function, |b| {
            b.iter_custom(|iters| fixture.run(iters * $per_iteration))
        });
        fixture.finish();
    };
}

/// REQ/REP latency over inproc: one round trip per iteration.
fn req_rep(c: &mut Criterion) {
    let mut group = c.benchmark_group("req_rep_inproc_16B");
    let transport = Transport::Inproc;
    bench_fixture!(group, "blocking", blocking::ReqRep::new(transport), 1);
    bench_fixture!(group, "may", green::ReqRep::new(transport), 1);
    bench_fixture!(group, "hub", on_hub::ReqRep::new(transport), 1);
    bench_fixture!(
        group,
        "hub_watchdog",
        on_hub::ReqRep::on(on_hub::watched_hub(), transport),
        1
    );
    group.finish();
}

/// DEALER/ROUTER echo over inproc: every client makes `REQUESTS_PER_CLIENT` requests per
/// iteration.
fn dealer_router(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("dealer_router_inproc_{CLIENTS}_clients"));
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(CLIENTS as u64 * REQUESTS_PER_CLIENT));
    let requests = REQUESTS_PER_CLIENT;
    bench_fixture!(
        group,
        "blocking",
        blocking::DealerRouter::new(CLIENTS),
        requests
    );
    bench_fixture!(group, "may", green::DealerRouter::new(CLIENTS), requests);
    bench_fixture!(group, "hub", on_hub::DealerRouter::new(CLIENTS), requests);
    group.finish();
}

/// Spawn + join of a trivial task, in batches of `SPAWN_BATCH`: one task per iteration.
fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("spawn_join_batches_of_{SPAWN_BATCH}"));
    group.throughput(Throughput::Elements(1));

    group.bench_function("blocking", |b| b.iter_custom(spawn_join_threads));
    group.bench_function("may", |b| b.iter_custom(spawn_join_may));
    let hub = on_hub::spawn_hub();
    group.bench_function("hub", |b| {
        b.iter_custom(|iters| on_hub::spawn_join(&hub, iters))
    });
    drop(hub);

    group.finish();
}

/// Task switches without I/O, on a plain hub and on one with the blocking detector on: the
/// detector's cost per switch, where a round trip's system calls would drown it.
fn yield_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("yield_switch_{YIELD_TASKS}_tasks"));
    group.throughput(Throughput::Elements(1));
    for (name, hub) in [
        ("hub", on_hub::spawn_hub()),
        ("hub_watchdog", on_hub::watched_hub()),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| on_hub::yield_switches(&hub, iters))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = fixtures::short_criterion();
    targets = req_rep, dealer_router, spawn_join, yield_switch
}

fn main() {
    // One may worker, so that may and the hub each schedule their tasks on one thread.
    fixtures::bench_main(1, benches);
}
