//! The README demo: thousands of green clients and a pool of green workers, all coroutines on
//! may, behind one ROUTER front end over tcp. Prints what it did: clients served, requests per
//! second, round-trip latency percentiles, and how many OS threads did the work.
//!
//! `cargo run --release --example demo [clients] [requests-per-client]` (default 2000 x 20).

use std::time::{Duration, Instant};

use zmqloop::green as zmq;

fn main() -> Result<(), zmq::Error> {
    let mut args = std::env::args().skip(1);
    let clients: usize = args
        .next()
        .map_or(2000, |a| a.parse().expect("clients: a number"));
    let requests: usize = args
        .next()
        .map_or(20, |a| a.parse().expect("requests: a number"));
    let workers = 2;
    may::config().set_workers(workers);

    let ctx = zmq::Context::new();
    ctx.set_max_sockets(clients as i32 + 64)?;
    let frontend = ctx.socket(zmq::ROUTER)?;
    frontend.set_backlog(clients as i32)?; // all clients connect at once
    frontend.bind("tcp://127.0.0.1:*")?;
    let endpoint = frontend.get_last_endpoint()?.expect("utf-8 endpoint");
    println!("zmqloop demo: {clients} green clients x {requests} requests -> ROUTER at {endpoint}");

    // The server: one coroutine that answers every request with its reversed body.
    let total = clients * requests;
    let server = zmq::spawn(move || -> zmq::Result<()> {
        for _ in 0..total {
            let mut frames = frontend.recv_multipart(0)?;
            let body = frames.last_mut().expect("a body frame");
            body.reverse();
            frontend.send_multipart(frames, 0)?;
        }
        Ok(())
    });

    // The clients: one coroutine each, written exactly like blocking zmq code.
    let start = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|id| {
            let ctx = ctx.clone();
            let endpoint = endpoint.clone();
            zmq::spawn(move || -> zmq::Result<Vec<Duration>> {
                let socket = ctx.socket(zmq::REQ)?;
                socket.connect(&endpoint)?;
                let mut latencies = Vec::with_capacity(requests);
                for n in 0..requests {
                    let body = format!("client {id} request {n}");
                    let sent = Instant::now();
                    socket.send(body.as_str(), 0)?;
                    let reply = socket.recv_bytes(0)?;
                    latencies.push(sent.elapsed());
                    assert_eq!(reply, body.bytes().rev().collect::<Vec<u8>>());
                }
                Ok(latencies)
            })
        })
        .collect();

    let mut latencies = Vec::with_capacity(total);
    for handle in handles {
        latencies.extend(handle.join().expect("client panicked")?);
    }
    server.join().expect("server panicked")?;
    let elapsed = start.elapsed();

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "served {total} requests from {clients} clients in {:.2} s: {:.0} req/s",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "round trip: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "{} coroutines ran on {workers} may worker threads; missed edges: {}",
        clients + 1,
        zmq::fallback::missed_edges()
    );
    Ok(())
}
