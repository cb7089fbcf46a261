//! Periodic callbacks, repeating timers and tickets: `PeriodicCallback` (start/stop/is_running,
//! one tick per period, missed ticks skipped rather than bunched, panics logged each tick),
//! `add_timer` with a count and until cancelled, tickets (delay, reset, cancel).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::thread;
use std::time::{Duration, Instant};

use zmqloop::eventloop::{IOLoop, PeriodicCallback, Ticket, Timer};

use crate::{bump, common, counter, counting, ms, seen, stop_after, within, Seen, LIMIT};

/// After `delay`, stops `periodic` from outside its work, records the count of `ticks` at that
/// moment and stops the loop `watch` later (a window for ticks that must not come). Returns the
/// recorded count (0 until then).
fn stop_periodic_later(
    ioloop: &IOLoop,
    periodic: &Rc<PeriodicCallback>,
    ticks: &Rc<Cell<usize>>,
    delay: Duration,
    watch: Duration,
) -> Rc<Cell<usize>> {
    let at_stop = Rc::new(Cell::new(0));
    let (p, t, l, a) = (
        periodic.clone(),
        ticks.clone(),
        ioloop.clone(),
        at_stop.clone(),
    );
    ioloop.call_later(delay, move || {
        p.stop();
        a.set(t.get());
        stop_after(&l, watch);
    });
    at_stop
}

#[test]
fn periodic_callback_ticks_until_stopped() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let ticks = counter();
        let fifth_after = Rc::new(Cell::new(None));
        let slot: Rc<RefCell<Option<Rc<PeriodicCallback>>>> = Rc::new(RefCell::new(None));
        let started = Instant::now();
        let periodic = {
            let (ticks, slot, stopper) = (ticks.clone(), slot.clone(), ioloop.clone());
            let fifth = fifth_after.clone();
            Rc::new(PeriodicCallback::new(&ioloop, ms(10), move || {
                if bump(&ticks) == 5 {
                    fifth.set(Some(started.elapsed()));
                    // Stop from inside the work, then watch for 50 ms.
                    if let Some(periodic) = slot.borrow().as_ref() {
                        periodic.stop();
                    }
                    stop_after(&stopper, ms(50));
                }
            }))
        };
        *slot.borrow_mut() = Some(periodic.clone());
        assert!(!periodic.is_running());
        periodic.start();
        periodic.start(); // a second start must not start a second chain
        assert!(periodic.is_running());
        ioloop.start().unwrap();
        assert_eq!(ticks.get(), 5, "ticks after stop()");
        assert!(!periodic.is_running());
        // Ticks fall on the 10 ms grid, at most one per period: the fifth one cannot come
        // before 50 ms (a doubled chain, or bunching, would make it early).
        let fifth = fifth_after.get().unwrap();
        assert!(
            fifth >= ms(50),
            "five ticks of a 10 ms period took only {fifth:?}"
        );

        // Started again, then stopped from outside the work.
        periodic.start();
        let at_stop = stop_periodic_later(&ioloop, &periodic, &ticks, ms(40), ms(40));
        ioloop.start().unwrap();
        assert!(
            at_stop.get() > 5,
            "a restarted periodic callback did not tick"
        );
        assert_eq!(ticks.get(), at_stop.get(), "ticks after stop()");
        slot.borrow_mut().take(); // breaks the cycle periodic -> work -> slot
    });
}

#[test]
fn periodic_callback_restarted_from_its_own_work_keeps_one_chain() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let ticks = counter();
        let slot: Rc<RefCell<Option<Rc<PeriodicCallback>>>> = Rc::new(RefCell::new(None));
        let periodic = {
            let (ticks, slot) = (ticks.clone(), slot.clone());
            Rc::new(PeriodicCallback::new(&ioloop, ms(10), move || {
                if bump(&ticks) == 1 {
                    if let Some(periodic) = slot.borrow().as_ref() {
                        periodic.stop(); // restart: e.g. to change phase
                        periodic.start();
                    }
                }
            }))
        };
        *slot.borrow_mut() = Some(periodic.clone());
        periodic.start();
        let at_stop = stop_periodic_later(&ioloop, &periodic, &ticks, ms(55), ms(50));
        ioloop.start().unwrap();
        slot.borrow_mut().take();
        assert_eq!(ticks.get(), at_stop.get(), "ticks after stop()");
        assert!(
            at_stop.get() <= 7,
            "{} ticks in 55 ms of a 10 ms period: two chains",
            at_stop.get()
        );
    });
}

#[test]
fn periodic_callback_skips_missed_ticks_instead_of_bunching_them() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let (ticks, tick) = counting();
        let periodic = PeriodicCallback::new(&ioloop, ms(10), tick);
        periodic.start();
        let before = Rc::new(Cell::new(0));
        let after = Rc::new(Cell::new(0));
        let (l, t, b, a) = (ioloop.clone(), ticks.clone(), before.clone(), after.clone());
        ioloop.call_later(ms(25), move || {
            // The loop thread is busy for ~55 ms: five or six ticks are missed.
            thread::sleep(ms(55));
            b.set(t.get());
            let (l2, t2) = (l.clone(), t.clone());
            l.call_later(ms(3), move || {
                a.set(t2.get());
                l2.stop();
            });
        });
        ioloop.start().unwrap();
        periodic.stop();
        assert!(before.get() >= 1, "the periodic callback never ticked");
        let jump = after.get() - before.get();
        assert!(
            (1..5).contains(&jump),
            "after a 55 ms stall the tick count jumped by {jump}: missed ticks must be skipped \
             (one late tick), not bunched"
        );
    });
}

#[test]
fn a_panicking_periodic_callback_or_timer_keeps_ticking_and_logs_each_panic() {
    within(LIMIT, || {
        common::logs::capture();
        let ioloop = IOLoop::new().unwrap();
        let (ticks, calls) = (counter(), counter());
        let (t, c) = (ticks.clone(), calls.clone());
        let periodic = PeriodicCallback::new(&ioloop, ms(10), move || {
            bump(&t);
            panic!("tick failure on purpose");
        });
        periodic.start();
        let timer = ioloop.add_timer(ms(10), 0, move || {
            bump(&c);
            panic!("timer failure on purpose");
        });
        // Stops the loop once both have failed five times. Had the first panic stopped them,
        // only the two-second guard would end the loop, with one call each.
        let (t, c, l) = (ticks.clone(), calls.clone(), ioloop.clone());
        let _watch = ioloop.add_timer(ms(5), 0, move || {
            if t.get() >= 5 && c.get() >= 5 {
                l.stop();
            }
        });
        stop_after(&ioloop, Duration::from_secs(2));
        ioloop.start().unwrap();
        assert!(
            ticks.get() >= 5,
            "{} ticks: a panic stopped the periodic callback",
            ticks.get()
        );
        assert!(
            calls.get() >= 5,
            "{} calls: a panic stopped the timer",
            calls.get()
        );
        assert!(periodic.is_running() && timer.is_active());
        let logs = common::logs::here();
        let logged = |what: &str| logs.iter().filter(|line| line.contains(what)).count();
        assert_eq!(
            logged("tick failure on purpose"),
            ticks.get(),
            "one log line per tick"
        );
        assert_eq!(
            logged("timer failure on purpose"),
            calls.get(),
            "one log line per call"
        );
        periodic.stop();
    });
}

#[test]
fn add_timer_runs_the_given_number_of_times_or_until_cancelled() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        let three = counter();
        let (c, l) = (three.clone(), ioloop.clone());
        let timer = ioloop.add_timer(ms(5), 3, move || {
            if bump(&c) == 3 {
                stop_after(&l, ms(50)); // watch for a fourth call
            }
        });
        assert!(timer.is_active());
        ioloop.start().unwrap();
        assert_eq!(three.get(), 3);
        assert!(!timer.is_active());

        // times = 0: until cancelled (here from inside its own work, at the tenth call).
        let endless = counter();
        let slot: Rc<RefCell<Option<Timer>>> = Rc::new(RefCell::new(None));
        let (c, l, s) = (endless.clone(), ioloop.clone(), slot.clone());
        let timer = ioloop.add_timer(ms(2), 0, move || {
            if bump(&c) == 10 {
                if let Some(timer) = s.borrow().as_ref() {
                    timer.cancel();
                }
                stop_after(&l, ms(50));
            }
        });
        *slot.borrow_mut() = Some(timer);
        ioloop.start().unwrap();
        assert_eq!(endless.get(), 10);
        assert!(!slot.borrow().as_ref().unwrap().is_active());

        // Cancelled from outside before it ever ran.
        let (never, call) = counting();
        let timer = ioloop.add_timer(ms(5), 0, call);
        timer.cancel();
        assert!(!timer.is_active());
        stop_after(&ioloop, ms(40));
        ioloop.start().unwrap();
        assert_eq!(never.get(), 0);
    });
}

#[test]
fn tickets_fire_after_the_delay_unless_reset_or_cancelled() {
    within(LIMIT, || {
        let ioloop = IOLoop::new().unwrap();
        // Long against the 10 ms of the reset/cancel below, so that they never share an
        // iteration with the tickets' first deadline.
        ioloop.set_ticket_delay(ms(150));
        let t0 = Instant::now();
        let fired: Seen<(&str, Duration)> = seen();
        let record = |name: &'static str| {
            let fired = fired.clone();
            move || fired.borrow_mut().push((name, t0.elapsed()))
        };
        let plain = ioloop.add_ticket(record("plain"));
        let (f, l) = (fired.clone(), ioloop.clone());
        let reset: Rc<Ticket> = Rc::new(ioloop.add_ticket(move || {
            f.borrow_mut().push(("reset", t0.elapsed()));
            // The cancelled one was due at 150 ms, before this one: it would have run by now.
            stop_after(&l, ms(10));
        }));
        let cancelled = Rc::new(ioloop.add_ticket(record("cancelled")));
        assert!(plain.is_pending() && reset.is_pending() && cancelled.is_pending());
        let (r, c) = (reset.clone(), cancelled.clone());
        ioloop.call_later(ms(10), move || {
            r.reset(); // postponed to >= 160 ms
            c.cancel();
        });
        ioloop.start().unwrap();

        let fired = fired.borrow();
        let names: Vec<_> = fired.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["plain", "reset"]);
        assert!(
            fired[0].1 >= ms(150),
            "a ticket fired early: {:?}",
            fired[0].1
        );
        assert!(
            fired[1].1 >= ms(160),
            "a reset ticket fired at {:?}, before its postponed deadline",
            fired[1].1
        );
        assert!(!plain.is_pending());
        assert!(!cancelled.is_pending());
    });
}
