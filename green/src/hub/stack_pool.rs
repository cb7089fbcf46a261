//! A pool of coroutine stacks for one hub: corosensei mmaps each stack (with a guard page,
//! committed lazily), so finished tasks hand their stack back for the next spawn instead of
//! unmapping it.

use corosensei::stack::DefaultStack;

/// Finished tasks' stacks, ready for reuse.
pub(crate) struct StackPool {
    /// Bytes asked for each new stack (`Builder::stack_size`).
    size: usize,
    /// Stacks of finished tasks, at most `keep` of them, each of `size`.
    free: Vec<DefaultStack>,
    /// How many stacks to keep at most (the rest are unmapped).
    keep: usize,
}

impl StackPool {
    pub(crate) fn new(size: usize, keep: usize) -> StackPool {
        StackPool {
            size,
            free: Vec::new(),
            keep,
        }
    }

    /// A stack from the pool, or a new one.
    ///
    /// # Panics
    /// If a new stack cannot be mapped (out of memory or address space).
    pub(crate) fn take(&mut self) -> DefaultStack {
        self.free.pop().unwrap_or_else(|| {
            DefaultStack::new(self.size).unwrap_or_else(|err| {
                panic!("zmqloop hub: cannot map a {} byte stack: {err}", self.size)
            })
        })
    }

    /// Returns a finished task's stack to the pool.
    pub(crate) fn give(&mut self, stack: DefaultStack) {
        if self.free.len() < self.keep {
            self.free.push(stack);
        }
    }
}
