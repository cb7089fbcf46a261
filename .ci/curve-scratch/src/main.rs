//! A user's project, built the way zmqloop's README ("Security") says: run by `.ci/curve_scratch`
//! against each build of libzmq it makes. `curve-scratch none` checks that a libzmq without
//! CURVE refuses CURVE with a clear error; `curve-scratch tweetnacl|libsodium` checks a CURVE
//! handshake through the authenticator with the named crypto library.

use std::collections::HashSet;

use zmqloop::auth::{Authenticator, CurveAuth};
use zmqloop::green as zmq;

fn main() {
    let expected = std::env::args().nth(1).expect("usage: curve-scratch none|tweetnacl|libsodium");
    if expected == "none" {
        refused_without_curve();
    } else {
        let library = zmqloop::auth::require_curve().expect("CURVE should be built in");
        assert_eq!(library.to_string(), expected);
        curve_handshake();
        println!("curve-scratch: CURVE works, backed by {library}");
    }
}

fn refused_without_curve() {
    assert_eq!(zmq::has("curve"), Some(false));
    let err = zmqloop::auth::require_curve().unwrap_err();
    assert!(err.to_string().contains("CXXFLAGS"), "the error should name the fix: {err}");
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REP).unwrap();
    assert_eq!(socket.set_curve_server(true), Err(zmq::Error::ENOTSUP));
    println!("curve-scratch: without CURVE, asking for it fails: {err}");
}

fn curve_handshake() {
    let ctx = zmq::Context::new();
    let server_keys = zmq::CurveKeyPair::new().unwrap();
    let client_keys = zmq::CurveKeyPair::new().unwrap();
    let mut auth = Authenticator::new(&ctx);
    let trusted = HashSet::from([client_keys.public_key]);
    auth.configure_curve("*", CurveAuth::Keys(trusted)).unwrap();
    auth.start().unwrap();

    let server = ctx.socket(zmq::REP).unwrap();
    server.set_curve_server(true).unwrap();
    server.set_curve_secretkey(&server_keys.secret_key).unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = server.get_last_endpoint().unwrap().unwrap();
    let client = ctx.socket(zmq::REQ).unwrap();
    client.set_curve_serverkey(&server_keys.public_key).unwrap();
    client.set_curve_publickey(&client_keys.public_key).unwrap();
    client.set_curve_secretkey(&client_keys.secret_key).unwrap();
    client.connect(&endpoint).unwrap();
    client.send("over CURVE", 0).unwrap();
    assert_eq!(server.recv_string(0).unwrap().unwrap(), "over CURVE");
    server.send("ok", 0).unwrap();
    assert_eq!(client.recv_string(0).unwrap().unwrap(), "ok");
    assert_eq!(auth.statistics().accepted, 1);
    auth.stop().unwrap();
}
