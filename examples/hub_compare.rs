//! The hub against may and blocking OS threads, in one process run:
//! - inproc REQ/REP round trips on one thread's worth of scheduling (hub: one thread; may: one
//!   worker; blocking: two OS threads);
//! - 1000 DEALER clients against one ROUTER echo over inproc;
//! - spawn cost and resident memory per parked coroutine, for 10,000 and 100,000 of them;
//! - what one readiness wait costs over N parked sockets: `zmq_poll` vs `epoll_wait` (why the
//!   hub's reactor uses epoll).
//!
//! `cargo run --release --example hub_compare [--quick]`

use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

use zmqloop::green as zmq;
use zmqloop::green::hub::{self, Hub};

/// The process's resident memory now, in bytes.
fn rss_bytes() -> u64 {
    zmqloop_fixtures::measure::rss_kib() * 1024
}

fn req_rep_pair(ctx: &zmq::Context, name: &str) -> (zmq::Socket, zmq::Socket) {
    let rep = ctx.socket(zmq::REP).unwrap();
    rep.bind(&format!("inproc://{name}")).unwrap();
    let req = ctx.socket(zmq::REQ).unwrap();
    req.connect(&format!("inproc://{name}")).unwrap();
    (req, rep)
}

fn round_trips(req: &zmq::Socket, n: usize) {
    for _ in 0..n {
        req.send("ping", 0).unwrap();
        req.recv_bytes(0).unwrap();
    }
}

fn echo(rep: &zmq::Socket, n: usize) {
    for _ in 0..n {
        let msg = rep.recv_msg(0).unwrap();
        rep.send(msg, 0).unwrap();
    }
}

/// Microseconds per inproc round trip.
fn rtt_blocking(n: usize) -> f64 {
    let ctx = zmq::Context::new();
    let (req, rep) = req_rep_pair(&ctx, "rtt-blocking");
    let server = std::thread::spawn(move || echo(&rep, n));
    let start = Instant::now();
    round_trips(&req, n);
    let elapsed = start.elapsed();
    server.join().unwrap();
    elapsed.as_secs_f64() * 1e6 / n as f64
}

fn rtt_may(n: usize) -> f64 {
    let ctx = zmq::Context::new();
    let (req, rep) = req_rep_pair(&ctx, "rtt-may");
    let server = zmq::spawn(move || echo(&rep, n));
    let client = zmq::spawn(move || {
        let start = Instant::now();
        round_trips(&req, n);
        start.elapsed()
    });
    let elapsed = client.join().unwrap();
    server.join().unwrap();
    elapsed.as_secs_f64() * 1e6 / n as f64
}

fn rtt_hub(n: usize) -> f64 {
    let hub = Hub::new().unwrap();
    let ctx = zmq::Context::new();
    let (req, rep) = req_rep_pair(&ctx, "rtt-hub");
    hub.spawn(move || echo(&rep, n));
    let elapsed = hub.block_on(move || {
        let start = Instant::now();
        round_trips(&req, n);
        start.elapsed()
    });
    elapsed.as_secs_f64() * 1e6 / n as f64
}

/// Requests per second with `clients` DEALERs x `requests` against one ROUTER echo.
fn dealers<S, J>(clients: usize, requests: usize, spawn: S, join: J) -> f64
where
    S: Fn(Box<dyn FnOnce() + Send>),
    J: FnOnce(),
{
    let ctx = zmq::Context::new();
    ctx.set_max_sockets(clients as i32 + 16).unwrap();
    let router = ctx.socket(zmq::ROUTER).unwrap();
    router.bind("inproc://dealers").unwrap();
    let total = clients * requests;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    spawn(Box::new(move || {
        for _ in 0..total {
            let frames = router.recv_multipart(0).unwrap();
            router.send_multipart(frames, 0).unwrap();
        }
        done_tx.send(Instant::now()).unwrap();
    }));
    let start = Instant::now();
    for _ in 0..clients {
        let dealer = ctx.socket(zmq::DEALER).unwrap();
        dealer.connect("inproc://dealers").unwrap();
        spawn(Box::new(move || {
            for _ in 0..requests {
                dealer.send("request", 0).unwrap();
                dealer.recv_bytes(0).unwrap();
            }
        }));
    }
    join();
    let end = done_rx.recv().unwrap();
    total as f64 / (end - start).as_secs_f64()
}

fn dealers_blocking(clients: usize, requests: usize) -> f64 {
    let threads = std::cell::RefCell::new(Vec::new());
    dealers(
        clients,
        requests,
        |f| threads.borrow_mut().push(std::thread::spawn(f)),
        || threads.take().into_iter().for_each(|t| t.join().unwrap()),
    )
}

fn dealers_may(clients: usize, requests: usize) -> f64 {
    let handles = std::cell::RefCell::new(Vec::new());
    dealers(
        clients,
        requests,
        |f| handles.borrow_mut().push(zmq::spawn(f)),
        || handles.take().into_iter().for_each(|h| h.join().unwrap()),
    )
}

fn dealers_hub(clients: usize, requests: usize) -> f64 {
    let hub = Hub::new().unwrap();
    dealers(
        clients,
        requests,
        |f| {
            hub.spawn(f);
        },
        || hub.run(),
    )
}

/// (microseconds per spawn, bytes of RSS per parked coroutine), or an error text.
fn spawn_cost_hub(count: usize) -> Result<(f64, f64), String> {
    let hub = Hub::builder().stack_size(16 * 1024).build().unwrap();
    let rss = rss_bytes();
    let start = Instant::now();
    let spawned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in 0..count {
            hub.spawn(|| hub::sleep(Duration::from_secs(3600)));
        }
    }));
    let per_spawn = start.elapsed().as_secs_f64() * 1e6 / count as f64;
    if spawned.is_err() {
        return Err(format!(
            "stack mapping failed before {count} tasks (vm.max_map_count?)"
        ));
    }
    // Start every task so that each has touched its stack and parked, then measure; dropping
    // the hub cancels them all.
    hub.block_on(hub::yield_now);
    let per_task = (rss_bytes().saturating_sub(rss)) as f64 / count as f64;
    drop(hub);
    Ok((per_spawn, per_task))
}

fn spawn_cost_may(count: usize) -> Result<(f64, f64), String> {
    let rss = rss_bytes();
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    let handles: Vec<_> = (0..count)
        .map(|_| {
            let tx = tx.clone();
            zmq::spawn(move || {
                tx.send(()).unwrap();
                may::coroutine::park();
            })
        })
        .collect();
    let per_spawn = start.elapsed().as_secs_f64() * 1e6 / count as f64;
    for _ in 0..count {
        rx.recv().unwrap();
    }
    let per_task = (rss_bytes().saturating_sub(rss)) as f64 / count as f64;
    for handle in &handles {
        handle.coroutine().unpark();
    }
    for handle in handles {
        handle.join().unwrap();
    }
    Ok((per_spawn, per_task))
}

/// Microseconds for one readiness check over `n` idle sockets: (zmq_poll, epoll_wait).
fn wait_cost(n: usize) -> (f64, f64) {
    let ctx = zmq::Context::new();
    ctx.set_max_sockets(n as i32 + 16).unwrap();
    let sockets: Vec<_> = (0..n)
        .map(|i| {
            let s = ctx.socket(zmq::PULL).unwrap();
            s.bind(&format!("inproc://wait-{i}")).unwrap();
            s
        })
        .collect();
    let mut items: Vec<_> = sockets
        .iter()
        .map(|s| s.as_poll_item(zmq::POLLIN))
        .collect();
    let rounds = (200_000 / n).max(20);
    let start = Instant::now();
    for _ in 0..rounds {
        assert_eq!(zmq::poll(&mut items, 0).unwrap(), 0);
    }
    let zmq_poll = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    // SAFETY: plain epoll syscalls on fds owned by this function's sockets and epoll set.
    let epoll = unsafe { libc::epoll_create1(0) };
    for s in &sockets {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: 0,
        };
        // SAFETY: see above.
        unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
    let start = Instant::now();
    for _ in 0..rounds {
        // SAFETY: valid buffer of 64 events.
        unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), 64, 0) };
    }
    let epoll_wait = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    // SAFETY: closes the epoll fd created above.
    unsafe { libc::close(epoll) };
    (zmq_poll, epoll_wait)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--profile-hub-rtt") {
        println!("hub inproc round trip: {:.2} us", rtt_hub(300_000));
        return;
    }
    let scale = if quick { 10 } else { 1 };
    may::config().set_workers(1);

    let n = 50_000 / scale;
    let (mut b, mut m, mut h) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        b.push(rtt_blocking(n));
        m.push(rtt_may(n));
        h.push(rtt_hub(n));
    }
    let (b, m, h) = (median(b), median(m), median(h));
    println!("| scenario | blocking threads | may (1 worker) | hub | hub / may |");
    println!("|---|---|---|---|---|");
    println!(
        "| inproc REQ/REP round trip | {b:.2} us | {m:.2} us | {h:.2} us | {:.2}x the time |",
        h / m
    );

    let requests = 20 / if quick { 4 } else { 1 };
    let (mut b, mut m, mut h) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        b.push(dealers_blocking(1000, requests));
        m.push(dealers_may(1000, requests));
        h.push(dealers_hub(1000, requests));
    }
    let (b, m, h) = (median(b), median(m), median(h));
    println!(
        "| 1000 DEALER clients inproc x {requests} req | {:.0} k req/s | {:.0} k req/s | {:.0} k req/s | {:.2}x the rate |",
        b / 1e3, m / 1e3, h / 1e3, h / m
    );

    // Every guarded stack (may and hub alike) costs two memory mappings: 100,000 coroutines
    // need vm.max_map_count above 200,000 (Linux's default is 65530).
    let max_maps: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65_530);
    let big = if max_maps > 210_000 { 100_000 } else { 30_000 } / scale;
    for count in [10_000, big] {
        let show = |r: Result<(f64, f64), String>| match r {
            Ok((us, bytes)) => format!("{us:.2} us, {:.1} KiB", bytes / 1024.0),
            Err(e) => e,
        };
        let may_cost = show(spawn_cost_may(count));
        let hub_cost = show(spawn_cost_hub(count));
        println!(
            "| spawn + park {count} coroutines (per coroutine) | - | {may_cost} | {hub_cost} | |"
        );
    }

    println!();
    println!("| parked sockets | zmq_poll(0) per call | epoll_wait(0) per call |");
    println!("|---|---|---|");
    for n in [10, 100, 1000, 4000 / scale] {
        let (p, e) = wait_cost(n);
        println!("| {n} | {p:.2} us | {e:.2} us |");
    }
}
