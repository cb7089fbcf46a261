//! Socket monitoring: [`Socket::monitor`], [`Socket::get_monitor_socket`] and
//! [`Socket::disable_monitor`], with a teardown that cannot hang libzmq.
//!
//! # Why monitoring needs care (libzmq 4.3)
//! `zmq_socket_monitor` makes the monitored socket own a hidden PAIR socket bound at the
//! monitor endpoint, and every event is a *blocking* send on it, made by whichever thread
//! notices the event (often libzmq's I/O thread) while it holds the socket's monitor lock. So:
//! - if the user's PAIR is closed while monitoring is on, the next event blocks that thread
//!   forever: libzmq's I/O thread stops serving every socket of the context, and closing the
//!   monitored socket or terminating the context then hangs too (libzmq #3575);
//! - if nobody reads the events, the same happens once the pipe's high-water mark is reached.
//!
//! The monitor socket [`Socket::get_monitor_socket`] hands out therefore has an unlimited
//! receive queue (`RCVHWM` 0: unread events cost memory, never a stalled I/O thread), and it is
//! tied to the socket it monitors by a [`Link`]: whichever of the two is closed first turns
//! monitoring off (`zmq_socket_monitor(socket, NULL, 0)`) before anything is closed, so the
//! hidden PAIR never outlives its reader. Context termination stops monitoring inside libzmq
//! (every socket gets ETERM and drops its monitor), so closing in any order is safe.
//!
//! # The end of the events
//! Once monitoring stops, libzmq sends nothing more, and a reader waiting for an event would
//! wait forever. So `get_monitor_socket` always asks libzmq for `MONITOR_STOPPED`, its last
//! word, and the reader's side ([`Reading`]) remembers it: `recv_monitor_message` hands it on
//! only to a reader that asked for it, and from then on (or at once, for a reader that did
//! not ask) answers `ENOTCONN` instead of waiting.

use std::cell::{Cell, RefCell};
use std::os::raw::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use zmq::Result;

use super::Socket;
use crate::errors::zmq_errno;

/// A socket's ends of monitor links (a field of every [`Socket`]).
#[derive(Default)]
pub(crate) struct MonitorLinks {
    /// On a monitored socket: the link to the monitor socket `get_monitor_socket` handed out
    /// last. Replaced by the next `get_monitor_socket`, taken by `monitor`, `disable_monitor`
    /// and the socket's close.
    monitored_by: RefCell<Option<Arc<Link>>>,
    /// On a monitor socket made by `get_monitor_socket`: the monitoring it reads.
    monitoring: Option<Reading>,
}

/// A monitor socket's end of its [`Link`]: what its reader asked for and whether the events
/// have ended.
struct Reading {
    /// The link to the socket it monitors.
    link: Arc<Link>,
    /// The reader's mask has `MONITOR_STOPPED`. libzmq is always asked for it (it marks the
    /// end of the events); readers that did not ask get `ENOTCONN` in its place.
    shows_stopped: bool,
    /// `MONITOR_STOPPED` has been received: libzmq has closed its end of the monitor
    /// endpoint, nothing more can arrive, and every read answers `ENOTCONN`.
    ended: Cell<bool>,
}

/// What a monitored socket and its monitor socket share.
pub(crate) struct Link {
    /// The monitored libzmq socket while monitoring through this link is on. Invariant: while
    /// `Some`, the pointer is an open socket: every path that closes the monitored socket (or
    /// starts another monitor on it) takes it out first, under this lock, and whoever takes it
    /// out keeps holding the lock for as long as it uses the pointer.
    target: Mutex<Option<Target>>,
}

/// A monitored socket's pointer, handed to the thread that ends monitoring.
struct Target(*mut c_void);

// SAFETY: the only call made through the pointer is `zmq_socket_monitor(target, NULL, 0)`,
// which libzmq serialises with the socket's own event sends under its monitor mutex (the same
// lock that lets libzmq's I/O thread emit events while the owner uses the socket), and the
// link's invariant keeps the socket open while the pointer is reachable.
unsafe impl Send for Target {}

impl Link {
    fn lock(&self) -> MutexGuard<'_, Option<Target>> {
        self.target.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Turns monitoring through this link off, if it still is on.
    fn stop(&self) {
        // The guard is named so that it lives to the end of this function: the socket's own
        // close waits for this lock before it closes the socket (see `Link::target`).
        let mut target = self.lock();
        if let Some(Target(socket)) = target.take() {
            // SAFETY: `socket` was in the link until just now, so it is open; `target` (the
            // guard) is held across the call, so the socket's close, which takes it out under
            // the same lock, cannot run until monitoring is off.
            unsafe { stop_monitoring(socket) };
        }
        drop(target);
    }
}

impl MonitorLinks {
    /// Ends every link of a socket about to be closed or handed out raw (`into_raw`): after
    /// this, neither end can reach the socket's pointer.
    pub(crate) fn end(&mut self) {
        if let Some(link) = self.monitored_by.get_mut().take() {
            link.stop();
        }
        if let Some(reading) = self.monitoring.take() {
            reading.link.stop();
        }
    }

    /// EINVAL on a monitor socket while monitoring through it is on: its one connection is
    /// to the monitor endpoint, and disconnecting it would leave libzmq's hidden PAIR without
    /// a reader.
    pub(crate) fn check_disconnect(&self) -> Result<()> {
        match &self.monitoring {
            Some(reading) if reading.link.lock().is_some() => {
                log::debug!("zmqloop: refused to disconnect a monitor socket in use");
                Err(zmq::Error::EINVAL)
            }
            _ => Ok(()),
        }
    }
}

/// `zmq_socket_monitor(socket, NULL, 0)`: stops the socket's monitor (libzmq closes its hidden
/// PAIR, after sending `MONITOR_STOPPED` if that event was asked for).
///
/// # Safety
/// `socket` is an open libzmq socket, and stays open until this returns: the caller owns it
/// (`&self` of its `Socket`) or holds the lock of the [`Link`] it came from.
unsafe fn stop_monitoring(socket: *mut c_void) {
    // SAFETY: the caller keeps `socket` open for the call (above); a null endpoint is
    // libzmq's documented-in-code way to deregister the monitor.
    let rc = unsafe { zmq_sys::zmq_socket_monitor(socket, std::ptr::null(), 0) };
    if rc == -1 {
        // ETERM: the context's termination already stopped the monitor.
        log::debug!("zmqloop: stopping a socket monitor: {}", zmq_errno());
    }
}

/// A fresh monitor endpoint name.
fn next_endpoint() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "inproc://zmqloop-monitor-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Socket {
    /// Publishes this socket's `events` (a mask of `zmq::SocketEvent`s) on a PAIR socket
    /// bound at `monitor_endpoint` (an `inproc://` address), as `zmq::Socket::monitor` does.
    ///
    /// Prefer [`get_monitor_socket`](Socket::get_monitor_socket): with this call, closing your
    /// PAIR while monitoring is on hangs libzmq's I/O thread at the next event (call
    /// [`disable_monitor`](Socket::disable_monitor) first), and so does leaving more than
    /// about 2000 events unread. This call replaces a monitor started by
    /// `get_monitor_socket`.
    pub fn monitor(&self, monitor_endpoint: &str, events: i32) -> Result<()> {
        self.replace_monitor(|| self.inner.monitor(monitor_endpoint, events))
    }

    /// Starts monitoring this socket and returns a green PAIR socket that receives its
    /// `events` (a mask of `zmq::SocketEvent`s; `SocketEvent::ALL as i32` for all), as pyzmq's
    /// `socket.get_monitor_socket` does. Read them with
    /// [`recv_monitor_message`](crate::monitor::recv_monitor_message).
    ///
    /// The two sockets may be closed in any order, and the context terminated at any point:
    /// whichever socket goes first turns monitoring off, so libzmq never blocks on an event
    /// nobody can read (libzmq #3575). Unread events queue without limit (the monitor socket's
    /// `RCVHWM` is 0) rather than stall libzmq's I/O thread. Calling this again replaces the
    /// previous monitor (which gets `MONITOR_STOPPED` if it asked for it, and nothing after).
    /// When monitoring stops, a reader never waits for events that cannot come:
    /// `recv_monitor_message` then answers `ENOTCONN` (after `MONITOR_STOPPED`, if `events`
    /// has it). Since zmqloop asks libzmq for `MONITOR_STOPPED` in every case, a raw receive
    /// on the monitor socket sees it even where `events` lacks it.
    ///
    /// Disconnecting the monitor socket fails with `EINVAL` while monitoring through it is on.
    ///
    /// # Errors
    /// `EINVAL` for events outside `0..=0xFFFF`, `ENOTSUP` on a socket made by
    /// [`Socket::from_raw`] (it has no context to create the monitor socket in), `EMFILE` when
    /// the context's socket limit leaves no room for the two sockets of a monitor (the monitor
    /// socket and libzmq's end of the monitor endpoint), `ETERM` once the context is being
    /// terminated.
    ///
    /// A previous monitor is replaced only by a call that succeeds, except where libzmq has
    /// already stopped it when the error comes: libzmq stops the previous monitor before it
    /// creates its end of the new one, so `EMFILE` for that end, or `ETERM` from the monitor
    /// socket's connection (the one way it can fail: the context's termination, which stops
    /// every monitor anyway), leaves this socket unmonitored. The previous monitor's reader
    /// then sees the end of its events, as after any stop.
    ///
    /// ```
    /// use zmqloop_green as zmq;
    /// use zmq::monitor::recv_monitor_message;
    ///
    /// let ctx = zmq::Context::new();
    /// let server = ctx.socket(zmq::REP).unwrap();
    /// let endpoint = "tcp://127.0.0.1:*";
    /// let events = server
    ///     .get_monitor_socket(zmq::SocketEvent::LISTENING as i32 | zmq::SocketEvent::ACCEPTED as i32)
    ///     .unwrap();
    /// server.bind(endpoint).unwrap();
    /// let client = ctx.socket(zmq::REQ).unwrap();
    /// client.connect(&server.get_last_endpoint().unwrap().unwrap()).unwrap();
    ///
    /// let listening = recv_monitor_message(&events, 0).unwrap().unwrap();
    /// assert_eq!(listening.event, zmq::SocketEvent::LISTENING);
    /// let accepted = recv_monitor_message(&events, 0).unwrap().unwrap();
    /// assert_eq!(accepted.event, zmq::SocketEvent::ACCEPTED);
    /// ```
    pub fn get_monitor_socket(&self, events: i32) -> Result<Socket> {
        self.get_monitor_socket_with(events, |monitor, endpoint| monitor.connect(endpoint))
    }

    /// [`get_monitor_socket`](Socket::get_monitor_socket), connecting the monitor socket to
    /// the monitor endpoint with `connect` (unit tests make it fail).
    ///
    /// The order is libzmq's bind (in `zmq_socket_monitor`), then our connect. Connecting
    /// first would keep a previous monitor when the connect fails, but would leave a pending
    /// inproc connection in the context whenever `zmq_socket_monitor` then fails (`EMFILE`,
    /// `ETERM`): libzmq keeps those until the context's termination, which then creates one
    /// socket per pending connection and asserts that it could (an abort at the socket
    /// limit), or, if the termination has already passed that step, waits forever for the
    /// monitor socket. The connect after the bind fails only when the context is being
    /// terminated, and then every monitor stops anyway.
    fn get_monitor_socket_with(
        &self,
        events: i32,
        connect: impl FnOnce(&Socket, &str) -> Result<()>,
    ) -> Result<Socket> {
        let context = self.context.as_ref().ok_or(zmq::Error::ENOTSUP)?;
        let mut monitor = context.socket(zmq::PAIR)?;
        monitor.set_rcvhwm(0)?;
        let endpoint = next_endpoint();
        let stopped = zmq::SocketEvent::MONITOR_STOPPED as i32;
        self.replace_monitor(|| self.inner.monitor(&endpoint, events | stopped))?;
        if let Err(err) = connect(&monitor, &endpoint) {
            // The context is being terminated: libzmq's MONITOR_STOPPED, which nobody can
            // read, fails with ETERM instead of waiting for a reader.
            // SAFETY: `self.raw` is this socket's own pointer, open while `&self` lives.
            unsafe { stop_monitoring(self.raw) };
            return Err(err);
        }
        let link = Arc::new(Link {
            target: Mutex::new(Some(Target(self.raw))),
        });
        *self.monitor_links.monitored_by.borrow_mut() = Some(link.clone());
        monitor.monitor_links.monitoring = Some(Reading {
            link,
            shows_stopped: events & stopped != 0,
            ended: Cell::new(false),
        });
        Ok(monitor)
    }

    /// On a monitor socket from `get_monitor_socket`: `ENOTCONN` once its events have ended
    /// (see [`Reading`]). Other sockets: always `Ok`.
    pub(crate) fn check_monitor_events_open(&self) -> Result<()> {
        match &self.monitor_links.monitoring {
            Some(reading) if reading.ended.get() => Err(zmq::Error::ENOTCONN),
            _ => Ok(()),
        }
    }

    /// Notes that `MONITOR_STOPPED` was received on this socket. On a monitor socket from
    /// `get_monitor_socket` its events have now ended, and `ENOTCONN` stands in for the event
    /// if its reader did not ask for it; on other sockets the event is the user's own.
    pub(crate) fn monitor_stopped_received(&self) -> Result<()> {
        let Some(reading) = &self.monitor_links.monitoring else {
            return Ok(());
        };
        reading.ended.set(true);
        if reading.shows_stopped {
            Ok(())
        } else {
            Err(zmq::Error::ENOTCONN)
        }
    }

    /// Stops monitoring this socket (pyzmq's `socket.disable_monitor`): libzmq closes its end
    /// of the monitor endpoint, after sending `MONITOR_STOPPED` if that event was asked for.
    /// The monitor socket then receives nothing more and can be closed at leisure; on one from
    /// [`get_monitor_socket`](Socket::get_monitor_socket), `recv_monitor_message` answers
    /// `ENOTCONN` once the events have ended. Stopping a socket that is not monitored does
    /// nothing.
    ///
    /// ```
    /// use zmqloop_green as zmq;
    /// use zmq::monitor::recv_monitor_message;
    ///
    /// let ctx = zmq::Context::new();
    /// let socket = ctx.socket(zmq::DEALER).unwrap();
    /// let events = socket.get_monitor_socket(zmq::SocketEvent::ALL as i32).unwrap();
    /// socket.disable_monitor().unwrap();
    /// let stopped = recv_monitor_message(&events, 0).unwrap().unwrap();
    /// assert_eq!(stopped.event, zmq::SocketEvent::MONITOR_STOPPED);
    /// // The events have ended: reading on fails at once instead of waiting forever.
    /// assert_eq!(recv_monitor_message(&events, 0), Err(zmq::Error::ENOTCONN));
    /// ```
    pub fn disable_monitor(&self) -> Result<()> {
        self.replace_monitor(|| {
            // SAFETY: `self.raw` is this socket's own pointer, open while `&self` lives.
            unsafe { stop_monitoring(self.raw) };
            Ok(())
        })
    }

    /// Runs `start`, which starts or stops a monitor on this socket, while the link to the
    /// current `get_monitor_socket` monitor (if any) is held, so that its monitor socket cannot
    /// stop the new monitor; once `start` succeeds that link is ended (libzmq has already
    /// stopped its monitor). If `start` fails, the link stays: its monitor runs on, unless
    /// libzmq stopped it before failing (see `get_monitor_socket`), and then stopping it
    /// again through the link does nothing.
    fn replace_monitor(&self, start: impl FnOnce() -> Result<()>) -> Result<()> {
        let current = self.monitor_links.monitored_by.borrow_mut().take();
        let mut target = current.as_ref().map(|link| link.lock());
        let started = start();
        match (started, target.as_mut()) {
            (Ok(()), Some(target)) => drop(target.take()), // libzmq stopped that monitor
            (Ok(()), None) => {}
            (Err(_), _) => {
                drop(target);
                *self.monitor_links.monitored_by.borrow_mut() = current;
            }
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::monitor::recv_monitor_message;
    use crate::{Context, SocketEvent};

    /// The monitor socket's connection fails only while the context is being terminated:
    /// played for real, by shutting the context down just before it. Runs on a thread of its
    /// own, so that a hang fails the test instead of stalling it.
    #[test]
    fn a_monitor_socket_that_cannot_connect_is_eterm_and_ends_the_previous_monitor() {
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let ctx = Context::new();
            let socket = ctx.socket(zmq::DEALER).unwrap();
            let previous = socket
                .get_monitor_socket(SocketEvent::CONNECTED as i32)
                .unwrap();
            let failed = socket.get_monitor_socket_with(SocketEvent::ALL as i32, |monitor, to| {
                ctx.shutdown();
                monitor.connect(to)
            });
            assert_eq!(failed.map(drop), Err(zmq::Error::ETERM));
            // libzmq stopped the previous monitor before the failure: its reader sees the end.
            assert_eq!(
                recv_monitor_message(&previous, zmq::DONTWAIT),
                Err(zmq::Error::ENOTCONN)
            );
            // The order that hangs while a monitor is left without its reader.
            drop(previous);
            drop(socket);
            drop(ctx);
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the test body finished (a panic or a hang otherwise)");
    }
}
