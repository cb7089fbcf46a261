//! ZmqStream's zero-copy frames (pyzmq's `copy=False`): `on_recv_msgs` hands out libzmq's
//! messages with the bytes sent; `send_msgs` and byte sends nobody watches hand libzmq the
//! caller's buffers (proved by pointer: over inproc libzmq passes a message's buffer through,
//! so the receiver sees the sender's very allocation unless someone copied it); a message send
//! that fails hands the messages back intact, to its own callback or to `on_send_msgs` (after it
//! returns, if the send was refused inside it); byte and message sends keep one order and each
//! reports to its own kind of callback.

use zmqloop::eventloop::{Frames, IOLoop, Unsent, ZmqStream};
use zmqloop::green as zmq;

use crate::{
    common, frames, ms, pull_stream, recv_within, router_mandatory_and_known_peer, seen,
    stream_and_peer, within, Seen, LIMIT,
};

/// A frame over libzmq's inline size (33 bytes), so libzmq keeps it in the buffer it was given.
fn large(byte: u8) -> Vec<u8> {
    vec![byte; 1000]
}

/// What a receive callback saw: the bytes and the address of each frame.
type Seens = Seen<Vec<(Vec<u8>, usize)>>;

/// The bytes and buffer address of each of `msgs`.
fn bytes_and_addresses<T: std::ops::Deref<Target = [u8]>>(msgs: &[T]) -> Vec<(Vec<u8>, usize)> {
    msgs.iter()
        .map(|msg| (msg.to_vec(), msg.as_ptr() as usize))
        .collect()
}

/// Records what it gets in `got`, and stops `ioloop` once it holds `n` messages.
fn record_until(got: &Seens, ioloop: &IOLoop, n: usize) -> impl Fn(Vec<(Vec<u8>, usize)>) {
    let (got, ioloop) = (got.clone(), ioloop.clone());
    move |msg| {
        got.borrow_mut().push(msg);
        if got.borrow().len() == n {
            ioloop.stop();
        }
    }
}

#[test]
fn on_recv_msgs_gets_the_bytes_sent_frame_by_frame() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-msgs-bytes");
        let sent: [Vec<u8>; 4] = [
            b"".to_vec(),
            b"\x00\xff".to_vec(),
            b"33 bytes".repeat(5),
            large(7),
        ];
        push.send_multipart(sent.clone(), 0).unwrap();
        push.send("one", 0).unwrap();
        let got: Seens = seen();
        let record = record_until(&got, &ioloop, 2);
        stream.on_recv_stream_msgs(move |_, msgs: Vec<zmq::Message>| {
            record(bytes_and_addresses(&msgs));
        });
        assert!(stream.receiving());
        ioloop.start().unwrap();
        let got: Vec<Frames> = got
            .borrow()
            .iter()
            .map(|msg| msg.iter().map(|(bytes, _)| bytes.clone()).collect())
            .collect();
        assert_eq!(got, [sent.to_vec(), frames(&["one"])]);
        stream.close(None);
    });
}

#[test]
fn large_frames_cross_the_stream_without_a_copy_both_ways() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, far) =
            stream_and_peer(&ctx, &ioloop, "ev-msgs-zero-copy", zmq::PAIR, zmq::PAIR);
        let got: Seens = seen();
        let record = record_until(&got, &ioloop, 1);
        // A zero-copy echo that records where each frame it got lives.
        stream.on_recv_stream_msgs(move |stream, msgs| {
            record(bytes_and_addresses(&msgs));
            stream.send_msgs(msgs);
        });
        let body = large(1);
        let at = body.as_ptr() as usize;
        far.send(body, 0).unwrap(); // moved into the message: the buffer at `at`
        ioloop.start().unwrap();
        assert_eq!(got.borrow()[0], [(large(1), at)], "received: copied");
        let echoed = far.recv_msg(0).unwrap();
        assert_eq!(&echoed[..], &large(1)[..]);
        assert_eq!(echoed.as_ptr() as usize, at, "sent back: copied");

        // A stream's own buffer (`send_msg` of a `Vec<u8>`) reaches the peer as it is.
        let body = large(2);
        let at = body.as_ptr() as usize;
        stream.send_msg(body);
        stream.flush(zmq::POLLOUT, None);
        let received = far.recv_msg(0).unwrap();
        assert_eq!(
            (&received[..], received.as_ptr() as usize),
            (&large(2)[..], at)
        );

        // The control: the byte callback copies, so the same check sees another address.
        let copies: Seens = seen();
        let record = record_until(&copies, &ioloop, 1);
        stream.on_recv(move |frames| record(bytes_and_addresses(&frames)));
        let body = large(3);
        let at = body.as_ptr() as usize;
        far.send(body, 0).unwrap();
        ioloop.start().unwrap();
        assert_eq!(copies.borrow()[0][0].0, large(3));
        assert_ne!(
            copies.borrow()[0][0].1,
            at,
            "on_recv handed out libzmq's buffer"
        );
        stream.close(None);
    });
}

#[test]
fn a_byte_send_nobody_watches_is_moved_and_a_watched_one_is_kept() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, far) = stream_and_peer(&ctx, &ioloop, "ev-bytes-moved", zmq::PAIR, zmq::PAIR);

        // No send callback: the frames are moved into messages, large ones uncopied.
        let (small, body) = (b"small".to_vec(), large(4));
        let at = body.as_ptr() as usize;
        stream.send_multipart([small.clone(), body]);
        assert_eq!(stream.flush(zmq::POLLOUT, None), 1);
        let head = far.recv_msg(0).unwrap();
        let tail = far.recv_msg(0).unwrap();
        assert_eq!((&head[..], head.get_more()), (&small[..], true));
        assert_eq!((&tail[..], tail.as_ptr() as usize), (&large(4)[..], at));

        // With `on_send` set the frames are kept for it (and copied into the messages sent).
        let reported: Seens = seen();
        let r = reported.clone();
        stream.on_send(move |frames, status| {
            assert!(status.is_ok());
            r.borrow_mut().push(bytes_and_addresses(frames));
        });
        let body = large(5);
        let at = body.as_ptr() as usize;
        stream.send_multipart([body]);
        assert_eq!(stream.flush(zmq::POLLOUT, None), 1);
        assert_eq!(
            *reported.borrow(),
            [vec![(large(5), at)]],
            "on_send's frames"
        );
        let received = far.recv_msg(0).unwrap();
        assert_eq!(&received[..], &large(5)[..]);
        assert_ne!(received.as_ptr() as usize, at);
        stream.close(None);
    });
}

#[test]
fn a_stalled_byte_send_moved_while_unwatched_still_shows_its_frames_to_a_later_on_send() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let endpoint = common::inproc("ev-bytes-moved-back");
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.bind(&endpoint).unwrap(); // no peer yet: the send must wait
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        stream.send_multipart([b"head".to_vec(), large(6)]);
        assert_eq!(stream.flush(zmq::POLLOUT, None), 0, "sent without a peer");
        assert!(stream.sending());

        let reported: Seen<(Frames, zmq::Result<()>)> = seen();
        let (r, l) = (reported.clone(), ioloop.clone());
        stream.on_send(move |frames, status| {
            r.borrow_mut().push((frames.to_vec(), *status));
            l.stop();
        });
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.connect(&endpoint).unwrap();
        ioloop.start().unwrap();
        let whole = vec![b"head".to_vec(), large(6)];
        assert_eq!(*reported.borrow(), [(whole.clone(), Ok(()))]);
        assert_eq!(recv_within(&pull, ms(2000)), whole);
        stream.close(None);
    });
}

#[test]
fn a_refused_message_send_hands_the_messages_back_and_the_queue_goes_on() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (router, dealer) = router_mandatory_and_known_peer(&ctx, "ev-msgs-unsent");
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(router, &ioloop).unwrap();
        let own: Seen<(zmq::Error, Vec<Vec<u8>>)> = seen();
        let to_stream: Seen<zmq::Result<()>> = seen();
        let t = to_stream.clone();
        stream.on_send_stream_msgs(move |stream, outcome| {
            t.borrow_mut().push(outcome.map_err(|unsent| unsent.error));
            stream.ioloop().stop();
        });
        let o = own.clone();
        stream.on_recv_stream_msgs(move |stream, msgs| {
            assert_eq!(&msgs[0][..], b"known");
            let o = o.clone();
            stream.send_msgs_with(
                ["nobody".into(), zmq::Message::from(large(8))],
                move |out| {
                    let Unsent { error, msgs } = out.unwrap_err();
                    o.borrow_mut()
                        .push((error, msgs.iter().map(|m| m.to_vec()).collect()));
                },
            );
            stream.send_msgs(msgs); // back to `known`, reported to on_send_msgs
        });
        ioloop.start().unwrap();
        assert_eq!(
            *own.borrow(),
            [(zmq::Error::EHOSTUNREACH, vec![b"nobody".to_vec(), large(8)])],
            "the refused message, handed back intact"
        );
        assert_eq!(*to_stream.borrow(), [Ok(())]);
        assert_eq!(recv_within(&dealer, ms(2000)), frames(&["hello"]));
        stream.close(None);
    });
}

#[test]
fn close_hands_back_the_message_sends_it_could_not_make() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let push = ctx.socket(zmq::PUSH).unwrap(); // no peer: nothing can be sent
        push.bind(&common::inproc("ev-msgs-close")).unwrap();
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let back: Seen<(zmq::Error, Vec<Vec<u8>>)> = seen();
        let b = back.clone();
        stream.on_send_msgs(move |outcome| {
            let unsent = outcome.unwrap_err();
            let msgs = unsent.msgs.iter().map(|m| m.to_vec()).collect();
            b.borrow_mut().push((unsent.error, msgs));
        });
        stream.send_msgs([large(9)]);
        stream.close(Some(ms(20)));
        stream.send_msg("late");
        assert_eq!(
            *back.borrow(),
            [
                (zmq::Error::EAGAIN, vec![large(9)]),
                (zmq::Error::ENOTSOCK, vec![b"late".to_vec()])
            ]
        );
    });
}

#[test]
fn a_message_send_refused_inside_on_send_msgs_is_handed_back_to_it_after_it_returns() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (_pull, push) = common::socket_pair(&ctx, "ev-msgs-nested", zmq::PULL, zmq::PUSH);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        stream.set_send_queue_limit(Some(1));
        let reports: Seen<(String, zmq::Result<()>)> = seen();
        let record = reports.clone();
        stream.on_send_stream_msgs(move |stream, outcome| {
            let report = match outcome {
                Ok(()) => ("sent".to_owned(), Ok(())),
                Err(Unsent { error, msgs }) => (msgs[0].as_str().unwrap().to_owned(), Err(error)),
            };
            let first = record.borrow().is_empty();
            record.borrow_mut().push(report);
            if first {
                stream.send_msg("second"); // fits
                stream.send_msg("third"); // refused: handed back once this call returns
                record.borrow_mut().push(("returns".to_owned(), Ok(())));
            }
        });
        stream.send_msg("first");
        assert_eq!(stream.flush(zmq::POLLOUT, Some(1)), 1);
        assert_eq!(
            *reports.borrow(),
            [
                ("sent".to_owned(), Ok(())),
                ("returns".to_owned(), Ok(())),
                ("third".to_owned(), Err(zmq::Error::EAGAIN)),
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

#[test]
fn byte_and_message_sends_keep_one_order_and_report_to_their_own_callbacks() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (pull, push) = common::socket_pair(&ctx, "ev-msgs-order", zmq::PULL, zmq::PUSH);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();
        let order: Seen<&str> = seen();
        let o = order.clone();
        stream.on_send(move |frames, status| {
            assert!(status.is_ok());
            o.borrow_mut().push(if frames == [b"1"] {
                "bytes 1"
            } else {
                "bytes 3"
            });
        });
        let o = order.clone();
        stream.on_send_msgs(move |outcome| {
            assert!(outcome.is_ok());
            o.borrow_mut().push("msgs");
        });
        stream.send("1");
        stream.send_msgs(["2", "two"]);
        let o = order.clone();
        stream.send_msgs_with([b"4".to_vec()], move |outcome| {
            assert!(outcome.is_ok());
            o.borrow_mut().push("own");
        });
        stream.send_string("3");
        while stream.sending() {
            stream.flush(zmq::POLLOUT, None);
        }
        assert_eq!(*order.borrow(), ["bytes 1", "msgs", "own", "bytes 3"]);
        let received: Vec<Frames> = (0..4).map(|_| recv_within(&pull, ms(2000))).collect();
        assert_eq!(
            received,
            [
                frames(&["1"]),
                frames(&["2", "two"]),
                frames(&["4"]),
                frames(&["3"])
            ]
        );
        stream.close(None);
    });
}

#[test]
fn a_message_callback_that_replaces_itself_with_a_byte_callback_gets_the_next_message_as_bytes() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-msgs-switch");
        push.send("first", 0).unwrap();
        push.send("second", 0).unwrap();
        let got: Seen<String> = seen();
        let (g, l) = (got.clone(), ioloop.clone());
        stream.on_recv_stream_msgs(move |stream, msgs| {
            g.borrow_mut()
                .push(format!("msgs {}", msgs[0].as_str().unwrap()));
            let (g, l) = (g.clone(), l.clone());
            stream.on_recv(move |frames| {
                g.borrow_mut()
                    .push(format!("bytes {}", String::from_utf8_lossy(&frames[0])));
                l.stop();
            });
        });
        ioloop.start().unwrap();
        assert_eq!(*got.borrow(), ["msgs first", "bytes second"]);
        stream.close(None);
    });
}

#[test]
fn unsent_is_an_error_that_names_its_cause() {
    let unsent = Unsent {
        error: zmq::Error::EHOSTUNREACH,
        msgs: vec![zmq::Message::from("x"), zmq::Message::from("y")],
    };
    let as_error: &dyn std::error::Error = &unsent;
    assert_eq!(
        as_error.to_string(),
        format!(
            "message not sent ({}); its 2 frames handed back",
            zmq::Error::EHOSTUNREACH
        )
    );
    assert_eq!(
        as_error.source().map(|s| s.to_string()),
        Some(zmq::Error::EHOSTUNREACH.to_string())
    );
}
