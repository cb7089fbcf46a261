//! C error codes as `zmq::Error`: libzmq's own errno after a failed libzmq call, and the OS
//! errors of the syscalls the green layer makes itself (epoll, eventfd).
//!
//! `zmq::Error::from_raw` panics on an errno it has no variant for, and the syscalls made here
//! fail with some (EEXIST, EPERM, EBADF, ENOSPC...): [`from_io`] maps those to the nearest
//! variant first, so an OS error always comes back as an error, never as a panic.

/// The error of the libzmq call that just failed on this thread.
pub(crate) fn zmq_errno() -> zmq::Error {
    // SAFETY: zmq_errno only reads libzmq's thread-local errno.
    zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })
}

/// An OS error as the `zmq::Error` with the same errno, or the nearest one `zmq` has.
pub(crate) fn from_io(err: &std::io::Error) -> zmq::Error {
    zmq::Error::from_raw(nearest_zmq_errno(
        err.raw_os_error().unwrap_or(libc::EINVAL),
    ))
}

/// The error of the syscall that just failed on this thread.
pub(crate) fn last_os_error() -> zmq::Error {
    from_io(&std::io::Error::last_os_error())
}

/// `errno` if `zmq::Error` has a variant for it; otherwise the closest variant's errno.
fn nearest_zmq_errno(errno: i32) -> i32 {
    match errno {
        libc::EACCES
        | libc::EADDRINUSE
        | libc::EAGAIN
        | libc::EBUSY
        | libc::ECONNREFUSED
        | libc::EFAULT
        | libc::EHOSTUNREACH
        | libc::EINPROGRESS
        | libc::EINVAL
        | libc::EMFILE
        | libc::EMSGSIZE
        | libc::ENAMETOOLONG
        | libc::ENODEV
        | libc::ENOENT
        | libc::ENOMEM
        | libc::ENOTCONN
        | libc::ENOTSOCK
        | libc::EPROTO
        | libc::EPROTONOSUPPORT
        | libc::ENOTSUP
        | libc::ENOBUFS
        | libc::ENETDOWN
        | libc::EADDRNOTAVAIL
        | libc::EINTR => errno,
        libc::EBADF => libc::ENOTSOCK, // not an open fd: "not a socket" is the closest
        libc::ENFILE => libc::EMFILE,
        libc::ENOSPC => libc::ENOMEM, // epoll's max_user_watches
        other => {
            log::debug!(
                "zmqloop: OS error {} reported as EINVAL",
                std::io::Error::from_raw_os_error(other)
            );
            libc::EINVAL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::from_io;

    #[test]
    fn os_errors_zmq_has_no_variant_for_become_errors_not_panics() {
        let cases = [
            (libc::EEXIST, zmq::Error::EINVAL),
            (libc::EPERM, zmq::Error::EINVAL),
            (libc::EBADF, zmq::Error::ENOTSOCK),
            (libc::ENOSPC, zmq::Error::ENOMEM),
            (libc::EMFILE, zmq::Error::EMFILE),
            (libc::EAGAIN, zmq::Error::EAGAIN),
        ];
        for (errno, expected) in cases {
            let err = std::io::Error::from_raw_os_error(errno);
            assert_eq!(from_io(&err), expected, "errno {errno}");
        }
    }
}
