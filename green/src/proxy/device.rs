//! Devices: a forwarder started in one call, running beside the caller (pyzmq's
//! `zmq.devices`): a may coroutine when started from one, a task of the same hub when started
//! from a hub task, a thread of its own (`zmqloop-device`) when started from plain code.
//!
//! ```
//! use zmqloop_green as zmq;
//!
//! let ctx = zmq::Context::new();
//! let device = zmq::device::Device::streamer()
//!     .bind_in("inproc://device-doc-in")
//!     .bind_out("inproc://device-doc-out")
//!     .start(&ctx)
//!     .unwrap();
//! let push = ctx.socket(zmq::PUSH).unwrap();
//! push.connect("inproc://device-doc-in").unwrap();
//! let pull = ctx.socket(zmq::PULL).unwrap();
//! pull.connect("inproc://device-doc-out").unwrap();
//! push.send("through the device", 0).unwrap();
//! assert_eq!(pull.recv_string(0).unwrap().unwrap(), "through the device");
//! assert_eq!(device.statistics().frontend.messages_in, 1);
//! device.stop().unwrap();
//! ```
//!
//! A [`Device`] describes both sides (socket types, binds, connects, options) and an optional
//! monitor; [`Device::start`] creates and sets up the sockets at once (so a bad endpoint is an
//! error of `start`, not of a task nobody watches), then runs the proxy loop of this module's
//! parent on the caller's scheduler ([`crate::task::spawn_here`]). The returned
//! [`DeviceHandle`] reports live message counts and stops the device through an internal
//! inproc control socket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use zmq::{Result, SocketType};

use super::core::SharedStatistics;
use super::{Capture, Proxy, ProxyStatistics};
use crate::context::Context;
use crate::socket::Socket;
use crate::task::{self, Task};

/// A socket option setter applied to one side before it binds or connects.
type SetOption = Box<dyn FnOnce(&Socket) -> Result<()> + Send>;

/// How one side of a device is set up.
struct Side {
    socket_type: SocketType,
    binds: Vec<String>,
    connects: Vec<String>,
    options: Vec<SetOption>,
}

impl Side {
    fn new(socket_type: SocketType) -> Side {
        Side {
            socket_type,
            binds: Vec::new(),
            connects: Vec::new(),
            options: Vec::new(),
        }
    }

    /// Creates the socket, applies the options, binds and connects; returns it with the
    /// endpoint it last bound to (read before connecting: `ZMQ_LAST_ENDPOINT` also names
    /// connected endpoints).
    fn open(self, ctx: &Context) -> Result<(Socket, Option<String>)> {
        let socket = ctx.socket(self.socket_type)?;
        for set in self.options {
            set(&socket)?;
        }
        for endpoint in &self.binds {
            socket.bind(endpoint)?;
        }
        let bound = if self.binds.is_empty() {
            None
        } else {
            socket.get_last_endpoint()?.ok()
        };
        for endpoint in &self.connects {
            socket.connect(endpoint)?;
        }
        Ok((socket, bound))
    }
}

/// A monitor: a PUB socket bound at `endpoint` that gets every message, tagged with the prefix
/// of the side it came in on.
struct Monitor {
    endpoint: String,
    in_prefix: Vec<u8>,
    out_prefix: Vec<u8>,
}

/// A forwarding device, to be [started](Device::start). See the [module docs](self).
pub struct Device {
    input: Side,
    output: Side,
    monitor: Option<Monitor>,
}

impl Device {
    /// A device with the given socket types for its in (frontend) and out (backend) sides.
    pub fn new(in_type: SocketType, out_type: SocketType) -> Device {
        Device {
            input: Side::new(in_type),
            output: Side::new(out_type),
            monitor: None,
        }
    }

    /// A request queue: ROUTER in, DEALER out (zguide's broker).
    pub fn queue() -> Device {
        Device::new(zmq::ROUTER, zmq::DEALER)
    }

    /// A pub/sub forwarder: XSUB in, XPUB out (subscriptions flow back upstream).
    pub fn forwarder() -> Device {
        Device::new(zmq::XSUB, zmq::XPUB)
    }

    /// A pipeline streamer: PULL in, PUSH out.
    pub fn streamer() -> Device {
        Device::new(zmq::PULL, zmq::PUSH)
    }

    /// Binds the in side to `endpoint` (may be called several times).
    pub fn bind_in(mut self, endpoint: &str) -> Device {
        self.input.binds.push(endpoint.to_owned());
        self
    }

    /// Connects the in side to `endpoint`.
    pub fn connect_in(mut self, endpoint: &str) -> Device {
        self.input.connects.push(endpoint.to_owned());
        self
    }

    /// Binds the out side to `endpoint`.
    pub fn bind_out(mut self, endpoint: &str) -> Device {
        self.output.binds.push(endpoint.to_owned());
        self
    }

    /// Connects the out side to `endpoint`.
    pub fn connect_out(mut self, endpoint: &str) -> Device {
        self.output.connects.push(endpoint.to_owned());
        self
    }

    /// Sets options on the in socket before it binds or connects, e.g.
    /// `.set_in(|s| s.set_rcvhwm(100))`.
    pub fn set_in(mut self, set: impl FnOnce(&Socket) -> Result<()> + Send + 'static) -> Device {
        self.input.options.push(Box::new(set));
        self
    }

    /// Sets options on the out socket before it binds or connects.
    pub fn set_out(mut self, set: impl FnOnce(&Socket) -> Result<()> + Send + 'static) -> Device {
        self.output.options.push(Box::new(set));
        self
    }

    /// Copies every message to a PUB socket bound at `endpoint`, as one multipart message
    /// whose first frame is `in_prefix` for traffic from the in side and `out_prefix` for
    /// traffic from the out side (pyzmq's monitored queue).
    pub fn monitor(mut self, endpoint: &str, in_prefix: &[u8], out_prefix: &[u8]) -> Device {
        self.monitor = Some(Monitor {
            endpoint: endpoint.to_owned(),
            in_prefix: in_prefix.to_vec(),
            out_prefix: out_prefix.to_vec(),
        });
        self
    }

    /// Creates the sockets (binding and connecting them now) and starts forwarding on the
    /// caller's scheduler: a may coroutine, a task of the caller's hub, or a thread named
    /// `zmqloop-device` when called outside both.
    ///
    /// # Errors
    /// What creating, setting up, binding or connecting a socket returns (EADDRINUSE,
    /// EINVAL for a bad endpoint...), or EMFILE/ENOMEM when no task can be started.
    pub fn start(self, ctx: &Context) -> Result<DeviceHandle> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let control_endpoint = format!(
            "inproc://zmqloop-device-control-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (frontend, in_endpoint) = self.input.open(ctx)?;
        let (backend, out_endpoint) = self.output.open(ctx)?;
        let monitor = match self.monitor {
            None => None,
            Some(monitor) => {
                let socket = ctx.socket(zmq::PUB)?;
                socket.bind(&monitor.endpoint)?;
                Some((socket, monitor.in_prefix, monitor.out_prefix))
            }
        };
        let control = ctx.socket(zmq::PAIR)?;
        control.bind(&control_endpoint)?;
        let remote = ctx.socket(zmq::PAIR)?;
        remote.connect(&control_endpoint)?;

        let statistics = Arc::new(SharedStatistics::default());
        let shared = statistics.clone();
        let forwarding = task::Builder::new().name("zmqloop-device");
        let forwarding = forwarding.spawn_here(move || {
            let mut proxy = Proxy::new(&frontend, &backend)
                .control(&control)
                .statistics(shared);
            if let Some((socket, in_prefix, out_prefix)) = &monitor {
                proxy = proxy.capture(Capture::Tagged {
                    socket,
                    frontend_prefix: in_prefix,
                    backend_prefix: out_prefix,
                });
            }
            let outcome = proxy.run();
            if let Err(err) = &outcome {
                log::debug!("zmqloop: device stopped: {err}");
            }
            outcome
        });
        let forwarding = forwarding.map_err(|err| crate::errors::from_io(&err))?;
        Ok(DeviceHandle {
            statistics,
            control: Mutex::new(remote),
            forwarding,
            in_endpoint,
            out_endpoint,
        })
    }
}

/// A running device: live counts, and a way to stop it.
///
/// Dropping the handle leaves the device running until its context is terminated.
pub struct DeviceHandle {
    statistics: Arc<SharedStatistics>,
    control: Mutex<Socket>,
    /// The forwarding loop, on the scheduler `start` was called from.
    forwarding: Task<Result<()>>,
    in_endpoint: Option<String>,
    out_endpoint: Option<String>,
}

impl DeviceHandle {
    /// The endpoint the in side last bound to, with an ephemeral port resolved (so
    /// `.bind_in("tcp://127.0.0.1:*")` can be connected to); `None` if it only connected.
    pub fn in_endpoint(&self) -> Option<&str> {
        self.in_endpoint.as_deref()
    }

    /// The endpoint the out side last bound to; see [`in_endpoint`](DeviceHandle::in_endpoint).
    pub fn out_endpoint(&self) -> Option<&str> {
        self.out_endpoint.as_deref()
    }

    /// Messages and bytes forwarded so far (in side = frontend, out side = backend).
    pub fn statistics(&self) -> ProxyStatistics {
        self.statistics.snapshot()
    }

    /// Where the device forwards: a may coroutine, a hub task or its own thread, depending on
    /// where [`Device::start`] was called.
    pub fn runs_on(&self) -> task::RunsOn {
        self.forwarding.runs_on()
    }

    /// Whether the device still forwards.
    pub fn is_running(&self) -> bool {
        !self.forwarding.is_finished()
    }

    /// Stops the device and waits for it (parking only the caller inside a coroutine).
    /// Returns how the device ended: `Ok` when stopped by this call, or the error that had
    /// stopped it before (ETERM...).
    ///
    /// # Panics
    /// With the device's panic; and, rather than wait for good, where no wait could end: a
    /// device started in a hub task, stopped on that hub's thread outside its tasks (see
    /// [`Task::can_join_here`]).
    pub fn stop(self) -> Result<()> {
        if !self.forwarding.is_finished() {
            let control = self.control.lock().unwrap_or_else(|e| e.into_inner());
            match control.send("TERMINATE", zmq::DONTWAIT) {
                Ok(()) | Err(zmq::Error::ETERM) => {}
                Err(err) => return Err(err),
            }
        }
        match self.forwarding.join() {
            Ok(outcome) => outcome,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Runs a monitored queue in the calling coroutine (pyzmq's `monitored_queue`): forwards whole
/// messages between `in_socket` and `out_socket` like [`proxy`](crate::proxy), and sends each
/// message to `monitor` too, preceded by a frame `in_prefix` (traffic from `in_socket`) or
/// `out_prefix` (traffic from `out_socket`). Returns only with an error (ETERM when the context
/// is terminated).
pub fn monitored_queue(
    in_socket: &Socket,
    out_socket: &Socket,
    monitor: &Socket,
    in_prefix: &[u8],
    out_prefix: &[u8],
) -> Result<()> {
    Proxy::new(in_socket, out_socket)
        .capture(Capture::Tagged {
            socket: monitor,
            frontend_prefix: in_prefix,
            backend_prefix: out_prefix,
        })
        .run()
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = |side: &Side| (side.socket_type, side.binds.clone(), side.connects.clone());
        f.debug_struct("Device")
            .field("in", &side(&self.input))
            .field("out", &side(&self.output))
            .field("monitor", &self.monitor.as_ref().map(|m| &m.endpoint))
            .finish()
    }
}

impl std::fmt::Debug for DeviceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceHandle")
            .field("forwarding", &self.forwarding)
            .field("in_endpoint", &self.in_endpoint)
            .field("out_endpoint", &self.out_endpoint)
            .field("statistics", &self.statistics())
            .finish()
    }
}
