//! IOLoop timeouts: `call_later`/`call_at` run in deadline order (ties in insertion order),
//! never early; a cancelled timeout (`cancel`, `remove_timeout`) never runs, even when cancelled by
//! one due in the same iteration.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use zmqloop::eventloop::IOLoop;

use crate::{ms, seen, stop_after, within, Seen, LIMIT};

#[test]
fn timeouts_run_in_deadline_order_then_insertion_order_never_early() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let t0 = Instant::now();
        let order: Seen<(&str, Duration)> = seen();
        let record = |name: &'static str| {
            let order = order.clone();
            move || order.borrow_mut().push((name, t0.elapsed()))
        };
        let last = record("c");
        let stopper = ioloop.clone();
        ioloop.call_later(ms(30), move || {
            last();
            stopper.stop();
        });
        ioloop.call_later(ms(10), record("a"));
        let tie = t0 + ms(20);
        ioloop.call_at(tie, record("b1"));
        ioloop.call_at(tie, record("b2"));
        ioloop.call_at(tie, record("b3"));
        ioloop.call_at(t0, record("now"));
        ioloop.start().unwrap();

        let order = order.borrow();
        let names: Vec<_> = order.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["now", "a", "b1", "b2", "b3", "c"]);
        for (name, at) in order.iter() {
            let due = match *name {
                "now" => ms(0),
                "a" => ms(10),
                "c" => ms(30),
                _ => ms(20),
            };
            assert!(*at >= due, "{name} ran early: {at:?} < {due:?}");
        }
    });
}

#[test]
fn cancelled_timeouts_never_run() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let ran: Seen<&str> = seen();
        let record = |name: &'static str| {
            let ran = ran.clone();
            move || ran.borrow_mut().push(name)
        };
        let cancelled = ioloop.call_later(ms(5), record("cancelled"));
        let removed = ioloop.call_later(ms(5), record("removed"));
        // Far in the future, so never due in the same iteration as its canceller (that case
        // is `a_timeout_cancelled_by_one_due_in_the_same_iteration_does_not_run`).
        let later = ioloop.call_later(Duration::from_secs(10), record("cancelled by a timeout"));
        let runs = ioloop.call_later(ms(10), record("runs"));
        let cancel_result = Rc::new(Cell::new(None));
        let (result, victim, l) = (cancel_result.clone(), later.clone(), ioloop.clone());
        ioloop.call_later(ms(15), move || {
            result.set(Some(victim.cancel()));
            stop_after(&l, ms(30));
        });

        assert!(cancelled.is_pending());
        assert!(cancelled.cancel());
        assert!(!cancelled.is_pending());
        assert!(!cancelled.cancel(), "a second cancel must return false");
        assert!(ioloop.remove_timeout(&removed));
        assert!(!removed.is_pending());

        ioloop.start().unwrap();
        assert_eq!(*ran.borrow(), ["runs"]);
        assert_eq!(cancel_result.get(), Some(true));
        assert!(!runs.is_pending());
        assert!(
            !runs.cancel(),
            "cancel must return false once the timeout ran"
        );
        assert!(!ioloop.remove_timeout(&runs));
    });
}

#[test]
fn a_timeout_cancelled_by_one_due_in_the_same_iteration_does_not_run() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let deadline = Instant::now() + ms(5);
        let victim_ran = Rc::new(Cell::new(false));
        let cancelled = Rc::new(Cell::new(None));
        let slot: Rc<RefCell<Option<zmqloop::eventloop::Timeout>>> = Rc::new(RefCell::new(None));
        let (c, s) = (cancelled.clone(), slot.clone());
        // Same deadline, added first: runs first, in the same iteration as the victim.
        ioloop.call_at(deadline, move || {
            c.set(s.borrow().as_ref().map(|victim| victim.cancel()));
        });
        let v = victim_ran.clone();
        *slot.borrow_mut() = Some(ioloop.call_at(deadline, move || v.set(true)));
        stop_after(&ioloop, ms(30));
        ioloop.start().unwrap();
        assert_eq!(
            cancelled.get(),
            Some(true),
            "cancel() of a timeout not run yet"
        );
        assert!(!victim_ran.get(), "a cancelled timeout ran");
    });
}
