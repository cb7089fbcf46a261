//! Socket options: every accessor of `zmq::Socket`, delegated with its exact signature.
//!
//! None of these can block, so they pass straight through. The list mirrors `zmq` 0.10; the
//! `api_surface` test compiles a call to each so that a missing one is caught.

use std::result;

use zmq::{Mechanism, PollEvents, Result, SocketType};

use super::Socket;

/// Declares methods that forward to the same-named method of the inner `zmq::Socket`.
macro_rules! delegate {
    ($( $(#[$meta:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Socket {
            $(
                $(#[$meta])*
                #[doc = concat!("Same as [`zmq::Socket::", stringify!($name), "`].")]
                #[inline]
                pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.inner.$name($($arg),*)
                }
            )*
        }
    };
}

/// Like `delegate!`, for the options that ask for CURVE: on a libzmq built without it they
/// fail with `ENOTSUP` and log how to turn it on (`crate::curve::check_option`), where `zmq`
/// gives a bare `EINVAL`.
macro_rules! delegate_curve {
    ($( fn $name:ident(&self, $arg:ident: $ty:ty) -> $ret:ty; )*) => {
        impl Socket {
            $(
                #[doc = concat!("Same as [`zmq::Socket::", stringify!($name), "`], except that \
                    on a libzmq without CURVE it fails with `ENOTSUP` (not `EINVAL`) and logs \
                    the fix ([`curve::FIX`](crate::curve::FIX)).")]
                #[inline]
                pub fn $name(&self, $arg: $ty) -> $ret {
                    crate::curve::check_option(self.inner.$name($arg))
                }
            )*
        }
    };
}

delegate_curve! {
    fn set_curve_server(&self, value: bool) -> Result<()>;
    fn set_curve_publickey(&self, value: &[u8]) -> Result<()>;
    fn set_curve_secretkey(&self, value: &[u8]) -> Result<()>;
    fn set_curve_serverkey(&self, value: &[u8]) -> Result<()>;
}

delegate! {
    fn is_ipv6(&self) -> Result<bool>;
    fn set_ipv6(&self, value: bool) -> Result<()>;
    fn is_immediate(&self) -> Result<bool>;
    fn set_immediate(&self, value: bool) -> Result<()>;
    fn is_plain_server(&self) -> Result<bool>;
    fn set_plain_server(&self, value: bool) -> Result<()>;
    fn is_conflate(&self) -> Result<bool>;
    fn set_conflate(&self, value: bool) -> Result<()>;
    fn is_probe_router(&self) -> Result<bool>;
    fn set_probe_router(&self, value: bool) -> Result<()>;
    fn is_router_mandatory(&self) -> Result<bool>;
    fn set_router_mandatory(&self, value: bool) -> Result<()>;
    fn is_router_handover(&self) -> Result<bool>;
    fn set_router_handover(&self, value: bool) -> Result<()>;
    fn is_curve_server(&self) -> Result<bool>;
    fn is_gssapi_server(&self) -> Result<bool>;
    fn set_gssapi_server(&self, value: bool) -> Result<()>;
    fn is_gssapi_plaintext(&self) -> Result<bool>;
    fn set_gssapi_plaintext(&self, value: bool) -> Result<()>;
    fn set_req_relaxed(&self, value: bool) -> Result<()>;
    fn set_req_correlate(&self, value: bool) -> Result<()>;

    fn get_socket_type(&self) -> Result<SocketType>;
    fn get_rcvmore(&self) -> Result<bool>;

    fn get_maxmsgsize(&self) -> Result<i64>;
    fn set_maxmsgsize(&self, value: i64) -> Result<()>;
    fn get_sndhwm(&self) -> Result<i32>;
    fn set_sndhwm(&self, value: i32) -> Result<()>;
    fn get_rcvhwm(&self) -> Result<i32>;
    fn set_rcvhwm(&self, value: i32) -> Result<()>;
    fn get_affinity(&self) -> Result<u64>;
    fn set_affinity(&self, value: u64) -> Result<()>;
    fn get_rate(&self) -> Result<i32>;
    fn set_rate(&self, value: i32) -> Result<()>;
    fn get_recovery_ivl(&self) -> Result<i32>;
    fn set_recovery_ivl(&self, value: i32) -> Result<()>;
    fn get_sndbuf(&self) -> Result<i32>;
    fn set_sndbuf(&self, value: i32) -> Result<()>;
    fn get_rcvbuf(&self) -> Result<i32>;
    fn set_rcvbuf(&self, value: i32) -> Result<()>;
    fn get_tos(&self) -> Result<i32>;
    fn set_tos(&self, value: i32) -> Result<()>;
    fn get_linger(&self) -> Result<i32>;
    fn set_linger(&self, value: i32) -> Result<()>;
    fn get_reconnect_ivl(&self) -> Result<i32>;
    fn set_reconnect_ivl(&self, value: i32) -> Result<()>;
    fn get_reconnect_ivl_max(&self) -> Result<i32>;
    fn set_reconnect_ivl_max(&self, value: i32) -> Result<()>;
    fn get_backlog(&self) -> Result<i32>;
    fn set_backlog(&self, value: i32) -> Result<()>;
    /// The notification fd: readable when commands are pending, not when a message is; see
    /// `get_events`.
    fn get_fd(&self) -> Result<zmq_sys::RawFd>;
    /// The pending events (`ZMQ_EVENTS`); reading them also processes pending commands.
    fn get_events(&self) -> Result<PollEvents>;
    fn get_multicast_hops(&self) -> Result<i32>;
    fn set_multicast_hops(&self, value: i32) -> Result<()>;
    /// The receive timeout in ms (-1 = forever); green `recv*` calls honour it in coroutines.
    fn get_rcvtimeo(&self) -> Result<i32>;
    /// Sets the receive timeout in ms (-1 = forever, 0 = at once).
    fn set_rcvtimeo(&self, value: i32) -> Result<()>;
    /// The send timeout in ms (-1 = forever); green `send*` calls honour it in coroutines.
    fn get_sndtimeo(&self) -> Result<i32>;
    /// Sets the send timeout in ms (-1 = forever, 0 = at once).
    fn set_sndtimeo(&self, value: i32) -> Result<()>;
    fn get_tcp_keepalive(&self) -> Result<i32>;
    fn set_tcp_keepalive(&self, value: i32) -> Result<()>;
    fn get_tcp_keepalive_cnt(&self) -> Result<i32>;
    fn set_tcp_keepalive_cnt(&self, value: i32) -> Result<()>;
    fn get_tcp_keepalive_idle(&self) -> Result<i32>;
    fn set_tcp_keepalive_idle(&self, value: i32) -> Result<()>;
    fn get_tcp_keepalive_intvl(&self) -> Result<i32>;
    fn set_tcp_keepalive_intvl(&self, value: i32) -> Result<()>;
    fn get_handshake_ivl(&self) -> Result<i32>;
    fn set_handshake_ivl(&self, value: i32) -> Result<()>;
    fn set_identity(&self, value: &[u8]) -> Result<()>;
    fn set_subscribe(&self, value: &[u8]) -> Result<()>;
    fn set_unsubscribe(&self, value: &[u8]) -> Result<()>;
    fn get_heartbeat_ivl(&self) -> Result<i32>;
    fn set_heartbeat_ivl(&self, value: i32) -> Result<()>;
    fn get_heartbeat_ttl(&self) -> Result<i32>;
    fn set_heartbeat_ttl(&self, value: i32) -> Result<()>;
    fn get_heartbeat_timeout(&self) -> Result<i32>;
    fn set_heartbeat_timeout(&self, value: i32) -> Result<()>;
    fn get_connect_timeout(&self) -> Result<i32>;
    fn set_connect_timeout(&self, value: i32) -> Result<()>;

    fn get_identity(&self) -> Result<Vec<u8>>;
    fn get_socks_proxy(&self) -> Result<result::Result<String, Vec<u8>>>;
    fn get_mechanism(&self) -> Result<Mechanism>;
    fn get_plain_username(&self) -> Result<result::Result<String, Vec<u8>>>;
    fn get_plain_password(&self) -> Result<result::Result<String, Vec<u8>>>;
    fn get_zap_domain(&self) -> Result<result::Result<String, Vec<u8>>>;
    fn get_last_endpoint(&self) -> Result<result::Result<String, Vec<u8>>>;
    fn get_curve_publickey(&self) -> Result<Vec<u8>>;
    fn get_curve_secretkey(&self) -> Result<Vec<u8>>;
    fn get_curve_serverkey(&self) -> Result<Vec<u8>>;
    fn get_gssapi_principal(&self) -> Result<result::Result<String, Vec<u8>>>;
    fn get_gssapi_service_principal(&self) -> Result<result::Result<String, Vec<u8>>>;

    fn set_socks_proxy(&self, value: Option<&str>) -> Result<()>;
    fn set_plain_username(&self, value: Option<&str>) -> Result<()>;
    fn set_plain_password(&self, value: Option<&str>) -> Result<()>;
    fn set_zap_domain(&self, value: &str) -> Result<()>;
    fn set_xpub_welcome_msg(&self, value: Option<&str>) -> Result<()>;
    fn set_xpub_verbose(&self, value: bool) -> Result<()>;
    fn set_gssapi_principal(&self, value: &str) -> Result<()>;
    fn set_gssapi_service_principal(&self, value: &str) -> Result<()>;
}
