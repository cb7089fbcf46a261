//! Socket monitors: `Socket::get_monitor_socket`, `disable_monitor`, `recv_monitor_message`.
//!
//! - Events arrive in order with their endpoint: connect, disconnect and reconnect across a
//!   server restart (client side), listen/accept/disconnect (server side), handshake failures
//!   (mechanism mismatch, PLAIN without a ZAP handler, CURVE with a wrong server key when
//!   libzmq has CURVE).
//! - Green: a coroutine or a hub task waiting for an event parks only itself; the IOLoop gets
//!   events through `ZmqStream::on_monitor_event`.
//! - Teardown never hangs (libzmq #3575): the monitored socket, the monitor socket and the
//!   context closed in each of the six orders, with events provoked on libzmq's I/O thread
//!   after each step; unread events never stall the I/O thread.
//! - The end of the events: however monitoring stops, a reader waiting for an event wakes
//!   (`MONITOR_STOPPED` if it asked for it, then `ENOTCONN`), also in a hub task and on the
//!   IOLoop, which passes on only the events asked for.
//! - Bad input: replacing and disabling monitors, an invalid event mask, the context's socket
//!   limit (what a failed `get_monitor_socket` leaves of the previous monitor), a raw socket,
//!   disconnecting a monitor socket.

mod common;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::{join, run, run_within, zmq, Ping};
use zmq::monitor::{recv_monitor_message, EventValue, MalformedEvent, MonitorEvent};
use zmq::SocketEvent::{self, *};
use zmqloop::eventloop::{IOLoop, ZmqStream};
use zmqloop::green::hub::{self, Hub};

/// A `get_monitor_socket` mask of `events`.
fn mask(events: &[SocketEvent]) -> i32 {
    events.iter().fold(0, |mask, &event| mask | event as i32)
}

/// Receives the next event and checks its type and endpoint.
fn expect(monitor: &zmq::Socket, event: SocketEvent, endpoint: &str) -> MonitorEvent {
    let got = recv_monitor_message(monitor, 0)
        .expect("receive an event")
        .expect("a well-formed event");
    assert_eq!(
        (got.event, got.endpoint.as_str()),
        (event, endpoint),
        "unexpected event: {got}"
    );
    got
}

/// Nothing more is queued on `monitor`.
fn expect_nothing(monitor: &zmq::Socket) {
    match recv_monitor_message(monitor, zmq::DONTWAIT) {
        Err(zmq::Error::EAGAIN) => {}
        other => panic!("expected no event, got {other:?}"),
    }
}

/// The events of `monitor` have ended: reads fail at once, blocking or not.
fn expect_ended(monitor: &zmq::Socket) {
    for flags in [0, zmq::DONTWAIT] {
        assert_eq!(
            recv_monitor_message(monitor, flags),
            Err(zmq::Error::ENOTCONN),
            "the end of the events, flags {flags}"
        );
    }
}

fn fd_of(event: &MonitorEvent) -> i32 {
    match event.value_kind() {
        EventValue::Fd(fd) => fd,
        other => panic!("{event}: expected an fd, got {other:?}"),
    }
}

#[test]
fn a_client_sees_disconnected_then_connected_again_when_its_server_restarts() {
    run(|| {
        let ctx = zmq::Context::new();
        let server = ctx.socket(zmq::ROUTER).unwrap();
        let endpoint = common::bind_tcp(&server);
        let client = ctx.socket(zmq::DEALER).unwrap();
        client.set_reconnect_ivl(20).unwrap();
        let events = client
            .get_monitor_socket(mask(&[CONNECTED, DISCONNECTED, HANDSHAKE_SUCCEEDED]))
            .unwrap();
        client.connect(&endpoint).unwrap();
        let connected = expect(&events, CONNECTED, &endpoint);
        assert!(fd_of(&connected) >= 0);
        expect(&events, HANDSHAKE_SUCCEEDED, &endpoint);
        client.send("before", 0).unwrap();
        assert_eq!(server.recv_multipart(0).unwrap()[1], b"before");

        // The watcher parks for the events of the restart, which come only after the body has
        // waited for probe rounds: a watcher that blocked the one worker would hang the test.
        let watcher = {
            let endpoint = endpoint.clone();
            zmq::spawn(move || {
                expect(&events, DISCONNECTED, &endpoint);
                expect(&events, CONNECTED, &endpoint);
                expect(&events, HANDSHAKE_SUCCEEDED, &endpoint);
                expect_nothing(&events);
            })
        };
        let server_events = server.get_monitor_socket(CLOSED as i32).unwrap();
        server.unbind(&endpoint).unwrap();
        expect(&server_events, CLOSED, &endpoint); // the port is free again
        drop(server);
        drop(server_events);
        let ping = Ping::start();
        ping.wait_rounds(5);
        let server = ctx.socket(zmq::ROUTER).unwrap();
        server.bind(&endpoint).unwrap();
        join(watcher);
        ping.stop();
        client.send("after", 0).unwrap();
        assert_eq!(server.recv_multipart(0).unwrap()[1], b"after");
    });
}

#[test]
fn a_server_sees_listening_accepted_and_disconnected_with_its_endpoint() {
    run(|| {
        let ctx = zmq::Context::new();
        let server = ctx.socket(zmq::ROUTER).unwrap();
        let events = server
            .get_monitor_socket(mask(&[
                LISTENING,
                ACCEPTED,
                HANDSHAKE_SUCCEEDED,
                DISCONNECTED,
            ]))
            .unwrap();
        let endpoint = common::bind_tcp(&server);
        let listening = expect(&events, LISTENING, &endpoint);
        let client = ctx.socket(zmq::DEALER).unwrap();
        client.connect(&endpoint).unwrap();
        let accepted = expect(&events, ACCEPTED, &endpoint);
        assert_ne!(fd_of(&accepted), fd_of(&listening));
        expect(&events, HANDSHAKE_SUCCEEDED, &endpoint);
        drop(client);
        let disconnected = expect(&events, DISCONNECTED, &endpoint);
        assert_eq!(fd_of(&disconnected), fd_of(&accepted));
        assert_eq!(
            disconnected.to_string(),
            format!("DISCONNECTED {endpoint} (fd {})", fd_of(&accepted))
        );
    });
}

#[test]
fn a_mechanism_mismatch_is_a_protocol_handshake_failure_on_both_sides() {
    run(|| {
        let ctx = zmq::Context::new();
        let failures = mask(&[
            HANDSHAKE_FAILED_PROTOCOL,
            HANDSHAKE_FAILED_NO_DETAIL,
            HANDSHAKE_FAILED_AUTH,
            HANDSHAKE_SUCCEEDED,
        ]);
        let server = ctx.socket(zmq::ROUTER).unwrap(); // NULL mechanism
        let server_events = server.get_monitor_socket(failures).unwrap();
        let endpoint = common::bind_tcp(&server);
        let client = ctx.socket(zmq::DEALER).unwrap();
        client.set_plain_username(Some("user")).unwrap();
        client.set_plain_password(Some("secret")).unwrap();
        let client_events = client.get_monitor_socket(failures).unwrap();
        client.connect(&endpoint).unwrap();
        for events in [&server_events, &client_events] {
            let failed = expect(events, HANDSHAKE_FAILED_PROTOCOL, &endpoint);
            assert_eq!(failed.value_kind(), EventValue::ProtocolError(0x1100_0002));
            assert_eq!(
                failed.to_string(),
                format!(
                    "HANDSHAKE_FAILED_PROTOCOL {endpoint} (ZMTP_MECHANISM_MISMATCH, 0x11000002)"
                )
            );
        }
    });
}

#[test]
fn a_plain_server_without_a_zap_handler_fails_the_handshake() {
    run(|| {
        let ctx = zmq::Context::new(); // no ZAP handler in this context
        let server = ctx.socket(zmq::ROUTER).unwrap();
        server.set_plain_server(true).unwrap();
        let events = server
            .get_monitor_socket(mask(&[
                HANDSHAKE_FAILED_NO_DETAIL,
                HANDSHAKE_FAILED_PROTOCOL,
                HANDSHAKE_FAILED_AUTH,
                HANDSHAKE_SUCCEEDED,
            ]))
            .unwrap();
        let endpoint = common::bind_tcp(&server);
        let client = ctx.socket(zmq::DEALER).unwrap();
        client.set_plain_username(Some("user")).unwrap();
        client.set_plain_password(Some("secret")).unwrap();
        client.connect(&endpoint).unwrap();
        let failed = expect(&events, HANDSHAKE_FAILED_NO_DETAIL, &endpoint);
        assert_eq!(failed.value_kind(), EventValue::Errno(libc::EFAULT));
    });
}

#[test]
fn a_curve_peer_with_a_wrong_server_key_fails_the_handshake_when_curve_is_available() {
    if zmq::has("curve") != Some(true) {
        eprintln!(
            "skipped: this libzmq is built without CURVE (zmq::has(\"curve\") is not true), \
             so no CURVE handshake can be made"
        );
        return;
    }
    run(|| {
        let ctx = zmq::Context::new();
        let server_keys = zmq::CurveKeyPair::new().unwrap();
        let server = ctx.socket(zmq::ROUTER).unwrap();
        server.set_curve_server(true).unwrap();
        server.set_curve_secretkey(&server_keys.secret_key).unwrap();
        let events = server
            .get_monitor_socket(mask(&[
                HANDSHAKE_FAILED_PROTOCOL,
                HANDSHAKE_FAILED_NO_DETAIL,
                HANDSHAKE_FAILED_AUTH,
                HANDSHAKE_SUCCEEDED,
            ]))
            .unwrap();
        let endpoint = common::bind_tcp(&server);

        let client_keys = zmq::CurveKeyPair::new().unwrap();
        let wrong_server_key = zmq::CurveKeyPair::new().unwrap().public_key;
        let client = ctx.socket(zmq::DEALER).unwrap();
        client.set_curve_serverkey(&wrong_server_key).unwrap();
        client.set_curve_publickey(&client_keys.public_key).unwrap();
        client.set_curve_secretkey(&client_keys.secret_key).unwrap();
        client.connect(&endpoint).unwrap();
        let failed = expect(&events, HANDSHAKE_FAILED_PROTOCOL, &endpoint);
        assert_eq!(
            failed.value_kind(),
            EventValue::ProtocolError(0x1100_0001),
            "{failed}: expected ZMTP_CRYPTOGRAPHIC"
        );
    });
}

#[test]
fn a_hub_task_waiting_for_an_event_parks_only_itself() {
    common::on_thread(common::LIMIT, || {
        let hub = Hub::new().unwrap();
        let ctx = zmq::Context::new();
        let server = ctx.socket(zmq::ROUTER).unwrap();
        let endpoint = common::bind_tcp(&server);
        let events = server.get_monitor_socket(ACCEPTED as i32).unwrap();
        let watched = endpoint.clone();
        // Spawned first, so it waits before the client connects: if its wait blocked the hub
        // thread, the connecting task could never run and the test would hang.
        let watcher = hub.spawn(move || expect(&events, ACCEPTED, &watched).event);
        let connector = hub.spawn(move || {
            hub::yield_now();
            let client = ctx.socket(zmq::DEALER).unwrap();
            client.connect(&endpoint).unwrap();
            client
        });
        hub.run();
        assert_eq!(watcher.try_join().unwrap().unwrap(), ACCEPTED);
        drop(connector.try_join().unwrap().unwrap());
        drop(server);
    });
}

#[test]
fn the_ioloop_gets_events_through_on_monitor_event() {
    common::on_thread(common::LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let server = ctx.socket(zmq::ROUTER).unwrap();
        let events = ZmqStream::new(
            server
                .get_monitor_socket(mask(&[LISTENING, ACCEPTED, HANDSHAKE_SUCCEEDED]))
                .unwrap(),
            &ioloop,
        )
        .unwrap();
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let (log, stopper) = (seen.clone(), ioloop.clone());
        events.on_monitor_event(move |event| {
            log.borrow_mut().push((event.event, event.endpoint));
            if log.borrow().len() == 3 {
                stopper.stop();
            }
        });
        let endpoint = common::bind_tcp(&server);
        let client = ctx.socket(zmq::DEALER).unwrap();
        client.connect(&endpoint).unwrap();
        ioloop.start().unwrap();
        let expected: Vec<_> = [LISTENING, ACCEPTED, HANDSHAKE_SUCCEEDED]
            .into_iter()
            .map(|event| (event, endpoint.clone()))
            .collect();
        assert_eq!(*seen.borrow(), expected);
    });
}

/// Makes libzmq's I/O thread emit events for `socket`, a DEALER (connect, handshake, disconnect to a
/// fresh listener) and proves that it survived them: the listener receives a message. If the
/// I/O thread hung on an event nobody can read, this parks forever (the test's time limit
/// fails it).
fn provoke_events(ctx: &zmq::Context, socket: &zmq::Socket) {
    let listener = ctx.socket(zmq::ROUTER).unwrap();
    let endpoint = common::bind_tcp(&listener);
    socket.connect(&endpoint).unwrap();
    socket.send("alive?", 0).unwrap();
    assert_eq!(listener.recv_multipart(0).unwrap()[1], b"alive?");
    socket.disconnect(&endpoint).unwrap();
    drop(listener);
}

/// One of the three things a monitoring set-up closes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Part {
    /// The socket being monitored.
    Monitored,
    /// The monitor socket from `get_monitor_socket`.
    Monitor,
    /// The context (`destroy`).
    Context,
}

/// A coroutine that holds `socket` through the context's termination: it parks in a receive
/// until ETERM, then waits for its `turn`, drops the socket and passes the turn on.
fn hold_until_terminated(
    socket: zmq::Socket,
    turn: may::sync::mpsc::Receiver<()>,
    next: may::sync::mpsc::Sender<()>,
) -> may::coroutine::JoinHandle<()> {
    zmq::spawn(move || {
        loop {
            match socket.recv_multipart(0) {
                Ok(_) => continue, // monitor events
                Err(zmq::Error::ETERM) => break,
                Err(err) => panic!("unexpected error while holding a socket: {err}"),
            }
        }
        turn.recv().unwrap();
        drop(socket);
        let _ = next.send(());
    })
}

/// Closes the monitored socket, its monitor socket and the context in `order`; events are
/// provoked on the monitored socket before and after each step it survives.
fn close_in_order(order: [Part; 3]) {
    run(move || {
        let mut ctx = zmq::Context::new();
        let monitored = ctx.socket(zmq::DEALER).unwrap();
        let monitor = monitored
            .get_monitor_socket(SocketEvent::ALL as i32)
            .unwrap();
        provoke_events(&ctx, &monitored);
        let mut monitored = Some(monitored);
        let mut monitor = Some(monitor);
        for (step, part) in order.into_iter().enumerate() {
            match part {
                Part::Monitored => {
                    drop(monitored.take());
                    if let Some(monitor) = &monitor {
                        // The monitored socket's close stopped the monitor, with a last word.
                        loop {
                            let event = recv_monitor_message(monitor, 0).unwrap().unwrap();
                            if event.event == MONITOR_STOPPED {
                                break;
                            }
                        }
                        expect_ended(monitor);
                    }
                }
                Part::Monitor => {
                    drop(monitor.take());
                    if let Some(monitored) = &monitored {
                        provoke_events(&ctx, monitored);
                    }
                }
                Part::Context => {
                    let rest = &order[step + 1..];
                    let holders = hold_the_rest(rest, &mut monitored, &mut monitor);
                    ctx.destroy().unwrap();
                    holders.into_iter().for_each(join);
                    return;
                }
            }
        }
        ctx.destroy().unwrap();
    });
}

/// Hands the sockets still open to [`hold_until_terminated`] coroutines that close them in
/// the order of `rest` once the context is terminated.
fn hold_the_rest(
    rest: &[Part],
    monitored: &mut Option<zmq::Socket>,
    monitor: &mut Option<zmq::Socket>,
) -> Vec<may::coroutine::JoinHandle<()>> {
    let (first_turn, mut turn) = may::sync::mpsc::channel();
    first_turn.send(()).unwrap();
    let mut holders = Vec::new();
    for part in rest {
        let socket = match part {
            Part::Monitored => monitored.take(),
            Part::Monitor => monitor.take(),
            Part::Context => unreachable!("the context is closed once"),
        }
        .expect("each socket is closed once");
        let (next, next_turn) = may::sync::mpsc::channel();
        holders.push(hold_until_terminated(socket, turn, next));
        turn = next_turn;
    }
    holders
}

#[test]
fn closing_monitored_then_monitor_then_context_never_hangs() {
    close_in_order([Part::Monitored, Part::Monitor, Part::Context]);
}

#[test]
fn closing_monitored_then_context_then_monitor_never_hangs() {
    close_in_order([Part::Monitored, Part::Context, Part::Monitor]);
}

#[test]
fn closing_monitor_then_monitored_then_context_never_hangs() {
    close_in_order([Part::Monitor, Part::Monitored, Part::Context]);
}

#[test]
fn closing_monitor_then_context_then_monitored_never_hangs() {
    close_in_order([Part::Monitor, Part::Context, Part::Monitored]);
}

#[test]
fn closing_context_then_monitored_then_monitor_never_hangs() {
    close_in_order([Part::Context, Part::Monitored, Part::Monitor]);
}

#[test]
fn closing_context_then_monitor_then_monitored_never_hangs() {
    close_in_order([Part::Context, Part::Monitor, Part::Monitored]);
}

#[test]
fn unread_events_never_stall_the_io_thread() {
    run(|| {
        // 5 rounds of 150 clients: 2250 events (accepted, handshake, disconnected) left
        // unread, more than a default-sized monitor pipe holds (2000). Each round's messages
        // go through libzmq's I/O thread after the events before them: if an event send had
        // blocked it, the round would never arrive (and the test hang).
        const CLIENTS: usize = 150;
        const ROUNDS: usize = 5;
        let ctx = zmq::Context::new();
        let server = ctx.socket(zmq::ROUTER).unwrap();
        let events = server
            .get_monitor_socket(mask(&[ACCEPTED, HANDSHAKE_SUCCEEDED, DISCONNECTED]))
            .unwrap();
        let endpoint = common::bind_tcp(&server);
        for _ in 0..ROUNDS {
            let clients: Vec<_> = (0..CLIENTS)
                .map(|_| {
                    let client = ctx.socket(zmq::DEALER).unwrap();
                    client.set_linger(0).unwrap();
                    client.connect(&endpoint).unwrap();
                    client.send("hello", 0).unwrap();
                    client
                })
                .collect();
            for _ in 0..CLIENTS {
                server.recv_multipart(0).unwrap();
            }
            drop(clients);
        }
        // Every event is there, in order per connection, none lost.
        let (mut accepted, mut handshakes, mut disconnected) = (0, 0, 0);
        while disconnected < CLIENTS * ROUNDS {
            match expect_any(&events).event {
                ACCEPTED => accepted += 1,
                HANDSHAKE_SUCCEEDED => handshakes += 1,
                DISCONNECTED => disconnected += 1,
                other => panic!("unexpected {other:?}"),
            }
            assert!(disconnected <= handshakes && handshakes <= accepted);
        }
        assert_eq!((accepted, handshakes), (CLIENTS * ROUNDS, CLIENTS * ROUNDS));
        expect_nothing(&events);
    });
}

fn expect_any(monitor: &zmq::Socket) -> MonitorEvent {
    recv_monitor_message(monitor, 0).unwrap().unwrap()
}

#[test]
fn a_new_monitor_replaces_the_previous_one_which_may_then_close() {
    run(|| {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::ROUTER).unwrap();
        let first = socket.get_monitor_socket(SocketEvent::ALL as i32).unwrap();
        let second = socket.get_monitor_socket(SocketEvent::ALL as i32).unwrap();
        expect(&first, MONITOR_STOPPED, "");
        // Closing the replaced monitor socket must not stop the current monitor.
        drop(first);
        let endpoint = common::bind_tcp(&socket);
        expect(&second, LISTENING, &endpoint);
    });
}

#[test]
fn disable_monitor_stops_the_events_and_the_monitor_socket_refuses_to_disconnect() {
    run(|| {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        let events = socket.get_monitor_socket(SocketEvent::ALL as i32).unwrap();
        assert_eq!(
            events.disconnect("inproc://zmqloop-monitor-0"),
            Err(zmq::Error::EINVAL),
            "disconnecting would leave libzmq's end of the monitor without a reader"
        );
        socket.disable_monitor().unwrap();
        expect(&events, MONITOR_STOPPED, "");
        common::bind_tcp(&socket);
        expect_ended(&events);
        socket.disable_monitor().unwrap(); // not monitored: nothing to do

        // The monitor socket, no longer linked, can be closed before the socket it watched.
        drop(events);
        provoke_events(&ctx, &socket);
    });
}

/// A way for monitoring through a `get_monitor_socket` monitor to stop.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// The monitored socket is closed.
    CloseMonitored,
    /// `disable_monitor`.
    Disable,
    /// A newer `get_monitor_socket` replaces the monitor.
    Replace,
}

/// Stops the monitoring of `socket` in the way `stop` says; returns what must stay open
/// until the test ends.
fn stop_monitoring(socket: zmq::Socket, stop: Stop) -> Vec<zmq::Socket> {
    match stop {
        Stop::CloseMonitored => {
            drop(socket);
            Vec::new()
        }
        Stop::Disable => {
            socket.disable_monitor().unwrap();
            vec![socket]
        }
        Stop::Replace => {
            let newer = socket.get_monitor_socket(CONNECTED as i32).unwrap();
            vec![socket, newer]
        }
    }
}

/// What a reader parked on a monitor of `asked` events wakes with when monitoring stops the
/// `stop` way, then checks that the events have ended. Without an end of the events the
/// reader parks forever: the time limit fails the test.
fn woken_reader(asked: i32, stop: Stop) -> zmq::Result<Result<MonitorEvent, MalformedEvent>> {
    run_within(Duration::from_secs(10), move || {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        let events = socket.get_monitor_socket(asked).unwrap();
        let reader = zmq::spawn(move || (recv_monitor_message(&events, 0), events));
        may::coroutine::yield_now(); // one worker: the reader runs and parks first
        let _open = stop_monitoring(socket, stop);
        let (woke, events) = join(reader);
        expect_ended(&events);
        woke
    })
}

#[test]
fn a_reader_that_did_not_ask_for_monitor_stopped_wakes_when_monitoring_stops() {
    for stop in [Stop::CloseMonitored, Stop::Disable, Stop::Replace] {
        let woke = woken_reader(CONNECTED as i32, stop);
        assert_eq!(woke, Err(zmq::Error::ENOTCONN), "{stop:?}");
    }
}

#[test]
fn a_reader_that_asked_for_monitor_stopped_gets_it_and_then_the_end() {
    for stop in [Stop::CloseMonitored, Stop::Disable, Stop::Replace] {
        let woke = woken_reader(mask(&[CONNECTED, MONITOR_STOPPED]), stop);
        assert_eq!(woke.unwrap().unwrap().event, MONITOR_STOPPED, "{stop:?}");
    }
}

#[test]
fn a_hub_task_waiting_for_events_wakes_when_the_monitored_socket_closes() {
    common::on_thread(Duration::from_secs(10), || {
        let hub = Hub::new().unwrap();
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        let events = socket.get_monitor_socket(CONNECTED as i32).unwrap();
        let reader = hub.spawn(move || recv_monitor_message(&events, 0));
        hub.spawn(move || {
            hub::yield_now(); // the reader parks first
            drop(socket);
        });
        hub.run();
        assert_eq!(
            reader.try_join().unwrap().unwrap(),
            Err(zmq::Error::ENOTCONN)
        );
    });
}

#[test]
fn the_ioloop_passes_on_only_the_events_asked_for() {
    common::on_thread(common::LIMIT, || {
        let ctx = zmq::Context::new();
        let ioloop = IOLoop::new().unwrap();
        let cases = [
            (mask(&[LISTENING]), vec![LISTENING]),
            (
                mask(&[LISTENING, MONITOR_STOPPED]),
                vec![LISTENING, MONITOR_STOPPED],
            ),
        ];
        for (asked, expected) in cases {
            let server = ctx.socket(zmq::ROUTER).unwrap();
            let events =
                ZmqStream::new(server.get_monitor_socket(asked).unwrap(), &ioloop).unwrap();
            let seen = Rc::new(RefCell::new(Vec::new()));
            let log = seen.clone();
            events.on_monitor_event(move |event| log.borrow_mut().push(event.event));
            common::bind_tcp(&server);
            server.disable_monitor().unwrap();
            // Both messages are queued (libzmq is always asked for MONITOR_STOPPED): handled
            // now, both are read, and only what the mask asked for reaches the callback.
            assert_eq!(events.flush(zmq::POLLIN, None), 2);
            assert_eq!(*seen.borrow(), expected);
        }
    });
}

#[test]
fn an_invalid_event_mask_is_einval_and_keeps_the_current_monitor() {
    run(|| {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        let events = socket.get_monitor_socket(SocketEvent::ALL as i32).unwrap();
        assert_eq!(
            socket.get_monitor_socket(1 << 16).map(drop),
            Err(zmq::Error::EINVAL)
        );
        assert_eq!(
            socket.get_monitor_socket(-1).map(drop),
            Err(zmq::Error::EINVAL)
        );
        let endpoint = common::bind_tcp(&socket);
        expect(&events, LISTENING, &endpoint);
        // Still linked: closing the monitor socket first stops monitoring (else this hangs).
        drop(events);
        provoke_events(&ctx, &socket);
    });
}

#[test]
fn a_monitor_socket_that_cannot_be_made_keeps_the_current_monitor() {
    run(|| {
        let ctx = zmq::Context::new();
        // Room for the socket and its first monitor (the monitor socket, libzmq's end).
        ctx.set_max_sockets(3).unwrap();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        let events = socket.get_monitor_socket(SocketEvent::ALL as i32).unwrap();
        assert_eq!(
            socket.get_monitor_socket(SocketEvent::ALL as i32).map(drop),
            Err(zmq::Error::EMFILE)
        );
        let endpoint = common::bind_tcp(&socket);
        expect(&events, LISTENING, &endpoint);
    });
}

#[test]
fn when_libzmq_cannot_make_its_end_of_a_new_monitor_the_previous_one_has_ended() {
    run(|| {
        let ctx = zmq::Context::new();
        // Room for the socket, its first monitor and the next monitor socket, not for
        // libzmq's end of the next monitor: libzmq stops the first monitor before it fails
        // (the first one's end keeps its place until its reader takes note of the stop).
        ctx.set_max_sockets(4).unwrap();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        let events = socket.get_monitor_socket(CONNECTED as i32).unwrap();
        assert_eq!(
            socket.get_monitor_socket(SocketEvent::ALL as i32).map(drop),
            Err(zmq::Error::EMFILE)
        );
        expect_ended(&events);
        // The order that hangs while a monitor is left without its reader.
        drop(events);
        drop(socket);
    });
}

#[test]
fn a_socket_from_raw_has_no_context_for_a_monitor_socket() {
    let ctx = zmq::Context::new();
    let raw = ctx.socket(zmq::DEALER).unwrap().into_raw();
    // SAFETY: `raw` is the live socket just released by `into_raw`, owned by nothing else.
    let socket = unsafe { zmq::Socket::from_raw(raw) };
    assert_eq!(
        socket.get_monitor_socket(SocketEvent::ALL as i32).map(drop),
        Err(zmq::Error::ENOTSUP)
    );
}

#[test]
fn into_raw_stops_a_monitor_so_its_monitor_socket_can_close_first() {
    run(|| {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        let events = socket.get_monitor_socket(SocketEvent::ALL as i32).unwrap();
        let raw = socket.into_raw();
        expect(&events, MONITOR_STOPPED, "");
        drop(events);
        // SAFETY: `raw` is the live socket released by `into_raw` above, owned by nothing else.
        let socket = unsafe { zmq::Socket::from_raw(raw) };
        provoke_events(&ctx, &socket);
    });
}

#[test]
fn events_that_are_not_monitor_events_come_back_whole() {
    let garbage = vec![b"not".to_vec(), b"an".to_vec(), b"event".to_vec()];
    let err = MonitorEvent::from_frames(garbage.clone()).unwrap_err();
    assert_eq!(err.frames, garbage);
    assert!(err.to_string().contains("not a socket monitor event"));
}

#[test]
fn a_wait_for_an_event_honours_rcvtimeo() {
    run(|| {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        let events = socket.get_monitor_socket(SocketEvent::ALL as i32).unwrap();
        events.set_rcvtimeo(200).unwrap();
        let ping = Ping::start();
        assert_eq!(recv_monitor_message(&events, 0), Err(zmq::Error::EAGAIN));
        assert!(ping.rounds() > 0, "the worker was blocked during the wait");
        ping.stop();
    });
}
