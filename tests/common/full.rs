//! Sockets whose peer is full, for the tests of waiting sends: above all the three whose
//! `POLLOUT` lies (a send fails with EAGAIN while `ZMQ_EVENTS` reports `POLLOUT`): ROUTER with
//! `ROUTER_MANDATORY` addressing a full peer while another has room, STREAM to a tcp peer that
//! does not read, PUB/XPUB with `XPUB_NODROP` to a full subscriber.

use std::io::Read;
use std::os::raw::{c_int, c_void};
use std::os::unix::io::AsRawFd;

use super::{inproc, zmq};

/// A socket that drops what it still holds when closed (no test waits for its linger).
pub fn socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let socket = ctx.socket(kind).unwrap();
    socket.set_linger(0).unwrap();
    socket
}

/// A `sender` socket with `SNDHWM` 1 bound to a fresh inproc endpoint named after `name`, and a
/// `receiver` with `RCVHWM` 1 connected to it: their pipe holds a message or two, so the sender
/// is full as soon as the receiver stops reading (`POLLOUT` exact for PUSH, DEALER, PAIR).
pub fn small_pipe(
    ctx: &zmq::Context,
    name: &str,
    sender: zmq::SocketType,
    receiver: zmq::SocketType,
) -> (zmq::Socket, zmq::Socket) {
    let endpoint = inproc(name);
    let near = socket(ctx, sender);
    near.set_sndhwm(1).unwrap();
    near.bind(&endpoint).unwrap();
    let far = socket(ctx, receiver);
    far.set_rcvhwm(1).unwrap();
    far.connect(&endpoint).unwrap();
    (near, far)
}

/// Sends `parts` with DONTWAIT until the socket refuses even with its commands processed (a
/// reader's "room again" may still wait in its mailbox); how many messages went.
pub fn fill(socket: &zmq::Socket, parts: &[&[u8]]) -> usize {
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

/// A ROUTER with `ROUTER_MANDATORY` and two DEALER peers it knows, "slow" and "fast", whose
/// pipe to "slow" is full (`queued` messages `[slow, x]` in it) while "fast" has room, so
/// `POLLOUT` is set.
pub struct FullRouter {
    pub router: zmq::Socket,
    pub slow: zmq::Socket,
    pub fast: zmq::Socket,
    pub queued: usize,
}

pub fn full_router_mandatory(ctx: &zmq::Context) -> FullRouter {
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
    FullRouter {
        router,
        slow,
        fast,
        queued,
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
pub fn stream_to_raw_peer(ctx: &zmq::Context) -> (zmq::Socket, Vec<u8>, std::net::TcpStream) {
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

/// Sends `chunk` to the peer `id` of a STREAM socket until a send cannot go for 100 ms (libzmq's
/// I/O thread keeps moving data into the kernel's buffers until they are full, so DONTWAIT
/// alone stops too early); how many chunks went. Outside a coroutine: it blocks the thread.
pub fn fill_stream(stream: &zmq::Socket, id: &[u8], chunk: &[u8]) -> usize {
    stream.set_sndtimeo(100).unwrap();
    let mut queued = 0;
    while stream.send_multipart([id, chunk], 0).is_ok() {
        queued += 1;
    }
    queued
}

/// Reads `want` bytes from the tcp peer of a STREAM socket (blocking the thread); panics if
/// nothing comes for [`LIMIT`](super::LIMIT), rather than wait for good.
pub fn read_bytes(raw: &mut std::net::TcpStream, want: usize) {
    raw.set_read_timeout(Some(super::LIMIT)).unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < want {
        let read = raw.read(&mut buffer);
        match read.unwrap_or_else(|err| panic!("after {got} of {want} bytes: {err}")) {
            0 => panic!("the STREAM peer closed after {got} of {want} bytes"),
            n => got += n,
        }
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

/// A publisher (PUB or XPUB) with `XPUB_NODROP` and a subscriber to everything whose pipe
/// holds about two messages, with the subscription in effect.
pub fn nodrop_publisher(ctx: &zmq::Context, kind: zmq::SocketType) -> (zmq::Socket, zmq::Socket) {
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

/// [`nodrop_publisher`] with the subscriber's pipe full (`queued` messages `x` in it), and
/// `POLLOUT` set all the same.
pub fn full_nodrop_publisher(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
) -> (zmq::Socket, zmq::Socket, usize) {
    let (publisher, subscriber) = nodrop_publisher(ctx, kind);
    let queued = fill(&publisher, &[b"x"]);
    assert!(
        publisher.get_events().unwrap().contains(zmq::POLLOUT),
        "the case needs POLLOUT set while the subscriber is full"
    );
    (publisher, subscriber, queued)
}
