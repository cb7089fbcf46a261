//! What a [`ZmqStream`](super::ZmqStream)'s send queue holds ([`Outgoing`]), how each queued
//! message goes to libzmq, and what its outcome hands back ([`Unsent`]).
//!
//! A message send (`send_msgs`) queues `zmq::Message`s and sends them as they are, with
//! `Socket::send_parts`: libzmq takes each one's content (no copy), and a try it refuses leaves
//! them intact for the next try. Since a taken message is gone, a message send reports only
//! `Ok(())` on success, and hands the messages back ([`Unsent`]) on failure.
//!
//! A byte send (`send_multipart`) reports its frames as bytes (`&[Vec<u8>]`) to a callback.
//! While a callback will see them they are kept, and each try copies them into new messages.
//! When the stream has no send callback for it, nobody will look at them again: the try moves
//! them into messages instead, once, and keeps those ([`ByteFrames::Moved`]). A frame of up to
//! [`SMALL_FRAME`] bytes is copied, since libzmq keeps such a message inline (no allocation) and
//! moving a `Vec<u8>` into a message costs libzmq an allocation; a larger one is moved, without
//! copying its bytes. A message whose frames are all small stays as it is (its tries copy each
//! frame, which is what moving would do).

use std::fmt;

use zmqloop_green::{Message, Socket};

use super::Frames;

/// The largest frame libzmq stores inside the `zmq_msg_t` itself (its `max_vsm_size` on 64-bit
/// targets): copying it is cheaper than handing libzmq a heap buffer, which makes it allocate
/// the buffer's reference count.
pub(super) const SMALL_FRAME: usize = 33;

/// The outcome of a byte send, for its own callback (`send_multipart_with`).
pub(super) type SendDone = Box<dyn FnOnce(&[Vec<u8>], &zmqloop_green::Result<()>)>;

/// The outcome of a message send, for its own callback (`send_msgs_with`).
pub(super) type MsgsDone = Box<dyn FnOnce(Result<(), Unsent>)>;

/// A message send that libzmq refused, or that could not be tried (the stream closed): the
/// error, and the messages handed back as libzmq left them, so that they can be sent again
/// without a copy. Given to the callbacks of [`send_msgs`](super::ZmqStream::send_msgs).
#[derive(Debug)]
pub struct Unsent {
    /// Why the messages were not sent (EHOSTUNREACH, ETERM, EAGAIN when `close` ran out of
    /// linger, ENOTSOCK on a closed stream...).
    pub error: zmqloop_green::Error,
    /// The message's frames. Intact when the first frame was refused, which is every usual
    /// failure. A failure at a later frame (the peer's pipe closed in the middle of the
    /// message, a signal, ETERM) leaves the frames libzmq took before it empty: libzmq drops
    /// them, and the stream reports the message as failed for good rather than send its rest.
    pub msgs: Vec<Message>,
}

impl fmt::Display for Unsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (error, frames) = (self.error, self.msgs.len());
        write!(
            f,
            "message not sent ({error}); its {frames} frames handed back"
        )
    }
}

impl std::error::Error for Unsent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A queued message: its frames, and where its outcome goes.
pub(super) enum Outgoing {
    /// A byte send with its own callback, which will see the frames: kept as bytes.
    BytesWith(Frames, SendDone),
    /// A byte send reported to the stream's `on_send`, if one is set when it leaves the queue.
    Bytes(ByteFrames),
    /// A message send with its own callback.
    MsgsWith(Vec<Message>, MsgsDone),
    /// A message send reported to the stream's `on_send_msgs`, if one is set then.
    Msgs(Vec<Message>),
}

/// The frames of a byte send reported to the stream's callback (if any), as its next try sends
/// them.
pub(super) enum ByteFrames {
    /// Kept as bytes for the stream's `on_send`: each try copies them into new messages.
    Kept(Frames),
    /// Moved into messages by a try that found no `on_send` (module doc): sent as they are.
    Moved(Vec<Message>),
}

impl Outgoing {
    /// Readies a byte send reported to the stream for its next try: kept as bytes if the
    /// stream's `on_send` will see them (`bytes_wanted`), moved into messages otherwise, unless
    /// every frame is small (each try copies those anyway: moving them would only add the
    /// messages' `Vec`). Moving back copies the (intact) messages: only a send that stalled
    /// while `on_send` was set meanwhile pays it.
    pub(super) fn prepare(&mut self, bytes_wanted: bool) {
        let Outgoing::Bytes(frames) = self else {
            return;
        };
        let next = match (
            std::mem::replace(frames, ByteFrames::Moved(Vec::new())),
            bytes_wanted,
        ) {
            (ByteFrames::Kept(kept), false) if kept.iter().any(|f| f.len() > SMALL_FRAME) => {
                ByteFrames::Moved(into_msgs(kept))
            }
            (ByteFrames::Moved(msgs), true) => {
                ByteFrames::Kept(msgs.iter().map(|msg| msg.to_vec()).collect())
            }
            (same, _) => same,
        };
        *frames = next;
    }

    /// One send of the whole message with `flags`. Messages are left as libzmq leaves them
    /// (intact if refused at their first part); bytes are copied into new messages, so a
    /// byte send can always be made again.
    pub(super) fn send(&mut self, socket: &Socket, flags: i32) -> Result<(), Refused> {
        match self {
            Outgoing::BytesWith(frames, _) | Outgoing::Bytes(ByteFrames::Kept(frames)) => socket
                .send_multipart(frames.iter().map(|f| &f[..]), flags)
                .map_err(|error| Refused {
                    error,
                    broken: false,
                }),
            Outgoing::Bytes(ByteFrames::Moved(msgs))
            | Outgoing::MsgsWith(msgs, _)
            | Outgoing::Msgs(msgs) => socket.send_parts(msgs, flags).map_err(|refused| Refused {
                error: refused.error,
                broken: refused.taken > 0,
            }),
        }
    }
}

/// A whole-message send that libzmq refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Refused {
    /// libzmq's error.
    pub(super) error: zmqloop_green::Error,
    /// libzmq had taken some of the message's messages before it refused one: the peer's pipe
    /// closed in the middle of the message (libzmq 4.3's `lb.cpp` then drops what it took and
    /// answers EAGAIN), a signal (EINTR) or ETERM. The messages it took are empty now, so the
    /// message cannot be sent again, whatever the error: it has failed for good.
    pub(super) broken: bool,
}

/// Byte frames as messages: small ones copied, larger ones moved (module doc).
fn into_msgs(frames: Frames) -> Vec<Message> {
    frames
        .into_iter()
        .map(|frame| {
            if frame.len() <= SMALL_FRAME {
                Message::from(&frame[..])
            } else {
                Message::from(frame)
            }
        })
        .collect()
}
