//! [`WakeFd`]: a file descriptor that any thread can make readable, to interrupt a wait.
//!
//! The hub's reactor, the hub's `run_off_thread` and the IOLoop all need one: another thread
//! queues work, then wakes the loop parked in `epoll_wait` or in a poll set. It is an eventfd
//! (Linux): `wake` adds to its counter, `clear` reads it back to zero. Not a `zmq` item, so it
//! lives here (`zmqloop::green::wake_fd::WakeFd`), outside the drop-in surface of the root.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking eventfd used as a cross-thread wake-up signal; put it in a poll set (or a
/// `Poller` with [`POLLIN`](crate::POLLIN)) and call [`wake`](WakeFd::wake) from anywhere.
#[derive(Debug)]
pub struct WakeFd {
    fd: OwnedFd,
}

impl WakeFd {
    /// A new wake-up fd, not readable yet.
    pub fn new() -> std::io::Result<WakeFd> {
        // SAFETY: plain syscall; the fd it returns is owned by the OwnedFd right below.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(WakeFd { fd })
    }

    /// Makes the fd readable (from any thread; cheap when it already is).
    pub fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a valid buffer to the eventfd this struct owns. The only
        // possible failure, EAGAIN at a counter near u64::MAX, still leaves the fd readable.
        unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), 8) };
    }

    /// Makes the fd unreadable again (until the next `wake`).
    pub fn clear(&self) {
        let mut counter = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a valid buffer; the fd is non-blocking, so an
        // unsignalled fd returns EAGAIN at once.
        unsafe { libc::read(self.fd.as_raw_fd(), counter.as_mut_ptr().cast(), 8) };
    }
}

impl AsRawFd for WakeFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: &WakeFd) -> bool {
        let mut check = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut check, 1, 0) == 1 }
    }

    #[test]
    fn wake_makes_it_readable_and_clear_undoes_it() {
        let fd = WakeFd::new().unwrap();
        assert!(!readable(&fd));
        fd.wake();
        fd.wake();
        assert!(readable(&fd));
        fd.clear();
        assert!(!readable(&fd));
    }
}
