//! Starting work on the caller's scheduler: [`spawn_here`] and its handle, [`Task`].
//!
//! Services that run beside the caller's code (the ZAP authenticator of `zmqloop::auth`,
//! devices) should run where that code runs: as a may coroutine when started from one, as a
//! task of the same hub when started from a hub task (it then shares the hub's thread and
//! reactor, and must not need another thread), and on a thread of its own when started from
//! plain code, where nothing else would ever run it.
//!
//! ```
//! use zmqloop_green as zmq;
//! use zmq::task::{self, RunsOn};
//!
//! let ctx = zmq::Context::new();
//! let pull = ctx.socket(zmq::PULL).unwrap();
//! pull.bind("inproc://task-doc").unwrap();
//! let push = ctx.socket(zmq::PUSH).unwrap();
//! push.connect("inproc://task-doc").unwrap();
//!
//! // From plain code the job gets a thread of its own, named after its purpose...
//! let receiver = task::Builder::new()
//!     .name("doc-receiver")
//!     .spawn_here(move || pull.recv_string(0).unwrap().unwrap())
//!     .unwrap();
//! assert_eq!(receiver.runs_on(), RunsOn::Thread);
//!
//! // ...and from a may coroutine it is a coroutine, whose green calls park only itself.
//! let sender = zmq::spawn(move || {
//!     let task = task::spawn_here(move || push.send("hello", 0).unwrap());
//!     assert_eq!(task.runs_on(), RunsOn::MayCoroutine);
//!     task.join().unwrap(); // parks this coroutine only
//! });
//! sender.join().unwrap();
//! assert_eq!(receiver.join().unwrap(), "hello");
//! ```
//!
//! A [`Task`] hands back the job's value or its panic through one slot, whatever ran the job,
//! and wakes its joiner through an eventfd that [`join`](Task::join) waits on with the green
//! [`poll`](crate::poll): so joining parks a may coroutine or a hub task and blocks only a
//! plain thread, and a `Task` can be joined from any of them (it is `Send`). The cost is one
//! eventfd per task, which suits long-lived services; spawn per-connection work with
//! [`spawn`](crate::spawn) or [`hub::spawn`](crate::hub::spawn) directly.

use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::sched::{self, Scheduler};
use crate::wake_fd::WakeFd;
use crate::{PollItem, POLLIN};

/// The thread name [`spawn_here`] gives a job started outside any scheduler.
pub const DEFAULT_THREAD_NAME: &str = "zmqloop-task";

/// Where a [`Task`] runs, chosen by [`spawn_here`] from where it was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsOn {
    /// A may coroutine ([`spawn`](crate::spawn)): started from a may coroutine.
    MayCoroutine,
    /// A task of the hub running the caller ([`hub::spawn`](crate::hub::spawn)): started
    /// from a hub task.
    HubTask,
    /// An OS thread of its own, named after the job: started outside both.
    Thread,
}

/// Configures a job before [`spawn_here`](Builder::spawn_here) starts it.
#[derive(Clone, Debug)]
pub struct Builder {
    /// The thread name used when the job gets a thread (see [`RunsOn::Thread`]).
    name: String,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            name: DEFAULT_THREAD_NAME.to_owned(),
        }
    }
}

impl Builder {
    /// A builder with the default thread name ([`DEFAULT_THREAD_NAME`]).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the thread the job gets when it is started outside any scheduler (shown by
    /// debuggers, `top -H` and panic messages). Coroutines and hub tasks are not named.
    pub fn name(mut self, name: &str) -> Builder {
        self.name = name.to_owned();
        self
    }

    /// Starts `f` on the caller's scheduler (see [`spawn_here`]).
    ///
    /// # Errors
    /// If the eventfd that signals the end of the job, or the thread, cannot be created (the
    /// process is out of file descriptors or threads).
    pub fn spawn_here<F, T>(self, f: F) -> std::io::Result<Task<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = Arc::new(Slot {
            result: Mutex::new(None),
            finished: AtomicBool::new(false),
            signal: WakeFd::new()?,
        });
        let job = {
            let slot = slot.clone();
            move || slot.fill(catch_unwind(AssertUnwindSafe(f)))
        };
        let home = match sched::start_here(job, &self.name)? {
            Some(Scheduler::May) => Home::MayCoroutine,
            Some(Scheduler::Hub) => Home::HubTask {
                hub: crate::hub::current_id().expect("a hub task runs inside its hub"),
                thread: thread::current().id(),
            },
            None => Home::Thread { name: self.name },
        };
        Ok(Task { slot, home })
    }
}

/// Starts `f` on the caller's scheduler and returns its [`Task`]: a may coroutine when called
/// in one, a task of the current hub when called in a hub task, otherwise an OS thread named
/// [`DEFAULT_THREAD_NAME`] (use [`Builder::name`] to name it after its purpose).
///
/// See the [module docs](self) for an example.
///
/// # Panics
/// If the job's eventfd or thread cannot be created; [`Builder::spawn_here`] returns that
/// error instead.
pub fn spawn_here<F, T>(f: F) -> Task<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn_here(f)
        .expect("zmqloop: cannot start a task (out of file descriptors or threads?)")
}

/// Where a job leaves its outcome, shared by the job and its [`Task`].
struct Slot<T> {
    /// The job's value or panic; `Some` from the end of the job until `join` takes it.
    result: Mutex<Option<thread::Result<T>>>,
    /// Set (after `result`) when the job has ended; never reset.
    finished: AtomicBool,
    /// Made readable (after `finished`) when the job has ended, to wake the joiner.
    signal: WakeFd,
}

impl<T> Slot<T> {
    /// Stores the job's outcome, then marks it finished, then wakes the joiner (in that order,
    /// so a joiner woken by the signal always finds the outcome).
    fn fill(&self, outcome: thread::Result<T>) {
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.finished.store(true, Ordering::Release);
        self.signal.wake();
    }

    fn take(&self) -> Option<thread::Result<T>> {
        self.result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// A job started by [`spawn_here`]: wait for its value with [`join`](Task::join).
///
/// Dropping a `Task` detaches the job, which runs on to its end.
pub struct Task<T> {
    /// The job's outcome and end signal (shared with the job).
    slot: Arc<Slot<T>>,
    /// Where the job runs.
    home: Home,
}

/// Where a job runs ([`RunsOn`]), with what joining it needs to know about that place.
#[derive(Debug)]
enum Home {
    /// A may coroutine.
    MayCoroutine,
    /// A task of the hub whose id is `hub`, running on `thread` (a hub never leaves the
    /// thread it was created on): only that hub's tasks may wait for it on that thread.
    HubTask {
        /// The id of the hub that runs the task (the hub running the spawner).
        hub: u64,
        /// The thread that hub runs on, for good.
        thread: thread::ThreadId,
    },
    /// An OS thread of its own, named `name`.
    Thread {
        /// The thread's name, from the [`Builder`].
        name: String,
    },
}

impl<T> Task<T> {
    /// Where the job runs.
    pub fn runs_on(&self) -> RunsOn {
        match self.home {
            Home::MayCoroutine => RunsOn::MayCoroutine,
            Home::HubTask { .. } => RunsOn::HubTask,
            Home::Thread { .. } => RunsOn::Thread,
        }
    }

    /// Whether [`join`](Task::join) called here can return: true unless the job is an
    /// unfinished task of a hub and the caller runs on that hub's thread outside that hub's
    /// tasks (between two `run`/`block_on` calls, say): the hub cannot run the job to its end
    /// while `join` waits on its thread.
    ///
    /// ```
    /// use std::time::Duration;
    /// use zmqloop_green::hub::{self, Hub};
    /// use zmqloop_green::task;
    ///
    /// let hub = Hub::new().unwrap();
    /// let job = hub.block_on(|| task::spawn_here(|| hub::sleep(Duration::from_millis(10))));
    /// assert!(!job.can_join_here()); // on the hub's thread, outside its tasks
    /// hub.run(); // the job runs to its end
    /// assert!(job.can_join_here());
    /// job.join().unwrap();
    /// ```
    pub fn can_join_here(&self) -> bool {
        match self.home {
            Home::HubTask { hub, thread } => {
                self.is_finished()
                    || thread::current().id() != thread
                    || (crate::hub::in_task() && crate::hub::current_id() == Some(hub))
            }
            Home::MayCoroutine | Home::Thread { .. } => true,
        }
    }

    /// Whether the job has ended (returned or panicked).
    pub fn is_finished(&self) -> bool {
        self.slot.finished.load(Ordering::Acquire)
    }

    /// Waits for the job to end and returns its value, or `Err` with its panic payload.
    ///
    /// Inside a may coroutine or a hub task only the caller parks; on a plain thread the
    /// thread blocks. Joining a hub task from another thread waits until its hub runs it to
    /// its end.
    ///
    /// A signal handler that runs on a joining plain thread (its wait is libzmq's `zmq_poll`,
    /// which returns EINTR then, even with `SA_RESTART`) does not end the wait. If the wait
    /// itself cannot be made (a coroutine's epoll fd, when the process is out of file
    /// descriptors), that is logged at error level and the job's end is checked every 10 ms
    /// instead.
    ///
    /// # Errors
    /// Only the job's panic.
    ///
    /// # Panics
    /// Where it could never return ([`can_join_here`](Task::can_join_here) is false: an
    /// unfinished hub task joined on its hub's thread outside that hub's tasks), with a
    /// message that says so, instead of blocking the thread for good.
    pub fn join(self) -> thread::Result<T> {
        assert!(
            self.can_join_here(),
            "zmqloop: joining a hub task on its hub's thread outside that hub's tasks would \
             never return (the hub cannot run it meanwhile): join it from a task of its hub, \
             or from another thread"
        );
        self.wait_with(|items| crate::poll(items, -1));
        self.slot
            .take()
            .expect("zmqloop: a finished task's outcome is taken only by join")
    }

    /// Waits until the job has ended, waiting on its end signal with `poll`.
    fn wait_with(&self, mut poll: impl FnMut(&mut [PollItem<'_>]) -> zmq::Result<i32>) {
        while !self.is_finished() {
            let mut items = [PollItem::from_fd(self.slot.signal.as_raw_fd(), POLLIN)];
            match poll(&mut items) {
                Ok(_) => self.slot.signal.clear(),
                Err(zmq::Error::EINTR) => {} // a signal handler ran on this thread
                Err(err) => {
                    log::error!(
                        "zmqloop: cannot wait for a task's end signal ({err}); checking \
                         every {DEGRADED_CHECK:?} instead"
                    );
                    while !self.is_finished() {
                        nap(DEGRADED_CHECK);
                    }
                }
            }
        }
    }
}

/// How often [`Task::join`] checks whether the job has ended when it cannot wait for its end
/// signal.
const DEGRADED_CHECK: Duration = Duration::from_millis(10);

/// Sleeps the caller on its own scheduler: parks a may coroutine or a hub task, sleeps a plain
/// thread.
fn nap(duration: Duration) {
    match sched::current() {
        Some(Scheduler::May) => may::coroutine::sleep(duration),
        Some(Scheduler::Hub) => crate::hub::sleep(duration),
        None => thread::sleep(duration),
    }
}

impl<T> std::fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Task");
        debug.field("runs_on", &self.runs_on());
        if let Home::Thread { name } = &self.home {
            debug.field("thread", name);
        }
        debug.field("finished", &self.is_finished()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn outside_any_scheduler_the_job_gets_a_named_thread() {
        let task = Builder::new()
            .name("task-test-thread")
            .spawn_here(|| thread::current().name().map(str::to_owned))
            .unwrap();
        assert_eq!(task.runs_on(), RunsOn::Thread);
        assert!(format!("{task:?}").contains("task-test-thread"));
        assert_eq!(task.join().unwrap().as_deref(), Some("task-test-thread"));
    }

    #[test]
    fn in_a_may_coroutine_the_job_is_a_coroutine() {
        let outer = crate::spawn(|| {
            let task = spawn_here(may::coroutine::is_coroutine);
            (task.runs_on(), task.join().unwrap())
        });
        assert_eq!(outer.join().unwrap(), (RunsOn::MayCoroutine, true));
    }

    #[test]
    fn in_a_hub_task_the_job_is_a_task_of_the_same_hub() {
        let hub = Hub::new().unwrap();
        let (runs_on, in_task, same_thread) = hub.block_on(|| {
            let me = thread::current().id();
            let task = spawn_here(move || (crate::hub::in_task(), thread::current().id() == me));
            let runs_on = task.runs_on();
            let (in_task, same_thread) = task.join().unwrap(); // parks this task only
            (runs_on, in_task, same_thread)
        });
        assert_eq!(runs_on, RunsOn::HubTask);
        assert!(in_task && same_thread);
    }

    #[test]
    fn a_hub_task_cannot_be_joined_on_its_hubs_thread_outside_its_tasks() {
        let hub = Hub::new().unwrap();
        let job = hub.block_on(|| spawn_here(|| crate::hub::sleep(Duration::from_secs(3600))));
        assert!(
            !job.can_join_here(),
            "on the hub's thread, outside its tasks"
        );
        let job = thread::scope(|scope| {
            scope
                .spawn(move || {
                    assert!(job.can_join_here(), "on another thread");
                    job
                })
                .join()
                .unwrap()
        });
        let (job, can_in_task) = hub.block_on(move || {
            let can = job.can_join_here();
            (job, can)
        });
        assert!(can_in_task, "in a task of its hub");
        let panic = catch_unwind(AssertUnwindSafe(|| job.join())).unwrap_err();
        let message = panic.downcast_ref::<&str>().unwrap();
        assert!(message.contains("would never return"), "{message}");
    }

    #[test]
    fn a_panic_comes_back_from_join() {
        let task = spawn_here(|| -> u32 { panic!("job failed") });
        let panic = task.join().unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"job failed"));
    }

    /// A job that ends once it gets a go signal, and the sender of that signal.
    fn job_ending_on_go() -> (Task<bool>, mpsc::Sender<()>) {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let task = spawn_here(move || go_rx.recv_timeout(Duration::from_secs(30)).is_ok());
        (task, go_tx)
    }

    #[test]
    fn an_interrupted_wait_is_made_again() {
        let (task, go) = job_ending_on_go();
        let mut interrupted = 0;
        task.wait_with(|items| {
            if interrupted < 2 {
                interrupted += 1;
                return Err(zmq::Error::EINTR);
            }
            go.send(()).unwrap();
            crate::poll(items, -1)
        });
        assert_eq!(interrupted, 2);
        assert!(task.join().unwrap());
    }

    #[test]
    fn a_wait_that_cannot_be_made_falls_back_to_checking() {
        let (task, go) = job_ending_on_go();
        let mut attempts = 0;
        task.wait_with(|_| {
            attempts += 1;
            go.send(()).unwrap();
            Err(zmq::Error::EMFILE)
        });
        assert_eq!(attempts, 1, "after a failed wait it only checks");
        assert!(task.join().unwrap());
    }

    #[test]
    fn is_finished_follows_the_job_and_join_waits_for_it() {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let task = spawn_here(move || go_rx.recv_timeout(Duration::from_secs(30)).is_ok());
        assert!(!task.is_finished());
        go_tx.send(()).unwrap();
        assert!(task.join().unwrap());
    }
}
