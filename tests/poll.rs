//! Green poll on one may worker: `poll` and `Socket::poll` wake when any item becomes ready
//! (zmq socket or plain fd), time out like `zmq::poll`, and the `Poller` keeps its set across
//! register / modify / unregister.

mod common;
use std::time::{Duration, Instant};

use common::fds::{close, pipe, write_byte};
use common::{inproc, join, run, zmq, Ping};

#[test]
fn poll_wakes_when_a_socket_becomes_readable() {
    run(|| {
        let ctx = zmq::Context::new();
        let endpoint = inproc("poll-socket");
        let a = ctx.socket(zmq::PULL).unwrap();
        a.bind(&endpoint).unwrap();
        let b = ctx.socket(zmq::PULL).unwrap();
        b.bind(&inproc("poll-idle")).unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        let ping = Ping::start();
        let sender = zmq::spawn(move || {
            may::coroutine::sleep(Duration::from_millis(30));
            push.send("wake", 0).unwrap();
            push
        });
        let mut items = [a.as_poll_item(zmq::POLLIN), b.as_poll_item(zmq::POLLIN)];
        assert_eq!(zmq::poll(&mut items, 10_000).unwrap(), 1);
        assert!(items[0].is_readable() && !items[1].is_readable());
        assert!(
            ping.rounds() > 0,
            "the worker was blocked while poll waited"
        );
        assert_eq!(a.recv_string(0).unwrap().unwrap(), "wake");
        ping.stop();
        drop(join(sender));
    });
}

#[test]
fn poll_wakes_when_a_plain_fd_becomes_readable() {
    run(|| {
        let ctx = zmq::Context::new();
        let idle = ctx.socket(zmq::PULL).unwrap();
        idle.bind(&inproc("poll-fd")).unwrap();
        let (read_end, write_end) = pipe();
        let writer = zmq::spawn(move || {
            may::coroutine::sleep(Duration::from_millis(30));
            write_byte(write_end);
        });
        let mut items = [
            idle.as_poll_item(zmq::POLLIN),
            zmq::PollItem::from_fd(read_end, zmq::POLLIN),
        ];
        assert_eq!(zmq::poll(&mut items, 10_000).unwrap(), 1);
        assert!(items[1].is_readable() && items[1].has_fd(read_end));
        assert!(!items[0].is_readable());
        join(writer);
        close(read_end);
        close(write_end);
    });
}

#[test]
fn poll_times_out_with_zero_and_returns_at_once_for_zero_timeout() {
    run(|| {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("poll-timeout")).unwrap();
        let start = Instant::now();
        assert_eq!(pull.poll(zmq::POLLIN, 0).unwrap(), 0);
        assert!(start.elapsed() < Duration::from_millis(100));
        let start = Instant::now();
        assert_eq!(pull.poll(zmq::POLLIN, 150).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(150));
        // POLLOUT on a connected PUSH is ready at once.
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.bind(&inproc("poll-out")).unwrap();
        let peer = ctx.socket(zmq::PULL).unwrap();
        peer.connect(&inproc_last(&push)).unwrap();
        assert_eq!(push.poll(zmq::POLLOUT, -1).unwrap(), 1);
    });
}

fn inproc_last(socket: &zmq::Socket) -> String {
    socket.get_last_endpoint().unwrap().unwrap()
}

#[test]
fn poll_outside_a_coroutine_blocks_like_zmq_poll() {
    common::init();
    common::on_thread(common::LIMIT, || {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("poll-thread")).unwrap();
        let start = Instant::now();
        assert_eq!(pull.poll(zmq::POLLIN, 50).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(50));
    });
}

#[test]
fn poll_reports_eterm_when_the_context_is_terminated() {
    run(|| {
        let mut ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("poll-eterm")).unwrap();
        let waiter = zmq::spawn(move || {
            let outcome = pull.poll(zmq::POLLIN, -1);
            drop(pull);
            outcome
        });
        may::coroutine::yield_now();
        ctx.destroy().unwrap();
        assert_eq!(join(waiter), Err(zmq::Error::ETERM));
    });
}

#[test]
fn poller_lifecycle_register_modify_unregister() {
    run(|| {
        let ctx = zmq::Context::new();
        let endpoint_a = inproc("poller-a");
        let endpoint_b = inproc("poller-b");
        let a = ctx.socket(zmq::PULL).unwrap();
        a.bind(&endpoint_a).unwrap();
        let b = ctx.socket(zmq::PULL).unwrap();
        b.bind(&endpoint_b).unwrap();
        let push_a = ctx.socket(zmq::PUSH).unwrap();
        push_a.connect(&endpoint_a).unwrap();
        let push_b = ctx.socket(zmq::PUSH).unwrap();
        push_b.connect(&endpoint_b).unwrap();
        let (read_end, write_end) = pipe();

        let mut poller = zmq::Poller::new();
        poller.register(&a, zmq::POLLIN).unwrap();
        poller.register(&b, zmq::POLLIN).unwrap();
        poller.register_fd(read_end, zmq::POLLIN).unwrap();
        assert_eq!(poller.len(), 3);
        assert_eq!(poller.poll(0).unwrap(), 0);
        assert_eq!(poller.poll(50).unwrap(), 0, "idle set times out");

        // Wakes for a socket registered before the first wait, then for the plain fd.
        let (go_tx, go_rx) = may::sync::mpsc::channel::<u8>();
        let driver = zmq::spawn(move || {
            while let Ok(step) = go_rx.recv() {
                match step {
                    0 => push_b.send("to b", 0).unwrap(),
                    1 => write_byte(write_end),
                    _ => push_a.send("to a", 0).unwrap(),
                }
            }
            close(write_end);
        });
        go_tx.send(0).unwrap();
        assert_eq!(poller.poll(10_000).unwrap(), 1);
        assert!(poller.events_of(&b).contains(zmq::POLLIN));
        assert_eq!(b.recv_string(0).unwrap().unwrap(), "to b");
        go_tx.send(1).unwrap();
        assert_eq!(poller.poll(10_000).unwrap(), 1);
        let ready: Vec<_> = poller.ready().collect();
        assert!(
            matches!(ready[..], [(zmq::PollTarget::Fd(fd), ev)] if fd == read_end && ev.contains(zmq::POLLIN))
        );

        // Unregistered items no longer wake the poller; modified ones use their new events.
        poller.unregister_fd(read_end).unwrap();
        assert_eq!(poller.unregister_fd(read_end), Err(zmq::Error::EINVAL));
        poller.modify(&a, zmq::PollEvents::empty()).unwrap();
        assert_eq!(
            poller.poll(0).unwrap(),
            0,
            "the still-readable pipe is no longer polled"
        );
        poller.modify(&a, zmq::POLLIN).unwrap();
        go_tx.send(2).unwrap();
        assert_eq!(poller.poll(10_000).unwrap(), 1);
        assert!(poller.events_of(&a).contains(zmq::POLLIN));
        poller.unregister(&b).unwrap();
        assert_eq!(poller.unregister(&b), Err(zmq::Error::EINVAL));
        poller.register(&a, zmq::PollEvents::empty()).unwrap(); // empty events unregister
        assert!(poller.is_empty());
        drop(go_tx);
        join(driver);
        close(read_end);
    });
}

#[test]
fn poller_finds_items_after_removals_from_the_middle() {
    run(|| {
        let ctx = zmq::Context::new();
        let pulls: Vec<_> = (0..4)
            .map(|_| {
                let s = ctx.socket(zmq::PULL).unwrap();
                s.bind(&inproc("poller-middle")).unwrap();
                s
            })
            .collect();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&pulls[3].get_last_endpoint().unwrap().unwrap())
            .unwrap();
        let mut poller = zmq::Poller::new();
        for s in &pulls {
            poller.register(s, zmq::POLLIN).unwrap();
        }
        // Removing the first item moves the last one into its place: it must still be found.
        poller.unregister(&pulls[0]).unwrap();
        poller.modify(&pulls[3], zmq::POLLIN).unwrap();
        push.send("to the moved item", 0).unwrap();
        assert_eq!(poller.poll(10_000).unwrap(), 1);
        assert!(poller.events_of(&pulls[3]).contains(zmq::POLLIN));
        assert!(poller.events_of(&pulls[0]).is_empty());
        poller.unregister(&pulls[1]).unwrap();
        poller.unregister(&pulls[3]).unwrap();
        assert_eq!(poller.unregister(&pulls[3]), Err(zmq::Error::EINVAL));
        assert_eq!(poller.len(), 1);
        poller.unregister(&pulls[2]).unwrap();
        assert!(poller.is_empty());
    });
}

#[test]
fn poller_reports_exactly_the_items_that_became_ready_on_each_wake() {
    run(|| {
        let ctx = zmq::Context::new();
        let pulls: Vec<_> = (0..8)
            .map(|_| {
                let s = ctx.socket(zmq::PULL).unwrap();
                s.bind(&inproc("poller-subset")).unwrap();
                s
            })
            .collect();
        let pushes: Vec<_> = pulls
            .iter()
            .map(|pull| {
                let push = ctx.socket(zmq::PUSH).unwrap();
                push.connect(&pull.get_last_endpoint().unwrap().unwrap())
                    .unwrap();
                push
            })
            .collect();
        let mut poller = zmq::Poller::new();
        for s in &pulls {
            poller.register(s, zmq::POLLIN).unwrap();
        }
        // One worker: the driver sends a whole round before the parked poller runs again, so
        // one wake-up sees every socket of the round ready (in no particular fd order).
        let (go_tx, go_rx) = may::sync::mpsc::channel::<Vec<usize>>();
        let driver = zmq::spawn(move || {
            while let Ok(round) = go_rx.recv() {
                for i in round {
                    pushes[i].send("x", 0).unwrap();
                }
            }
        });
        for round in [vec![6, 1, 4], vec![7, 0], vec![3]] {
            go_tx.send(round.clone()).unwrap();
            assert_eq!(poller.poll(10_000).unwrap(), round.len() as i32);
            for (i, pull) in pulls.iter().enumerate() {
                let ready = poller.events_of(pull).contains(zmq::POLLIN);
                assert_eq!(ready, round.contains(&i), "socket {i} in round {round:?}");
            }
            for &i in &round {
                assert_eq!(pulls[i].recv_string(0).unwrap().unwrap(), "x");
            }
        }
        drop(go_tx);
        join(driver);
    });
}

#[test]
fn poll_accepts_the_same_socket_twice() {
    run(|| {
        let ctx = zmq::Context::new();
        let (pull, push) = {
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.bind(&inproc("poll-twice")).unwrap();
            let push = ctx.socket(zmq::PUSH).unwrap();
            push.connect(&inproc_last(&pull)).unwrap();
            (pull, push)
        };
        // Nothing ready: the wait must put the one fd in its epoll set once (epoll refuses a
        // second ADD with EEXIST) and still report both items.
        let sender = zmq::spawn(move || {
            push.send("x", 0).unwrap();
            push
        });
        let mut items = [
            pull.as_poll_item(zmq::POLLIN),
            pull.as_poll_item(zmq::POLLIN),
        ];
        assert_eq!(zmq::poll(&mut items, 10_000).unwrap(), 2);
        assert!(items.iter().all(|item| item.is_readable()));
        drop(join(sender));
    });
}

#[test]
fn socket_poll_parks_on_the_sockets_own_registration() {
    run(|| {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("socket-poll")).unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&inproc_last(&pull)).unwrap();
        assert_eq!(
            push.poll(zmq::POLLOUT, 0).unwrap(),
            1,
            "a connected PUSH can send"
        );
        let start = Instant::now();
        assert_eq!(pull.poll(zmq::POLLIN, 30).unwrap(), 0);
        assert!(
            start.elapsed() >= Duration::from_millis(30),
            "timed out early"
        );

        // One worker: the sender runs only once the poll has parked (a poll that blocked the
        // thread would hang here, and fail at the time limit).
        let sender = zmq::spawn(move || {
            push.send("ready", 0).unwrap();
            push
        });
        assert_eq!(pull.poll(zmq::POLLIN, 10_000).unwrap(), 1);
        assert_eq!(pull.recv_string(0).unwrap().unwrap(), "ready");
        drop(join(sender));
        // The socket's registration serves its next receive too (one per socket).
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&inproc_last(&pull)).unwrap();
        let sender = zmq::spawn(move || {
            push.send("again", 0).unwrap();
            push
        });
        assert_eq!(pull.recv_string(0).unwrap().unwrap(), "again");
        drop(join(sender));
    });
}

#[test]
fn poller_waits_on_a_socket_and_its_own_fd_together() {
    run(|| {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("poller-own-fd")).unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&inproc_last(&pull)).unwrap();
        let fd = pull.get_fd().unwrap();
        let mut poller = zmq::Poller::new();
        poller.register(&pull, zmq::POLLIN).unwrap();
        poller.register_fd(fd, zmq::POLLIN).unwrap();
        pull.get_events().unwrap(); // drains the fd
                                    // The wait puts the shared fd in its epoll set once (a second ADD would be EEXIST).
        let sender = zmq::spawn(move || {
            push.send("x", 0).unwrap();
            push
        });
        assert_eq!(poller.poll(10_000).unwrap(), 2);
        assert!(poller.events_of(&pull).contains(zmq::POLLIN));
        drop(join(sender));
    });
}
