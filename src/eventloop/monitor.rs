//! Socket monitor events on the IOLoop: [`ZmqStream::on_monitor_event`], the callback form of
//! `zmqloop::green::monitor::recv_monitor_message`.

use zmqloop_green::monitor::{read_monitor_message, MonitorEvent};

use super::stream::ZmqStream;

impl ZmqStream {
    /// Calls `callback` with every event that arrives on this stream's socket, a monitor
    /// socket from `Socket::get_monitor_socket`: the events its mask asked for, as
    /// `recv_monitor_message` returns them (so `MONITOR_STOPPED` only if asked for). A message
    /// that is not a monitor event is logged (`warn`) and dropped.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use zmqloop::eventloop::{IOLoop, ZmqStream};
    /// use zmqloop::green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let ioloop = IOLoop::new().unwrap();
    /// let server = ctx.socket(zmq::ROUTER).unwrap();
    /// let events = ZmqStream::new(
    ///     server.get_monitor_socket(zmq::SocketEvent::ALL as i32).unwrap(),
    ///     &ioloop,
    /// )
    /// .unwrap();
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let (log, stopper) = (seen.clone(), ioloop.clone());
    /// events.on_monitor_event(move |event| {
    ///     log.borrow_mut().push(event.event);
    ///     stopper.stop();
    /// });
    /// server.bind("tcp://127.0.0.1:*").unwrap();
    /// ioloop.start().unwrap();
    /// assert_eq!(*seen.borrow(), [zmq::SocketEvent::LISTENING]);
    /// ```
    pub fn on_monitor_event(&self, mut callback: impl FnMut(MonitorEvent) + 'static) {
        self.on_recv_stream(move |stream, frames| {
            let message = match stream.socket() {
                Some(socket) => read_monitor_message(&socket, frames),
                None => Ok(MonitorEvent::from_frames(frames)),
            };
            match message {
                Ok(Ok(event)) => callback(event),
                Ok(Err(malformed)) => log::warn!(
                    "zmqloop: ZmqStream::on_monitor_event dropped a message: {malformed}"
                ),
                // The end of the events, in place of a MONITOR_STOPPED not asked for.
                Err(end) => {
                    log::debug!("zmqloop: ZmqStream::on_monitor_event: events ended ({end})")
                }
            }
        });
    }
}
