//! Memory over a long churn of sockets: `cycles` times, create a PULL/PUSH pair over inproc,
//! park a receive on the PULL until a helper sends on the PUSH, close both; print the process's
//! resident memory every tenth of the run (CSV: cycles, KiB, seconds).
//!
//! `cargo run --release --example churn -- [cycles] [thread|may|hub] [fallback-ms]` (default
//! 200000, may, the default fallback interval); `CHURN_REST_S=3` adds a last line after that
//! many idle seconds. On a plain thread the receive blocks; on may and on the hub it parks
//! through the scheduler seam (one registration and, under may, one timer slot per socket).
//!
//! The loop keeps pace with libzmq's reaper, which closes sockets asynchronously: created
//! faster than it reaps, sockets pile up (each with its pipes and its fd) until `EMFILE`, with
//! plain `zmq` on a plain thread too. What it showed (2026-12-02, 2 cores): every side grows
//! by 21-23 MB (the reaper's backlog) and then stays flat; may's side grows a few MB more with
//! glibc's per-thread arenas (allocated on may's worker, freed on the reaper) and the same with
//! `MALLOC_ARENA_MAX=1`; a fallback interval of 100 s instead of 2 s keeps every closed
//! socket's timer slot until its next check, and the memory grows with the run.

use std::time::Instant;

use zmqloop::green as zmq;
use zmqloop_fixtures::measure::rss_kib;

/// One create/connect/use/close cycle: a receive that parks until the helper sends.
fn cycle(ctx: &zmq::Context, n: usize, send: &dyn Fn(zmq::Socket)) {
    let endpoint = format!("inproc://churn-{n}");
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind(&endpoint).unwrap();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&endpoint).unwrap();
    send(push);
    assert_eq!(pull.recv_bytes(0).unwrap(), b"ping");
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Cycles as fast as libzmq's reaper closes sockets: past `BACKLOG` sockets closed but not yet
/// reaped (each holds its notification fd), waits for the reaper. Creating faster than it
/// reaps ends in EMFILE, on plain threads as in coroutines.
const BACKLOG: usize = 1000;

fn run(cycles: usize, send: &dyn Fn(zmq::Socket), pause: &dyn Fn()) {
    let ctx = zmq::Context::new();
    ctx.set_max_sockets(8192).unwrap();
    let start = Instant::now();
    let base_fds = open_fds();
    println!("cycles,rss_kib,seconds");
    println!("0,{},0", rss_kib());
    for n in 1..=cycles {
        if n % 100 == 0 {
            while open_fds() > base_fds + BACKLOG {
                pause();
            }
        }
        cycle(&ctx, n, send);
        if n % (cycles / 10).max(1) == 0 {
            println!("{n},{},{:.1}", rss_kib(), start.elapsed().as_secs_f64());
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let cycles: usize = args.next().map_or(200_000, |a| a.parse().expect("cycles"));
    let side = args.next().unwrap_or_else(|| "may".into());
    if let Some(ms) = args.next() {
        let ms = ms.parse().expect("fallback-ms");
        zmq::fallback::set_fallback_interval(std::time::Duration::from_millis(ms));
    }
    match side.as_str() {
        "thread" => {
            let (tx, rx) = std::sync::mpsc::channel::<zmq::Socket>();
            std::thread::spawn(move || {
                for push in rx {
                    push.send("ping", 0).unwrap();
                }
            });
            let pause = || std::thread::sleep(std::time::Duration::from_millis(1));
            run(cycles, &move |push| tx.send(push).unwrap(), &pause);
        }
        "may" => {
            may::config().set_workers(1);
            zmq::spawn(move || {
                let (tx, rx) = may::sync::mpsc::channel::<zmq::Socket>();
                zmq::spawn(move || {
                    while let Ok(push) = rx.recv() {
                        push.send("ping", 0).unwrap();
                    }
                });
                let pause = || may::coroutine::sleep(std::time::Duration::from_millis(1));
                run(cycles, &move |push| tx.send(push).unwrap(), &pause)
            })
            .join()
            .unwrap();
        }
        "hub" => {
            let hub = zmq::hub::Hub::new().unwrap();
            hub.block_on(move || {
                let pause = || zmq::hub::sleep(std::time::Duration::from_millis(1));
                let send = |push: zmq::Socket| {
                    zmq::hub::spawn(move || push.send("ping", 0).unwrap());
                };
                run(cycles, &send, &pause)
            });
        }
        other => panic!("unknown side {other}: thread, may or hub"),
    }
    if let Ok(seconds) = std::env::var("CHURN_REST_S") {
        std::thread::sleep(std::time::Duration::from_secs(seconds.parse().unwrap()));
        println!("rested,{},", rss_kib());
    }
}
