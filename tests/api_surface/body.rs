// The whole public API of `zmq` 0.10, written against a module alias `zmq` and compiled twice by
// `tests/api_surface.rs`: once with the real `zmq` crate, once with `zmqloop::green as zmq`. If
// this fragment compiles for `green`, a program written for `zmq` compiles unchanged against it.
//
// Function-pointer coercions (`let _: fn(..) -> .. = zmq::Socket::method;`) pin exact argument
// and return types; generic methods are called with each argument type a user may pass;
// exhaustive `match`es without wildcards pin the variants of every enum.
//
// (Plain `//` comments: `include!` rejects inner doc comments `//!` in a fragment, E0753.)

use std::os::raw::c_void;
use std::os::unix::io::{AsRawFd, RawFd};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Static properties: auto traits and derived traits.
// ---------------------------------------------------------------------------------------------

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}
fn assert_clone<T: Clone>() {}
fn assert_copy<T: Copy>() {}
fn assert_default<T: Default>() {}
fn assert_eq_trait<T: Eq + PartialEq>() {}
fn assert_debug<T: std::fmt::Debug>() {}
fn assert_display<T: std::fmt::Display>() {}
fn assert_error<T: std::error::Error + Send + Sync + 'static>() {}
fn assert_as_raw_fd<T: AsRawFd>() {}
fn assert_unpin<T: Unpin>() {}
fn assert_unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}

/// `static_assertions::assert_not_impl_any!(T: Sync)`, by hand: if `T: Sync`, both impls below
/// apply to `T`, the `_` in `<T as AmbiguousIfSync<_>>` cannot be inferred, and compilation
/// fails. If `T: !Sync`, only the `()` impl applies and the path resolves.
trait AmbiguousIfSync<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
#[allow(dead_code)] // only named as a type parameter
struct IsSync;
impl<T: ?Sized + Sync> AmbiguousIfSync<IsSync> for T {}

// A socket is owned by one thread at a time: `Send`, never `Sync`.
const _: fn() = || {
    let _ = <zmq::Socket as AmbiguousIfSync<_>>::some_item;
};

// The three poll flags are `const`s (usable in const contexts), not just statics.
const _: [zmq::PollEvents; 3] = [zmq::POLLIN, zmq::POLLOUT, zmq::POLLERR];

#[test]
fn static_properties() {
    assert_send::<zmq::Socket>();
    assert_as_raw_fd::<zmq::Socket>();
    assert_unpin::<zmq::Socket>();
    assert_unwind_safe::<zmq::Socket>();
    assert_unwind_safe::<zmq::PollItem<'static>>();
    assert_unpin::<zmq::PollItem<'static>>();

    assert_send::<zmq::Context>();
    assert_unwind_safe::<zmq::Context>();
    assert_unpin::<zmq::Context>();
    assert_sync::<zmq::Context>();
    assert_clone::<zmq::Context>();
    assert_default::<zmq::Context>();

    assert_send::<zmq::Message>();
    assert_eq_trait::<zmq::Message>();
    assert_debug::<zmq::Message>();

    assert_error::<zmq::Error>();
    assert_copy::<zmq::Error>();
    assert_eq_trait::<zmq::Error>();
    assert_debug::<zmq::Error>();
    assert_display::<zmq::Error>();

    assert_error::<zmq::EncodeError>();
    assert_error::<zmq::DecodeError>();
    assert_debug::<zmq::CurveKeyPair>();

    assert_copy::<zmq::SocketType>();
    assert_eq_trait::<zmq::SocketType>();
    assert_debug::<zmq::SocketType>();
    assert_copy::<zmq::SocketEvent>();
    assert_eq_trait::<zmq::SocketEvent>();
    assert_debug::<zmq::SocketEvent>();
    assert_copy::<zmq::Mechanism>();
    assert_eq_trait::<zmq::Mechanism>();
    assert_debug::<zmq::Mechanism>();
    assert_copy::<zmq::PollEvents>();
    assert_eq_trait::<zmq::PollEvents>();
    assert_debug::<zmq::PollEvents>();

    // The compile-only surface below is referenced, so it is type-checked and not dead code.
    let _: fn() = surface;
}

// ---------------------------------------------------------------------------------------------
// Exhaustive matches: no variant missing, none added.
// ---------------------------------------------------------------------------------------------

fn socket_type_name(t: zmq::SocketType) -> &'static str {
    match t {
        zmq::SocketType::PAIR => "PAIR",
        zmq::SocketType::PUB => "PUB",
        zmq::SocketType::SUB => "SUB",
        zmq::SocketType::REQ => "REQ",
        zmq::SocketType::REP => "REP",
        zmq::SocketType::DEALER => "DEALER",
        zmq::SocketType::ROUTER => "ROUTER",
        zmq::SocketType::PULL => "PULL",
        zmq::SocketType::PUSH => "PUSH",
        zmq::SocketType::XPUB => "XPUB",
        zmq::SocketType::XSUB => "XSUB",
        zmq::SocketType::STREAM => "STREAM",
    }
}

/// Every socket type, through the crate-root aliases (`pub use SocketType::*`).
const ALL_SOCKET_TYPES: [zmq::SocketType; 12] = [
    zmq::PAIR,
    zmq::PUB,
    zmq::SUB,
    zmq::REQ,
    zmq::REP,
    zmq::DEALER,
    zmq::ROUTER,
    zmq::PULL,
    zmq::PUSH,
    zmq::XPUB,
    zmq::XSUB,
    zmq::STREAM,
];

fn socket_event_name(e: zmq::SocketEvent) -> &'static str {
    match e {
        zmq::SocketEvent::CONNECTED => "CONNECTED",
        zmq::SocketEvent::CONNECT_DELAYED => "CONNECT_DELAYED",
        zmq::SocketEvent::CONNECT_RETRIED => "CONNECT_RETRIED",
        zmq::SocketEvent::LISTENING => "LISTENING",
        zmq::SocketEvent::BIND_FAILED => "BIND_FAILED",
        zmq::SocketEvent::ACCEPTED => "ACCEPTED",
        zmq::SocketEvent::ACCEPT_FAILED => "ACCEPT_FAILED",
        zmq::SocketEvent::CLOSED => "CLOSED",
        zmq::SocketEvent::CLOSE_FAILED => "CLOSE_FAILED",
        zmq::SocketEvent::DISCONNECTED => "DISCONNECTED",
        zmq::SocketEvent::MONITOR_STOPPED => "MONITOR_STOPPED",
        zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL => "HANDSHAKE_FAILED_NO_DETAIL",
        zmq::SocketEvent::HANDSHAKE_SUCCEEDED => "HANDSHAKE_SUCCEEDED",
        zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL => "HANDSHAKE_FAILED_PROTOCOL",
        zmq::SocketEvent::HANDSHAKE_FAILED_AUTH => "HANDSHAKE_FAILED_AUTH",
        zmq::SocketEvent::ALL => "ALL",
    }
}

const ALL_SOCKET_EVENTS: [zmq::SocketEvent; 16] = [
    zmq::SocketEvent::CONNECTED,
    zmq::SocketEvent::CONNECT_DELAYED,
    zmq::SocketEvent::CONNECT_RETRIED,
    zmq::SocketEvent::LISTENING,
    zmq::SocketEvent::BIND_FAILED,
    zmq::SocketEvent::ACCEPTED,
    zmq::SocketEvent::ACCEPT_FAILED,
    zmq::SocketEvent::CLOSED,
    zmq::SocketEvent::CLOSE_FAILED,
    zmq::SocketEvent::DISCONNECTED,
    zmq::SocketEvent::MONITOR_STOPPED,
    zmq::SocketEvent::HANDSHAKE_FAILED_NO_DETAIL,
    zmq::SocketEvent::HANDSHAKE_SUCCEEDED,
    zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL,
    zmq::SocketEvent::HANDSHAKE_FAILED_AUTH,
    zmq::SocketEvent::ALL,
];

fn mechanism_name(m: zmq::Mechanism) -> &'static str {
    match m {
        zmq::Mechanism::ZMQ_NULL => "NULL",
        zmq::Mechanism::ZMQ_PLAIN => "PLAIN",
        zmq::Mechanism::ZMQ_CURVE => "CURVE",
        zmq::Mechanism::ZMQ_GSSAPI => "GSSAPI",
    }
}

fn error_name(e: zmq::Error) -> &'static str {
    match e {
        zmq::Error::EACCES => "EACCES",
        zmq::Error::EADDRINUSE => "EADDRINUSE",
        zmq::Error::EAGAIN => "EAGAIN",
        zmq::Error::EBUSY => "EBUSY",
        zmq::Error::ECONNREFUSED => "ECONNREFUSED",
        zmq::Error::EFAULT => "EFAULT",
        zmq::Error::EINTR => "EINTR",
        zmq::Error::EHOSTUNREACH => "EHOSTUNREACH",
        zmq::Error::EINPROGRESS => "EINPROGRESS",
        zmq::Error::EINVAL => "EINVAL",
        zmq::Error::EMFILE => "EMFILE",
        zmq::Error::EMSGSIZE => "EMSGSIZE",
        zmq::Error::ENAMETOOLONG => "ENAMETOOLONG",
        zmq::Error::ENODEV => "ENODEV",
        zmq::Error::ENOENT => "ENOENT",
        zmq::Error::ENOMEM => "ENOMEM",
        zmq::Error::ENOTCONN => "ENOTCONN",
        zmq::Error::ENOTSOCK => "ENOTSOCK",
        zmq::Error::EPROTO => "EPROTO",
        zmq::Error::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        zmq::Error::ENOTSUP => "ENOTSUP",
        zmq::Error::ENOBUFS => "ENOBUFS",
        zmq::Error::ENETDOWN => "ENETDOWN",
        zmq::Error::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        zmq::Error::EFSM => "EFSM",
        zmq::Error::ENOCOMPATPROTO => "ENOCOMPATPROTO",
        zmq::Error::ETERM => "ETERM",
        zmq::Error::EMTHREAD => "EMTHREAD",
    }
}

const ALL_ERRORS: [zmq::Error; 28] = [
    zmq::Error::EACCES,
    zmq::Error::EADDRINUSE,
    zmq::Error::EAGAIN,
    zmq::Error::EBUSY,
    zmq::Error::ECONNREFUSED,
    zmq::Error::EFAULT,
    zmq::Error::EINTR,
    zmq::Error::EHOSTUNREACH,
    zmq::Error::EINPROGRESS,
    zmq::Error::EINVAL,
    zmq::Error::EMFILE,
    zmq::Error::EMSGSIZE,
    zmq::Error::ENAMETOOLONG,
    zmq::Error::ENODEV,
    zmq::Error::ENOENT,
    zmq::Error::ENOMEM,
    zmq::Error::ENOTCONN,
    zmq::Error::ENOTSOCK,
    zmq::Error::EPROTO,
    zmq::Error::EPROTONOSUPPORT,
    zmq::Error::ENOTSUP,
    zmq::Error::ENOBUFS,
    zmq::Error::ENETDOWN,
    zmq::Error::EADDRNOTAVAIL,
    zmq::Error::EFSM,
    zmq::Error::ENOCOMPATPROTO,
    zmq::Error::ETERM,
    zmq::Error::EMTHREAD,
];

fn encode_error_name(e: &zmq::EncodeError) -> &'static str {
    match e {
        zmq::EncodeError::BadLength => "BadLength",
        zmq::EncodeError::FromUtf8Error(_) => "FromUtf8Error",
    }
}

fn decode_error_name(e: &zmq::DecodeError) -> &'static str {
    match e {
        zmq::DecodeError::BadLength => "BadLength",
        zmq::DecodeError::NulError(_) => "NulError",
    }
}

// ---------------------------------------------------------------------------------------------
// `Sendable`: as a bound, called through the trait, and implemented by a user type.
// ---------------------------------------------------------------------------------------------

fn send_sendable<T: zmq::Sendable>(socket: &zmq::Socket, data: T) -> zmq::Result<()> {
    socket.send(data, 0)
}

fn send_through_trait<T: zmq::Sendable>(socket: &zmq::Socket, data: T) -> zmq::Result<()> {
    zmq::Sendable::send(data, socket, 0)
}

/// Every `Into<Message>` is `Sendable` (the blanket impl).
fn send_into_message<T: Into<zmq::Message>>(socket: &zmq::Socket, data: T) -> zmq::Result<()> {
    socket.send(data, 0)
}

/// A user type with its own `Sendable` impl, as `zmq`'s docs invite.
struct OneByte(u8);

impl zmq::Sendable for OneByte {
    fn send(self, socket: &zmq::Socket, flags: i32) -> zmq::Result<()> {
        socket.send(vec![self.0], flags)
    }
}

/// A user type made sendable through `From<_> for Message` (the blanket `Sendable` impl).
struct Wrapped(Vec<u8>);

impl From<Wrapped> for zmq::Message {
    fn from(wrapped: Wrapped) -> Self {
        wrapped.0.into()
    }
}

/// A function returning `std::io::Result` may `?` a `zmq::Result` (`From<Error> for io::Error`).
fn io_question_mark(socket: &zmq::Socket) -> std::io::Result<i32> {
    Ok(socket.get_sndhwm()?)
}

/// `zmq::Error` boxes into `Box<dyn Error + Send + Sync>` with `?`.
fn boxed_question_mark(
    socket: &zmq::Socket,
) -> std::result::Result<i32, Box<dyn std::error::Error + Send + Sync>> {
    Ok(socket.get_rcvhwm()?)
}

/// `zmq::Result<T>` is `std::result::Result<T, zmq::Error>`.
fn result_alias(r: zmq::Result<u8>) -> std::result::Result<u8, zmq::Error> {
    r
}

// ---------------------------------------------------------------------------------------------
// The compile-only surface: every public item, never run (it would destroy contexts, leak raw
// sockets and block on receives).
// ---------------------------------------------------------------------------------------------

type Getter<T> = fn(&zmq::Socket) -> zmq::Result<T>;
type Setter<T> = fn(&zmq::Socket, T) -> zmq::Result<()>;
type StrResult = std::result::Result<String, Vec<u8>>;

// `needless_borrows_for_generic_args`: the borrows are the point (`From<&T> for Message`).
#[allow(deprecated, clippy::needless_borrows_for_generic_args)]
fn surface() {
    // --- Free functions ---------------------------------------------------------------------
    let _: fn() -> (i32, i32, i32) = zmq::version;
    let _: fn(&str) -> Option<bool> = zmq::has;
    let _: fn(&[u8]) -> std::result::Result<String, zmq::EncodeError> = zmq::z85_encode;
    let _: fn(&str) -> std::result::Result<Vec<u8>, zmq::DecodeError> = zmq::z85_decode;
    let _: (i32, i32, i32) = zmq::version();
    let _: Option<bool> = zmq::has("curve");
    let _: std::result::Result<String, zmq::EncodeError> = zmq::z85_encode(&[0u8; 32]);
    let _: std::result::Result<Vec<u8>, zmq::DecodeError> = zmq::z85_decode("HelloWorld");
    let _: fn(zmq::Result<u8>) -> std::result::Result<u8, zmq::Error> = result_alias;

    // --- Statics and consts -----------------------------------------------------------------
    let _: &'static i32 = &zmq::DONTWAIT;
    let _: &'static i32 = &zmq::SNDMORE;
    let _: i32 = zmq::DONTWAIT | zmq::SNDMORE;
    let _: zmq::PollEvents = zmq::POLLIN | zmq::POLLOUT | zmq::POLLERR;

    // --- PollEvents (bitflags) --------------------------------------------------------------
    let mut events: zmq::PollEvents = zmq::PollEvents::empty();
    events.insert(zmq::PollEvents::POLLIN);
    events.remove(zmq::PollEvents::POLLOUT);
    events.toggle(zmq::PollEvents::POLLERR);
    let _: bool = events.contains(zmq::POLLIN);
    let _: bool = events.intersects(zmq::POLLOUT);
    let _: bool = events.is_empty();
    let _: i16 = events.bits();
    let _: Option<zmq::PollEvents> = zmq::PollEvents::from_bits(1);
    let _: zmq::PollEvents = zmq::PollEvents::from_bits_truncate(7);
    let _: zmq::PollEvents = zmq::PollEvents::all();
    let _: zmq::PollEvents = events & zmq::POLLIN;
    let _: zmq::PollEvents = !events;

    // --- SocketType, SocketEvent, Mechanism -------------------------------------------------
    let _: fn(zmq::SocketType) -> &'static str = socket_type_name;
    let _: [zmq::SocketType; 12] = ALL_SOCKET_TYPES;
    let _: fn(zmq::SocketEvent) -> u16 = zmq::SocketEvent::to_raw;
    let _: fn(u16) -> zmq::SocketEvent = zmq::SocketEvent::from_raw;
    let _: fn(zmq::SocketEvent) -> &'static str = socket_event_name;
    let _: i32 = zmq::SocketEvent::ALL as i32;
    let _: [zmq::SocketEvent; 16] = ALL_SOCKET_EVENTS;
    let _: fn(zmq::Mechanism) -> &'static str = mechanism_name;

    // --- Error ------------------------------------------------------------------------------
    let _: fn(zmq::Error) -> i32 = zmq::Error::to_raw;
    let _: fn(i32) -> zmq::Error = zmq::Error::from_raw;
    let _: fn(zmq::Error) -> &'static str = zmq::Error::message;
    let _: fn(zmq::Error) -> &'static str = error_name;
    let _: [zmq::Error; 28] = ALL_ERRORS;
    let error = zmq::Error::EAGAIN;
    let _: String = error.to_string();
    let _: String = format!("{error:?}");
    let _: &str = std::error::Error::description(&error);
    let _: std::io::Error = error.into();
    let _: std::io::Error = std::io::Error::from(error);
    let _: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    let _: fn(&zmq::Socket) -> std::io::Result<i32> = io_question_mark;
    let _: fn(&zmq::Socket) -> std::result::Result<i32, Box<dyn std::error::Error + Send + Sync>> =
        boxed_question_mark;

    // --- EncodeError, DecodeError -----------------------------------------------------------
    let _: fn(&zmq::EncodeError) -> &'static str = encode_error_name;
    let _: fn(&zmq::DecodeError) -> &'static str = decode_error_name;
    let utf8_error = String::from_utf8(vec![0xff]).unwrap_err();
    let _: zmq::EncodeError = zmq::EncodeError::from(utf8_error);
    let _: zmq::EncodeError = zmq::EncodeError::BadLength;
    let nul_error = std::ffi::CString::new(vec![0u8]).unwrap_err();
    let _: zmq::DecodeError = zmq::DecodeError::from(nul_error);
    let _: zmq::DecodeError = zmq::DecodeError::BadLength;

    // --- CurveKeyPair -----------------------------------------------------------------------
    let _: fn() -> zmq::Result<zmq::CurveKeyPair> = zmq::CurveKeyPair::new;
    let pair = zmq::CurveKeyPair {
        public_key: [0u8; 32],
        secret_key: [0u8; 32],
    };
    let _: [u8; 32] = pair.public_key;
    let _: [u8; 32] = pair.secret_key;

    // --- Message ----------------------------------------------------------------------------
    let _: fn() -> zmq::Message = zmq::Message::new;
    let _: fn(usize) -> zmq::Message = zmq::Message::with_size;
    let _: fn(usize) -> zmq::Message = zmq::Message::with_capacity;
    let _: fn(&[u8]) -> zmq::Message = zmq::Message::from_slice;
    let _: unsafe fn(usize) -> zmq::Message = zmq::Message::with_capacity_unallocated;
    let _: fn(&zmq::Message) -> Option<&str> = zmq::Message::as_str;
    let _: fn(&zmq::Message) -> bool = zmq::Message::get_more;
    let _: for<'a, 'b> fn(&'a mut zmq::Message, &'b str) -> Option<&'a str> = zmq::Message::gets;
    let _: zmq::Message = zmq::Message::from(&b"bytes"[..]);
    let _: zmq::Message = zmq::Message::from(vec![1u8, 2]);
    let _: zmq::Message = zmq::Message::from(vec![1u8, 2].into_boxed_slice());
    let _: zmq::Message = zmq::Message::from("str");
    let _: zmq::Message = zmq::Message::from(&String::from("string"));
    let _: zmq::Message = zmq::Message::from(&vec![1u8]); // From<&T> for T: Into<Message> + Clone
    let _: zmq::Message = zmq::Message::from(&"str");
    let _: zmq::Message = "into".into();
    let mut message = zmq::Message::with_size(4);
    message[0] = 1; // DerefMut<Target = [u8]>
    let _: &[u8] = &message; // Deref<Target = [u8]>
    let _: usize = message.len();
    let _: Vec<u8> = message.to_vec();
    let _: bool = message == zmq::Message::new();
    let _: String = format!("{message:?}");
    let _: Option<&str> = message.gets("Socket-Type");

    // --- Context ----------------------------------------------------------------------------
    let _: fn() -> zmq::Context = zmq::Context::new;
    let _: fn(&zmq::Context) -> zmq::Result<i32> = zmq::Context::get_io_threads;
    let _: fn(&zmq::Context, i32) -> zmq::Result<()> = zmq::Context::set_io_threads;
    let _: fn(&zmq::Context, zmq::SocketType) -> zmq::Result<zmq::Socket> = zmq::Context::socket;
    let _: fn(&mut zmq::Context) -> zmq::Result<()> = zmq::Context::destroy;
    let mut context: zmq::Context = zmq::Context::default();
    let _: zmq::Context = context.clone();
    let _: zmq::Result<()> = context.set_io_threads(2);
    let _: zmq::Result<i32> = context.get_io_threads();
    let _: zmq::Result<()> = context.destroy();
    let socket: zmq::Socket = context.socket(zmq::DEALER).unwrap();
    let other: zmq::Socket = context.socket(zmq::SocketType::ROUTER).unwrap();

    // --- Socket: lifecycle and endpoints ----------------------------------------------------
    let _: fn(zmq::Socket) -> *mut c_void = zmq::Socket::into_raw;
    let _: unsafe fn(*mut c_void) -> zmq::Socket = zmq::Socket::from_raw;
    let _: fn(&mut zmq::Socket) -> *mut c_void = zmq::Socket::as_mut_ptr;
    let _: fn(&zmq::Socket, &str) -> zmq::Result<()> = zmq::Socket::bind;
    let _: fn(&zmq::Socket, &str) -> zmq::Result<()> = zmq::Socket::unbind;
    let _: fn(&zmq::Socket, &str) -> zmq::Result<()> = zmq::Socket::connect;
    let _: fn(&zmq::Socket, &str) -> zmq::Result<()> = zmq::Socket::disconnect;
    let _: fn(&zmq::Socket, &str, i32) -> zmq::Result<()> = zmq::Socket::monitor;
    let _: zmq::Result<()> = socket.monitor("inproc://monitor", zmq::SocketEvent::ALL as i32);
    let _: RawFd = socket.as_raw_fd();
    let _: std::thread::Result<zmq::Result<i32>> =
        std::panic::catch_unwind(|| socket.get_sndhwm());

    // --- Socket: sending --------------------------------------------------------------------
    let _: fn(&zmq::Socket, &'static str, i32) -> zmq::Result<()> = zmq::Socket::send::<&str>;
    let _: fn(&zmq::Socket, zmq::Message, i32) -> zmq::Result<()> = zmq::Socket::send;
    let _: fn(&zmq::Socket, zmq::Message, i32) -> zmq::Result<()> = zmq::Socket::send_msg;
    let _: fn(&zmq::Socket, &str, i32) -> zmq::Result<()> = zmq::Socket::send_str;
    let _: fn(&zmq::Socket, Vec<Vec<u8>>, i32) -> zmq::Result<()> =
        zmq::Socket::send_multipart::<Vec<Vec<u8>>, Vec<u8>>;
    let owned = String::from("owned");
    let _: zmq::Result<()> = socket.send("str", 0);
    let _: zmq::Result<()> = socket.send(&b"bytes"[..], zmq::DONTWAIT);
    let _: zmq::Result<()> = socket.send(vec![1u8, 2, 3], zmq::SNDMORE);
    let _: zmq::Result<()> = socket.send(vec![1u8].into_boxed_slice(), 0);
    let _: zmq::Result<()> = socket.send(zmq::Message::from("message"), 0);
    let _: zmq::Result<()> = socket.send(&owned, 0);
    let _: zmq::Result<()> = socket.send(&vec![1u8], 0);
    let _: zmq::Result<()> = socket.send(OneByte(7), 0);
    let _: zmq::Result<()> = socket.send_msg(zmq::Message::new(), 0);
    let _: zmq::Result<()> = socket.send_str("str", 0);
    let _: zmq::Result<()> = socket.send_multipart(["a", "b"], 0);
    let _: zmq::Result<()> = socket.send_multipart(&["a", "b"], 0);
    let _: zmq::Result<()> = socket.send_multipart(vec!["a", "b"], zmq::DONTWAIT);
    let _: zmq::Result<()> = socket.send_multipart(vec![&b"a"[..], &b"b"[..]], 0);
    let _: zmq::Result<()> = socket.send_multipart(vec![vec![1u8], vec![2u8]], 0);
    let _: zmq::Result<()> = socket.send_multipart(&vec![vec![1u8], vec![2u8]], 0);
    let _: zmq::Result<()> = socket.send_multipart(vec![zmq::Message::new()], 0);
    let _: zmq::Result<()> = socket.send_multipart([&owned, &owned], 0);
    let _: zmq::Result<()> = socket.send_multipart((0u8..3).map(|i| vec![i]), 0);
    let _: zmq::Result<()> = socket.send_multipart(std::iter::empty::<&str>(), 0);
    let _: zmq::Result<()> = send_sendable(&socket, "generic");
    let _: zmq::Result<()> = send_sendable(&socket, OneByte(1));
    let _: zmq::Result<()> = send_through_trait(&socket, vec![1u8]);
    let _: zmq::Result<()> = send_into_message(&socket, &owned);
    let _: zmq::Result<()> = socket.send(Wrapped(vec![1]), 0);
    let _: zmq::Result<()> = socket.send_multipart([Wrapped(vec![1]), Wrapped(vec![2])], 0);
    let _: Option<Box<dyn zmq::Sendable>> = None; // the trait is object safe

    // --- Socket: receiving ------------------------------------------------------------------
    let _: fn(&zmq::Socket, &mut zmq::Message, i32) -> zmq::Result<()> = zmq::Socket::recv;
    let _: fn(&zmq::Socket, &mut [u8], i32) -> zmq::Result<usize> = zmq::Socket::recv_into;
    let _: fn(&zmq::Socket, i32) -> zmq::Result<zmq::Message> = zmq::Socket::recv_msg;
    let _: fn(&zmq::Socket, i32) -> zmq::Result<Vec<u8>> = zmq::Socket::recv_bytes;
    let _: fn(&zmq::Socket, i32) -> zmq::Result<StrResult> = zmq::Socket::recv_string;
    let _: fn(&zmq::Socket, i32) -> zmq::Result<Vec<Vec<u8>>> = zmq::Socket::recv_multipart;
    let mut buffer = [0u8; 16];
    let _: zmq::Result<()> = socket.recv(&mut message, 0);
    let _: zmq::Result<usize> = socket.recv_into(&mut buffer, zmq::DONTWAIT);
    let _: zmq::Result<zmq::Message> = socket.recv_msg(0);
    let _: zmq::Result<Vec<u8>> = socket.recv_bytes(0);
    let _: zmq::Result<StrResult> = socket.recv_string(0);
    let _: zmq::Result<Vec<Vec<u8>>> = socket.recv_multipart(0);

    // --- Socket: boolean options ------------------------------------------------------------
    let _: Getter<bool> = zmq::Socket::is_ipv6;
    let _: Setter<bool> = zmq::Socket::set_ipv6;
    let _: Getter<bool> = zmq::Socket::is_immediate;
    let _: Setter<bool> = zmq::Socket::set_immediate;
    let _: Getter<bool> = zmq::Socket::is_plain_server;
    let _: Setter<bool> = zmq::Socket::set_plain_server;
    let _: Getter<bool> = zmq::Socket::is_conflate;
    let _: Setter<bool> = zmq::Socket::set_conflate;
    let _: Getter<bool> = zmq::Socket::is_probe_router;
    let _: Setter<bool> = zmq::Socket::set_probe_router;
    let _: Getter<bool> = zmq::Socket::is_router_mandatory;
    let _: Setter<bool> = zmq::Socket::set_router_mandatory;
    let _: Getter<bool> = zmq::Socket::is_router_handover;
    let _: Setter<bool> = zmq::Socket::set_router_handover;
    let _: Getter<bool> = zmq::Socket::is_curve_server;
    let _: Setter<bool> = zmq::Socket::set_curve_server;
    let _: Getter<bool> = zmq::Socket::is_gssapi_server;
    let _: Setter<bool> = zmq::Socket::set_gssapi_server;
    let _: Getter<bool> = zmq::Socket::is_gssapi_plaintext;
    let _: Setter<bool> = zmq::Socket::set_gssapi_plaintext;
    let _: Setter<bool> = zmq::Socket::set_req_relaxed;
    let _: Setter<bool> = zmq::Socket::set_req_correlate;
    let _: Setter<bool> = zmq::Socket::set_xpub_verbose;

    // --- Socket: read-only options ----------------------------------------------------------
    let _: Getter<zmq::SocketType> = zmq::Socket::get_socket_type;
    let _: Getter<bool> = zmq::Socket::get_rcvmore;
    let _: Getter<RawFd> = zmq::Socket::get_fd;
    let _: Getter<zmq::PollEvents> = zmq::Socket::get_events;
    let _: Getter<zmq::Mechanism> = zmq::Socket::get_mechanism;
    let _: Getter<StrResult> = zmq::Socket::get_last_endpoint;

    // --- Socket: numeric options ------------------------------------------------------------
    let _: Getter<i64> = zmq::Socket::get_maxmsgsize;
    let _: Setter<i64> = zmq::Socket::set_maxmsgsize;
    let _: Getter<i32> = zmq::Socket::get_sndhwm;
    let _: Setter<i32> = zmq::Socket::set_sndhwm;
    let _: Getter<i32> = zmq::Socket::get_rcvhwm;
    let _: Setter<i32> = zmq::Socket::set_rcvhwm;
    let _: Getter<u64> = zmq::Socket::get_affinity;
    let _: Setter<u64> = zmq::Socket::set_affinity;
    let _: Getter<i32> = zmq::Socket::get_rate;
    let _: Setter<i32> = zmq::Socket::set_rate;
    let _: Getter<i32> = zmq::Socket::get_recovery_ivl;
    let _: Setter<i32> = zmq::Socket::set_recovery_ivl;
    let _: Getter<i32> = zmq::Socket::get_sndbuf;
    let _: Setter<i32> = zmq::Socket::set_sndbuf;
    let _: Getter<i32> = zmq::Socket::get_rcvbuf;
    let _: Setter<i32> = zmq::Socket::set_rcvbuf;
    let _: Getter<i32> = zmq::Socket::get_tos;
    let _: Setter<i32> = zmq::Socket::set_tos;
    let _: Getter<i32> = zmq::Socket::get_linger;
    let _: Setter<i32> = zmq::Socket::set_linger;
    let _: Getter<i32> = zmq::Socket::get_reconnect_ivl;
    let _: Setter<i32> = zmq::Socket::set_reconnect_ivl;
    let _: Getter<i32> = zmq::Socket::get_reconnect_ivl_max;
    let _: Setter<i32> = zmq::Socket::set_reconnect_ivl_max;
    let _: Getter<i32> = zmq::Socket::get_backlog;
    let _: Setter<i32> = zmq::Socket::set_backlog;
    let _: Getter<i32> = zmq::Socket::get_multicast_hops;
    let _: Setter<i32> = zmq::Socket::set_multicast_hops;
    let _: Getter<i32> = zmq::Socket::get_rcvtimeo;
    let _: Setter<i32> = zmq::Socket::set_rcvtimeo;
    let _: Getter<i32> = zmq::Socket::get_sndtimeo;
    let _: Setter<i32> = zmq::Socket::set_sndtimeo;
    let _: Getter<i32> = zmq::Socket::get_tcp_keepalive;
    let _: Setter<i32> = zmq::Socket::set_tcp_keepalive;
    let _: Getter<i32> = zmq::Socket::get_tcp_keepalive_cnt;
    let _: Setter<i32> = zmq::Socket::set_tcp_keepalive_cnt;
    let _: Getter<i32> = zmq::Socket::get_tcp_keepalive_idle;
    let _: Setter<i32> = zmq::Socket::set_tcp_keepalive_idle;
    let _: Getter<i32> = zmq::Socket::get_tcp_keepalive_intvl;
    let _: Setter<i32> = zmq::Socket::set_tcp_keepalive_intvl;
    let _: Getter<i32> = zmq::Socket::get_handshake_ivl;
    let _: Setter<i32> = zmq::Socket::set_handshake_ivl;
    let _: Getter<i32> = zmq::Socket::get_heartbeat_ivl;
    let _: Setter<i32> = zmq::Socket::set_heartbeat_ivl;
    let _: Getter<i32> = zmq::Socket::get_heartbeat_ttl;
    let _: Setter<i32> = zmq::Socket::set_heartbeat_ttl;
    let _: Getter<i32> = zmq::Socket::get_heartbeat_timeout;
    let _: Setter<i32> = zmq::Socket::set_heartbeat_timeout;
    let _: Getter<i32> = zmq::Socket::get_connect_timeout;
    let _: Setter<i32> = zmq::Socket::set_connect_timeout;

    // --- Socket: byte and string options ----------------------------------------------------
    let _: Getter<Vec<u8>> = zmq::Socket::get_identity;
    let _: Setter<&[u8]> = zmq::Socket::set_identity;
    let _: Setter<&[u8]> = zmq::Socket::set_subscribe;
    let _: Setter<&[u8]> = zmq::Socket::set_unsubscribe;
    let _: Getter<StrResult> = zmq::Socket::get_socks_proxy;
    let _: Setter<Option<&str>> = zmq::Socket::set_socks_proxy;
    let _: Getter<StrResult> = zmq::Socket::get_plain_username;
    let _: Setter<Option<&str>> = zmq::Socket::set_plain_username;
    let _: Getter<StrResult> = zmq::Socket::get_plain_password;
    let _: Setter<Option<&str>> = zmq::Socket::set_plain_password;
    let _: Getter<StrResult> = zmq::Socket::get_zap_domain;
    let _: Setter<&str> = zmq::Socket::set_zap_domain;
    let _: Setter<Option<&str>> = zmq::Socket::set_xpub_welcome_msg;
    let _: Getter<Vec<u8>> = zmq::Socket::get_curve_publickey;
    let _: Setter<&[u8]> = zmq::Socket::set_curve_publickey;
    let _: Getter<Vec<u8>> = zmq::Socket::get_curve_secretkey;
    let _: Setter<&[u8]> = zmq::Socket::set_curve_secretkey;
    let _: Getter<Vec<u8>> = zmq::Socket::get_curve_serverkey;
    let _: Setter<&[u8]> = zmq::Socket::set_curve_serverkey;
    let _: Getter<StrResult> = zmq::Socket::get_gssapi_principal;
    let _: Setter<&str> = zmq::Socket::set_gssapi_principal;
    let _: Getter<StrResult> = zmq::Socket::get_gssapi_service_principal;
    let _: Setter<&str> = zmq::Socket::set_gssapi_service_principal;
    // Method-call syntax with literal arguments (the setters taking borrowed data).
    let _: zmq::Result<()> = socket.set_identity(b"id");
    let _: zmq::Result<()> = socket.set_subscribe(b"");
    let _: zmq::Result<()> = socket.set_socks_proxy(None);
    let _: zmq::Result<()> = socket.set_plain_username(Some("user"));
    let _: zmq::Result<()> = socket.set_zap_domain("global");
    let _: zmq::Result<()> = socket.set_curve_serverkey(&pair.public_key);

    // --- Socket: poll items -----------------------------------------------------------------
    let _: for<'a> fn(&'a zmq::Socket, zmq::PollEvents) -> zmq::PollItem<'a> =
        zmq::Socket::as_poll_item;
    let _: fn(RawFd, zmq::PollEvents) -> zmq::PollItem<'static> = zmq::PollItem::from_fd;
    let _: fn(&mut zmq::PollItem<'static>, zmq::PollEvents) = zmq::PollItem::set_events;
    let _: fn(&zmq::PollItem<'static>) -> zmq::PollEvents = zmq::PollItem::get_revents;
    let _: fn(&zmq::PollItem<'static>) -> bool = zmq::PollItem::is_readable;
    let _: fn(&zmq::PollItem<'static>) -> bool = zmq::PollItem::is_writable;
    let _: fn(&zmq::PollItem<'static>) -> bool = zmq::PollItem::is_error;
    let _: fn(&zmq::PollItem<'static>, &zmq::Socket) -> bool = zmq::PollItem::has_socket;
    let _: fn(&zmq::PollItem<'static>, RawFd) -> bool = zmq::PollItem::has_fd;
    {
        // A poll item borrows its socket; several may coexist in a Vec (what `poll` takes).
        let mut items: Vec<zmq::PollItem<'_>> = vec![
            socket.as_poll_item(zmq::POLLIN),
            other.as_poll_item(zmq::POLLIN | zmq::POLLOUT),
            zmq::PollItem::from_fd(0, zmq::POLLIN),
        ];
        items[0].set_events(zmq::POLLOUT);
        let _: &mut [zmq::PollItem<'_>] = &mut items;
        let _: bool = items[0].has_socket(&socket);
        let _: fn(&mut [zmq::PollItem<'_>], i64) -> zmq::Result<i32> = zmq::poll;
        let _: zmq::Result<i32> = zmq::poll(&mut items, 0);
        let _: fn(&zmq::Socket, zmq::PollEvents, i64) -> zmq::Result<i32> = zmq::Socket::poll;
    }
    let _: zmq::Result<i32> = socket.poll(zmq::POLLIN, 0);

    // --- proxies (signatures only: they run until the context ends) -------------------------
    let _: fn(&zmq::Socket, &zmq::Socket) -> zmq::Result<()> = zmq::proxy;
    let _: fn(&mut zmq::Socket, &mut zmq::Socket, &mut zmq::Socket) -> zmq::Result<()> =
        zmq::proxy_with_capture;
    let _: fn(&mut zmq::Socket, &mut zmq::Socket, &mut zmq::Socket) -> zmq::Result<()> =
        zmq::proxy_steerable;
    let _: fn(
        &mut zmq::Socket,
        &mut zmq::Socket,
        &mut zmq::Socket,
        &mut zmq::Socket,
    ) -> zmq::Result<()> = zmq::proxy_steerable_with_capture;

    // --- Socket: raw pointers (last: they consume the socket) -------------------------------
    let mut socket = socket;
    let _: *mut c_void = socket.as_mut_ptr();
    let raw: *mut c_void = socket.into_raw();
    // SAFETY: compile-only; `raw` came from `into_raw` just above.
    let _: zmq::Socket = unsafe { zmq::Socket::from_raw(raw) };
}

// ---------------------------------------------------------------------------------------------
// Run-time checks: a small part of the surface, against a live libzmq.
// ---------------------------------------------------------------------------------------------

/// An inproc endpoint unique to this module (`plain` or `green`) and `name`.
fn endpoint(name: &str) -> String {
    format!("inproc://api-surface/{}/{name}", module_path!())
}

/// A connected PAIR pair over inproc; both ends time out after 5 s instead of hanging.
fn pair(ctx: &zmq::Context, name: &str) -> (zmq::Socket, zmq::Socket) {
    let bound = ctx.socket(zmq::PAIR).unwrap();
    let connected = ctx.socket(zmq::PAIR).unwrap();
    for socket in [&bound, &connected] {
        socket.set_rcvtimeo(5_000).unwrap();
        socket.set_sndtimeo(5_000).unwrap();
        socket.set_linger(0).unwrap();
    }
    bound.bind(&endpoint(name)).unwrap();
    connected.connect(&endpoint(name)).unwrap();
    (bound, connected)
}

#[test]
fn context_and_options_round_trip() {
    let ctx = zmq::Context::new();
    ctx.set_io_threads(2).unwrap();
    assert_eq!(ctx.get_io_threads().unwrap(), 2);

    let socket = ctx.socket(zmq::DEALER).unwrap();
    assert_eq!(socket.get_socket_type().unwrap(), zmq::DEALER);
    assert_eq!(socket.get_mechanism().unwrap(), zmq::Mechanism::ZMQ_NULL);

    socket.set_sndhwm(123).unwrap();
    assert_eq!(socket.get_sndhwm().unwrap(), 123);
    socket.set_rcvhwm(321).unwrap();
    assert_eq!(socket.get_rcvhwm().unwrap(), 321);
    socket.set_linger(0).unwrap();
    assert_eq!(socket.get_linger().unwrap(), 0);
    socket.set_rcvtimeo(250).unwrap();
    assert_eq!(socket.get_rcvtimeo().unwrap(), 250);
    socket.set_sndtimeo(125).unwrap();
    assert_eq!(socket.get_sndtimeo().unwrap(), 125);
    socket.set_maxmsgsize(1 << 20).unwrap();
    assert_eq!(socket.get_maxmsgsize().unwrap(), 1 << 20);
    socket.set_identity(b"identity").unwrap();
    assert_eq!(socket.get_identity().unwrap(), b"identity");
    socket.set_ipv6(true).unwrap();
    assert!(socket.is_ipv6().unwrap());
    socket.set_zap_domain("domain").unwrap();
    assert_eq!(socket.get_zap_domain().unwrap().unwrap(), "domain");

    let name = endpoint("options");
    socket.bind(&name).unwrap();
    assert_eq!(socket.get_last_endpoint().unwrap().unwrap(), name);
    socket.unbind(&name).unwrap();

    // An error from libzmq comes back as the same `zmq::Error` value.
    assert_eq!(
        socket.connect("no-such-transport://x"),
        Err(zmq::Error::EPROTONOSUPPORT)
    );
    assert_eq!(io_question_mark(&socket).unwrap(), 123);
    assert_eq!(boxed_question_mark(&socket).unwrap(), 321);
}

#[test]
#[allow(deprecated)] // send_str, send_msg
fn pair_send_recv_multipart_on_a_thread() {
    let ctx = zmq::Context::new();
    let (near, far) = pair(&ctx, "multipart");

    // `Socket: Send`: the far end moves to a plain thread and answers there.
    let peer = std::thread::spawn(move || {
        let parts = far.recv_multipart(0).unwrap();
        far.send_multipart(parts.iter().rev(), 0).unwrap();
        let mut message = zmq::Message::new();
        far.recv(&mut message, 0).unwrap();
        assert!(!message.get_more());
        far.send(message, 0).unwrap();
        far
    });

    let owned = String::from("string");
    near.send("str", zmq::SNDMORE).unwrap();
    near.send(&b"bytes"[..], zmq::SNDMORE).unwrap();
    near.send(vec![1u8, 2, 3], zmq::SNDMORE).unwrap();
    near.send(&owned, zmq::SNDMORE).unwrap();
    near.send(OneByte(7), zmq::SNDMORE).unwrap();
    near.send_str("send_str", zmq::SNDMORE).unwrap();
    near.send_msg(zmq::Message::from("send_msg"), 0).unwrap();
    let expected: Vec<Vec<u8>> = vec![
        b"send_msg".to_vec(),
        b"send_str".to_vec(),
        vec![7],
        b"string".to_vec(),
        vec![1, 2, 3],
        b"bytes".to_vec(),
        b"str".to_vec(),
    ];
    assert_eq!(near.recv_multipart(0).unwrap(), expected);
    assert!(!near.get_rcvmore().unwrap());

    near.send("echo me", 0).unwrap();
    let far = peer.join().unwrap();
    let mut buffer = [0u8; 4];
    // `recv_into` returns the full length; the part is truncated to the buffer.
    assert_eq!(near.recv_into(&mut buffer, 0).unwrap(), 7);
    assert_eq!(&buffer, b"echo");

    // Back on this thread: a message with several parts, read part by part.
    far.send_multipart(["one", "two"], 0).unwrap();
    let first = near.recv_msg(0).unwrap();
    assert_eq!(first.as_str(), Some("one"));
    assert!(first.get_more());
    assert!(near.get_rcvmore().unwrap());
    assert_eq!(near.recv_string(0).unwrap().unwrap(), "two");

    // Nothing pending: DONTWAIT fails at once with EAGAIN.
    assert_eq!(near.recv_bytes(zmq::DONTWAIT), Err(zmq::Error::EAGAIN));
    let events = near.get_events().unwrap();
    assert!(events.contains(zmq::POLLOUT));
    assert!(!events.contains(zmq::POLLIN));
    far.send("ready", 0).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !near.get_events().unwrap().contains(zmq::POLLIN) {
        assert!(
            std::time::Instant::now() < deadline,
            "POLLIN never showed up"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(near.recv_bytes(0).unwrap(), b"ready");
}

#[test]
fn poll_items_name_their_socket_or_fd() {
    let ctx = zmq::Context::new();
    let (socket, other) = pair(&ctx, "poll-items");

    let mut item = socket.as_poll_item(zmq::POLLIN);
    assert!(item.has_socket(&socket));
    assert!(!item.has_socket(&other));
    assert!(!item.has_fd(0));
    item.set_events(zmq::POLLIN | zmq::POLLOUT);
    assert_eq!(item.get_revents(), zmq::PollEvents::empty());
    assert!(!item.is_readable() && !item.is_writable() && !item.is_error());

    let fd = socket.as_raw_fd();
    assert_eq!(fd, socket.get_fd().unwrap());
    let fd_item = zmq::PollItem::from_fd(fd, zmq::POLLIN);
    assert!(fd_item.has_fd(fd));
    assert!(!fd_item.has_fd(fd + 1));
    assert!(!fd_item.has_socket(&socket));
}

#[test]
fn monitor_reports_socket_events() {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REP).unwrap();
    socket.set_linger(0).unwrap();
    let name = endpoint("monitor");
    socket
        .monitor(&name, zmq::SocketEvent::LISTENING as i32)
        .unwrap();
    let monitor = ctx.socket(zmq::PAIR).unwrap();
    monitor.set_rcvtimeo(5_000).unwrap();
    monitor.set_linger(0).unwrap();
    monitor.connect(&name).unwrap();

    socket.bind("tcp://127.0.0.1:*").unwrap();
    let frames = monitor.recv_multipart(0).unwrap();
    let event = u16::from_ne_bytes([frames[0][0], frames[0][1]]);
    let event = zmq::SocketEvent::from_raw(event);
    assert_eq!(event, zmq::SocketEvent::LISTENING);
    assert_eq!(socket_event_name(event), "LISTENING");
    let bound = socket.get_last_endpoint().unwrap().unwrap();
    assert_eq!(frames[1], bound.as_bytes());
}

#[test]
fn raw_socket_round_trip() {
    let ctx = zmq::Context::new();
    let (near, far) = pair(&ctx, "raw");
    let mut near = near;
    let ptr = near.as_mut_ptr();
    let raw = near.into_raw();
    assert_eq!(raw, ptr);
    // SAFETY: `raw` comes from `into_raw` and nothing else owns it.
    let near = unsafe { zmq::Socket::from_raw(raw) };
    near.send("after from_raw", 0).unwrap();
    assert_eq!(far.recv_string(0).unwrap().unwrap(), "after from_raw");
}

#[test]
fn values_and_free_functions() {
    // z85 round trip, and its two error kinds.
    let key: Vec<u8> = (0u8..32).collect();
    let text = zmq::z85_encode(&key).unwrap();
    assert_eq!(text.len(), 40);
    assert_eq!(zmq::z85_decode(&text).unwrap(), key);
    assert_eq!(
        encode_error_name(&zmq::z85_encode(&[1, 2, 3]).unwrap_err()),
        "BadLength"
    );
    assert_eq!(
        decode_error_name(&zmq::z85_decode("1234").unwrap_err()),
        "BadLength"
    );
    assert_eq!(
        decode_error_name(&zmq::z85_decode("12\u{0}45").unwrap_err()),
        "NulError"
    );

    if zmq::has("curve") == Some(true) {
        let pair = zmq::CurveKeyPair::new().unwrap();
        assert_ne!(pair.public_key, pair.secret_key);
        let text = zmq::z85_encode(&pair.public_key).unwrap();
        assert_eq!(zmq::z85_decode(&text).unwrap(), pair.public_key);
    }
    assert!(zmq::has("ipc").is_some());
    assert_eq!(zmq::version().0, 4);

    for error in ALL_ERRORS {
        assert_eq!(
            zmq::Error::from_raw(error.to_raw()),
            error,
            "{}",
            error_name(error)
        );
        assert!(!error.message().is_empty());
        assert_eq!(error.to_string(), error.message());
    }
    let io_error: std::io::Error = zmq::Error::EAGAIN.into();
    assert_eq!(io_error.kind(), std::io::ErrorKind::WouldBlock);

    for event in ALL_SOCKET_EVENTS {
        assert_eq!(zmq::SocketEvent::from_raw(event.to_raw()), event);
        assert!(!socket_event_name(event).is_empty());
    }
    let names: Vec<&str> = ALL_SOCKET_TYPES
        .iter()
        .map(|&t| socket_type_name(t))
        .collect();
    assert_eq!(names.len(), 12);
    assert_eq!(mechanism_name(zmq::Mechanism::ZMQ_CURVE), "CURVE");

    assert_eq!(zmq::DONTWAIT, 1);
    assert_eq!(zmq::SNDMORE, 2);
    assert_eq!((zmq::POLLIN | zmq::POLLOUT | zmq::POLLERR).bits(), 7);

    let mut message = zmq::Message::from(vec![1u8, 2, 3]);
    message[0] = 9;
    assert_eq!(&message[..], &[9, 2, 3]);
    assert_eq!(zmq::Message::with_size(2).to_vec(), vec![0, 0]);
    assert_eq!(
        zmq::Message::from(&String::from("s")),
        zmq::Message::from("s")
    );
    assert_eq!(zmq::Message::new().as_str(), Some(""));
    assert_eq!(result_alias(Ok(1)), Ok(1));
}
