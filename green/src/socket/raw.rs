//! The calls on `zmq_msg_t` that `zmq` does not expose: sending a message so that an EAGAIN
//! leaves it intact for the next attempt (`zmq::Socket::send` consumes its argument), and
//! sharing a message's content (`zmq_msg_copy`) instead of copying its bytes. The facts behind
//! it, and how to check them again: `docs/zmq-crate.md`.

use std::os::raw::c_void;

use zmq::{Message, Result};

// `zmq::Message` is a struct whose single field is a `zmq_sys::zmq_msg_t`. If the sizes are
// equal that field is all there is and sits at offset 0, so a `*mut Message` is a valid
// `*mut zmq_msg_t`. A new `zmq` release that changed the layout fails to compile here.
const _: () = assert!(std::mem::size_of::<Message>() == std::mem::size_of::<zmq_sys::zmq_msg_t>());
const _: () =
    assert!(std::mem::align_of::<Message>() == std::mem::align_of::<zmq_sys::zmq_msg_t>());

fn msg_ptr(msg: &mut Message) -> *mut zmq_sys::zmq_msg_t {
    (msg as *mut Message).cast::<zmq_sys::zmq_msg_t>()
}

/// `zmq_msg_send(msg, socket, flags)`. On success libzmq takes the content and leaves `msg`
/// empty; on failure (EAGAIN included) `msg` is untouched.
pub(super) fn send_msg(socket: *mut c_void, msg: &mut Message, flags: i32) -> Result<()> {
    // SAFETY: the pointer is an initialised zmq_msg_t (layout checked above) that we borrow
    // mutably for the call; `socket` is a live socket owned by the calling green `Socket`.
    let rc = unsafe { zmq_sys::zmq_msg_send(msg_ptr(msg), socket, flags) };
    if rc == -1 {
        return Err(crate::errors::zmq_errno());
    }
    Ok(())
}

/// A message with the same content as `msg`, sharing it where libzmq can (`zmq_msg_copy`:
/// large contents are reference-counted, not copied; the proxy's capture uses it per frame).
pub(crate) fn share(msg: &mut Message) -> Result<Message> {
    let mut copy = Message::new();
    // SAFETY: both pointers are initialised zmq_msg_t (layout checked above), borrowed for the
    // call; zmq_msg_copy reads `msg` (it only bumps a reference count in it) and overwrites
    // `copy`, an empty message, releasing nothing.
    let rc = unsafe { zmq_sys::zmq_msg_copy(msg_ptr(&mut copy), msg_ptr(msg)) };
    if rc == -1 {
        return Err(crate::errors::zmq_errno());
    }
    Ok(copy)
}
