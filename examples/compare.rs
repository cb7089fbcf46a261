//! Compares zmqloop's green sockets on may coroutines with the plain blocking `zmq` crate on OS
//! threads, scenario by scenario in one process, and prints a markdown table.
//!
//! ```text
//! cargo run --release --example compare            # full counts, under a minute on 2 cores
//! cargo run --release --example compare -- --quick # every message count divided by 10
//! cargo run --release --example compare -- --only REQ --rounds 9   # one scenario, more rounds
//! cargo run --release --example compare -- --side green            # one side only (profiling)
//! cargo run --release --example compare -- --pin-workers            # may's default core pinning
//! ```
//!
//! Both sides run the very same scenario code: the `scenarios!` macro expands it once in module
//! `blocking` (plain `zmq`, one OS thread per task, `std::sync::mpsc`) and once in module `green`
//! (`zmqloop::green`, one coroutine per task through `zmqloop::green::spawn`, may channels, two
//! may workers). Every measurement sets its sockets and tasks up afresh, outside the clock:
//!
//! - PUSH/PULL throughput (16 B: 1M messages, 1 KiB: 100k; inproc and tcp on 127.0.0.1 with an
//!   ephemeral port): one producer and one consumer task. As in libzmq's `local_thr`, the
//!   consumer's clock runs from the first to the last received message, and the rate is the
//!   message count over that time. Reported in M msg/s.
//! - REQ/REP round trip over tcp, 16 B: a REQ client task and a REP echo task; 1000 warm-up then
//!   20,000 timed round trips, timed by the client. Reported in us per round trip.
//! - DEALER/ROUTER echo over inproc: one ROUTER echo task, 1000 DEALER clients each with its own
//!   socket and task, each making 20 requests and waiting for every reply. Every client makes
//!   one warm-up request (so all are connected) before the clock starts; the clock runs from the
//!   start signal to the last client's last reply. Reported in k req/s. With the ROUTER that is
//!   1001 sockets: `zmq::Context` cannot raise libzmq's 1023-socket cap, so the plain side stays
//!   under it; the green context raises it to 4096 anyway.
//! - DEALER/ROUTER through a proxy over tcp: 16 DEALER clients -> ROUTER frontend | `zmq::proxy`
//!   | DEALER backend -> 4 DEALER echo workers. Every client keeps up to 50 requests of 16 B in
//!   flight and makes 5000; all make one warm-up request first, and the clock runs from the start
//!   signal to the last client's last reply. The proxy is a task like any other: libzmq's
//!   `zmq_proxy` on an OS thread on the blocking side, the green `zmq::proxy` in a coroutine on
//!   the green side; terminating the context stops it (ETERM). Reported in k msg/s through the
//!   proxy (two per request).
//!
//! Each scenario runs 3 rounds, each round blocking then green, and reports the median of each
//! side. The ratio is green / blocking of the reported figure: for throughput above 1 means green
//! is faster, for latency above 1 means green is slower.

use std::time::Instant;

/// Rounds per scenario by default (each round measures blocking, then green).
const ROUNDS: usize = 3;
/// Payload size of the REQ/REP and DEALER/ROUTER requests.
const REQUEST_SIZE: usize = 16;
/// DEALER clients of the echo scenario (plus the ROUTER: 1001 sockets, under libzmq's default
/// cap of 1023, which a plain `zmq::Context` cannot raise).
const CLIENTS: usize = 1000;
/// DEALER clients of the proxy scenario.
const PROXY_CLIENTS: usize = 16;
/// DEALER echo workers behind the proxy.
const PROXY_WORKERS: usize = 4;
/// Requests a proxy client keeps in flight (under the default high-water mark of 1000).
const PROXY_WINDOW: u64 = 50;

/// Where a scenario's sockets meet.
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

/// The scenarios, written once against whatever `zmq`, `spawn`, `chan` (a module with an mpsc
/// `channel`), `Handle<T>` (a join handle) and `context()` name in the invoking module.
macro_rules! scenarios {
    () => {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};

        use crate::{Transport, PROXY_WINDOW, REQUEST_SIZE};

        /// Binds `socket` on a fresh endpoint of `transport` (a tcp port picked by the system)
        /// and returns the endpoint to connect to. Every scenario has its own context, so one
        /// inproc name suffices.
        fn bind(socket: &zmq::Socket, transport: Transport) -> String {
            match transport {
                Transport::Inproc => {
                    socket.bind("inproc://compare").expect("bind inproc");
                    "inproc://compare".to_owned()
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

        /// Waits for a task, re-raising its panic.
        fn join<T>(task: Handle<T>, what: &str) -> T {
            match task.join() {
                Ok(out) => out,
                Err(panic) => {
                    eprintln!("the {what} task panicked");
                    std::panic::resume_unwind(panic)
                }
            }
        }

        /// PUSH/PULL throughput: `count` messages of `size` bytes; returns messages per second
        /// from the consumer's first to its last received message.
        pub fn push_pull(transport: Transport, size: usize, count: u64) -> f64 {
            let context = context();
            let pull = context.socket(zmq::PULL).expect("create PULL");
            let endpoint = bind(&pull, transport);
            let push = context.socket(zmq::PUSH).expect("create PUSH");
            push.connect(&endpoint).expect("connect PUSH");

            let consumer = spawn(move || {
                let mut msg = zmq::Message::new();
                pull.recv(&mut msg, 0).expect("PULL recv");
                let start = Instant::now();
                for _ in 1..count {
                    pull.recv(&mut msg, 0).expect("PULL recv");
                }
                let elapsed = start.elapsed();
                assert_eq!(msg.len(), size, "PULL received a wrong-sized message");
                elapsed
            });
            let producer = spawn(move || {
                let payload = vec![0u8; size];
                for _ in 0..count {
                    push.send(&payload[..], 0).expect("PUSH send");
                }
                // Closed by the caller once everything is received.
                push
            });

            let push = join(producer, "producer");
            let elapsed = join(consumer, "consumer");
            drop(push);
            drop(context);
            count as f64 / elapsed.as_secs_f64()
        }

        /// REQ/REP over tcp: `warm_up` round trips, then `count` timed ones; returns the mean
        /// time of a timed round trip.
        pub fn req_rep(warm_up: u64, count: u64) -> Duration {
            let context = context();
            let rep = context.socket(zmq::REP).expect("create REP");
            let endpoint = bind(&rep, Transport::Tcp);
            let req = context.socket(zmq::REQ).expect("create REQ");
            req.connect(&endpoint).expect("connect REQ");

            let server = spawn(move || {
                for _ in 0..warm_up + count {
                    let request = rep.recv_msg(0).expect("REP recv");
                    rep.send(request, 0).expect("REP send");
                }
            });
            let client = spawn(move || {
                let request = [0u8; REQUEST_SIZE];
                let mut reply = zmq::Message::new();
                let mut round_trip = || {
                    req.send(&request[..], 0).expect("REQ send");
                    req.recv(&mut reply, 0).expect("REQ recv");
                };
                for _ in 0..warm_up {
                    round_trip();
                }
                let start = Instant::now();
                for _ in 0..count {
                    round_trip();
                }
                start.elapsed()
            });

            let elapsed = join(client, "REQ client");
            join(server, "REP server");
            drop(context);
            elapsed.div_f64(count as f64)
        }

        /// DEALER/ROUTER echo over inproc: `clients` clients make `requests` requests each;
        /// returns requests per second over the run phase.
        pub fn dealer_router(clients: usize, requests: u64) -> f64 {
            let context = context();
            let router = context.socket(zmq::ROUTER).expect("create ROUTER");
            let endpoint = bind(&router, Transport::Inproc);
            // Every client makes one warm-up request, then `requests`.
            let total = clients as u64 * (1 + requests);
            let echo = spawn(move || {
                for _ in 0..total {
                    let identity = router.recv_msg(0).expect("ROUTER recv identity");
                    let body = router.recv_msg(0).expect("ROUTER recv body");
                    router
                        .send(identity, zmq::SNDMORE)
                        .expect("ROUTER send identity");
                    router.send(body, 0).expect("ROUTER send body");
                }
            });

            let (ready_tx, ready) = mpsc::channel();
            let (done_tx, done) = mpsc::channel();
            let mut go = Vec::with_capacity(clients);
            let mut tasks = Vec::with_capacity(clients);
            for _ in 0..clients {
                let dealer = context.socket(zmq::DEALER).expect("create DEALER");
                dealer.connect(&endpoint).expect("connect DEALER");
                let (go_tx, go_rx) = chan::channel::<()>();
                let ready_tx = ready_tx.clone();
                let done_tx = done_tx.clone();
                tasks.push(spawn(move || {
                    let request = [0u8; REQUEST_SIZE];
                    let mut reply = zmq::Message::new();
                    let mut exchange = || {
                        dealer.send(&request[..], 0).expect("DEALER send");
                        dealer.recv(&mut reply, 0).expect("DEALER recv");
                    };
                    exchange();
                    ready_tx.send(()).expect("report ready");
                    go_rx.recv().expect("wait for the start signal");
                    for _ in 0..requests {
                        exchange();
                    }
                    done_tx.send(Instant::now()).expect("report done");
                }));
                go.push(go_tx);
            }

            for _ in 0..clients {
                ready.recv().expect("a client stopped before it was ready");
            }
            let start = Instant::now();
            for go_tx in &go {
                go_tx.send(()).expect("signal a client");
            }
            let mut end = start;
            for _ in 0..clients {
                end = end.max(done.recv().expect("a client stopped before it was done"));
            }
            for task in tasks {
                join(task, "DEALER client");
            }
            join(echo, "ROUTER echo");
            drop(context);
            (clients as u64 * requests) as f64 / end.duration_since(start).as_secs_f64()
        }

        /// DEALER clients -> ROUTER | `zmq::proxy` | DEALER -> DEALER echo workers over tcp:
        /// `clients` clients make `requests` requests each, up to [`PROXY_WINDOW`] in flight;
        /// returns messages through the proxy per second (two per request).
        pub fn proxy(clients: usize, workers: usize, requests: u64) -> f64 {
            let mut context = context();
            let frontend = context.socket(zmq::ROUTER).expect("create ROUTER");
            let frontend_endpoint = bind(&frontend, Transport::Tcp);
            let backend = context.socket(zmq::DEALER).expect("create DEALER");
            let backend_endpoint = bind(&backend, Transport::Tcp);
            // Runs until the context is terminated; its sockets close when it returns.
            let proxy = spawn(move || zmq::proxy(&frontend, &backend));

            let echoes: Vec<_> = (0..workers)
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

            let (ready_tx, ready) = mpsc::channel();
            let (done_tx, done) = mpsc::channel();
            let mut go = Vec::with_capacity(clients);
            let mut tasks = Vec::with_capacity(clients);
            for _ in 0..clients {
                let dealer = context.socket(zmq::DEALER).expect("create client");
                dealer.connect(&frontend_endpoint).expect("connect client");
                let (go_tx, go_rx) = chan::channel::<()>();
                let ready_tx = ready_tx.clone();
                let done_tx = done_tx.clone();
                tasks.push(spawn(move || {
                    let request = [0u8; REQUEST_SIZE];
                    let mut reply = zmq::Message::new();
                    dealer.send(&request[..], 0).expect("client send");
                    dealer.recv(&mut reply, 0).expect("client recv");
                    ready_tx.send(()).expect("report ready");
                    go_rx.recv().expect("wait for the start signal");
                    let mut sent = 0;
                    while sent < requests.min(PROXY_WINDOW) {
                        dealer.send(&request[..], 0).expect("client send");
                        sent += 1;
                    }
                    for _ in 0..requests {
                        dealer.recv(&mut reply, 0).expect("client recv");
                        if sent < requests {
                            dealer.send(&request[..], 0).expect("client send");
                            sent += 1;
                        }
                    }
                    done_tx.send(Instant::now()).expect("report done");
                }));
                go.push(go_tx);
            }

            for _ in 0..clients {
                ready.recv().expect("a client stopped before it was ready");
            }
            let start = Instant::now();
            for go_tx in &go {
                go_tx.send(()).expect("signal a client");
            }
            let mut end = start;
            for _ in 0..clients {
                end = end.max(done.recv().expect("a client stopped before it was done"));
            }
            for task in tasks {
                join(task, "client");
            }
            context.destroy().expect("terminate the context");
            for echo in echoes {
                join(echo, "echo worker");
            }
            match join(proxy, "proxy") {
                Err(zmq::Error::ETERM) => {}
                other => panic!("the proxy ended with {other:?} instead of ETERM"),
            }
            (2 * clients as u64 * requests) as f64 / end.duration_since(start).as_secs_f64()
        }
    };
}

/// The plain `zmq` crate, one OS thread per task.
mod blocking {
    use std::sync::mpsc as chan;
    use std::thread::spawn;

    type Handle<T> = std::thread::JoinHandle<T>;

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

    type Handle<T> = zmqloop::green::may::coroutine::JoinHandle<T>;

    fn context() -> zmq::Context {
        let context = zmq::Context::new();
        context
            .set_max_sockets(4096)
            .expect("raise ZMQ_MAX_SOCKETS");
        context
    }

    scenarios!();
}

/// How a scenario's figure reads.
#[derive(Clone, Copy)]
enum Unit {
    /// Millions of messages per second (higher is better).
    MegaMsgPerSec,
    /// Microseconds per round trip (lower is better).
    Micros,
    /// Thousands of requests per second (higher is better).
    KiloReqPerSec,
    /// Thousands of messages per second (higher is better).
    KiloMsgPerSec,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Unit::MegaMsgPerSec => "M msg/s",
            Unit::Micros => "us",
            Unit::KiloReqPerSec => "k req/s",
            Unit::KiloMsgPerSec => "k msg/s",
        }
    }

    fn format(self, value: f64) -> String {
        match self {
            Unit::MegaMsgPerSec => format!("{value:.2} {}", self.label()),
            Unit::Micros => format!("{value:.1} {}", self.label()),
            Unit::KiloReqPerSec | Unit::KiloMsgPerSec => format!("{value:.1} {}", self.label()),
        }
    }
}

/// One scenario: its table label, unit, and each side's measurement in that unit.
struct Scenario {
    name: String,
    unit: Unit,
    blocking: Box<dyn Fn() -> f64>,
    green: Box<dyn Fn() -> f64>,
}

/// The median of `values` (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// "1M", "100k", "2k"...: a message count for the table.
fn count_label(count: u64) -> String {
    if count >= 1_000_000 && count % 1_000_000 == 0 {
        format!("{}M", count / 1_000_000)
    } else if count >= 1000 && count % 1000 == 0 {
        format!("{}k", count / 1000)
    } else {
        count.to_string()
    }
}

fn scenarios(divisor: u64) -> Vec<Scenario> {
    let small = 1_000_000 / divisor;
    let large = 100_000 / divisor;
    let warm_up = 1000 / divisor;
    let round_trips = 20_000 / divisor;
    let requests = 20 / divisor;
    let proxy_requests = 5000 / divisor;

    let mut list = Vec::new();
    for (size, count, size_label) in [(16, small, "16 B"), (1024, large, "1 KiB")] {
        for transport in [Transport::Inproc, Transport::Tcp] {
            list.push(Scenario {
                name: format!(
                    "PUSH/PULL {} {} x {size_label}",
                    transport.name(),
                    count_label(count)
                ),
                unit: Unit::MegaMsgPerSec,
                blocking: Box::new(move || blocking::push_pull(transport, size, count) / 1e6),
                green: Box::new(move || green::push_pull(transport, size, count) / 1e6),
            });
        }
    }
    list.push(Scenario {
        name: format!(
            "REQ/REP tcp 16 B round trip ({} timed)",
            count_label(round_trips)
        ),
        unit: Unit::Micros,
        blocking: Box::new(move || blocking::req_rep(warm_up, round_trips).as_secs_f64() * 1e6),
        green: Box::new(move || green::req_rep(warm_up, round_trips).as_secs_f64() * 1e6),
    });
    list.push(Scenario {
        name: format!("DEALER/ROUTER inproc {CLIENTS} clients x {requests} req"),
        unit: Unit::KiloReqPerSec,
        blocking: Box::new(move || blocking::dealer_router(CLIENTS, requests) / 1e3),
        green: Box::new(move || green::dealer_router(CLIENTS, requests) / 1e3),
    });
    list.push(Scenario {
        name: format!(
            "DEALER/ROUTER tcp via proxy, {PROXY_CLIENTS} clients x {} req (window \
             {PROXY_WINDOW}), {PROXY_WORKERS} workers",
            count_label(proxy_requests)
        ),
        unit: Unit::KiloMsgPerSec,
        blocking: Box::new(move || {
            blocking::proxy(PROXY_CLIENTS, PROXY_WORKERS, proxy_requests) / 1e3
        }),
        green: Box::new(move || green::proxy(PROXY_CLIENTS, PROXY_WORKERS, proxy_requests) / 1e3),
    });
    list
}

fn main() {
    let mut divisor = 1;
    let mut workers = 2;
    let mut only: Option<String> = None;
    let mut rounds = ROUNDS;
    let mut pin_workers = false;
    let mut sides = (true, true);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => divisor = 10,
            "--workers" => workers = args.next().and_then(|n| n.parse().ok()).unwrap_or(2),
            "--only" => only = args.next(),
            "--pin-workers" => pin_workers = true,
            "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).unwrap_or(ROUNDS),
            "--side" => {
                sides = match args.next().as_deref() {
                    Some("blocking") => (true, false),
                    Some("green") => (false, true),
                    _ => (true, true),
                }
            }
            other => {
                eprintln!(
                    "unknown argument {other:?}; usage: compare [--quick] [--workers N] \
                     [--only TEXT] [--rounds N] [--side blocking|green]"
                );
                std::process::exit(2);
            }
        }
    }
    // Before any coroutine exists: by default one may worker per core of the 2-core reference
    // machine, not pinned to cores (may pins them unless told otherwise; `--pin-workers` keeps
    // that: see "Configuring may" in `zmqloop::green::spawn`).
    zmqloop::green::may::config()
        .set_workers(workers)
        .set_worker_pin(pin_workers);
    println!("may workers: {workers}, pinned to cores: {pin_workers}");

    let started = Instant::now();
    let mut rows = Vec::new();
    for scenario in scenarios(divisor) {
        if only
            .as_ref()
            .is_some_and(|text| !scenario.name.contains(text.as_str()))
        {
            continue;
        }
        println!("{}", scenario.name);
        let mut blocking = Vec::with_capacity(rounds);
        let mut green = Vec::with_capacity(rounds);
        for round in 1..=rounds {
            let b = if sides.0 {
                (scenario.blocking)()
            } else {
                f64::NAN
            };
            let g = if sides.1 {
                (scenario.green)()
            } else {
                f64::NAN
            };
            println!(
                "  round {round}/{rounds}: blocking {}, green {}",
                scenario.unit.format(b),
                scenario.unit.format(g)
            );
            blocking.push(b);
            green.push(g);
        }
        let mut ratios: Vec<f64> = blocking.iter().zip(&green).map(|(b, g)| g / b).collect();
        ratios.sort_by(f64::total_cmp);
        let spread = (ratios[0], ratios[ratios.len() - 1]);
        let (b, g) = (median(&mut blocking), median(&mut green));
        rows.push((scenario.name, scenario.unit, b, g, spread));
    }
    let total = started.elapsed();

    println!();
    println!("| scenario | blocking | green | ratio | round ratios |");
    println!("|---|---|---|---|---|");
    for (name, unit, b, g, (low, high)) in &rows {
        println!(
            "| {name} | {} | {} | {:.2} | {low:.2}-{high:.2} |",
            unit.format(*b),
            unit.format(*g),
            g / b
        );
    }
    println!();
    println!(
        "Medians of {rounds} rounds. ratio = green / blocking: for throughput above 1 means green \
         is faster, for latency (us) above 1 means green is slower. Round ratios: the lowest and \
         highest ratio within one round (blocking and green measured back to back)."
    );
    println!(
        "Fallback wake-ups that found a missed edge: {}. Total run time: {:.1} s.",
        zmqloop::green::fallback::missed_edges(),
        total.as_secs_f64()
    );
}
