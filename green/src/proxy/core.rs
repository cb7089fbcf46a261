//! The proxy loop: a [`Poller`] over frontend, backend and control, and bursts of whole
//! messages forwarded with green calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use zmq::{Message, Result};

use crate::poll::{PollTarget, Poller};
use crate::socket::{share_message, Socket};

/// How many messages one direction forwards before the other gets a turn (libzmq: 1000).
const BURST: usize = 1000;

/// Commands ignored by steerable proxies, process-wide: see [`unknown_proxy_commands`].
static UNKNOWN_COMMANDS: AtomicU64 = AtomicU64::new(0);

/// How many commands the steerable proxies of this process received on their control socket
/// and ignored because they were none of PAUSE, RESUME, TERMINATE and STATISTICS.
///
/// libzmq's own proxy aborts the process on such a command; a green proxy logs it (at warn
/// level), counts it here and goes on. A control socket of type REP then stays waiting for the
/// reply it owes (no reply is sent), as it does after PAUSE, RESUME or TERMINATE in libzmq.
pub fn unknown_proxy_commands() -> u64 {
    UNKNOWN_COMMANDS.load(Ordering::Relaxed)
}

/// Message and byte counts of one proxy side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SideStatistics {
    /// Messages received on this side (a multipart message counts once).
    pub messages_in: u64,
    /// Bytes received on this side (all frames).
    pub bytes_in: u64,
    /// Messages sent on this side.
    pub messages_out: u64,
    /// Bytes sent on this side.
    pub bytes_out: u64,
}

/// The counters a proxy reports to `STATISTICS`, in libzmq's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStatistics {
    /// The frontend's counts.
    pub frontend: SideStatistics,
    /// The backend's counts.
    pub backend: SideStatistics,
}

impl ProxyStatistics {
    /// The 8 values in the order of libzmq's `STATISTICS` reply.
    pub fn to_array(&self) -> [u64; 8] {
        let (f, b) = (&self.frontend, &self.backend);
        [
            f.messages_in,
            f.bytes_in,
            f.messages_out,
            f.bytes_out,
            b.messages_in,
            b.bytes_in,
            b.messages_out,
            b.bytes_out,
        ]
    }
}

/// Live counters, shared with whoever watches the proxy (a device handle).
#[derive(Debug, Default)]
pub(crate) struct SharedStatistics {
    values: [AtomicU64; 8],
}

impl SharedStatistics {
    pub(crate) fn snapshot(&self) -> ProxyStatistics {
        let v: Vec<u64> = self
            .values
            .iter()
            .map(|v| v.load(Ordering::Relaxed))
            .collect();
        let side = |o: usize| SideStatistics {
            messages_in: v[o],
            bytes_in: v[o + 1],
            messages_out: v[o + 2],
            bytes_out: v[o + 3],
        };
        ProxyStatistics {
            frontend: side(0),
            backend: side(4),
        }
    }

    /// Counts one message of `bytes` that came in on side `from` (0 frontend, 4 backend).
    fn count(&self, from: usize, bytes: u64) {
        let to = 4 - from;
        self.values[from].fetch_add(1, Ordering::Relaxed);
        self.values[from + 1].fetch_add(bytes, Ordering::Relaxed);
        self.values[to + 2].fetch_add(1, Ordering::Relaxed);
        self.values[to + 3].fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Where copies of the forwarded traffic go.
pub(crate) enum Capture<'a> {
    /// Every frame, as is (libzmq's capture socket).
    Frames(&'a Socket),
    /// Every message, preceded by a frame naming its direction (pyzmq's monitored queue).
    Tagged {
        socket: &'a Socket,
        frontend_prefix: &'a [u8],
        backend_prefix: &'a [u8],
    },
}

/// One proxy run, configured builder-style.
pub(crate) struct Proxy<'a> {
    frontend: &'a Socket,
    backend: &'a Socket,
    capture: Option<Capture<'a>>,
    control: Option<&'a Socket>,
    statistics: Arc<SharedStatistics>,
}

/// Which directions may forward now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flow {
    /// Not paused.
    active: bool,
    /// frontend -> backend waits for the backend's POLLOUT.
    forward_blocked: bool,
    /// backend -> frontend waits for the frontend's POLLOUT.
    backward_blocked: bool,
}

/// Whether `socket` can take a message now (one `ZMQ_EVENTS` read per burst).
fn writable(socket: &Socket) -> Result<bool> {
    Ok(socket.get_events()?.contains(zmq::POLLOUT))
}

/// What a control command asks of the loop.
enum Command {
    Pause,
    Resume,
    Terminate,
    Statistics,
}

impl<'a> Proxy<'a> {
    pub(crate) fn new(frontend: &'a Socket, backend: &'a Socket) -> Proxy<'a> {
        Proxy {
            frontend,
            backend,
            capture: None,
            control: None,
            statistics: Arc::default(),
        }
    }

    pub(crate) fn capture(mut self, capture: Capture<'a>) -> Self {
        self.capture = Some(capture);
        self
    }

    pub(crate) fn control(mut self, control: &'a Socket) -> Self {
        self.control = Some(control);
        self
    }

    pub(crate) fn statistics(mut self, statistics: Arc<SharedStatistics>) -> Self {
        self.statistics = statistics;
        self
    }

    fn same_socket(&self) -> bool {
        std::ptr::eq(self.frontend, self.backend)
    }

    /// Runs until TERMINATE (`Ok`) or an error (ETERM when the context is terminated).
    ///
    /// Like libzmq's proxy, a direction forwards only when its destination is writable: a
    /// direction whose destination is not waits for its POLLOUT (and stops reading its source)
    /// while the control socket and the other direction stay served. A burst that fills the
    /// destination half-way parks in its green send, as libzmq's blocks.
    pub(crate) fn run(self) -> Result<()> {
        let mut poller = Poller::new();
        let mut flow = Flow {
            active: true,
            forward_blocked: false,
            backward_blocked: false,
        };
        self.register(&mut poller, &flow)?;
        if let Some(control) = self.control {
            poller.register(control, zmq::POLLIN)?;
        }
        loop {
            poller.poll(-1)?;
            let (mut front, mut back, mut control_ready) =
                (zmq::PollEvents::empty(), zmq::PollEvents::empty(), false);
            for (target, events) in poller.ready() {
                if let PollTarget::Socket(socket) = target {
                    if std::ptr::eq(socket, self.frontend) {
                        front = events;
                    }
                    if std::ptr::eq(socket, self.backend) {
                        back = events;
                    }
                    control_ready |= self.control.is_some_and(|c| std::ptr::eq(socket, c));
                }
            }
            if control_ready {
                match self.read_command()? {
                    Some(Command::Terminate) => return Ok(()),
                    Some(Command::Pause) => flow.active = false,
                    Some(Command::Resume) => flow.active = true,
                    Some(Command::Statistics) => self.reply_statistics()?,
                    None => {}
                }
                self.register(&mut poller, &flow)?;
                continue;
            }
            if !flow.active {
                continue;
            }
            let before = flow;
            // frontend -> backend
            if flow.forward_blocked && back.contains(zmq::POLLOUT) {
                flow.forward_blocked = false;
            } else if !flow.forward_blocked && front.contains(zmq::POLLIN) {
                if writable(self.backend)? {
                    self.forward(self.frontend, self.backend, 0)?;
                } else {
                    flow.forward_blocked = true;
                }
            }
            // backend -> frontend
            if !self.same_socket() {
                if flow.backward_blocked && front.contains(zmq::POLLOUT) {
                    flow.backward_blocked = false;
                } else if !flow.backward_blocked && back.contains(zmq::POLLIN) {
                    if writable(self.frontend)? {
                        self.forward(self.backend, self.frontend, 4)?;
                    } else {
                        flow.backward_blocked = true;
                    }
                }
            }
            if flow != before {
                self.register(&mut poller, &flow)?;
            }
        }
    }

    /// Polls frontend and backend for what `flow` needs: the source of each unblocked direction
    /// for input, the destination of each blocked one for output; nothing while paused.
    fn register(&self, poller: &mut Poller<'a>, flow: &Flow) -> Result<()> {
        let (mut front, mut back) = (zmq::PollEvents::empty(), zmq::PollEvents::empty());
        if flow.active {
            if flow.forward_blocked {
                back |= zmq::POLLOUT;
            } else {
                front |= zmq::POLLIN;
            }
            if !self.same_socket() {
                if flow.backward_blocked {
                    front |= zmq::POLLOUT;
                } else {
                    back |= zmq::POLLIN;
                }
            }
        }
        if self.same_socket() {
            return poller.register(self.frontend, front | back);
        }
        poller.register(self.frontend, front)?;
        poller.register(self.backend, back)
    }

    /// Forwards up to [`BURST`] whole messages from `from` to `to`. `side` is the statistics
    /// offset of `from` (0 frontend, 4 backend).
    fn forward(&self, from: &Socket, to: &Socket, side: usize) -> Result<()> {
        for _ in 0..BURST {
            let mut frame = Message::new();
            match from.recv(&mut frame, zmq::DONTWAIT) {
                Err(zmq::Error::EAGAIN) => return Ok(()), // end of the burst
                Err(err) => return Err(err),
                Ok(()) => {}
            }
            let mut bytes = 0u64;
            let mut first = true;
            loop {
                let more = frame.get_more();
                bytes += frame.len() as u64;
                self.copy_to_capture(&mut frame, more, first, side)?;
                first = false;
                let flags = if more { zmq::SNDMORE } else { 0 };
                if !more {
                    // Counted before the last frame leaves: whoever receives the message and
                    // then reads the statistics sees it counted.
                    self.statistics.count(side, bytes);
                }
                to.send(std::mem::replace(&mut frame, Message::new()), flags)?;
                if !more {
                    break;
                }
                from.recv(&mut frame, zmq::DONTWAIT)?; // the rest of a message is there
            }
        }
        Ok(())
    }

    /// Sends the capture socket a copy of `frame` that shares its content (no byte copy).
    fn copy_to_capture(
        &self,
        frame: &mut Message,
        more: bool,
        first: bool,
        side: usize,
    ) -> Result<()> {
        let flags = if more { zmq::SNDMORE } else { 0 };
        match &self.capture {
            None => Ok(()),
            Some(Capture::Frames(capture)) => capture.send(share_message(frame)?, flags),
            Some(Capture::Tagged {
                socket,
                frontend_prefix,
                backend_prefix,
            }) => {
                if first {
                    let prefix = if side == 0 {
                        frontend_prefix
                    } else {
                        backend_prefix
                    };
                    socket.send(*prefix, zmq::SNDMORE)?;
                }
                socket.send(share_message(frame)?, flags)
            }
        }
    }

    fn read_command(&self) -> Result<Option<Command>> {
        let control = self.control.expect("control is polled only when set");
        let parts = control.recv_multipart(zmq::DONTWAIT);
        let parts = match parts {
            Err(zmq::Error::EAGAIN) => return Ok(None),
            other => other?,
        };
        let command = match parts.first().map(Vec::as_slice) {
            Some(b"PAUSE") => Command::Pause,
            Some(b"RESUME") => Command::Resume,
            Some(b"TERMINATE") => Command::Terminate,
            Some(b"STATISTICS") => Command::Statistics,
            _ => {
                let total = UNKNOWN_COMMANDS.fetch_add(1, Ordering::Relaxed) + 1;
                log::warn!(
                    "zmqloop: invalid command sent to proxy, ignored: {parts:?} ({total} so far)"
                );
                return Ok(None);
            }
        };
        Ok(Some(command))
    }

    fn reply_statistics(&self) -> Result<()> {
        let control = self.control.expect("control is polled only when set");
        let values = self.statistics.snapshot().to_array();
        control.send_multipart(values.iter().map(|v| v.to_ne_bytes().to_vec()), 0)
    }
}
