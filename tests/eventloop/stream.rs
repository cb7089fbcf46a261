//! ZmqStream traffic: whole multipart messages, pause/resume without loss, send callbacks (per
//! stream and per send) in order, `flush` counts and limits, a panicking receive callback,
//! ROUTER_MANDATORY errors not blocking the queue, fairness between busy streams; a busy stream
//! alone on its loop (several messages per pass, no polls) still lets in a ready handler, a due
//! timeout, remote callbacks and a remote stop.

use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Instant;

use zmqloop::eventloop::{Frames, IOLoop, ZmqStream};
use zmqloop::green as zmq;

use crate::{
    bump, common, counter, counting, frames, ms, pipe, pull_stream, receive_count, recv_within,
    router_mandatory_and_known_peer, seen, stop_after, within, write_byte, Seen, LIMIT,
};

#[test]
fn stream_on_recv_gets_whole_multipart_messages() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-multipart");
        push.send_multipart(["a", "b", "c"], 0).unwrap();
        push.send("d", 0).unwrap();
        push.send_multipart([&b""[..], &b"\x00\xff"[..]], 0)
            .unwrap();
        assert!(!stream.receiving());
        let got = receive_count(&stream, 3);
        assert!(stream.receiving());
        ioloop.start().unwrap();
        assert_eq!(
            *got.borrow(),
            [
                frames(&["a", "b", "c"]),
                frames(&["d"]),
                vec![vec![], vec![0, 255]]
            ]
        );
        stream.close(None);
    });
}

#[test]
fn stop_on_recv_pauses_and_resuming_loses_nothing() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-pause");
        for i in 0..3 {
            push.send(format!("{i}").as_str(), 0).unwrap();
        }
        let got: Seen<String> = seen();
        let handler = {
            let (got, ioloop) = (got.clone(), ioloop.clone());
            move |stream: &ZmqStream, frames: Frames| {
                got.borrow_mut()
                    .push(String::from_utf8(frames[0].clone()).unwrap());
                let n = got.borrow().len();
                if n == 3 {
                    stream.stop_on_recv(); // pause from inside the callback
                    ioloop.stop();
                } else if n == 103 {
                    ioloop.stop();
                }
            }
        };
        let handler = Rc::new(RefCell::new(handler));
        let h = handler.clone();
        stream.on_recv_stream(move |s, f| (h.borrow_mut())(s, f));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 3);
        assert!(!stream.receiving());

        for i in 3..103 {
            push.send(format!("{i}").as_str(), 0).unwrap();
        }
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 3, "a paused stream delivered messages");

        let h = handler.clone();
        stream.on_recv_stream(move |s, f| (h.borrow_mut())(s, f));
        ioloop.start().unwrap();
        let expected: Vec<String> = (0..103).map(|i| i.to_string()).collect();
        assert_eq!(*got.borrow(), expected, "messages lost or reordered");
        stream.close(None);
        ioloop.close();
    });
}

#[test]
fn stream_sends_in_order_and_reports_each_send() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (pull, push) = common::socket_pair(&ctx, "ev-send", zmq::PULL, zmq::PUSH);
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(push, &ioloop).unwrap();

        let reported: Seen<(Frames, zmq::Result<()>)> = seen();
        let (r, l) = (reported.clone(), ioloop.clone());
        stream.on_send(move |frames, status| {
            r.borrow_mut().push((frames.to_vec(), *status));
            if r.borrow().len() == 4 {
                l.stop();
            }
        });
        let own: Seen<(Frames, zmq::Result<()>)> = seen();
        assert!(!stream.sending());
        stream.send("one");
        stream.send_string("two");
        let o = own.clone();
        stream.send_multipart_with(["three", "parts"], move |frames, status| {
            o.borrow_mut().push((frames.to_vec(), *status));
        });
        stream.send_multipart(vec![b"four".to_vec(), b"4".to_vec()]);
        stream.send("five");
        assert!(stream.sending());
        ioloop.start().unwrap();
        assert!(!stream.sending());

        let expected_stream = [
            frames(&["one"]),
            frames(&["two"]),
            frames(&["four", "4"]),
            frames(&["five"]),
        ];
        let reported = reported.borrow();
        let sent: Vec<_> = reported.iter().map(|(f, _)| f.clone()).collect();
        assert_eq!(sent, expected_stream, "on_send order");
        assert!(reported.iter().all(|(_, status)| status.is_ok()));
        assert_eq!(
            *own.borrow(),
            [(frames(&["three", "parts"]), Ok(()))],
            "the per-send callback must get its own outcome (and on_send must not)"
        );
        let received: Vec<_> = (0..5).map(|_| recv_within(&pull, ms(2000))).collect();
        assert_eq!(
            received,
            [
                frames(&["one"]),
                frames(&["two"]),
                frames(&["three", "parts"]),
                frames(&["four", "4"]),
                frames(&["five"]),
            ],
            "queue order"
        );
        stream.close(None);
    });
}

#[test]
fn flush_handles_what_is_pending_up_to_the_limit() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (near, far) = common::socket_pair(&ctx, "ev-flush", zmq::DEALER, zmq::DEALER);
        for i in 0..5 {
            far.send(format!("in{i}").as_str(), 0).unwrap();
        }
        let ioloop = IOLoop::new().unwrap(); // never started: flush works without it
        let stream = ZmqStream::new(near, &ioloop).unwrap();
        let (received, receive) = counting();
        stream.on_recv(move |_| receive());
        let sent = counter();
        let s = sent.clone();
        stream.on_send(move |_, status| {
            assert!(status.is_ok());
            bump(&s);
        });
        for i in 0..5 {
            stream.send(format!("out{i}"));
        }

        assert_eq!(stream.flush(zmq::POLLIN, Some(2)), 2);
        assert_eq!((received.get(), sent.get()), (2, 0));
        assert_eq!(stream.flush(zmq::POLLOUT, Some(2)), 2);
        assert_eq!((received.get(), sent.get()), (2, 2));
        assert_eq!(stream.flush(zmq::POLLIN | zmq::POLLOUT, Some(3)), 3);
        assert_eq!(received.get() + sent.get(), 7);
        assert_eq!(stream.flush(zmq::POLLIN | zmq::POLLOUT, None), 3);
        assert_eq!((received.get(), sent.get()), (5, 5));
        assert_eq!(stream.flush(zmq::POLLIN | zmq::POLLOUT, None), 0);
        assert!(!stream.sending());
        for i in 0..5 {
            assert_eq!(
                recv_within(&far, ms(2000)),
                vec![format!("out{i}").into_bytes()]
            );
        }
        stream.close(None);
    });
}

#[test]
fn flush_called_inside_on_recv_loses_no_message() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (near, far) = common::socket_pair(&ctx, "ev-flush-nested", zmq::DEALER, zmq::DEALER);
        for i in 0..3 {
            far.send(format!("m{i}").as_str(), 0).unwrap();
        }
        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(near, &ioloop).unwrap();
        let got: Seen<String> = seen();
        let g = got.clone();
        stream.on_recv_stream(move |stream, frames| {
            g.borrow_mut()
                .push(String::from_utf8(frames[0].clone()).unwrap());
            // Nested: must not receive a message it cannot hand to this very callback.
            stream.flush(zmq::POLLIN, None);
        });
        stream.flush(zmq::POLLIN, None);
        assert_eq!(*got.borrow(), ["m0", "m1", "m2"]);
        stream.close(None);
    });
}

#[test]
fn a_panicking_receive_callback_does_not_stall_the_stream() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push) = pull_stream(&ctx, &ioloop, "ev-recv-panic");
        push.send("boom", 0).unwrap();
        push.send("next", 0).unwrap();
        let got: Seen<Frames> = seen();
        let (g, l) = (got.clone(), ioloop.clone());
        stream.on_recv(move |frames| {
            if frames == [b"boom".to_vec()] {
                panic!("receive callback failure on purpose");
            }
            g.borrow_mut().push(frames);
            l.stop();
        });
        ioloop.start().unwrap();
        assert_eq!(*got.borrow(), [frames(&["next"])]);
        assert!(stream.receiving());
        assert!(
            common::logs::here().iter().any(|l| l.contains("panicked")),
            "the panic was not logged: {:?}",
            common::logs::here()
        );
        stream.close(None);
    });
}

#[test]
fn router_mandatory_unreachable_peer_is_reported_and_the_queue_goes_on() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (router, dealer) = router_mandatory_and_known_peer(&ctx, "ev-router");

        let ioloop = IOLoop::new().unwrap();
        let stream = ZmqStream::new(router, &ioloop).unwrap();
        let outcomes: Seen<(&str, zmq::Result<()>)> = seen();
        let (o, l) = (outcomes.clone(), ioloop.clone());
        stream.on_recv_stream(move |stream, frames| {
            assert_eq!(frames[0], b"known");
            let first = o.clone();
            stream.send_multipart_with(["nobody", "x"], move |_, status| {
                first.borrow_mut().push(("nobody", *status));
            });
            let (second, stopper) = (o.clone(), l.clone());
            stream.send_multipart_with(["known", "y"], move |_, status| {
                second.borrow_mut().push(("known", *status));
                stopper.stop();
            });
        });
        ioloop.start().unwrap();
        assert_eq!(
            *outcomes.borrow(),
            [("nobody", Err(zmq::Error::EHOSTUNREACH)), ("known", Ok(()))]
        );
        assert_eq!(recv_within(&dealer, ms(2000)), frames(&["y"]));
        stream.close(None);
    });
}

#[test]
fn two_busy_streams_progress_alternately() {
    within(LIMIT, || {
        const EACH: usize = 2000;
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let order: Seen<char> = seen();
        let mut keep = Vec::new();
        for name in ['A', 'B'] {
            let endpoint = common::inproc("ev-fair");
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.set_rcvhwm(0).unwrap();
            pull.bind(&endpoint).unwrap();
            let push = ctx.socket(zmq::PUSH).unwrap();
            push.set_sndhwm(0).unwrap();
            push.connect(&endpoint).unwrap();
            for i in 0..EACH {
                push.send(format!("{name}{i}").as_str(), 0).unwrap();
            }
            let stream = ZmqStream::new(pull, &ioloop).unwrap();
            let (o, l) = (order.clone(), ioloop.clone());
            stream.on_recv(move |_| {
                o.borrow_mut().push(name);
                if o.borrow().len() == 2 * EACH {
                    l.stop();
                }
            });
            keep.push((stream, push));
        }
        ioloop.start().unwrap();

        let order = order.borrow();
        assert_eq!(order.iter().filter(|&&c| c == 'A').count(), EACH);
        // While both have work (until one of them has had all its messages), no long runs.
        let mut seen_a = 0;
        let mut seen_b = 0;
        let mut run = 0;
        let mut longest = 0;
        let mut previous = ' ';
        for &c in order.iter() {
            if seen_a == EACH || seen_b == EACH {
                break;
            }
            if c == 'A' {
                seen_a += 1;
            } else {
                seen_b += 1;
            }
            run = if c == previous { run + 1 } else { 1 };
            previous = c;
            longest = longest.max(run);
        }
        assert!(
            longest <= 3,
            "one stream got {longest} deliveries in a row while the other had work"
        );
        for (stream, _) in keep {
            stream.close(None);
        }
    });
}

/// A PULL stream with `count` one-frame messages already waiting (no high-water mark), whose
/// receive callback counts them in the returned counter.
fn busy_pull_stream(
    ctx: &zmq::Context,
    ioloop: &IOLoop,
    name: &str,
    count: usize,
) -> (ZmqStream, zmq::Socket, Rc<Cell<usize>>) {
    let endpoint = common::inproc(name);
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_rcvhwm(0).unwrap();
    pull.bind(&endpoint).unwrap();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.set_sndhwm(0).unwrap();
    push.connect(&endpoint).unwrap();
    for i in 0..count {
        push.send(format!("{i}").as_str(), 0).unwrap();
    }
    let stream = ZmqStream::new(pull, ioloop).unwrap();
    let received = counter();
    let r = received.clone();
    stream.on_recv(move |_| {
        bump(&r);
    });
    (stream, push, received)
}

#[test]
fn a_busy_stream_lets_a_ready_fd_handler_in_within_a_few_messages() {
    // A stream alone on its loop handles several messages per pass; another handler that asks
    // for events turns that off, and is polled every few messages as with callbacks.
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, _push, received) = busy_pull_stream(&ctx, &ioloop, "ev-busy-fd", 5000);
        let (reader, writer) = pipe();
        write_byte(&writer, 1);
        let at_handler = Rc::new(Cell::new(None));
        let (l, r, at) = (ioloop.clone(), received.clone(), at_handler.clone());
        ioloop
            .add_fd_handler(reader.as_raw_fd(), zmq::POLLIN, move |_| {
                at.set(Some(r.get()));
                l.stop();
            })
            .unwrap();
        ioloop.start().unwrap();
        let at = at_handler.get().expect("the ready fd's handler never ran");
        assert!(
            (1..=32).contains(&at),
            "the ready handler ran only after the stream had {at} messages"
        );
        stream.close(None);
        ioloop.close();
    });
}

#[test]
fn a_busy_stream_lets_a_due_timeout_run_at_the_next_iteration() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, _push, received) = busy_pull_stream(&ctx, &ioloop, "ev-busy-timer", 1000);
        let at_timeout = Rc::new(Cell::new(None));
        let (l, r, at) = (ioloop.clone(), received.clone(), at_timeout.clone());
        ioloop.call_at(Instant::now(), move || {
            at.set(Some(r.get()));
            l.stop();
        });
        ioloop.start().unwrap();
        assert_eq!(
            at_timeout.get(),
            Some(1),
            "a due timeout must run after the first pass, which handles one message"
        );
        stream.close(None);
    });
}

#[test]
fn a_busy_stream_alone_on_its_loop_still_runs_remote_callbacks_and_stops() {
    // Alone on its loop, a busy stream pauses its handler and the loop stops polling: remote
    // callbacks and stops must still come through.
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let (stream, push, received) = busy_pull_stream(&ctx, &ioloop, "ev-busy-remote", 0);
        let keep_busy = Arc::new(AtomicBool::new(true));
        let busy = keep_busy.clone();
        let producer = thread::spawn(move || {
            let mut sent = 0u64;
            while busy.load(Ordering::SeqCst) {
                push.send("more", 0).unwrap();
                sent += 1;
            }
            sent
        });
        let (handle, stopper) = (ioloop.handle(), ioloop.handle());
        let (seen_tx, seen_rx) = mpsc::channel();
        let r = received.clone();
        // The loop tells another thread once it is busy; that thread asks for a stop through a
        // remote callback, and the remote stop ends the loop.
        ioloop.add_callback(move || {
            thread::spawn(move || {
                seen_rx.recv().unwrap();
                handle.add_callback(move || stopper.stop());
            });
        });
        stream.on_recv(move |_| {
            if bump(&r) == 1000 {
                seen_tx.send(()).unwrap();
            }
        });
        ioloop.start().unwrap(); // a lost remote callback: "hung"
        keep_busy.store(false, Ordering::SeqCst);
        assert!(received.get() >= 1000);
        assert!(producer.join().unwrap() >= 1000);
        stream.close(None);
    });
}
