//! The hub's blocking detector (`Builder::max_blocking_time`): a task that blocks the hub's
//! thread is reported once per incident, by id and name, in the log and in
//! `Hub::blocked_incidents`; tasks that park are never reported. Every hub runs on its own
//! thread under a time limit; log lines are told apart by task names unique to each test.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

mod common;
use common::{logs, zmq};
use zmqloop::green::hub::{self, Hub};

const LIMIT: Duration = Duration::from_secs(60);
const MAX_BLOCKING: Duration = Duration::from_millis(100);

/// A hub with the detector at [`MAX_BLOCKING`], made and run on a fresh thread under
/// [`LIMIT`], with log capture on.
fn on_watched_hub<T, F>(body: F) -> T
where
    F: FnOnce(&Hub) -> T + Send + 'static,
    T: Send + 'static,
{
    on_hub_watched_at(MAX_BLOCKING, body)
}

/// [`on_watched_hub`] with the detector at `max_blocking_time`.
fn on_hub_watched_at<T, F>(max_blocking_time: Duration, body: F) -> T
where
    F: FnOnce(&Hub) -> T + Send + 'static,
    T: Send + 'static,
{
    logs::capture();
    common::on_thread(LIMIT, move || {
        let hub = Hub::builder()
            .max_blocking_time(max_blocking_time)
            .build()
            .unwrap();
        body(&hub)
    })
}

/// The number in "has run N ms" of a warning.
fn reported_ms(warning: &str) -> u64 {
    let after = warning.split("has run ").nth(1).expect("a duration");
    after.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_task_that_sleeps_the_thread_is_reported_once_with_its_id_and_name() {
    let (id, incidents) = on_watched_hub(|hub| {
        let ticks = Rc::new(Cell::new(0));
        let ticker_ticks = ticks.clone();
        hub.spawn_named("watchdog-ticker", move || {
            for _ in 0..5 {
                hub::sleep(Duration::from_millis(10));
                ticker_ticks.set(ticker_ticks.get() + 1);
            }
        });
        let blocker = hub.spawn_named("watchdog-sleeper", || {
            std::thread::sleep(Duration::from_millis(300));
        });
        let id = blocker.id();
        hub.run();
        assert_eq!(ticks.get(), 5);
        (id, hub.blocked_incidents())
    });
    assert_eq!(incidents, 1, "one incident for one blocking turn");
    let warnings = logs::matching(log::Level::Warn, "\"watchdog-sleeper\"");
    assert_eq!(warnings.len(), 1, "reported once: {warnings:?}");
    assert!(
        warnings[0].contains(&format!("task {id} \"watchdog-sleeper\"")),
        "{}",
        warnings[0]
    );
    assert!(reported_ms(&warnings[0]) >= MAX_BLOCKING.as_millis() as u64);
    let ends = logs::matching(log::Level::Info, "\"watchdog-sleeper\" parked again");
    assert_eq!(ends.len(), 1, "the end of the incident is logged: {ends:?}");
    assert!(logs::matching(log::Level::Warn, "\"watchdog-ticker\"").is_empty());
}

#[test]
fn each_blocking_turn_of_a_task_is_its_own_incident() {
    let incidents = on_watched_hub(|hub| {
        hub.spawn_named("watchdog-twice", || {
            std::thread::sleep(Duration::from_millis(250));
            hub::yield_now(); // ends the turn: the next sleep is a new incident
            std::thread::sleep(Duration::from_millis(250));
        });
        hub.run();
        hub.blocked_incidents()
    });
    assert_eq!(incidents, 2);
    assert_eq!(
        logs::matching(log::Level::Warn, "\"watchdog-twice\"").len(),
        2
    );
}

#[test]
fn an_unnamed_task_is_reported_by_its_id() {
    let (id, incidents) = on_watched_hub(|hub| {
        hub.spawn(|| {}); // takes id 1, so the blocker's id is not the first one
        let blocker = hub.spawn(|| std::thread::sleep(Duration::from_millis(300)));
        hub.run();
        (blocker.id(), hub.blocked_incidents())
    });
    assert_eq!(id, 2);
    assert_eq!(incidents, 1);
    // Other tests' hubs have their own task 2: the line must at least exist.
    assert!(!logs::matching(log::Level::Warn, "task 2 has run").is_empty());
}

/// The detector's limit in [`well_behaved_tasks_are_never_reported`]. Time the OS takes the
/// hub thread away counts as running (module docs of `hub`), so a limit like [`MAX_BLOCKING`]
/// would make a preemption of 100 ms, which a loaded 2-core test machine can give, a false
/// incident: asserting that no incident happens is only sound with a limit that no preemption
/// on a test machine reaches, and the tasks' turns (microseconds) are far below it. That a
/// detector's decision never adds short turns up, whatever the timing, is proven without a
/// clock by the hand-driven unit tests of `green/src/hub/watchdog.rs`.
const POLITE_MAX_BLOCKING: Duration = Duration::from_secs(3);

#[test]
fn well_behaved_tasks_are_never_reported() {
    let incidents = on_hub_watched_at(POLITE_MAX_BLOCKING, |hub| {
        let ctx = zmq::Context::new();
        let endpoint = common::inproc("watchdog-echo");
        let rep = ctx.socket(zmq::REP).unwrap();
        rep.bind(&endpoint).unwrap();
        let server = hub.spawn_named("watchdog-polite-server", move || {
            for _ in 0..2000 {
                let request = rep.recv_msg(0).unwrap();
                rep.send(request, 0).unwrap();
            }
        });
        let req = ctx.socket(zmq::REQ).unwrap();
        req.connect(&endpoint).unwrap();
        let client = hub.spawn_named("watchdog-polite-client", move || {
            for i in 0..2000 {
                req.send(&format!("{i}"), 0).unwrap();
                assert_eq!(req.recv_string(0).unwrap().unwrap(), format!("{i}"));
                if i % 100 == 0 {
                    hub::sleep(Duration::from_millis(20));
                }
            }
            // The hub idles longer than the limit plus two looks (a quarter of it each): a
            // turn left open by a park would be reported here.
            hub::sleep(POLITE_MAX_BLOCKING * 3 / 2);
        });
        for n in 0..50 {
            hub.spawn_named("watchdog-polite-yielder", move || {
                for _ in 0..n {
                    hub::yield_now();
                }
            });
        }
        hub.run();
        client.try_join().unwrap().unwrap();
        server.try_join().unwrap().unwrap();
        hub.blocked_incidents()
    });
    assert_eq!(incidents, 0);
    assert!(logs::matching(log::Level::Warn, "watchdog-polite").is_empty());
}

#[test]
fn without_max_blocking_time_nothing_is_watched() {
    logs::capture();
    let incidents = common::on_thread(LIMIT, || {
        let hub = Hub::new().unwrap();
        hub.spawn_named("watchdog-unwatched", || {
            std::thread::sleep(Duration::from_millis(200));
        });
        hub.run();
        hub.blocked_incidents()
    });
    assert_eq!(incidents, 0);
    assert!(logs::matching(log::Level::Warn, "watchdog-unwatched").is_empty());
}

#[test]
fn a_named_task_spawned_from_a_task_is_reported_with_its_name() {
    let incidents = on_watched_hub(|hub| {
        hub.block_on(|| {
            let child = hub::spawn_named("watchdog-child", || {
                std::thread::sleep(Duration::from_millis(300));
            });
            child.join().unwrap();
        });
        hub.blocked_incidents()
    });
    assert_eq!(incidents, 1);
    assert_eq!(
        logs::matching(log::Level::Warn, "\"watchdog-child\"").len(),
        1
    );
}

#[test]
#[should_panic(expected = "max_blocking_time must be at least 1 ms")]
fn a_max_blocking_time_under_a_millisecond_is_refused() {
    let _ = Hub::builder().max_blocking_time(Duration::from_micros(500));
}
