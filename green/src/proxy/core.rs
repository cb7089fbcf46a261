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

/// A side of the proxy: where a message came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Frontend,
    Backend,
}

impl Side {
    /// The side messages from this one go out on.
    fn other(self) -> Side {
        match self {
            Side::Frontend => Side::Backend,
            Side::Backend => Side::Frontend,
        }
    }
}

/// The live counters of one side.
#[derive(Debug, Default)]
struct SideCounters {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
}

impl SideCounters {
    fn snapshot(&self) -> SideStatistics {
        SideStatistics {
            messages_in: self.messages_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// Live counters, shared with whoever watches the proxy (a device handle).
#[derive(Debug, Default)]
pub(crate) struct SharedStatistics {
    frontend: SideCounters,
    backend: SideCounters,
}

impl SharedStatistics {
    pub(crate) fn snapshot(&self) -> ProxyStatistics {
        ProxyStatistics {
            frontend: self.frontend.snapshot(),
            backend: self.backend.snapshot(),
        }
    }

    fn side(&self, side: Side) -> &SideCounters {
        match side {
            Side::Frontend => &self.frontend,
            Side::Backend => &self.backend,
        }
    }

    /// Counts one message of `bytes` that came in on side `from` (and so went out on the
    /// other).
    fn count(&self, from: Side, bytes: u64) {
        let (came_in, went_out) = (self.side(from), self.side(from.other()));
        came_in.messages_in.fetch_add(1, Ordering::Relaxed);
        came_in.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        went_out.messages_out.fetch_add(1, Ordering::Relaxed);
        went_out.bytes_out.fetch_add(bytes, Ordering::Relaxed);
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
                    self.forward(self.frontend, self.backend, Side::Frontend)?;
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
                        self.forward(self.backend, self.frontend, Side::Backend)?;
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

    /// Forwards up to [`BURST`] whole messages from `from` to `to`; `side` is `from`'s.
    fn forward(&self, from: &Socket, to: &Socket, side: Side) -> Result<()> {
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
        side: Side,
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
                    let prefix = if side == Side::Frontend {
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
