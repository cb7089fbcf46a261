//! Compares zmqloop's green sockets on may coroutines with the plain blocking `zmq` crate on OS
//! threads, scenario by scenario in one process, and prints a markdown table.
//!
//! ```text
//! cargo run --release --example compare            # full counts, under a minute on 2 cores
//! cargo run --release --example compare -- --quick # every timed count divided by 10
//! cargo run --release --example compare -- --only REQ --rounds 9   # one scenario, more rounds
//! cargo run --release --example compare -- --side green            # one side only (profiling)
//! cargo run --release --example compare -- --pin-workers            # may's default core pinning
//! ```
//!
//! Both sides run the very same fixtures, those of `zmqloop_fixtures::side_by_side` (shared with the
//! `green_vs_blocking` and `proxy` benches; its module doc has the measurement rules), written once
//! and expanded in module `blocking` (plain `zmq`, one OS thread per task, `std::sync::mpsc`) and
//! in module `green` (`zmqloop::green`, one coroutine per task through `zmqloop::green::spawn`, may
//! channels, two unpinned may workers). Every measurement sets a fixture up afresh (`new`, which
//! includes the fixture's warm-up), times one `run` of it and tears it down (`finish`); setup,
//! warm-up and teardown are outside the clock (`--quick` divides the timed counts below, not the
//! fixtures' warm-ups):
//!
//! - PUSH/PULL throughput (16 B: 1M messages, 1 KiB: 100k; inproc and tcp on 127.0.0.1 with an
//!   ephemeral port): one producer and one consumer task. After a warm-up of 1000 messages, the
//!   clock runs from the producer's first send to the consumer's last receive, and the rate is
//!   the message count over that time. Reported in M msg/s.
//! - REQ/REP round trip over tcp, 16 B: a REQ client task and a REP echo task; 1000 warm-up then
//!   20,000 timed round trips, timed by the client. Reported in us per round trip (the mean).
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
//! Each scenario runs 3 rounds (`--rounds N`), each round blocking then green, and reports the
//! median of each side and the lowest and highest ratio seen within one round. The ratio is
//! green / blocking of the reported figure: for throughput above 1 means green is faster, for
//! latency above 1 means green is slower.

use std::time::{Duration, Instant};

use zmqloop_fixtures::side_by_side::{self as fixtures, Transport, WINDOW};

/// Rounds per scenario by default (each round measures blocking, then green).
const ROUNDS: usize = 3;
/// DEALER clients of the echo scenario (plus the ROUTER: 1001 sockets, under libzmq's default
/// cap of 1023, which a plain `zmq::Context` cannot raise).
const CLIENTS: usize = 1000;
/// DEALER clients of the proxy scenario.
const PROXY_CLIENTS: usize = 16;
/// DEALER echo workers behind the proxy.
const PROXY_WORKERS: usize = 4;

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

/// Events per second: `count` of them in `elapsed`.
fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// A scenario whose measurement, on each side, sets the fixture up (`new`, with its warm-up),
/// times one `run(count)` of it and tears it down (`finish`), then turns the run's time,
/// bound to `$elapsed`, into the scenario's figure.
macro_rules! scenario {
    (
        $name:expr,
        $unit:expr,
        $fixture:ident::new($($arg:expr),*).run($count:expr),
        |$elapsed:ident| $figure:expr
    ) => {
        Scenario {
            name: $name,
            unit: $unit,
            blocking: Box::new(move || {
                let fixture = fixtures::blocking::$fixture::new($($arg),*);
                let $elapsed = fixture.run($count);
                fixture.finish();
                $figure
            }),
            green: Box::new(move || {
                let fixture = fixtures::green::$fixture::new($($arg),*);
                let $elapsed = fixture.run($count);
                fixture.finish();
                $figure
            }),
        }
    };
}

fn scenarios(divisor: u64) -> Vec<Scenario> {
    let small = 1_000_000 / divisor;
    let large = 100_000 / divisor;
    let round_trips = 20_000 / divisor;
    let requests = 20 / divisor;
    let proxy_requests = 5000 / divisor;

    let mut list = Vec::new();
    for (size, count, size_label) in [(16, small, "16 B"), (1024, large, "1 KiB")] {
        for transport in [Transport::Inproc, Transport::Tcp] {
            list.push(scenario!(
                format!(
                    "PUSH/PULL {} {} x {size_label}",
                    transport.name(),
                    count_label(count)
                ),
                Unit::MegaMsgPerSec,
                PushPull::new(transport, size).run(count),
                |elapsed| per_second(count, elapsed) / 1e6
            ));
        }
    }
    list.push(scenario!(
        format!(
            "REQ/REP tcp 16 B round trip ({} timed)",
            count_label(round_trips)
        ),
        Unit::Micros,
        ReqRep::new(Transport::Tcp).run(round_trips),
        |elapsed| elapsed.as_secs_f64() * 1e6 / round_trips as f64
    ));
    list.push(scenario!(
        format!("DEALER/ROUTER inproc {CLIENTS} clients x {requests} req"),
        Unit::KiloReqPerSec,
        DealerRouter::new(CLIENTS).run(requests),
        |elapsed| per_second(CLIENTS as u64 * requests, elapsed) / 1e3
    ));
    list.push(scenario!(
        format!(
            "DEALER/ROUTER tcp via proxy, {PROXY_CLIENTS} clients x {} req (window \
             {WINDOW}), {PROXY_WORKERS} workers",
            count_label(proxy_requests)
        ),
        Unit::KiloMsgPerSec,
        Proxy::new(Transport::Tcp, PROXY_CLIENTS, PROXY_WORKERS).run(proxy_requests),
        // Two messages through the proxy per request.
        |elapsed| per_second(2 * PROXY_CLIENTS as u64 * proxy_requests, elapsed) / 1e3
    ));
    list
}

/// How to call this example.
const USAGE: &str = "usage: compare [--quick] [--workers N] [--only TEXT] [--rounds N] \
                     [--side blocking|green] [--pin-workers]";

/// Exits with `USAGE` and status 2 after saying what was wrong.
fn bad_usage(what: &str) -> ! {
    eprintln!("{what}; {USAGE}");
    std::process::exit(2);
}

/// The positive number following `option`.
fn positive(option: &str, value: Option<String>) -> usize {
    match value.as_deref().map(str::parse) {
        Some(Ok(n)) if n > 0 => n,
        _ => bad_usage(&format!("{option} takes a positive number, got {value:?}")),
    }
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
            "--workers" => workers = positive("--workers", args.next()),
            "--only" => {
                only = Some(
                    args.next()
                        .unwrap_or_else(|| bad_usage("--only takes a text")),
                )
            }
            "--pin-workers" => pin_workers = true,
            "--rounds" => rounds = positive("--rounds", args.next()),
            "--side" => {
                sides = match args.next().as_deref() {
                    Some("blocking") => (true, false),
                    Some("green") => (false, true),
                    other => bad_usage(&format!("--side takes blocking or green, got {other:?}")),
                }
            }
            other => bad_usage(&format!("unknown argument {other:?}")),
        }
    }
    // Before any coroutine exists: by default one may worker per core of the 2-core reference
    // machine, unpinned by zmqloop's defaults; `--pin-workers` keeps may's own default, pinned
    // workers (see "may's configuration" in `zmqloop::green::spawn`).
    zmqloop::green::may::config().set_workers(workers);
    if pin_workers {
        zmqloop::green::keep_may_config();
    }
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
