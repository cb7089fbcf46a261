//! The hub's epoll set: edge-triggered input on registered fds (notification fds of parked
//! sockets, a poll set's fd) plus the hub's wake-up eventfd. The set itself is shared with
//! registrations (an `Arc<OwnedFd>`), so that an fd can leave it from any thread.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A new epoll set (close-on-exec).
pub(crate) fn create() -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned by an OwnedFd right after.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epoll < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `epoll` is a new fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(epoll) })
}

/// Adds `fd` to `epoll` for edge-triggered input, its events carrying `data`.
pub(crate) fn add(epoll: &OwnedFd, fd: RawFd, data: u64) -> std::io::Result<()> {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: data,
    };
    // SAFETY: `epoll` is a live epoll fd and `event` outlives the call.
    if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Removes `fd` from `epoll` (from any thread; an fd that is not there is no error).
pub(crate) fn remove(epoll: &OwnedFd, fd: RawFd) {
    // SAFETY: `epoll` is a live epoll fd; a null event is allowed for EPOLL_CTL_DEL.
    unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            std::ptr::null_mut(),
        )
    };
}

/// Waits up to `timeout_ms` (-1: forever) for events; how many it wrote to `events` (0 after
/// EINTR).
pub(crate) fn wait(
    epoll: &OwnedFd,
    events: &mut [libc::epoll_event],
    timeout_ms: libc::c_int,
) -> usize {
    // SAFETY: `events` is a valid buffer of `events.len()` entries for the kernel to fill.
    let count = unsafe {
        libc::epoll_wait(
            epoll.as_raw_fd(),
            events.as_mut_ptr(),
            events.len() as libc::c_int,
            timeout_ms,
        )
    };
    usize::try_from(count).unwrap_or(0)
}

/// Whether `fd` is readable now (a fallback check: `poll` with a zero timeout).
pub(crate) fn is_readable(fd: RawFd) -> bool {
    let mut check = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; zero timeout.
    let ready = unsafe { libc::poll(&mut check, 1, 0) };
    ready > 0 && check.revents != 0
}
