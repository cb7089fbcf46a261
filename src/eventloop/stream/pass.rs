//! A stream's pass: the rounds that receive and send for a [`ZmqStream`] when its loop says
//! the socket may be ready (the pass's design is the parent module's doc), and what a pass
//! leaves behind: each send's report to its callback, the receive buffer kept for reuse, the
//! fd watch of a send whose `POLLOUT` lied, and the handler rearmed for exactly what is still
//! wanted.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use zmqloop_green::{Message, PollEvents, Socket, DONTWAIT, POLLIN, POLLOUT};

use super::outgoing::{ByteFrames, Outgoing, Unsent};
use super::sending::{try_send, Sent};
use super::{log_panic, RecvCallback, ZmqStream};

/// How many rounds (a receive, then a send) a pass makes at most while its loop has nothing else
/// to do; with anything else to do, a pass makes one.
const PASS_BATCH: usize = 32;

impl ZmqStream {
    /// One pass: a round of at most one receive, then at most one send, and further rounds
    /// (up to `PASS_BATCH`) while each moves a message and the loop has nothing else to do;
    /// schedules the next pass if it made progress. Stops once a callback closed the stream.
    pub(super) fn pass(&self) {
        let Some(socket) = self.socket() else {
            return;
        };
        let mut progress = false;
        let outer = self.inner.in_pass.replace(true);
        for _ in 0..PASS_BATCH {
            let mut moved = false;
            if self.receiving() {
                moved |= self.handle_recv(&socket);
            }
            if self.sending() && !self.closed() {
                moved |= self.handle_send(&socket);
            }
            progress |= moved;
            // A callback of this round may have closed the stream: nothing more is received
            // (the pass's own `socket` would still let it).
            if !moved || self.closed() || !self.inner.ioloop.has_nothing_else() {
                break;
            }
        }
        self.inner.in_pass.set(outer);
        if progress {
            self.schedule_pass();
        }
        self.rearm();
    }

    pub(super) fn schedule_pass(&self) {
        if self.closed() || self.inner.pass_scheduled.replace(true) {
            return;
        }
        self.inner
            .ioloop
            .add_shared_callback(&self.inner.pass_callback);
    }

    pub(super) fn handle_recv(&self, socket: &Socket) -> bool {
        let Some(callback) = self.inner.on_recv.borrow().clone() else {
            return false;
        };
        if callback.busy() {
            // The receive callback itself called `flush`: a message received now could not be
            // handed to it. The pass that runs the callback goes on receiving once it returns.
            return false;
        }
        let mut msgs = std::mem::take(&mut *self.inner.recv_buffer.borrow_mut());
        if let Err(err) = recv_parts(socket, &mut msgs) {
            self.recycle(msgs);
            match err {
                zmqloop_green::Error::EAGAIN => {}
                zmqloop_green::Error::ETERM => self.close(None),
                err => log::warn!("zmqloop: ZmqStream receive failed: {err}"),
            }
            return false;
        }
        match callback {
            RecvCallback::Msgs(callback) => {
                log_panic("receive", || (callback.borrow_mut())(self, msgs));
            }
            RecvCallback::Bytes(callback) => {
                let frames = msgs.iter().map(|msg| msg.to_vec()).collect();
                self.recycle(msgs);
                log_panic("receive", || (callback.borrow_mut())(self, frames));
            }
        }
        true
    }

    pub(super) fn handle_send(&self, socket: &Rc<Socket>) -> bool {
        if self.inner.closing.get() {
            // `close` (parked in another task, within its linger) holds the first queued
            // message and sends the rest after it: a send now would overtake it.
            return false;
        }
        if self.send_callback_busy() {
            // A send callback itself called `flush`: the report of a send made now could not
            // reach it. The pass that runs the callback goes on sending once it returns.
            return false;
        }
        let Some(mut outgoing) = self.inner.queue.borrow_mut().pop_front() else {
            return false;
        };
        outgoing.prepare(self.inner.on_send.borrow().is_some());
        let status = match try_send(socket, &mut outgoing) {
            Sent::Done(status) => status,
            wait => {
                self.inner.queue.borrow_mut().push_front(outgoing); // still first in line
                match wait {
                    Sent::WaitForFd => self.wait_for_fd(socket),
                    _ => self.inner.send_wait.end(&self.inner.ioloop),
                }
                return false;
            }
        };
        if self.inner.send_wait.stalled() {
            self.inner.send_wait.end(&self.inner.ioloop);
        }
        let terminated = status == Err(zmqloop_green::Error::ETERM);
        self.report(outgoing, status);
        if terminated {
            self.close(None);
        }
        true
    }

    /// Whether one of the stream's send callbacks is running (it called `flush` itself).
    fn send_callback_busy(&self) -> bool {
        let bytes = self.inner.on_send.borrow();
        let msgs = self.inner.on_send_msgs.borrow();
        bytes.as_ref().is_some_and(|c| c.try_borrow_mut().is_err())
            || msgs.as_ref().is_some_and(|c| c.try_borrow_mut().is_err())
    }

    /// Hands a send's outcome to its own callback, or else to the stream's send callback of its
    /// kind (module doc). Called exactly once per queued message. A stream callback that is
    /// running (a send it made was refused at once) gets the outcome as soon as it returns.
    pub(super) fn report(&self, outgoing: Outgoing, status: zmqloop_green::Result<()>) {
        if let Err(err) = status {
            log::debug!("zmqloop: ZmqStream send failed: {err}");
        }
        match outgoing {
            Outgoing::BytesWith(frames, done) => log_panic("send", || done(&frames, &status)),
            Outgoing::Bytes(ByteFrames::Kept(frames)) => {
                let callback = self.inner.on_send.borrow().clone();
                if let Some(callback) = callback {
                    let waiting = &self.inner.reports_waiting;
                    deliver(&callback, waiting, (frames, status), |callback, report| {
                        callback(self, &report.0, &report.1)
                    });
                }
            }
            // Moved only by a try that found no `on_send`, just before this report, with no
            // user code run in between: nobody to tell.
            Outgoing::Bytes(ByteFrames::Moved(msgs)) => {
                if status.is_ok() {
                    self.recycle(msgs);
                }
            }
            Outgoing::MsgsWith(msgs, done) => {
                let outcome = self.outcome(msgs, status);
                log_panic("send", || done(outcome));
            }
            Outgoing::Msgs(msgs) => {
                let outcome = self.outcome(msgs, status);
                let callback = self.inner.on_send_msgs.borrow().clone();
                if let Some(callback) = callback {
                    let waiting = &self.inner.msgs_reports_waiting;
                    deliver(&callback, waiting, outcome, |callback, outcome| {
                        callback(self, outcome)
                    });
                }
            }
        }
    }

    /// A message send's outcome: the messages handed back on failure; on success their `Vec`
    /// (the messages emptied by libzmq) is kept for the next receive.
    fn outcome(&self, msgs: Vec<Message>, status: zmqloop_green::Result<()>) -> Result<(), Unsent> {
        match status {
            Ok(()) => {
                self.recycle(msgs);
                Ok(())
            }
            Err(error) => Err(Unsent { error, msgs }),
        }
    }

    /// Keeps `msgs`'s allocation as the receive buffer, unless that has one already.
    pub(super) fn recycle(&self, mut msgs: Vec<Message>) {
        let mut buffer = self.inner.recv_buffer.borrow_mut();
        if buffer.capacity() == 0 {
            msgs.clear();
            *buffer = msgs;
        }
    }

    /// Waits for the socket's fd instead of `POLLOUT` (module doc): each signal runs a pass.
    fn wait_for_fd(&self, socket: &Rc<Socket>) {
        // Weak: the loop owns both. A dropped stream ends its wait (`Drop`).
        let weak = Rc::downgrade(&self.inner);
        let wake = move |_| {
            if let Some(inner) = weak.upgrade() {
                ZmqStream { inner }.pass();
            }
        };
        let weak = Rc::downgrade(&self.inner);
        let retry = move || {
            if let Some(inner) = weak.upgrade() {
                ZmqStream { inner }.pass();
            }
        };
        let ioloop = &self.inner.ioloop;
        self.inner.send_wait.watch(ioloop, socket, wake, retry);
    }

    /// Registers for exactly the events still wanted: none while a pass is queued (it tries
    /// the socket anyway, and a loop none of whose handlers asks for events does not poll).
    pub(super) fn rearm(&self) {
        let Some(socket) = self.socket() else {
            return;
        };
        let mut wanted = PollEvents::empty();
        if self.receiving() && !self.inner.pass_scheduled.get() {
            wanted |= POLLIN;
        }
        if self.sending()
            && !self.inner.closing.get()
            && !self.inner.send_wait.stalled()
            && !self.inner.pass_scheduled.get()
        {
            wanted |= POLLOUT;
        }
        if wanted != self.inner.registered.get() {
            self.inner.registered.set(wanted);
            if let Err(err) = self.inner.ioloop.update_handler(&socket, wanted) {
                log::warn!("zmqloop: ZmqStream cannot update its handler: {err}");
            }
        }
    }
}

/// Hands `report` to the stream's send callback `shared` (`call` makes the call), or, if that is
/// running (a send it made was refused at once, and is reported from inside it), queues the
/// report in `waiting`, which the running call hands to it, in order, as soon as it returns:
/// the callback is never re-entered and no outcome is lost.
fn deliver<C: ?Sized, R>(
    shared: &RefCell<C>,
    waiting: &RefCell<VecDeque<R>>,
    report: R,
    call: impl Fn(&mut C, R),
) {
    let Ok(mut callback) = shared.try_borrow_mut() else {
        waiting.borrow_mut().push_back(report);
        return;
    };
    log_panic("send", || call(&mut callback, report));
    loop {
        // Popped in its own statement: the callback may add more.
        let next = waiting.borrow_mut().pop_front();
        let Some(report) = next else {
            break;
        };
        log_panic("send", || call(&mut callback, report));
    }
}

/// Receives one whole message into `msgs` (empty before), one `zmq::Message` per frame, as
/// libzmq hands them. On an error `msgs` may hold the frames received before it.
fn recv_parts(socket: &Socket, msgs: &mut Vec<Message>) -> zmqloop_green::Result<()> {
    loop {
        let mut msg = Message::new();
        socket.recv(&mut msg, DONTWAIT)?;
        let more = msg.get_more();
        msgs.push(msg);
        if !more {
            return Ok(());
        }
    }
}
