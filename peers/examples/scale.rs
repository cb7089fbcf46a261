//! Many clients, one ROUTER echo: zmqloop's green sockets on may and on the hub against plain
//! blocking `zmq` on OS threads and tmq on tokio, in one command run.
//!
//! ```text
//! cargo run --release -p zmqloop-peers --example scale -- \
//!     [--clients 10000[,1000,...]] [--reqs 10] [--transport inproc|tcp] \
//!     [--side all|blocking,may,hub,hubs,tmq] [--rounds 3] [--workers 2] [--io-threads 1] \
//!     [--csv FILE]
//! ```
//!
//! Each (clients, side) run is a child process of this one, so that each side's peak resident
//! memory is its own; rounds alternate the order of the sides. Printed per side: the median
//! req/s over the rounds (and its range), its ratio to tmq and to blocking (the median over the
//! rounds of the ratio within each round, which a machine's drift between rounds does not
//! move), the median CPU time per request and cores kept busy over the run, the median setup
//! time, peak RSS, and the memory per client split into what libzmq holds, stacks (resident
//! memory beyond the heap) and the Rust heap (the scheduler's task and zmqloop's registration).
//! `--csv` appends one line per (clients, side) for `scale_chart`.
//!
//! Sides: `blocking` (a thread per client, 64 KiB stacks), `may` (a coroutine per client via
//! `zmqloop::green::spawn`, `--workers` unpinned workers, may's defaults otherwise), `hub` (a
//! task per client on one thread), `hubs` (`--workers` threads, each running a hub with its
//! share of the clients; the echo on the first), `tmq` (a tokio task per client, `--workers`
//! workers).

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use zmqloop_fixtures::measure::CountingAlloc;
use zmqloop_fixtures::scale::{self, Config, Report, Side, Transport};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

const SIDES: [&str; 5] = ["blocking", "may", "hub", "hubs", "tmq"];

const USAGE: &str = "usage: scale [--clients N[,N...]] [--reqs N] [--transport inproc|tcp] \
                     [--side all|blocking,may,hub,hubs,tmq] [--rounds N] [--workers N] \
                     [--io-threads N] [--csv FILE]";

/// The command line.
struct Options {
    clients: Vec<usize>,
    requests: usize,
    transport: Transport,
    sides: Vec<String>,
    rounds: usize,
    workers: usize,
    /// libzmq's I/O threads, the same on every side.
    io_threads: usize,
    csv: Option<String>,
    /// Run one side once, in this process, and print its [`Report`] as one line.
    child: bool,
}

fn parse() -> Options {
    let mut options = Options {
        clients: vec![10_000],
        requests: 10,
        transport: Transport::Inproc,
        sides: SIDES.iter().map(|s| s.to_string()).collect(),
        rounds: 3,
        workers: 2,
        io_threads: 1,
        csv: None,
        child: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--child" {
            options.child = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        let number = |v: &str| {
            v.parse::<usize>()
                .unwrap_or_else(|_| fail(&format!("{flag} {v}")))
        };
        match flag.as_str() {
            "--clients" => options.clients = value.split(',').map(number).collect(),
            "--reqs" => options.requests = number(&value),
            "--rounds" => options.rounds = number(&value).max(1),
            "--workers" => options.workers = number(&value).max(1),
            "--io-threads" => options.io_threads = number(&value).max(1),
            "--csv" => options.csv = Some(value),
            "--transport" => {
                options.transport = Transport::from_name(&value)
                    .unwrap_or_else(|| fail(&format!("--transport {value}")))
            }
            "--side" if value == "all" => {}
            "--side" => {
                options.sides = value.split(',').map(str::to_owned).collect();
                if let Some(bad) = options.sides.iter().find(|s| !SIDES.contains(&s.as_str())) {
                    fail(&format!("--side {bad}"));
                }
            }
            other => fail(&format!("unknown option {other}")),
        }
    }
    options
}

fn fail(what: &str) -> ! {
    eprintln!("scale: {what}\n{USAGE}");
    std::process::exit(2);
}

fn main() {
    let options = parse();
    if options.child {
        let config = Config {
            clients: options.clients[0],
            requests: options.requests,
            transport: options.transport,
            workers: options.workers,
            io_threads: i32::try_from(options.io_threads).unwrap_or_else(|_| fail("--io-threads")),
            teardown: false, // the process exits right after the run
        };
        let report = match options.sides[0].as_str() {
            "blocking" => scale::run(Side::Blocking, &config),
            "may" => scale::run(Side::May, &config),
            "hub" => scale::run(Side::Hub, &config),
            "hubs" => scale::run(Side::Hubs, &config),
            _ => zmqloop_peers::tmq_side::run(&config),
        };
        println!("{}", encode(&report));
        // Exit at once: the measurement is done, and 10,000 threads or coroutines need not
        // be torn down one by one.
        std::process::exit(0);
    }
    let failed: usize = options
        .clients
        .iter()
        .map(|&clients| compare(&options, clients))
        .sum();
    if failed > 0 {
        eprintln!("scale: {failed} runs failed (their errors are above)");
        std::process::exit(1);
    }
}

/// Runs every side `rounds` times at `clients` clients and prints (and appends) the medians;
/// returns how many runs failed.
fn compare(options: &Options, clients: usize) -> usize {
    let transport = options.transport.name();
    println!(
        "\n{clients} clients x {} requests of 16 B over {transport}, {} rounds, {} workers, \
         {} libzmq I/O threads",
        options.requests, options.rounds, options.workers, options.io_threads
    );
    let by_round = run_rounds(options, clients);
    let rounds_of = |side: &str| {
        let index = options.sides.iter().position(|s| s == side)?;
        Some(by_round[index].as_slice())
    };
    let (tmq, blocking) = (rounds_of("tmq"), rounds_of("blocking"));
    println!(
        "{:<9} {:>10} {:>17} {:>7} {:>8} {:>8} {:>6} {:>9} {:>9} {:>16}",
        "side",
        "req/s",
        "range",
        "/tmq",
        "/block",
        "CPU/req",
        "cores",
        "setup",
        "peak RSS",
        "KiB/client z|s|h"
    );
    for (side, rounds) in options.sides.iter().zip(&by_round) {
        let Some(summary) = Summary::of(rounds, tmq, blocking) else {
            println!("{side:<9} (no run finished)");
            continue;
        };
        println!("{side:<9} {}", summary.row());
        if let Some(path) = &options.csv {
            let prefix = format!("{clients},{transport},{side}");
            append(path, &summary.csv_line(&prefix, options.io_threads));
        }
    }
    by_round
        .iter()
        .flatten()
        .filter(|run| run.is_none())
        .count()
}

/// Every side's reports, by round: `by_round[side][round]`, `None` where that run failed.
fn run_rounds(options: &Options, clients: usize) -> Vec<Vec<Option<Report>>> {
    let mut by_round: Vec<Vec<Option<Report>>> = vec![Vec::new(); options.sides.len()];
    for round in 0..options.rounds {
        for turn in 0..options.sides.len() {
            let index = (turn + round) % options.sides.len(); // a different order each round
            let side = &options.sides[index];
            let report = run_child(options, side, clients)
                .map_err(|why| eprintln!("  {side} failed in round {round}: {why}"))
                .ok();
            by_round[index].push(report);
        }
    }
    by_round
}

/// One side's figures over the rounds of one client count.
struct Summary {
    /// Median req/s.
    rate: f64,
    /// Lowest req/s of a round.
    low: f64,
    /// Highest req/s of a round.
    high: f64,
    /// The median over the rounds of the rate's ratio to tmq's within each round: the two
    /// runs of a round are close in time, so a machine that speeds up or slows down between
    /// rounds moves both. `None` if tmq did not run.
    to_tmq: Option<f64>,
    /// The same against blocking threads.
    to_blocking: Option<f64>,
    /// Median CPU time per request (all threads), in us.
    cpu: f64,
    /// Median number of cores kept busy over the run (CPU time over wall time).
    cores: f64,
    /// Median setup time, in seconds.
    setup: f64,
    /// Median peak resident memory, in KiB.
    peak: f64,
    /// Median KiB per client that libzmq holds.
    libzmq: f64,
    /// Median KiB per client of stacks (resident memory beyond the counted heap).
    stack: f64,
    /// Median KiB per client of the Rust heap.
    heap: f64,
}

impl Summary {
    /// The summary of `rounds` (`None` if no run finished), ratios against the rounds of
    /// tmq and blocking where those sides ran.
    fn of(
        rounds: &[Option<Report>],
        tmq: Option<&[Option<Report>]>,
        blocking: Option<&[Option<Report>]>,
    ) -> Option<Summary> {
        let runs: Vec<Report> = rounds.iter().flatten().copied().collect();
        let per = |f: &dyn Fn(&Report) -> f64| median(runs.iter().map(f));
        let ratio = |to: Option<&[Option<Report>]>| median(paired_ratios(rounds, to?));
        Some(Summary {
            rate: per(&Report::rate)?,
            low: runs.iter().map(Report::rate).fold(f64::MAX, f64::min),
            high: runs.iter().map(Report::rate).fold(0.0, f64::max),
            to_tmq: ratio(tmq),
            to_blocking: ratio(blocking),
            cpu: per(&Report::cpu_us_per_request)?,
            cores: per(&Report::cores_busy)?,
            setup: per(&|r| r.setup.as_secs_f64())?,
            peak: per(&|r| r.peak_rss_kib as f64)?,
            libzmq: per(&|r| r.libzmq_kib)?,
            stack: per(&|r| r.stack_kib)?,
            heap: per(&|r| r.heap_kib)?,
        })
    }

    /// The printed row, after the side's name.
    fn row(&self) -> String {
        let ratio = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.2}"));
        format!(
            "{:>9.0}k {:>8.0}k-{:>6.0}k {:>7} {:>8} {:>6.1}us {:>6.2} {:>8.2}s {:>7.0}MB \
             {:>6.1}|{:>4.1}|{:>4.1}",
            self.rate / 1e3,
            self.low / 1e3,
            self.high / 1e3,
            ratio(self.to_tmq),
            ratio(self.to_blocking),
            self.cpu,
            self.cores,
            self.setup,
            self.peak / 1024.0,
            self.libzmq,
            self.stack,
            self.heap
        )
    }

    /// The CSV line: `prefix` (clients, transport, side), then the columns of [`CSV_HEADER`].
    fn csv_line(&self, prefix: &str, io_threads: usize) -> String {
        format!(
            "{prefix},{:.0},{:.0},{:.0},{:.0},{:.3},{:.2},{:.2},{:.2},{:.2},{io_threads}\n",
            self.rate,
            self.low,
            self.high,
            self.peak,
            self.setup,
            self.libzmq,
            self.stack,
            self.heap,
            self.cpu
        )
    }
}

/// `side`'s rate over `to`'s in each round both finished.
fn paired_ratios<'a>(
    side: &'a [Option<Report>],
    to: &'a [Option<Report>],
) -> impl Iterator<Item = f64> + 'a {
    side.iter().zip(to).filter_map(|pair| match pair {
        (Some(side), Some(to)) => Some(side.rate() / to.rate()),
        _ => None,
    })
}

/// The columns of `--csv`, which `scale_chart` reads.
const CSV_HEADER: &str = "clients,transport,side,rate,rate_low,rate_high,peak_rss_kib,setup_s,\
                          libzmq_kib,stack_kib,heap_kib,cpu_us_per_req,io_threads\n";

fn append(path: &str, line: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|err| fail(&format!("--csv {path}: {err}")));
    if file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
        file.write_all(CSV_HEADER.as_bytes()).expect("csv header");
    }
    file.write_all(line.as_bytes()).expect("csv line");
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Runs one side once in a child process of this executable.
fn run_child(options: &Options, side: &str, clients: usize) -> Result<Report, String> {
    let transport = options.transport.name();
    let exe = std::env::current_exe().map_err(|err| err.to_string())?;
    let output = Command::new(exe)
        .args(["--child", "--side", side, "--transport", transport])
        .args(["--clients", &clients.to_string()])
        .args(["--reqs", &options.requests.to_string()])
        .args(["--workers", &options.workers.to_string()])
        .args(["--io-threads", &options.io_threads.to_string()])
        .output()
        .map_err(|err| err.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    decode(line).ok_or_else(|| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        format!(
            "{}; {}",
            output.status,
            stderr.lines().take(3).collect::<Vec<_>>().join(" | ")
        )
    })
}

/// A [`Report`] as one line of `key=value` pairs.
fn encode(report: &Report) -> String {
    format!(
        "setup_ns={} run_ns={} run_cpu_ns={} requests={} libzmq_kib={} stack_kib={} heap_kib={} peak_rss_kib={}",
        report.setup.as_nanos(),
        report.run.as_nanos(),
        report.run_cpu.as_nanos(),
        report.requests,
        report.libzmq_kib,
        report.stack_kib,
        report.heap_kib,
        report.peak_rss_kib
    )
}

fn decode(line: &str) -> Option<Report> {
    let field = |key: &str| -> Option<&str> {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
    };
    let nanos = |key| field(key)?.parse::<u64>().ok().map(Duration::from_nanos);
    let float = |key| field(key)?.parse::<f64>().ok();
    Some(Report {
        setup: nanos("setup_ns")?,
        run: nanos("run_ns")?,
        run_cpu: nanos("run_cpu_ns")?,
        requests: field("requests")?.parse().ok()?,
        libzmq_kib: float("libzmq_kib")?,
        stack_kib: float("stack_kib")?,
        heap_kib: float("heap_kib")?,
        peak_rss_kib: field("peak_rss_kib")?.parse().ok()?,
    })
}
