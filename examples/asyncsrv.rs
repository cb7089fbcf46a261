//! zguide's asynchronous client/server (asyncsrv), written with `ZmqStream`s on `IOLoop`s:
//! DEALER clients send requests and collect replies by callback, a ROUTER frontend and a DEALER
//! backend are joined by stream callbacks, and DEALER workers answer each request with a few
//! replies. Everything runs on one thread per role, driven only by callbacks.
//!
//! `cargo run --release --example asyncsrv [clients] [requests-per-client]` (default 5 x 20).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use zmqloop::eventloop::{IOLoop, ZmqStream};
use zmqloop::green as zmq;

const REPLIES_PER_REQUEST: usize = 3;
const WORKERS: usize = 4;

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: usize = args.next().map_or(5, |a| a.parse().expect("clients"));
    let requests: usize = args.next().map_or(20, |a| a.parse().expect("requests"));
    let ctx = zmq::Context::new();

    // The server: frontend ROUTER <-> backend DEALER, glued by two stream callbacks.
    let frontend = ctx.socket(zmq::ROUTER).unwrap();
    frontend.bind("inproc://asyncsrv-frontend").unwrap();
    let backend = ctx.socket(zmq::DEALER).unwrap();
    backend.bind("inproc://asyncsrv-backend").unwrap();
    let server_ctx = ctx.clone();
    let server = std::thread::spawn(move || {
        let ioloop = IOLoop::new().unwrap();
        let front = ZmqStream::new(frontend, &ioloop).unwrap();
        let back = ZmqStream::new(backend, &ioloop).unwrap();
        let to_back = back.clone();
        front.on_recv(move |frames| to_back.send_multipart(frames));
        let to_front = front.clone();
        back.on_recv(move |frames| to_front.send_multipart(frames));

        // Workers: DEALERs on the same loop, each answering with a few replies.
        let _workers: Vec<ZmqStream> = (0..WORKERS)
            .map(|id| {
                let socket = server_ctx.socket(zmq::DEALER).unwrap();
                socket.connect("inproc://asyncsrv-backend").unwrap();
                let worker = ZmqStream::new(socket, &ioloop).unwrap();
                worker.on_recv_stream(move |worker, frames| {
                    // frames: [client identity, request]
                    for n in 0..REPLIES_PER_REQUEST {
                        let reply = format!(
                            "worker {id} reply {n} to {}",
                            String::from_utf8_lossy(&frames[1])
                        );
                        worker.send_multipart([frames[0].clone(), reply.into_bytes()]);
                    }
                });
                worker
            })
            .collect();
        // The server runs until the context is terminated (ETERM ends the loop quietly).
        ioloop.start().unwrap();
        ioloop.close();
    });

    // The clients: each a DEALER stream on one client loop, counting replies.
    let start = Instant::now();
    let ioloop = IOLoop::new().unwrap();
    let expected = clients * requests * REPLIES_PER_REQUEST;
    let received = Rc::new(Cell::new(0));
    let streams: Vec<ZmqStream> = (0..clients)
        .map(|id| {
            let socket = ctx.socket(zmq::DEALER).unwrap();
            socket
                .set_identity(format!("client-{id}").as_bytes())
                .unwrap();
            socket.connect("inproc://asyncsrv-frontend").unwrap();
            let stream = ZmqStream::new(socket, &ioloop).unwrap();
            let received = received.clone();
            let stopper = ioloop.clone();
            stream.on_recv(move |_reply| {
                received.set(received.get() + 1);
                if received.get() == expected {
                    stopper.stop();
                }
            });
            for n in 0..requests {
                stream.send(format!("request {n}"));
            }
            stream
        })
        .collect();
    let guard = ioloop.call_later(Duration::from_secs(30), {
        let stopper = ioloop.clone();
        move || stopper.stop()
    });
    ioloop.start().unwrap();
    guard.cancel();
    for stream in &streams {
        stream.close(None);
    }
    println!(
        "{clients} clients sent {} requests and got {} of {expected} replies from {WORKERS} workers in {:.1} ms",
        clients * requests,
        received.get(),
        start.elapsed().as_secs_f64() * 1e3
    );
    let mut ctx = ctx;
    ctx.destroy().unwrap(); // ends the server's loop with ETERM
    server.join().unwrap();
    assert_eq!(received.get(), expected, "replies lost");
}
