//! `zmq::proxy` and `proxy_with_capture`: REQ and DEALER clients reach REP workers through
//! ROUTER/DEALER with their multipart envelopes intact, the proxy ends with `Err(ETERM)` when the
//! context is terminated, the capture socket gets every frame with its more flag, and HWM
//! back-pressure to a slow consumer loses nothing and bounds what is in flight.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use may::coroutine::JoinHandle;

use crate::common::{inproc, join, run, zmq};
use crate::{bound_with_peers, expect_captured, frames, pass_through};

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
