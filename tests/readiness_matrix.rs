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
use std::io::Read;
use std::os::raw::{c_int, c_void};
use std::os::unix::io::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// A socket that drops what it still holds when closed (no test waits for its linger).
fn socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let socket = ctx.socket(kind).unwrap();
    socket.set_linger(0).unwrap();
    socket
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

/// Sends `parts` with DONTWAIT until the socket refuses even with its commands processed (a
/// reader's "room again" may still wait in its mailbox); how many messages went.
fn fill(socket: &zmq::Socket, parts: &[&[u8]]) -> usize {
    let mut sent = 0;
    let mut refused_after_events = false;
    loop {
        match socket.send_multipart(parts, zmq::DONTWAIT) {
            Ok(()) => {
                sent += 1;
                refused_after_events = false;
            }
            Err(zmq::Error::EAGAIN) if refused_after_events => return sent,
            Err(zmq::Error::EAGAIN) => {
                socket.get_events().unwrap(); // processes the pending commands
                refused_after_events = true;
            }
            Err(err) => panic!("filling: {err}"),
        }
    }
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
    let endpoint = inproc("mandatory");
    let router = socket(ctx, zmq::ROUTER);
    router.set_router_mandatory(true).unwrap();
    router.set_sndhwm(1).unwrap();
    router.bind(&endpoint).unwrap();
    let peer = |identity: &str| {
        let dealer = socket(ctx, zmq::DEALER);
        dealer.set_identity(identity.as_bytes()).unwrap();
        dealer.set_rcvhwm(1).unwrap();
        dealer.connect(&endpoint).unwrap();
        dealer.send("hello", 0).unwrap();
        dealer
    };
    let (slow, fast) = (peer("slow"), peer("fast"));
    // Once both hellos are in, the router knows both peers.
    for _ in 0..2 {
        router.recv_multipart(0).unwrap();
    }
    let queued = fill(&router, &[b"slow", b"x"]);
    assert!(
        router.get_events().unwrap().contains(zmq::POLLOUT),
        "the case needs POLLOUT set (the fast peer has room) while the slow one is full"
    );
    Case {
        op: send_op(router, &[b"slow", b"last"]),
        peer: Box::new(move || {
            drain(&slow, queued, b"last");
            keep((slow, fast))
        }),
    }
}

/// A plain tcp listener with a small receive buffer, and its port.
fn raw_listener() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let small: c_int = 4096;
    // SAFETY: sets an int option on a socket this test owns, from a valid int; accepted sockets
    // inherit it.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&small as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// A STREAM socket connected to a plain tcp peer, with the peer's routing id.
fn stream_to_raw_peer(ctx: &zmq::Context) -> (zmq::Socket, Vec<u8>, std::net::TcpStream) {
    let (listener, port) = raw_listener();
    let stream = socket(ctx, zmq::STREAM);
    stream.set_sndbuf(4096).unwrap();
    stream.set_sndhwm(1).unwrap();
    stream.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    let (raw, _) = listener.accept().unwrap();
    // A STREAM socket announces a new connection as [routing id, empty frame].
    let hello = stream.recv_multipart(0).unwrap();
    assert_eq!(hello[1], b"");
    (stream, hello[0].clone(), raw)
}

fn stream_send(ctx: &zmq::Context) -> Case {
    const CHUNK: usize = 64 * 1024;
    let (stream, id, mut raw) = stream_to_raw_peer(ctx);
    let chunk = vec![7u8; CHUNK];
    // Full means: a send that could not go for 100 ms (libzmq's I/O thread keeps moving data
    // into the kernel's buffers until they are full, so DONTWAIT alone stops too early).
    stream.set_sndtimeo(100).unwrap();
    let mut queued = 0;
    while stream.send_multipart([&id[..], &chunk[..]], 0).is_ok() {
        queued += 1;
    }
    Case {
        op: send_op(stream, &[&id, &chunk]),
        peer: Box::new(move || {
            // A plain thread reads the raw socket (a std read would block a coroutine's
            // thread); it takes everything the STREAM socket sends, the blocked chunk included.
            let reader = std::thread::spawn(move || -> std::net::TcpStream {
                let want = (queued + 1) * CHUNK;
                let mut buffer = vec![0u8; CHUNK];
                let mut got = 0;
                while got < want {
                    match raw.read(&mut buffer).unwrap() {
                        0 => panic!("the STREAM peer closed after {got} of {want} bytes"),
                        n => got += n,
                    }
                }
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

/// `ZMQ_XPUB_NODROP` (not in `zmq` 0.10's API): sends at a subscriber's high-water mark fail
/// with EAGAIN instead of dropping the message.
fn set_xpub_nodrop(socket: &mut zmq::Socket) {
    let on: c_int = 1;
    // SAFETY: sets an int option on a live socket this test owns, from a valid int.
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_NODROP as c_int,
            (&on as *const c_int).cast::<c_void>(),
            std::mem::size_of::<c_int>(),
        )
    };
    assert_eq!(rc, 0, "ZMQ_XPUB_NODROP");
}

/// A publisher with `XPUB_NODROP` and a subscriber to everything whose pipe holds about two
/// messages, with the subscription in effect.
fn nodrop_publisher(ctx: &zmq::Context, kind: zmq::SocketType) -> (zmq::Socket, zmq::Socket) {
    let endpoint = inproc("nodrop");
    let mut publisher = socket(ctx, kind);
    set_xpub_nodrop(&mut publisher);
    publisher.set_sndhwm(1).unwrap();
    publisher.bind(&endpoint).unwrap();
    let subscriber = socket(ctx, zmq::SUB);
    subscriber.set_rcvhwm(1).unwrap();
    subscriber.set_subscribe(b"").unwrap();
    subscriber.connect(&endpoint).unwrap();
    if kind == zmq::XPUB {
        assert_eq!(publisher.recv_bytes(0).unwrap(), b"\x01"); // the subscription
    } else {
        // A PUB cannot tell when the subscription is in: send until one message gets through.
        subscriber.set_rcvtimeo(10).unwrap();
        let mut tries = 0;
        loop {
            publisher.send("sync", zmq::DONTWAIT).unwrap();
            if subscriber.recv_bytes(0).is_ok() {
                break;
            }
            tries += 1;
            assert!(tries < 500, "the subscription never reached the PUB socket");
        }
        while subscriber.recv_bytes(zmq::DONTWAIT).is_ok() {}
        subscriber.set_rcvtimeo(-1).unwrap();
    }
    (publisher, subscriber)
}

fn nodrop_send(ctx: &zmq::Context, kind: zmq::SocketType) -> Case {
    let (publisher, subscriber) = nodrop_publisher(ctx, kind);
    let queued = fill(&publisher, &[b"x"]);
    assert!(
        publisher.get_events().unwrap().contains(zmq::POLLOUT),
        "the case needs POLLOUT set while the subscriber is full"
    );
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
