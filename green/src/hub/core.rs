//! The hub's core: tasks, the ready queue and the timer heap, all driven by [`HubCore::run`] on
//! the hub's one thread, around one reactor wait per pass. Beside it: `fd_table.rs` (which
//! task waits on which registered fd), `reactor.rs` (the epoll set), `remote.rs` (jobs from
//! other threads), `registration.rs` (the fd registrations green calls park on).
//!
//! # Invariants
//! - Everything here is touched only from the hub's thread, except [`Remote`] (a mutex and an
//!   eventfd) and the epoll fd itself (deregistration may happen from any thread).
//! - No `RefCell` borrow of the state is held while a task runs: a task is taken out of its slot
//!   (`task: None`) for the duration of `resume`, and tasks call back into the core.
//! - A task is in the ready queue at most once: only `Parked` tasks can be woken.
//! - A task that cannot be resumed any more (finished, cancelled) leaves its slot; its key's
//!   generation makes every stale timer entry, fd event or wake-up for it a no-op.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::fd_table::{FdTable, FdToken};
use super::reactor;
use super::remote::Remote;
use super::stack_pool::StackPool;
use super::watchdog::Watch;
use crate::local::Locals;
use crate::wake_fd::WakeFd;

/// Why a parked task was resumed: what [`HubCore::park`] returns (a cancellation unwinds
/// instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woke {
    /// First run, a yield, or a wake-up by another task (a join).
    Run,
    /// Its fd signalled.
    Fd,
    /// Its deadline passed.
    Deadline,
    /// A fallback check found its fd readable although no event came.
    Fallback,
}

/// What a task is resumed with: why it woke, or a cancellation it must unwind for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resume {
    Woke(Woke),
    Cancel,
}

type Task = Coroutine<Resume, (), (), DefaultStack>;

/// A task's identity: slot index and the slot's generation when it was spawned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TaskKey {
    index: u32,
    generation: u32,
}

/// What a parked task waits for, and so what may end its wait (another task can always wake
/// it, and a cancellation always ends it).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Nothing but another task's wake-up (a join).
    Woken,
    /// A point in time (`sleep`).
    Until(Instant),
    /// A registered fd's event, or `deadline` if any; every `fallback` the fd is checked in
    /// case its event was missed.
    Fd {
        token: FdToken,
        fd: RawFd,
        deadline: Option<Instant>,
        fallback: Duration,
    },
}

impl Wait {
    /// The deadline that ends the wait, if any.
    fn deadline(self) -> Option<Instant> {
        match self {
            Wait::Woken => None,
            Wait::Until(at) => Some(at),
            Wait::Fd { deadline, .. } => deadline,
        }
    }

    /// When the timer must first look at a task that parks now with this wait.
    fn first_timer(self, now: Instant) -> Option<Instant> {
        match self {
            Wait::Woken => None,
            Wait::Until(at) => Some(at),
            Wait::Fd {
                deadline, fallback, ..
            } => Some(deadline.map_or(now + fallback, |d| d.min(now + fallback))),
        }
    }
}

/// Where a task is in its life; a task that cannot be resumed any more leaves its slot.
#[derive(Debug)]
enum State {
    /// In the ready queue, to be resumed with this.
    Ready(Resume),
    /// Running now (its coroutine is out of the slot, in `resume`).
    Running,
    /// Parked, waiting for this.
    Parked(Wait),
}

/// One task's place in the hub. Slots are reused; a task is named by its index and the
/// slot's generation when it was spawned ([`TaskKey`]).
struct Slot {
    /// Bumped by every spawn into this slot: keys of earlier tasks no longer match.
    generation: u32,
    /// The task's id: unique in its hub, never reused (the watchdog's reports name it).
    id: u64,
    /// Spawned and not finished.
    alive: bool,
    /// The coroutine, except while it runs (`resume` takes it out) and after it finished.
    task: Option<Task>,
    /// Ready, running or parked (meaningful while `alive`).
    state: State,
    /// The task's yielder, on its own stack: set by its first run, valid while it is alive.
    yielder: *const Yielder<Resume, ()>,
    /// A cancellation was asked for: every park unwinds from now on.
    cancelled: bool,
    /// When the timer must look at this task next (deadline or fallback check).
    wake_at: Option<Instant>,
    /// The earliest heap entry this task has (a later `wake_at` needs no new entry).
    queued_at: Option<Instant>,
    /// The task's [`Locals`], from its first `local::with` until its body ends (taken and
    /// dropped then, inside the task: `EndOfTask`). Invariant: `None` in a free slot.
    locals: Option<Rc<Locals>>,
}

/// Everything about the tasks, behind one `RefCell` (never borrowed while a task runs).
struct Tasks {
    /// Every slot ever used; indices of `TaskKey`s.
    slots: Vec<Slot>,
    /// Indices of slots whose task finished, for reuse.
    free: Vec<u32>,
    /// Tasks alive (spawned, not finished).
    live: usize,
    /// Tasks to resume, in FIFO order; each at most once (only parked tasks are woken).
    ready: VecDeque<TaskKey>,
    /// (when, index, generation) of timer checks; stale entries (other generation, or later
    /// than the slot's `queued_at`) are skipped when they come due.
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    /// Registered fds: token -> the task parked on it.
    fds: FdTable,
    /// Stacks of finished tasks, for the next spawns.
    stacks: StackPool,
    /// The id of the last task spawned (ids start at 1).
    last_id: u64,
}

/// One hub's state. Lives in an `Rc` owned by [`super::Hub`].
pub(crate) struct HubCore {
    /// Unique in the process: registrations remember it to know their hub.
    pub(super) id: u64,
    /// The tasks, their timers and registered fds.
    state: RefCell<Tasks>,
    /// The reactor: registered fds and `remote`'s eventfd, edge-triggered input.
    pub(super) epoll: Arc<OwnedFd>,
    /// Jobs and stop requests from other threads.
    pub(super) remote: Arc<Remote>,
    /// `run` returns after its current pass (set by `request_stop`).
    stopping: Cell<bool>,
    /// The blocking detector's shared state, when `Builder::max_blocking_time` turned it on:
    /// [`HubCore::resume`] marks the start and end of every task turn in it.
    pub(crate) watch: Option<Arc<Watch>>,
}

/// One task's turn on the hub thread: the task is `CURRENT_TASK` and, with the blocking
/// detector on, its turn is open in the [`Watch`]. Dropping it ends both, so a resume that
/// unwinds cannot leave the watchdog seeing a turn that never ends.
struct TaskTurn<'a> {
    /// `CURRENT_TASK` before this turn, put back when it ends.
    outer: Option<TaskKey>,
    /// The watch and the turn's stamp (from `Watch::turn_begins`), while the detector is on.
    watched: Option<(&'a Watch, u64)>,
}

impl<'a> TaskTurn<'a> {
    /// Makes task `key` (id `id`) the current task and opens its turn in `watch`.
    fn begin(key: TaskKey, id: u64, watch: Option<&'a Watch>) -> TaskTurn<'a> {
        let outer = CURRENT_TASK.with(|current| current.replace(Some(key)));
        let watched = watch.map(|watch| (watch, watch.turn_begins(id)));
        TaskTurn { outer, watched }
    }
}

impl Drop for TaskTurn<'_> {
    fn drop(&mut self) {
        if let Some((watch, stamp)) = self.watched {
            watch.turn_ends(stamp);
        }
        CURRENT_TASK.with(|current| current.set(self.outer));
    }
}

/// A hub's run on this thread: `CURRENT_HUB` points to the hub from `enter` until the drop,
/// which also runs when the run unwinds (a task's or a remote job's panic), so the pointer
/// never outlives the run.
struct RunningHub;

impl RunningHub {
    /// Makes `hub` the running hub of this thread.
    ///
    /// # Panics
    /// If another hub is running on this thread (its pointer stays in place).
    fn enter(hub: &HubCore) -> RunningHub {
        CURRENT_HUB.with(|current| {
            assert!(
                current.get().is_null(),
                "zmqloop hub: another hub is already running on this thread"
            );
            current.set(hub);
        });
        RunningHub
    }
}

impl Drop for RunningHub {
    fn drop(&mut self) {
        CURRENT_HUB.with(|current| current.set(std::ptr::null()));
    }
}

thread_local! {
    /// The hub running on this thread, while it runs.
    static CURRENT_HUB: Cell<*const HubCore> = const { Cell::new(std::ptr::null()) };
    /// The task running on this thread, while it runs.
    static CURRENT_TASK: Cell<Option<TaskKey>> = const { Cell::new(None) };
}

/// Whether the calling code runs inside a hub task.
#[inline]
pub(crate) fn in_task() -> bool {
    CURRENT_TASK.with(Cell::get).is_some()
}

/// Runs `f` with the hub running on this thread.
///
/// # Panics
/// Outside a running hub.
pub(crate) fn with_current<R>(f: impl FnOnce(&HubCore) -> R) -> R {
    let hub = CURRENT_HUB.with(Cell::get);
    assert!(!hub.is_null(), "zmqloop hub: not inside a running hub");
    // SAFETY: CURRENT_HUB is set only by `HubCore::run` for its own duration (`RunningHub`
    // clears it, also on unwinding), on this thread, to an `HubCore` that `run` borrows, so it
    // is alive here.
    f(unsafe { &*hub })
}

/// The running hub.
///
/// # Panics
/// Outside a running hub.
pub(crate) fn current_hub() -> Rc<HubCore> {
    let hub = CURRENT_HUB.with(Cell::get);
    assert!(!hub.is_null(), "zmqloop hub: not inside a running hub");
    // SAFETY: CURRENT_HUB points to a live HubCore (see `with_current`), and every HubCore lives
    // in an `Rc` (`HubCore::new`), so the pointer is that Rc's: taking one more strong count
    // and rebuilding an Rc from it is the documented way to clone from a raw pointer.
    unsafe {
        Rc::increment_strong_count(hub);
        Rc::from_raw(hub)
    }
}

/// The task running on this thread, if any.
pub(crate) fn current_task() -> Option<TaskKey> {
    CURRENT_TASK.with(Cell::get)
}

/// The id of the hub task running on this thread, if any.
pub(crate) fn current_task_id() -> Option<u64> {
    let key = current_task()?;
    with_current(|hub| hub.task_id(key))
}

/// The locals of the hub task running on this thread (made on its first call).
///
/// # Panics
/// Outside a hub task.
pub(crate) fn task_locals() -> Rc<Locals> {
    let key = current_task().expect("zmqloop hub: task locals outside a task");
    with_current(|hub| {
        let mut state = hub.state.borrow_mut();
        let locals = &mut state.slot_mut(key).locals;
        locals.get_or_insert_with(Rc::default).clone()
    })
}

/// Drops the locals of the task it lives in when it drops: at the end of the task's body,
/// inside the task, whether the body returns or unwinds (a value's drop may park the task).
pub(crate) struct EndOfTask;

impl Drop for EndOfTask {
    fn drop(&mut self) {
        let Some(key) = current_task() else {
            return;
        };
        let locals = with_current(|hub| hub.state.borrow_mut().slot_mut(key).locals.take());
        if let Some(locals) = locals {
            locals.clear(); // no borrow held: a value's drop may call into the hub
        }
    }
}

/// The running hub's id, if any.
pub(crate) fn current_id() -> Option<u64> {
    let hub = CURRENT_HUB.with(Cell::get);
    // SAFETY: as in `with_current`.
    (!hub.is_null()).then(|| unsafe { (*hub).id })
}

impl HubCore {
    /// A new hub core. It only ever lives in an `Rc`: `current_hub` relies on that.
    pub(crate) fn new(
        stack_size: usize,
        pooled_stacks: usize,
        watch: Option<Arc<Watch>>,
    ) -> std::io::Result<Rc<HubCore>> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let epoll = Arc::new(reactor::create()?);
        let remote = Arc::new(Remote::new(WakeFd::new()?));
        reactor::add(&epoll, remote.wake_fd().as_raw_fd(), FdToken::WAKE_UP)?;
        Ok(Rc::new(HubCore {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            state: RefCell::new(Tasks {
                slots: Vec::new(),
                free: Vec::new(),
                live: 0,
                ready: VecDeque::new(),
                timers: BinaryHeap::new(),
                fds: FdTable::default(),
                stacks: StackPool::new(stack_size, pooled_stacks),
                last_id: 0,
            }),
            epoll,
            remote,
            stopping: Cell::new(false),
            watch,
        }))
    }

    /// Cancels every live task (each unwinds when next resumed).
    pub(crate) fn cancel_all(&self) {
        let keys: Vec<TaskKey> = {
            let state = self.state.borrow();
            state
                .slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| slot.alive)
                .map(|(index, slot)| TaskKey {
                    index: index as u32,
                    generation: slot.generation,
                })
                .collect()
        };
        for key in keys {
            self.cancel(key);
        }
    }

    /// Number of tasks not finished yet.
    pub(crate) fn live_tasks(&self) -> usize {
        self.state.borrow().live
    }

    /// Creates a task running `body` and queues it.
    pub(crate) fn spawn(&self, body: impl FnOnce() + 'static) -> TaskKey {
        let mut state = self.state.borrow_mut();
        let stack = state.stacks.take();
        let task = Task::with_stack(stack, move |yielder: &Yielder<Resume, ()>, _: Resume| {
            let key = CURRENT_TASK
                .with(Cell::get)
                .expect("a task runs with its key set");
            with_current(|hub| hub.state.borrow_mut().slot_mut(key).yielder = yielder);
            body();
        });
        let index = match state.free.pop() {
            Some(index) => index,
            None => {
                state.slots.push(Slot {
                    generation: 0,
                    id: 0,
                    alive: false,
                    task: None,
                    state: State::Running,
                    yielder: std::ptr::null(),
                    cancelled: false,
                    wake_at: None,
                    queued_at: None,
                    locals: None,
                });
                (state.slots.len() - 1) as u32
            }
        };
        state.last_id += 1;
        let id = state.last_id;
        let slot = &mut state.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.id = id;
        slot.task = Some(task);
        slot.alive = true;
        slot.state = State::Ready(Resume::Woke(Woke::Run));
        slot.cancelled = false;
        slot.wake_at = None;
        slot.queued_at = None;
        let key = TaskKey {
            index,
            generation: slot.generation,
        };
        state.live += 1;
        state.ready.push_back(key);
        key
    }

    /// The id of a task that has not finished.
    pub(crate) fn task_id(&self, key: TaskKey) -> Option<u64> {
        self.state
            .borrow_mut()
            .slot_checked(key)
            .map(|slot| slot.id)
    }

    /// Wakes a parked task (no-op for a task that is not parked or no longer exists).
    pub(crate) fn wake(&self, key: TaskKey) {
        self.state.borrow_mut().wake(key, Resume::Woke(Woke::Run));
    }

    /// Marks a task cancelled and wakes it so that it unwinds. Returns false if it is gone.
    pub(crate) fn cancel(&self, key: TaskKey) -> bool {
        let mut state = self.state.borrow_mut();
        let Some(slot) = state.slot_checked(key) else {
            return false;
        };
        slot.cancelled = true;
        state.wake(key, Resume::Cancel);
        true
    }

    /// Registers `fd` (edge-triggered input) under a new token.
    pub(super) fn register_fd(&self, fd: RawFd) -> std::io::Result<FdToken> {
        let token = self.state.borrow_mut().fds.insert();
        if let Err(err) = reactor::add(&self.epoll, fd, token.as_u64()) {
            self.state.borrow_mut().fds.remove(token);
            return Err(err);
        }
        Ok(token)
    }

    /// Forgets a token (its fd was removed from the epoll set by the caller).
    pub(super) fn forget_fd(&self, token: FdToken) {
        self.state.borrow_mut().fds.remove(token);
    }

    /// How many fd tokens are taken.
    #[cfg(test)]
    pub(crate) fn live_fds(&self) -> usize {
        self.state.borrow().fds.live()
    }

    /// Parks the calling task until `wait` is satisfied (or another task wakes it); returns why
    /// it was resumed.
    ///
    /// A cancelled task unwinds from here (with a [`super::Cancelled`] panic) instead.
    pub(crate) fn park(&self, wait: Wait) -> Woke {
        let key = CURRENT_TASK
            .with(Cell::get)
            .expect("zmqloop hub: park outside a task");
        let yielder = {
            let mut state = self.state.borrow_mut();
            if state.slot_mut(key).cancelled {
                drop(state);
                std::panic::resume_unwind(Box::new(super::Cancelled));
            }
            if let Wait::Fd { token, .. } = wait {
                state.fds.set_waiter(token, Some(key));
            }
            state.arm(key, wait.first_timer(Instant::now()));
            let slot = state.slot_mut(key);
            slot.state = State::Parked(wait);
            slot.yielder
        };
        // SAFETY: the yielder lives on this task's stack, which is the stack running now.
        let resume = unsafe { &*yielder }.suspend(());
        if let Wait::Fd { token, .. } = wait {
            self.state.borrow_mut().fds.set_waiter(token, None);
        }
        match resume {
            Resume::Woke(woke) => woke,
            Resume::Cancel => std::panic::resume_unwind(Box::new(super::Cancelled)),
        }
    }

    /// Puts the calling task at the back of the ready queue and lets the others run.
    pub(crate) fn yield_now(&self) {
        let key = CURRENT_TASK
            .with(Cell::get)
            .expect("zmqloop hub: yield outside a task");
        let yielder = {
            let mut state = self.state.borrow_mut();
            let slot = state.slot_mut(key);
            slot.state = State::Ready(Resume::Woke(Woke::Run));
            let yielder = slot.yielder;
            state.ready.push_back(key);
            yielder
        };
        // SAFETY: as in `park`.
        if unsafe { &*yielder }.suspend(()) == Resume::Cancel {
            std::panic::resume_unwind(Box::new(super::Cancelled));
        }
    }

    pub(crate) fn request_stop(&self) {
        self.stopping.set(true);
    }

    /// Runs tasks until `done()` holds, no task is left, or a stop was requested.
    pub(crate) fn run(&self, done: &dyn Fn() -> bool) {
        assert!(
            !in_task(),
            "zmqloop hub: a hub cannot be run from inside a hub task (park or join instead)"
        );
        let _running = RunningHub::enter(self);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        self.stopping.set(false);
        loop {
            self.run_ready();
            if done() || self.live_tasks() == 0 || self.stopping.get() {
                break;
            }
            if self.remote.take_stop() {
                break;
            }
            let timeout = self.poll_timeout();
            self.wait_for_events(&mut events, timeout);
            self.expire_timers();
        }
    }

    /// Resumes the tasks that are ready now (not those made ready meanwhile: I/O gets a turn
    /// after every pass).
    fn run_ready(&self) {
        let pass = self.state.borrow().ready.len();
        for _ in 0..pass {
            let Some(key) = self.state.borrow_mut().ready.pop_front() else {
                break;
            };
            self.resume(key);
        }
    }

    fn resume(&self, key: TaskKey) {
        let (mut task, why, id) = {
            let mut state = self.state.borrow_mut();
            let Some(slot) = state.slot_checked(key) else {
                return;
            };
            let why = match slot.state {
                State::Ready(why) => why,
                _ => return,
            };
            slot.state = State::Running;
            (
                slot.task.take().expect("a ready task has its coroutine"),
                why,
                slot.id,
            )
        };
        let turn = TaskTurn::begin(key, id, self.watch.as_deref());
        let outcome = task.resume(why);
        drop(turn);
        let mut state = self.state.borrow_mut();
        let left = match outcome {
            CoroutineResult::Yield(()) => {
                state.slot_mut(key).task = Some(task);
                None
            }
            CoroutineResult::Return(()) => {
                state.stacks.give(task.into_stack());
                let slot = state.slot_mut(key);
                slot.alive = false;
                slot.wake_at = None;
                slot.yielder = std::ptr::null();
                let left = slot.locals.take(); // only a task spawned without `EndOfTask`
                state.free.push(key.index);
                state.live -= 1;
                left
            }
        };
        drop(state);
        drop(left); // after the borrow: a value's drop may call into the hub
    }

    fn poll_timeout(&self) -> libc::c_int {
        let state = self.state.borrow();
        if !state.ready.is_empty() {
            return 0;
        }
        match state.timers.peek() {
            None => -1,
            Some(Reverse((at, _, _))) => {
                let wait = at.saturating_duration_since(Instant::now());
                // Round up so that the timer is due when the wait ends.
                libc::c_int::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX)
            }
        }
    }

    /// One wait of the reactor: wakes the tasks whose fds signalled, runs the jobs of other
    /// threads.
    fn wait_for_events(&self, events: &mut [libc::epoll_event], timeout: libc::c_int) {
        let count = reactor::wait(&self.epoll, events, timeout);
        let mut remote_jobs = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            for event in &events[..count] {
                match FdToken::from_u64(event.u64) {
                    None => remote_jobs = self.remote.drain(),
                    Some(token) => {
                        if let Some(key) = state.fds.waiter(token) {
                            state.wake(key, Resume::Woke(Woke::Fd));
                        }
                    }
                }
            }
        }
        for job in remote_jobs {
            job();
        }
    }

    fn expire_timers(&self) {
        let now = Instant::now();
        let mut checks = Vec::new();
        let mut state = self.state.borrow_mut();
        while let Some(&Reverse((at, index, generation))) = state.timers.peek() {
            if at > now {
                break;
            }
            state.timers.pop();
            let key = TaskKey { index, generation };
            let Some(slot) = state.slot_checked(key) else {
                continue;
            };
            if slot.queued_at == Some(at) {
                slot.queued_at = None;
            }
            let Some(wake_at) = slot.wake_at else {
                continue;
            };
            let State::Parked(wait) = slot.state else {
                continue;
            };
            if wake_at > now {
                state.arm(key, Some(wake_at));
            } else if wait.deadline().is_some_and(|d| d <= now) {
                state.wake(key, Resume::Woke(Woke::Deadline));
            } else if let Wait::Fd {
                fd,
                deadline,
                fallback,
                ..
            } = wait
            {
                checks.push((key, fd, deadline, fallback));
            }
        }
        for (key, fd, deadline, fallback) in checks {
            if reactor::is_readable(fd) {
                state.wake(key, Resume::Woke(Woke::Fallback));
            } else {
                let next = deadline.map_or(now + fallback, |d| d.min(now + fallback));
                state.arm(key, Some(next));
            }
        }
    }
}

impl Tasks {
    fn slot_checked(&mut self, key: TaskKey) -> Option<&mut Slot> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|slot| slot.alive && slot.generation == key.generation)
    }

    fn slot_mut(&mut self, key: TaskKey) -> &mut Slot {
        &mut self.slots[key.index as usize]
    }

    fn wake(&mut self, key: TaskKey, why: Resume) {
        let Some(slot) = self.slot_checked(key) else {
            return;
        };
        if let State::Parked(_) = slot.state {
            slot.state = State::Ready(why);
            slot.wake_at = None;
            self.ready.push_back(key);
        } else if why == Resume::Cancel {
            if let State::Ready(_) = slot.state {
                slot.state = State::Ready(Resume::Cancel);
            }
        }
    }

    fn arm(&mut self, key: TaskKey, at: Option<Instant>) {
        let slot = self.slot_mut(key);
        slot.wake_at = at;
        if let Some(at) = at {
            if slot.queued_at.is_none_or(|queued| at < queued) {
                slot.queued_at = Some(at);
                self.timers.push(Reverse((at, key.index, key.generation)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that unwinds (a raw core task has no `catch_unwind`; the public spawns add one)
    /// leaves no hub pointer behind on the thread: a later green call would follow it.
    #[test]
    fn a_run_that_unwinds_leaves_no_running_hub_behind() {
        let core = HubCore::new(64 * 1024, 0, None).unwrap();
        core.spawn(|| std::panic::resume_unwind(Box::new("the task unwinds")));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.run(&|| false)));
        assert!(run.is_err());
        assert_eq!(current_id(), None, "no hub runs on this thread any more");
        assert!(!in_task());
        drop(core);
        // The thread can run a hub again.
        let next = HubCore::new(64 * 1024, 0, None).unwrap();
        next.spawn(|| {});
        next.run(&|| false);
        assert_eq!(next.live_tasks(), 0);
    }
}
