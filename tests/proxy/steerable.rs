//! `proxy_steerable` and `proxy_steerable_with_capture`: PAUSE (nothing forwarded, counters
//! frozen), RESUME (everything held back arrives, in order), STATISTICS (8 native-endian u64 with
//! exact values, over PAIR and over REP/REQ), TERMINATE (`Ok`), an unknown command counted and
//! ignored, and the capture of both directions.

use may::coroutine::JoinHandle;

use crate::common::{join, run, zmq};
use crate::{bound_with_peers, expect_captured, expect_messages, frames, pass_through, size};

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

/// Sends TERMINATE over `steer` and checks that the steerable proxy ends with `Ok`.
fn terminate(steer: &zmq::Socket, proxy: JoinHandle<zmq::Result<()>>) {
    steer.send("TERMINATE", 0).unwrap();
    assert_eq!(join(proxy), Ok(()), "TERMINATE must end the proxy with Ok");
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
