//! The proxy loop: a [`Poller`] over frontend, backend and control, and bursts of whole
//! messages forwarded with green calls.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use zmq::{Message, Result};

use crate::poll::{PollTarget, Poller};
use crate::socket::Socket;

/// How many messages one direction forwards before the other gets a turn (libzmq: 1000).
const BURST: usize = 1000;

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
    pub(crate) fn run(self) -> Result<()> {
        let mut poller = Poller::new();
        self.listen(&mut poller, true)?;
        if let Some(control) = self.control {
            poller.register(control, zmq::POLLIN)?;
        }
        loop {
            poller.poll(-1)?;
            let (mut front_ready, mut back_ready, mut control_ready) = (false, false, false);
            for (target, _) in poller.ready() {
                if let PollTarget::Socket(socket) = target {
                    front_ready |= std::ptr::eq(socket, self.frontend);
                    back_ready |= std::ptr::eq(socket, self.backend);
                    control_ready |= self.control.is_some_and(|c| std::ptr::eq(socket, c));
                }
            }
            if control_ready {
                match self.read_command()? {
                    Some(Command::Terminate) => return Ok(()),
                    Some(Command::Pause) => self.listen(&mut poller, false)?,
                    Some(Command::Resume) => self.listen(&mut poller, true)?,
                    Some(Command::Statistics) => self.reply_statistics()?,
                    None => {}
                }
                continue; // the poller's set may have changed
            }
            if front_ready {
                self.forward(self.frontend, self.backend, 0)?;
            }
            if back_ready && !self.same_socket() {
                self.forward(self.backend, self.frontend, 4)?;
            }
        }
    }

    /// Polls (or, paused, stops polling) frontend and backend for input.
    fn listen(&self, poller: &mut Poller<'a>, active: bool) -> Result<()> {
        let events = if active {
            zmq::POLLIN
        } else {
            zmq::PollEvents::empty()
        };
        poller.register(self.frontend, events)?;
        poller.register(self.backend, events)
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
                self.copy_to_capture(&frame, more, first, side)?;
                first = false;
                let flags = if more { zmq::SNDMORE } else { 0 };
                to.send(std::mem::replace(&mut frame, Message::new()), flags)?;
                if !more {
                    break;
                }
                from.recv(&mut frame, 0)?; // the rest of a message is already there
            }
            self.statistics.count(side, bytes);
        }
        Ok(())
    }

    fn copy_to_capture(&self, frame: &Message, more: bool, first: bool, side: usize) -> Result<()> {
        let flags = if more { zmq::SNDMORE } else { 0 };
        match &self.capture {
            None => Ok(()),
            Some(Capture::Frames(capture)) => capture.send(&frame[..], flags),
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
                socket.send(&frame[..], flags)
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
                log::warn!("zmqloop: invalid command sent to proxy: {parts:?}");
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
