//! Closing a ZmqStream: a dropped stream leaves the loop and frees its socket, `close` with
//! linger delivers the queue or reports every message it could not send, the close callback
//! runs once, callbacks run by `close` may use the stream again; ETERM under streams is quiet
//! and closes them, leaving nothing that holds a socket.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use zmqloop::eventloop::{Frames, IOLoop, ZmqStream};
use zmqloop::green as zmq;

use crate::{
    common, counting, destroy_once_started, ms, pull_stream, recv_within, seen, stop_after, within,
    Seen, LIMIT,
};

#[test]
fn a_stream_dropped_without_close_leaves_the_loop_and_frees_its_socket() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-dropped-stream");
        stream.on_recv(|_| {});
        let socket = Rc::downgrade(&stream.socket().unwrap());
        let holder = Rc::new(RefCell::new(Some(stream)));
        let h = holder.clone();
        // Once the loop has registered the stream for POLLIN: drop every handle, then try to
        // make the socket readable. Nothing can receive any more; the loop must let go of the
        // socket (else it would report it ready on every poll: a busy loop). It lets go at the
        // drop, so the PULL may be closed already and the PUSH without a peer: the send must
        // not wait (EAGAIN is as good: the socket is gone).
        ioloop.call_later(ms(20), move || {
            drop(h.borrow_mut().take());
            match push.send("unwanted", zmq::DONTWAIT) {
                Ok(()) | Err(zmq::Error::EAGAIN) => {}
                Err(err) => panic!("send: {err}"),
            }
        });
        crate::run_until_released(&ioloop, &socket, ms(2000));
        ioloop.close();
    });
}

#[test]
fn close_with_linger_delivers_the_queue_and_runs_the_close_callback_once() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        let endpoint = common::bind_tcp(&pull);
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.set_sndhwm(5).unwrap(); // most of the queue must wait for the connection
        push.connect(&endpoint).unwrap();
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let outcomes: Seen<zmq::Result<()>> = seen();
        let o = outcomes.clone();
        stream.on_send(move |_, status| o.borrow_mut().push(*status));
        let (closes, on_close) = counting();
        stream.set_close_callback(on_close);
        for i in 0..50 {
            stream.send(format!("{i}"));
        }
        assert!(!stream.closed());
        stream.close(Some(Duration::from_secs(10)));
        assert!(stream.closed());
        assert!(stream.socket().is_none());
        assert_eq!(closes.get(), 1);
        assert_eq!(
            outcomes.borrow().len(),
            50,
            "a queued message was not reported"
        );
        assert!(
            outcomes.borrow().iter().all(Result::is_ok),
            "{:?}",
            outcomes.borrow()
        );
        for i in 0..50 {
            assert_eq!(
                recv_within(&pull, ms(5000)),
                vec![format!("{i}").into_bytes()]
            );
        }

        stream.close(Some(ms(10))); // harmless
        assert_eq!(closes.get(), 1, "the close callback ran twice");
        // Sending on a closed stream is reported, not silently dropped.
        let late = Rc::new(RefCell::new(None));
        let l = late.clone();
        stream.send_multipart_with(["late"], move |_, status| *l.borrow_mut() = Some(*status));
        assert!(
            matches!(*late.borrow(), Some(Err(_))),
            "{:?}",
            late.borrow()
        );
        assert!(!stream.sending());
    });
}

#[test]
fn close_reports_every_message_it_could_not_send() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.set_sndhwm(1).unwrap();
        push.bind(&common::inproc("ev-nowhere")).unwrap(); // no peer: nothing can be sent
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let via_stream: Seen<(Frames, zmq::Result<()>)> = seen();
        let v = via_stream.clone();
        stream.on_send(move |frames, status| v.borrow_mut().push((frames.to_vec(), *status)));
        let via_own: Seen<(Frames, zmq::Result<()>)> = seen();
        for i in 0..6 {
            if i % 2 == 0 {
                stream.send(format!("{i}"));
            } else {
                let o = via_own.clone();
                stream.send_multipart_with([format!("{i}")], move |frames, status| {
                    o.borrow_mut().push((frames.to_vec(), *status))
                });
            }
        }
        // A few loop iterations first: the sends stay queued (EAGAIN is not an outcome yet).
        stop_after(&ioloop, ms(20));
        ioloop.start().unwrap();
        assert!(via_stream.borrow().is_empty() && via_own.borrow().is_empty());
        assert!(stream.sending());

        let started = Instant::now();
        stream.close(Some(ms(50)));
        let took = started.elapsed();
        assert!(took >= ms(40), "close did not honour the linger: {took:?}");
        assert!(took < Duration::from_secs(5), "close took {took:?}");
        let all: Vec<_> = via_stream
            .borrow()
            .iter()
            .chain(via_own.borrow().iter())
            .cloned()
            .collect();
        assert_eq!(all.len(), 6, "each queued message must be reported once");
        assert!(
            all.iter()
                .all(|(_, status)| *status == Err(zmq::Error::EAGAIN)),
            "{all:?}"
        );
        let mut reported: Vec<Frames> = all.into_iter().map(|(frames, _)| frames).collect();
        reported.sort();
        let mut expected: Vec<Frames> = (0..6).map(|i| vec![format!("{i}").into_bytes()]).collect();
        expected.sort();
        assert_eq!(reported, expected);
        assert_eq!(
            via_own.borrow().len(),
            3,
            "per-send callbacks got their own"
        );
        assert!(!stream.sending());
        assert!(stream.closed());
        ioloop.close();
    });
}

/// Streams on a loop whose context is terminated by another thread; returns start's outcome
/// and, for each stream, whether it was closed and how often its close callback ran, then
/// drops everything (without closing the streams) and waits for `destroy` to finish.
fn terminate_under_streams() -> (zmq::Result<()>, Vec<(bool, usize)>) {
    let ctx = zmq::Context::new();
    let ioloop = IOLoop::new().unwrap();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind(&common::inproc("ev-eterm-pull")).unwrap();
    let receiver = ZmqStream::new(pull, &ioloop).unwrap();
    receiver.on_recv(|_| {});
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.bind(&common::inproc("ev-eterm-push")).unwrap(); // no peer: the queue waits
    let sender = ZmqStream::new(push, &ioloop).unwrap();
    sender.send("stuck");
    let streams = [receiver, sender];
    let closes: Vec<_> = streams
        .iter()
        .map(|stream| {
            let (count, on_close) = counting();
            stream.set_close_callback(on_close);
            count
        })
        .collect();
    let destroyed = destroy_once_started(&ioloop, &ctx);
    let outcome = ioloop.start();
    let states = streams
        .iter()
        .zip(&closes)
        .map(|(stream, count)| (stream.closed(), count.get()))
        .collect();
    // Dropping the streams and the loop (no close) must release the sockets.
    drop(streams);
    drop(ioloop);
    let destroyed = destroyed.recv_timeout(Duration::from_secs(10)).expect(
        "Context::destroy did not finish after the streams and the loop were dropped: \
         something still holds a socket",
    );
    assert_eq!(destroyed, Ok(()));
    (outcome, states)
}

#[test]
fn context_termination_ends_a_loop_with_streams_quietly() {
    within(LIMIT, || {
        let (outcome, _) = terminate_under_streams();
        assert_eq!(outcome, Ok(()), "ETERM must end start() with Ok");
        assert!(
            common::logs::here().is_empty(),
            "ETERM was not quiet: {:?}",
            common::logs::here()
        );
    });
}

#[test]
fn context_termination_closes_the_streams() {
    within(LIMIT, || {
        let (outcome, states) = terminate_under_streams();
        assert_eq!(outcome, Ok(()));
        assert_eq!(
            states,
            [(true, 1), (true, 1)],
            "(closed, close callbacks) of each stream after ETERM"
        );
    });
}

#[test]
fn callbacks_run_by_close_may_use_the_stream_again() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap(); // no peer: queued sends cannot go
        push.set_sndhwm(1).unwrap();
        push.bind(&format!("inproc://close-reentrant-{}", std::process::id()))
            .unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let reported = Rc::new(Cell::new(0));
        let resent_reported = Rc::new(Cell::new(0));
        let counter = resent_reported.clone();
        stream.on_send(move |_, status| {
            assert!(status.is_err());
            counter.set(counter.get() + 1);
        });
        for _ in 0..3 {
            let again = stream.clone();
            let reported = reported.clone();
            stream.send_multipart_with(["queued"], move |_, status| {
                assert!(status.is_err());
                reported.set(reported.get() + 1);
                again.send("queued by a callback during close"); // re-entrant
            });
        }
        let closer = stream.clone();
        let close_callback_done = Rc::new(Cell::new(false));
        let done = close_callback_done.clone();
        stream.set_close_callback(move || {
            closer.set_close_callback(|| {}); // re-entrant
            done.set(true);
        });
        stream.close(None);
        assert_eq!(reported.get(), 3);
        // The messages queued by the callbacks were reported too, none silently dropped
        // (a callback that panicked on a held borrow would have lost them).
        assert_eq!(resent_reported.get(), 3);
        assert!(
            close_callback_done.get(),
            "the close callback could not use the stream"
        );
        assert!(stream.closed());
    });
}
