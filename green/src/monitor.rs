//! Socket monitor events, typed: pyzmq's `zmq.utils.monitor` for green sockets.
//!
//! libzmq reports what happens to a socket's connections (connected, accepted, disconnected,
//! handshake failed...) as two-frame messages on a monitor socket. Get one with
//! [`Socket::get_monitor_socket`], read events with [`recv_monitor_message`]; inside a may
//! coroutine or a hub task the read parks only the caller, like any green receive.
//!
//! ```
//! use zmqloop_green as zmq;
//! use zmq::monitor::recv_monitor_message;
//!
//! let ctx = zmq::Context::new();
//! let server = ctx.socket(zmq::ROUTER).unwrap();
//! let events = server.get_monitor_socket(zmq::SocketEvent::ALL as i32).unwrap();
//! server.bind("tcp://127.0.0.1:*").unwrap();
//! let endpoint = server.get_last_endpoint().unwrap().unwrap();
//!
//! let event = recv_monitor_message(&events, 0).unwrap().unwrap();
//! assert_eq!(event.event, zmq::SocketEvent::LISTENING);
//! assert_eq!(event.endpoint, endpoint);
//! println!("{event}"); // LISTENING tcp://127.0.0.1:40507 (fd 12)
//! ```
//!
//! The wire format (libzmq 4.3, event version 1): frame 1 is 6 bytes, the event number
//! (`u16`) then its value (`u32`), both in the machine's byte order; frame 2 is the endpoint.
//! What the value means depends on the event: see [`EventValue`].

use std::fmt;
use std::os::unix::io::RawFd;
use std::time::Duration;

use zmq::{Result, SocketEvent};

use crate::socket::Socket;

/// One event of a monitored socket, as libzmq reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorEvent {
    /// What happened. Never [`SocketEvent::ALL`], which is a mask, not an event.
    pub event: SocketEvent,
    /// The number the event carries: a file descriptor, an errno, an interval or an error
    /// code, depending on `event` ([`MonitorEvent::value_kind`] names it).
    pub value: u32,
    /// The endpoint the event is about (the address bound or connected to; empty for
    /// `MONITOR_STOPPED`).
    pub endpoint: String,
}

/// What a [`MonitorEvent`]'s `value` means, per event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventValue {
    /// The file descriptor of the connection or listener: `CONNECTED`, `LISTENING`,
    /// `ACCEPTED`, `CLOSED`, `DISCONNECTED`.
    Fd(RawFd),
    /// An errno: `CONNECT_DELAYED` (usually `EINPROGRESS`), `BIND_FAILED`, `ACCEPT_FAILED`,
    /// `CLOSE_FAILED`, `HANDSHAKE_FAILED_NO_DETAIL`.
    Errno(i32),
    /// `CONNECT_RETRIED`: how long until the next connection attempt.
    RetryIn(Duration),
    /// `HANDSHAKE_FAILED_PROTOCOL`: one of libzmq's `ZMQ_PROTOCOL_ERROR_*` codes (see
    /// [`protocol_error_name`]).
    ProtocolError(u32),
    /// `HANDSHAKE_FAILED_AUTH`: the ZAP handler's status code (300, 400 or 500).
    ZapStatus(u32),
    /// No value (always 0): `MONITOR_STOPPED`, `HANDSHAKE_SUCCEEDED`.
    None,
}

impl MonitorEvent {
    /// Parses the two frames of a libzmq monitor message. A message that is not one (wrong
    /// frame count or size, an unknown event number, an endpoint that is not UTF-8) comes back
    /// whole inside the error.
    ///
    /// Use this on frames received another way, for instance by a `ZmqStream`'s `on_recv`:
    ///
    /// ```
    /// use zmqloop_green::monitor::MonitorEvent;
    /// use zmqloop_green::SocketEvent;
    ///
    /// let mut head = (SocketEvent::CONNECT_RETRIED as u16).to_ne_bytes().to_vec();
    /// head.extend_from_slice(&200u32.to_ne_bytes());
    /// let frames = vec![head, b"tcp://127.0.0.1:5555".to_vec()];
    /// let event = MonitorEvent::from_frames(frames).unwrap();
    /// assert_eq!(event.to_string(), "CONNECT_RETRIED tcp://127.0.0.1:5555 (next attempt in 200 ms)");
    ///
    /// assert!(MonitorEvent::from_frames(vec![b"hello".to_vec()]).is_err());
    /// ```
    pub fn from_frames(frames: Vec<Vec<u8>>) -> std::result::Result<MonitorEvent, MalformedEvent> {
        match parse(&frames) {
            Ok(event) => Ok(event),
            Err(reason) => Err(MalformedEvent { frames, reason }),
        }
    }

    /// What this event's `value` is.
    ///
    /// ```
    /// use zmqloop_green::monitor::{EventValue, MonitorEvent};
    /// use zmqloop_green::SocketEvent;
    ///
    /// let event = MonitorEvent {
    ///     event: SocketEvent::HANDSHAKE_FAILED_AUTH,
    ///     value: 400,
    ///     endpoint: "tcp://127.0.0.1:5555".into(),
    /// };
    /// assert_eq!(event.value_kind(), EventValue::ZapStatus(400));
    /// ```
    pub fn value_kind(&self) -> EventValue {
        use SocketEvent::*;
        let value = self.value;
        match self.event {
            CONNECTED | LISTENING | ACCEPTED | CLOSED | DISCONNECTED => {
                EventValue::Fd(value as RawFd)
            }
            CONNECT_DELAYED
            | BIND_FAILED
            | ACCEPT_FAILED
            | CLOSE_FAILED
            | HANDSHAKE_FAILED_NO_DETAIL => EventValue::Errno(value as i32),
            CONNECT_RETRIED => EventValue::RetryIn(Duration::from_millis(u64::from(value))),
            HANDSHAKE_FAILED_PROTOCOL => EventValue::ProtocolError(value),
            HANDSHAKE_FAILED_AUTH => EventValue::ZapStatus(value),
            MONITOR_STOPPED | HANDSHAKE_SUCCEEDED | ALL => EventValue::None,
        }
    }
}

impl fmt::Display for MonitorEvent {
    /// `EVENT endpoint (value)`, e.g. `DISCONNECTED tcp://127.0.0.1:5555 (fd 12)` or
    /// `HANDSHAKE_FAILED_PROTOCOL tcp://127.0.0.1:5555 (ZMTP_MECHANISM_MISMATCH, 0x11000002)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.event)?;
        if !self.endpoint.is_empty() {
            write!(f, " {}", self.endpoint)?;
        }
        match self.value_kind() {
            EventValue::Fd(fd) => write!(f, " (fd {fd})"),
            EventValue::Errno(errno) => write!(f, " (errno {errno}: {})", errno_text(errno)),
            EventValue::RetryIn(delay) => {
                write!(f, " (next attempt in {} ms)", delay.as_millis())
            }
            EventValue::ProtocolError(code) => match protocol_error_name(code) {
                Some(name) => write!(f, " ({name}, {code:#x})"),
                None => write!(f, " (protocol error {code:#x})"),
            },
            EventValue::ZapStatus(status) => write!(f, " (ZAP status {status})"),
            EventValue::None => Ok(()),
        }
    }
}

/// A message received on a monitor socket that is not a libzmq monitor event. It keeps the
/// message's frames, so nothing received is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedEvent {
    /// The frames of the message, as received.
    pub frames: Vec<Vec<u8>>,
    /// What is wrong with them.
    pub reason: &'static str,
}

impl fmt::Display for MalformedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a socket monitor event ({}): {} frame(s) of {:?} bytes",
            self.reason,
            self.frames.len(),
            self.frames.iter().map(Vec::len).collect::<Vec<_>>()
        )
    }
}

impl std::error::Error for MalformedEvent {}

/// Receives one event from a monitor socket (pyzmq's `recv_monitor_message`); inside a
/// coroutine or hub task it parks until one arrives.
///
/// Like `Socket::recv_string`, the outer `Result` is the receive (`EAGAIN` with `DONTWAIT` or
/// after `RCVTIMEO`, `ETERM`...) and the inner one the parse: `Err` holds a message that is
/// not a monitor event, whole.
///
/// On a monitor socket from [`Socket::get_monitor_socket`], the end of the events is an error
/// too, so that no reader waits for events that cannot come: once monitoring has stopped (the
/// monitored socket closed, [`Socket::disable_monitor`], a newer monitor replacing this one),
/// a reader that asked for `MONITOR_STOPPED` receives it, and after it every call fails at
/// once with `ENOTCONN`; a reader that did not ask gets `ENOTCONN` in its place.
///
/// ```
/// use zmqloop_green as zmq;
/// use zmq::monitor::recv_monitor_message;
///
/// let ctx = zmq::Context::new();
/// let client = ctx.socket(zmq::DEALER).unwrap();
/// let events = client.get_monitor_socket(zmq::SocketEvent::ALL as i32).unwrap();
/// // Nothing happened yet: a non-blocking read says EAGAIN.
/// assert_eq!(recv_monitor_message(&events, zmq::DONTWAIT), Err(zmq::Error::EAGAIN));
/// ```
pub fn recv_monitor_message(
    socket: &Socket,
    flags: i32,
) -> Result<std::result::Result<MonitorEvent, MalformedEvent>> {
    socket.check_monitor_events_open()?;
    let frames = socket.recv_multipart(flags)?;
    read_monitor_message(socket, frames)
}

/// What [`recv_monitor_message`] makes of `frames`, a message received on the monitor socket
/// `socket` another way (a `ZmqStream`'s `on_recv`): the event or the malformed message, or
/// `ENOTCONN` for the end of the events that stands in for a `MONITOR_STOPPED` the reader
/// did not ask for.
///
/// ```
/// use zmqloop_green as zmq;
/// use zmq::monitor::read_monitor_message;
///
/// let ctx = zmq::Context::new();
/// let socket = ctx.socket(zmq::DEALER).unwrap();
/// let events = socket.get_monitor_socket(zmq::SocketEvent::CONNECTED as i32).unwrap();
/// socket.disable_monitor().unwrap();
/// // libzmq's last word, which this reader did not ask for, is the end of its events.
/// let frames = events.recv_multipart(0).unwrap();
/// assert_eq!(read_monitor_message(&events, frames), Err(zmq::Error::ENOTCONN));
/// ```
pub fn read_monitor_message(
    socket: &Socket,
    frames: Vec<Vec<u8>>,
) -> Result<std::result::Result<MonitorEvent, MalformedEvent>> {
    let message = MonitorEvent::from_frames(frames);
    if matches!(&message, Ok(event) if event.event == SocketEvent::MONITOR_STOPPED) {
        socket.monitor_stopped_received()?;
    }
    Ok(message)
}

/// The name of a `ZMQ_PROTOCOL_ERROR_*` code (the value of `HANDSHAKE_FAILED_PROTOCOL`),
/// without its `ZMQ_PROTOCOL_ERROR_` prefix.
///
/// ```
/// assert_eq!(
///     zmqloop_green::monitor::protocol_error_name(0x1100_0002),
///     Some("ZMTP_MECHANISM_MISMATCH")
/// );
/// ```
pub fn protocol_error_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x1000_0000 => "ZMTP_UNSPECIFIED",
        0x1000_0001 => "ZMTP_UNEXPECTED_COMMAND",
        0x1000_0002 => "ZMTP_INVALID_SEQUENCE",
        0x1000_0003 => "ZMTP_KEY_EXCHANGE",
        0x1000_0011 => "ZMTP_MALFORMED_COMMAND_UNSPECIFIED",
        0x1000_0012 => "ZMTP_MALFORMED_COMMAND_MESSAGE",
        0x1000_0013 => "ZMTP_MALFORMED_COMMAND_HELLO",
        0x1000_0014 => "ZMTP_MALFORMED_COMMAND_INITIATE",
        0x1000_0015 => "ZMTP_MALFORMED_COMMAND_ERROR",
        0x1000_0016 => "ZMTP_MALFORMED_COMMAND_READY",
        0x1000_0017 => "ZMTP_MALFORMED_COMMAND_WELCOME",
        0x1000_0018 => "ZMTP_INVALID_METADATA",
        0x1100_0001 => "ZMTP_CRYPTOGRAPHIC",
        0x1100_0002 => "ZMTP_MECHANISM_MISMATCH",
        0x2000_0000 => "ZAP_UNSPECIFIED",
        0x2000_0001 => "ZAP_MALFORMED_REPLY",
        0x2000_0002 => "ZAP_BAD_REQUEST_ID",
        0x2000_0003 => "ZAP_BAD_VERSION",
        0x2000_0004 => "ZAP_INVALID_STATUS_CODE",
        0x2000_0005 => "ZAP_INVALID_METADATA",
        0x3000_0000 => "WS_UNSPECIFIED",
        _ => return None,
    })
}

/// The OS's description of `errno` ("Connection refused"), without std's "(os error N)".
fn errno_text(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    let suffix = format!(" (os error {errno})");
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// The event of a monitor message's frames, or why they are not one.
fn parse(frames: &[Vec<u8>]) -> std::result::Result<MonitorEvent, &'static str> {
    let [head, endpoint] = frames else {
        return Err("a monitor event has 2 frames");
    };
    let head: &[u8; 6] = head
        .as_slice()
        .try_into()
        .map_err(|_| "the first frame of a monitor event has 6 bytes")?;
    let number = u16::from_ne_bytes([head[0], head[1]]);
    let value = u32::from_ne_bytes([head[2], head[3], head[4], head[5]]);
    let event = event_from_number(number).ok_or("unknown event number")?;
    let endpoint = String::from_utf8(endpoint.clone()).map_err(|_| "the endpoint is not UTF-8")?;
    Ok(MonitorEvent {
        event,
        value,
        endpoint,
    })
}

/// The single event numbered `number` (`SocketEvent::from_raw` panics on unknown numbers and
/// accepts the `ALL` mask).
fn event_from_number(number: u16) -> Option<SocketEvent> {
    let single = number.is_power_of_two() && number <= SocketEvent::HANDSHAKE_FAILED_AUTH as u16;
    single.then(|| SocketEvent::from_raw(number))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(number: u16, value: u32, endpoint: &str) -> Vec<Vec<u8>> {
        let mut head = number.to_ne_bytes().to_vec();
        head.extend_from_slice(&value.to_ne_bytes());
        vec![head, endpoint.as_bytes().to_vec()]
    }

    fn shown(event: SocketEvent, value: u32) -> String {
        MonitorEvent::from_frames(frames(event as u16, value, "tcp://h:1"))
            .unwrap()
            .to_string()
    }

    #[test]
    fn every_kind_of_value_reads_as_what_it_is() {
        assert_eq!(
            shown(SocketEvent::ACCEPTED, 12),
            "ACCEPTED tcp://h:1 (fd 12)"
        );
        let refused = shown(
            SocketEvent::HANDSHAKE_FAILED_NO_DETAIL,
            libc::ECONNREFUSED as u32,
        );
        assert!(
            refused.starts_with(&format!(
                "HANDSHAKE_FAILED_NO_DETAIL tcp://h:1 (errno {}: ",
                libc::ECONNREFUSED
            )) && !refused.contains("os error"),
            "{refused}"
        );
        assert_eq!(
            shown(SocketEvent::CONNECT_RETRIED, 250),
            "CONNECT_RETRIED tcp://h:1 (next attempt in 250 ms)"
        );
        assert_eq!(
            shown(SocketEvent::HANDSHAKE_FAILED_PROTOCOL, 0x1100_0001),
            "HANDSHAKE_FAILED_PROTOCOL tcp://h:1 (ZMTP_CRYPTOGRAPHIC, 0x11000001)"
        );
        assert_eq!(
            shown(SocketEvent::HANDSHAKE_FAILED_PROTOCOL, 0x4000_0000),
            "HANDSHAKE_FAILED_PROTOCOL tcp://h:1 (protocol error 0x40000000)"
        );
        assert_eq!(
            shown(SocketEvent::HANDSHAKE_FAILED_AUTH, 400),
            "HANDSHAKE_FAILED_AUTH tcp://h:1 (ZAP status 400)"
        );
        assert_eq!(
            shown(SocketEvent::HANDSHAKE_SUCCEEDED, 0),
            "HANDSHAKE_SUCCEEDED tcp://h:1"
        );
        let stopped = MonitorEvent::from_frames(frames(0x400, 0, "")).unwrap();
        assert_eq!(stopped.to_string(), "MONITOR_STOPPED");
    }

    #[test]
    fn every_single_event_number_parses_and_nothing_else_does() {
        for bit in 0..15 {
            let event = MonitorEvent::from_frames(frames(1 << bit, 0, "e")).unwrap();
            assert_eq!(event.event as u16, 1 << bit);
        }
        for number in [0, 3, 0x8000, 0xFFFF] {
            let err = MonitorEvent::from_frames(frames(number, 0, "e")).unwrap_err();
            assert_eq!(err.reason, "unknown event number", "{number:#x}");
        }
    }

    #[test]
    fn a_malformed_message_keeps_its_frames_and_says_why() {
        let cases: [(Vec<Vec<u8>>, &str); 4] = [
            (vec![vec![1, 0, 0, 0, 0, 0]], "a monitor event has 2 frames"),
            (
                vec![vec![1, 0, 0, 0, 0], b"e".to_vec()],
                "the first frame of a monitor event has 6 bytes",
            ),
            (
                vec![vec![1, 0, 0, 0, 0, 0], vec![0xff, 0xfe]],
                "the endpoint is not UTF-8",
            ),
            (
                vec![vec![1, 0, 0, 0, 0, 0], b"e".to_vec(), b"extra".to_vec()],
                "a monitor event has 2 frames",
            ),
        ];
        for (frames, reason) in cases {
            let err = MonitorEvent::from_frames(frames.clone()).unwrap_err();
            assert_eq!((err.frames, err.reason), (frames, reason));
        }
    }
}
