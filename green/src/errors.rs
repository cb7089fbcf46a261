//! C error codes as `zmq::Error`: libzmq's own errno after a failed libzmq call, and the OS
//! errors of the syscalls the green layer makes itself (epoll, eventfd).

/// The error of the libzmq call that just failed on this thread.
pub(crate) fn zmq_errno() -> zmq::Error {
    // SAFETY: zmq_errno only reads libzmq's thread-local errno.
    zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })
}

/// An OS error as the `zmq::Error` with the same errno (EINVAL if it has none).
pub(crate) fn from_io(err: &std::io::Error) -> zmq::Error {
    zmq::Error::from_raw(err.raw_os_error().unwrap_or(libc::EINVAL))
}

/// The error of the syscall that just failed on this thread.
pub(crate) fn last_os_error() -> zmq::Error {
    from_io(&std::io::Error::last_os_error())
}
