//! A live log of socket monitor events while a client rides out a server restart.
//!
//! A DEALER client sends a ping every 100 ms to a ROUTER echo server over tcp; after three
//! replies the server goes away for half a second, then comes back on the same port and
//! answers three more. A coroutine prints the client's monitor events as they happen
//! (connect, handshake, disconnect, retries, reconnect), next to the pings and replies. The
//! servers and the event reader are green coroutines on may: the reader parks like any other
//! green receive.
//!
//! `cargo run --example monitor`

use std::time::{Duration, Instant};

use zmqloop::green as zmq;
use zmqloop::green::monitor::recv_monitor_message;

/// Prints `line` prefixed with the time since `start`.
fn log(start: Instant, line: &str) {
    println!("{:>6.3} s  {line}", start.elapsed().as_secs_f64());
}

/// Pings each server instance answers.
const PINGS_PER_SERVER: usize = 3;

/// An echo server on the bound socket `server` that answers `replies` requests, then closes.
fn serve(server: zmq::Socket, replies: usize) -> zmq::may::coroutine::JoinHandle<()> {
    zmq::spawn(move || {
        for _ in 0..replies {
            let request = server.recv_multipart(0).unwrap();
            server.send_multipart(request, 0).unwrap();
        }
    })
}

fn main() {
    zmq::may::config().set_workers(1);
    let start = Instant::now();
    let ctx = zmq::Context::new();

    // The first server takes an ephemeral port; the restarted one binds the same.
    let first_server = ctx.socket(zmq::ROUTER).unwrap();
    first_server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = first_server.get_last_endpoint().unwrap().unwrap();

    let client = ctx.socket(zmq::DEALER).unwrap();
    client.set_reconnect_ivl(100).unwrap();
    let events = client
        .get_monitor_socket(zmq::SocketEvent::ALL as i32)
        .unwrap();
    let printer = zmq::spawn(move || {
        // Ends with MONITOR_STOPPED, sent when the client disables its monitor.
        loop {
            match recv_monitor_message(&events, 0) {
                Ok(Ok(event)) => {
                    log(start, &format!("event   {event}"));
                    if event.event == zmq::SocketEvent::MONITOR_STOPPED {
                        break;
                    }
                }
                Ok(Err(malformed)) => log(start, &format!("odd     {malformed}")),
                Err(err) => return log(start, &format!("monitor ended: {err}")),
            }
        }
    });

    let mut server = Some(serve(first_server, PINGS_PER_SERVER));
    client.connect(&endpoint).unwrap();
    for round in 0..2 {
        if server.is_none() {
            let restarted = ctx.socket(zmq::ROUTER).unwrap();
            restarted.bind(&endpoint).unwrap();
            server = Some(serve(restarted, PINGS_PER_SERVER));
            log(start, "server  restarted on the same port");
        }
        for n in 1..=PINGS_PER_SERVER {
            let ping = format!("ping {}", round * PINGS_PER_SERVER + n);
            client.send(ping.as_str(), 0).unwrap();
            log(start, &format!("sent    {ping}"));
            let reply = client.recv_string(0).unwrap().unwrap();
            log(start, &format!("reply   {reply}"));
            zmq::may::coroutine::sleep(Duration::from_millis(100));
        }
        // It answered its pings and closed its socket.
        server.take().unwrap().join().unwrap();
        if round == 0 {
            log(start, "server  gone; back in 500 ms");
            zmq::may::coroutine::sleep(Duration::from_millis(500));
        }
    }
    client.disable_monitor().unwrap();
    printer.join().unwrap();
}
