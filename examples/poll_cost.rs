//! What one green wait costs with N sockets in the poll set: a `Poller` kept between calls
//! against a one-shot `zmq::poll` over the same items, inside a may coroutine. Each round, a
//! peer coroutine sends one message to one socket of the set; the poller wakes, the message is
//! read. Prints microseconds per round for N = 10, 100, 1000, and the cost of the bare
//! `zmq_poll(items, 0)` readiness check over N items, the part no poller can avoid.
//!
//! `cargo run --release --example poll_cost`

use std::time::Instant;

use zmqloop::green as zmq;

const ROUNDS: usize = 2000;

fn sockets(ctx: &zmq::Context, n: usize, tag: &str) -> (Vec<zmq::Socket>, zmq::Socket) {
    let pulls: Vec<_> = (0..n)
        .map(|i| {
            let s = ctx.socket(zmq::PULL).unwrap();
            s.bind(&format!("inproc://cost-{tag}-{n}-{i}")).unwrap();
            s
        })
        .collect();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&format!("inproc://cost-{tag}-{n}-{}", n / 2))
        .unwrap();
    (pulls, push)
}

/// Microseconds per round: (Poller kept across calls, one-shot poll, bare zmq_poll check).
fn measure(n: usize) -> (f64, f64, f64) {
    let ctx = zmq::Context::new();
    ctx.set_max_sockets(2 * n as i32 + 64).unwrap();
    let (pulls, push) = sockets(&ctx, n, "a");
    let (go_tx, go_rx) = zmq::may::sync::mpsc::channel::<bool>();
    let sender = zmq::spawn(move || {
        while let Ok(true) = go_rx.recv() {
            push.send("x", 0).unwrap();
        }
    });
    let target = n / 2;
    let waiter = zmq::spawn(move || {
        let mut poller = zmq::Poller::new();
        for s in &pulls {
            poller.register(s, zmq::POLLIN).unwrap();
        }
        let start = Instant::now();
        for _ in 0..ROUNDS {
            go_tx.send(true).unwrap();
            assert_eq!(poller.poll(-1).unwrap(), 1);
            pulls[target].recv_bytes(0).unwrap();
        }
        let kept = start.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64;

        let start = Instant::now();
        for _ in 0..ROUNDS {
            go_tx.send(true).unwrap();
            let mut items: Vec<_> = pulls.iter().map(|s| s.as_poll_item(zmq::POLLIN)).collect();
            assert_eq!(zmq::poll(&mut items, -1).unwrap(), 1);
            pulls[target].recv_bytes(0).unwrap();
        }
        let one_shot = start.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64;

        let mut items: Vec<_> = pulls.iter().map(|s| s.as_poll_item(zmq::POLLIN)).collect();
        let start = Instant::now();
        for _ in 0..ROUNDS {
            assert_eq!(zmq::poll(&mut items, 0).unwrap(), 0);
        }
        let check = start.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64;
        go_tx.send(false).unwrap();
        (kept, one_shot, check)
    });
    let result = waiter.join().unwrap();
    sender.join().unwrap();
    result
}

fn main() {
    zmq::may::config().set_workers(1);
    println!("| sockets in the set | Poller (kept) per wake | one-shot poll per wake | zmq_poll(0) check alone |");
    println!("|---|---|---|---|");
    for n in [10, 100, 1000] {
        let (kept, one_shot, check) = measure(n);
        println!("| {n} | {kept:.1} us | {one_shot:.1} us | {check:.1} us |");
    }
}
