//! ZAP authentication (pyzmq's `zmq.auth`): an [`Authenticator`] that answers libzmq's
//! authentication requests as a green task, and CURVE [`certs`].
//!
//! libzmq asks a ZAP handler (ZeroMQ RFC 27, at `inproc://zeromq.zap.01` of the socket's
//! context) whether to accept each peer of a server socket using PLAIN or CURVE, or NULL with
//! a ZAP domain set. The [`Authenticator`] is that handler: it checks the peer's address
//! against allow and deny lists, then its PLAIN user name and password or its CURVE public
//! key against what the domain allows, and counts each decision ([`Statistics`]).
//!
//! ```
//! use zmqloop::auth::Authenticator;
//! use zmqloop::green as zmq;
//!
//! let ctx = zmq::Context::new();
//! let mut auth = Authenticator::new(&ctx);
//! auth.configure_plain("*", [("admin", "secret")]);
//! auth.start().unwrap(); // here a thread; in a coroutine or hub task, a green task
//!
//! let server = ctx.socket(zmq::REP).unwrap();
//! server.set_plain_server(true).unwrap();
//! server.bind("tcp://127.0.0.1:*").unwrap();
//! let endpoint = server.get_last_endpoint().unwrap().unwrap();
//!
//! let client = ctx.socket(zmq::REQ).unwrap();
//! client.set_plain_username(Some("admin")).unwrap();
//! client.set_plain_password(Some("secret")).unwrap();
//! client.connect(&endpoint).unwrap();
//! client.send("hello", 0).unwrap();
//! assert_eq!(server.recv_string(0).unwrap().unwrap(), "hello");
//! assert_eq!(auth.statistics().accepted, 1);
//! auth.stop().unwrap();
//! ```
//!
//! Until rules are added, NULL peers pass and PLAIN and CURVE peers are refused. Addresses:
//! a non-empty allow list wins (every other address is refused and the deny list is not
//! consulted); otherwise the deny list refuses its addresses (pyzmq refuses to have both; here
//! the allow list simply takes precedence), compared as addresses (see
//! [`allow`](Authenticator::allow)).
//!
//! Domains, as in pyzmq: PLAIN and CURVE rules are set per ZAP domain (the server socket's
//! `set_zap_domain`), and the rules of [`DEFAULT_DOMAIN`] (`"*"`) serve the sockets with no
//! domain, and only those. A socket whose domain has no rules is refused
//! ([`Refusal::UnknownDomain`], logged with the domain) instead of falling back to `"*"`:
//! a mistyped domain then fails closed, where a fallback would quietly apply rules meant for
//! other sockets.
//!
//! # When no authenticator serves
//!
//! What libzmq (4.3.4, the version vendored) does while no ZAP handler is bound in the
//! context: before [`start`](Authenticator::start), after [`stop`](Authenticator::stop), and
//! after the task has ended by itself (an error, a panic, its hub dropped):
//! - **CURVE**: every client that completes the handshake (that knows the server's public
//!   key) is let in, unauthenticated. It fails open.
//! - **NULL** on a socket with a ZAP domain: every peer is let in.
//! - **PLAIN**: every client is refused (`HANDSHAKE_FAILED_NO_DETAIL` with EFAULT).
//!
//! So start the authenticator before binding the sockets it guards, keep it running while
//! they serve, and watch it: [`is_alive`](Authenticator::is_alive) turns false when its task
//! ends (an end other than a stop is logged at error level; [`start`](Authenticator::start)
//! starts it again), and [`statistics`](Authenticator::statistics) stop counting requests
//! while no one answers them. `tests/auth.rs` checks this rule against the vendored libzmq,
//! so that a version that changes it is noticed.

mod address;
pub mod certs;
mod policy;
mod server;
mod stats;
mod zap;
mod zpl;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLockWriteGuard};

use zmqloop_green as zmq;
use zmqloop_green::task::{self, RunsOn, Task};

pub use self::policy::{CurveAuth, DEFAULT_DOMAIN};
pub use self::stats::{Refusal, Statistics};
pub use zmqloop_green::curve::{library as curve_library, require as require_curve};
pub use zmqloop_green::curve::{CryptoLibrary, FIX as CURVE_FIX};

use self::policy::{CurveKeys, Policy};
use self::server::{Shared, StopSignal, ZAP_ENDPOINT};

/// The thread name of an authenticator started outside any scheduler.
pub const THREAD_NAME: &str = "zmqloop-auth";

/// A ZAP authenticator for one context. See the [module docs](self).
///
/// Configuration calls take `&self` and apply at once, also while it runs. `Debug` shows where
/// it runs and its statistics, never its passwords.
pub struct Authenticator {
    /// The context whose ZAP requests it answers.
    ctx: zmq::Context,
    /// Rules and counters, shared with the serving task.
    shared: Arc<Shared>,
    /// The serving task: `Some` from `start` until `stop` or the drop (also once the task
    /// has ended by itself, until `start` replaces it).
    running: Option<Running>,
}

/// A started authenticator's task and the means to stop it.
#[derive(Debug)]
struct Running {
    /// The stop request, shared with the task: once requested, the task ends at its next
    /// wake-up (after refusing what is queued). Requested only by the `stop` or drop that
    /// takes this `Running` out of its authenticator.
    stop: Arc<StopSignal>,
    /// The serving task. Finished once serving has ended, for whatever reason: then
    /// `is_alive` is false, and `start` collects it and replaces this `Running`.
    task: Task<zmq::Result<()>>,
}

impl Running {
    /// Asks the task to stop and waits for its outcome (or its panic). `None` where no wait
    /// could end: on the thread of the hub that runs the task, outside that hub's tasks; the
    /// task then ends when the hub runs again (logged at warn level).
    fn stop(self) -> Option<std::thread::Result<zmq::Result<()>>> {
        self.stop.request();
        if !self.task.can_join_here() {
            log::warn!(
                "zmqloop auth: stopped on its hub's thread outside the hub's tasks, where \
                 nothing can wait for its task: the task ends (and frees the ZAP endpoint) \
                 when the hub runs again"
            );
            return None;
        }
        Some(self.task.join())
    }

    /// Takes the outcome of a task that has ended by itself (its errors and panics were
    /// logged when they happened).
    fn collect(self) {
        debug_assert!(self.task.is_finished());
        let _ = self.task.join();
    }
}

impl Authenticator {
    /// An authenticator for `ctx`, not started, with no rules.
    pub fn new(ctx: &zmq::Context) -> Authenticator {
        Authenticator {
            ctx: ctx.clone(),
            shared: Arc::new(Shared::default()),
            running: None,
        }
    }

    /// Binds the ZAP endpoint and starts answering requests: as a may coroutine when called in
    /// one, as a task of the current hub when called in a hub task, otherwise on a thread
    /// named [`THREAD_NAME`]. Does nothing while it serves; once its task has ended (an error,
    /// its context terminated, its hub dropped: [`is_alive`](Self::is_alive) is false) it
    /// starts a new one, here.
    ///
    /// # Errors
    /// `EADDRINUSE` if another ZAP handler is bound in this context; the errors of creating
    /// the socket, its stop signal or its thread.
    pub fn start(&mut self) -> zmq::Result<()> {
        if self.is_alive() {
            return Ok(());
        }
        if let Some(ended) = self.running.take() {
            ended.collect();
        }
        let zap = self.ctx.socket(zmq::REP)?;
        zap.set_linger(0)?;
        zap.bind(ZAP_ENDPOINT)?;
        let stop = Arc::new(StopSignal::new().map_err(io_to_zmq)?);
        let task = {
            let stop = stop.clone();
            let shared = self.shared.clone();
            task::Builder::new()
                .name(THREAD_NAME)
                .spawn_here(move || server::serve(zap, &stop, &shared))
                .map_err(io_to_zmq)?
        };
        log::debug!("zmqloop auth: started ({:?})", task.runs_on());
        self.running = Some(Running { stop, task });
        Ok(())
    }

    /// Stops answering: the task unbinds the ZAP endpoint (free at once for another handler),
    /// refuses the requests still queued ([`Refusal::Stopping`], status 500) and ends. Does
    /// nothing if not started. Only the caller parks while it waits for the task (in a
    /// coroutine or hub task). An authenticator started in a hub task is stopped from a task
    /// of that hub or from another thread: the hub has to run the task to its end.
    ///
    /// # Errors
    /// The error that ended the task early, if one did (a context terminated is not one).
    /// `EFSM` if called on the thread of the hub that runs the task but outside that hub's
    /// tasks (the authenticator was handed out of `block_on`, say), where no wait could end:
    /// the stop is requested (logged at warn level), and the task ends and frees the endpoint
    /// when the hub runs again.
    ///
    /// # Panics
    /// With the task's panic, if it panicked.
    pub fn stop(&mut self) -> zmq::Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        match running.stop() {
            None => Err(zmq::Error::EFSM),
            Some(Ok(outcome)) => outcome,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }

    /// Whether it is started and still serving (pyzmq's `is_alive`): false before `start`,
    /// after `stop`, once its context has been terminated, and once its task has ended by
    /// itself (an error, a panic, its hub dropped; logged at error level). While it is false
    /// libzmq lets CURVE peers in unauthenticated (see the [module docs](self)): watch it,
    /// and [`start`](Self::start) it again.
    pub fn is_alive(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|running| !running.task.is_finished())
    }

    /// Where the serving task runs, while started.
    pub fn runs_on(&self) -> Option<RunsOn> {
        self.running.as_ref().map(|running| running.task.runs_on())
    }

    /// Allows these IP addresses (`"127.0.0.1"`, `"::1"`) and, from then on, only the addresses
    /// allowed (pyzmq's `allow`). For NULL that accepts them; PLAIN and CURVE peers from them
    /// must still authenticate.
    ///
    /// Addresses are compared as addresses, not text: `"127.0.0.1"` also matches the peer an
    /// IPv6 socket reports as `::ffff:127.0.0.1`, each spelling of an IPv6 address matches the
    /// others, and a `%scope` suffix (here or on the peer) is ignored.
    ///
    /// # Errors
    /// `InvalidInput`, naming it, for an entry that is not an IP address (a host name, a
    /// network, a typo); then none of `addresses` is added.
    pub fn allow<S: AsRef<str>>(&self, addresses: &[S]) -> io::Result<()> {
        let addresses = parse_addresses(addresses)?;
        let mut policy = self.policy();
        if !policy.denied.is_empty() {
            log::warn!("zmqloop auth: an allow list is set, so the deny list no longer applies");
        }
        policy.allowed.extend(addresses);
        Ok(())
    }

    /// Refuses these IP addresses (pyzmq's `deny`); not consulted while an allow list is set.
    /// Compared as in [`allow`](Self::allow).
    ///
    /// # Errors
    /// `InvalidInput`, naming it, for an entry that is not an IP address; then none of
    /// `addresses` is added.
    pub fn deny<S: AsRef<str>>(&self, addresses: &[S]) -> io::Result<()> {
        let addresses = parse_addresses(addresses)?;
        let mut policy = self.policy();
        if !policy.allowed.is_empty() {
            log::warn!("zmqloop auth: the deny list does not apply while an allow list is set");
        }
        policy.denied.extend(addresses);
        Ok(())
    }

    /// Sets the PLAIN users of `domain` (`"*"`: sockets with no ZAP domain), user name ->
    /// password, replacing the domain's previous users.
    pub fn configure_plain<I, U, P>(&self, domain: &str, passwords: I)
    where
        I: IntoIterator<Item = (U, P)>,
        U: Into<String>,
        P: Into<String>,
    {
        let users: HashMap<String, String> = passwords
            .into_iter()
            .map(|(user, password)| (user.into(), password.into()))
            .collect();
        self.policy().passwords.insert(domain.to_owned(), users);
    }

    /// Sets the CURVE clients that `domain` (`"*"`: sockets with no ZAP domain) lets in,
    /// replacing its previous setting.
    ///
    /// # Errors
    /// `Unsupported` if libzmq has no CURVE (the message says how to turn it on); for
    /// [`CurveAuth::Directory`], the errors of [`certs::load_certificates`] (a missing
    /// directory, a bad certificate), leaving the domain's setting unchanged.
    pub fn configure_curve(&self, domain: &str, auth: CurveAuth) -> io::Result<()> {
        require_curve()?;
        let keys = match auth {
            CurveAuth::AllowAny => CurveKeys::Any,
            CurveAuth::Keys(keys) => CurveKeys::Listed { keys, from: None },
            CurveAuth::Directory(dir) => CurveKeys::Listed {
                keys: certs::load_certificates(&dir)?,
                from: Some(dir),
            },
        };
        self.policy().curve.insert(domain.to_owned(), keys);
        Ok(())
    }

    /// Reads the certificate directories of every [`CurveAuth::Directory`] domain again, after
    /// certificates were added or removed.
    ///
    /// Directories are read without holding the rules' lock; a domain configured again
    /// meanwhile keeps its new setting (a revocation is never undone by a reload that had
    /// started before it).
    ///
    /// # Errors
    /// The first directory that fails to load; its domain keeps its previous keys (the others
    /// are reloaded all the same).
    pub fn reload_certificates(&self) -> io::Result<()> {
        let mut first_error = None;
        for (domain, dir) in self.directory_domains() {
            let loaded = certs::load_certificates(&dir); // no lock held while reading files
            if let Err(err) = self.install_reloaded(&domain, &dir, loaded) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The domains whose keys were read from a directory, with the directory.
    fn directory_domains(&self) -> Vec<(String, PathBuf)> {
        self.policy()
            .curve
            .iter()
            .filter_map(|(domain, keys)| match keys {
                CurveKeys::Listed {
                    from: Some(dir), ..
                } => Some((domain.clone(), dir.clone())),
                _ => None,
            })
            .collect()
    }

    /// Puts the keys `loaded` again from `dir` in place for `domain`, if the domain still
    /// takes its keys from `dir`: a setting made since the directory was listed (a
    /// `configure_curve` that revokes, allows any, or names another directory) is newer than
    /// what was read, and stays.
    fn install_reloaded(
        &self,
        domain: &str,
        dir: &Path,
        loaded: io::Result<HashSet<[u8; 32]>>,
    ) -> io::Result<()> {
        let keys = loaded.inspect_err(|err| {
            log::error!("zmqloop auth: keeping domain {domain:?}'s keys: {err}");
        })?;
        match self.policy().curve.get_mut(domain) {
            Some(CurveKeys::Listed {
                keys: current,
                from: Some(from),
            }) if from == dir => *current = keys,
            _ => log::debug!(
                "zmqloop auth: domain {domain:?} was configured again while {} was read; \
                 its new setting stays",
                dir.display()
            ),
        }
        Ok(())
    }

    /// The decisions so far (across restarts of this authenticator).
    pub fn statistics(&self) -> Statistics {
        self.shared.counters.snapshot()
    }

    fn policy(&self) -> RwLockWriteGuard<'_, Policy> {
        self.shared
            .policy
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("runs_on", &self.runs_on())
            .field("alive", &self.is_alive())
            .field("statistics", &self.statistics())
            .finish()
    }
}

impl Drop for Authenticator {
    /// Stops the authenticator (see [`stop`](Authenticator::stop)); an error or a panic that
    /// ended its task was logged when it happened. On the thread of the hub that runs the
    /// task, outside that hub's tasks, it does not wait (that wait could never end): the task
    /// ends when the hub runs again, as logged at warn level.
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop();
        }
    }
}

/// Every entry of an allow or deny list as an address, or the first that is not one.
fn parse_addresses<S: AsRef<str>>(entries: &[S]) -> io::Result<Vec<std::net::IpAddr>> {
    entries
        .iter()
        .map(|entry| address::parse_entry(entry.as_ref()))
        .collect()
}

/// An I/O error of starting (creating an eventfd or a thread) as the nearest `zmq::Error`;
/// the original is logged.
fn io_to_zmq(err: io::Error) -> zmq::Error {
    log::error!("zmqloop auth: cannot start: {err}");
    match err.kind() {
        io::ErrorKind::OutOfMemory => zmq::Error::ENOMEM,
        _ => zmq::Error::EMFILE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory holding one public certificate.
    fn directory_with_a_certificate(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zmqloop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        certs::create_certificates(&dir, "client").unwrap();
        dir
    }

    #[test]
    fn a_reload_does_not_undo_a_setting_made_while_it_read_the_directory() {
        let dir = directory_with_a_certificate("reload-race");
        let auth = Authenticator::new(&zmq::Context::new());
        let revoked = CurveKeys::Listed {
            keys: HashSet::new(),
            from: None,
        };
        let settings = [
            (CurveAuth::Keys(HashSet::new()), revoked),
            (CurveAuth::AllowAny, CurveKeys::Any),
        ];
        for (setting, expected) in settings {
            auth.configure_curve(DEFAULT_DOMAIN, CurveAuth::Directory(dir.clone()))
                .unwrap();
            let [(domain, listed)] = &auth.directory_domains()[..] else {
                panic!("one directory domain");
            };
            let loaded = certs::load_certificates(listed);
            // Between the reload's read and its install: a revocation, or AllowAny.
            auth.configure_curve(DEFAULT_DOMAIN, setting).unwrap();
            auth.install_reloaded(domain, listed, loaded).unwrap();
            assert_eq!(auth.policy().curve[DEFAULT_DOMAIN], expected);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
