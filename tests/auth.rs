//! `zmqloop::auth::Authenticator` over tcp: each mechanism accepts the right peer and refuses
//! the wrong one (counted in its statistics, logged, and no refused message ever arrives),
//! CURVE encrypts what goes on the wire, and the authenticator runs on the scheduler that
//! started it. Tests run on the harness's single may worker unless they say otherwise.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::zmq;
use zmq::monitor::recv_monitor_message;
use zmq::task::RunsOn;
use zmqloop::auth::{certs, Authenticator, CurveAuth, Refusal};
use zmqloop_fixtures::threads;

/// Watches a server socket's handshakes through a monitor socket.
struct Handshakes {
    monitor: zmq::Socket,
}

impl Handshakes {
    fn watch(server: &zmq::Socket) -> Handshakes {
        let events = zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_AUTH as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as i32
            | zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL as i32;
        let monitor = server.get_monitor_socket(events).unwrap();
        Handshakes { monitor }
    }

    /// Parks until the next handshake event and returns it.
    fn next(&self) -> zmq::SocketEvent {
        let event = recv_monitor_message(&self.monitor, 0).unwrap();
        event.expect("a monitor event").event
    }

    /// Parks until `count` handshakes have failed; panics on a success.
    fn expect_failures(&self, count: usize) -> Vec<zmq::SocketEvent> {
        (0..count)
            .map(|_| {
                let event = self.next();
                assert_ne!(
                    event,
                    zmq::SocketEvent::HANDSHAKE_SUCCEEDED,
                    "a wrong peer got in"
                );
                event
            })
            .collect()
    }

    /// Queues a message on `refused` (see [`send_from_refused`]) and parks until the next
    /// handshake fails (its own, as the tests have one client in flight); returns how it
    /// failed.
    fn refuse(&self, refused: &zmq::Socket) -> zmq::SocketEvent {
        send_from_refused(refused, "from a refused client");
        self.expect_failures(1)[0]
    }
}

/// A PULL server on an ephemeral tcp port, set up by `setup`, with its endpoint.
fn server(ctx: &zmq::Context, setup: impl FnOnce(&zmq::Socket)) -> (zmq::Socket, String) {
    let socket = ctx.socket(zmq::PULL).unwrap();
    socket.set_linger(0).unwrap();
    setup(&socket);
    let endpoint = common::bind_tcp(&socket);
    (socket, endpoint)
}

/// A PUSH client connected to `endpoint` once (a refused one does not try again, so each
/// client is one ZAP request), set up by `setup`.
fn client(ctx: &zmq::Context, endpoint: &str, setup: impl FnOnce(&zmq::Socket)) -> zmq::Socket {
    let socket = ctx.socket(zmq::PUSH).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_reconnect_ivl(-1).unwrap();
    setup(&socket);
    socket.connect(endpoint).unwrap();
    socket
}

/// Queues `payload` on a client that is to be refused, without waiting. Its handshake starts at
/// `connect`, and a refused client that does not reconnect loses its pipe when the handshake
/// fails (libzmq terminates the connection's session), so a waiting send made after that would
/// park for good: on a busy machine the refusal can come before this line runs. Either the
/// message is queued or the socket has no pipe left (EAGAIN); in both cases it must never arrive.
fn send_from_refused(socket: &zmq::Socket, payload: &str) {
    match socket.send(payload, zmq::DONTWAIT) {
        Ok(()) | Err(zmq::Error::EAGAIN) => {}
        Err(err) => panic!("a refused client's send failed: {err}"),
    }
}

/// Sets up a PLAIN server in ZAP `domain` (`""`: none, libzmq's default).
fn plain_server(domain: &'static str) -> impl FnOnce(&zmq::Socket) {
    move |socket| {
        socket.set_plain_server(true).unwrap();
        if !domain.is_empty() {
            socket.set_zap_domain(domain).unwrap();
        }
    }
}

fn plain(user: &'static str, password: &'static str) -> impl FnOnce(&zmq::Socket) {
    move |socket| {
        socket.set_plain_username(Some(user)).unwrap();
        socket.set_plain_password(Some(password)).unwrap();
    }
}

fn curve_server(keys: &zmq::CurveKeyPair) -> impl FnOnce(&zmq::Socket) + '_ {
    move |socket| {
        socket.set_curve_server(true).unwrap();
        socket.set_curve_secretkey(&keys.secret_key).unwrap();
    }
}

fn curve_client<'a>(
    server_public: &'a [u8],
    keys: &'a zmq::CurveKeyPair,
) -> impl FnOnce(&zmq::Socket) + 'a {
    move |socket| {
        socket.set_curve_serverkey(server_public).unwrap();
        socket.set_curve_publickey(&keys.public_key).unwrap();
        socket.set_curve_secretkey(&keys.secret_key).unwrap();
    }
}

/// A CURVE client of the server whose public key is `server_public`, with `keys`.
fn curve_peer(
    ctx: &zmq::Context,
    endpoint: &str,
    server_public: &[u8],
    keys: &zmq::CurveKeyPair,
) -> zmq::Socket {
    client(ctx, endpoint, curve_client(server_public, keys))
}

/// Sends `payload` from each good client, then checks the server gets exactly those, and
/// nothing else once every refused handshake has failed.
fn only_good_messages_arrive(server: &zmq::Socket, good: &[&zmq::Socket]) {
    let mut expected = HashSet::new();
    for (i, socket) in good.iter().enumerate() {
        let payload = format!("from good client {i}");
        socket.send(payload.as_str(), 0).unwrap();
        expected.insert(payload);
    }
    let received: HashSet<String> = (0..good.len())
        .map(|_| server.recv_string(0).unwrap().unwrap())
        .collect();
    assert_eq!(received, expected);
    assert_eq!(server.recv_bytes(zmq::DONTWAIT), Err(zmq::Error::EAGAIN));
}

#[test]
fn plain_accepts_the_right_password_and_refuses_the_others() {
    common::run(|| {
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        auth.configure_plain("*", [("admin", "secret")]);
        auth.start().unwrap();
        assert_eq!(auth.runs_on(), Some(RunsOn::MayCoroutine));
        let (server, endpoint) = server(&ctx, plain_server(""));
        let handshakes = Handshakes::watch(&server);

        let wrong_password = client(&ctx, &endpoint, plain("admin", "guess"));
        let unknown_user = client(&ctx, &endpoint, plain("eve", "secret"));
        send_from_refused(&wrong_password, "intruder 1");
        send_from_refused(&unknown_user, "intruder 2");
        let failures = handshakes.expect_failures(2);
        assert_eq!(failures, [zmq::SocketEvent::HANDSHAKE_FAILED_AUTH; 2]);

        let admin = client(&ctx, &endpoint, plain("admin", "secret"));
        only_good_messages_arrive(&server, &[&admin]);
        let stats = auth.statistics();
        assert_eq!((stats.requests, stats.accepted), (3, 1));
        assert_eq!(stats.refused(Refusal::WrongPassword), 1);
        assert_eq!(stats.refused(Refusal::UnknownUser), 1);
        auth.stop().unwrap();
    });
}

#[test]
fn curve_accepts_known_keys_and_refuses_unknown_ones() {
    common::run(|| {
        let ctx = zmq::Context::new();
        let server_keys = zmq::CurveKeyPair::new().unwrap();
        let known = zmq::CurveKeyPair::new().unwrap();
        let stranger = zmq::CurveKeyPair::new().unwrap();
        let mut auth = Authenticator::new(&ctx);
        let keys = CurveAuth::Keys(HashSet::from([known.public_key]));
        auth.configure_curve("*", keys).unwrap();
        auth.start().unwrap();
        let (server, endpoint) = server(&ctx, curve_server(&server_keys));
        let handshakes = Handshakes::watch(&server);

        let unknown = curve_peer(&ctx, &endpoint, &server_keys.public_key, &stranger);
        assert_eq!(
            handshakes.refuse(&unknown),
            zmq::SocketEvent::HANDSHAKE_FAILED_AUTH
        );
        // A client that does not know the server's key fails the handshake itself: the
        // server cannot read its HELLO, and the authenticator is never asked.
        let wrong_server_key = zmq::CurveKeyPair::new().unwrap().public_key;
        let lost = curve_peer(&ctx, &endpoint, &wrong_server_key, &known);
        assert_eq!(
            handshakes.refuse(&lost),
            zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL
        );

        let good = curve_peer(&ctx, &endpoint, &server_keys.public_key, &known);
        only_good_messages_arrive(&server, &[&good]);
        let stats = auth.statistics();
        assert_eq!((stats.requests, stats.accepted), (2, 1));
        assert_eq!(stats.refused(Refusal::UnknownKey), 1);
    });
}

/// A fresh temporary directory for certificates.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "zmqloop-auth-{name}-{}-{}",
        std::process::id(),
        common::inproc("dir").rsplit('-').next().unwrap()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The key pair of a secret certificate file.
fn key_pair(secret_file: &std::path::Path) -> zmq::CurveKeyPair {
    let cert = certs::load_certificate(secret_file).unwrap();
    zmq::CurveKeyPair {
        public_key: cert.public_key,
        secret_key: cert.secret_key.unwrap(),
    }
}

#[test]
fn curve_directories_are_reloaded_and_allow_any_lets_everyone_in() {
    common::run(|| {
        let ctx = zmq::Context::new();
        let dir = temp_dir("reload");
        let clients = temp_dir("reload-clients");
        let (_, alice_secret) = certs::create_certificates(&clients, "alice").unwrap();
        let (bob_public, bob_secret) = certs::create_certificates(&clients, "bob").unwrap();
        std::fs::copy(clients.join("alice.key"), dir.join("alice.key")).unwrap();
        let (alice, bob) = (key_pair(&alice_secret), key_pair(&bob_secret));
        let server_keys = zmq::CurveKeyPair::new().unwrap();

        let mut auth = Authenticator::new(&ctx);
        auth.configure_curve("*", CurveAuth::Directory(dir.clone()))
            .unwrap();
        auth.start().unwrap();
        let (server, endpoint) = server(&ctx, curve_server(&server_keys));
        let handshakes = Handshakes::watch(&server);
        let bob_early = curve_peer(&ctx, &endpoint, &server_keys.public_key, &bob);
        handshakes.refuse(&bob_early);
        let alice_in = curve_peer(&ctx, &endpoint, &server_keys.public_key, &alice);
        only_good_messages_arrive(&server, &[&alice_in]);

        std::fs::copy(&bob_public, dir.join("bob.key")).unwrap();
        auth.reload_certificates().unwrap();
        let bob_in = curve_peer(&ctx, &endpoint, &server_keys.public_key, &bob);
        only_good_messages_arrive(&server, &[&bob_in]);

        auth.configure_curve("*", CurveAuth::AllowAny).unwrap();
        let anyone = zmq::CurveKeyPair::new().unwrap();
        let anyone_in = curve_peer(&ctx, &endpoint, &server_keys.public_key, &anyone);
        only_good_messages_arrive(&server, &[&anyone_in]);
        let stats = auth.statistics();
        assert_eq!((stats.requests, stats.accepted), (4, 3));
        assert_eq!(stats.refused(Refusal::UnknownKey), 1);
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&clients).unwrap();
    });
}

#[test]
fn pyzmq_certificates_drive_a_curve_handshake() {
    common::run(|| {
        let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pyzmq-certs");
        let server_keys = key_pair(&fixtures.join("server.key_secret"));
        let client_keys = key_pair(&fixtures.join("client.key_secret"));
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        auth.configure_curve("*", CurveAuth::Directory(fixtures.clone()))
            .unwrap();
        auth.start().unwrap();
        let (server, endpoint) = server(&ctx, curve_server(&server_keys));
        let good = curve_peer(&ctx, &endpoint, &server_keys.public_key, &client_keys);
        only_good_messages_arrive(&server, &[&good]);
        assert_eq!(auth.statistics().accepted, 1);
    });
}

#[test]
fn address_lists_refuse_and_admit_null_peers_and_a_stopped_authenticator_can_be_replaced() {
    common::run(|| {
        let ctx = zmq::Context::new();
        // NULL peers reach the authenticator only on sockets with a ZAP domain.
        let (server, endpoint) = server(&ctx, |s| s.set_zap_domain("global").unwrap());
        let handshakes = Handshakes::watch(&server);

        let mut deny = Authenticator::new(&ctx);
        deny.deny(&["127.0.0.1"]).unwrap();
        deny.start().unwrap();
        let denied = client(&ctx, &endpoint, |_| {});
        handshakes.refuse(&denied);
        assert_eq!(deny.statistics().refused(Refusal::AddressDenied), 1);
        deny.stop().unwrap();

        let mut elsewhere = Authenticator::new(&ctx);
        elsewhere.allow(&["192.0.2.1"]).unwrap();
        elsewhere.start().unwrap(); // binds the endpoint the first one left
        let not_allowed = client(&ctx, &endpoint, |_| {});
        handshakes.refuse(&not_allowed);
        assert_eq!(
            elsewhere.statistics().refused(Refusal::AddressNotAllowed),
            1
        );
        drop(elsewhere); // dropping stops it too

        let mut allow = Authenticator::new(&ctx);
        allow.allow(&["127.0.0.1"]).unwrap();
        allow.deny(&["127.0.0.1"]).unwrap(); // the allow list wins
        allow.start().unwrap();
        let allowed = client(&ctx, &endpoint, |_| {});
        only_good_messages_arrive(&server, &[&allowed]);
        let stats = allow.statistics();
        assert_eq!((stats.requests, stats.accepted), (1, 1));
    });
}

#[test]
fn a_second_authenticator_on_a_running_ones_context_is_refused() {
    common::run(|| {
        let mut ctx = zmq::Context::new();
        let mut first = Authenticator::new(&ctx);
        first.start().unwrap();
        first.start().unwrap(); // already started: nothing to do
        let mut second = Authenticator::new(&ctx);
        assert_eq!(second.start(), Err(zmq::Error::EADDRINUSE));
        assert!(!second.is_alive());
        assert!(first.is_alive());
        first.stop().unwrap();
        assert!(!first.is_alive());
        second.start().unwrap();
        let debug = format!("{second:?}");
        assert!(
            debug.contains("MayCoroutine") && debug.contains("alive: true"),
            "{debug}"
        );
        // Terminating the context ends it quietly.
        ctx.destroy().unwrap();
        second.stop().unwrap();
        assert!(!second.is_alive());
    });
}

#[test]
fn a_thousand_handshakes_at_once() {
    const GOOD: usize = 900;
    const BAD: usize = 100;
    common::run(|| {
        let ctx = zmq::Context::new();
        ctx.set_max_sockets(4 * (GOOD + BAD) as i32).unwrap();
        let mut auth = Authenticator::new(&ctx);
        auth.configure_plain("*", [("admin", "secret")]);
        auth.start().unwrap();
        let (server, endpoint) = server(&ctx, |s| {
            s.set_plain_server(true).unwrap();
            s.set_backlog(2 * (GOOD + BAD) as i32).unwrap();
        });
        let handshakes = Handshakes::watch(&server);
        let clients: Vec<zmq::Socket> = (0..GOOD + BAD)
            .map(|i| {
                let password = if i % 10 == 9 { "guess" } else { "secret" };
                client(&ctx, &endpoint, plain("admin", password))
            })
            .collect();
        for (i, socket) in clients.iter().enumerate() {
            if i % 10 == 9 {
                send_from_refused(socket, &format!("{i}"));
            } else {
                socket.send(format!("{i}").as_str(), 0).unwrap();
            }
        }
        let mut received = HashSet::new();
        for _ in 0..GOOD {
            let i: usize = server.recv_string(0).unwrap().unwrap().parse().unwrap();
            assert_ne!(i % 10, 9, "a refused client's message arrived");
            received.insert(i);
        }
        assert_eq!(received.len(), GOOD);
        let mut failed = 0;
        while failed < BAD {
            match handshakes.next() {
                zmq::SocketEvent::HANDSHAKE_FAILED_AUTH => failed += 1,
                zmq::SocketEvent::HANDSHAKE_SUCCEEDED => {}
                other => panic!("unexpected handshake event {other:?}"),
            }
        }
        let stats = auth.statistics();
        assert_eq!(
            (stats.requests, stats.accepted),
            ((GOOD + BAD) as u64, GOOD as u64)
        );
        assert_eq!(stats.refused(Refusal::WrongPassword), BAD as u64);
        // No liveness probe here: the authenticator shares the one worker with this test, so
        // had it blocked the thread (a blocking zmq_poll) this coroutine could never have
        // run again, and the test would have failed at its time limit instead.
        drop(clients);
    });
}

/// A tcp relay that records what the client sends: a proxy between a client and the server.
struct Relay {
    address: SocketAddr,
    client_bytes: Arc<Mutex<Vec<u8>>>,
}

impl Relay {
    /// Relays the first connection it accepts to `target`, in threads of its own.
    fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let client_bytes = Arc::new(Mutex::new(Vec::new()));
        let record = client_bytes.clone();
        std::thread::spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let server = TcpStream::connect(target).unwrap();
            let (client_read, server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || copy(client_read, server_write, Some(record)));
            copy(server, client, None);
        });
        Relay {
            address,
            client_bytes,
        }
    }

    fn client_sent(&self, needle: &[u8]) -> bool {
        let bytes = self.client_bytes.lock().unwrap();
        bytes.windows(needle.len()).any(|window| window == needle)
    }
}

/// Copies `from` to `to` until either closes, recording the bytes if asked.
fn copy(mut from: TcpStream, mut to: TcpStream, record: Option<Arc<Mutex<Vec<u8>>>>) {
    let mut buffer = [0u8; 4096];
    while let Ok(n @ 1..) = from.read(&mut buffer) {
        if let Some(record) = &record {
            record.lock().unwrap().extend_from_slice(&buffer[..n]);
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Sends `payload` from a client through a relay to a server, both set up as asked, and
/// returns the relay once the server has the payload.
fn relay_one_message(
    payload: &'static [u8],
    server_setup: impl FnOnce(&zmq::Socket) + Send + 'static,
    client_setup: impl FnOnce(&zmq::Socket) + Send + 'static,
) -> Relay {
    common::run(move || {
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        auth.configure_curve("*", CurveAuth::AllowAny).unwrap();
        auth.start().unwrap();
        let (server, endpoint) = server(&ctx, server_setup);
        let target: SocketAddr = endpoint.trim_start_matches("tcp://").parse().unwrap();
        let relay = Relay::start(target);
        let client = client(&ctx, &format!("tcp://{}", relay.address), client_setup);
        client.send(payload, 0).unwrap();
        assert_eq!(server.recv_bytes(0).unwrap(), payload);
        relay
    })
}

#[test]
fn curve_bytes_on_the_wire_are_not_the_plaintext() {
    const PAYLOAD: &[u8] = b"zmqloop wire test: the quick brown fox pays 1234 to 5678";
    let server_keys = zmq::CurveKeyPair::new().unwrap();
    let client_keys = zmq::CurveKeyPair::new().unwrap();
    let server_public = server_keys.public_key;
    let curve = relay_one_message(
        PAYLOAD,
        move |s| curve_server(&server_keys)(s),
        move |s| curve_client(&server_public, &client_keys)(s),
    );
    assert!(curve.client_bytes.lock().unwrap().len() > PAYLOAD.len());
    assert!(
        !curve.client_sent(PAYLOAD),
        "CURVE sent the payload in clear"
    );
    assert!(
        !curve.client_sent(&PAYLOAD[..16]),
        "CURVE sent part of it in clear"
    );

    let null = relay_one_message(PAYLOAD, |_| {}, |_| {});
    assert!(
        null.client_sent(PAYLOAD),
        "the relay should see NULL's plaintext"
    );
}

/// Starts an authenticator here, checks where it runs, and has it admit one PLAIN peer.
fn start_and_admit_one_plain_peer(expected: RunsOn) -> Authenticator {
    let ctx = zmq::Context::new();
    let mut auth = Authenticator::new(&ctx);
    auth.configure_plain("*", [("admin", "secret")]);
    auth.start().unwrap();
    assert_eq!(auth.runs_on(), Some(expected));
    let (server, endpoint) = server(&ctx, plain_server(""));
    let admin = client(&ctx, &endpoint, plain("admin", "secret"));
    only_good_messages_arrive(&server, &[&admin]);
    assert_eq!(auth.statistics().accepted, 1);
    auth
}

#[test]
fn it_runs_as_a_hub_task_when_started_in_one() {
    common::on_thread(common::LIMIT, || {
        let hub = zmq::hub::Hub::new().unwrap();
        hub.block_on(|| {
            let mut auth = start_and_admit_one_plain_peer(RunsOn::HubTask);
            auth.stop().unwrap(); // parks this task while the authenticator's task ends
        });
    });
}

#[test]
fn it_runs_on_a_named_thread_when_started_outside_any_scheduler() {
    common::on_thread(common::LIMIT, || {
        let mut auth = start_and_admit_one_plain_peer(RunsOn::Thread);
        // It has answered, so its thread is running (and has named itself).
        assert!(!threads::tids_named(zmqloop::auth::THREAD_NAME).is_empty());
        auth.stop().unwrap();
    });
}

#[test]
fn a_malformed_zap_request_is_answered_and_counted() {
    common::run(|| {
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        auth.start().unwrap();
        // Talk ZAP directly, as libzmq would, but badly.
        let zap = common::zap::requester(&ctx, 5000);
        zap.send_multipart(["1.0", "7", "", "127.0.0.1"], 0)
            .unwrap();
        let reply = zap.recv_multipart(0).unwrap();
        assert_eq!(
            reply[1..4],
            [
                b"7".to_vec(),
                b"400".to_vec(),
                b"Not enough frames".to_vec()
            ]
        );
        zap.send_multipart(["1.0", "8", "", "127.0.0.1", "", "GSSAPI", "p"], 0)
            .unwrap();
        let reply = zap.recv_multipart(0).unwrap();
        assert_eq!(
            reply[2..4],
            [b"400".to_vec(), b"Unsupported mechanism".to_vec()]
        );
        let stats = auth.statistics();
        assert_eq!(stats.refused(Refusal::BadRequest), 1);
        assert_eq!(stats.refused(Refusal::UnsupportedMechanism), 1);
    });
}

#[test]
fn configuring_a_missing_certificate_directory_is_an_error_and_changes_nothing() {
    let ctx = zmq::Context::new();
    let auth = Authenticator::new(&ctx);
    let missing = std::env::temp_dir().join("zmqloop-no-such-certificate-directory");
    let err = auth
        .configure_curve("*", CurveAuth::Directory(missing.clone()))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    auth.reload_certificates().unwrap(); // nothing configured: nothing to reload
}

#[test]
fn each_refusal_is_logged_with_mechanism_address_and_reason() {
    common::logs::capture();
    common::run(|| {
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        auth.configure_plain("logged", [("admin", "secret")]);
        auth.start().unwrap();
        let (server, endpoint) = server(&ctx, plain_server("logged"));
        let handshakes = Handshakes::watch(&server);
        let wrong = client(&ctx, &endpoint, plain("admin", "hunter2"));
        handshakes.refuse(&wrong);
    });
    let refusals = common::logs::matching(log::Level::Info, "\"logged\"");
    let [refusal] = &refusals[..] else {
        panic!("not one log line for the refusal: {refusals:?}");
    };
    for part in [
        "refused PLAIN",
        "127.0.0.1",
        "Invalid password",
        "\"admin\"",
    ] {
        assert!(refusal.contains(part), "{part:?} missing from {refusal:?}");
    }
    assert!(!refusal.contains("hunter2"), "a password was logged");
}

#[test]
fn start_starts_again_once_the_task_has_ended_and_the_end_is_logged() {
    common::logs::capture();
    common::on_thread(common::LIMIT, || {
        let ctx = zmq::Context::new();
        let hub = zmq::hub::Hub::new().unwrap();
        let hub_ctx = ctx.clone();
        let mut auth = hub.block_on(move || {
            let mut auth = Authenticator::new(&hub_ctx);
            auth.deny(&["192.0.2.1"]).unwrap();
            auth.start().unwrap();
            auth
        });
        assert_eq!(auth.runs_on(), Some(RunsOn::HubTask));
        drop(hub); // cancels the authenticator's task
        assert!(!auth.is_alive(), "its task ended with its hub");
        let ended = common::logs::matching(log::Level::Error, "cancelled (its hub dropped)");
        assert!(!ended.is_empty(), "the end was not logged at error level");

        auth.start().unwrap();
        assert!(auth.is_alive());
        assert_eq!(auth.runs_on(), Some(RunsOn::Thread), "started afresh, here");
        let zap = common::zap::requester(&ctx, 5000);
        let request = common::zap::null_request("1", "", "192.0.2.1");
        assert_eq!(common::zap::status_of(&zap, request), Ok("400".into()));
        auth.stop().unwrap();
    });
}

#[test]
fn requests_queued_when_it_stops_are_refused_not_left_unanswered() {
    common::run(|| {
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        auth.start().unwrap();
        let requesters: Vec<zmq::Socket> =
            (0..3).map(|_| common::zap::requester(&ctx, 5000)).collect();
        for (i, requester) in requesters.iter().enumerate() {
            let request = common::zap::null_request(&i.to_string(), "", "127.0.0.1");
            requester.send_multipart(request, zmq::DONTWAIT).unwrap();
        }
        // Nothing here parked since: the authenticator, on the same single worker, has not
        // run, so all three requests are queued when it is told to stop.
        auth.stop().unwrap();
        for (i, requester) in requesters.iter().enumerate() {
            let reply = requester
                .recv_multipart(0)
                .expect("a request queued at stop was left unanswered");
            assert_eq!(reply[1], i.to_string().as_bytes());
            assert_eq!(
                (&reply[2][..], &reply[3][..]),
                (&b"500"[..], &b"Authenticator stopping"[..])
            );
        }
        let stats = auth.statistics();
        assert_eq!((stats.requests, stats.accepted), (3, 0));
        assert_eq!(stats.refused(Refusal::Stopping), 3);
    });
}

/// A PULL server with IPv6 on, bound to every address (IPv6 and, mapped, IPv4), in ZAP domain
/// `domain`, and the port it listens on; `None` if this machine has no IPv6.
fn dual_stack_server(ctx: &zmq::Context, domain: &str) -> Option<(zmq::Socket, u16)> {
    let socket = ctx.socket(zmq::PULL).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_ipv6(true).unwrap();
    socket.set_zap_domain(domain).unwrap();
    socket.bind("tcp://*:*").unwrap();
    let endpoint = socket.get_last_endpoint().unwrap().unwrap();
    let port = endpoint.rsplit(':').next()?.parse().ok()?;
    endpoint.starts_with("tcp://[::]").then_some((socket, port))
}

#[test]
fn an_ipv4_peer_of_an_ipv6_socket_meets_the_address_lists_as_ipv4() {
    common::logs::capture();
    common::run(|| {
        let ctx = zmq::Context::new();
        let Some((server, port)) = dual_stack_server(&ctx, "mapped") else {
            eprintln!("skipped: no IPv6 on this machine (libzmq bound IPv4 only)");
            return;
        };
        let handshakes = Handshakes::watch(&server);
        let ipv4 = format!("tcp://127.0.0.1:{port}");

        let mut deny = Authenticator::new(&ctx);
        deny.deny(&["127.0.0.1"]).unwrap();
        deny.start().unwrap();
        let denied = client(&ctx, &ipv4, |_| {});
        handshakes.refuse(&denied);
        assert_eq!(deny.statistics().refused(Refusal::AddressDenied), 1);
        // libzmq gave the address in its IPv6 spelling.
        let lines = common::logs::matching(log::Level::Info, "\"mapped\"");
        assert!(lines[0].contains("::ffff:127.0.0.1"), "{lines:?}");
        deny.stop().unwrap();

        let mut allow = Authenticator::new(&ctx);
        allow.allow(&["127.0.0.1"]).unwrap();
        allow.start().unwrap();
        let allowed = client(&ctx, &ipv4, |_| {});
        only_good_messages_arrive(&server, &[&allowed]);
        assert_eq!(allow.statistics().accepted, 1);
    });
}

#[test]
fn an_address_list_entry_that_is_not_an_ip_address_is_an_error_and_changes_nothing() {
    common::on_thread(common::LIMIT, || {
        let ctx = zmq::Context::new();
        let auth = Authenticator::new(&ctx);
        for bad in ["127.0.0.l", "localhost", "10.0.0.0/8", ""] {
            let err = auth.deny(&["10.0.0.1", bad]).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
            let err = auth.allow(&[bad]).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        }
        let mut auth = auth;
        auth.start().unwrap();
        let zap = common::zap::requester(&ctx, 5000);
        let request = common::zap::null_request("1", "", "10.0.0.1");
        assert_eq!(
            common::zap::status_of(&zap, request),
            Ok("200".into()),
            "nothing was denied"
        );
        auth.stop().unwrap();
    });
}

#[test]
fn plain_credentials_are_compared_as_bytes() {
    common::run(|| {
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        // U+FFFD is what a lossy decoding makes of a byte that is not UTF-8.
        auth.configure_plain("*", [("admin", "pass\u{FFFD}"), ("us\u{FFFD}r", "secret")]);
        auth.start().unwrap();
        let zap = common::zap::requester(&ctx, 5000);
        let ask = |username: &[u8], password: &[u8]| {
            let request =
                common::zap::request("1", "", "127.0.0.1", "PLAIN", &[username, password]);
            common::zap::status_of(&zap, request)
        };
        assert_eq!(ask(b"admin", b"pass\xff"), Ok("400".into()));
        assert_eq!(ask(b"us\xffr", b"secret"), Ok("400".into()));
        assert_eq!(ask(b"admin", "pass\u{FFFD}".as_bytes()), Ok("200".into()));
        let stats = auth.statistics();
        assert_eq!(stats.refused(Refusal::WrongPassword), 1);
        assert_eq!(stats.refused(Refusal::UnknownUser), 1);
        auth.stop().unwrap();
    });
}

#[test]
fn the_default_domain_serves_sockets_without_a_domain_only() {
    common::run(|| {
        let ctx = zmq::Context::new();
        let mut auth = Authenticator::new(&ctx);
        auth.configure_plain("*", [("admin", "secret")]);
        auth.start().unwrap();
        let (typo, typo_endpoint) = server(&ctx, plain_server("glboal"));
        let handshakes = Handshakes::watch(&typo);
        let refused = client(&ctx, &typo_endpoint, plain("admin", "secret"));
        handshakes.refuse(&refused);
        assert_eq!(auth.statistics().refused(Refusal::UnknownDomain), 1);

        let (plain_server, endpoint) = server(&ctx, plain_server(""));
        let admin = client(&ctx, &endpoint, plain("admin", "secret"));
        only_good_messages_arrive(&plain_server, &[&admin]);
        assert_eq!(auth.statistics().accepted, 1);
    });
}

/// An authenticator started in a task of `hub`, handed back out of the hub.
fn started_in_a_task_of(hub: &zmq::hub::Hub, ctx: &zmq::Context) -> Authenticator {
    let ctx = ctx.clone();
    hub.block_on(move || {
        let mut auth = Authenticator::new(&ctx);
        auth.start().unwrap();
        auth
    })
}

#[test]
fn an_authenticator_of_a_hub_task_let_go_on_the_hubs_thread_outside_its_tasks_does_not_hang() {
    common::logs::capture();
    common::on_thread(Duration::from_secs(20), || {
        let ctx = zmq::Context::new();
        let hub = zmq::hub::Hub::new().unwrap();

        let mut stopped = started_in_a_task_of(&hub, &ctx);
        assert_eq!(stopped.runs_on(), Some(RunsOn::HubTask));
        // The hub cannot run its task while this thread waits: stop says so instead.
        assert_eq!(stopped.stop(), Err(zmq::Error::EFSM));
        assert!(!stopped.is_alive());
        hub.run(); // the task sees the stop request and ends

        let dropped = started_in_a_task_of(&hub, &ctx);
        drop(dropped); // logs, and lets the task end when the hub runs again
        let detached = common::logs::matching(log::Level::Warn, "outside the hub's tasks");
        assert!(!detached.is_empty(), "not logged");
        hub.run();

        // The endpoint is free again: both tasks have ended.
        let mut here = Authenticator::new(&ctx);
        here.start().unwrap();
        here.stop().unwrap();
    });
}

/// libzmq 4.3.4's rule when no ZAP handler is bound, checked so that a libzmq with another
/// one is noticed (the module docs and the README state it): a CURVE server lets in any client
/// that completes the handshake, whatever its key; a NULL socket with a ZAP domain lets every
/// peer in; a PLAIN server refuses every client (`HANDSHAKE_FAILED_NO_DETAIL`, EFAULT). That is
/// what remains after `stop`, and after the authenticator's task has ended (here: its hub was
/// dropped).
#[test]
fn without_a_running_authenticator_curve_and_null_let_everyone_in_and_plain_refuses() {
    common::on_thread(common::LIMIT, || {
        let ctx = zmq::Context::new();
        let server_keys = zmq::CurveKeyPair::new().unwrap();
        let (curve, curve_endpoint) = server(&ctx, curve_server(&server_keys));
        let (null, null_endpoint) = server(&ctx, |s| s.set_zap_domain("null").unwrap());
        let (plain_server, plain_endpoint) = server(&ctx, plain_server(""));
        let plain_handshakes = Handshakes::watch(&plain_server);
        let expect_the_rule = |after: &str| {
            let stranger = zmq::CurveKeyPair::new().unwrap();
            let curve_peer = curve_peer(&ctx, &curve_endpoint, &server_keys.public_key, &stranger);
            only_good_messages_arrive(&curve, &[&curve_peer]);
            let null_peer = client(&ctx, &null_endpoint, |_| {});
            only_good_messages_arrive(&null, &[&null_peer]);
            let admin = client(&ctx, &plain_endpoint, plain("admin", "secret"));
            assert_eq!(
                plain_handshakes.refuse(&admin),
                zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL,
                "{after}"
            );
        };

        let mut auth = Authenticator::new(&ctx);
        auth.configure_curve("*", CurveAuth::Keys(HashSet::new()))
            .unwrap();
        auth.configure_plain("*", [("admin", "secret")]);
        auth.deny(&["127.0.0.1"]).unwrap();
        auth.start().unwrap();
        auth.stop().unwrap();
        expect_the_rule("after stop");

        let hub = zmq::hub::Hub::new().unwrap();
        let ended = started_in_a_task_of(&hub, &ctx);
        drop(hub);
        assert!(!ended.is_alive());
        expect_the_rule("after its task ended");
        assert_eq!(auth.statistics().requests, 0, "no one was asked");
    });
}
