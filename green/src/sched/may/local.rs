//! A may coroutine's [`Locals`](crate::local): kept in may's coroutine-local storage, so they
//! move with the coroutine from worker to worker, and dropped at its end.
//!
//! may drops a coroutine's local storage after the coroutine has ended and its join handle has
//! the result, on the worker thread, outside any coroutine (`docs/may.md`), where nothing may
//! park. So:
//! - [`spawn`](crate::spawn) wraps each body with an [`EndOfBody`], which drops the locals at
//!   the end of the body, inside the coroutine (a value's drop may park it);
//! - for coroutines started with may directly, the values drop where may drops them, with
//!   [`after_coroutine_end`] true meanwhile, so that a context whose last handle goes then
//!   terminates in the background instead of blocking the worker (`crate::context`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::local::Locals;

/// A coroutine's locals, as may's coroutine-local storage holds them.
struct CoroutineLocals(
    /// Lent (cloned) to `local::with` for the length of one call; only may's storage keeps it
    /// between calls.
    Rc<Locals>,
);

may::coroutine_local!(static LOCALS: CoroutineLocals = CoroutineLocals::new());

/// How many coroutines have locals that may has not dropped yet. While it is 0, the end of a
/// coroutine costs one atomic load: may's storage is not touched (a look-up there makes the
/// entry, and allocates).
static LIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// True while may drops a coroutine's locals after its end, on this thread.
    static AFTER_END: Cell<bool> = const { Cell::new(false) };
}

impl CoroutineLocals {
    fn new() -> CoroutineLocals {
        LIVE.fetch_add(1, Ordering::Relaxed);
        CoroutineLocals(Rc::default())
    }
}

impl Drop for CoroutineLocals {
    /// Run by may after the coroutine has ended: what is left (a coroutine not started by
    /// [`spawn`](crate::spawn)) is dropped here, flagged.
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        let outer = AFTER_END.with(|flag| flag.replace(true));
        self.0.clear();
        AFTER_END.with(|flag| flag.set(outer));
    }
}

/// The calling coroutine's locals (made on its first call).
pub(in crate::sched) fn locals() -> Rc<Locals> {
    LOCALS.with(|locals| locals.0.clone())
}

/// Whether the caller runs while may drops a coroutine's locals after its end: on a worker
/// thread, outside any coroutine, where nothing may block.
pub(in crate::sched) fn after_coroutine_end() -> bool {
    AFTER_END.with(Cell::get)
}

/// Drops the locals of the coroutine it lives in when it drops: at the end of the body that
/// [`spawn`](crate::spawn) runs, whether it returns or unwinds.
#[derive(Debug)]
pub(crate) struct EndOfBody;

impl Drop for EndOfBody {
    fn drop(&mut self) {
        // This coroutine's locals, if it has any, count in LIVE (may drops them later).
        if LIVE.load(Ordering::Relaxed) > 0 {
            locals().clear();
        }
    }
}
