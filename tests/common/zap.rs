//! Talking ZAP (ZeroMQ RFC 27) to an authenticator directly, as libzmq does for each
//! handshake: a REQ socket on the context's ZAP endpoint, and the frames of a request.

use super::zmq;

/// The ZAP endpoint of every context.
pub const ENDPOINT: &str = "inproc://zeromq.zap.01";

/// A REQ socket connected to `ctx`'s ZAP endpoint that waits at most `timeout_ms` for an
/// answer (then `recv` fails with EAGAIN: an unanswered request is a failure, not a hang).
pub fn requester(ctx: &zmq::Context, timeout_ms: i32) -> zmq::Socket {
    let socket = ctx.socket(zmq::REQ).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_rcvtimeo(timeout_ms).unwrap();
    socket.connect(ENDPOINT).unwrap();
    socket
}

/// The frames of a NULL request from `address` in `domain`, with request id `id`.
pub fn null_request(id: &str, domain: &str, address: &str) -> Vec<Vec<u8>> {
    request(id, domain, address, "NULL", &[])
}

/// The frames of a request with request id `id` from `address` in `domain`, by `mechanism`
/// with `credentials` (PLAIN: user name and password).
pub fn request(
    id: &str,
    domain: &str,
    address: &str,
    mechanism: &str,
    credentials: &[&[u8]],
) -> Vec<Vec<u8>> {
    let head = [id, domain, address, "", mechanism].map(str::as_bytes);
    let frames = [&[b"1.0".as_slice()][..], &head, credentials].concat();
    frames.into_iter().map(<[u8]>::to_vec).collect()
}

/// Sends `request` on `requester` and returns the reply's status code (`"200"`, `"400"`...),
/// or the receive's error (EAGAIN: no answer in time).
pub fn status_of(requester: &zmq::Socket, request: Vec<Vec<u8>>) -> zmq::Result<String> {
    requester.send_multipart(request, 0)?;
    let reply = requester.recv_multipart(0)?;
    Ok(String::from_utf8_lossy(&reply[2]).into_owned())
}
