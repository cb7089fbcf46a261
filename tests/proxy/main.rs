//! The green proxy family and devices, every test on ONE may worker (so a proxy that blocked the
//! OS thread would hang the test). One test binary, one file per subject:
//! - `forwarding`: `proxy` routes REQ and DEALER clients to REP workers through ROUTER/DEALER,
//!   keeps multipart envelopes intact, and ends with `Err(ETERM)` when the context is
//!   terminated; `proxy_with_capture` copies every frame, with its more flag, to the capture
//!   socket; HWM back-pressure through a proxy to a slow consumer loses nothing and bounds what
//!   is in flight;
//! - `steerable`: `proxy_steerable` obeys PAUSE (nothing forwarded, counters frozen), RESUME
//!   (everything held back arrives, in order), STATISTICS (8 native-endian u64 with exact
//!   values, over PAIR and over REP/REQ) and TERMINATE (`Ok`), counts and ignores an unknown
//!   command; `proxy_steerable_with_capture` does both;
//! - `devices`: queue, forwarder, streamer, custom types and options forward end to end with
//!   exact statistics and stop with `Ok`, a bad endpoint or option fails `start` without
//!   leaking sockets, `stop` after context termination reports ETERM, 100 devices run at once
//!   on the single worker, a device reports the endpoints it bound;
//! - `monitoring`: a queue device's monitor and `device::monitored_queue` tag traffic of both
//!   directions with their prefixes.
//!
//! This file holds the helpers they share; `tests/common` is shared with the other test
//! binaries. A regression test (`devices`) guards a fixed library bug: `DeviceHandle::stop` hung
//! once the device had taken a message its out side could not accept (no peer), because the
//! proxy parked in that send and stopped reading its control socket.

#[path = "../common/mod.rs"]
mod common;

mod devices;
mod forwarding;
mod monitoring;
mod steerable;

use may::coroutine::JoinHandle;
use zmqloop::green::device::{Device, DeviceHandle};

use crate::common::{inproc, zmq};

/// A message as its frames.
fn frames(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// The byte count the proxy statistics give a message: all its frames.
fn size(message: &[Vec<u8>]) -> u64 {
    message.iter().map(|f| f.len() as u64).sum()
}

/// For each `(name, bound, peer)`: a `bound` socket bound to a fresh inproc endpoint named
/// after `name`, and a `peer` socket connected to it. Returns the bound sockets (for the proxy)
/// and their peers (for the test), in the order given.
fn bound_with_peers<const N: usize>(
    ctx: &zmq::Context,
    sides: [(&str, zmq::SocketType, zmq::SocketType); N],
) -> ([zmq::Socket; N], [zmq::Socket; N]) {
    let endpoints = sides.map(|(name, _, _)| inproc(name));
    let bound = std::array::from_fn(|i| {
        let socket = ctx.socket(sides[i].1).unwrap();
        socket.bind(&endpoints[i]).unwrap();
        socket
    });
    let peers = std::array::from_fn(|i| {
        let socket = ctx.socket(sides[i].2).unwrap();
        socket.connect(&endpoints[i]).unwrap();
        socket
    });
    (bound, peers)
}

/// Sends `messages` on `from`, then checks that `to` receives exactly them, in order.
fn pass_through(from: &zmq::Socket, to: &zmq::Socket, messages: &[Vec<Vec<u8>>]) {
    for message in messages {
        from.send_multipart(message.clone(), 0).unwrap();
    }
    expect_messages(to, messages);
}

/// Checks that the next messages on `to` are `messages`, in order.
fn expect_messages(to: &zmq::Socket, messages: &[Vec<Vec<u8>>]) {
    for message in messages {
        assert_eq!(&to.recv_multipart(0).unwrap(), message);
    }
}

/// Checks that `collector` holds every frame of `messages`, in order, each with its more flag
/// (set on all but the last frame of a message), and nothing more.
fn expect_captured(collector: &zmq::Socket, messages: &[Vec<Vec<u8>>]) {
    let mut frame = zmq::Message::new();
    for (n, message) in messages.iter().enumerate() {
        for (i, part) in message.iter().enumerate() {
            collector.recv(&mut frame, 0).unwrap();
            assert_eq!(&frame[..], &part[..], "captured frame {i} of message {n}");
            assert_eq!(
                frame.get_more(),
                i + 1 < message.len(),
                "more flag of frame {i} of message {n}: {message:?}"
            );
        }
    }
    assert_eq!(
        collector.recv(&mut frame, zmq::DONTWAIT),
        Err(zmq::Error::EAGAIN),
        "extra captured frames"
    );
}

/// Starts `device` in `ctx`, bound on its in and out sides to fresh inproc endpoints named
/// `{name}-in` and `{name}-out`; returns its handle and those two endpoints.
fn start_bound(device: Device, ctx: &zmq::Context, name: &str) -> (DeviceHandle, String, String) {
    let (in_endpoint, out_endpoint) = (
        inproc(&format!("{name}-in")),
        inproc(&format!("{name}-out")),
    );
    let handle = device
        .bind_in(&in_endpoint)
        .bind_out(&out_endpoint)
        .start(ctx)
        .unwrap();
    (handle, in_endpoint, out_endpoint)
}

/// A REP worker that answers every request `body` with `reply:body` until the context is
/// terminated, then closes its socket and returns how many requests it served.
fn echo_worker(rep: zmq::Socket) -> JoinHandle<usize> {
    zmq::spawn(move || {
        let mut served = 0;
        loop {
            match rep.recv_bytes(0) {
                Ok(body) => {
                    rep.send([&b"reply:"[..], &body].concat(), 0).unwrap();
                    served += 1;
                }
                Err(zmq::Error::ETERM) => break,
                Err(err) => panic!("worker: {err}"),
            }
        }
        drop(rep); // the context termination waits for it
        served
    })
}
