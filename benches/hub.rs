//! Criterion benchmarks: the single-threaded hub (`zmqloop::green::hub::Hub`, corosensei tasks
//! on one OS thread) against may coroutines on ONE worker and against blocking OS threads, all
//! three driving the very same green sockets (`zmqloop::green`), side by side in one process run.
//!
//! Every scenario is one criterion group with three functions:
//! - `blocking`: every task on its own OS thread; green sockets used outside any coroutine, where
//!   they behave exactly like the blocking `zmq` crate;
//! - `may`: every task a may coroutine (`zmqloop::green::spawn`), with may configured for one
//!   worker (`may::config().set_workers(1)`, the first thing `main` does);
//! - `hub`: every task a hub task on the benchmark's own thread (`Hub::spawn`, driven by
//!   `Hub::block_on` / `Hub::run`).
//!
//! Green contexts are used for all three (`set_max_sockets(4096)`: the plain `zmq` crate cannot
//! raise libzmq's 1023-socket cap). Sockets and long-lived tasks are set up once per benchmark,
//! outside the timed region; every clock below is read by the tasks themselves.
//!
//! - `req_rep_inproc_16B`: a REQ client and a long-lived REP echo task over inproc, 16 B
//!   requests, 1000 warm-up round trips first. An iteration is one round trip, timed by the
//!   client around a run of round trips (blocking/may: a long-lived client task told by channel
//!   how many to make; hub: `block_on` of a client task). Reported as time per round trip.
//! - `dealer_router_inproc_1000_clients`: one long-lived ROUTER echo task and 1000 DEALER
//!   clients over inproc, all connected and warmed (one request each) before any timing. An
//!   iteration is 10 requests per client, each waiting for its reply; reported in requests per
//!   second. Blocking/may: long-lived client tasks get a start command by channel; the clock runs
//!   from the first command to the last client's last reply. Hub: the client tasks (which have
//!   no channel to park on) are spawned before the clock starts, behind a first task that reads
//!   the start time; the clock stops when a task joining all clients has joined the last one. So
//!   the hub's figure includes each client task's first switch-in, and not its spawn.
//! - `spawn_join`: trivial tasks (empty closures) spawned and joined in batches of 1000 (hub:
//!   1000 `spawn`s then `run()`; may: 1000 spawns then `join` each; blocking: 1000
//!   `std::thread::spawn`s then `join` each). An iteration is one task, so criterion reports the
//!   time per spawn + join.
//!
//! Run with `cargo bench --bench hub` (one to one and a half minutes on 2 cores, most of it
//! criterion's plotting: under a minute with `-- --noplot`; `-- --quick` for a rough pass, or a
//! group name such as `-- spawn_join` to run one scenario). Samples are few and short (10
//! samples, 1 s warm-up, 3 s measurement): compare the functions of a group, not runs across
//! machines.

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use std::time::{Duration, Instant};
use zmqloop::green as zmq;

/// Payload size of the REQ/REP and DEALER/ROUTER requests.
const REQUEST_SIZE: usize = 16;
/// Round trips made at setup of the REQ/REP fixtures, before any timing.
const WARM_UP: u64 = 1000;
/// DEALER clients of the echo benchmark.
const CLIENTS: usize = 1000;
/// Requests each DEALER client makes per iteration.
const REQUESTS_PER_CLIENT: u64 = 10;
/// Tasks spawned before they are joined in the spawn benchmark.
const SPAWN_BATCH: u64 = 1000;
/// Where every fixture's sockets meet (each fixture has its own context).
const ENDPOINT: &str = "inproc://bench";

/// A green context that may hold the 1000 DEALERs and then some.
fn context() -> zmq::Context {
    let context = zmq::Context::new();
    context
        .set_max_sockets(4096)
        .expect("raise ZMQ_MAX_SOCKETS");
    context
}

/// A connected (REQ, REP) pair on `context`.
fn req_rep_pair(context: &zmq::Context) -> (zmq::Socket, zmq::Socket) {
    let rep = context.socket(zmq::REP).expect("create REP");
    rep.bind(ENDPOINT).expect("bind REP");
    let req = context.socket(zmq::REQ).expect("create REQ");
    req.connect(ENDPOINT).expect("connect REQ");
    (req, rep)
}

/// Echoes every request back; an empty one is echoed and is the last.
fn echo_rep(rep: zmq::Socket) {
    loop {
        let request = rep.recv_msg(0).expect("REP recv");
        let last = request.is_empty();
        rep.send(request, 0).expect("REP send");
        if last {
            break;
        }
    }
}

/// Makes `count` round trips of [`REQUEST_SIZE`] bytes; returns their total time.
fn round_trips(req: &zmq::Socket, count: u64) -> Duration {
    let request = [0u8; REQUEST_SIZE];
    let mut reply = zmq::Message::new();
    let start = Instant::now();
    for _ in 0..count {
        req.send(&request[..], 0).expect("REQ send");
        req.recv(&mut reply, 0).expect("REQ recv");
    }
    start.elapsed()
}

/// Sends the empty request that stops [`echo_rep`], and takes its reply.
fn stop_rep(req: &zmq::Socket) {
    req.send(zmq::Message::new(), 0)
        .expect("REQ send the last request");
    req.recv_msg(0).expect("REQ recv the last reply");
}

/// A bound ROUTER on `context`.
fn router(context: &zmq::Context) -> zmq::Socket {
    let router = context.socket(zmq::ROUTER).expect("create ROUTER");
    router.bind(ENDPOINT).expect("bind ROUTER");
    router
}

/// A DEALER connected to the ROUTER of [`router`].
fn dealer(context: &zmq::Context) -> zmq::Socket {
    let dealer = context.socket(zmq::DEALER).expect("create DEALER");
    dealer.connect(ENDPOINT).expect("connect DEALER");
    dealer
}

/// Echoes every `[identity, body]` back; an empty body means stop.
fn echo_router(router: zmq::Socket) {
    loop {
        let identity = router.recv_msg(0).expect("ROUTER recv identity");
        let body = router.recv_msg(0).expect("ROUTER recv body");
        if body.is_empty() {
            break;
        }
        router
            .send(identity, zmq::SNDMORE)
            .expect("ROUTER send identity");
        router.send(body, 0).expect("ROUTER send body");
    }
}

/// Makes `count` requests on `dealer`, each waiting for its reply.
fn requests(dealer: &zmq::Socket, count: u64) {
    let request = [0u8; REQUEST_SIZE];
    let mut reply = zmq::Message::new();
    for _ in 0..count {
        dealer.send(&request[..], 0).expect("DEALER send");
        dealer.recv(&mut reply, 0).expect("DEALER recv");
    }
}

/// Stops [`echo_router`] with an empty request from a DEALER of its own.
fn stop_router(context: &zmq::Context) {
    let stopper = dealer(context);
    stopper
        .send(zmq::Message::new(), 0)
        .expect("send the stop request");
}

/// The fixtures of the thread-like schedulers (OS threads, may coroutines), written once against
/// whatever `spawn`, `chan` (a module with an mpsc `channel` the tasks park on) and `Handle` (a
/// join handle) name in the invoking module.
macro_rules! threaded_fixtures {
    () => {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};

        use crate::{context, zmq, WARM_UP};

        /// A REQ client task and a REP echo task; the client is told by channel how many round
        /// trips to time.
        pub struct ReqRep {
            command: chan::Sender<u64>,
            elapsed: mpsc::Receiver<Duration>,
            tasks: Vec<Handle<()>>,
            context: zmq::Context,
        }

        impl ReqRep {
            /// Starts both tasks and makes [`WARM_UP`] round trips.
            pub fn new() -> ReqRep {
                let context = context();
                let (req, rep) = crate::req_rep_pair(&context);
                let server = spawn(move || crate::echo_rep(rep));
                let (command, command_rx) = chan::channel::<u64>();
                let (elapsed_tx, elapsed) = mpsc::channel();
                let client = spawn(move || {
                    while let Ok(count) = command_rx.recv() {
                        let time = crate::round_trips(&req, count);
                        elapsed_tx.send(time).expect("report the round trips");
                    }
                    crate::stop_rep(&req);
                });
                let fixture = ReqRep {
                    command,
                    elapsed,
                    tasks: vec![server, client],
                    context,
                };
                fixture.run(WARM_UP);
                fixture
            }

            /// Makes `count` round trips; returns their total time.
            pub fn run(&self, count: u64) -> Duration {
                self.command.send(count).expect("command the client");
                self.elapsed.recv().expect("the client stopped")
            }

            /// Stops and joins both tasks, then terminates the context.
            pub fn finish(self) {
                let ReqRep {
                    command,
                    tasks,
                    context,
                    ..
                } = self;
                drop(command);
                for task in tasks {
                    task.join().expect("a REQ/REP task panicked");
                }
                drop(context);
            }
        }

        /// One ROUTER echo task and many DEALER clients, each client with its own socket and
        /// task, told by channel how many requests to make.
        pub struct DealerRouter {
            clients: Vec<chan::Sender<u64>>,
            done: mpsc::Receiver<Instant>,
            client_tasks: Vec<Handle<()>>,
            router_task: Handle<()>,
            context: zmq::Context,
        }

        impl DealerRouter {
            /// Starts the ROUTER echo task and `clients` DEALER clients, and has every client
            /// make one request so that all are connected.
            pub fn new(clients: usize) -> DealerRouter {
                let context = context();
                let router = crate::router(&context);
                let router_task = spawn(move || crate::echo_router(router));
                let (done_tx, done) = mpsc::channel();
                let mut senders = Vec::with_capacity(clients);
                let mut client_tasks = Vec::with_capacity(clients);
                for _ in 0..clients {
                    let dealer = crate::dealer(&context);
                    let (command, command_rx) = chan::channel::<u64>();
                    let done_tx = done_tx.clone();
                    client_tasks.push(spawn(move || {
                        while let Ok(count) = command_rx.recv() {
                            crate::requests(&dealer, count);
                            done_tx.send(Instant::now()).expect("report the requests");
                        }
                    }));
                    senders.push(command);
                }
                let fixture = DealerRouter {
                    clients: senders,
                    done,
                    client_tasks,
                    router_task,
                    context,
                };
                fixture.run(1);
                fixture
            }

            /// Has every client make `requests` requests; returns the time from the first
            /// start command to the last reply.
            pub fn run(&self, requests: u64) -> Duration {
                let start = Instant::now();
                for client in &self.clients {
                    client.send(requests).expect("command a client");
                }
                let mut end = start;
                for _ in 0..self.clients.len() {
                    end = end.max(self.done.recv().expect("a client stopped"));
                }
                end.duration_since(start)
            }

            /// Stops and joins the clients and the ROUTER, then terminates the context.
            pub fn finish(self) {
                let DealerRouter {
                    clients,
                    client_tasks,
                    router_task,
                    context,
                    ..
                } = self;
                drop(clients);
                for task in client_tasks {
                    task.join().expect("a DEALER client panicked");
                }
                crate::stop_router(&context);
                router_task.join().expect("the ROUTER task panicked");
                drop(context);
            }
        }

        /// Spawns and joins `count` trivial tasks, [`crate::SPAWN_BATCH`] at a time; returns
        /// the total time.
        pub fn spawn_join(count: u64) -> Duration {
            let start = Instant::now();
            let mut left = count;
            while left > 0 {
                let batch = left.min(crate::SPAWN_BATCH);
                let handles: Vec<Handle<()>> = (0..batch).map(|_| spawn(|| {})).collect();
                for handle in handles {
                    handle.join().expect("a trivial task panicked");
                }
                left -= batch;
            }
            start.elapsed()
        }
    };
}

/// Every task an OS thread, the green sockets used as blocking sockets.
mod blocking {
    use std::sync::mpsc as chan;
    use std::thread::spawn;

    type Handle<T> = std::thread::JoinHandle<T>;

    threaded_fixtures!();
}

/// Every task a may coroutine (one may worker).
mod on_may {
    use zmqloop::green::may::sync::mpsc as chan;
    use zmqloop::green::spawn;

    type Handle<T> = zmqloop::green::may::coroutine::JoinHandle<T>;

    threaded_fixtures!();
}

/// Every task a hub task on the calling thread.
mod on_hub {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use zmqloop::green::hub::Hub;

    use crate::{context, zmq, WARM_UP};

    fn hub() -> Hub {
        Hub::new().expect("create a hub")
    }

    /// A REP echo task parked on the hub between runs; each run is a client task driven by
    /// `block_on`.
    pub struct ReqRep {
        hub: Hub,
        req: Rc<zmq::Socket>,
        context: zmq::Context,
    }

    impl ReqRep {
        /// Starts the echo task and makes [`WARM_UP`] round trips.
        pub fn new() -> ReqRep {
            let context = context();
            let (req, rep) = crate::req_rep_pair(&context);
            let hub = hub();
            hub.spawn(move || crate::echo_rep(rep));
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
            self.hub.block_on(move || crate::round_trips(&req, count))
        }

        /// Stops the echo task, then terminates the context.
        pub fn finish(self) {
            let ReqRep { hub, req, context } = self;
            let stopper = req.clone();
            hub.block_on(move || crate::stop_rep(&stopper));
            hub.run();
            assert_eq!(hub.tasks(), 0, "the REP echo task did not finish");
            drop(hub);
            drop(req);
            drop(context);
        }
    }

    /// One ROUTER echo task parked on the hub between runs and many connected DEALER sockets;
    /// each run spawns one client task per DEALER.
    pub struct DealerRouter {
        hub: Hub,
        dealers: Vec<Rc<zmq::Socket>>,
        context: zmq::Context,
    }

    impl DealerRouter {
        /// Starts the ROUTER echo task, connects `clients` DEALERs and has every client make
        /// one request.
        pub fn new(clients: usize) -> DealerRouter {
            let context = context();
            let router = crate::router(&context);
            let hub = hub();
            hub.spawn(move || crate::echo_router(router));
            let dealers = (0..clients)
                .map(|_| Rc::new(crate::dealer(&context)))
                .collect();
            let fixture = DealerRouter {
                hub,
                dealers,
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
                    self.hub.spawn(move || crate::requests(&dealer, requests))
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
                context,
            } = self;
            let stopper_context = context.clone();
            hub.block_on(move || crate::stop_router(&stopper_context));
            hub.run();
            assert_eq!(hub.tasks(), 0, "the ROUTER echo task did not finish");
            drop(hub);
            drop(dealers);
            drop(context);
        }
    }

    /// Spawns `count` trivial tasks, [`crate::SPAWN_BATCH`] at a time, each batch run to its
    /// end by `Hub::run`; returns the total time.
    pub fn spawn_join(hub: &Hub, count: u64) -> Duration {
        let start = Instant::now();
        let mut left = count;
        while left > 0 {
            let batch = left.min(crate::SPAWN_BATCH);
            for _ in 0..batch {
                hub.spawn(|| {});
            }
            hub.run();
            left -= batch;
        }
        start.elapsed()
    }

    /// A hub for [`spawn_join`].
    pub fn spawn_hub() -> Hub {
        hub()
    }
}

/// REQ/REP latency over inproc: one round trip per iteration.
fn req_rep(c: &mut Criterion) {
    let mut group = c.benchmark_group("req_rep_inproc_16B");

    let fixture = blocking::ReqRep::new();
    group.bench_function("blocking", |b| b.iter_custom(|iters| fixture.run(iters)));
    fixture.finish();

    let fixture = on_may::ReqRep::new();
    group.bench_function("may", |b| b.iter_custom(|iters| fixture.run(iters)));
    fixture.finish();

    let fixture = on_hub::ReqRep::new();
    group.bench_function("hub", |b| b.iter_custom(|iters| fixture.run(iters)));
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

    let fixture = on_may::DealerRouter::new(CLIENTS);
    group.bench_function("may", |b| {
        b.iter_custom(|iters| fixture.run(iters * REQUESTS_PER_CLIENT))
    });
    fixture.finish();

    let fixture = on_hub::DealerRouter::new(CLIENTS);
    group.bench_function("hub", |b| {
        b.iter_custom(|iters| fixture.run(iters * REQUESTS_PER_CLIENT))
    });
    fixture.finish();

    group.finish();
}

/// Spawn + join of a trivial task, in batches of `SPAWN_BATCH`: one task per iteration.
fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("spawn_join_batches_of_{SPAWN_BATCH}"));
    group.throughput(Throughput::Elements(1));

    group.bench_function("blocking", |b| b.iter_custom(blocking::spawn_join));
    group.bench_function("may", |b| b.iter_custom(on_may::spawn_join));
    let hub = on_hub::spawn_hub();
    group.bench_function("hub", |b| {
        b.iter_custom(|iters| on_hub::spawn_join(&hub, iters))
    });
    drop(hub);

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = req_rep, dealer_router, spawn_join
}

fn main() {
    // Before anything else, and before the first coroutine exists: one may worker, so that may
    // and the hub each schedule their tasks on one thread.
    zmqloop::green::may::config()
        .set_workers(1)
        .set_worker_pin(false);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
