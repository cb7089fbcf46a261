//! The readiness rule across every socket type, on may (one worker) and on the hub: a send or
//! receive that cannot complete parks (the process's CPU time stays near idle over the wait),
//! gives up with EAGAIN when its timeout passes (within 100 ms of it), and completes once a peer
//! makes room, the peer running on the same worker or hub thread as the waiting call (a call
//! that spun would starve it and hang the test).
//!
//! The weak rows of the rule's table are all here: ROUTER with `ROUTER_MANDATORY` sending to a
//! full peer while another has room, STREAM sending to a full peer, PUB and XPUB with
//! `XPUB_NODROP` sending to a full subscriber: each reports POLLOUT while its send fails.
//!
//! Alone in its test binary, and the cases run one at a time, so that the process's CPU time
//! measures the waiting call only.

mod common;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::full::{
    fill, fill_stream, full_nodrop_publisher, full_router_mandatory, read_bytes, socket,
    stream_to_raw_peer, FullRouter,
};
use common::{inproc, zmq, LIMIT};
use zmqloop_fixtures::measure::cpu_time;

/// The RCVTIMEO/SNDTIMEO of the timed wait.
const TIMEOUT: Duration = Duration::from_millis(200);
/// How late past its timeout a call may return.
const LATE: Duration = Duration::from_millis(100);

/// What a peer leaves to do once the blocked call has completed: check what it received, and
/// close its sockets.
type Finish = Box<dyn FnOnce() + Send>;

/// One scenario: a call that cannot complete until `peer` makes room.
struct Case {
    /// The blocked call, with its RCVTIMEO/SNDTIMEO set to the given ms (-1: none) first.
    op: Op,
    /// Makes room (or sends what the call waits for), parking like any green code; runs as a
    /// coroutine or hub task beside the blocked call.
    peer: Box<dyn FnOnce() -> Finish + Send>,
}

/// Sets a case up on a context.
type MakeCase = fn(&zmq::Context) -> Case;

/// The cases, by name.
const CASES: &[(&str, MakeCase)] = &[
    ("PAIR send to a full peer", pair_send),
    ("PUSH send to a full peer", push_send),
    ("PULL recv with nothing queued", pull_recv),
    ("DEALER send with no peer", dealer_send),
    ("REQ send with no peer", req_send),
    ("REQ recv awaiting its reply", req_recv),
    ("REP recv with no request", rep_recv),
    ("ROUTER recv with nothing queued", router_recv),
    (
        "ROUTER_MANDATORY send to a full peer",
        router_mandatory_send,
    ),
    ("STREAM send to a full tcp peer", stream_send),
    ("STREAM recv with nothing sent", stream_recv),
    (
        "PUB with XPUB_NODROP send to a full subscriber",
        pub_nodrop_send,
    ),
    (
        "XPUB with XPUB_NODROP send to a full subscriber",
        xpub_nodrop_send,
    ),
    ("XPUB recv with no subscription", xpub_recv),
    ("SUB recv with nothing published", sub_recv),
    ("XSUB recv with nothing published", xsub_recv),
];

/// The cases whose name contains `MATRIX_ONLY` (all by default), to run one while debugging.
fn selected() -> impl Iterator<Item = &'static (&'static str, MakeCase)> {
    let only = std::env::var("MATRIX_ONLY").unwrap_or_default();
    CASES.iter().filter(move |(name, _)| name.contains(&only))
}

/// One case at a time in this binary: the CPU time is the process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn every_socket_type_parks_times_out_and_completes_on_may() {
    for (name, make) in selected() {
        let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        common::run_within(LIMIT, move || {
            let ctx = zmq::Context::new();
            let Case { mut op, peer } = make(&ctx);
            check_timed_wait(name, &mut op);
            let peer = zmq::spawn(peer); // same (only) worker as this coroutine
            op(-1).unwrap_or_else(|err| panic!("{name}: {err}"));
            common::join(peer)();
        });
    }
}

#[test]
fn every_socket_type_parks_times_out_and_completes_on_the_hub() {
    for (name, make) in selected() {
        let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        common::on_thread(LIMIT, move || {
            let hub = zmq::hub::Hub::new().unwrap();
            let ctx = zmq::Context::new();
            let Case { mut op, peer } = make(&ctx);
            hub.block_on(move || {
                check_timed_wait(name, &mut op);
                let peer = zmq::hub::spawn(peer); // same hub thread as this task
                op(-1).unwrap_or_else(|err| panic!("{name}: {err}"));
                peer.join().unwrap()();
            });
        });
    }
}

/// The call with a timeout: EAGAIN, on time, and (almost) no CPU used while it waited.
fn check_timed_wait(name: &str, op: &mut dyn FnMut(i32) -> zmq::Result<()>) {
    let cpu = cpu_time();
    let start = Instant::now();
    let outcome = op(TIMEOUT.as_millis() as i32);
    let waited = start.elapsed();
    let used = cpu_time() - cpu;
    eprintln!("{name}: timed out after {waited:?}, using {used:?} of CPU");
    assert_eq!(outcome, Err(zmq::Error::EAGAIN), "{name}");
    assert!(
        waited >= TIMEOUT,
        "{name}: returned early, after {waited:?}"
    );
    assert!(
        waited < TIMEOUT + LATE,
        "{name}: timed out late, after {waited:?}"
    );
    // Parked, the process idles (well under 10 ms here); a spinning call burns the whole wait.
    assert!(
        used < waited / 4,
        "{name}: used {used:?} of CPU while waiting {waited:?}: it spins"
    );
}

/// A pair of sockets over inproc whose pipe holds about two messages.
fn tight_pair(
    ctx: &zmq::Context,
    a: zmq::SocketType,
    b: zmq::SocketType,
) -> (zmq::Socket, zmq::Socket) {
    let endpoint = inproc("matrix");
    let (a, b) = (socket(ctx, a), socket(ctx, b));
    a.set_sndhwm(1).unwrap();
    b.set_rcvhwm(1).unwrap();
    a.bind(&endpoint).unwrap();
    b.connect(&endpoint).unwrap();
    (a, b)
}

/// Receives `count` messages, then one whose last frame is `last`.
fn drain(socket: &zmq::Socket, count: usize, last: &[u8]) {
    for _ in 0..count {
        socket.recv_multipart(0).unwrap();
    }
    let parts = socket.recv_multipart(0).unwrap();
    assert_eq!(parts.last().map(Vec::as_slice), Some(last));
}

type Op = Box<dyn FnMut(i32) -> zmq::Result<()> + Send>;

fn send_op(socket: zmq::Socket, parts: &[&[u8]]) -> Op {
    let parts: Vec<Vec<u8>> = parts.iter().map(|part| part.to_vec()).collect();
    Box::new(move |timeout| {
        socket.set_sndtimeo(timeout)?;
        socket.send_multipart(parts.iter().map(Vec::as_slice), 0)
    })
}

fn recv_op(socket: zmq::Socket, expected: &'static [u8]) -> Op {
    Box::new(move |timeout| {
        socket.set_rcvtimeo(timeout)?;
        let parts = socket.recv_multipart(0)?;
        assert_eq!(parts.last().map(Vec::as_slice), Some(expected));
        Ok(())
    })
}

/// A [`Finish`] that only closes what it is given.
fn keep<T: Send + 'static>(value: T) -> Finish {
    Box::new(move || drop(value))
}

fn pair_send(ctx: &zmq::Context) -> Case {
    let (a, b) = tight_pair(ctx, zmq::PAIR, zmq::PAIR);
    let queued = fill(&a, &[b"x"]);
    Case {
        op: send_op(a, &[b"last"]),
        peer: Box::new(move || {
            drain(&b, queued, b"last");
            keep(b)
        }),
    }
}

fn push_send(ctx: &zmq::Context) -> Case {
    let (push, pull) = tight_pair(ctx, zmq::PUSH, zmq::PULL);
    let queued = fill(&push, &[b"x"]);
    Case {
        op: send_op(push, &[b"last"]),
        peer: Box::new(move || {
            drain(&pull, queued, b"last");
            keep(pull)
        }),
    }
}

fn pull_recv(ctx: &zmq::Context) -> Case {
    let (pull, push) = tight_pair(ctx, zmq::PULL, zmq::PUSH);
    Case {
        op: recv_op(pull, b"job"),
        peer: Box::new(move || {
            push.send("job", 0).unwrap();
            keep(push)
        }),
    }
}

/// A socket bound to a fresh inproc endpoint that nothing connects to until the peer does.
fn lonely(ctx: &zmq::Context, kind: zmq::SocketType) -> (zmq::Socket, String) {
    let endpoint = inproc("lonely");
    let socket = socket(ctx, kind);
    socket.bind(&endpoint).unwrap();
    (socket, endpoint)
}

fn dealer_send(ctx: &zmq::Context) -> Case {
    let (dealer, endpoint) = lonely(ctx, zmq::DEALER);
    let ctx = ctx.clone();
    Case {
        op: send_op(dealer, &[b"hello"]),
        peer: Box::new(move || {
            let router = socket(&ctx, zmq::ROUTER);
            router.connect(&endpoint).unwrap();
            assert_eq!(router.recv_multipart(0).unwrap()[1], b"hello");
            keep(router)
        }),
    }
}

fn req_send(ctx: &zmq::Context) -> Case {
    let (req, endpoint) = lonely(ctx, zmq::REQ);
    let ctx = ctx.clone();
    Case {
        op: send_op(req, &[b"request"]),
        peer: Box::new(move || {
            let rep = socket(&ctx, zmq::REP);
            rep.connect(&endpoint).unwrap();
            assert_eq!(rep.recv_bytes(0).unwrap(), b"request");
            keep(rep)
        }),
    }
}

fn req_recv(ctx: &zmq::Context) -> Case {
    let (rep, req) = tight_pair(ctx, zmq::REP, zmq::REQ);
    req.send("request", 0).unwrap();
    Case {
        op: recv_op(req, b"reply"),
        peer: Box::new(move || {
            assert_eq!(rep.recv_bytes(0).unwrap(), b"request");
            rep.send("reply", 0).unwrap();
            keep(rep)
        }),
    }
}

fn rep_recv(ctx: &zmq::Context) -> Case {
    let (rep, req) = tight_pair(ctx, zmq::REP, zmq::REQ);
    Case {
        op: recv_op(rep, b"request"),
        peer: Box::new(move || {
            req.send("request", 0).unwrap();
            keep(req)
        }),
    }
}

fn router_recv(ctx: &zmq::Context) -> Case {
    let (router, dealer) = tight_pair(ctx, zmq::ROUTER, zmq::DEALER);
    Case {
        op: recv_op(router, b"hello"),
        peer: Box::new(move || {
            dealer.send("hello", 0).unwrap();
            keep(dealer)
        }),
    }
}

fn router_mandatory_send(ctx: &zmq::Context) -> Case {
    let FullRouter {
        router,
        slow,
        fast,
        queued,
    } = full_router_mandatory(ctx);
    Case {
        op: send_op(router, &[b"slow", b"last"]),
        peer: Box::new(move || {
            drain(&slow, queued, b"last");
            keep((slow, fast))
        }),
    }
}

fn stream_send(ctx: &zmq::Context) -> Case {
    const CHUNK: usize = 64 * 1024;
    let (stream, id, mut raw) = stream_to_raw_peer(ctx);
    let chunk = vec![7u8; CHUNK];
    let queued = fill_stream(&stream, &id, &chunk);
    Case {
        op: send_op(stream, &[&id, &chunk]),
        peer: Box::new(move || {
            // A plain thread reads the raw socket (a std read would block a coroutine's
            // thread); it takes everything the STREAM socket sends, the blocked chunk included.
            let reader = std::thread::spawn(move || -> std::net::TcpStream {
                read_bytes(&mut raw, (queued + 1) * CHUNK);
                raw
            });
            Box::new(move || drop(reader.join().unwrap()))
        }),
    }
}

fn stream_recv(ctx: &zmq::Context) -> Case {
    let (stream, _id, raw) = stream_to_raw_peer(ctx);
    Case {
        op: recv_op(stream, b"raw bytes"),
        peer: Box::new(move || {
            std::io::Write::write_all(&mut &raw, b"raw bytes").unwrap();
            keep(raw)
        }),
    }
}

fn nodrop_send(ctx: &zmq::Context, kind: zmq::SocketType) -> Case {
    let (publisher, subscriber, queued) = full_nodrop_publisher(ctx, kind);
    Case {
        op: send_op(publisher, &[b"last"]),
        peer: Box::new(move || {
            drain(&subscriber, queued, b"last");
            keep(subscriber)
        }),
    }
}

fn pub_nodrop_send(ctx: &zmq::Context) -> Case {
    nodrop_send(ctx, zmq::PUB)
}

fn xpub_nodrop_send(ctx: &zmq::Context) -> Case {
    nodrop_send(ctx, zmq::XPUB)
}

fn xpub_recv(ctx: &zmq::Context) -> Case {
    let (xpub, endpoint) = lonely(ctx, zmq::XPUB);
    let ctx = ctx.clone();
    Case {
        op: recv_op(xpub, b"\x01news"),
        peer: Box::new(move || {
            let sub = socket(&ctx, zmq::SUB);
            sub.set_subscribe(b"news").unwrap();
            sub.connect(&endpoint).unwrap();
            keep(sub)
        }),
    }
}

/// An XPUB and a subscriber socket of `kind` connected to it, the subscription in effect.
fn subscribed(ctx: &zmq::Context, kind: zmq::SocketType) -> (zmq::Socket, zmq::Socket) {
    let (xpub, endpoint) = lonely(ctx, zmq::XPUB);
    let subscriber = socket(ctx, kind);
    subscriber.connect(&endpoint).unwrap();
    if kind == zmq::SUB {
        subscriber.set_subscribe(b"").unwrap();
    } else {
        subscriber.send(b"\x01" as &[u8], 0).unwrap();
    }
    assert_eq!(xpub.recv_bytes(0).unwrap(), b"\x01");
    (xpub, subscriber)
}

fn sub_recv(ctx: &zmq::Context) -> Case {
    let (xpub, sub) = subscribed(ctx, zmq::SUB);
    Case {
        op: recv_op(sub, b"news"),
        peer: Box::new(move || {
            xpub.send("news", 0).unwrap();
            keep(xpub)
        }),
    }
}

fn xsub_recv(ctx: &zmq::Context) -> Case {
    let (xpub, xsub) = subscribed(ctx, zmq::XSUB);
    Case {
        op: recv_op(xsub, b"news"),
        peer: Box::new(move || {
            xpub.send("news", 0).unwrap();
            keep(xpub)
        }),
    }
}

#[test]
fn sends_that_libzmq_never_blocks_return_at_once_even_at_the_high_water_mark() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // PUB drops for a full subscriber, ROUTER for a full or unknown peer, XSUB at its
    // high-water mark: none of these sends may park (one that did would hang past the limit).
    common::run_within(Duration::from_secs(10), || {
        let ctx = zmq::Context::new();
        let (publisher, sub) = tight_pair(&ctx, zmq::PUB, zmq::SUB);
        sub.set_subscribe(b"").unwrap();
        let (router, _dealer) = tight_pair(&ctx, zmq::ROUTER, zmq::DEALER);
        let (xsub, _xpub) = tight_pair(&ctx, zmq::XSUB, zmq::XPUB);
        for _ in 0..100 {
            publisher.send("dropped when full", 0).unwrap();
            router.send_multipart(["nobody", "dropped"], 0).unwrap();
            xsub.send("upstream", 0).unwrap();
        }
    });
}
