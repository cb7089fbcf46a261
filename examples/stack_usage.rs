//! Measures how much coroutine stack the green calls use, to back the stack-size contract in
//! `green/src/spawn.rs`.
//!
//! may reports a coroutine's real stack use when it exits if its stack size (in words) is odd;
//! this program runs the heaviest green paths in such coroutines and may prints one line per
//! coroutine: `coroutine name = Some("<path>"), stack size = <words>, used size = <words>`.
//!
//! `cargo run --release --example stack_usage` (also meaningful in debug builds, which use more).

use std::time::Duration;

use zmqloop::green as zmq;

/// An odd size turns on may's usage report; 0x2001 words = 64 KiB, far above the need.
const TRACKED_STACK_WORDS: usize = 0x2001;

fn tracked<F>(name: &str, f: F) -> may::coroutine::JoinHandle<()>
where
    F: FnOnce() + Send + 'static,
{
    let builder = may::coroutine::Builder::new()
        .name(name.to_string())
        .stack_size(TRACKED_STACK_WORDS);
    // SAFETY: the closures below keep no thread-local state across a park and fit the stack
    // by construction (that is what this program measures).
    unsafe { builder.spawn(f) }.expect("spawn")
}

fn main() {
    may::config().set_workers(1);
    let ctx = zmq::Context::new();

    // tcp REQ/REP loop with string conversions.
    let rep = ctx.socket(zmq::REP).unwrap();
    rep.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = rep.get_last_endpoint().unwrap().unwrap();
    let server = tracked("tcp REP recv/send loop", move || {
        for _ in 0..1000 {
            let request = rep.recv_string(0).unwrap().unwrap();
            rep.send(request.as_str(), 0).unwrap();
        }
    });
    let req = ctx.socket(zmq::REQ).unwrap();
    req.connect(&endpoint).unwrap();
    let client = tracked("tcp REQ send/recv loop", move || {
        for i in 0..1000 {
            req.send(format!("request {i}").as_str(), 0).unwrap();
            req.recv_string(0).unwrap().unwrap();
        }
    });
    server.join().unwrap();
    client.join().unwrap();

    // ROUTER/DEALER multipart envelopes over tcp.
    let router = ctx.socket(zmq::ROUTER).unwrap();
    router.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = router.get_last_endpoint().unwrap().unwrap();
    let server = tracked("tcp ROUTER multipart echo", move || {
        for _ in 0..1000 {
            let frames = router.recv_multipart(0).unwrap();
            router.send_multipart(frames, 0).unwrap();
        }
    });
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.connect(&endpoint).unwrap();
    let client = tracked("tcp DEALER multipart", move || {
        for i in 0..1000 {
            dealer
                .send_multipart(["", "header", &format!("body {i}")], 0)
                .unwrap();
            dealer.recv_multipart(0).unwrap();
        }
    });
    server.join().unwrap();
    client.join().unwrap();

    // A receive timeout expiring, then context termination from inside a coroutine.
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind("inproc://stack-usage").unwrap();
    pull.set_rcvtimeo(20).unwrap();
    let mut ctx_to_destroy = ctx;
    tracked("RCVTIMEO expiry and Context::destroy", move || {
        assert_eq!(pull.recv_bytes(0), Err(zmq::Error::EAGAIN));
        drop(pull);
        ctx_to_destroy.destroy().unwrap();
    })
    .join()
    .unwrap();

    // may prints its report as the coroutines are freed; give it a moment to flush.
    std::thread::sleep(Duration::from_millis(50));
    println!(
        "(sizes are in words of {} bytes; zmqloop::green::MIN_STACK_WORDS = {:#x})",
        std::mem::size_of::<usize>(),
        zmq::MIN_STACK_WORDS
    );
}
