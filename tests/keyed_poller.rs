//! `KeyedPoller`, the poll set that owns its members (the IOLoop's): keys it hands out name its
//! members until they leave, one member per socket or fd, the `Rc` of a socket comes back on
//! `unregister`; a paused member (empty events) is out of the poll entirely; a wait in a
//! coroutine parks only the coroutine, on one may worker, and wakes for the member that became
//! ready, a socket and its own notification fd included; a poller that one hub task waits on
//! with `poll_shared` can be changed by another meanwhile (but not waited on twice); faults
//! come back as errors and leave the poller usable.

mod common;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::fds::{close, pipe, write_byte};
use common::{inproc, join, run, zmq, Ping};

/// A PULL socket bound to a fresh endpoint, and a PUSH connected to it.
fn pull_push(ctx: &zmq::Context, name: &str) -> (Rc<zmq::Socket>, zmq::Socket) {
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind(&inproc(name)).unwrap();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&pull.get_last_endpoint().unwrap().unwrap())
        .unwrap();
    (Rc::new(pull), push)
}

fn ready(poller: &zmq::KeyedPoller) -> Vec<(zmq::PollKey, zmq::PollEvents)> {
    poller.ready().collect()
}

/// Checks that a wait that took `took` was ended by its epoll set, not by the fallback check:
/// that check polls every member each `fallback_interval`, so it would find a member that the
/// epoll set does not watch, and a wait that only it ended would pass all the same.
fn assert_woken_by_fd(took: Duration) {
    let fallback = zmq::fallback::fallback_interval();
    assert!(
        took < fallback,
        "the wait took {took:?}: ended by the fallback check ({fallback:?}), not by its fds"
    );
}

/// `poller.poll(10_000)`, which must be ended by its epoll set ([`assert_woken_by_fd`]).
fn poll_woken(poller: &mut zmq::KeyedPoller) -> i32 {
    let start = Instant::now();
    let ready = poller.poll(10_000).unwrap();
    assert_woken_by_fd(start.elapsed());
    ready
}

#[test]
fn keys_name_members_until_they_leave_and_are_never_reused() {
    common::on_thread(common::LIMIT, keys_name_members);
}

fn keys_name_members() {
    let ctx = zmq::Context::new();
    let (a, push_a) = pull_push(&ctx, "keyed-a");
    let (b, _push_b) = pull_push(&ctx, "keyed-b");
    let (read_end, write_end) = pipe();
    let mut poller = zmq::KeyedPoller::new();
    let key_a = poller.register(a.clone(), zmq::POLLIN).unwrap();
    let key_b = poller.register(b.clone(), zmq::POLLIN).unwrap();
    let key_fd = poller.register_fd(read_end, zmq::POLLIN).unwrap();
    assert_eq!(poller.len(), 3);
    assert!(key_a != key_b && key_b != key_fd && key_a != key_fd);
    assert_eq!(poller.key_of(&a), Some(key_a));
    assert_eq!(poller.key_of_fd(read_end), Some(key_fd));
    assert!(matches!(poller.source(key_fd), Some(zmq::PollSource::Fd(fd)) if *fd == read_end));
    assert_eq!(Rc::strong_count(&a), 2, "the poller keeps a reference");

    // One member per socket or fd.
    assert_eq!(
        poller.register(a.clone(), zmq::POLLOUT),
        Err(zmq::Error::EBUSY)
    );
    assert_eq!(
        poller.register_fd(read_end, zmq::POLLIN),
        Err(zmq::Error::EBUSY)
    );
    assert_eq!(
        Rc::strong_count(&a),
        2,
        "a refused registration keeps nothing"
    );

    // Ready members come back by key, with their events.
    push_a.send("to a", 0).unwrap();
    write_byte(write_end);
    assert_eq!(poller.poll(1000).unwrap(), 2);
    let mut got = ready(&poller);
    got.sort();
    assert_eq!(got, [(key_a, zmq::POLLIN), (key_fd, zmq::POLLIN)]);

    // Unregistering hands the socket's Rc back; the key then names nothing.
    let zmq::PollSource::Socket(back) = poller.unregister(key_a).unwrap() else {
        panic!("registered as a socket");
    };
    assert!(Rc::ptr_eq(&back, &a));
    drop(back);
    assert_eq!(Rc::strong_count(&a), 1);
    assert_eq!(poller.unregister(key_a).err(), Some(zmq::Error::ENOENT));
    assert_eq!(poller.modify(key_a, zmq::POLLIN), Err(zmq::Error::ENOENT));
    assert_eq!(
        poller.modify(key_a, zmq::PollEvents::empty()),
        Err(zmq::Error::ENOENT)
    );
    assert_eq!(poller.key_of(&a), None);
    assert!(poller.source(key_a).is_none());

    // Registered again, the socket gets a new key.
    let again = poller.register(a.clone(), zmq::POLLIN).unwrap();
    assert!(again != key_a);
    assert_eq!(
        poller.poll(0).unwrap(),
        2,
        "a's message and the pipe's byte"
    );
    assert_eq!(a.recv_string(0).unwrap().unwrap(), "to a");

    // Dropping the poller drops its references.
    drop(poller);
    assert_eq!((Rc::strong_count(&a), Rc::strong_count(&b)), (1, 1));
    close(read_end);
    close(write_end);
}

#[test]
fn a_paused_member_is_out_of_the_poll_until_it_asks_again() {
    common::on_thread(common::LIMIT, paused_member);
}

fn paused_member() {
    let ctx = zmq::Context::new();
    let (a, push_a) = pull_push(&ctx, "keyed-pause");
    let (read_end, write_end) = pipe();
    let mut poller = zmq::KeyedPoller::new();
    let key = poller.register(a.clone(), zmq::POLLIN).unwrap();
    let key_fd = poller
        .register_fd(read_end, zmq::PollEvents::empty())
        .unwrap();
    write_byte(write_end);
    assert_eq!(poller.poll(0).unwrap(), 0, "registered paused");

    push_a.send("x", 0).unwrap();
    poller.modify(key, zmq::PollEvents::empty()).unwrap();
    assert_eq!(poller.poll(50).unwrap(), 0, "a paused socket is not polled");
    poller.modify(key, zmq::PollEvents::empty()).unwrap(); // pausing twice is fine
    assert_eq!(poller.len(), 2, "paused members stay registered");
    assert_eq!(poller.key_of(&a), Some(key));

    poller.modify(key, zmq::POLLIN).unwrap();
    poller.modify(key_fd, zmq::POLLIN).unwrap();
    assert_eq!(poller.poll(0).unwrap(), 2);
    let zmq::PollSource::Fd(fd) = poller.unregister(key_fd).unwrap() else {
        panic!("registered as an fd");
    };
    assert_eq!(fd, read_end);
    close(read_end);
    close(write_end);
}

#[test]
fn a_paused_socket_whose_context_is_terminated_does_not_fail_the_poll() {
    run(|| {
        let mut ctx = zmq::Context::new();
        let (a, push_a) = pull_push(&ctx, "keyed-eterm");
        drop(push_a);
        let (read_end, write_end) = pipe();
        let mut poller = zmq::KeyedPoller::new();
        let key = poller
            .register(a.clone(), zmq::PollEvents::empty())
            .unwrap();
        poller.register_fd(read_end, zmq::POLLIN).unwrap();
        let terminator = zmq::spawn(move || ctx.destroy());
        // Parks until the termination reaches the socket: from then on any zmq_poll that
        // included it would fail with ETERM.
        assert_eq!(a.poll(zmq::POLLIN, 10_000), Err(zmq::Error::ETERM));
        assert_eq!(poller.poll(20).unwrap(), 0, "the paused socket was polled");
        write_byte(write_end);
        assert_eq!(poller.poll(10_000).unwrap(), 1);

        poller.modify(key, zmq::POLLIN).unwrap();
        assert_eq!(
            poller.poll(0),
            Err(zmq::Error::ETERM),
            "resumed: polled again"
        );
        poller.unregister(key).unwrap();
        drop(a); // the last reference: `destroy` can finish
        assert_eq!(join(terminator), Ok(()));
        close(read_end);
        close(write_end);
    });
}

#[test]
fn a_wait_in_a_coroutine_parks_only_it_and_wakes_for_the_ready_member() {
    run(|| {
        let ctx = zmq::Context::new();
        let pairs: Vec<_> = (0..6).map(|_| pull_push(&ctx, "keyed-green")).collect();
        let mut poller = zmq::KeyedPoller::new();
        let keys: Vec<_> = pairs
            .iter()
            .map(|(pull, _)| poller.register(pull.clone(), zmq::POLLIN).unwrap())
            .collect();
        assert_eq!(poller.poll(30).unwrap(), 0, "an idle set times out");
        let (pulls, pushes): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();

        // Pause one, remove another from the middle, and wake for each of the rest in turn.
        poller.modify(keys[2], zmq::PollEvents::empty()).unwrap();
        poller.unregister(keys[0]).unwrap();
        let ping = Ping::start();
        let (go_tx, go_rx) = may::sync::mpsc::channel::<usize>();
        let driver = zmq::spawn(move || {
            while let Ok(i) = go_rx.recv() {
                pushes[i].send("x", 0).unwrap();
            }
        });
        for i in [5, 1, 3, 4] {
            go_tx.send(i).unwrap();
            assert_eq!(poll_woken(&mut poller), 1);
            assert_eq!(ready(&poller), [(keys[i], zmq::POLLIN)]);
            assert_eq!(pulls[i].recv_string(0).unwrap().unwrap(), "x");
        }
        assert!(
            ping.rounds() > 0,
            "the worker was blocked while the poller waited"
        );
        // The paused member's message waits until it asks again.
        go_tx.send(2).unwrap();
        assert_eq!(poller.poll(30).unwrap(), 0);
        poller.modify(keys[2], zmq::POLLIN).unwrap();
        assert_eq!(poll_woken(&mut poller), 1);
        assert_eq!(ready(&poller), [(keys[2], zmq::POLLIN)]);
        ping.stop();
        drop(go_tx);
        join(driver);
    });
}

#[test]
fn a_socket_and_its_own_fd_are_two_members_of_one_wait() {
    run(|| {
        let ctx = zmq::Context::new();
        let (a, push_a) = pull_push(&ctx, "keyed-own-fd");
        let fd = a.get_fd().unwrap();
        let mut poller = zmq::KeyedPoller::new();
        let key = poller.register(a.clone(), zmq::POLLIN).unwrap();
        let key_fd = poller.register_fd(fd, zmq::POLLIN).unwrap();
        a.get_events().unwrap(); // processes the connection's commands: the fd is drained
        assert_eq!(poller.poll(0).unwrap(), 0);
        // A wait parks (its epoll set holds the fd once, for both members) and the message
        // wakes both: the fd signalled, and the socket has a message.
        let sender = zmq::spawn(move || {
            push_a.send("x", 0).unwrap();
            push_a
        });
        assert_eq!(poll_woken(&mut poller), 2);
        let mut got = ready(&poller);
        got.sort();
        assert_eq!(got, [(key, zmq::POLLIN), (key_fd, zmq::POLLIN)]);
        drop(join(sender));
        // Either leaves without disturbing the other.
        poller.unregister(key_fd).unwrap();
        assert_eq!(poller.poll(0).unwrap(), 1);
        assert_eq!(ready(&poller), [(key, zmq::POLLIN)]);
        a.recv_string(0).unwrap().unwrap();
        assert_eq!(poller.poll(20).unwrap(), 0);
    });
}

#[test]
fn a_shared_poller_changes_while_another_task_waits_on_it() {
    common::on_thread(common::LIMIT, || {
        let hub = zmq::hub::Hub::new().unwrap();
        hub.block_on(shared_poller_changes);
    });
}

/// What another hub task can do to a `poll_shared` wait's poller while the wait is parked: no
/// second wait, but any change, which the parked wait sees at once.
fn shared_poller_changes() {
    let ctx = zmq::Context::new();
    let (a, push_a) = pull_push(&ctx, "keyed-shared-a");
    let (b, push_b) = pull_push(&ctx, "keyed-shared-b");
    let poller = Rc::new(RefCell::new(zmq::KeyedPoller::new()));
    let key_a = poller
        .borrow_mut()
        .register(a.clone(), zmq::POLLIN)
        .unwrap();
    let (shared, a_there) = (poller.clone(), a.clone());
    let other = zmq::hub::spawn(move || {
        let second = zmq::KeyedPoller::poll_shared(&shared, 10);
        let back = shared.borrow_mut().unregister(key_a);
        let handed_back =
            matches!(back, Ok(zmq::PollSource::Socket(s)) if Rc::ptr_eq(&s, &a_there));
        let refs_left = Rc::strong_count(&a_there); // this task's and the test's
        let key_b = shared.borrow_mut().register(b, zmq::POLLIN).unwrap();
        push_a.send("for a member that left", 0).unwrap();
        push_b.send("for the new member", 0).unwrap();
        (second, handed_back, refs_left, key_b, (push_a, push_b))
    });
    let start = Instant::now();
    assert_eq!(zmq::KeyedPoller::poll_shared(&poller, 10_000), Ok(1));
    assert_woken_by_fd(start.elapsed()); // the member that joined during the park woke it
    let (second, handed_back, refs_left, key_b, _pushes) = join_task(other);
    assert_eq!(
        second,
        Err(zmq::Error::EBUSY),
        "two waits at once on one poller"
    );
    assert!(
        handed_back,
        "unregister did not hand the socket back during the wait"
    );
    assert_eq!(
        refs_left, 2,
        "the parked wait still held the unregistered socket"
    );
    assert_eq!(ready(&poller.borrow()), [(key_b, zmq::POLLIN)]);
}

/// A hub task's value, its panic raised again here.
fn join_task<T>(task: zmq::hub::JoinHandle<T>) -> T {
    task.join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[test]
fn a_bad_fd_is_refused_and_the_poller_goes_on() {
    run(|| {
        let ctx = zmq::Context::new();
        let (a, push_a) = pull_push(&ctx, "keyed-bad-fd");
        let mut poller = zmq::KeyedPoller::new();
        let key = poller.register(a.clone(), zmq::POLLIN).unwrap();
        assert_eq!(poller.poll(10).unwrap(), 0); // a wait: the epoll set now exists

        // No fd has number -1 (a closed fd's number could be reused at once by another test's
        // thread). EBADF, as zmq::Error has it.
        const NOT_AN_FD: std::os::unix::io::RawFd = -1;
        assert_eq!(
            poller.register_fd(NOT_AN_FD, zmq::POLLIN),
            Err(zmq::Error::ENOTSOCK)
        );
        assert_eq!(poller.key_of_fd(NOT_AN_FD), None);
        assert_eq!(poller.len(), 1);

        // A paused member (not in the epoll set) whose fd is bad cannot resume: it stays
        // paused, and can leave.
        let paused = poller
            .register_fd(NOT_AN_FD, zmq::PollEvents::empty())
            .unwrap();
        assert_eq!(
            poller.modify(paused, zmq::POLLIN),
            Err(zmq::Error::ENOTSOCK)
        );
        assert_eq!(poller.key_of_fd(NOT_AN_FD), Some(paused));
        assert!(matches!(
            poller.unregister(paused),
            Ok(zmq::PollSource::Fd(NOT_AN_FD))
        ));

        push_a.send("still polled", 0).unwrap();
        assert_eq!(poller.poll(10_000).unwrap(), 1);
        assert_eq!(ready(&poller), [(key, zmq::POLLIN)]);
    });
}
