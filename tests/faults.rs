//! Errors and limits inside coroutines on one may worker: EFSM at once, EAGAIN with DONTWAIT,
//! RCVTIMEO/SNDTIMEO, HWM back-pressure with several producers, ETERM reaching parked
//! coroutines, a may cancel of a parked coroutine (not honoured: the call goes on), `destroy`
//! inside a coroutine (the last drop: tests/context_exit.rs), an unroutable send, a tcp peer
//! that goes away while a receive is parked, a context handle that outlives `destroy`, and bad
//! arguments.

mod common;
use std::time::{Duration, Instant};

use common::{inproc, join, run, zmq, Ping};

#[test]
fn send_on_fresh_rep_fails_with_efsm_at_once() {
    run(|| {
        let ctx = zmq::Context::new();
        let rep = ctx.socket(zmq::REP).unwrap();
        rep.bind(&inproc("efsm")).unwrap();
        // A fresh REP reports no POLLOUT: a loop that waited for POLLOUT first would hang here.
        assert_eq!(rep.send("too early", 0), Err(zmq::Error::EFSM));
        let req = ctx.socket(zmq::REQ).unwrap();
        req.connect("inproc://nowhere-efsm").unwrap();
        assert_eq!(req.recv_bytes(0), Err(zmq::Error::EFSM));
    });
}

#[test]
fn dontwait_returns_eagain_at_once_and_keeps_nothing_pending() {
    run(|| {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("dontwait")).unwrap();
        assert_eq!(pull.recv_bytes(zmq::DONTWAIT), Err(zmq::Error::EAGAIN));
        let mut msg = zmq::Message::new();
        assert_eq!(pull.recv(&mut msg, zmq::DONTWAIT), Err(zmq::Error::EAGAIN));
        let push = ctx.socket(zmq::PUSH).unwrap(); // no peer: cannot send
        assert_eq!(push.send("x", zmq::DONTWAIT), Err(zmq::Error::EAGAIN));
    });
}

#[test]
fn rcvtimeo_expires_with_eagain_while_other_coroutines_run() {
    run(|| {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("rcvtimeo")).unwrap();
        pull.set_rcvtimeo(200).unwrap();
        let ping = Ping::start();
        let start = Instant::now();
        assert_eq!(pull.recv_bytes(0), Err(zmq::Error::EAGAIN));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(200),
            "returned early: {waited:?}"
        );
        assert!(
            ping.rounds() > 0,
            "the worker was blocked during the timed wait"
        );
        ping.stop();
        pull.set_rcvtimeo(0).unwrap();
        assert_eq!(pull.recv_bytes(0), Err(zmq::Error::EAGAIN));
    });
}

#[test]
fn rcvtimeo_does_not_fire_when_a_message_arrives_in_time() {
    run(|| {
        let ctx = zmq::Context::new();
        let endpoint = inproc("rcvtimeo-ok");
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&endpoint).unwrap();
        pull.set_rcvtimeo(30_000).unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        let sender = zmq::spawn(move || {
            may::coroutine::sleep(Duration::from_millis(20));
            push.send("late but in time", 0).unwrap();
            push
        });
        assert_eq!(pull.recv_string(0).unwrap().unwrap(), "late but in time");
        drop(join(sender));
    });
}

#[test]
fn sndtimeo_expires_with_eagain_and_every_accepted_message_arrives() {
    run(|| {
        let ctx = zmq::Context::new();
        let endpoint = inproc("sndtimeo");
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.set_sndhwm(1).unwrap();
        push.set_sndtimeo(100).unwrap();
        push.bind(&endpoint).unwrap();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.set_rcvhwm(1).unwrap();
        pull.connect(&endpoint).unwrap();
        // Fill the pipe until a send times out.
        let mut sent = 0u32;
        let start = Instant::now();
        while push.send(&sent.to_be_bytes()[..], 0).is_ok() {
            sent += 1;
            assert!(sent < 10_000, "HWM never reached");
        }
        assert!(start.elapsed() >= Duration::from_millis(100));
        // Everything that send() accepted arrives, in order, and nothing else.
        pull.set_rcvtimeo(100).unwrap();
        for expected in 0..sent {
            assert_eq!(pull.recv_bytes(0).unwrap(), expected.to_be_bytes());
        }
        assert_eq!(pull.recv_bytes(0), Err(zmq::Error::EAGAIN));
    });
}

#[test]
fn hwm_back_pressure_with_several_producers_loses_nothing() {
    const PRODUCERS: u32 = 4;
    const EACH: u32 = 5_000;
    run(|| {
        let ctx = zmq::Context::new();
        let endpoint = inproc("hwm");
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.set_rcvhwm(10).unwrap();
        pull.bind(&endpoint).unwrap();
        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let push = ctx.socket(zmq::PUSH).unwrap();
            push.set_sndhwm(10).unwrap();
            push.connect(&endpoint).unwrap();
            producers.push(zmq::spawn(move || {
                for n in 0..EACH {
                    push.send_multipart([&p.to_be_bytes()[..], &n.to_be_bytes()[..]], 0)
                        .unwrap();
                }
                push
            }));
        }
        let mut next = vec![0u32; PRODUCERS as usize];
        for received in 0..PRODUCERS * EACH {
            let parts = pull.recv_multipart(0).unwrap();
            let p = u32::from_be_bytes(parts[0][..].try_into().unwrap()) as usize;
            let n = u32::from_be_bytes(parts[1][..].try_into().unwrap());
            assert_eq!(
                n, next[p],
                "producer {p} out of order after {received} messages"
            );
            next[p] += 1;
            if received % 1000 == 0 {
                may::coroutine::yield_now(); // let producers refill while we hold the HWM
            }
        }
        assert_eq!(next, vec![EACH; PRODUCERS as usize]);
        pull.set_rcvtimeo(50).unwrap();
        assert_eq!(
            pull.recv_bytes(0),
            Err(zmq::Error::EAGAIN),
            "extra messages"
        );
        for producer in producers {
            drop(join(producer));
        }
    });
}

#[test]
fn context_termination_wakes_100_parked_coroutines_with_eterm() {
    run(|| {
        let mut ctx = zmq::Context::new();
        let (parked_tx, parked_rx) = may::sync::mpsc::channel();
        let mut waiters = Vec::new();
        for i in 0..100 {
            let socket = ctx
                .socket(if i % 2 == 0 { zmq::PULL } else { zmq::REP })
                .unwrap();
            socket.bind(&inproc("eterm")).unwrap();
            let parked_tx = parked_tx.clone();
            waiters.push(zmq::spawn(move || {
                parked_tx.send(()).unwrap();
                let result = socket.recv_bytes(0);
                drop(socket); // the termination waits for every socket to close
                result
            }));
        }
        for _ in 0..100 {
            parked_rx.recv().unwrap();
        }
        // Parks this coroutine only: the termination completes once the waiters, on this same
        // single worker, have closed their sockets (a destroy that blocked the worker would hang
        // here and fail at the time limit).
        ctx.destroy().unwrap();
        for waiter in waiters {
            assert_eq!(join(waiter), Err(zmq::Error::ETERM));
        }
    });
}

/// may's `wait_io` returns 0 both after a cancellation (whose trace it erases) and after a
/// stale wake-up (docs/may.md), so a 0 cannot be taken for a cancellation: taking it for one
/// killed about one coroutine in a million under load, silently. A cancelled coroutine parked
/// in a green call therefore keeps waiting, and its call completes when the socket is ready.
#[test]
fn a_cancel_of_a_coroutine_parked_in_a_green_call_is_not_taken_for_its_end() {
    run(|| {
        let ctx = zmq::Context::new();
        let endpoint = inproc("cancel");
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&endpoint).unwrap();
        let (parked_tx, parked_rx) = may::sync::mpsc::channel();
        let waiter = zmq::spawn(move || {
            parked_tx.send(()).unwrap();
            pull.recv_bytes(0)
        });
        parked_rx.recv().unwrap();
        // One worker: the waiter is parked in its receive by now.
        may::coroutine::yield_now();
        // SAFETY: were the cancellation honoured, unwinding would drop only what the waiter
        // owns (its socket).
        unsafe { waiter.coroutine().cancel() };
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        push.send("after the cancel", 0).unwrap();
        assert_eq!(
            join(waiter),
            Ok(b"after the cancel".to_vec()),
            "the parked receive ended without its message"
        );
    });
}

#[test]
fn destroy_inside_a_coroutine_waits_for_sockets_without_blocking_others() {
    run(|| {
        let mut ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("destroy")).unwrap();
        let ping = Ping::start();
        let probe = ping.counter();
        let closer = zmq::spawn(move || {
            // Parks until the destroyer's termination reaches this socket.
            assert_eq!(pull.recv_bytes(0), Err(zmq::Error::ETERM));
            // destroy still waits for this socket: the probe must keep running meanwhile (if
            // destroy blocked the worker, this wait would hang and fail at the time limit).
            common::wait_for_rounds(&probe, 3);
            drop(pull);
        });
        ctx.destroy().unwrap();
        join(closer);
        ping.stop();
    });
}

#[test]
fn an_unroutable_router_mandatory_send_fails_at_once() {
    run(|| {
        let ctx = zmq::Context::new();
        let router = ctx.socket(zmq::ROUTER).unwrap();
        router.set_router_mandatory(true).unwrap();
        router.bind(&inproc("mandatory")).unwrap();
        // No peer has this identity: libzmq refuses at once, and a green send must not park
        // waiting for a POLLOUT that will never come.
        let start = Instant::now();
        assert_eq!(
            router.send_multipart(["nobody", "hello"], 0),
            Err(zmq::Error::EHOSTUNREACH)
        );
        assert!(start.elapsed() < Duration::from_secs(1), "the send waited");
    });
}

#[test]
fn a_parked_receive_outlives_its_tcp_peer_and_gets_the_next_peers_message() {
    run(|| {
        let ctx = zmq::Context::new();
        let server = ctx.socket(zmq::DEALER).unwrap();
        let endpoint = common::bind_tcp(&server);
        let client = ctx.socket(zmq::DEALER).unwrap();
        client.set_reconnect_ivl(20).unwrap();
        client.connect(&endpoint).unwrap();
        server.send("first", 0).unwrap();
        assert_eq!(client.recv_string(0).unwrap().unwrap(), "first");

        let (parked_tx, parked_rx) = may::sync::mpsc::channel();
        let receiver = zmq::spawn(move || {
            parked_tx.send(()).unwrap();
            client.recv_string(0).unwrap().unwrap() // parks: the peer is about to go
        });
        // One worker: the receiver goes from its send straight into its park without yielding,
        // so once this coroutine runs again the receive is parked.
        parked_rx.recv().unwrap();
        drop(server); // the peer is gone; the parked receive must neither fail nor hang

        // A new peer on the same endpoint: the client reconnects and the receive completes.
        let comeback = ctx.socket(zmq::DEALER).unwrap();
        comeback.set_linger(0).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(err) = comeback.bind(&endpoint) {
            assert_eq!(err, zmq::Error::EADDRINUSE, "rebinding {endpoint}");
            assert!(Instant::now() < deadline, "{endpoint} stayed in use");
            may::coroutine::sleep(Duration::from_millis(10));
        }
        comeback.send("second", 0).unwrap();
        // The rebind loop and the new peer ran on this one worker while the receive was parked:
        // a receive that blocked the thread would hang here (and fail at the time limit).
        assert_eq!(join(receiver), "second");
    });
}

#[test]
fn a_context_handle_that_outlives_destroy_reports_eterm() {
    run(|| {
        let mut ctx = zmq::Context::new();
        let other = ctx.clone();
        ctx.destroy().unwrap();
        // libzmq has freed the context: every call through a handle must say so, not touch it.
        assert_eq!(other.socket(zmq::PULL).err(), Some(zmq::Error::ETERM));
        assert_eq!(other.get_max_sockets(), Err(zmq::Error::ETERM));
        assert_eq!(other.set_max_sockets(10), Err(zmq::Error::ETERM));
        assert_eq!(ctx.socket(zmq::PUSH).err(), Some(zmq::Error::ETERM));
        assert_eq!(ctx.destroy(), Ok(()), "a second destroy is a no-op");
    });
}

#[test]
fn bad_arguments_fail_with_libzmqs_errors() {
    run(|| {
        let ctx = zmq::Context::new();
        assert_eq!(ctx.set_max_sockets(0), Err(zmq::Error::EINVAL));
        let socket = ctx.socket(zmq::PULL).unwrap();
        assert_eq!(socket.bind("tcp://not an address"), Err(zmq::Error::EINVAL));
        assert_eq!(
            socket.connect("nosuchtransport://x"),
            Err(zmq::Error::EPROTONOSUPPORT)
        );
        assert_eq!(socket.set_rcvtimeo(-2), Err(zmq::Error::EINVAL));
        // A receive of bytes that are not UTF-8 hands them back, as `zmq` does.
        let push = ctx.socket(zmq::PUSH).unwrap();
        socket.bind(&inproc("not-utf8")).unwrap();
        push.connect(&socket.get_last_endpoint().unwrap().unwrap())
            .unwrap();
        push.send(&[0xff, 0xfe][..], 0).unwrap();
        assert_eq!(socket.recv_string(0).unwrap(), Err(vec![0xff, 0xfe]));
    });
}
