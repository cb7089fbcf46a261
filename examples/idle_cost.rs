//! Measures what idle parked green sockets cost: N coroutines each parked in `recv` on its own
//! socket with no traffic, for a fixed window; prints the process CPU time over the window as a
//! share of one core, and the fallback wake-ups per second that cost comes from.
//!
//! `cargo run --release --example idle_cost [sockets] [seconds] [fallback-ms] [may-tick-ms]`
//! (default 10000 sockets, 20 s, the default fallback interval, may's default idle tick).
//!
//! Most of what remains is may's own: each worker wakes from `epoll_wait` every 10 ms when idle
//! (may's `config().set_timeout_ns`, its load-balancing tick). `idle_cost 1` measures that
//! baseline; `idle_cost 10000 20 100000000` turns the fallback checks off, so the difference is
//! the checks' cost; the fourth argument changes may's tick.

use std::time::{Duration, Instant};

use zmqloop::green as zmq;
use zmqloop_fixtures::measure::cpu_time;

fn main() {
    let mut args = std::env::args().skip(1);
    let sockets: usize = args.next().map_or(10_000, |a| a.parse().expect("sockets"));
    let seconds: u64 = args.next().map_or(20, |a| a.parse().expect("seconds"));
    if let Some(ms) = args.next() {
        zmq::fallback::set_fallback_interval(Duration::from_millis(ms.parse().expect("ms")));
    }
    if let Some(ms) = args.next() {
        let ms: u64 = ms.parse().expect("may-tick-ms");
        may::config().set_timeout_ns(ms * 1_000_000);
    }
    may::config().set_workers(2);
    let ctx = zmq::Context::new();
    ctx.set_max_sockets(sockets as i32 + 16).unwrap();

    let (parked_tx, parked_rx) = std::sync::mpsc::channel();
    let handles: Vec<_> = (0..sockets)
        .map(|i| {
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.bind(&format!("inproc://idle-{i}")).unwrap();
            let parked_tx = parked_tx.clone();
            zmq::spawn(move || {
                parked_tx.send(()).unwrap();
                let outcome = pull.recv_bytes(0);
                assert_eq!(outcome, Err(zmq::Error::ETERM));
            })
        })
        .collect();
    for _ in 0..sockets {
        parked_rx.recv().unwrap();
    }
    std::thread::sleep(Duration::from_millis(500)); // let the last ones reach their park

    let cpu_before = cpu_time();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let cpu = cpu_time() - cpu_before;
    let wall = start.elapsed();

    let interval = zmq::fallback::fallback_interval();
    println!(
        "{sockets} idle parked sockets for {:.1} s: {:.3}% of one core ({:?} CPU); \
         fallback interval {interval:?} = {:.0} fd checks/s; may idle tick {} ms; missed edges {}",
        wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        cpu,
        sockets as f64 / interval.as_secs_f64(),
        may::config().get_timeout_ns() / 1_000_000,
        zmq::fallback::missed_edges()
    );

    let mut ctx = ctx;
    ctx.destroy().unwrap();
    for handle in handles {
        handle.join().unwrap();
    }
}
