//! The one call `zmq::Socket` cannot make for the green layer: sending a message so that an
//! EAGAIN leaves it intact for the next attempt (`zmq::Socket::send` consumes its argument).

use std::os::raw::c_void;

use zmq::{Message, Result};

// `zmq::Message` is a struct whose single field is a `zmq_sys::zmq_msg_t`. If the sizes are
// equal that field is all there is and sits at offset 0, so a `*mut Message` is a valid
// `*mut zmq_msg_t`. A new `zmq` release that changed the layout fails to compile here.
const _: () = assert!(std::mem::size_of::<Message>() == std::mem::size_of::<zmq_sys::zmq_msg_t>());
const _: () =
    assert!(std::mem::align_of::<Message>() == std::mem::align_of::<zmq_sys::zmq_msg_t>());

/// `zmq_msg_send(msg, socket, flags)`. On success libzmq takes the content and leaves `msg`
/// empty; on failure (EAGAIN included) `msg` is untouched.
pub(super) fn send_msg(socket: *mut c_void, msg: &mut Message, flags: i32) -> Result<()> {
    let msg_ptr = (msg as *mut Message).cast::<zmq_sys::zmq_msg_t>();
    // SAFETY: `msg_ptr` points to an initialised zmq_msg_t (layout checked above) that we borrow
    // mutably for the call; `socket` is a live socket owned by the calling green `Socket`.
    let rc = unsafe { zmq_sys::zmq_msg_send(msg_ptr, socket, flags) };
    if rc == -1 {
        return Err(crate::errors::zmq_errno());
    }
    Ok(())
}
