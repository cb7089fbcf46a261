//! The readiness rule: how a green call waits for its socket without ever trusting the fd alone,
//! and without ever spinning.
//!
//! ```text
//! loop {
//!     try the operation with DONTWAIT                 -> done unless EAGAIN
//!     past the RCVTIMEO/SNDTIMEO deadline?            -> EAGAIN, as libzmq does
//!     a send, and no ZMQ_EVENTS read since the last wake:
//!         read ZMQ_EVENTS; POLLOUT present            -> try once more
//!     park until the notification fd signals or the deadline passes
//!     (a fallback check every interval wakes the call if the fd's signal was missed)
//! }
//! ```
//!
//! The rule is written against [`Waitable`], not against a socket, so that it can be tested
//! with a scripted fake (see the tests below); `socket::wait` implements it for a green socket.
//!
//! # Why each step is there
//! The facts behind these steps, and the commands that re-measure them, are in
//! `docs/readiness.md`.
//! - The fd only says "commands are pending"; `ZMQ_EVENTS` processes them and is the truth.
//! - Any operation (a `send` on the same socket included) can drain the fd, so an edge can be
//!   consumed by someone else; the scheduler keeps an edge that arrives after the check, and the
//!   fallback timer bounds the cost of anything still missed.
//! - Trying first keeps the hot path to one libzmq call and reports errors such as EFSM at once.
//!   After every wake the loop starts over with the operation itself: when the wake was real it
//!   succeeds at once, without a `ZMQ_EVENTS` read first (that read costs a syscall).
//! - A `DONTWAIT` receive that finds no message has processed the socket's pending commands
//!   unthrottled (libzmq 4.3, `socket_base_t::recv`), which drains the fd: receives park
//!   straight after their `EAGAIN`. A `DONTWAIT` send processes commands only when its throttle
//!   allows, so it can leave the fd signalled with its edge already reported: sends read
//!   `ZMQ_EVENTS` (which processes them all) once per wake before they park.
//! - The timeout option is read only once the call has to wait, so a call that succeeds at once
//!   costs no extra `getsockopt`; from then on the deadline is checked after every `EAGAIN`.
//!
//! # Progress: what `POLLOUT` and `POLLIN` promise, per socket type
//! `ZMQ_EVENTS` is exact for receiving, but for some sending sockets `POLLOUT` says nothing
//! about the message at hand (libzmq 4.3, each type's `xhas_out`/`xsend`):
//!
//! | type | `POLLIN` | `POLLOUT` | a send meets `EAGAIN` when |
//! |---|---|---|---|
//! | PAIR | exact | exact: a peer whose pipe has room | no peer, or its pipe is full |
//! | PUSH, DEALER | never (PUSH) / exact | exact: some peer has room, and the send goes to one that has | no peer, or every peer is full |
//! | REQ | only while awaiting the reply, then exact | only when a request may start, then as DEALER | as DEALER; a second request is EFSM at once |
//! | REP | only while no reply is due, then exact | only while a reply is due | never: a reply to a gone or full peer is dropped (as ROUTER) |
//! | ROUTER | exact | always | never: unroutable or full-peer messages are dropped |
//! | ROUTER + `ROUTER_MANDATORY` | exact | *some* peer has room | the addressed peer is full (an unknown peer is EHOSTUNREACH at once) |
//! | STREAM | exact | always | the addressed peer is full |
//! | PUB, XPUB | never (PUB) / a (un)subscription is queued | always | never: full subscribers miss the message |
//! | PUB, XPUB + `XPUB_NODROP` | as above | always | some matching subscriber is full |
//! | SUB, XSUB | exact: a matching message is queued | never (SUB) / always | never (XSUB drops at the high-water mark; SUB sends are ENOTSUP) |
//! | PULL | exact | never | sends are ENOTSUP |
//!
//! "Exact" means the flag is set exactly when the next operation of that direction succeeds.
//! The weak rows (`ROUTER_MANDATORY`, STREAM, `XPUB_NODROP`) are why a send may not simply try
//! again whenever `POLLOUT` is set: it would spin, with the deadline never checked and every
//! other coroutine of the worker starved. So the rule guarantees progress on its own, whatever
//! the flags say: between two parks a call makes at most two attempts and one `ZMQ_EVENTS`
//! read, and checks the deadline after each `EAGAIN`. A weak `POLLOUT` costs one extra attempt
//! per wake; the call then parks until the full pipe's reader makes room (libzmq then sends the
//! socket an `activate_write` command, which signals the fd), its deadline, or a fallback check
//! that finds the fd signalled. Receives never retry without a wake.
//!
//! Calls with `DONTWAIT` run once, exactly as in plain `zmq`. Outside any coroutine a call
//! that finds nothing to do with its `DONTWAIT` try then makes the blocking call itself,
//! blocking the thread as plain `zmq` does (`socket::wait`).

use std::time::{Duration, Instant};

use zmq::{Error, PollEvents, Result};

use crate::sched::Wake;

/// Which way a call moves messages: decides the event it waits for and its timeout option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Receiving: waits for `POLLIN`, limited by `RCVTIMEO`.
    Recv,
    /// Sending: waits for `POLLOUT`, limited by `SNDTIMEO`.
    Send,
}

impl Direction {
    /// Whether an `EAGAIN` of this direction's `DONTWAIT` attempt needs a `ZMQ_EVENTS` read
    /// before the call parks (see the module doc: receives have already drained the fd).
    fn must_read_events(self) -> bool {
        matches!(self, Direction::Send)
    }
}

/// What the rule needs of the thing a call waits on. A green socket in a coroutine implements
/// it (`socket::wait`); the tests below implement it with a script.
pub(crate) trait Waitable {
    /// `ZMQ_EVENTS`: the socket's readiness. Reading it processes the socket's pending
    /// commands, which drains its notification fd.
    fn events(&self) -> Result<PollEvents>;

    /// The `RCVTIMEO`/`SNDTIMEO` of `direction`, in ms (negative: no limit).
    fn timeout_ms(&self, direction: Direction) -> Result<i32>;

    /// Parks the caller until the notification fd signals, `deadline` passes, or a fallback
    /// check finds the fd signalled without a wake-up; says which.
    fn park(&self, deadline: Option<Instant>) -> Result<Wake>;

    /// Records that a fallback wake-up found the socket ready: a missed edge.
    fn record_missed_edge(&self);
}

/// Runs `attempt` (a `DONTWAIT` libzmq call) under the readiness rule until it does something
/// other than `EAGAIN`, or the `direction`'s timeout passes (`EAGAIN`).
///
/// `attempt` must leave its input intact when it fails with `EAGAIN` (a send keeps its
/// message), so that it can be tried again.
#[cfg(test)] // `socket::wait` makes the first attempt itself, then calls `wait_after_eagain`
pub(crate) fn wait_until_done<T>(
    target: &impl Waitable,
    direction: Direction,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    match attempt() {
        Err(Error::EAGAIN) => wait_after_eagain(target, direction, attempt),
        done => done,
    }
}

/// [`wait_until_done`] after its first attempt returned `EAGAIN`: for callers that make the
/// first attempt themselves, before they look for a scheduler (`socket::wait`'s hot path).
pub(crate) fn wait_after_eagain<T>(
    target: &impl Waitable,
    direction: Direction,
    mut attempt: impl FnMut() -> Result<T>,
) -> Result<T> {
    // Read only now: a call that succeeds at once costs no getsockopt.
    let deadline = deadline_after(target.timeout_ms(direction)?.into());
    let mut wake = None;
    // Whether ZMQ_EVENTS was read since the last wake: one read, one retry per wake at most.
    let mut events_read = false;
    loop {
        // The last attempt returned EAGAIN.
        if is_past(deadline) {
            return Err(Error::EAGAIN);
        }
        let retry = direction.must_read_events() && !events_read && {
            events_read = true;
            // Maybe ready after all (the attempt raced a command): once.
            target.events()?.contains(zmq::POLLOUT)
        };
        if !retry {
            wake = Some(target.park(deadline)?);
            events_read = false;
        }
        match attempt() {
            Err(Error::EAGAIN) => {}
            done => {
                if wake == Some(Wake::Fallback) && done.is_ok() {
                    target.record_missed_edge();
                }
                return done;
            }
        }
    }
}

/// Waits until `ZMQ_EVENTS` shows one of `events` (`true`) or `deadline` passes (`false`):
/// `Socket::poll` in a coroutine, parking like any other call on the socket.
pub(crate) fn wait_for_events(
    target: &impl Waitable,
    events: PollEvents,
    deadline: Option<Instant>,
) -> Result<bool> {
    let mut wake = None;
    loop {
        if target.events()?.intersects(events) {
            if wake == Some(Wake::Fallback) {
                target.record_missed_edge();
            }
            return Ok(true);
        }
        if is_past(deadline) {
            return Ok(false);
        }
        wake = Some(target.park(deadline)?);
    }
}

/// The instant a wait of `timeout_ms` starting now gives up: `None` (never) for a negative
/// timeout, as libzmq's `-1`. Shared with `poll`.
pub(crate) fn deadline_after(timeout_ms: i64) -> Option<Instant> {
    u64::try_from(timeout_ms)
        .ok()
        .map(|ms| Instant::now() + Duration::from_millis(ms))
}

fn is_past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|at| at <= Instant::now())
}

#[cfg(test)]
mod tests {
    //! The rule against a scripted socket: each test scripts what libzmq and the scheduler
    //! answer and checks what the rule did (attempts, `ZMQ_EVENTS` reads, parks).

    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::time::{Duration, Instant};

    use super::*;

    /// A scripted socket. `park` pops the next scripted wake (running its side effect first);
    /// an empty script means the test is over: the fake panics rather than let a spinning or
    /// over-parking rule run forever.
    struct Fake {
        events: Cell<PollEvents>,
        timeout_ms: i32,
        wakes: RefCell<VecDeque<Wake>>,
        /// Set when the next attempt should succeed.
        ready: Cell<bool>,
        /// After this many parks, the next attempt succeeds and `events` shows both flags.
        ready_after_parks: Option<usize>,
        attempts: Cell<usize>,
        events_reads: Cell<usize>,
        parks: Cell<usize>,
        missed_edges: Cell<usize>,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                events: Cell::new(PollEvents::empty()),
                timeout_ms: -1,
                wakes: RefCell::new(VecDeque::new()),
                ready: Cell::new(false),
                ready_after_parks: None,
                attempts: Cell::new(0),
                events_reads: Cell::new(0),
                parks: Cell::new(0),
                missed_edges: Cell::new(0),
            }
        }

        fn with_wakes(self, wakes: &[Wake]) -> Fake {
            *self.wakes.borrow_mut() = wakes.iter().copied().collect();
            self
        }

        /// The operation: EAGAIN until `ready`; a spin shows as an absurd attempt count.
        fn attempt(&self) -> Result<&'static str> {
            let n = self.attempts.get() + 1;
            self.attempts.set(n);
            assert!(n < 1000, "the rule spins: {n} attempts");
            if self.ready.get() {
                Ok("done")
            } else {
                Err(Error::EAGAIN)
            }
        }
    }

    impl Waitable for Fake {
        fn events(&self) -> Result<PollEvents> {
            self.events_reads.set(self.events_reads.get() + 1);
            Ok(self.events.get())
        }

        fn timeout_ms(&self, _: Direction) -> Result<i32> {
            Ok(self.timeout_ms)
        }

        fn park(&self, deadline: Option<Instant>) -> Result<Wake> {
            let parks = self.parks.get() + 1;
            self.parks.set(parks);
            if self.ready_after_parks == Some(parks) {
                self.ready.set(true);
                self.events.set(zmq::POLLIN | zmq::POLLOUT);
            }
            let wake = self.wakes.borrow_mut().pop_front();
            match wake {
                Some(Wake::Deadline) => {
                    let at = deadline.expect("a deadline wake needs a deadline");
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                    Ok(Wake::Deadline)
                }
                Some(wake) => Ok(wake),
                None => panic!("parked more often than scripted ({parks} parks)"),
            }
        }

        fn record_missed_edge(&self) {
            self.missed_edges.set(self.missed_edges.get() + 1);
        }
    }

    #[test]
    fn a_send_with_pollout_forever_parks_after_one_retry_per_wake() {
        // ROUTER_MANDATORY to a full peer, STREAM, XPUB_NODROP: POLLOUT set, sends fail.
        let mut fake = Fake::new().with_wakes(&[Wake::Fd; 5]);
        fake.events.set(zmq::POLLOUT);
        fake.ready_after_parks = Some(5);
        let done = wait_until_done(&fake, Direction::Send, || fake.attempt());
        assert_eq!(done, Ok("done"));
        assert_eq!(fake.parks.get(), 5);
        // Per wait: the attempt, one ZMQ_EVENTS read, one retry; then the attempt after wake 5.
        assert_eq!(fake.attempts.get(), 5 * 2 + 1);
        assert_eq!(fake.events_reads.get(), 5);
    }

    #[test]
    fn a_send_with_pollout_forever_times_out_instead_of_spinning() {
        let mut fake = Fake::new().with_wakes(&[Wake::Deadline]);
        fake.events.set(zmq::POLLOUT);
        fake.timeout_ms = 20;
        let started = Instant::now();
        let done = wait_until_done(&fake, Direction::Send, || fake.attempt());
        assert_eq!(done, Err(Error::EAGAIN));
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(fake.parks.get(), 1);
        assert_eq!(
            fake.attempts.get(),
            3,
            "attempt, retry, attempt after the deadline"
        );
    }

    #[test]
    fn a_deadline_that_passes_during_the_retry_ends_the_call_without_a_park() {
        let mut fake = Fake::new(); // no wake scripted: a park would fail the test
        fake.events.set(zmq::POLLOUT);
        fake.timeout_ms = 5;
        let done = wait_until_done(&fake, Direction::Send, || {
            if fake.attempts.get() == 1 {
                std::thread::sleep(Duration::from_millis(10)); // the deadline passes here
            }
            fake.attempt()
        });
        assert_eq!(done, Err(Error::EAGAIN));
        assert_eq!((fake.attempts.get(), fake.events_reads.get()), (2, 1));
    }

    #[test]
    fn a_zero_timeout_fails_after_one_attempt() {
        let mut fake = Fake::new();
        fake.timeout_ms = 0;
        let done = wait_until_done(&fake, Direction::Recv, || fake.attempt());
        assert_eq!(done, Err(Error::EAGAIN));
        assert_eq!((fake.attempts.get(), fake.parks.get()), (1, 0));
    }

    #[test]
    fn a_send_that_cannot_go_parks_after_one_events_read() {
        let mut fake = Fake::new().with_wakes(&[Wake::Fd]);
        fake.ready_after_parks = Some(1); // the edge arrives after the check
        let done = wait_until_done(&fake, Direction::Send, || fake.attempt());
        assert_eq!(done, Ok("done"));
        assert_eq!(fake.attempts.get(), 2);
        assert_eq!(fake.events_reads.get(), 1);
        assert_eq!(fake.parks.get(), 1);
    }

    #[test]
    fn a_receive_parks_without_reading_events_and_retries_only_after_a_wake() {
        let mut fake = Fake::new().with_wakes(&[Wake::Fd, Wake::Fd, Wake::Fd]);
        fake.events.set(zmq::POLLIN); // must not be looked at
        fake.ready_after_parks = Some(3);
        let done = wait_until_done(&fake, Direction::Recv, || fake.attempt());
        assert_eq!(done, Ok("done"));
        assert_eq!(fake.events_reads.get(), 0);
        assert_eq!((fake.attempts.get(), fake.parks.get()), (4, 3));
    }

    #[test]
    fn a_fallback_wake_that_finds_the_socket_ready_counts_a_missed_edge() {
        let mut fake = Fake::new().with_wakes(&[Wake::Fallback]);
        fake.ready_after_parks = Some(1);
        assert_eq!(
            wait_until_done(&fake, Direction::Recv, || fake.attempt()),
            Ok("done")
        );
        assert_eq!(fake.missed_edges.get(), 1);
    }

    #[test]
    fn a_fallback_wake_that_finds_nothing_counts_nothing() {
        let mut fake = Fake::new().with_wakes(&[Wake::Fallback, Wake::Fd]);
        fake.ready_after_parks = Some(2);
        assert_eq!(
            wait_until_done(&fake, Direction::Recv, || fake.attempt()),
            Ok("done")
        );
        assert_eq!(fake.missed_edges.get(), 0);
    }

    #[test]
    fn errors_other_than_eagain_return_at_once() {
        let fake = Fake::new();
        let done: Result<()> = wait_until_done(&fake, Direction::Send, || Err(Error::EFSM));
        assert_eq!(done, Err(Error::EFSM));
        assert_eq!((fake.events_reads.get(), fake.parks.get()), (0, 0));
    }

    #[test]
    fn a_message_that_arrives_with_the_deadline_is_still_taken() {
        let mut fake = Fake::new().with_wakes(&[Wake::Deadline]);
        fake.timeout_ms = 5;
        fake.ready_after_parks = Some(1);
        assert_eq!(
            wait_until_done(&fake, Direction::Recv, || fake.attempt()),
            Ok("done")
        );
    }

    #[test]
    fn waiting_for_events_parks_until_they_show_or_the_deadline() {
        let mut fake = Fake::new().with_wakes(&[Wake::Fd, Wake::Fd]);
        fake.ready_after_parks = Some(2);
        assert_eq!(wait_for_events(&fake, zmq::POLLIN, None), Ok(true));
        assert_eq!((fake.events_reads.get(), fake.parks.get()), (3, 2));

        let fake = Fake::new(); // nothing scripted: a park would fail the test
        let past = Some(Instant::now());
        assert_eq!(wait_for_events(&fake, zmq::POLLIN, past), Ok(false));
    }
}
