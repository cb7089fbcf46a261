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
/// requested or the context is terminated. Then it unbinds (no request can queue any more,
/// and another handler can bind at once), refuses what is still queued with
/// [`Refusal::Stopping`], and closes the socket. Any other end (an error, a panic, a cancelled
/// hub task) is logged at error level: from then on libzmq lets CURVE peers in
/// unauthenticated.
pub(crate) fn serve(zap: zmq::Socket, stop: &StopSignal, shared: &Shared) -> zmq::Result<()> {
    let zap = BoundZap(zap);
    let served = serve_until_stopped(&zap.0, stop, shared);
    zap.unbind();
    let refused = answer_queued(&zap.0, shared, |_| Err(Refusal::Stopping));
    let outcome = match served.and(refused) {
        // The context was terminated (seen by whichever call came first): not an error.
        Err(zmq::Error::ETERM) => Ok(()),
        outcome => outcome,
    };
    if let Err(err) = &outcome {
        log::error!(
            "zmqloop auth: the authenticator stopped serving after an error: {err}; {FAIL_OPEN}"
        );
    }
    outcome
}

/// What libzmq does once no ZAP handler is bound, for the error log.
const FAIL_OPEN: &str = "until it is started again libzmq lets CURVE peers (and NULL peers \
                         of sockets with a ZAP domain) in unauthenticated, and refuses PLAIN \
                         peers";

/// The serving loop's ZAP socket: unbound when dropped, however the loop ends (unwinding
/// included), so that another handler can bind at once (a closed socket's endpoint is freed
/// later, by libzmq's reaper).
struct BoundZap(
    /// The REP socket bound to [`ZAP_ENDPOINT`] (until unbound), owned by this loop alone.
    zmq::Socket,
);

impl BoundZap {
    /// Unbinds the ZAP endpoint: no new request can reach this socket, those already queued
    /// stay readable.
    fn unbind(&self) {
        let _ = self.0.unbind(ZAP_ENDPOINT); // fails after ETERM, or once already unbound
    }
}

impl Drop for BoundZap {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log::error!(
                "zmqloop auth: the authenticator stopped serving: its task panicked or was \
                 cancelled (its hub dropped); {FAIL_OPEN}"
            );
        }
        self.unbind();
    }
}

fn serve_until_stopped(zap: &zmq::Socket, stop: &StopSignal, shared: &Shared) -> zmq::Result<()> {
    let mut poller = zmq::Poller::new();
    poller.register(zap, zmq::POLLIN)?;
    poller.register_fd(stop.wake.as_raw_fd(), zmq::POLLIN)?;
    loop {
        match poller.poll(-1) {
            Ok(_) => {}
            // Outside a scheduler the wait is zmq_poll, which a signal handler interrupts
            // (SA_RESTART or not).
            Err(zmq::Error::EINTR) => continue,
            Err(err) => return Err(err),
        }
        if stop.is_requested() {
            return Ok(());
        }
        answer_queued(zap, shared, |request| {
            let policy = shared.policy.read();
            policy
                .unwrap_or_else(PoisonError::into_inner)
                .decide(request)
        })?;
    }
}

/// Answers every request queued on `zap` without waiting (REP sends never block), deciding
/// each well-formed one with `decide`.
fn answer_queued(
    zap: &zmq::Socket,
    shared: &Shared,
    decide: impl Fn(&zap::Request) -> Result<String, Refusal>,
) -> zmq::Result<()> {
    loop {
        match zap.recv_multipart(zmq::DONTWAIT) {
            Ok(frames) => zap.send_multipart(answer(frames, shared, &decide), zmq::DONTWAIT)?,
            Err(zmq::Error::EAGAIN) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}

/// Decides one request with `decide`, counts and logs the decision, and returns the reply's
/// frames.
fn answer(
    frames: Vec<Vec<u8>>,
    shared: &Shared,
    decide: impl Fn(&zap::Request) -> Result<String, Refusal>,
) -> Vec<Vec<u8>> {
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
            let code = Refusal::BadRequest.status_code();
            return zap::reply(bad.request_id, Err((code, bad.why)));
        }
    };
    let decision = decide(&request);
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
            let status = (reason.status_code(), reason.status_text());
            zap::reply(request.request_id, Err(status))
        }
    }
}

/// Who a refused peer claimed to be, for the log (never a password).
fn who(credentials: &zap::Credentials) -> String {
    match credentials {
        zap::Credentials::Plain { username, .. } => format!(", user {}", zap::printable(username)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc};
    use std::time::Duration;
    use zmqloop_fixtures::{logs, threads};

    #[test]
    fn a_loop_that_fails_says_so_at_error_level_and_frees_the_endpoint() {
        logs::capture();
        let ctx = zmq::Context::new();
        // A PULL socket in the ZAP socket's place: it receives the request, and the reply
        // fails (ENOTSUP).
        let zap = ctx.socket(zmq::PULL).unwrap();
        zap.bind(ZAP_ENDPOINT).unwrap();
        let peer = ctx.socket(zmq::PUSH).unwrap();
        peer.connect(ZAP_ENDPOINT).unwrap();
        peer.send_multipart(["1.0", "1", "", "127.0.0.1", "", "NULL"], 0)
            .unwrap();
        let stop = StopSignal::new().unwrap();
        let outcome = serve(zap, &stop, &Shared::default());
        assert_eq!(outcome, Err(zmq::Error::ENOTSUP));
        let logged = logs::here();
        assert!(
            logged
                .iter()
                .any(|line| line.starts_with("ERROR") && line.contains("stopped serving")),
            "{logged:?}"
        );
        let next = ctx.socket(zmq::REP).unwrap();
        next.bind(ZAP_ENDPOINT).unwrap(); // free at once
    }

    #[test]
    fn a_context_terminated_while_a_request_is_decided_ends_the_loop_quietly() {
        let mut ctx = zmq::Context::new();
        let zap = ctx.socket(zmq::REP).unwrap();
        zap.bind(ZAP_ENDPOINT).unwrap();
        let shared = Arc::new(Shared::default());
        let held = shared.policy.write().unwrap(); // the loop cannot decide until released
        let requester = ctx.socket(zmq::REQ).unwrap();
        requester.connect(ZAP_ENDPOINT).unwrap();
        requester
            .send_multipart(["1.0", "1", "", "127.0.0.1", "", "NULL"], 0)
            .unwrap();
        let (tid_tx, tid_rx) = mpsc::channel();
        let server = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                tid_tx.send(threads::current_tid()).unwrap();
                serve(zap, &StopSignal::new().unwrap(), &shared)
            })
        };
        let tid = tid_rx.recv().unwrap();
        let waiting = threads::wait_until_on_futex(tid, Duration::from_secs(10));
        assert!(waiting, "the loop never waited for the rules");
        // Terminate the context: once a socket of it sees ETERM, every socket has been told.
        let probe = ctx.socket(zmq::PULL).unwrap();
        probe.set_rcvtimeo(10_000).unwrap();
        let terminator = {
            let mut ctx = ctx.clone();
            std::thread::spawn(move || ctx.destroy())
        };
        assert_eq!(probe.recv_bytes(0), Err(zmq::Error::ETERM));
        drop((probe, requester));
        drop(held); // the loop decides, and its reply meets the terminated context
        assert_eq!(server.join().unwrap(), Ok(()));
        terminator.join().unwrap().unwrap();
        ctx.destroy().unwrap();
    }
}
