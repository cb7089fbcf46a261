//! What a device's monitor sees: a queue device's tagged monitor and `device::monitored_queue`
//! publish every request and reply, in both directions, with their prefixes.

use may::coroutine::JoinHandle;
use zmqloop::green::device::Device;

use crate::common::{inproc, join, run, zmq};
use crate::{echo_worker, start_bound};

const WARM_UP: &str = "warm-up";

/// Slow joiner: a monitor SUB sees nothing until its subscription has reached the monitor's
/// PUB. Makes `warm-up` round trips through the queue until a copy shows up on `monitor`;
/// returns how many round trips were made.
fn warm_up_monitor(client: &zmq::Socket, monitor: &zmq::Socket) -> usize {
    for round in 1..=10_000 {
        client.send(WARM_UP, 0).unwrap();
        assert_eq!(client.recv_bytes(0).unwrap(), b"reply:warm-up");
        // The monitor copy of a message is sent before the message itself is forwarded, so it
        // is already queued once the reply is here.
        match monitor.recv_multipart(zmq::DONTWAIT) {
            Ok(_) => return round,
            Err(zmq::Error::EAGAIN) => {}
            Err(err) => panic!("monitor: {err}"),
        }
    }
    panic!("the monitor never saw the warm-up traffic");
}

/// The next monitor message that is not a copy of warm-up traffic.
fn next_tagged(monitor: &zmq::Socket) -> Vec<Vec<u8>> {
    loop {
        let message = monitor.recv_multipart(0).unwrap();
        let last = message.last().expect("at least one frame");
        if !last.ends_with(WARM_UP.as_bytes()) {
            return message;
        }
    }
}

/// A monitor copy as the queue publishes it: `prefix`, then the REQ envelope of `client_id`
/// (identity, empty delimiter), then `body`.
fn tagged(prefix: &[u8], client_id: &[u8], body: &[u8]) -> Vec<Vec<u8>> {
    vec![
        prefix.to_vec(),
        client_id.to_vec(),
        Vec::new(),
        body.to_vec(),
    ]
}

/// Checks the monitor copies of one request/reply round trip of `client_id` through a queue
/// whose monitor prefixes are `in`/`out`.
fn expect_tagged_round_trip(monitor: &zmq::Socket, client_id: &[u8], request: &str) {
    let reply = format!("reply:{request}");
    assert_eq!(
        next_tagged(monitor),
        tagged(b"in", client_id, request.as_bytes()),
        "monitor copy of the request"
    );
    assert_eq!(
        next_tagged(monitor),
        tagged(b"out", client_id, reply.as_bytes()),
        "monitor copy of the reply"
    );
}

/// Connects what the tests of a monitored queue need to its `[in, out, monitor]` endpoints:
/// a REQ client with identity `client_id` on the in side, a SUB to everything the monitor
/// publishes, and an [`echo_worker`] on the out side. Returns `(client, monitor, worker)`.
fn monitored_queue_peers(
    ctx: &zmq::Context,
    [in_endpoint, out_endpoint, monitor_endpoint]: [&str; 3],
    client_id: &[u8],
) -> (zmq::Socket, zmq::Socket, JoinHandle<usize>) {
    let monitor = ctx.socket(zmq::SUB).unwrap();
    monitor.set_subscribe(b"").unwrap();
    monitor.connect(monitor_endpoint).unwrap();
    let rep = ctx.socket(zmq::REP).unwrap();
    rep.connect(out_endpoint).unwrap();
    let worker = echo_worker(rep);
    let client = ctx.socket(zmq::REQ).unwrap();
    client.set_identity(client_id).unwrap();
    client.connect(in_endpoint).unwrap();
    (client, monitor, worker)
}

/// Makes `n` round trips `{prefix}-{i}` from `client` (identity `client_id`) through a queue
/// with echo workers and `in`/`out` monitor prefixes: checks each reply and both of its
/// monitor copies, then that the monitor has nothing more.
fn tagged_round_trips(
    client: &zmq::Socket,
    monitor: &zmq::Socket,
    client_id: &[u8],
    prefix: &str,
    n: usize,
) {
    for i in 0..n {
        let request = format!("{prefix}-{i}");
        client.send(request.as_str(), 0).unwrap();
        assert_eq!(
            client.recv_string(0).unwrap().unwrap(),
            format!("reply:{request}")
        );
        expect_tagged_round_trip(monitor, client_id, &request);
    }
    assert_eq!(
        monitor.recv_bytes(zmq::DONTWAIT),
        Err(zmq::Error::EAGAIN),
        "extra monitor messages"
    );
}

#[test]
fn queue_device_monitor_tags_both_directions() {
    const N: usize = 5;
    run(|| {
        let mut ctx = zmq::Context::new();
        let monitor_endpoint = inproc("monitored-pub");
        let (device, in_endpoint, out_endpoint) = start_bound(
            Device::queue().monitor(&monitor_endpoint, b"in", b"out"),
            &ctx,
            "monitored",
        );
        let (client, monitor, worker) = monitored_queue_peers(
            &ctx,
            [&in_endpoint, &out_endpoint, &monitor_endpoint],
            b"client-1",
        );

        let warm_ups = warm_up_monitor(&client, &monitor) as u64;
        tagged_round_trips(&client, &monitor, b"client-1", "request", N);

        // Requests: identity (8) + delimiter + body; warm-ups are 7 bytes, requests 9.
        let messages = warm_ups + N as u64;
        let bytes_in = warm_ups * (8 + 7) + N as u64 * (8 + 9);
        let bytes_out = warm_ups * (8 + 13) + N as u64 * (8 + 15);
        let stats = device.statistics();
        assert_eq!(
            stats.to_array(),
            [messages, bytes_in, messages, bytes_out, messages, bytes_out, messages, bytes_in]
        );
        assert_eq!(device.stop(), Ok(()));
        drop((client, monitor));
        ctx.destroy().unwrap();
        assert_eq!(join(worker) as u64, messages);
    });
}

#[test]
fn monitored_queue_tags_requests_and_replies() {
    const N: usize = 5;
    run(|| {
        let mut ctx = zmq::Context::new();
        let (in_endpoint, out_endpoint, monitor_endpoint) =
            (inproc("mq-in"), inproc("mq-out"), inproc("mq-monitor"));
        let in_socket = ctx.socket(zmq::ROUTER).unwrap();
        in_socket.bind(&in_endpoint).unwrap();
        let out_socket = ctx.socket(zmq::DEALER).unwrap();
        out_socket.bind(&out_endpoint).unwrap();
        let monitor_socket = ctx.socket(zmq::PUB).unwrap();
        monitor_socket.bind(&monitor_endpoint).unwrap();
        let queue = zmq::spawn(move || {
            let outcome = zmq::device::monitored_queue(
                &in_socket,
                &out_socket,
                &monitor_socket,
                b"in",
                b"out",
            );
            drop((in_socket, out_socket, monitor_socket));
            outcome
        });
        let (client, monitor, worker) = monitored_queue_peers(
            &ctx,
            [&in_endpoint, &out_endpoint, &monitor_endpoint],
            b"client-8",
        );

        let warm_ups = warm_up_monitor(&client, &monitor);
        tagged_round_trips(&client, &monitor, b"client-8", "question", N);

        drop((client, monitor));
        ctx.destroy().unwrap();
        assert_eq!(join(queue), Err(zmq::Error::ETERM));
        assert_eq!(join(worker), warm_ups + N);
    });
}
