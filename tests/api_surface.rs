//! Proves the drop-in contract of `zmqloop::green`: the same source, `api_surface/body.rs`, which
//! uses the entire public API of `zmq` 0.10, compiles against the real `zmq` crate (module
//! `plain`) and against `zmqloop::green as zmq` (module `green`). So a program written for `zmq`
//! compiles unchanged after `use zmq;` becomes `use zmqloop::green as zmq;`.
//!
//! Each module also runs the run-time tests of the body (options, a multipart exchange with one
//! end on another thread, poll items, a monitor, raw pointers, z85 and error values), so both
//! APIs are seen to behave alike. The tests at the bottom compare the two directly.

/// The body against the real `zmq` 0.10.
mod plain {
    use ::zmq;
    include!("api_surface/body.rs");
}

/// The same body against the green replacement.
mod green {
    use zmqloop::green as zmq;
    include!("api_surface/body.rs");
}

use zmqloop::green as gzmq;

#[test]
fn green_reports_the_same_libzmq() {
    assert_eq!(gzmq::version(), zmq::version());
    for capability in ["ipc", "pgm", "tipc", "norm", "curve", "gssapi", "draft"] {
        assert_eq!(gzmq::has(capability), zmq::has(capability), "{capability}");
    }
}

/// The non-blocking types are `zmq`'s own (re-exported), so values cross freely between code
/// written for `zmq` and for `green`.
#[test]
fn green_value_types_are_the_zmq_types() {
    let _: zmq::Message = gzmq::Message::from("shared");
    let _: zmq::Error = gzmq::Error::EAGAIN;
    let _: zmq::PollEvents = gzmq::POLLIN;
    let _: zmq::SocketType = gzmq::PAIR;
    let _: zmq::SocketEvent = gzmq::SocketEvent::ALL;
    let _: zmq::Mechanism = gzmq::Mechanism::ZMQ_NULL;
    let _: zmq::CurveKeyPair = gzmq::CurveKeyPair {
        public_key: [0; 32],
        secret_key: [0; 32],
    };
    let _: zmq::Result<()> = gzmq::Result::<()>::Ok(());
    assert_eq!(gzmq::DONTWAIT, zmq::DONTWAIT);
    assert_eq!(gzmq::SNDMORE, zmq::SNDMORE);
    assert_eq!(gzmq::Error::ETERM.message(), zmq::Error::ETERM.message());
}

/// Green and plain sockets live on separate contexts (each API has its own `Context`), but talk
/// to each other over tcp like any two zmq peers.
#[test]
fn green_and_plain_sockets_interoperate_over_tcp() {
    let plain_ctx = zmq::Context::new();
    let green_ctx = gzmq::Context::new();
    let server = plain_ctx.socket(zmq::REP).unwrap();
    server.set_linger(0).unwrap();
    server.set_rcvtimeo(5_000).unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = server.get_last_endpoint().unwrap().unwrap();

    let client = green_ctx.socket(gzmq::REQ).unwrap();
    client.set_linger(0).unwrap();
    client.set_rcvtimeo(5_000).unwrap();
    client.connect(&endpoint).unwrap();
    client.send_multipart(["a", "b"], 0).unwrap();
    assert_eq!(
        server.recv_multipart(0).unwrap(),
        vec![b"a".to_vec(), b"b".to_vec()]
    );
    server.send("ok", 0).unwrap();
    assert_eq!(client.recv_string(0).unwrap().unwrap(), "ok");
}
