//! Criterion benchmarks: zmqloop's green sockets on may coroutines against the plain blocking
//! `zmq` crate on OS threads, side by side in one process run.
//!
//! Every scenario is one criterion group with two functions:
//! - `blocking`: plain `zmq`, every task on its own OS thread, blocking calls;
//! - `green`: `zmqloop::green` sockets, every task a may coroutine (`zmqloop::green::spawn`) on
//!   two may workers (one per core of the 2-core reference machine).
//!
//! Both sides run the very same scenario code: the `scenarios!` macro expands it once in module
//! `blocking` and once in module `green`, where `zmq`, `spawn` and `chan` (the channel feeding the
//! tasks) name each side's own. A scenario's sockets and tasks are set up once per benchmark
//! (outside the timed region) and then fed through channels, so an iteration times messaging only:
//!
//! - PUSH/PULL throughput, 16 B and 1 KiB, inproc and tcp (127.0.0.1, ephemeral port): one
//!   long-lived producer and one consumer. An iteration is a batch of messages; the clock runs
//!   from the producer's first send to the consumer's last receive (both instants taken by the
//!   tasks themselves). Reported in messages per second.
//! - REQ/REP round trip, tcp, 16 B: a REQ client task and a REP echo task; an iteration is one
//!   round trip, timed by the client. Reported as time per round trip.
//! - DEALER/ROUTER echo, inproc: one ROUTER echo task and 1000 DEALER clients, each with its own
//!   socket and task, all connected (one warm-up request each) before the clock starts. An
//!   iteration is 10 requests per client, each waiting for its reply; the clock runs from the
//!   start signal to the last client's last reply. Reported in requests per second. With the
//!   ROUTER that is 1001 sockets: `zmq::Context` cannot raise libzmq's 1023-socket cap, so the
//!   plain side stays under it; the green context raises it to 4096 anyway.
//!
//! Run with `cargo bench --bench green_vs_blocking` (about two minutes on 2 cores; `-- --quick`
//! for a rough pass). Samples are few and short (10 samples, 1 s warm-up, 3 s measurement) to keep the
//! whole run within minutes; compare the two functions of a group, not runs across machines.

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use std::time::Duration;

/// Messages per iteration of the 16 B throughput benchmarks.
const SMALL_BATCH: u64 = 100_000;
/// Messages per iteration of the 1 KiB throughput benchmarks.
const LARGE_BATCH: u64 = 20_000;
/// Payload size of the REQ/REP and DEALER/ROUTER requests.
const REQUEST_SIZE: usize = 16;
/// DEALER clients of the echo benchmark (plus the ROUTER: 1001 sockets, under libzmq's default
/// cap of 1023, which a plain `zmq::Context` cannot raise).
const CLIENTS: usize = 1000;
/// Requests each DEALER client makes per iteration.
const REQUESTS_PER_CLIENT: u64 = 10;
/// Round trips (or messages) exchanged at setup, so connections are up before any timing.
const WARM_UP: u64 = 1000;

/// Where a benchmark's sockets meet.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Inproc,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Inproc => "inproc",
            Transport::Tcp => "tcp",
        }
    }
}

/// The scenario fixtures, written once against whatever `zmq`, `spawn`, `chan` (a module with an
/// mpsc `channel`), `Handle` (a join handle) and `context()` name in the invoking module.
macro_rules! scenarios {
    () => {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};

        use crate::{Transport, REQUEST_SIZE, WARM_UP};

        /// Binds `socket` on a fresh endpoint of `transport` (a tcp port picked by the system)
        /// and returns the endpoint to connect to. Every fixture has its own context, so one
        /// inproc name suffices.
        fn bind(socket: &zmq::Socket, transport: Transport) -> String {
            match transport {
                Transport::Inproc => {
                    socket.bind("inproc://bench").expect("bind inproc");
                    "inproc://bench".to_owned()
                }
                Transport::Tcp => {
                    socket.bind("tcp://127.0.0.1:*").expect("bind tcp");
                    socket
                        .get_last_endpoint()
                        .expect("read ZMQ_LAST_ENDPOINT")
                        .expect("the endpoint is UTF-8")
                }
            }
        }

        /// A PUSH/PULL pair with a long-lived producer and consumer, each told by channel how
        /// many messages to move.
        pub struct PushPull {
            produce: chan::Sender<u64>,
            consume: chan::Sender<u64>,
            first_send: mpsc::Receiver<Instant>,
            last_receive: mpsc::Receiver<Instant>,
            tasks: Vec<Handle>,
            context: zmq::Context,
        }

        impl PushPull {
            /// Connects the pair over `transport`, starts both tasks and exchanges [`WARM_UP`]
            /// messages of `size` bytes.
            pub fn new(transport: Transport, size: usize) -> PushPull {
                let context = context();
                let pull = context.socket(zmq::PULL).expect("create PULL");
                let endpoint = bind(&pull, transport);
                let push = context.socket(zmq::PUSH).expect("create PUSH");
                push.connect(&endpoint).expect("connect PUSH");

                let (produce, produce_rx) = chan::channel::<u64>();
                let (first_send_tx, first_send) = mpsc::channel();
                let producer = spawn(move || {
                    let payload = vec![0u8; size];
                    while let Ok(count) = produce_rx.recv() {
                        let start = Instant::now();
                        for _ in 0..count {
                            push.send(&payload[..], 0).expect("PUSH send");
                        }
                        first_send_tx.send(start).expect("report the first send");
                    }
                });

                let (consume, consume_rx) = chan::channel::<u64>();
                let (last_receive_tx, last_receive) = mpsc::channel();
                let consumer = spawn(move || {
                    let mut msg = zmq::Message::new();
                    while let Ok(count) = consume_rx.recv() {
                        for _ in 0..count {
                            pull.recv(&mut msg, 0).expect("PULL recv");
                        }
                        last_receive_tx
                            .send(Instant::now())
                            .expect("report the last receive");
                        assert_eq!(msg.len(), size, "PULL received a wrong-sized message");
                    }
                });

                let fixture = PushPull {
                    produce,
                    consume,
                    first_send,
                    last_receive,
                    tasks: vec![producer, consumer],
                    context,
                };
                fixture.run(WARM_UP);
                fixture
            }

            /// Moves `count` messages; returns the time from the first send to the last
            /// receive.
            pub fn run(&self, count: u64) -> Duration {
                self.consume.send(count).expect("command the consumer");
                self.produce.send(count).expect("command the producer");
                let start = self.first_send.recv().expect("the producer stopped");
                let end = self.last_receive.recv().expect("the consumer stopped");
                end.duration_since(start)
            }

            /// Stops and joins both tasks, then terminates the context.
            pub fn finish(self) {
                let PushPull {
                    produce,
                    consume,
                    tasks,
                    context,
                    ..
                } = self;
                drop((produce, consume));
                for task in tasks {
                    task.join().expect("a PUSH/PULL task panicked");
                }
                drop(context);
            }
        }

        /// A REQ client task and a REP echo task over tcp; the client is told by channel how
        /// many round trips to time.
        pub struct ReqRep {
            command: chan::Sender<u64>,
            elapsed: mpsc::Receiver<Duration>,
            tasks: Vec<Handle>,
            context: zmq::Context,
        }

        impl ReqRep {
            /// Connects the pair over tcp, starts both tasks and makes [`WARM_UP`] round trips.
            pub fn new() -> ReqRep {
                let context = context();
                let rep = context.socket(zmq::REP).expect("create REP");
                let endpoint = bind(&rep, Transport::Tcp);
                let req = context.socket(zmq::REQ).expect("create REQ");
                req.connect(&endpoint).expect("connect REQ");

                // Echoes every request; an empty one is the last.
                let server = spawn(move || loop {
                    let request = rep.recv_msg(0).expect("REP recv");
                    let last = request.is_empty();
                    rep.send(request, 0).expect("REP send");
                    if last {
                        break;
                    }
                });

                let (command, command_rx) = chan::channel::<u64>();
                let (elapsed_tx, elapsed) = mpsc::channel();
                let client = spawn(move || {
                    let request = [0u8; REQUEST_SIZE];
                    let mut reply = zmq::Message::new();
                    while let Ok(count) = command_rx.recv() {
                        let start = Instant::now();
                        for _ in 0..count {
                            req.send(&request[..], 0).expect("REQ send");
                            req.recv(&mut reply, 0).expect("REQ recv");
                        }
                        elapsed_tx
                            .send(start.elapsed())
                            .expect("report the round trips");
                    }
                    req.send(zmq::Message::new(), 0)
                        .expect("REQ send the last request");
                    req.recv(&mut reply, 0).expect("REQ recv the last reply");
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

        /// One ROUTER echo task and many DEALER clients over inproc, each client with its own
        /// socket and task, told by channel how many requests to make.
        pub struct DealerRouter {
            clients: Vec<chan::Sender<u64>>,
            done: mpsc::Receiver<Instant>,
            client_tasks: Vec<Handle>,
            router_task: Handle,
            context: zmq::Context,
        }

        impl DealerRouter {
            /// Starts the ROUTER echo task and `clients` DEALER clients, and has every client
            /// make one request so that all are connected.
            pub fn new(clients: usize) -> DealerRouter {
                let context = context();
                let router = context.socket(zmq::ROUTER).expect("create ROUTER");
                let endpoint = bind(&router, Transport::Inproc);
                // Echoes [identity, body] back; an empty body means stop.
                let router_task = spawn(move || loop {
                    let identity = router.recv_msg(0).expect("ROUTER recv identity");
                    let body = router.recv_msg(0).expect("ROUTER recv body");
                    if body.is_empty() {
                        break;
                    }
                    router
                        .send(identity, zmq::SNDMORE)
                        .expect("ROUTER send identity");
                    router.send(body, 0).expect("ROUTER send body");
                });

                let (done_tx, done) = mpsc::channel();
                let mut senders = Vec::with_capacity(clients);
                let mut client_tasks = Vec::with_capacity(clients);
                for _ in 0..clients {
                    let dealer = context.socket(zmq::DEALER).expect("create DEALER");
                    dealer.connect(&endpoint).expect("connect DEALER");
                    let (command, command_rx) = chan::channel::<u64>();
                    let done_tx = done_tx.clone();
                    client_tasks.push(spawn(move || {
                        let request = [0u8; REQUEST_SIZE];
                        let mut reply = zmq::Message::new();
                        while let Ok(count) = command_rx.recv() {
                            for _ in 0..count {
                                dealer.send(&request[..], 0).expect("DEALER send");
                                dealer.recv(&mut reply, 0).expect("DEALER recv");
                            }
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

            /// Has every client make `requests` requests, each waiting for its reply; returns the
            /// time from the start signal to the last reply.
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

            /// Stops and joins the clients, stops the ROUTER with an empty request from a
            /// socket of its own, then terminates the context.
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
                let stopper = context
                    .socket(zmq::DEALER)
                    .expect("create the stopper DEALER");
                stopper
                    .connect("inproc://bench")
                    .expect("connect the stopper");
                stopper
                    .send(zmq::Message::new(), 0)
                    .expect("send the stop request");
                router_task.join().expect("the ROUTER task panicked");
                drop(stopper);
                drop(context);
            }
        }
    };
}

/// The plain `zmq` crate, one OS thread per task.
mod blocking {
    use std::sync::mpsc as chan;
    use std::thread::spawn;

    type Handle = std::thread::JoinHandle<()>;

    fn context() -> zmq::Context {
        zmq::Context::new()
    }

    scenarios!();
}

/// zmqloop's green sockets, one may coroutine per task.
mod green {
    use zmqloop::green as zmq;
    use zmqloop::green::may::sync::mpsc as chan;
    use zmqloop::green::spawn;

    type Handle = zmqloop::green::may::coroutine::JoinHandle<()>;

    fn context() -> zmq::Context {
        let context = zmq::Context::new();
        context
            .set_max_sockets(4096)
            .expect("raise ZMQ_MAX_SOCKETS");
        context
    }

    scenarios!();
}

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

    let fixture = blocking::ReqRep::new();
    group.bench_function("blocking", |b| b.iter_custom(|iters| fixture.run(iters)));
    fixture.finish();

    let fixture = green::ReqRep::new();
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
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = push_pull_16b, push_pull_1kib, req_rep, dealer_router
}

fn main() {
    // Before any coroutine exists: one may worker per core of the 2-core reference machine, left
    // unpinned (see "Configuring may" in `zmqloop::green::spawn`).
    zmqloop::green::may::config()
        .set_workers(2)
        .set_worker_pin(false);
    benches();
    Criterion::default().configure_from_args().final_summary();
}
