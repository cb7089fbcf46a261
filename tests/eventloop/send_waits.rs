//! Queued sends wait for the socket (pyzmq: "the IOLoop will wait until socket is able to send
//! (for instance if HWM is met, or a REQ/REP pattern prohibits sending at a certain point)"),
//! and only errors that will not go away drop a message; the send queue's optional limit.
//!
//! - REQ: five requests queued at once all go, each once the reply to the last is in; none is
//!   reported as an error (EFSM used to drop four of them).
//! - REP: a reply queued before the request keeps its place and answers the request.
//! - DEALER at its high-water mark: every message waits while the peer does not read, and all
//!   arrive, in order, once it does.
//! - ROUTER_MANDATORY: only the messages to unknown peers are refused (EHOSTUNREACH), each
//!   once; those around them go. A socket type that cannot send (PULL, SUB) has each send
//!   refused with ENOTSUP instead of left waiting.
//! - `set_send_queue_limit`: a send beyond the limit is refused at once with EAGAIN, to its
//!   own callback or the stream's, and not queued; once the queue drains, sends are accepted
//!   again; a send refused inside the stream's send callback reaches it after it returns.
//!
//! That a stalled REQ or REP stream costs no CPU is measured in `tests/stream_stall.rs`, alone
//! in its binary.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use zmqloop::eventloop::{Frames, IOLoop, ZmqStream};
use zmqloop::green as zmq;

use crate::common::full::small_pipe;
use crate::{
    common, frames, ms, receive_count, recv_within, router_mandatory_and_known_peer, seen,
    stop_after, stream_and_peer, within, Seen, LIMIT,
};

/// How long a test's loop may run before it is stopped and the test fails (what it waits for
/// comes within milliseconds).
const DEADLINE: Duration = Duration::from_secs(10);

/// Every outcome a stream's send callback got, in order.
type Reports = Seen<(Frames, zmq::Result<()>)>;

/// Records every outcome of `stream`'s send callback; the first error also stops the loop (the
/// tests expect none, so a failing test fails at once).
fn record_reports(stream: &ZmqStream, stop_on_error: bool) -> Reports {
    let reports: Reports = seen();
    let (record, stopper) = (reports.clone(), stream.ioloop().clone());
    stream.on_send(move |frames, status| {
        record.borrow_mut().push((frames.to_vec(), *status));
        if stop_on_error && status.is_err() {
            stopper.stop();
        }
    });
    reports
}

/// `(frames, Ok(()))` for each one-frame message in `parts`.
fn all_ok(parts: &[String]) -> Vec<(Frames, zmq::Result<()>)> {
    parts
        .iter()
        .map(|p| (vec![p.clone().into_bytes()], Ok(())))
        .collect()
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn five_requests_queued_at_once_on_a_req_stream_all_get_their_replies_in_order() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (echo, req) = stream_and_peer(&ctx, &ioloop, "ev-req-five", zmq::REP, zmq::REQ);
        echo.on_recv_stream(|stream, frames| stream.send_multipart(frames));
        let client = ZmqStream::new(req, &ioloop).unwrap();
        let replies = receive_count(&client, 5);
        let reports = record_reports(&client, true);
        let requests = numbered("q", 5);
        for request in &requests {
            client.send(request.as_str());
        }
        assert_eq!(client.queued(), 5);
        stop_after(&ioloop, DEADLINE);
        ioloop.start().unwrap();

        assert_eq!(
            *reports.borrow(),
            all_ok(&requests),
            "every request sent, in order, none refused (EFSM must make a request wait)"
        );
        let expected: Vec<Frames> = requests.iter().map(|r| frames(&[r.as_str()])).collect();
        assert_eq!(*replies.borrow(), expected, "a reply per request, in order");
        assert_eq!(client.queued(), 0);
        client.close(None);
        echo.close(None);
        ioloop.close();
    });
}

#[test]
fn a_rep_stream_keeps_a_reply_queued_before_its_request_and_sends_it_after() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (server, req) = stream_and_peer(&ctx, &ioloop, "ev-rep-early", zmq::REP, zmq::REQ);
        let requests = receive_count(&server, usize::MAX);
        let reports = record_reports(&server, true);
        server.send("early");
        // The REP has no request yet: libzmq refuses the send (EFSM), the stream keeps it.
        assert_eq!(
            server.flush(zmq::POLLOUT, None),
            0,
            "nothing can be sent yet"
        );
        assert_eq!(server.queued(), 1, "the early reply left the queue");
        assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());

        let client = ZmqStream::new(req, &ioloop).unwrap();
        let replies = receive_count(&client, 1);
        client.send("request");
        stop_after(&ioloop, DEADLINE);
        ioloop.start().unwrap();

        assert_eq!(*requests.borrow(), [frames(&["request"])]);
        assert_eq!(
            *replies.borrow(),
            [frames(&["early"])],
            "the kept reply answers"
        );
        assert_eq!(*reports.borrow(), all_ok(&["early".to_owned()]));
        assert_eq!(server.queued(), 0);
        client.close(None);
        server.close(None);
        ioloop.close();
    });
}

#[test]
fn a_dealer_stream_at_its_hwm_loses_nothing_while_its_peer_does_not_read() {
    const MESSAGES: usize = 50;
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (dealer, peer) = small_pipe(&ctx, "ev-dealer-hwm", zmq::DEALER, zmq::DEALER);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(dealer, &ioloop).unwrap();
        let reports = record_reports(&stream, true);
        let messages = numbered("m", MESSAGES);
        for message in &messages {
            stream.send(message.as_str());
        }

        // The peer does not read: the stream sends what the pipe holds, then keeps the rest.
        let sent = stream.flush(zmq::POLLOUT, None);
        assert!(
            sent < MESSAGES,
            "the pipe took all {sent}: no high-water mark"
        );
        assert_eq!(stream.queued(), MESSAGES - sent);
        assert_eq!(*reports.borrow(), all_ok(&messages[..sent]));

        // The peer reads, on the loop: the rest follows as it makes room.
        let reader = ZmqStream::new(peer, &ioloop).unwrap();
        let got = receive_count(&reader, MESSAGES);
        stop_after(&ioloop, DEADLINE);
        ioloop.start().unwrap();

        let expected: Vec<Frames> = messages.iter().map(|m| frames(&[m.as_str()])).collect();
        assert_eq!(*got.borrow(), expected, "lost or reordered");
        assert_eq!(*reports.borrow(), all_ok(&messages));
        assert_eq!(stream.queued(), 0);
        reader.close(None);
        stream.close(None);
        ioloop.close();
    });
}

#[test]
fn router_mandatory_refuses_only_the_messages_to_unknown_peers() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (router, dealer) = router_mandatory_and_known_peer(&ctx, "ev-mandatory-unknown");
        assert_eq!(recv_within(&router, ms(2000)), frames(&["known", "hello"]));

        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(router, &ioloop).unwrap();
        let reports = record_reports(&stream, false);
        let queue = [
            ["known", "a"],
            ["nobody", "x"],
            ["known", "b"],
            ["nobody-else", "y"],
            ["known", "c"],
        ];
        for message in queue {
            stream.send_multipart(message);
        }
        assert_eq!(stream.queued(), queue.len());
        let got = {
            let reader = ZmqStream::new(dealer, &ioloop).unwrap();
            let got = receive_count(&reader, 3);
            stop_after(&ioloop, DEADLINE);
            ioloop.start().unwrap();
            reader.close(None);
            got
        };

        let unreachable = Err(zmq::Error::EHOSTUNREACH);
        let expected: Vec<(Frames, zmq::Result<()>)> = queue
            .iter()
            .map(|m| {
                (
                    frames(m),
                    if m[0] == "known" { Ok(()) } else { unreachable },
                )
            })
            .collect();
        assert_eq!(
            *reports.borrow(),
            expected,
            "one report each, in queue order"
        );
        assert_eq!(
            *got.borrow(),
            [frames(&["a"]), frames(&["b"]), frames(&["c"])]
        );
        assert_eq!(stream.queued(), 0);
        stream.close(None);
        ioloop.close();
    });
}

#[test]
fn a_socket_type_that_cannot_send_has_each_send_refused_not_kept() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        for kind in [zmq::PULL, zmq::SUB] {
            let stream = ZmqStream::new(ctx.socket(kind).unwrap(), &ioloop).unwrap();
            let reports = record_reports(&stream, false);
            stream.send("one");
            stream.send("two");
            assert_eq!(stream.flush(zmq::POLLOUT, None), 2, "{kind:?}");
            let refused = Err(zmq::Error::ENOTSUP);
            assert_eq!(
                *reports.borrow(),
                [(frames(&["one"]), refused), (frames(&["two"]), refused)],
                "{kind:?}"
            );
            assert_eq!(stream.queued(), 0, "{kind:?}");
            stream.close(None);
        }
    });
}

#[test]
fn a_send_beyond_the_queue_limit_is_refused_at_once_until_the_queue_drains() {
    const LIMIT_OF_QUEUE: usize = 3;
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (push, pull) = small_pipe(&ctx, "ev-queue-limit", zmq::PUSH, zmq::PULL);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        assert_eq!(stream.send_queue_limit(), None);
        stream.set_send_queue_limit(Some(LIMIT_OF_QUEUE));
        assert_eq!(stream.send_queue_limit(), Some(LIMIT_OF_QUEUE));
        let reports = record_reports(&stream, false);

        // The peer does not read: the pipe fills, then the queue, up to its limit.
        let mut accepted = Vec::new();
        while stream.queued() < LIMIT_OF_QUEUE {
            let message = format!("m{}", accepted.len());
            stream.send(message.as_str());
            accepted.push(message);
            stream.flush(zmq::POLLOUT, None);
            assert!(
                accepted.len() < 1000,
                "the queue never filled: no high-water mark"
            );
        }
        let in_pipe = accepted.len() - LIMIT_OF_QUEUE;
        assert_eq!(*reports.borrow(), all_ok(&accepted[..in_pipe]));

        // Beyond the limit: EAGAIN before the send returns, to the stream's callback or the
        // send's own, and the queue does not grow.
        stream.send("refused");
        let refused = (frames(&["refused"]), Err(zmq::Error::EAGAIN));
        assert_eq!(reports.borrow().last(), Some(&refused));
        let own: Reports = seen();
        let record = own.clone();
        stream.send_multipart_with(["refused too"], move |frames, status| {
            record.borrow_mut().push((frames.to_vec(), *status));
        });
        assert_eq!(
            *own.borrow(),
            [(frames(&["refused too"]), Err(zmq::Error::EAGAIN))]
        );
        assert_eq!(stream.queued(), LIMIT_OF_QUEUE);
        assert_eq!(reports.borrow().len(), in_pipe + 1);

        // The peer reads: the queue drains, and a send is accepted again.
        let reader = ZmqStream::new(pull, &ioloop).unwrap();
        let got = receive_count(&reader, accepted.len() + 1);
        let (drained, total) = (reports.clone(), accepted.len());
        let again = Rc::new(Cell::new(None));
        let queued_again = again.clone();
        stream.on_send_stream(move |stream, frames, status| {
            drained.borrow_mut().push((frames.to_vec(), *status));
            let sent = drained.borrow().iter().filter(|(_, s)| s.is_ok()).count();
            if sent == total {
                stream.send("again");
                queued_again.set(Some(stream.queued()));
            }
        });
        stop_after(&ioloop, DEADLINE);
        ioloop.start().unwrap();

        assert_eq!(
            again.get(),
            Some(1),
            "the send after the drain was not queued"
        );
        let mut expected: Vec<Frames> = accepted.iter().map(|m| frames(&[m.as_str()])).collect();
        expected.push(frames(&["again"]));
        assert_eq!(*got.borrow(), expected, "lost or reordered");
        stream.close(None);
        reader.close(None);
        ioloop.close();
    });
}

#[test]
fn a_send_refused_inside_the_send_callback_reaches_it_after_it_returns() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (_pull, push) = common::socket_pair(&ctx, "ev-limit-nested", zmq::PULL, zmq::PUSH);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        stream.set_send_queue_limit(Some(1));
        let reports: Reports = seen();
        let record = reports.clone();
        stream.on_send_stream(move |stream, sent, status| {
            record.borrow_mut().push((sent.to_vec(), *status));
            if sent == [b"first"] {
                stream.send("second"); // fits
                stream.send("third"); // refused: reported once this call returns
                record.borrow_mut().push((frames(&["returns"]), Ok(())));
            }
        });
        stream.send("first");
        assert_eq!(stream.flush(zmq::POLLOUT, Some(1)), 1);
        let eagain = Err(zmq::Error::EAGAIN);
        assert_eq!(
            *reports.borrow(),
            [
                (frames(&["first"]), Ok(())),
                (frames(&["returns"]), Ok(())),
                (frames(&["third"]), eagain),
            ]
        );
        assert!(
            !common::logs::here().iter().any(|l| l.contains("panicked")),
            "{:?}",
            common::logs::here()
        );
        assert_eq!(stream.queued(), 1);
        stream.close(None);
    });
}
