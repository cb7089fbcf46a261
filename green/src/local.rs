//! Storage local to where code runs: one value of a type per plain thread, per may coroutine and
//! per hub task, as `thread_local!` gives one per thread.
//!
//! A thread-local is the wrong place for state that belongs to a coroutine: may coroutines are
//! M:N (one may resume on another worker thread after any park, and several share a worker), and
//! the tasks of a hub all share its thread. [`with`] finds the right place through the scheduler
//! seam, where the calling code runs: the current may coroutine, the current hub task, or else
//! the thread. The event loop keeps its current loop here (`IOLoop::current` in `zmqloop`).
//!
//! ```
//! use std::cell::Cell;
//! use zmqloop_green as zmq;
//! use zmq::local;
//!
//! /// A private type is a private slot: nobody else can name it.
//! #[derive(Default)]
//! struct Visits(Cell<u32>);
//!
//! fn visit() -> u32 {
//!     local::with(|visits: &Visits| {
//!         visits.0.set(visits.0.get() + 1);
//!         visits.0.get()
//!     })
//! }
//!
//! assert_eq!((visit(), visit()), (1, 2)); // this thread's value
//! let in_coroutine = zmq::spawn(|| (visit(), visit())).join().unwrap();
//! assert_eq!(in_coroutine, (1, 2)); // the coroutine's own value
//! assert_eq!(visit(), 3);
//! ```
//!
//! # When the values are dropped
//! - A plain thread's, when the thread exits (as `thread_local!` values).
//! - A hub task's, when its body ends (returns, panics or is cancelled), inside the task and
//!   before its join handle has the result: a value's drop may park it (a context's last drop
//!   waits for LINGER, parking only that task).
//! - A coroutine's started by [`spawn`](crate::spawn) (or [`task::spawn_here`](crate::task)),
//!   likewise at the end of its body, inside it, before its join handle has the result.
//! - A coroutine's started with may directly (`may::go!`), by may after the coroutine has ended
//!   and its join handle has the result, on its worker thread outside any coroutine (may's
//!   coroutine-local storage, `docs/may.md`). Nothing may park there, so a context whose last
//!   handle goes then terminates in the background (logged at warn level), as when a coroutine
//!   unwinds.
//!
//! A value that is created while the values of its place are being dropped (a drop that uses
//! [`with`]) is dropped too, in a following round.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::sched;

/// Runs `f` with the value of type `T` of the place the caller runs in (the current may
/// coroutine, the current hub task, or the current thread), made with `T::default()` on the
/// first call of that place. Values are kept by type: use a type of your own (it may be private)
/// so that no other code shares it.
///
/// `f` may call `with` again, for the same type or another: no borrow is held while it runs.
/// See the [module docs](self) for an example and for when the values are dropped.
///
/// # Panics
/// If `T::default()` or `f` panics; on a plain thread, if called while that thread's local
/// values are being destroyed at its exit (as `thread_local!`'s `with`).
pub fn with<T: Default + 'static, R>(f: impl FnOnce(&T) -> R) -> R {
    let value = sched::locals().get::<T>();
    f(&value)
}

/// The values of one place (thread, coroutine or task), by type.
#[derive(Default)]
pub(crate) struct Locals {
    /// One value per type, made by the first [`with`] of that type. Each is an `Rc` so that
    /// `with` lends it with no borrow of the map held while user code runs. Invariant: the value
    /// under `TypeId::of::<T>()` is a `T`.
    values: RefCell<HashMap<TypeId, Rc<dyn Any>>>,
}

impl Locals {
    /// The value of type `T`, made now if there is none.
    fn get<T: Default + 'static>(&self) -> Rc<T> {
        let key = TypeId::of::<T>();
        let found = self.values.borrow().get(&key).cloned();
        let value = match found {
            Some(value) => value,
            None => {
                // Made with no borrow held: `T::default()` may use `with` itself.
                let made: Rc<dyn Any> = Rc::new(T::default());
                let mut values = self.values.borrow_mut();
                values.entry(key).or_insert(made).clone()
            }
        };
        value
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("a value is stored under its own type"))
    }

    /// Drops every value, with no borrow held while they drop; values that those drops create
    /// are dropped in a following round.
    pub(crate) fn clear(&self) {
        loop {
            let values = std::mem::take(&mut *self.values.borrow_mut());
            if values.is_empty() {
                return;
            }
            drop(values);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{self, Hub};
    use std::cell::Cell;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A value that says where it was made, and reports its drop.
    #[derive(Default)]
    struct Probe {
        /// Set by the test once the value is made: where it lives.
        name: RefCell<String>,
        /// Told the name when the value drops, with whether a coroutine or hub task ran the drop.
        on_drop: RefCell<Option<mpsc::Sender<(String, bool)>>>,
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            if let Some(tx) = self.on_drop.take() {
                let inside = sched::current().is_some();
                let _ = tx.send((self.name.take(), inside));
            }
        }
    }

    /// Names this place's probe `name` (if it has no name yet) and returns its name.
    fn probe(name: &str, on_drop: Option<&mpsc::Sender<(String, bool)>>) -> String {
        with(|probe: &Probe| {
            if probe.name.borrow().is_empty() {
                *probe.name.borrow_mut() = name.to_owned();
                *probe.on_drop.borrow_mut() = on_drop.cloned();
            }
            probe.name.borrow().clone()
        })
    }

    /// The next drop reported, waiting for it at most 10 s.
    fn next_drop(rx: &mpsc::Receiver<(String, bool)>) -> (String, bool) {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a place's value was not dropped at its end")
    }

    /// The next drop reported, which must have happened already.
    fn dropped(rx: &mpsc::Receiver<(String, bool)>) -> (String, bool) {
        rx.try_recv()
            .expect("a place's value was not dropped before its join handle had the result")
    }

    #[test]
    fn each_thread_has_its_own_value() {
        let first = std::thread::spawn(|| (probe("first", None), probe("again", None)));
        let first = first.join().unwrap();
        assert_eq!(
            first,
            ("first".into(), "first".into()),
            "one value per thread"
        );
        let other = std::thread::spawn(|| probe("other", None)).join().unwrap();
        assert_eq!(other, "other");
    }

    #[test]
    fn a_value_made_while_another_is_in_use_is_kept_apart() {
        #[derive(Default)]
        struct Outer(Cell<u32>);
        #[derive(Default)]
        struct Inner(Cell<u32>);
        let (outer, inner) = with(|outer: &Outer| {
            outer.0.set(1);
            let inner = with(|inner: &Inner| {
                inner.0.set(2);
                with(|again: &Outer| again.0.get()) // the same value, lent again
            });
            (outer.0.get(), inner)
        });
        assert_eq!((outer, inner), (1, 1));
        assert_eq!(with(|inner: &Inner| inner.0.get()), 2);
    }

    /// A place that names its value "a", lets the others run, and reads its value again.
    fn yielding_place(tx: mpsc::Sender<(String, bool)>, yield_now: fn()) -> (String, String) {
        let first = probe("a", Some(&tx));
        yield_now(); // "b" runs meanwhile, on this thread
        (first, probe("changed", None))
    }

    /// Checks what a [`yielding_place`] and a place named "b" returned, and that both values
    /// were dropped inside their places before their joins returned.
    fn check_two_places(a: (String, String), b: String, rx: &mpsc::Receiver<(String, bool)>) {
        assert_eq!(
            a,
            ("a".into(), "a".into()),
            "its own value across the yield"
        );
        assert_eq!(b, "b");
        let mut ends = [dropped(rx), dropped(rx)];
        ends.sort();
        assert_eq!(ends, [("a".into(), true), ("b".into(), true)]);
    }

    #[test]
    fn each_coroutine_has_its_own_value_dropped_inside_it_at_its_end() {
        let (tx, rx) = mpsc::channel();
        let tx_a = tx.clone();
        let a = crate::spawn(move || yielding_place(tx_a, may::coroutine::yield_now));
        let b = crate::spawn(move || probe("b", Some(&tx)));
        check_two_places(a.join().unwrap(), b.join().unwrap(), &rx);
    }

    #[test]
    fn a_coroutine_s_value_follows_it_to_another_thread() {
        let (moved, before, after) = crate::spawn(|| {
            let before = probe("mover", None);
            let thread = std::thread::current().id();
            // may resumes a coroutine woken from sleep on its timer thread (`docs/may.md`).
            may::coroutine::sleep(Duration::from_millis(1));
            let moved = std::thread::current().id() != thread;
            (moved, before, probe("changed", None))
        })
        .join()
        .unwrap();
        assert!(moved, "may resumed the coroutine on another thread");
        assert_eq!((before.as_str(), after.as_str()), ("mover", "mover"));
    }

    #[test]
    fn a_may_go_coroutine_s_values_are_dropped_by_may_after_its_end() {
        let (tx, rx) = mpsc::channel();
        // SAFETY: the coroutine keeps nothing thread-local across a park and needs little
        // stack (may's default is used by the other tests of this crate too).
        let handle = unsafe {
            may::coroutine::Builder::new()
                .spawn(move || probe("raw", Some(&tx)))
                .unwrap()
        };
        assert_eq!(handle.join().unwrap(), "raw");
        assert_eq!(
            next_drop(&rx),
            ("raw".into(), false),
            "outside the coroutine"
        );
    }

    #[test]
    fn each_hub_task_has_its_own_value_dropped_inside_it_at_its_end() {
        let (tx, rx) = mpsc::channel();
        let hub = Hub::new().unwrap();
        let tx_a = tx.clone();
        let a = hub.spawn(move || yielding_place(tx_a, hub::yield_now));
        let b = hub.spawn(move || probe("b", Some(&tx)));
        hub.run();
        let outside = probe("thread", None);
        assert!(
            outside != "a" && outside != "b",
            "outside tasks: the thread's own value"
        );
        check_two_places(a.join().unwrap(), b.join().unwrap(), &rx);
    }

    #[test]
    fn a_panicking_hub_task_s_values_are_dropped_too() {
        let (tx, rx) = mpsc::channel();
        let hub = Hub::new().unwrap();
        let task = hub.spawn(move || {
            probe("panicked", Some(&tx));
            panic!("the task fails");
        });
        hub.run();
        assert!(task.join().is_err());
        assert_eq!(dropped(&rx), ("panicked".into(), true));
    }

    #[test]
    fn values_made_by_a_drop_at_the_end_are_dropped_too() {
        let locals = Rc::new(Locals::default());
        #[derive(Default)]
        struct Refills(RefCell<Option<Rc<Locals>>>);
        impl Drop for Refills {
            fn drop(&mut self) {
                if let Some(locals) = self.0.take() {
                    locals.get::<Cell<u8>>();
                }
            }
        }
        locals.get::<Refills>().0.replace(Some(locals.clone()));
        locals.clear();
        assert!(
            locals.values.borrow().is_empty(),
            "the second round dropped it"
        );
    }
}
