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
//! Both sides run the very same fixture code: the `fixture!` macro expands it once in module
//! `plain` (the `zmq` crate, every task on its own OS thread, the proxy included) and once in
//! module `green` (`zmqloop::green`, every task a coroutine through `zmqloop::green::spawn` on
//! two may workers, the proxy included). Sockets and tasks are set up once per benchmark, and
//! every client makes one request before any timing. An iteration is [`REQUESTS_PER_CLIENT`]
//! requests per client; the clock runs from the start signal to the last client's last reply.
//! Throughput is in messages through the proxy (two per request). Both proxies are stopped by
//! terminating their context (the plain one returns `ETERM`, the green one too).
//!
//! Run with `cargo bench --bench proxy` (about a minute on 2 cores; `-- --quick` for a rough
//! pass). Few and short samples (10 samples, 1 s warm-up, 3 s measurement): compare the two
//! functions of a group, not runs across machines.

use criterion::{criterion_group, Criterion, SamplingMode, Throughput};
use std::time::Duration;

/// DEALER clients.
const CLIENTS: usize = 16;
/// DEALER echo workers behind the proxy.
const WORKERS: usize = 4;
/// Requests a client keeps in flight (under the default high-water mark of 1000).
const WINDOW: u64 = 50;
/// Requests each client makes per iteration.
const REQUESTS_PER_CLIENT: u64 = 500;
/// Payload size of a request.
const REQUEST_SIZE: usize = 16;

/// Where the proxy's sockets meet their peers.
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

/// The fixture, written once against whatever `zmq`, `spawn`, `chan` (a module with an mpsc
/// `channel`), `Handle<T>` (a join handle) and `context()` name in the invoking module.
macro_rules! fixture {
    () => {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};

        use crate::{Transport, REQUEST_SIZE, WINDOW};

        /// Binds `socket` on a fresh endpoint of `transport` (tcp: a port picked by the system)
        /// and returns the endpoint to connect to.
        fn bind(socket: &zmq::Socket, transport: Transport, name: &str) -> String {
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

        /// Sends `count` requests on `dealer`, keeping at most [`WINDOW`] in flight, and
        /// receives every reply.
        fn requests(dealer: &zmq::Socket, count: u64) {
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

        /// Clients -> ROUTER | proxy | DEALER -> echo workers, all running; each client is told
        /// by channel how many requests to make.
        pub struct ProxyFixture {
            clients: Vec<chan::Sender<u64>>,
            done: mpsc::Receiver<Instant>,
            client_tasks: Vec<Handle<()>>,
            worker_tasks: Vec<Handle<()>>,
            proxy_task: Handle<zmq::Result<()>>,
            context: zmq::Context,
        }

        impl ProxyFixture {
            /// Starts the proxy, `workers` echo workers and `clients` clients over
            /// `transport`, and has every client make one request.
            pub fn new(transport: Transport, clients: usize, workers: usize) -> ProxyFixture {
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

                let (done_tx, done) = mpsc::channel();
                let mut senders = Vec::with_capacity(clients);
                let mut client_tasks = Vec::with_capacity(clients);
                for _ in 0..clients {
                    let dealer = context.socket(zmq::DEALER).expect("create client");
                    dealer.connect(&frontend_endpoint).expect("connect client");
                    let (command, command_rx) = chan::channel::<u64>();
                    let done_tx = done_tx.clone();
                    client_tasks.push(spawn(move || {
                        while let Ok(count) = command_rx.recv() {
                            requests(&dealer, count);
                            done_tx.send(Instant::now()).expect("report the requests");
                        }
                    }));
                    senders.push(command);
                }

                let fixture = ProxyFixture {
                    clients: senders,
                    done,
                    client_tasks,
                    worker_tasks,
                    proxy_task,
                    context,
                };
                fixture.run(1);
                fixture
            }

            /// Has every client make `count` requests; returns the time from the start signal
            /// to the last reply.
            pub fn run(&self, count: u64) -> Duration {
                let start = Instant::now();
                for client in &self.clients {
                    client.send(count).expect("command a client");
                }
                let mut end = start;
                for _ in 0..self.clients.len() {
                    end = end.max(self.done.recv().expect("a client stopped"));
                }
                end.duration_since(start)
            }

            /// Stops and joins the clients, then terminates the context, which stops the
            /// workers and the proxy (ETERM).
            pub fn finish(self) {
                let ProxyFixture {
                    clients,
                    client_tasks,
                    worker_tasks,
                    proxy_task,
                    mut context,
                    ..
                } = self;
                drop(clients);
                for task in client_tasks {
                    task.join().expect("a client panicked");
                }
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

/// The `zmq` crate: every task on its own OS thread, `zmq::proxy` (libzmq's) included.
mod plain {
    use std::sync::mpsc as chan;
    use std::thread::spawn;

    type Handle<T> = std::thread::JoinHandle<T>;

    fn context() -> zmq::Context {
        zmq::Context::new()
    }

    fixture!();
}

/// zmqloop's green sockets: every task a may coroutine, the green `zmq::proxy` included.
mod green {
    use zmqloop::green as zmq;
    use zmqloop::green::may::sync::mpsc as chan;
    use zmqloop::green::spawn;

    type Handle<T> = zmqloop::green::may::coroutine::JoinHandle<T>;

    fn context() -> zmq::Context {
        zmq::Context::new()
    }

    fixture!();
}

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

    let fixture = plain::ProxyFixture::new(transport, CLIENTS, WORKERS);
    group.bench_function("zmq_proxy_os_thread", |b| {
        b.iter_custom(|iters| fixture.run(iters * REQUESTS_PER_CLIENT))
    });
    fixture.finish();

    let fixture = green::ProxyFixture::new(transport, CLIENTS, WORKERS);
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
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = proxy_inproc, proxy_tcp
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
