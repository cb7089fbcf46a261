//! An `IOLoop` and plain green coroutines working together on may: the loop runs inside a
//! coroutine (`zmqloop::green::eventloop`), so while it waits it parks only that coroutine, and
//! ordinary coroutines doing blocking-style green calls share the same worker threads with it.
//!
//! `cargo run --release --example ioloop_green`

use std::time::Duration;

use zmqloop::green as zmq;
use zmqloop::green::eventloop::{IOLoop, PeriodicCallback, ZmqStream};

fn main() {
    may::config().set_workers(1); // one worker: the loop and the coroutines must take turns
    let ctx = zmq::Context::new();
    let server = ctx.socket(zmq::ROUTER).unwrap();
    server.bind("inproc://ioloop-green").unwrap();

    // The callback-style side: an echo stream and a periodic status line, in one coroutine.
    let looper = zmq::spawn(move || {
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(server, &ioloop).unwrap();
        let echoed = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = echoed.clone();
        let stopper = ioloop.clone();
        stream.on_recv_stream(move |stream, frames| {
            counter.set(counter.get() + 1);
            if frames[1] == b"bye" {
                stopper.stop();
            }
            stream.send_multipart(frames);
        });
        let status = PeriodicCallback::new(&ioloop, Duration::from_millis(20), || {
            println!("  [ioloop] still serving");
        });
        status.start();
        ioloop.start().unwrap();
        status.stop();
        echoed.get()
    });

    // The blocking-style side: coroutines with REQ-like DEALER round trips.
    let clients: Vec<_> = (0..10)
        .map(|id| {
            let dealer = ctx.socket(zmq::DEALER).unwrap();
            dealer.connect("inproc://ioloop-green").unwrap();
            zmq::spawn(move || {
                for n in 0..20 {
                    let body = format!("client {id} message {n}");
                    dealer.send(body.as_str(), 0).unwrap();
                    assert_eq!(dealer.recv_string(0).unwrap().unwrap(), body);
                    zmq::may::coroutine::sleep(Duration::from_millis(1));
                }
                dealer
            })
        })
        .collect();
    let dealers: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    dealers[0].send("bye", 0).unwrap();
    dealers[0].recv_bytes(0).unwrap();
    let echoed = looper.join().unwrap();
    println!(
        "the IOLoop coroutine echoed {echoed} messages for 10 coroutine clients on one may worker"
    );
}
