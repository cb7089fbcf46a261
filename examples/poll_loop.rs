//! A green poll loop in the style of zguide's `mspoller` and `rrbroker`: one coroutine polls
//! three sockets with `zmq::Poller` and services whichever is ready, while other coroutines
//! produce on them:
//!
//! - a PULL socket fed by several PUSH ventilators (tasks: numbers to add up),
//! - a SUB socket fed by an XPUB publisher (weather updates; the publisher waits for the
//!   subscription to arrive on its XPUB before publishing, so nothing is lost to the
//!   slow-joiner problem, and both ends lift the high-water mark at which a PUB drops),
//! - a ROUTER socket serving several REQ clients (each request is answered at once).
//!
//! The loop uses `register`, `poll`, `ready` and `unregister`: a socket leaves the poll set
//! once its stream is complete, and the loop ends when the set is empty. While the loop
//! is parked in `poll` only its coroutine waits; everything runs on two may worker threads.
//!
//! `cargo run --release --example poll_loop`

use std::time::{Duration, Instant};

use zmqloop::green as zmq;
use zmqloop::green::may;

const VENTILATORS: usize = 4;
const TASKS_PER_VENTILATOR: u64 = 5000;
const UPDATES: u64 = 5000;
const CLIENTS: usize = 20;
const REQUESTS_PER_CLIENT: u64 = 100;
/// Producers pause for `PAUSE` after every `BURST` messages.
const BURST: u64 = 250;
const PAUSE: Duration = Duration::from_millis(1);

/// What the loop did for one socket.
#[derive(Default)]
struct Serviced {
    messages: u64,
    /// Polls that found this socket ready.
    wakes: u64,
}

fn main() -> Result<(), zmq::Error> {
    may::config().set_workers(2);
    let started = Instant::now();
    let ctx = zmq::Context::new();

    let tasks = ctx.socket(zmq::PULL)?;
    tasks.bind("inproc://tasks")?;
    let weather = ctx.socket(zmq::SUB)?;
    // A PUB drops what exceeds the high-water mark (1000 each side by default): lift it on
    // both ends so that all updates arrive however far the loop falls behind.
    weather.set_rcvhwm(0)?;
    weather.bind("inproc://weather")?;
    weather.set_subscribe(b"weather ")?;
    let requests = ctx.socket(zmq::ROUTER)?;
    requests.bind("inproc://requests")?;

    // The poll loop: one coroutine, three sockets.
    let server = zmq::spawn(move || -> zmq::Result<_> {
        let expected_tasks = VENTILATORS as u64 * TASKS_PER_VENTILATOR;
        let expected_requests = CLIENTS as u64 * REQUESTS_PER_CLIENT;
        let (mut tasks_done, mut updates_done, mut requests_done) = (
            Serviced::default(),
            Serviced::default(),
            Serviced::default(),
        );
        let (mut task_sum, mut temperature_sum) = (0u64, 0i64);
        let (mut polls, mut multi_ready, mut timeouts) = (0u64, 0u64, 0u64);

        let mut poller = zmq::Poller::new();
        poller.register(&tasks, zmq::POLLIN)?;
        poller.register(&weather, zmq::POLLIN)?;
        poller.register(&requests, zmq::POLLIN)?;
        while !poller.is_empty() {
            let ready = poller.poll(1000)?;
            polls += 1;
            match ready {
                0 => timeouts += 1,
                1 => {}
                _ => multi_ready += 1,
            }
            // Service every ready socket, draining what it has without waiting.
            let ready: Vec<zmq::PollTarget> = poller.ready().map(|(target, _)| target).collect();
            for target in ready {
                let zmq::PollTarget::Socket(socket) = target else {
                    continue;
                };
                if std::ptr::eq(socket, &tasks) {
                    tasks_done.wakes += 1;
                    while let Some(task) = recv_now(socket)? {
                        task_sum += parse(&task[0]);
                        tasks_done.messages += 1;
                    }
                    if tasks_done.messages == expected_tasks {
                        poller.unregister(socket)?;
                    }
                } else if std::ptr::eq(socket, &weather) {
                    updates_done.wakes += 1;
                    while let Some(update) = recv_now(socket)? {
                        // "weather <seq> <temperature>"
                        let text = String::from_utf8_lossy(&update[0]);
                        let temperature = text.rsplit(' ').next().expect("a temperature");
                        temperature_sum += temperature.parse::<i64>().expect("a number");
                        updates_done.messages += 1;
                    }
                    if updates_done.messages == UPDATES {
                        poller.unregister(socket)?;
                    }
                } else if std::ptr::eq(socket, &requests) {
                    requests_done.wakes += 1;
                    while let Some(mut request) = recv_now(socket)? {
                        // [identity, empty, body] -> [identity, empty, reply]
                        let body = request.pop().expect("a body");
                        request.push(format!("ok {}", parse(&body)).into_bytes());
                        socket.send_multipart(request, 0)?;
                        requests_done.messages += 1;
                    }
                    if requests_done.messages == expected_requests {
                        poller.unregister(socket)?;
                    }
                }
            }
        }
        Ok((
            [tasks_done, updates_done, requests_done],
            task_sum,
            temperature_sum,
            [polls, multi_ready, timeouts],
        ))
    });

    // The producers, each a coroutine with its own socket.
    let mut producers = Vec::new();
    for v in 0..VENTILATORS {
        let push = ctx.socket(zmq::PUSH)?;
        push.connect("inproc://tasks")?;
        producers.push(zmq::spawn(move || -> zmq::Result<()> {
            for n in 0..TASKS_PER_VENTILATOR {
                push.send(
                    format!("{}", v as u64 * TASKS_PER_VENTILATOR + n).as_str(),
                    0,
                )?;
                pace(n);
            }
            Ok(())
        }));
    }
    let publisher = ctx.socket(zmq::XPUB)?;
    publisher.set_sndhwm(0)?;
    publisher.connect("inproc://weather")?;
    producers.push(zmq::spawn(move || -> zmq::Result<()> {
        // An XPUB receives each subscription: once it is here, nothing published is lost.
        let subscription = publisher.recv_bytes(0)?;
        assert_eq!(subscription, b"\x01weather ", "a subscribe message");
        for seq in 0..UPDATES {
            let temperature = (seq * 7 % 40) as i64 - 5;
            publisher.send(format!("weather {seq} {temperature}").as_str(), 0)?;
            pace(seq);
        }
        Ok(())
    }));
    for c in 0..CLIENTS {
        let req = ctx.socket(zmq::REQ)?;
        req.connect("inproc://requests")?;
        producers.push(zmq::spawn(move || -> zmq::Result<()> {
            for n in 0..REQUESTS_PER_CLIENT {
                let id = c as u64 * REQUESTS_PER_CLIENT + n;
                req.send(format!("{id}").as_str(), 0)?;
                let reply = req.recv_string(0)?.expect("utf-8 reply");
                assert_eq!(reply, format!("ok {id}"));
            }
            Ok(())
        }));
    }

    for producer in producers {
        producer.join().expect("a producer panicked")?;
    }
    let (serviced, task_sum, temperature_sum, [polls, multi_ready, timeouts]) =
        server.join().expect("the poll loop panicked")?;
    let elapsed = started.elapsed();

    let total_tasks = VENTILATORS as u64 * TASKS_PER_VENTILATOR;
    assert_eq!(task_sum, total_tasks * (total_tasks - 1) / 2, "tasks lost");
    println!("poll loop over PULL + SUB + ROUTER, producers on the same 2 may workers:");
    for (name, s) in ["PULL   (tasks)", "SUB    (weather)", "ROUTER (requests)"]
        .iter()
        .zip(&serviced)
    {
        println!(
            "  {name:<18} {:>6} messages in {:>5} wake-ups ({:.1} per wake-up)",
            s.messages,
            s.wakes,
            s.messages as f64 / s.wakes.max(1) as f64
        );
    }
    println!(
        "  task sum {task_sum} (all {total_tasks} tasks), mean temperature {:.2} C over {UPDATES} \
         updates, {} requests answered",
        temperature_sum as f64 / UPDATES as f64,
        serviced[2].messages
    );
    println!(
        "{polls} polls ({multi_ready} with several sockets ready, {timeouts} timeouts) in {:.1} \
         ms; {} coroutines on {} may worker threads; missed edges: {}",
        elapsed.as_secs_f64() * 1e3,
        VENTILATORS + 1 + CLIENTS + 1,
        may::config().get_workers(),
        zmq::fallback::missed_edges()
    );
    Ok(())
}

/// Producers send in bursts of [`BURST`] with a pause of [`PAUSE`] after each, so that the
/// streams interleave as they would in a service.
fn pace(sent: u64) {
    if sent % BURST == BURST - 1 {
        may::coroutine::sleep(PAUSE);
    }
}

/// The next whole message of `socket` if one is there now, without waiting.
fn recv_now(socket: &zmq::Socket) -> zmq::Result<Option<Vec<Vec<u8>>>> {
    match socket.recv_multipart(zmq::DONTWAIT) {
        Ok(parts) => Ok(Some(parts)),
        Err(zmq::Error::EAGAIN) => Ok(None),
        Err(err) => Err(err),
    }
}

fn parse(bytes: &[u8]) -> u64 {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("a number")
}
