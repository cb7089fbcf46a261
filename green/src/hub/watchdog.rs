//! The hub's blocking detector: a watchdog thread that notices a task running longer than
//! `max_blocking_time` without parking (what it reports, and what to do under may: "Blocking
//! detection" in the `hub` module docs).
//!
//! # How, and what it costs
//! The hub thread marks each task turn in a [`Watch`]: two plain atomic stores as the turn
//! begins (the task's id, then the turn's number), one `SeqCst` store and one load as it ends
//! (the store is the one `xchg` per turn on x86-64: it orders the turn's end against a report
//! made at that moment, see `Watch::reported_turn`), no lock and no clock read; with the
//! detector off, `HubCore::resume` skips even that (one branch on an `Option`).
//! The watchdog thread looks every quarter of `max_blocking_time`: a turn it sees at two looks
//! has run at least the time between them, so a turn shorter than `max_blocking_time` is never
//! reported, and a longer one is reported within 1.25 times `max_blocking_time`. The thread
//! that is blocked cannot log, so the watchdog thread does, naming the task from a registry of
//! task names that only named tasks enter (when their body starts) and leave (when it ends).

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the hub thread and its watchdog thread share.
pub(crate) struct Watch {
    /// The longest turn that is not an incident (at least 1 ms, `Builder::max_blocking_time`).
    max_blocking_time: Duration,
    /// Turn stamp, written only by the hub thread: `2n + 1` during the hub's n-th task turn,
    /// `2n + 2` after it (so odd = a task is running). Stored with `Release` after `task`; the
    /// end of a turn is stored `SeqCst` (see `reported_turn`).
    turn: AtomicU64,
    /// The id of the task of the turn in `turn` (meaningful while `turn` is odd). Stored with
    /// `Release` after the previous turn's end, so that a reader that sees a new id also sees
    /// that the turn it read before has ended.
    task: AtomicU64,
    /// The turn stamp of the last incident reported (0: none yet), so the hub thread can
    /// close it when the turn ends. The hub thread stores the end of a turn and then loads
    /// this; the watchdog stores this and then loads `turn`; all four `SeqCst`, so at least
    /// one side sees the other's store and closes the incident (whichever takes it from
    /// `open_incident` first logs its end).
    reported_turn: AtomicU64,
    /// Incidents reported since the hub was built.
    incidents: AtomicU64,
    /// The incident in progress, for the line logged when it ends.
    open_incident: Mutex<Option<Incident>>,
    /// Names of the running named tasks by task id (only named tasks are here).
    names: Mutex<HashMap<u64, Arc<str>>>,
}

/// One turn that was reported.
struct Incident {
    /// Its turn stamp.
    turn: u64,
    /// How the task was named in the warning (`task 7 "fetcher"`).
    task: String,
    /// When the watchdog first saw this turn: the turn began at most one look earlier.
    seen_at: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Watch {
    /// The state of a hub with no turn yet, reporting turns longer than `max_blocking_time`.
    fn new(max_blocking_time: Duration) -> Watch {
        Watch {
            max_blocking_time,
            turn: AtomicU64::new(0),
            task: AtomicU64::new(0),
            reported_turn: AtomicU64::new(0),
            incidents: AtomicU64::new(0),
            open_incident: Mutex::new(None),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Called by the hub thread as a task's turn begins; returns the turn's stamp.
    #[inline]
    pub(crate) fn turn_begins(&self, task_id: u64) -> u64 {
        // Release: the previous turn's end (stored before this) is visible to whoever sees
        // this id (the watchdog's `overdue`).
        self.task.store(task_id, Ordering::Release);
        // Only this thread writes `turn`: a load and a store, no read-modify-write.
        let stamp = self.turn.load(Ordering::Relaxed) + 1;
        self.turn.store(stamp, Ordering::Release);
        stamp
    }

    /// Called by the hub thread as the turn `stamp` ends.
    #[inline]
    pub(crate) fn turn_ends(&self, stamp: u64) {
        // SeqCst store then SeqCst load, the mirror image of `report`: see `reported_turn`.
        self.turn.store(stamp + 1, Ordering::SeqCst);
        if self.reported_turn.load(Ordering::SeqCst) == stamp {
            self.close_incident(stamp);
        }
    }

    /// Incidents reported so far.
    pub(crate) fn incidents(&self) -> u64 {
        self.incidents.load(Ordering::Relaxed)
    }

    /// Names task `task_id` until the returned guard is dropped.
    pub(crate) fn name_task(self: &Arc<Self>, task_id: u64, name: Arc<str>) -> TaskName {
        lock(&self.names).insert(task_id, name);
        TaskName {
            watch: self.clone(),
            task_id,
        }
    }

    /// One look of the watchdog: reports the running turn if it has lasted too long.
    fn look(&self, tracked: &mut Option<Tracked>, now: Instant) {
        if let Some(overdue) = self.overdue(tracked, now) {
            self.report(overdue);
        }
    }

    /// The running turn, if it is to be reported now (it has lasted `max_blocking_time` and
    /// was not reported yet); `tracked` remembers the turn between looks.
    fn overdue(&self, tracked: &mut Option<Tracked>, now: Instant) -> Option<Overdue> {
        let stamp = self.turn.load(Ordering::Acquire);
        let task_id = self.task.load(Ordering::Relaxed);
        // The id read above may be a later turn's: `turn_begins` stores it (Release) after the
        // end of `stamp`'s turn. This fence pairs with that store, so the load of `turn` below
        // then sees the end and drops the look; without it, the load could be satisfied
        // before the id's, and a later task be named for this turn.
        fence(Ordering::Acquire);
        if stamp % 2 == 0 || self.turn.load(Ordering::Relaxed) != stamp {
            *tracked = None; // no task running, or the turn changed while we read
            return None;
        }
        let seen = match tracked {
            Some(seen) if seen.stamp == stamp => seen,
            _ => tracked.insert(Tracked {
                stamp,
                seen_at: now,
                reported: false,
            }),
        };
        let running = now.duration_since(seen.seen_at);
        if seen.reported || running < self.max_blocking_time {
            return None;
        }
        seen.reported = true;
        Some(Overdue {
            stamp,
            task_id,
            seen_at: seen.seen_at,
            running,
        })
    }

    /// Warns about `overdue`, counts it and opens its incident, which the end of its turn
    /// closes: `turn_ends` if the turn is still running once `reported_turn` is stored, this
    /// function otherwise.
    fn report(&self, overdue: Overdue) {
        let Overdue {
            stamp,
            task_id,
            seen_at,
            running,
        } = overdue;
        let task = match lock(&self.names).get(&task_id) {
            Some(name) => format!("task {task_id} {name:?}"),
            None => format!("task {task_id}"),
        };
        self.incidents.fetch_add(1, Ordering::Relaxed);
        log::warn!(
            "zmqloop hub: {task} has run {} ms without parking; every other task of its hub is \
             stalled (max_blocking_time {} ms): move thread-blocking calls off the hub",
            running.as_millis(),
            self.max_blocking_time.as_millis()
        );
        *lock(&self.open_incident) = Some(Incident {
            turn: stamp,
            task,
            seen_at,
        });
        // SeqCst store then SeqCst load, the mirror image of `turn_ends`: if the turn ended
        // after `overdue` read it but before this store, `turn_ends` found nothing to close.
        self.reported_turn.store(stamp, Ordering::SeqCst);
        if self.turn.load(Ordering::SeqCst) != stamp {
            self.close_incident(stamp);
        }
    }

    /// Logs the end of the reported turn `stamp`, unless it was logged already (both threads
    /// may get here for one incident; the first takes it). Cold: once per incident.
    #[cold]
    fn close_incident(&self, stamp: u64) {
        let Some(incident) = lock(&self.open_incident).take_if(|open| open.turn == stamp) else {
            return;
        };
        log::info!(
            "zmqloop hub: {} parked again after stalling its hub for at least {} ms",
            incident.task,
            incident.seen_at.elapsed().as_millis()
        );
    }
}

/// A turn the watchdog is about to report ([`Watch::overdue`] to [`Watch::report`]).
struct Overdue {
    /// The turn's stamp (odd).
    stamp: u64,
    /// The id of the task running it, read together with `stamp`.
    task_id: u64,
    /// When the watchdog first saw the turn.
    seen_at: Instant,
    /// How long the turn has run since `seen_at` (at least `max_blocking_time`).
    running: Duration,
}

/// The watchdog's memory of the turn it is watching.
struct Tracked {
    /// The turn's stamp.
    stamp: u64,
    /// When the watchdog first saw it.
    seen_at: Instant,
    /// Whether it was reported (an incident is reported once).
    reported: bool,
}

/// Keeps a task's name registered while the task lives (it is dropped when the task's body
/// ends, returns, panics or unwinds on cancellation).
pub(crate) struct TaskName {
    /// The watch whose registry holds the name.
    watch: Arc<Watch>,
    /// The task named: its entry in `watch.names` lives as long as this guard.
    task_id: u64,
}

impl Drop for TaskName {
    fn drop(&mut self) {
        lock(&self.watch.names).remove(&self.task_id);
    }
}

/// The watchdog thread of one hub; dropping it stops and joins the thread.
pub(crate) struct Watchdog {
    /// The state shared with the hub thread (`HubCore::watch`) and the watchdog thread.
    watch: Arc<Watch>,
    /// Dropped to stop the thread (its wait ends with `Disconnected`); `Some` until `drop`.
    stop: Option<mpsc::Sender<()>>,
    /// The watchdog thread, joined by `drop` once `stop` is gone; `Some` until then.
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts a watchdog thread reporting turns longer than `max_blocking_time`.
    pub(crate) fn start(max_blocking_time: Duration) -> std::io::Result<Watchdog> {
        let watch = Arc::new(Watch::new(max_blocking_time));
        let (stop, stopped) = mpsc::channel::<()>();
        let period = (max_blocking_time / 4).max(Duration::from_millis(1));
        let thread_watch = watch.clone();
        let thread = std::thread::Builder::new()
            .name("zmqloop-hub-watchdog".into())
            .spawn(move || {
                let mut tracked = None;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
                    thread_watch.look(&mut tracked, Instant::now());
                }
            })?;
        Ok(Watchdog {
            watch,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The state the hub thread updates.
    pub(crate) fn watch(&self) -> Arc<Watch> {
        self.watch.clone()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watchdog's decisions, driven by hand-made instants (no sleeping, no thread).
    #[test]
    fn a_turn_is_reported_once_and_only_after_max_blocking_time_between_two_looks() {
        let watch = Watch::new(Duration::from_millis(100));
        let mut tracked = None;
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);

        watch.look(&mut tracked, at(0)); // idle hub
        assert!(tracked.is_none());
        let first = watch.turn_begins(7);
        watch.look(&mut tracked, at(25));
        watch.look(&mut tracked, at(120)); // 95 ms since first seen: not yet
        assert_eq!(watch.incidents(), 0);
        watch.look(&mut tracked, at(125));
        watch.look(&mut tracked, at(300)); // still the same turn: no second report
        assert_eq!(watch.incidents(), 1);
        assert_eq!(watch.reported_turn.load(Ordering::Relaxed), first);
        watch.turn_ends(first);
        assert!(
            lock(&watch.open_incident).is_none(),
            "the incident was closed"
        );

        // Many short turns seen at every look: each is a new turn, none is reported.
        for look in 0..100 {
            let stamp = watch.turn_begins(8);
            watch.look(&mut tracked, at(400 + look * 50));
            watch.turn_ends(stamp);
        }
        assert_eq!(watch.incidents(), 1);
    }

    /// The race between the two threads, played by hand: the turn ends after the watchdog
    /// decided to report it and before the report is stored, so `turn_ends` finds no incident.
    #[test]
    fn a_turn_that_ends_while_it_is_reported_has_its_incident_closed_all_the_same() {
        let watch = Watch::new(Duration::from_millis(100));
        let mut tracked = None;
        let t0 = Instant::now();
        let stamp = watch.turn_begins(7);
        watch.look(&mut tracked, t0);
        let overdue = watch
            .overdue(&mut tracked, t0 + Duration::from_millis(100))
            .expect("the turn has run max_blocking_time");
        watch.turn_ends(stamp);
        watch.report(overdue);
        assert_eq!(watch.incidents(), 1);
        assert!(
            lock(&watch.open_incident).is_none(),
            "the report saw that the turn had ended and closed the incident"
        );

        // An incident still running is left open by a late close of an earlier turn.
        let next = watch.turn_begins(8);
        watch.look(&mut tracked, t0 + Duration::from_millis(200));
        watch.look(&mut tracked, t0 + Duration::from_millis(300));
        watch.close_incident(stamp);
        assert!(lock(&watch.open_incident).is_some());
        watch.turn_ends(next);
        assert!(lock(&watch.open_incident).is_none());
        assert_eq!(watch.incidents(), 2);
    }

    /// A task whose resume unwinds (a raw core task has no `catch_unwind`; the public spawns
    /// add one) still ends its turn: the watchdog never sees a turn running forever.
    #[test]
    fn a_turn_whose_resume_unwinds_still_ends() {
        let watch = Arc::new(Watch::new(Duration::from_millis(100)));
        let core = super::super::core::HubCore::new(64 * 1024, 0, Some(watch.clone())).unwrap();
        core.spawn(|| std::panic::resume_unwind(Box::new("the task unwinds")));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.run(&|| false)));
        assert!(
            run.is_err(),
            "the task's unwinding reaches the caller of run"
        );
        let mut tracked = None;
        let t0 = Instant::now();
        watch.look(&mut tracked, t0);
        watch.look(&mut tracked, t0 + Duration::from_secs(3600));
        assert_eq!(watch.incidents(), 0, "the unwound turn had ended");
        assert!(
            !super::super::core::in_task(),
            "the current task was reset when its turn unwound"
        );
    }
}
