//! A message whose pipe ends half-way: libzmq's load balancer (PUSH, DEALER, REQ) refuses the
//! rest of the message, and its blocking send drops that rest silently (`lb.cpp` returns -2,
//! `socket_base_t::send` turns it into success). A green send must do the same wherever it
//! runs: a retry would send the last part as a message of its own, or park with no peer left.
//!
//! The pipe is ended by `disconnect` of an inproc endpoint, which terminates the PUSH side's
//! pipe at once while the load balancer still holds it (it lets go only when the PULL side
//! acknowledges, which needs the PULL socket to process its commands: nobody touches it until
//! the end). So every run takes the -2 path.

mod common;

use std::time::Duration;

use common::{inproc, on_thread, run_within, zmq};

/// A bound for each scenario: it takes milliseconds, and the failure it guards against is a hang.
const LIMIT: Duration = Duration::from_secs(10);

/// The scenario, for plain and green sockets alike: PUSH (or `$sender`) sends the first part,
/// disconnects, sends the last part (dropped), connects again and sends a whole message. PULL's
/// (or `$receiver`'s) first message must be that whole message.
macro_rules! cut_message {
    ($zmq:ident, $name:expr) => {
        cut_message!($zmq, $name, PUSH, PULL)
    };
    ($zmq:ident, $name:expr, $sender:ident, $receiver:ident) => {{
        let endpoint = inproc($name);
        let ctx = $zmq::Context::new();
        let pull = ctx.socket($zmq::$receiver).unwrap();
        pull.bind(&endpoint).unwrap();
        let push = ctx.socket($zmq::$sender).unwrap();
        push.set_linger(0).unwrap();
        push.connect(&endpoint).unwrap();
        push.send("first part", $zmq::SNDMORE).unwrap();
        push.disconnect(&endpoint).unwrap();
        push.send("last part", 0)
            .expect("the rest of a cut message is dropped");
        push.connect(&endpoint).unwrap();
        push.send("whole", 0).unwrap();
        // Well inside LIMIT, so that a lost message fails here, by name, not as a hang.
        pull.set_rcvtimeo(2_000).unwrap();
        pull.recv_multipart(0)
            .expect("a whole message within 2 s (EAGAIN: the message after the cut was lost)")
    }};
}

fn whole() -> Vec<Vec<u8>> {
    vec![b"whole".to_vec()]
}

#[test]
fn plain_zmq_drops_the_rest_of_a_message_whose_pipe_ended() {
    let received = on_thread(LIMIT, || cut_message!(zmq_plain, "cut-plain"));
    assert_eq!(received, whole());
}

#[test]
fn a_green_send_on_a_plain_thread_drops_it_too() {
    let received = on_thread(LIMIT, || cut_message!(zmq, "cut-thread"));
    assert_eq!(received, whole());
}

#[test]
fn a_green_send_in_a_coroutine_drops_it_too() {
    let received = run_within(LIMIT, || cut_message!(zmq, "cut-may"));
    assert_eq!(received, whole());
}

#[test]
fn a_green_dealer_in_a_coroutine_drops_it_too() {
    let received = run_within(LIMIT, || cut_message!(zmq, "cut-dealer", DEALER, ROUTER));
    assert_eq!(received.len(), 2, "identity and one part: {received:?}");
    assert_eq!(received[1], b"whole");
}

#[test]
fn a_green_send_in_a_hub_task_drops_it_too() {
    let received = on_thread(LIMIT, || {
        let hub = zmq::hub::Hub::new().unwrap();
        hub.block_on(|| cut_message!(zmq, "cut-hub"))
    });
    assert_eq!(received, whole());
}

use ::zmq as zmq_plain;
