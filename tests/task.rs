//! `task::spawn_here` under the test harness's single may worker: joins park only the joiner.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{zmq, Ping};
use zmq::task::{self, RunsOn};

#[test]
fn joining_a_thread_job_from_a_coroutine_leaves_the_worker_free() {
    common::run(|| {
        // The job is a thread (started outside any scheduler) that ends only when a coroutine
        // tells it to: if `join` blocked the one worker thread, that coroutine could not run.
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let job = std::thread::spawn(move || {
            task::Builder::new()
                .name("task-test-job")
                .spawn_here(move || go_rx.recv_timeout(Duration::from_secs(30)).is_ok())
                .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(job.runs_on(), RunsOn::Thread);
        let ping = Ping::start();
        let counter = ping.counter();
        let releaser = zmq::spawn(move || {
            common::wait_for_rounds(&counter, 3);
            go_tx.send(()).unwrap();
        });
        assert!(job.join().unwrap(), "the job was released by the coroutine");
        common::join(releaser);
        ping.stop();
    });
}

#[test]
fn a_coroutine_job_joined_from_a_plain_thread() {
    common::init();
    let job = common::run(|| task::spawn_here(|| 6 * 7));
    assert_eq!(job.runs_on(), RunsOn::MayCoroutine);
    let out = common::on_thread(common::LIMIT, move || job.join().unwrap());
    assert_eq!(out, 42);
}
