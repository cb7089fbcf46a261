//! [`Socket::send_parts`]: a multipart send that hands back what libzmq did not take, and says
//! where it stopped ([`PartsNotSent`]). A zmqloop extension, not in `zmq`, whose sends consume
//! their message even when they fail; `zmqloop::eventloop::ZmqStream` sends its queued
//! zero-copy messages with it.

use std::fmt;

use zmq::{Error, Message};

use super::{raw, Socket};

/// A [`Socket::send_parts`] that failed: libzmq's error, and how many parts it had taken before
/// it. With `taken == 0` (every usual failure) the parts are all intact and the message can be
/// sent again as it is; with `taken > 0` the first `taken` parts are empty and libzmq has
/// dropped them, so the message is lost (a `?` turns this into its `zmq::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartsNotSent {
    /// Why the part at index `taken` was refused.
    pub error: Error,
    /// How many parts libzmq took before it refused one.
    pub taken: usize,
}

impl fmt::Display for PartsNotSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let PartsNotSent { error, taken } = self;
        write!(f, "multipart send refused at part {taken}: {error}")
    }
}

impl std::error::Error for PartsNotSent {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<PartsNotSent> for Error {
    fn from(refused: PartsNotSent) -> Error {
        refused.error
    }
}

impl Socket {
    /// Sends `parts` as one multipart message without taking them: libzmq takes the content of
    /// each part it accepts (leaving that part an empty message) and leaves a part it refuses
    /// intact. A send refused at its first part (EAGAIN with `DONTWAIT`, EFSM...) thus hands
    /// every part back untouched, to be sent again as it is: no copy, and nothing lost.
    ///
    /// Waits as [`send_multipart`](Socket::send_multipart) does: only the first part can.
    /// An empty `parts` sends nothing.
    ///
    /// # Errors
    /// As [`send`](Socket::send), with the number of parts libzmq took before the failure
    /// ([`PartsNotSent::taken`]). libzmq accepts the rest of a message once its first part is
    /// in, so only a failure at the first part is usual (`taken == 0`: all intact). A later one
    /// (the peer's pipe closing in the middle of the message, which libzmq 4.3 answers with
    /// EAGAIN after dropping what it took; a signal; ETERM) leaves the parts taken before it
    /// empty: the message cannot be sent again.
    ///
    /// # Examples
    /// ```
    /// use zmqloop_green as zmq;
    ///
    /// let ctx = zmq::Context::new();
    /// let push = ctx.socket(zmq::PUSH).unwrap(); // no peer yet: a send cannot go out
    /// let mut parts = [zmq::Message::from("key"), zmq::Message::from(vec![7u8; 100])];
    /// let refused = push.send_parts(&mut parts, zmq::DONTWAIT).unwrap_err();
    /// assert_eq!((refused.error, refused.taken), (zmq::Error::EAGAIN, 0));
    /// assert_eq!(&parts[1][..], &[7u8; 100][..]); // handed back intact
    ///
    /// push.bind("inproc://send-parts-doc").unwrap();
    /// let pull = ctx.socket(zmq::PULL).unwrap();
    /// pull.connect("inproc://send-parts-doc").unwrap();
    /// push.send_parts(&mut parts, 0).unwrap(); // waits for the peer
    /// assert!(parts.iter().all(|part| part.is_empty())); // libzmq took the contents
    /// assert_eq!(pull.recv_multipart(0).unwrap(), [b"key".to_vec(), vec![7u8; 100]]);
    /// ```
    pub fn send_parts(&self, parts: &mut [Message], flags: i32) -> Result<(), PartsNotSent> {
        let last = parts.len().saturating_sub(1);
        for (taken, part) in parts.iter_mut().enumerate() {
            let more = if taken < last { zmq::SNDMORE } else { 0 };
            self.drive_send(flags | more, |flags| raw::send_msg(self.raw, part, flags))
                .map_err(|error| PartsNotSent { error, taken })?;
        }
        Ok(())
    }
}
