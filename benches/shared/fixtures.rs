//! The scenario fixtures of the side-by-side comparisons of zmqloop's green sockets with the plain
//! blocking `zmq` crate, written once for both sides. Included as module `fixtures` by
//! `benches/green_vs_blocking.rs`, `benches/proxy.rs` and `benches/hub.rs`
//! (`#[path = "shared/fixtures.rs"]`) and by `examples/compare.rs`
//! (`#[path = "../benches/shared/fixtures.rs"]`); it sits in a subdirectory so that cargo does not
//! take it for a benchmark of its own.
//!
//! The `fixtures!` macro writes every fixture against whatever `zmq`, `spawn`, `chan` (a module
//! with an mpsc `channel`), `Handle<T>` (a join handle) and `context()` name in the invoking
//! module, and is expanded twice:
//! - [`blocking`]: the plain `zmq` crate, every task on its own OS thread (`std::thread::spawn`),
//!   commands over `std::sync::mpsc`;
//! - [`green`]: `zmqloop::green` sockets, every task a may coroutine (`zmqloop::green::spawn`),
//!   commands over may's mpsc; its context raises `ZMQ_MAX_SOCKETS` to 4096.
//!
//! Every fixture has one life cycle: `new(..)` creates its own context, sockets and long-lived
//! tasks and warms them up so that every connection is up; `run(count)` can then be called any
//! number of times, the tasks fed through channels; `finish()` stops and joins every task and
//! terminates the context. Setup, warm-up and teardown are never timed. The measurement rules,
//! what the `Duration` returned by `run` measures (tcp is 127.0.0.1 with an ephemeral port):
//! - [`blocking::PushPull::run`]: `count` messages, from the producer's first send (read by the
//!   producer) to the consumer's last receive (read by the consumer); warm-up: [`WARM_UP`]
//!   messages.
//! - [`blocking::ReqRep::run`]: the total time of `count` round trips over the transport given to
//!   `new`, read by the REQ client around them; warm-up: [`WARM_UP`] round trips.
//! - [`blocking::DealerRouter::run`]: every DEALER client makes `count` requests over inproc,
//!   each waiting for its reply; from the start signal (read by the caller just before it
//!   commands the clients) to the last client's last reply (read by that client); warm-up: one
//!   request per client.
//! - [`blocking::Proxy::run`]: the same through a `zmq::proxy`, every client keeping up to
//!   [`WINDOW`] requests in flight; warm-up: one request per client.
//!
//! The same holds for the `green` fixtures.
//!
//! The fixtures are built from socket-level pieces that are public too (`context`, `bind`,
//! `req_rep_pair`, `echo_rep`, `round_trips`, `stop_rep`, `router`, `dealer`, `echo_router`,
//! `requests_one_by_one`, `stop_router`), so that a scheduler whose tasks cannot be moved across
//! threads, and so cannot run these fixtures, can still run the very same socket code: the hub
//! tasks of `benches/hub.rs` use those of [`green`].

// Each including binary uses only some of the fixtures; the rest would warn as dead code.
#![allow(dead_code)]

/// Payload size of the REQ/REP, DEALER/ROUTER and proxy requests.
pub const REQUEST_SIZE: usize = 16;
/// Round trips (or messages) exchanged at setup of the PUSH/PULL and REQ/REP fixtures, so that
/// connections are up before any timing.
pub const WARM_UP: u64 = 1000;
/// Requests a proxy client keeps in flight (under the default high-water mark of 1000, so the
/// ROUTER never drops a reply).
pub const WINDOW: u64 = 50;

/// The criterion settings of the side-by-side benches: few and short samples (10 samples, 1 s
/// warm-up, 3 s measurement) to keep each run within minutes. Compare the functions of one
/// group, not runs across machines.
pub fn short_criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
}

/// A bench binary's `main`: configures may with `workers` unpinned workers (before any
/// coroutine exists; see "Configuring may" in `zmqloop::green::spawn`), runs the criterion
/// group `benches`, then prints criterion's summary.
pub fn bench_main(workers: usize, benches: fn()) {
    zmqloop::green::may::config()
        .set_workers(workers)
        .set_worker_pin(false);
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}

/// Where a fixture's sockets meet.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Inproc,
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Inproc => "inproc",
            Transport::Tcp => "tcp",
        }
    }
}

/// The fixtures, written once against whatever `zmq`, `spawn`, `chan`, `Handle<T>` and
/// `context()` name in the invoking module.
macro_rules! fixtures {
    () => {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};

        use super::{Transport, REQUEST_SIZE, WARM_UP, WINDOW};

        /// Binds `socket` on a fresh endpoint of `transport` (inproc: `inproc://{name}`; tcp: a
        /// port picked by the system) and returns the endpoint to connect to. Every fixture has
        /// its own context, so inproc names need only be unique within a fixture.
        pub fn bind(socket: &zmq::Socket, transport: Transport, name: &str) -> String {
            match transport {
                Transport::Inproc => {
                    let endpoint = format!("inproc://{name}");
                    socket.bind(&endpoint).expect("bind inproc");
                    endpoint
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
            tasks: Vec<Handle<()>>,
            context: zmq::Context,
        }

        impl PushPull {
            /// Connects the pair over `transport`, starts both tasks and exchanges [`WARM_UP`]
            /// messages of `size` bytes.
            pub fn new(transport: Transport, size: usize) -> PushPull {
                let context = context();
                let pull = context.socket(zmq::PULL).expect("create PULL");
                let endpoint = bind(&pull, transport, "push-pull");
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

        /// A connected (REQ, REP) pair on `context` over `transport`.
        pub fn req_rep_pair(
            context: &zmq::Context,
            transport: Transport,
        ) -> (zmq::Socket, zmq::Socket) {
            let rep = context.socket(zmq::REP).expect("create REP");
            let endpoint = bind(&rep, transport, "req-rep");
            let req = context.socket(zmq::REQ).expect("create REQ");
            req.connect(&endpoint).expect("connect REQ");
            (req, rep)
        }

        /// Echoes every request on `rep` back; an empty one is echoed and is the last.
        pub fn echo_rep(rep: zmq::Socket) {
            loop {
                let request = rep.recv_msg(0).expect("REP recv");
                let last = request.is_empty();
                rep.send(request, 0).expect("REP send");
                if last {
                    break;
                }
            }
        }

        /// Makes `count` round trips of [`REQUEST_SIZE`] bytes on `req`; returns their total
        /// time, read around them.
        pub fn round_trips(req: &zmq::Socket, count: u64) -> Duration {
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
        pub fn stop_rep(req: &zmq::Socket) {
            req.send(zmq::Message::new(), 0)
                .expect("REQ send the last request");
            req.recv_msg(0).expect("REQ recv the last reply");
        }

        /// A REQ client task and a REP echo task; the client is told by channel how many round
        /// trips to time.
        pub struct ReqRep {
            command: chan::Sender<u64>,
            elapsed: mpsc::Receiver<Duration>,
            tasks: Vec<Handle<()>>,
            context: zmq::Context,
        }

        impl ReqRep {
            /// Connects the pair over `transport`, starts both tasks and makes [`WARM_UP`] round
            /// trips.
            pub fn new(transport: Transport) -> ReqRep {
                let context = context();
                let (req, rep) = req_rep_pair(&context, transport);
                let server = spawn(move || echo_rep(rep));

                let (command, command_rx) = chan::channel::<u64>();
                let (elapsed_tx, elapsed) = mpsc::channel();
                let client = spawn(move || {
                    while let Ok(count) = command_rx.recv() {
                        let time = round_trips(&req, count);
                        elapsed_tx.send(time).expect("report the round trips");
                    }
                    stop_rep(&req);
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

        /// DEALER clients connected to one endpoint, each with its own socket and task, told
        /// by channel how many requests to make; each reports the instant of its last reply.
        struct Clients {
            commands: Vec<chan::Sender<u64>>,
            done: mpsc::Receiver<Instant>,
            tasks: Vec<Handle<()>>,
        }

        impl Clients {
            /// Connects `clients` clients to `endpoint` and starts their tasks; a client
            /// commanded to make `count` requests calls `requests(&dealer, count)`.
            fn start(
                context: &zmq::Context,
                endpoint: &str,
                clients: usize,
                requests: fn(&zmq::Socket, u64),
            ) -> Clients {
                let (done_tx, done) = mpsc::channel();
                let mut commands = Vec::with_capacity(clients);
                let mut tasks = Vec::with_capacity(clients);
                for _ in 0..clients {
                    let dealer = dealer(context, endpoint);
                    let (command, command_rx) = chan::channel::<u64>();
                    let done_tx = done_tx.clone();
                    tasks.push(spawn(move || {
                        while let Ok(count) = command_rx.recv() {
                            requests(&dealer, count);
                            done_tx.send(Instant::now()).expect("report the requests");
                        }
                    }));
                    commands.push(command);
                }
                Clients {
                    commands,
                    done,
                    tasks,
                }
            }

            /// Has every client make `count` requests; returns the time from the start signal
            /// to the last reply.
            fn run(&self, count: u64) -> Duration {
                let start = Instant::now();
                for client in &self.commands {
                    client.send(count).expect("command a client");
                }
                let mut end = start;
                for _ in 0..self.commands.len() {
                    end = end.max(self.done.recv().expect("a client stopped"));
                }
                end.duration_since(start)
            }

            /// Stops and joins every client.
            fn finish(self) {
                let Clients {
                    commands, tasks, ..
                } = self;
                drop(commands);
                for task in tasks {
                    task.join().expect("a DEALER client panicked");
                }
            }
        }

        /// A DEALER connected to `endpoint`.
        pub fn dealer(context: &zmq::Context, endpoint: &str) -> zmq::Socket {
            let dealer = context.socket(zmq::DEALER).expect("create DEALER");
            dealer.connect(endpoint).expect("connect DEALER");
            dealer
        }

        /// A ROUTER bound on `transport`, and the endpoint to connect to.
        pub fn router(context: &zmq::Context, transport: Transport) -> (zmq::Socket, String) {
            let router = context.socket(zmq::ROUTER).expect("create ROUTER");
            let endpoint = bind(&router, transport, "dealer-router");
            (router, endpoint)
        }

        /// Echoes every `[identity, body]` on `router` back; an empty body means stop.
        pub fn echo_router(router: zmq::Socket) {
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

        /// Stops [`echo_router`] at `endpoint` with an empty request from a DEALER of its own;
        /// returns that DEALER, to be dropped once the ROUTER task has ended.
        pub fn stop_router(context: &zmq::Context, endpoint: &str) -> zmq::Socket {
            let stopper = dealer(context, endpoint);
            stopper
                .send(zmq::Message::new(), 0)
                .expect("send the stop request");
            stopper
        }

        /// Sends `count` requests on `dealer`, each after the reply to the one before.
        pub fn requests_one_by_one(dealer: &zmq::Socket, count: u64) {
            let request = [0u8; REQUEST_SIZE];
            let mut reply = zmq::Message::new();
            for _ in 0..count {
                dealer.send(&request[..], 0).expect("DEALER send");
                dealer.recv(&mut reply, 0).expect("DEALER recv");
            }
        }

        /// Sends `count` requests on `dealer`, keeping at most [`WINDOW`] in flight, and
        /// receives every reply.
        fn requests_windowed(dealer: &zmq::Socket, count: u64) {
            let request = [0u8; REQUEST_SIZE];
            let mut reply = zmq::Message::new();
            let mut sent = 0;
            while sent < count.min(WINDOW) {
                dealer.send(&request[..], 0).expect("DEALER send");
                sent += 1;
            }
            for _ in 0..count {
                dealer.recv(&mut reply, 0).expect("DEALER recv");
                assert_eq!(reply.len(), REQUEST_SIZE, "a wrong-sized reply");
                if sent < count {
                    dealer.send(&request[..], 0).expect("DEALER send");
                    sent += 1;
                }
            }
        }

        /// One ROUTER echo task and many DEALER clients over inproc, each client with its own
        /// socket and task, told by channel how many requests to make.
        pub struct DealerRouter {
            clients: Clients,
            router_task: Handle<()>,
            endpoint: String,
            context: zmq::Context,
        }

        impl DealerRouter {
            /// Starts the ROUTER echo task and `clients` DEALER clients, and has every client
            /// make one request so that all are connected. With the ROUTER that is
            /// `clients + 1` sockets, and `finish` opens one more to stop the ROUTER: a plain
            /// `zmq::Context` cannot raise libzmq's default cap of 1023, so keep the blocking
            /// side's `clients + 2` under it (the green context raises it to 4096).
            pub fn new(clients: usize) -> DealerRouter {
                let context = context();
                let (router, endpoint) = router(&context, Transport::Inproc);
                let router_task = spawn(move || echo_router(router));

                let fixture = DealerRouter {
                    clients: Clients::start(&context, &endpoint, clients, requests_one_by_one),
                    router_task,
                    endpoint,
                    context,
                };
                fixture.run(1);
                fixture
            }

            /// Has every client make `requests` requests, each waiting for its reply; returns the
            /// time from the start signal to the last reply.
            pub fn run(&self, requests: u64) -> Duration {
                self.clients.run(requests)
            }

            /// Stops and joins the clients, stops the ROUTER with an empty request from a
            /// socket of its own, then terminates the context.
            pub fn finish(self) {
                let DealerRouter {
                    clients,
                    router_task,
                    endpoint,
                    context,
                } = self;
                clients.finish();
                let stopper = stop_router(&context, &endpoint);
                router_task.join().expect("the ROUTER task panicked");
                drop(stopper);
                drop(context);
            }
        }

        /// DEALER clients -> ROUTER frontend | `zmq::proxy` | DEALER backend -> DEALER echo
        /// workers, all running; each client is told by channel how many requests to make.
        /// The proxy is a task like any other (blocking: libzmq's `zmq_proxy` on an OS thread;
        /// green: the green `zmq::proxy` in a coroutine).
        pub struct Proxy {
            clients: Clients,
            worker_tasks: Vec<Handle<()>>,
            proxy_task: Handle<zmq::Result<()>>,
            context: zmq::Context,
        }

        impl Proxy {
            /// Starts the proxy, `workers` echo workers and `clients` clients over
            /// `transport`, and has every client make one request.
            pub fn new(transport: Transport, clients: usize, workers: usize) -> Proxy {
                let context = context();
                let frontend = context.socket(zmq::ROUTER).expect("create ROUTER");
                let frontend_endpoint = bind(&frontend, transport, "proxy-frontend");
                let backend = context.socket(zmq::DEALER).expect("create DEALER");
                let backend_endpoint = bind(&backend, transport, "proxy-backend");
                // Runs until the context is terminated; the sockets close when it returns.
                let proxy_task = spawn(move || zmq::proxy(&frontend, &backend));

                let worker_tasks = (0..workers)
                    .map(|_| {
                        let worker = context.socket(zmq::DEALER).expect("create worker");
                        worker.connect(&backend_endpoint).expect("connect worker");
                        spawn(move || loop {
                            let frames = match worker.recv_multipart(0) {
                                Err(zmq::Error::ETERM) => break,
                                other => other.expect("worker recv"),
                            };
                            match worker.send_multipart(frames, 0) {
                                Err(zmq::Error::ETERM) => break,
                                other => other.expect("worker send"),
                            }
                        })
                    })
                    .collect();

                let fixture = Proxy {
                    clients: Clients::start(
                        &context,
                        &frontend_endpoint,
                        clients,
                        requests_windowed,
                    ),
                    worker_tasks,
                    proxy_task,
                    context,
                };
                fixture.run(1);
                fixture
            }

            /// Has every client make `count` requests, up to [`WINDOW`] in flight; returns the
            /// time from the start signal to the last reply.
            pub fn run(&self, count: u64) -> Duration {
                self.clients.run(count)
            }

            /// Stops and joins the clients, then terminates the context, which stops the
            /// workers and the proxy (ETERM).
            pub fn finish(self) {
                let Proxy {
                    clients,
                    worker_tasks,
                    proxy_task,
                    mut context,
                } = self;
                clients.finish();
                context.destroy().expect("terminate the context");
                for task in worker_tasks {
                    task.join().expect("a worker panicked");
                }
                match proxy_task.join().expect("the proxy panicked") {
                    Err(zmq::Error::ETERM) => {}
                    other => panic!("the proxy ended with {other:?} instead of ETERM"),
                }
            }
        }
    };
}

/// The plain `zmq` crate, one OS thread per task.
pub mod blocking {
    use std::sync::mpsc as chan;
    use std::thread::spawn;

    type Handle<T> = std::thread::JoinHandle<T>;

    /// A plain context (libzmq's default cap of 1023 sockets).
    pub fn context() -> zmq::Context {
        zmq::Context::new()
    }

    fixtures!();
}

/// zmqloop's green sockets, one may coroutine per task.
pub mod green {
    use zmqloop::green as zmq;
    use zmqloop::green::may::sync::mpsc as chan;
    use zmqloop::green::spawn;

    type Handle<T> = zmqloop::green::may::coroutine::JoinHandle<T>;

    /// A green context that may hold a thousand DEALER clients and then some.
    pub fn context() -> zmq::Context {
        let context = zmq::Context::new();
        context
            .set_max_sockets(4096)
            .expect("raise ZMQ_MAX_SOCKETS");
        context
    }

    fixtures!();
}
