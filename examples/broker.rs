//! The README demo: zguide's request-reply broker, green. A ROUTER frontend and a DEALER
//! backend joined by `zmq::proxy` in one coroutine; thousands of REQ clients and a pool of REP
//! workers, each a coroutine with its own socket, all over tcp on 127.0.0.1 and all on two may
//! worker threads. The client and worker code is plain `zmq` code: only the `use` line and
//! `zmq::spawn` make it green.
//!
//! Every client connects and makes one warm-up request; then all start together and each makes
//! its requests one after the other, timing every round trip. The program prints progress once
//! a second and a summary at the end (requests per second, latency percentiles, how many
//! coroutines on how many threads), then stops everything by terminating the context.
//!
//! ```text
//! cargo run --release --example broker [clients] [workers] [requests-per-client]
//! ```
//!
//! Defaults: 2000 clients, 100 workers, 20 requests per client (a few seconds on 2 cores).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zmqloop::green as zmq;
use zmqloop::green::may;

/// may worker threads: one per core of the 2-core reference machine.
const MAY_WORKERS: usize = 2;

/// Round-trip latencies in microseconds, counted in buckets of about 3% width, so that
/// the progress line can read percentiles while thousands of clients add to it.
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Histogram {
    /// Values below this are counted exactly; above, 32 buckets per power of two.
    const LINEAR: u64 = 64;
    const BUCKETS: usize = 32 * 60;

    fn new() -> Histogram {
        Histogram {
            buckets: (0..Self::BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn index(micros: u64) -> usize {
        if micros < Self::LINEAR {
            return micros as usize;
        }
        let shift = 63 - micros.leading_zeros() - 5; // keep the 6 leading bits
        32 * shift as usize + (micros >> shift) as usize
    }

    /// The middle of bucket `index`, in microseconds.
    fn value(index: usize) -> f64 {
        if index < Self::LINEAR as usize {
            return index as f64;
        }
        let shift = index / 32 - 1;
        let low = ((index - 32 * shift) as u64) << shift;
        low as f64 + ((1u64 << shift) as f64 - 1.0) / 2.0
    }

    fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let index = Self::index(micros).min(Self::BUCKETS - 1);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
    }

    /// The given percentiles (0.0..=1.0) of everything recorded so far, in microseconds.
    fn percentiles<const N: usize>(&self, ps: [f64; N]) -> [f64; N] {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        ps.map(|p| {
            let rank = ((total as f64 * p).ceil() as u64).max(1);
            let mut seen = 0;
            for (index, count) in counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    return Self::value(index);
                }
            }
            0.0
        })
    }
}

fn parse_arg(arg: Option<String>, default: usize, what: &str) -> usize {
    arg.map_or(default, |a| {
        a.parse()
            .unwrap_or_else(|_| panic!("{what}: expected a number, got {a:?}"))
    })
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), zmq::Error> {
    let mut args = std::env::args().skip(1);
    let clients = parse_arg(args.next(), 2000, "clients");
    let workers = parse_arg(args.next(), 100, "workers");
    let requests = parse_arg(args.next(), 20, "requests-per-client");
    assert!(
        clients > 0 && workers > 0 && requests > 0,
        "all counts must be positive"
    );
    may::config().set_workers(MAY_WORKERS);

    let mut ctx = zmq::Context::new();
    // Every client and worker has a socket, plus the broker's two; closed sockets free their
    // slot late, so leave headroom.
    ctx.set_max_sockets((clients + workers + 64) as i32)?;

    // The broker: ROUTER for the clients, DEALER for the workers, each on an ephemeral port.
    // Every peer connects at once, so the listen backlog must hold them all.
    let frontend = ctx.socket(zmq::ROUTER)?;
    frontend.set_backlog(clients as i32)?;
    frontend.bind("tcp://127.0.0.1:*")?;
    let frontend_endpoint = frontend.get_last_endpoint()?.expect("utf-8 endpoint");
    let backend = ctx.socket(zmq::DEALER)?;
    backend.set_backlog(workers as i32)?;
    backend.bind("tcp://127.0.0.1:*")?;
    let backend_endpoint = backend.get_last_endpoint()?.expect("utf-8 endpoint");
    println!(
        "broker: {clients} REQ clients -> ROUTER {frontend_endpoint} | proxy | \
         DEALER {backend_endpoint} -> {workers} REP workers; {requests} requests per client"
    );
    // Runs until the context is terminated (then returns ETERM).
    let broker = zmq::spawn(move || zmq::proxy(&frontend, &backend));

    // The workers: each answers requests with the reversed body until the context ends.
    let worker_handles: Vec<_> = (0..workers)
        .map(|_| {
            let ctx = ctx.clone();
            let endpoint = backend_endpoint.clone();
            zmq::spawn(move || -> zmq::Result<u64> {
                let socket = ctx.socket(zmq::REP)?;
                socket.connect(&endpoint)?;
                let mut served = 0;
                loop {
                    let mut request = match socket.recv_bytes(0) {
                        Err(zmq::Error::ETERM) => return Ok(served),
                        other => other?,
                    };
                    request.reverse();
                    match socket.send(request, 0) {
                        Err(zmq::Error::ETERM) => return Ok(served),
                        other => other?,
                    }
                    served += 1;
                }
            })
        })
        .collect();

    // The clients: connect, one warm-up request, then wait for the start signal.
    let connect_start = Instant::now();
    let ready = may::sync::WaitGroup::new();
    let go = Arc::new(may::sync::SyncFlag::new());
    let histogram = Arc::new(Histogram::new());
    let done = Arc::new(AtomicU64::new(0));
    let client_handles: Vec<_> = (0..clients)
        .map(|id| {
            let ctx = ctx.clone();
            let endpoint = frontend_endpoint.clone();
            let ready = ready.clone();
            let go = go.clone();
            let histogram = histogram.clone();
            let done = done.clone();
            zmq::spawn(move || -> zmq::Result<Vec<Duration>> {
                let socket = ctx.socket(zmq::REQ)?;
                socket.connect(&endpoint)?;
                let round_trip = |body: &str| -> zmq::Result<Duration> {
                    let sent = Instant::now();
                    socket.send(body, 0)?;
                    let reply = socket.recv_bytes(0)?;
                    let latency = sent.elapsed();
                    assert!(reply.iter().eq(body.as_bytes().iter().rev()), "wrong reply");
                    Ok(latency)
                };
                round_trip(&format!("client {id} warm-up"))?;
                drop(ready);
                go.wait();
                let mut latencies = Vec::with_capacity(requests);
                for n in 0..requests {
                    let latency = round_trip(&format!("client {id} request {n}"))?;
                    histogram.record(latency);
                    done.fetch_add(1, Ordering::Relaxed);
                    latencies.push(latency);
                }
                Ok(latencies)
            })
        })
        .collect();
    ready.wait();
    println!(
        "all {clients} clients connected and warmed up in {:.2} s",
        connect_start.elapsed().as_secs_f64()
    );

    // The timed phase, with a progress line every second.
    let total = (clients * requests) as u64;
    let start = Instant::now();
    go.fire();
    let mut last = (start, 0u64);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let count = done.load(Ordering::Relaxed);
        let now = Instant::now();
        if count == total || client_handles.iter().all(|h| h.is_done()) {
            break; // all done (or some client failed: its join below reports why)
        }
        if now.duration_since(last.0) >= Duration::from_secs(1) {
            let rate = (count - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
            let [p50, p99] = histogram.percentiles([0.50, 0.99]);
            println!(
                "  {:>5.1} s: {count:>8} requests, {rate:>8.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
                now.duration_since(start).as_secs_f64(),
                p50 / 1e3,
                p99 / 1e3
            );
            last = (now, count);
        }
    }
    let mut latencies = Vec::with_capacity(clients * requests);
    for handle in client_handles {
        latencies.extend(handle.join().expect("a client panicked")?);
    }
    let elapsed = start.elapsed();

    let io_threads = ctx.get_io_threads()?;

    // Shut down: terminating the context wakes the broker and the workers with ETERM; it
    // returns once every socket is closed.
    let stop_start = Instant::now();
    ctx.destroy()?;
    match broker.join().expect("the broker panicked") {
        Err(zmq::Error::ETERM) => {}
        other => panic!("the proxy ended with {other:?} instead of ETERM"),
    }
    let mut served = Vec::with_capacity(workers);
    for handle in worker_handles {
        served.push(handle.join().expect("a worker panicked")?);
    }
    let stopped_in = stop_start.elapsed();

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    println!(
        "served {total} requests from {clients} clients in {:.2} s: {:.0} req/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "round trip through the broker: p50 {}, p99 {}, max {}",
        millis(pct(0.50)),
        millis(pct(0.99)),
        millis(pct(1.0))
    );
    println!(
        "requests per worker: min {}, max {} (warm-ups included)",
        served.iter().min().expect("workers"),
        served.iter().max().expect("workers")
    );
    println!(
        "{} coroutines ({clients} clients, {workers} workers, 1 proxy) on {} may worker threads, \
         {} libzmq I/O thread(s); missed edges: {}; shut down in {}",
        clients + workers + 1,
        may::config().get_workers(),
        io_threads,
        zmq::fallback::missed_edges(),
        millis(stopped_in)
    );
    Ok(())
}
