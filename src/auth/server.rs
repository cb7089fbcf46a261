//! The serving loop: answers the ZAP requests arriving on the bound REP socket until asked to
//! stop, on whatever scheduler started it (all its waits are green).

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use zmqloop_green as zmq;

use super::policy::Policy;
use super::stats::{Counters, Refusal};
use super::zap;

/// Where libzmq sends ZAP requests (RFC 27): one handler per context.
pub(crate) const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// What the serving task shares with its [`Authenticator`](super::Authenticator).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The rules; written by the handle's configuration calls, read once per request.
    pub(crate) policy: RwLock<Policy>,
    /// The decisions so far.
    pub(crate) counters: Counters,
}

/// Asks a serving loop to end: set, then wake.
#[derive(Debug)]
pub(crate) struct StopSignal {
    /// Set once, by `request`.
    requested: AtomicBool,
    /// Polled by the loop beside the ZAP socket.
    wake: zmq::wake_fd::WakeFd,
}

impl StopSignal {
    pub(crate) fn new() -> std::io::Result<StopSignal> {
        Ok(StopSignal {
            requested: AtomicBool::new(false),
            wake: zmq::wake_fd::WakeFd::new()?,
        })
    }

    pub(crate) fn request(&self) {
        self.requested.store(true, Ordering::Release);
        self.wake.wake();
    }

    fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}

/// Serves ZAP requests on `zap` (a REP socket bound to [`ZAP_ENDPOINT`]) until `stop` is
/// requested or the context is terminated; then unbinds, so that another handler can bind at
/// once, and closes the socket.
pub(crate) fn serve(zap: zmq::Socket, stop: &StopSignal, shared: &Shared) -> zmq::Result<()> {
    let outcome = serve_until_stopped(&zap, stop, shared);
    if outcome.is_ok() {
        let _ = zap.unbind(ZAP_ENDPOINT); // fails only after ETERM, when it no longer matters
    }
    outcome
}

fn serve_until_stopped(zap: &zmq::Socket, stop: &StopSignal, shared: &Shared) -> zmq::Result<()> {
    let mut poller = zmq::Poller::new();
    poller.register(zap, zmq::POLLIN)?;
    poller.register_fd(stop.wake.as_raw_fd(), zmq::POLLIN)?;
    loop {
        match poller.poll(-1) {
            Ok(_) => {}
            Err(zmq::Error::ETERM) => return Ok(()),
            Err(err) => return Err(err),
        }
        if stop.is_requested() {
            return Ok(());
        }
        loop {
            match zap.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => zap.send_multipart(answer(frames, shared), 0)?,
                Err(zmq::Error::EAGAIN) => break,
                Err(zmq::Error::ETERM) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
}

/// Decides one request, counts and logs the decision, and returns the reply's frames.
fn answer(frames: Vec<Vec<u8>>, shared: &Shared) -> Vec<Vec<u8>> {
    let request = match zap::parse(frames) {
        Ok(request) => request,
        Err(bad) => {
            shared.counters.record(Err(Refusal::BadRequest));
            log::info!(
                "zmqloop auth: refused {} from {:?}: {} ({})",
                mechanism_or_unknown(&bad.mechanism),
                bad.address,
                Refusal::BadRequest,
                bad.why
            );
            return zap::reply(bad.request_id, Err(bad.why));
        }
    };
    let decision = shared
        .policy
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .decide(&request);
    shared
        .counters
        .record(decision.as_ref().map(drop).map_err(|r| *r));
    match decision {
        Ok(user_id) => {
            log::debug!(
                "zmqloop auth: accepted {} from {} as {user_id:?}",
                request.credentials.mechanism(),
                request.address
            );
            zap::reply(request.request_id, Ok(&user_id))
        }
        Err(reason) => {
            log::info!(
                "zmqloop auth: refused {} from {} (domain {:?}{}): {reason}",
                request.credentials.mechanism(),
                request.address,
                request.domain,
                who(&request.credentials)
            );
            zap::reply(request.request_id, Err(reason.status_text()))
        }
    }
}

/// Who a refused peer claimed to be, for the log (never a password).
fn who(credentials: &zap::Credentials) -> String {
    match credentials {
        zap::Credentials::Plain { username, .. } => format!(", user {username:?}"),
        zap::Credentials::Curve { public_key } => {
            format!(", key {}", super::policy::curve_user_id(public_key))
        }
        _ => String::new(),
    }
}

fn mechanism_or_unknown(mechanism: &str) -> &str {
    if mechanism.is_empty() {
        "an unknown mechanism"
    } else {
        mechanism
    }
}
