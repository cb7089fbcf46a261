//! The green proxy family and devices, every test on ONE may worker (so a proxy that blocked the
//! OS thread would hang the test):
//! - `proxy` routes REQ and DEALER clients to REP workers through ROUTER/DEALER, keeps multipart
//!   envelopes intact, and ends with `Err(ETERM)` when the context is terminated;
//! - `proxy_with_capture` copies every frame, with its more flag, to the capture socket;
//! - `proxy_steerable` obeys PAUSE (nothing forwarded, counters frozen), RESUME (everything
//!   held back arrives, in order), STATISTICS (8 native-endian u64 with exact values, over PAIR
//!   and over REP/REQ) and TERMINATE (`Ok`); `proxy_steerable_with_capture` does both;
//! - HWM back-pressure through a proxy to a slow consumer loses nothing and bounds what is in
//!   flight;
//! - devices (queue, forwarder, streamer, custom types and options, monitor) forward end to end
//!   with exact statistics and stop with `Ok`, a bad endpoint or option fails `start` without
//!   leaking sockets, `stop` after context termination reports ETERM, and 100 devices run at
//!   once on the single worker;
//! - `device::monitored_queue` tags traffic of both directions with its prefixes.
//!
//! A regression test guards a fixed library bug: `DeviceHandle::stop` hung once the device had
//! taken a message its out side could not accept (no peer), because the proxy parked in that
//! send and stopped reading its control socket.

mod common;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::zmq::device::{Device, DeviceHandle};
use common::{inproc, join, run, zmq, Ping};
use may::coroutine::JoinHandle;

/// A message as its frames.
fn frames(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// The byte count the proxy statistics give a message: all its frames.
fn size(message: &[Vec<u8>]) -> u64 {
    message.iter().map(|f| f.len() as u64).sum()
}

/// Asks a steerable proxy for its counters over `control` (PAIR or REQ) and decodes the reply.
fn statistics(control: &zmq::Socket) -> [u64; 8] {
    control.send("STATISTICS", 0).unwrap();
    let reply = control.recv_multipart(0).unwrap();
    assert_eq!(
        reply.len(),
        8,
        "STATISTICS replies with 8 frames: {reply:?}"
    );
    let mut values = [0u64; 8];
    for (value, frame) in values.iter_mut().zip(&reply) {
        *value = u64::from_ne_bytes(frame[..].try_into().expect("a frame of 8 bytes"));
    }
    values
}

/// The counters of a proxy that forwarded `forth` from frontend to backend and `back` the
/// other way, in STATISTICS order.
fn expected_statistics(forth: &[Vec<Vec<u8>>], back: &[Vec<Vec<u8>>]) -> [u64; 8] {
    let count = |messages: &[Vec<Vec<u8>>]| messages.len() as u64;
    let bytes = |messages: &[Vec<Vec<u8>>]| messages.iter().map(|m| size(m)).sum::<u64>();
    [
        count(forth),
        bytes(forth),
        count(back),
        bytes(back),
        count(back),
        bytes(back),
        count(forth),
        bytes(forth),
    ]
}

/// For each `(name, bound, peer)`: a `bound` socket bound to a fresh inproc endpoint named
/// after `name`, and a `peer` socket connected to it. Returns the bound sockets (for the proxy)
/// and their peers (for the test), in the order given.
fn bound_with_peers<const N: usize>(
    ctx: &zmq::Context,
    sides: [(&str, zmq::SocketType, zmq::SocketType); N],
) -> ([zmq::Socket; N], [zmq::Socket; N]) {
    let endpoints = sides.map(|(name, _, _)| inproc(name));
    let bound = std::array::from_fn(|i| {
        let socket = ctx.socket(sides[i].1).unwrap();
        socket.bind(&endpoints[i]).unwrap();
        socket
    });
    let peers = std::array::from_fn(|i| {
        let socket = ctx.socket(sides[i].2).unwrap();
        socket.connect(&endpoints[i]).unwrap();
        socket
    });
    (bound, peers)
}

/// Runs `zmq::proxy_steerable` in a coroutine on a frontend, a backend and a control socket
/// bound as `sides` says (see [`bound_with_peers`]); returns its handle and their peers.
fn spawn_steerable(
    ctx: &zmq::Context,
    sides: [(&str, zmq::SocketType, zmq::SocketType); 3],
) -> (JoinHandle<zmq::Result<()>>, [zmq::Socket; 3]) {
    let ([mut frontend, mut backend, mut control], peers) = bound_with_peers(ctx, sides);
    let proxy = zmq::spawn(move || zmq::proxy_steerable(&mut frontend, &mut backend, &mut control));
    (proxy, peers)
}

/// Runs `zmq::proxy` between `frontend` and `backend` in a coroutine that closes both sockets
/// when the proxy ends (the context termination waits for them); the handle joins to the
/// proxy's outcome.
fn spawn_proxy(frontend: zmq::Socket, backend: zmq::Socket) -> JoinHandle<zmq::Result<()>> {
    zmq::spawn(move || {
        let outcome = zmq::proxy(&frontend, &backend);
        drop((frontend, backend));
        outcome
    })
}

/// Sends `messages` on `from`, then checks that `to` receives exactly them, in order.
fn pass_through(from: &zmq::Socket, to: &zmq::Socket, messages: &[Vec<Vec<u8>>]) {
    for message in messages {
        from.send_multipart(message.clone(), 0).unwrap();
    }
    expect_messages(to, messages);
}

/// Checks that the next messages on `to` are `messages`, in order.
fn expect_messages(to: &zmq::Socket, messages: &[Vec<Vec<u8>>]) {
    for message in messages {
        assert_eq!(&to.recv_multipart(0).unwrap(), message);
    }
}

/// Checks that `collector` holds every frame of `messages`, in order, each with its more flag
/// (set on all but the last frame of a message), and nothing more.
fn expect_captured(collector: &zmq::Socket, messages: &[Vec<Vec<u8>>]) {
    let mut frame = zmq::Message::new();
    for (n, message) in messages.iter().enumerate() {
        for (i, part) in message.iter().enumerate() {
            collector.recv(&mut frame, 0).unwrap();
            assert_eq!(&frame[..], &part[..], "captured frame {i} of message {n}");
            assert_eq!(
                frame.get_more(),
                i + 1 < message.len(),
                "more flag of frame {i} of message {n}: {message:?}"
            );
        }
    }
    assert_eq!(
        collector.recv(&mut frame, zmq::DONTWAIT),
        Err(zmq::Error::EAGAIN),
        "extra captured frames"
    );
}

/// Sends TERMINATE over `steer` and checks that the steerable proxy ends with `Ok`.
fn terminate(steer: &zmq::Socket, proxy: JoinHandle<zmq::Result<()>>) {
    steer.send("TERMINATE", 0).unwrap();
    assert_eq!(join(proxy), Ok(()), "TERMINATE must end the proxy with Ok");
}

/// Starts `device` in `ctx`, bound on its in and out sides to fresh inproc endpoints named
/// `{name}-in` and `{name}-out`; returns its handle and those two endpoints.
fn start_bound(device: Device, ctx: &zmq::Context, name: &str) -> (DeviceHandle, String, String) {
    let (in_endpoint, out_endpoint) = (
        inproc(&format!("{name}-in")),
        inproc(&format!("{name}-out")),
    );
    let handle = device
        .bind_in(&in_endpoint)
        .bind_out(&out_endpoint)
        .start(ctx)
        .unwrap();
    (handle, in_endpoint, out_endpoint)
}

/// A REP worker that answers every request `body` with `reply:body` until the context is
/// terminated, then closes its socket and returns how many requests it served.
fn echo_worker(rep: zmq::Socket) -> JoinHandle<usize> {
    zmq::spawn(move || {
        let mut served = 0;
        loop {
            match rep.recv_bytes(0) {
                Ok(body) => {
                    rep.send([&b"reply:"[..], &body].concat(), 0).unwrap();
                    served += 1;
                }
                Err(zmq::Error::ETERM) => break,
                Err(err) => panic!("worker: {err}"),
            }
        }
        drop(rep); // the context termination waits for it
        served
    })
}

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
fn proxy_routes_req_and_dealer_clients_to_rep_workers_and_ends_with_eterm() {
    const WORKERS: usize = 3;
    const REQ_CLIENTS: usize = 4;
    const REQUESTS: usize = 25;
    const DEALER_CLIENTS: usize = 2;
    const DEALER_REQUESTS: usize = 5;
    run(|| {
        let mut ctx = zmq::Context::new();
        let front_endpoint = inproc("proxy-front");
        let back_endpoint = inproc("proxy-back");
        let frontend = ctx.socket(zmq::ROUTER).unwrap();
        frontend.bind(&front_endpoint).unwrap();
        let backend = ctx.socket(zmq::DEALER).unwrap();
        backend.bind(&back_endpoint).unwrap();
        let proxy = spawn_proxy(frontend, backend);

        // Workers echo what they saw, after their name, and report it on `seen`.
        let (seen_tx, seen_rx) = may::sync::mpsc::channel::<Vec<Vec<u8>>>();
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let rep = ctx.socket(zmq::REP).unwrap();
                rep.connect(&back_endpoint).unwrap();
                let seen_tx = seen_tx.clone();
                zmq::spawn(move || {
                    let mut served = 0usize;
                    loop {
                        match rep.recv_multipart(0) {
                            Ok(request) => {
                                seen_tx.send(request.clone()).unwrap();
                                let mut reply = vec![format!("worker-{w}").into_bytes()];
                                reply.extend(request);
                                rep.send_multipart(reply, 0).unwrap();
                                served += 1;
                            }
                            Err(zmq::Error::ETERM) => break,
                            Err(err) => panic!("worker {w}: {err}"),
                        }
                    }
                    drop(rep);
                    served
                })
            })
            .collect();
        drop(seen_tx);

        let mut expected_seen = Vec::new();
        let mut clients = Vec::new();
        for c in 0..REQ_CLIENTS {
            let req = ctx.socket(zmq::REQ).unwrap();
            req.connect(&front_endpoint).unwrap();
            for n in 0..REQUESTS {
                expected_seen.push(frames(&[format!("req-{c}-{n}").as_str()]));
            }
            clients.push(zmq::spawn(move || {
                for n in 0..REQUESTS {
                    let request = format!("req-{c}-{n}");
                    req.send(request.as_str(), 0).unwrap();
                    let reply = req.recv_multipart(0).unwrap();
                    assert_eq!(reply.len(), 2, "client {c}: {reply:?}");
                    assert!(reply[0].starts_with(b"worker-"), "client {c}: {reply:?}");
                    assert_eq!(reply[1], request.as_bytes(), "client {c}: a foreign reply");
                }
            }));
        }
        // DEALER clients write the REQ envelope themselves (an empty delimiter) and pipeline
        // 3-frame requests: the workers must see exactly the 3 frames, and each reply must come
        // back to the client that sent its request.
        for d in 0..DEALER_CLIENTS {
            let dealer = ctx.socket(zmq::DEALER).unwrap();
            dealer.connect(&front_endpoint).unwrap();
            let requests: Vec<_> = (0..DEALER_REQUESTS)
                .map(|n| {
                    frames(&[
                        format!("dealer-{d}").as_str(),
                        format!("request-{n}").as_str(),
                        "tail",
                    ])
                })
                .collect();
            expected_seen.extend(requests.iter().cloned());
            clients.push(zmq::spawn(move || {
                for request in &requests {
                    let mut message = vec![Vec::new()];
                    message.extend(request.iter().cloned());
                    dealer.send_multipart(message, 0).unwrap();
                }
                let mut pending: BTreeSet<_> = requests.into_iter().collect();
                for _ in 0..DEALER_REQUESTS {
                    let reply = dealer.recv_multipart(0).unwrap();
                    assert_eq!(reply.len(), 5, "dealer {d}: {reply:?}");
                    assert!(reply[0].is_empty(), "dealer {d}: no delimiter: {reply:?}");
                    assert!(reply[1].starts_with(b"worker-"), "dealer {d}: {reply:?}");
                    assert!(
                        pending.remove(&reply[2..]),
                        "dealer {d}: a foreign or repeated reply {reply:?}"
                    );
                }
                assert!(pending.is_empty());
            }));
        }
        for client in clients {
            join(client);
        }

        // Every socket but the proxy's and the workers' is closed: terminating the context
        // ends them all.
        ctx.destroy().unwrap();
        assert_eq!(join(proxy), Err(zmq::Error::ETERM));
        let served: Vec<usize> = workers.into_iter().map(join).collect();
        let total = REQ_CLIENTS * REQUESTS + DEALER_CLIENTS * DEALER_REQUESTS;
        assert_eq!(served.iter().sum::<usize>(), total);
        assert!(
            served.iter().all(|&n| n > 0),
            "the DEALER backend should spread requests over every worker: {served:?}"
        );
        let mut seen: Vec<_> = seen_rx.iter().collect();
        seen.sort();
        expected_seen.sort();
        assert_eq!(seen, expected_seen, "what the workers saw");
    });
}

#[test]
fn proxy_with_capture_copies_every_frame_with_its_more_flag() {
    const N: usize = 200;
    run(|| {
        let mut ctx = zmq::Context::new();
        let ([mut frontend, mut backend, mut capture], [producer, consumer, collector]) =
            bound_with_peers(
                &ctx,
                [
                    ("capture-front", zmq::PULL, zmq::PUSH),
                    ("capture-back", zmq::PUSH, zmq::PULL),
                    ("capture", zmq::PUSH, zmq::PULL),
                ],
            );
        let proxy = zmq::spawn(move || {
            let outcome = zmq::proxy_with_capture(&mut frontend, &mut backend, &mut capture);
            drop((frontend, backend, capture));
            outcome
        });

        let messages: Vec<_> = (0..N)
            .map(|n| frames(&[format!("head-{n}").as_str(), format!("body-{n}").as_str()]))
            .collect();
        pass_through(&producer, &consumer, &messages);
        // The copies went out before the messages themselves: all are queued by now.
        expect_captured(&collector, &messages);
        assert_eq!(consumer.recv_bytes(zmq::DONTWAIT), Err(zmq::Error::EAGAIN));

        drop((producer, consumer, collector));
        ctx.destroy().unwrap();
        assert_eq!(join(proxy), Err(zmq::Error::ETERM));
    });
}

#[test]
fn proxy_steerable_pauses_resumes_reports_exact_statistics_and_terminates() {
    const HELD: usize = 10;
    run(|| {
        let ctx = zmq::Context::new();
        let (proxy, [client, server, steer]) = spawn_steerable(
            &ctx,
            [
                ("steer-front", zmq::PAIR, zmq::PAIR),
                ("steer-back", zmq::PAIR, zmq::PAIR),
                ("steer-control", zmq::PAIR, zmq::PAIR),
            ],
        );

        // Known traffic both ways: a multipart message counts once, with all its bytes, and an
        // empty message counts with 0 bytes.
        let mut forth = vec![frames(&["one"]), frames(&["two-a", "two-b"]), frames(&[""])];
        let mut back = vec![frames(&["back"]), frames(&["x", "yz"])];
        pass_through(&client, &server, &forth);
        pass_through(&server, &client, &back);
        let before_pause = expected_statistics(&forth, &back);
        assert_eq!(before_pause, [3, 13, 2, 7, 2, 7, 3, 13]);
        assert_eq!(statistics(&steer), before_pause);

        // PAUSE gets no reply; the STATISTICS reply after it proves it was handled (one control
        // pipe, one command per turn of the loop).
        steer.send("PAUSE", 0).unwrap();
        assert_eq!(statistics(&steer), before_pause);
        let held_forth: Vec<_> = (0..HELD)
            .map(|n| frames(&[format!("held-forth-{n}").as_str()]))
            .collect();
        let held_back: Vec<_> = (0..HELD)
            .map(|n| frames(&["held", format!("back-{n}").as_str()]))
            .collect();
        for (f, b) in held_forth.iter().zip(&held_back) {
            client.send_multipart(f.clone(), 0).unwrap();
            server.send_multipart(b.clone(), 0).unwrap();
        }
        // Each turn of the loop handles control first, then one burst each way: after two
        // more round trips an active proxy would have forwarded everything.
        assert_eq!(statistics(&steer), before_pause, "counted while paused");
        assert_eq!(statistics(&steer), before_pause, "counted while paused");
        assert_eq!(
            server.recv_bytes(zmq::DONTWAIT),
            Err(zmq::Error::EAGAIN),
            "forwarded to the backend while paused"
        );
        assert_eq!(
            client.recv_bytes(zmq::DONTWAIT),
            Err(zmq::Error::EAGAIN),
            "forwarded to the frontend while paused"
        );

        // RESUME: everything held back arrives, in order.
        steer.send("RESUME", 0).unwrap();
        expect_messages(&server, &held_forth);
        expect_messages(&client, &held_back);
        forth.extend(held_forth);
        back.extend(held_back);
        assert_eq!(statistics(&steer), expected_statistics(&forth, &back));

        terminate(&steer, proxy);
    });
}

#[test]
fn proxy_steerable_counts_and_ignores_an_unknown_command() {
    run(|| {
        let ctx = zmq::Context::new();
        let (proxy, [producer, consumer, steer]) = spawn_steerable(
            &ctx,
            [
                ("unknown-front", zmq::PULL, zmq::PUSH),
                ("unknown-back", zmq::PUSH, zmq::PULL),
                ("unknown-control", zmq::PAIR, zmq::PAIR),
            ],
        );
        let before = zmq::unknown_proxy_commands();
        steer.send("REWIND", 0).unwrap(); // libzmq's proxy would abort the process here
                                          // The proxy read it (commands are handled in order) and goes on forwarding.
        assert_eq!(statistics(&steer), [0; 8]);
        assert_eq!(zmq::unknown_proxy_commands() - before, 1);
        pass_through(&producer, &consumer, &[frames(&["still forwarding"])]);
        terminate(&steer, proxy);
    });
}

#[test]
fn proxy_steerable_answers_statistics_over_a_rep_control_socket() {
    run(|| {
        let ctx = zmq::Context::new();
        let (proxy, [producer, consumer, steer]) = spawn_steerable(
            &ctx,
            [
                ("rep-control-front", zmq::PULL, zmq::PUSH),
                ("rep-control-back", zmq::PUSH, zmq::PULL),
                ("rep-control", zmq::REP, zmq::REQ),
            ],
        );

        assert_eq!(statistics(&steer), [0; 8]);
        let forth: Vec<_> = (0..4)
            .map(|n| frames(&["pipeline", &"x".repeat(n)]))
            .collect();
        pass_through(&producer, &consumer, &forth);
        // A second request on the REQ socket works only if the proxy replied to the first.
        assert_eq!(statistics(&steer), expected_statistics(&forth, &[]));
        assert_eq!(statistics(&steer), [4, 38, 0, 0, 0, 0, 4, 38]);
        terminate(&steer, proxy);
    });
}

#[test]
fn proxy_steerable_with_capture_copies_both_directions_and_terminates() {
    run(|| {
        let ctx = zmq::Context::new();
        let (
            [mut frontend, mut backend, mut capture, mut control],
            [client, server, collector, steer],
        ) = bound_with_peers(
            &ctx,
            [
                ("sc-front", zmq::PAIR, zmq::PAIR),
                ("sc-back", zmq::PAIR, zmq::PAIR),
                ("sc-capture", zmq::PUSH, zmq::PULL),
                ("sc-control", zmq::PAIR, zmq::PAIR),
            ],
        );
        let proxy = zmq::spawn(move || {
            zmq::proxy_steerable_with_capture(
                &mut frontend,
                &mut backend,
                &mut capture,
                &mut control,
            )
        });

        let forth = [frames(&["request", "with", "three"]), frames(&["single"])];
        let back = [frames(&["reply", ""]), frames(&["last"])];
        for message in &forth {
            client.send_multipart(message.clone(), 0).unwrap();
            assert_eq!(&server.recv_multipart(0).unwrap(), message);
        }
        for message in &back {
            server.send_multipart(message.clone(), 0).unwrap();
            assert_eq!(&client.recv_multipart(0).unwrap(), message);
        }
        // The capture got every frame of both directions, in forwarding order, with its flag.
        expect_captured(&collector, &[forth, back].concat());

        terminate(&steer, proxy);
    });
}

#[test]
fn hwm_back_pressure_through_a_proxy_to_a_slow_consumer_loses_nothing() {
    const N: usize = 20_000;
    const HWM: i32 = 5;
    // An inproc pipe holds at most the sender's SNDHWM plus the receiver's RCVHWM; the proxy
    // holds one more message while it waits to send it.
    const MOST_IN_FLIGHT: usize = 2 * (2 * HWM as usize) + 1;
    run(|| {
        let mut ctx = zmq::Context::new();
        let (front_endpoint, back_endpoint) = (inproc("hwm-front"), inproc("hwm-back"));
        let small = |socket_type| {
            let socket = ctx.socket(socket_type).unwrap();
            socket.set_sndhwm(HWM).unwrap();
            socket.set_rcvhwm(HWM).unwrap();
            socket
        };
        let frontend = small(zmq::PULL);
        frontend.bind(&front_endpoint).unwrap();
        let backend = small(zmq::PUSH);
        backend.bind(&back_endpoint).unwrap();
        let producer = small(zmq::PUSH);
        producer.connect(&front_endpoint).unwrap();
        let consumer = small(zmq::PULL);
        consumer.connect(&back_endpoint).unwrap();
        let proxy = spawn_proxy(frontend, backend);

        let sent = Arc::new(AtomicUsize::new(0));
        let producer = {
            let sent = sent.clone();
            zmq::spawn(move || {
                for n in 0..N as u32 {
                    producer.send(&n.to_be_bytes()[..], 0).unwrap();
                    sent.fetch_add(1, Ordering::SeqCst);
                }
                producer
            })
        };
        let mut most_ahead = 0;
        for n in 0..N {
            let bytes = consumer.recv_bytes(0).unwrap();
            assert_eq!(bytes, (n as u32).to_be_bytes(), "message {n} out of order");
            most_ahead = most_ahead.max(sent.load(Ordering::SeqCst).saturating_sub(n + 1));
            if n % 3 == 0 {
                may::coroutine::yield_now(); // slow: let the producer run into the HWM
            }
        }
        assert_eq!(consumer.recv_bytes(zmq::DONTWAIT), Err(zmq::Error::EAGAIN));
        assert!(
            most_ahead <= MOST_IN_FLIGHT,
            "the producer ran {most_ahead} messages ahead: the HWM did not hold it back"
        );
        assert!(
            most_ahead > 0,
            "the producer never got ahead: not a slow consumer"
        );

        drop((join(producer), consumer));
        ctx.destroy().unwrap();
        assert_eq!(join(proxy), Err(zmq::Error::ETERM));
    });
}

#[test]
fn queue_device_serves_req_clients_with_exact_statistics_and_stops() {
    const CLIENTS: usize = 3;
    const REQUESTS: usize = 20;
    run(|| {
        let mut ctx = zmq::Context::new();
        let (device, in_endpoint, out_endpoint) = start_bound(Device::queue(), &ctx, "queue");
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let rep = ctx.socket(zmq::REP).unwrap();
                rep.connect(&out_endpoint).unwrap();
                echo_worker(rep)
            })
            .collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let req = ctx.socket(zmq::REQ).unwrap();
                // A fixed 8-byte identity makes the envelope, and so the byte counts, known.
                req.set_identity(format!("client-{c}").as_bytes()).unwrap();
                req.connect(&in_endpoint).unwrap();
                zmq::spawn(move || {
                    for n in 0..REQUESTS {
                        let request = format!("q{c}-{n:03}");
                        req.send(request.as_str(), 0).unwrap();
                        let reply = req.recv_string(0).unwrap().unwrap();
                        assert_eq!(reply, format!("reply:{request}"));
                    }
                })
            })
            .collect();
        for client in clients {
            join(client);
        }

        // ROUTER side: [identity (8), delimiter (0), body]; request bodies are 6 bytes, replies
        // 12.
        let messages = (CLIENTS * REQUESTS) as u64;
        let requests = zmq::SideStatistics {
            messages_in: messages,
            bytes_in: messages * (8 + 6),
            messages_out: messages,
            bytes_out: messages * (8 + 12),
        };
        let stats = device.statistics();
        assert_eq!(stats.frontend, requests);
        assert_eq!(
            stats.backend,
            zmq::SideStatistics {
                messages_in: requests.messages_out,
                bytes_in: requests.bytes_out,
                messages_out: requests.messages_in,
                bytes_out: requests.bytes_in,
            }
        );
        assert!(device.is_running());
        assert_eq!(device.stop(), Ok(()));
        // The workers end with ETERM; the termination completes only if the device closed its
        // sockets.
        ctx.destroy().unwrap();
        let served: usize = workers.into_iter().map(join).sum();
        assert_eq!(served, CLIENTS * REQUESTS);
    });
}

#[test]
fn forwarder_device_propagates_subscriptions_and_filters_by_topic() {
    const N: usize = 10;
    run(|| {
        let ctx = zmq::Context::new();
        let (device, in_endpoint, out_endpoint) =
            start_bound(Device::forwarder(), &ctx, "forwarder");
        let publisher = ctx.socket(zmq::PUB).unwrap();
        publisher.connect(&in_endpoint).unwrap();

        // Each subscriber reports its first hello, then collects its topic's messages until
        // "end"; it returns them, the bytes of everything it received, and its socket (kept
        // open so that no unsubscription changes the counters below).
        let (ready_tx, ready_rx) = may::sync::mpsc::channel::<&'static str>();
        let subscribers: Vec<_> = ["news", "weather"]
            .into_iter()
            .map(|topic| {
                let sub = ctx.socket(zmq::SUB).unwrap();
                sub.set_subscribe(topic.as_bytes()).unwrap();
                sub.connect(&out_endpoint).unwrap();
                let ready_tx = ready_tx.clone();
                zmq::spawn(move || {
                    let mut bodies = Vec::new();
                    let mut bytes = 0;
                    let mut greeted = false;
                    loop {
                        let message = sub.recv_multipart(0).unwrap();
                        bytes += size(&message);
                        assert_eq!(message[0], topic.as_bytes(), "a foreign topic arrived");
                        match &message[1][..] {
                            b"hello" if !greeted => {
                                greeted = true;
                                ready_tx.send(topic).unwrap();
                            }
                            b"hello" => {}
                            b"end" => break,
                            body => bodies.push(String::from_utf8(body.to_vec()).unwrap()),
                        }
                    }
                    (bodies, bytes, sub)
                })
            })
            .collect();
        drop(ready_tx);

        // Slow joiner: until a subscription has travelled SUB -> XPUB -> XSUB -> PUB, the
        // publisher drops that topic. Say hello until both subscribers heard it.
        let mut ready = 0;
        while ready < 2 {
            for topic in ["news", "weather"] {
                publisher.send_multipart([topic, "hello"], 0).unwrap();
            }
            match ready_rx.recv_timeout(Duration::from_millis(5)) {
                Ok(_) => ready += 1,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(err) => panic!("{err:?}"),
            }
        }
        for n in 0..N {
            for topic in ["sports", "news", "weather"] {
                publisher
                    .send_multipart([topic, format!("{topic}-{n}").as_str()], 0)
                    .unwrap();
            }
        }
        for topic in ["news", "weather"] {
            publisher.send_multipart([topic, "end"], 0).unwrap();
        }
        let mut delivered_bytes = 0;
        let mut sockets = Vec::new();
        for (subscriber, topic) in subscribers.into_iter().zip(["news", "weather"]) {
            let (bodies, bytes, sub) = join(subscriber);
            let expected: Vec<String> = (0..N).map(|n| format!("{topic}-{n}")).collect();
            assert_eq!(bodies, expected, "{topic}");
            delivered_bytes += bytes;
            sockets.push(sub);
        }

        // Upstream: exactly the two subscriptions ("\x01news", "\x01weather"). Downstream:
        // everything the publisher let through, which the subscribers received in full (the
        // publisher filters by the forwarded subscriptions, so no "sports").
        let stats = device.statistics();
        assert_eq!(stats.backend.messages_in, 2);
        assert_eq!(stats.backend.bytes_in, 5 + 8);
        assert_eq!(stats.frontend.messages_out, 2);
        assert_eq!(stats.frontend.bytes_out, 5 + 8);
        assert_eq!(stats.frontend.bytes_in, delivered_bytes);
        assert_eq!(stats.backend.bytes_out, delivered_bytes);
        assert_eq!(stats.frontend.messages_in, stats.backend.messages_out);
        assert!(stats.frontend.messages_in >= 2 * (N as u64 + 2));
        assert_eq!(device.stop(), Ok(()));
        drop(sockets);
    });
}

#[test]
fn streamer_device_connects_out_applies_options_and_reports_exact_statistics() {
    const N: usize = 50;
    run(|| {
        let mut ctx = zmq::Context::new();
        let (producer_endpoint, consumer_endpoint) =
            (inproc("streamer-producer"), inproc("streamer-consumer"));
        let producer = ctx.socket(zmq::PUSH).unwrap();
        producer.set_sndhwm(5).unwrap();
        producer.bind(&producer_endpoint).unwrap();
        let consumer = ctx.socket(zmq::PULL).unwrap();
        consumer.set_rcvhwm(5).unwrap();
        consumer.bind(&consumer_endpoint).unwrap();
        let device = Device::streamer()
            .connect_in(&producer_endpoint)
            .connect_out(&consumer_endpoint)
            .set_in(|s| s.set_rcvhwm(5))
            .set_out(|s| s.set_sndhwm(5))
            .start(&ctx)
            .unwrap();
        let message = |n: usize| frames(&["job", format!("{n:04}").as_str(), "payload"]);
        let producer = zmq::spawn(move || {
            for n in 0..N {
                producer.send_multipart(message(n), 0).unwrap();
            }
            producer
        });
        for n in 0..N {
            assert_eq!(consumer.recv_multipart(0).unwrap(), message(n));
        }
        let forwarded = zmq::SideStatistics {
            messages_in: N as u64,
            bytes_in: N as u64 * 14,
            ..Default::default()
        };
        let stats = device.statistics();
        assert_eq!(stats.frontend, forwarded);
        assert_eq!(
            stats.backend,
            zmq::SideStatistics {
                messages_out: N as u64,
                bytes_out: N as u64 * 14,
                ..Default::default()
            }
        );
        assert!(device.is_running());
        assert_eq!(device.stop(), Ok(()));
        drop((join(producer), consumer));
        ctx.destroy().unwrap(); // completes only if the device closed its sockets
    });
}

#[test]
fn device_set_in_applies_socket_options_to_the_in_side() {
    const N: usize = 10;
    run(|| {
        let ctx = zmq::Context::new();
        // SUB in, PUB out: the device forwards only what its in side subscribed to.
        let (device, in_endpoint, out_endpoint) = start_bound(
            Device::new(zmq::SUB, zmq::PUB).set_in(|s| s.set_subscribe(b"keep")),
            &ctx,
            "filter",
        );
        let publisher = ctx.socket(zmq::PUB).unwrap();
        publisher.connect(&in_endpoint).unwrap();
        let subscriber = ctx.socket(zmq::SUB).unwrap();
        subscriber.set_subscribe(b"").unwrap();
        subscriber.connect(&out_endpoint).unwrap();

        // Two slow joiners in a row: say hello until it comes out of the far end.
        let mut greeted = false;
        for _ in 0..2_000 {
            publisher.send_multipart(["keep", "hello"], 0).unwrap();
            subscriber.set_rcvtimeo(5).unwrap();
            match subscriber.recv_multipart(0) {
                Ok(_) => {
                    greeted = true;
                    break;
                }
                Err(zmq::Error::EAGAIN) => {}
                Err(err) => panic!("{err}"),
            }
        }
        assert!(greeted, "the device never forwarded the hello");
        subscriber.set_rcvtimeo(-1).unwrap();
        for n in 0..N {
            publisher
                .send_multipart(["drop", n.to_string().as_str()], 0)
                .unwrap();
            publisher
                .send_multipart(["keep", n.to_string().as_str()], 0)
                .unwrap();
        }
        publisher.send_multipart(["keep", "end"], 0).unwrap();
        let mut bodies = Vec::new();
        loop {
            let message = subscriber.recv_multipart(0).unwrap();
            assert_eq!(message[0], b"keep", "an unsubscribed topic went through");
            match &message[1][..] {
                b"hello" => {}
                b"end" => break,
                body => bodies.push(String::from_utf8(body.to_vec()).unwrap()),
            }
        }
        assert_eq!(bodies, (0..N).map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(device.stop(), Ok(()));
    });
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
fn device_start_fails_on_bad_endpoints_and_options_without_leaking_sockets() {
    run(|| {
        let mut ctx = zmq::Context::new();
        let taken = inproc("device-taken");
        let holder = ctx.socket(zmq::PULL).unwrap();
        holder.bind(&taken).unwrap();
        let fails = |device: Device| device.start(&ctx).expect_err("start must fail");
        let unsupported = [zmq::Error::EPROTONOSUPPORT, zmq::Error::EINVAL];

        let err = fails(Device::streamer().bind_in("bogus://x"));
        assert!(unsupported.contains(&err), "{err:?}");
        let err = fails(
            Device::streamer()
                .bind_in(&inproc("device-ok"))
                .connect_out("bogus://x"),
        );
        assert!(unsupported.contains(&err), "{err:?}");
        // Both sides are up when the monitor fails: they must be closed again.
        let err = fails(
            Device::queue()
                .bind_in(&inproc("device-ok"))
                .bind_out(&inproc("device-ok"))
                .monitor("bogus://monitor", b"in", b"out"),
        );
        assert!(unsupported.contains(&err), "{err:?}");
        let err = fails(Device::streamer().bind_out(&taken));
        assert_eq!(err, zmq::Error::EADDRINUSE);
        let err = fails(Device::streamer().set_in(|s| s.set_subscribe(b"not on a PULL")));
        assert_eq!(err, zmq::Error::EINVAL);

        drop(holder);
        ctx.destroy().unwrap(); // would hang on a socket leaked by a failed start
    });
}

#[test]
fn device_stop_after_context_termination_reports_eterm() {
    run(|| {
        let ctx = zmq::Context::new();
        let (device, _, _) = start_bound(Device::streamer(), &ctx, "eterm");
        assert!(device.is_running());
        // Created after the device's sockets, so libzmq tells it about the termination after
        // them: once it has seen ETERM, so would the device's control socket.
        let sentinel = ctx.socket(zmq::PULL).unwrap();
        sentinel.bind(&inproc("eterm-sentinel")).unwrap();
        let (eterm_tx, eterm_rx) = may::sync::mpsc::channel();
        let watcher = zmq::spawn(move || {
            let outcome = sentinel.recv_bytes(0);
            drop(sentinel);
            eterm_tx.send(outcome).unwrap();
        });
        let mut terminator = ctx.clone();
        let destroyer = zmq::spawn(move || terminator.destroy());
        assert_eq!(eterm_rx.recv().unwrap(), Err(zmq::Error::ETERM));
        assert_eq!(device.stop(), Err(zmq::Error::ETERM));
        assert_eq!(join(destroyer), Ok(())); // the handle's socket is gone too
        join(watcher);
    });
}

#[test]
fn device_stop_returns_while_the_out_side_has_no_peer() {
    run(|| {
        let ctx = zmq::Context::new();
        // Nobody connects to the out side.
        let (device, in_endpoint, _) = start_bound(Device::streamer(), &ctx, "stuck");
        let producer = ctx.socket(zmq::PUSH).unwrap();
        producer.connect(&in_endpoint).unwrap();
        producer.send("nobody can take this", 0).unwrap();
        // No event says when the device has looked at the message (that is the bug: it stops
        // answering), so let the worker run whatever is ready for a few rounds.
        let ping = Ping::start();
        ping.wait_rounds(3);
        ping.stop();
        assert_eq!(device.stop(), Ok(()), "stop() must not wait for a consumer");
    });
}

#[test]
fn hundred_streamer_devices_run_at_once_on_one_worker() {
    const DEVICES: usize = 100;
    const MESSAGES: u32 = 100;
    run(|| {
        let mut ctx = zmq::Context::new();
        let mut devices = Vec::new();
        let mut producers = Vec::new();
        let mut consumers = Vec::new();
        for d in 0..DEVICES {
            let (device, in_endpoint, out_endpoint) = start_bound(Device::streamer(), &ctx, "many");
            devices.push(device);
            let push = ctx.socket(zmq::PUSH).unwrap();
            push.connect(&in_endpoint).unwrap();
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.connect(&out_endpoint).unwrap();
            producers.push(push);
            consumers.push(zmq::spawn(move || {
                for n in 0..MESSAGES {
                    let message = pull.recv_multipart(0).unwrap();
                    assert_eq!(message[0], (d as u32).to_be_bytes(), "device {d}");
                    assert_eq!(message[1], n.to_be_bytes(), "device {d}: order");
                }
                assert_eq!(pull.recv_bytes(zmq::DONTWAIT), Err(zmq::Error::EAGAIN));
                MESSAGES
            }));
        }
        // 100 idle devices are parked in their polls: the worker is free for others.
        let ping = Ping::start();
        ping.wait_rounds(3);
        ping.stop();
        let producers: Vec<_> = producers
            .into_iter()
            .enumerate()
            .map(|(d, push)| {
                zmq::spawn(move || {
                    for n in 0..MESSAGES {
                        push.send_multipart(
                            [(d as u32).to_be_bytes().to_vec(), n.to_be_bytes().to_vec()],
                            0,
                        )
                        .unwrap();
                    }
                    push
                })
            })
            .collect();
        let received: u32 = consumers.into_iter().map(join).sum();
        assert_eq!(received, DEVICES as u32 * MESSAGES);
        let each = u64::from(MESSAGES);
        for (d, device) in devices.iter().enumerate() {
            assert!(device.is_running(), "device {d}");
            assert_eq!(
                device.statistics().to_array(),
                [each, each * 8, 0, 0, 0, 0, each, each * 8],
                "device {d}"
            );
        }
        for device in devices {
            assert_eq!(device.stop(), Ok(()));
        }
        for producer in producers {
            drop(join(producer));
        }
        ctx.destroy().unwrap(); // every device closed its sockets
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

#[test]
fn device_reports_the_endpoints_it_bound_with_ephemeral_ports_resolved() {
    run(|| {
        let ctx = zmq::Context::new();
        let device = zmq::device::Device::streamer()
            .bind_in("tcp://127.0.0.1:*")
            .bind_out("tcp://127.0.0.1:*")
            .start(&ctx)
            .unwrap();
        let in_endpoint = device.in_endpoint().unwrap().to_owned();
        let out_endpoint = device.out_endpoint().unwrap().to_owned();
        assert!(!in_endpoint.ends_with(":*") && in_endpoint.starts_with("tcp://127.0.0.1:"));
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&in_endpoint).unwrap();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.connect(&out_endpoint).unwrap();
        push.send("via ephemeral ports", 0).unwrap();
        assert_eq!(pull.recv_string(0).unwrap().unwrap(), "via ephemeral ports");
        let connect_only = zmq::device::Device::streamer()
            .connect_in(&in_endpoint)
            .bind_out(&inproc("connect-only"))
            .start(&ctx)
            .unwrap();
        assert_eq!(connect_only.in_endpoint(), None);
        connect_only.stop().unwrap();
        device.stop().unwrap();
    });
}
