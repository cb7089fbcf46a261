//! [`PollItem`]: the green counterpart of `zmq::PollItem`, naming green sockets.
//!
//! It has the memory layout of libzmq's `zmq_pollitem_t`, so a slice of them is what
//! `zmq_poll` takes.

use std::marker::PhantomData;
use std::os::unix::io::RawFd;

use zmq::PollEvents;

use crate::socket::Socket;

/// A socket or a plain fd to poll, with the events asked for and, after polling, those that
/// occurred. Same API as `zmq::PollItem`.
#[repr(transparent)]
pub struct PollItem<'a> {
    raw: zmq_sys::zmq_pollitem_t,
    marker: PhantomData<&'a Socket>,
}

impl<'a> PollItem<'a> {
    pub(crate) fn from_socket(socket: &'a Socket, events: PollEvents) -> PollItem<'a> {
        // libzmq ignores `fd` in a socket's item: it carries the socket's notification fd
        // (cached by the socket) for the green wait, or -1 if it could not be read.
        let fd = socket.notification_fd().unwrap_or(-1);
        PollItem::new(socket.raw_socket(), fd, events)
    }

    /// A poll item for a non-zmq file descriptor.
    pub fn from_fd(fd: RawFd, events: PollEvents) -> PollItem<'a> {
        PollItem::new(std::ptr::null_mut(), fd, events)
    }

    fn new(socket: *mut std::os::raw::c_void, fd: RawFd, events: PollEvents) -> PollItem<'a> {
        PollItem {
            raw: zmq_sys::zmq_pollitem_t {
                socket,
                fd,
                events: events.bits(),
                revents: 0,
            },
            marker: PhantomData,
        }
    }

    /// The events asked for.
    pub(crate) fn get_events(&self) -> PollEvents {
        PollEvents::from_bits_truncate(self.raw.events)
    }

    /// The libzmq socket polled, if this item is for a socket.
    pub(crate) fn socket_ptr(&self) -> Option<*mut std::os::raw::c_void> {
        (!self.raw.socket.is_null()).then_some(self.raw.socket)
    }

    /// The plain fd polled; for a socket item, the socket's notification fd (-1 if unknown).
    pub(crate) fn fd(&self) -> RawFd {
        self.raw.fd
    }

    /// The libzmq pollitem itself (a copy).
    pub(crate) fn raw(&self) -> zmq_sys::zmq_pollitem_t {
        self.raw
    }

    /// `items` as the array of libzmq pollitems they are, borrowed as long as they are.
    pub(crate) fn raw_items<'s>(
        items: &'s mut [PollItem<'_>],
    ) -> &'s mut [zmq_sys::zmq_pollitem_t] {
        // SAFETY: `PollItem` is `repr(transparent)` over `zmq_pollitem_t` (its marker is
        // zero-sized), so the slice is `items.len()` initialised pollitems; the result borrows
        // `items` mutably for its whole life.
        unsafe { std::slice::from_raw_parts_mut(items.as_mut_ptr().cast(), items.len()) }
    }

    /// Changes the events to wait for.
    pub fn set_events(&mut self, events: PollEvents) {
        self.raw.events = events.bits();
    }

    /// The events that occurred.
    pub fn get_revents(&self) -> PollEvents {
        PollEvents::from_bits_truncate(self.raw.revents)
    }

    /// Whether the item is ready to receive.
    pub fn is_readable(&self) -> bool {
        self.get_revents().contains(zmq::POLLIN)
    }

    /// Whether the item is ready to send.
    pub fn is_writable(&self) -> bool {
        self.get_revents().contains(zmq::POLLOUT)
    }

    /// Whether an error condition occurred (plain fds only).
    pub fn is_error(&self) -> bool {
        self.get_revents().contains(zmq::POLLERR)
    }

    /// Whether this item polls `socket`.
    pub fn has_socket(&self, socket: &Socket) -> bool {
        self.raw.socket == socket.raw_socket()
    }

    /// Whether this item polls the plain fd `fd`.
    pub fn has_fd(&self, fd: RawFd) -> bool {
        self.raw.socket.is_null() && self.raw.fd == fd
    }
}

impl std::fmt::Debug for PollItem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollItem")
            .field("socket", &self.raw.socket)
            .field("fd", &self.raw.fd)
            .field("events", &self.raw.events)
            .field("revents", &self.raw.revents)
            .finish()
    }
}
