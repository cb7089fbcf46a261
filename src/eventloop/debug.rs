//! `Debug` for the event loop's handles, from their public state only (their insides are
//! callbacks, which have no `Debug`).

use std::fmt::{Debug, Formatter, Result};

use super::{IOLoop, IOLoopHandle, PeriodicCallback, Ticket, Timeout, Timer, ZmqStream};

impl Debug for IOLoop {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        f.debug_struct("IOLoop")
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Debug for IOLoopHandle {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        f.debug_struct("IOLoopHandle").finish_non_exhaustive()
    }
}

impl Debug for Timeout {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        f.debug_struct("Timeout")
            .field("pending", &self.is_pending())
            .finish_non_exhaustive()
    }
}

impl Debug for PeriodicCallback {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        f.debug_struct("PeriodicCallback")
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl Debug for Timer {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        f.debug_struct("Timer")
            .field("active", &self.is_active())
            .finish_non_exhaustive()
    }
}

impl Debug for Ticket {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        f.debug_struct("Ticket")
            .field("pending", &self.is_pending())
            .finish_non_exhaustive()
    }
}

impl Debug for ZmqStream {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        f.debug_struct("ZmqStream")
            .field("socket", &self.socket())
            .field("receiving", &self.receiving())
            .field("sending", &self.sending())
            .field("closed", &self.closed())
            .finish_non_exhaustive()
    }
}
