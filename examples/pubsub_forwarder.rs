//! zguide's weather-update forwarder, green: publishers -> XSUB | forwarder device | XPUB ->
//! subscribers, every party a coroutine on two may worker threads.
//!
//! - Each publisher owns a region of zip codes, binds a PUB socket on an ephemeral tcp port of
//!   127.0.0.1 and publishes `"<zip> <kind> <publisher> <seq> <temperature> <humidity>"`.
//! - The forwarder is `zmq::device::Device::forwarder()` (XSUB in, XPUB out) started with
//!   `.start(&ctx)`: its XSUB connects to every publisher (zguide's `wuproxy`), its XPUB binds
//!   an inproc endpoint for the subscribers, and subscriptions flow back upstream through it.
//! - Each subscriber subscribes to one filter: a zip code, a region prefix, or everything.
//!
//! The slow-joiner problem (a subscription takes a while to reach a publisher, and a PUB drops
//! whatever it sends before then) is handled properly: until told otherwise the publishers send
//! `probe` updates every few milliseconds; each subscriber waits until it has seen a probe from
//! every publisher its filter covers, which proves its subscription has reached them, and
//! reports on a may channel. Once all have reported, the publishers send a counted series of
//! `update`s, and every subscriber checks that it received exactly the updates its filter
//! matches, none lost. Then the device is stopped with `DeviceHandle::stop`.
//!
//! `cargo run --release --example pubsub_forwarder [subscribers] [rounds]` (default 32
//! subscribers, 20 rounds of updates).

use std::collections::BTreeSet;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use zmqloop::green as zmq;
use zmqloop::green::may;
use zmqloop::green::may::sync::mpsc;

/// Publishers, each owning the zip codes `10<p>00..10<p>0<ZIPS_PER_PUBLISHER - 1>`.
const PUBLISHERS: usize = 3;
const ZIPS_PER_PUBLISHER: usize = 4;
/// Where the forwarder's XPUB side meets the subscribers.
const SUBSCRIBER_ENDPOINT: &str = "inproc://weather-forwarder";
/// How often publishers send probes while subscribers join.
const PROBE_INTERVAL: Duration = Duration::from_millis(5);

fn zips_of(publisher: usize) -> Vec<String> {
    (0..ZIPS_PER_PUBLISHER)
        .map(|i| format!("10{publisher}0{i}"))
        .collect()
}

/// Subscriber `i`'s filter: every zip code in turn, then each region, then everything.
fn filter_of(i: usize) -> String {
    let zips = PUBLISHERS * ZIPS_PER_PUBLISHER;
    match i % (zips + PUBLISHERS + 1) {
        n if n < zips => format!("10{}0{}", n / ZIPS_PER_PUBLISHER, n % ZIPS_PER_PUBLISHER),
        n if n < zips + PUBLISHERS => format!("10{}", n - zips),
        _ => String::new(),
    }
}

/// What one subscriber got.
struct Report {
    filter: String,
    updates: usize,
    zips: BTreeSet<String>,
    mean_temperature: f64,
    /// Updates the filter matches: `updates` should reach it.
    expected: usize,
    probes: usize,
    joined_in: Option<Duration>,
}

/// A deterministic pseudo-random number in `0..modulo` (a small LCG per publisher).
fn next_random(state: &mut u64, modulo: u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 33) % modulo
}

fn parse_arg(arg: Option<String>, default: usize, what: &str) -> usize {
    arg.map_or(default, |a| {
        a.parse()
            .unwrap_or_else(|_| panic!("{what}: expected a number, got {a:?}"))
    })
}

fn main() -> Result<(), zmq::Error> {
    let mut args = std::env::args().skip(1);
    let subscribers = parse_arg(args.next(), 32, "subscribers");
    let rounds = parse_arg(args.next(), 20, "rounds");
    may::config().set_workers(2);
    let started = Instant::now();

    let ctx = zmq::Context::new();

    // The publishers' sockets, bound first so that the forwarder can connect to them.
    let mut publisher_sockets = Vec::with_capacity(PUBLISHERS);
    let mut device = zmq::device::Device::forwarder().bind_out(SUBSCRIBER_ENDPOINT);
    for _ in 0..PUBLISHERS {
        let socket = ctx.socket(zmq::PUB)?;
        socket.bind("tcp://127.0.0.1:*")?;
        let endpoint = socket.get_last_endpoint()?.expect("utf-8 endpoint");
        device = device.connect_in(&endpoint);
        publisher_sockets.push((socket, endpoint));
    }
    let device = device.start(&ctx)?;
    println!(
        "forwarder: {PUBLISHERS} publishers (tcp) -> XSUB | device | XPUB {SUBSCRIBER_ENDPOINT} \
         -> {subscribers} subscribers"
    );

    // The publishers: probes until told to go, then `rounds` counted updates per zip code.
    let mut go_senders = Vec::with_capacity(PUBLISHERS);
    let mut publishers = Vec::with_capacity(PUBLISHERS);
    for (id, (socket, endpoint)) in publisher_sockets.into_iter().enumerate() {
        let (go_tx, go) = mpsc::channel::<()>();
        go_senders.push(go_tx);
        println!("  publisher {id}: zips {:?} at {endpoint}", zips_of(id));
        publishers.push(zmq::spawn(move || -> zmq::Result<(usize, usize)> {
            let zips = zips_of(id);
            let mut random = id as u64 + 1;
            let mut probe_rounds = 0;
            while let Err(RecvTimeoutError::Timeout) = go.recv_timeout(PROBE_INTERVAL) {
                for zip in &zips {
                    socket.send(format!("{zip} probe {id}").as_str(), 0)?;
                }
                probe_rounds += 1;
            }
            for seq in 0..rounds {
                for zip in &zips {
                    let temperature = next_random(&mut random, 40) as i64 - 5;
                    let humidity = 10 + next_random(&mut random, 80);
                    let update = format!("{zip} update {id} {seq} {temperature} {humidity}");
                    socket.send(update.as_str(), 0)?;
                }
            }
            Ok((probe_rounds, rounds * zips.len()))
        }));
    }

    // The subscribers: join (probes from every publisher their filter covers), report ready,
    // then count the updates their filter matches.
    let (ready_tx, ready) = mpsc::channel::<usize>();
    let handles: Vec<_> = (0..subscribers)
        .map(|i| {
            let ctx = ctx.clone();
            let ready_tx = ready_tx.clone();
            zmq::spawn(move || -> zmq::Result<Report> {
                let filter = filter_of(i);
                let covered: BTreeSet<usize> = (0..PUBLISHERS)
                    .filter(|&p| zips_of(p).iter().any(|zip| zip.starts_with(&filter)))
                    .collect();
                let expected = rounds
                    * (0..PUBLISHERS)
                        .flat_map(zips_of)
                        .filter(|zip| zip.starts_with(&filter))
                        .count();
                let socket = ctx.socket(zmq::SUB)?;
                // A lost update shows as a timeout rather than a hang.
                socket.set_rcvtimeo(5000)?;
                socket.connect(SUBSCRIBER_ENDPOINT)?;
                socket.set_subscribe(filter.as_bytes())?;
                let joining = Instant::now();

                let mut probed = BTreeSet::new();
                let mut report = Report {
                    filter,
                    updates: 0,
                    zips: BTreeSet::new(),
                    mean_temperature: 0.0,
                    expected,
                    probes: 0,
                    joined_in: None,
                };
                let mut temperature_sum = 0i64;
                while report.updates < expected {
                    let text = match socket.recv_string(0) {
                        Err(zmq::Error::EAGAIN) => break, // nothing for 5 s: lost
                        other => other?.expect("utf-8 update"),
                    };
                    let fields: Vec<&str> = text.split(' ').collect();
                    let publisher: usize = fields[2].parse().expect("a publisher id");
                    match fields[1] {
                        "probe" => {
                            report.probes += 1;
                            probed.insert(publisher);
                            if report.joined_in.is_none() && probed == covered {
                                report.joined_in = Some(joining.elapsed());
                                ready_tx.send(i).expect("main is waiting");
                            }
                        }
                        "update" => {
                            assert!(report.joined_in.is_some(), "an update before joining");
                            report.updates += 1;
                            report.zips.insert(fields[0].to_owned());
                            temperature_sum += fields[4].parse::<i64>().expect("a temperature");
                        }
                        other => panic!("unexpected message kind {other:?}"),
                    }
                }
                report.mean_temperature = temperature_sum as f64 / report.updates as f64;
                Ok(report)
            })
        })
        .collect();
    drop(ready_tx);

    // Wait until every subscription has reached every publisher it covers, then go.
    for _ in 0..subscribers {
        ready.recv().expect("a subscriber stopped before joining");
    }
    println!(
        "all {subscribers} subscribers joined after {:.1} ms; publishing {rounds} counted rounds",
        started.elapsed().as_secs_f64() * 1e3
    );
    for go in &go_senders {
        go.send(()).expect("a publisher stopped early");
    }

    for (id, publisher) in publishers.into_iter().enumerate() {
        let (probe_rounds, updates) = publisher.join().expect("a publisher panicked")?;
        println!("  publisher {id}: {probe_rounds} probe rounds, then {updates} updates");
    }
    let (mut total_updates, mut lost) = (0, 0);
    for (i, handle) in handles.into_iter().enumerate() {
        let report = handle.join().expect("a subscriber panicked")?;
        total_updates += report.updates;
        lost += report.expected - report.updates;
        let filter = if report.filter.is_empty() {
            "(all)".to_owned()
        } else {
            format!("{:?}", report.filter)
        };
        println!(
            "  subscriber {i:>3} filter {filter:<8} got {:>4} updates from {:>2} zips, mean \
             {:>5.1} C (joined in {:.1} ms after {} probes){}",
            report.updates,
            report.zips.len(),
            report.mean_temperature,
            report.joined_in.unwrap_or_default().as_secs_f64() * 1e3,
            report.probes,
            match report.expected - report.updates {
                0 => String::new(),
                missing => format!(" LOST {missing}"),
            }
        );
    }

    let statistics = device.statistics();
    device.stop()?;
    println!(
        "device: {} messages in from the publishers, {} subscription messages from the \
         subscribers; stopped",
        statistics.frontend.messages_in, statistics.backend.messages_in
    );
    println!(
        "{total_updates} updates delivered, {lost} lost; {} coroutines on {} may worker threads; \
         missed edges: {}; {:.2} s in all",
        PUBLISHERS + subscribers + 1,
        may::config().get_workers(),
        zmq::fallback::missed_edges(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
