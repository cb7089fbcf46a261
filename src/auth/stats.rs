//! What an authenticator has decided: [`Statistics`] for users, counted by [`Counters`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a peer was refused. Its [`status_text`](Refusal::status_text) is what the ZAP reply
/// says (pyzmq's wording where pyzmq has one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// An allow list is set and the peer's address is not on it.
    AddressNotAllowed,
    /// The peer's address is on the deny list.
    AddressDenied,
    /// PLAIN or CURVE on a domain with nothing configured for that mechanism.
    UnknownDomain,
    /// PLAIN: no such user name in the domain.
    UnknownUser,
    /// PLAIN: the user exists, the password is wrong.
    WrongPassword,
    /// CURVE: the client's public key is not allowed in the domain.
    UnknownKey,
    /// A mechanism this authenticator does not handle (GSSAPI).
    UnsupportedMechanism,
    /// A malformed ZAP request (frames, version, credentials).
    BadRequest,
    /// Queued when the authenticator was stopped: answered `500` (an internal error, not a
    /// judgement of the peer's credentials) rather than left unanswered. See
    /// [`status_code`](Refusal::status_code).
    Stopping,
}

impl Refusal {
    /// Every reason, in the order [`Statistics`] counts them.
    pub const ALL: [Refusal; 9] = [
        Refusal::AddressNotAllowed,
        Refusal::AddressDenied,
        Refusal::UnknownDomain,
        Refusal::UnknownUser,
        Refusal::WrongPassword,
        Refusal::UnknownKey,
        Refusal::UnsupportedMechanism,
        Refusal::BadRequest,
        Refusal::Stopping,
    ];

    /// The ZAP status code of the reply (RFC 27): `500` ("internal error") for
    /// [`Stopping`](Refusal::Stopping), `400` ("authentication failure") for every other
    /// reason. The server socket's monitor reports it with `HANDSHAKE_FAILED_AUTH`.
    ///
    /// For both libzmq 4.3 sends the peer an ERROR and disconnects it, and the peer does not
    /// reconnect. `300` ("temporary error") is never used: libzmq then sends the peer nothing,
    /// the handshake stalls until `HANDSHAKE_IVL` ends it, the peer reconnects, and with no
    /// authenticator bound any more a CURVE server lets it in.
    pub fn status_code(self) -> u16 {
        match self {
            Refusal::Stopping => 500,
            _ => 400,
        }
    }

    /// The ZAP status text sent with the reply's [`status_code`](Refusal::status_code).
    pub fn status_text(self) -> &'static str {
        match self {
            Refusal::AddressNotAllowed => "Address not allowed",
            Refusal::AddressDenied => "Address denied",
            Refusal::UnknownDomain => "Unknown domain",
            Refusal::UnknownUser => "Invalid username",
            Refusal::WrongPassword => "Invalid password",
            Refusal::UnknownKey => "Unknown key",
            Refusal::UnsupportedMechanism => "Unsupported mechanism",
            Refusal::BadRequest => "Invalid request",
            Refusal::Stopping => "Authenticator stopping",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status_text())
    }
}

/// A snapshot of an authenticator's decisions since it was created (across restarts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// ZAP requests received (each is then accepted or refused).
    pub requests: u64,
    /// Requests answered `200`.
    pub accepted: u64,
    /// Requests refused (answered `400`, or `500` while stopping), by reason (indexed like
    /// [`Refusal::ALL`]).
    refused: [u64; Refusal::ALL.len()],
}

impl Statistics {
    /// Requests refused for `reason`.
    pub fn refused(&self, reason: Refusal) -> u64 {
        self.refused[reason.index()]
    }

    /// Requests refused, for any reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }
}

/// The live counters behind [`Statistics`], shared by the serving task and the handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Every request; bumped last, so a reader that sees it has seen the decision's count.
    requests: AtomicU64,
    /// Accepted requests.
    accepted: AtomicU64,
    /// Refused requests by reason.
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl Counters {
    /// Counts one decision.
    pub(crate) fn record(&self, outcome: Result<(), Refusal>) {
        match outcome {
            Ok(()) => &self.accepted,
            Err(reason) => &self.refused[reason.index()],
        }
        .fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Release);
    }

    /// The counts now.
    pub(crate) fn snapshot(&self) -> Statistics {
        let requests = self.requests.load(Ordering::Acquire);
        Statistics {
            requests,
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: std::array::from_fn(|i| self.refused[i].load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_counted_by_reason() {
        let counters = Counters::default();
        counters.record(Ok(()));
        counters.record(Err(Refusal::WrongPassword));
        counters.record(Err(Refusal::WrongPassword));
        counters.record(Err(Refusal::BadRequest));
        let stats = counters.snapshot();
        assert_eq!((stats.requests, stats.accepted), (4, 1));
        assert_eq!(stats.refused(Refusal::WrongPassword), 2);
        assert_eq!(stats.refused(Refusal::BadRequest), 1);
        assert_eq!(stats.refused(Refusal::UnknownKey), 0);
        assert_eq!(stats.refused_total(), 3);
    }

    #[test]
    fn all_lists_each_reason_at_its_index() {
        for (i, reason) in Refusal::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }
}
