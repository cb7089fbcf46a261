//! Plain fds for the poll tests: a pipe, a byte written to it, closing.

use std::os::unix::io::RawFd;

/// A new pipe: (read end, write end), owned by the caller (close them with [`close`]).
pub fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe() writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

/// Writes one byte to the write end `fd` of a pipe.
pub fn write_byte(fd: RawFd) {
    // SAFETY: writes one byte from a valid buffer to an fd the caller owns.
    assert_eq!(unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) }, 1);
}

/// Closes an fd the caller owns, once.
pub fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and closes it only here.
    unsafe { libc::close(fd) };
}
