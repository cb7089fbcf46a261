//! zmqloop's first spawn starts may without the 1000 coroutines may makes for its pool by
//! default (two mappings and two resident pages each: 2000 mappings, 8 MB). Alone in its
//! binary: may starts once per process.

mod common;
use common::zmq;

/// The process's memory mappings (`/proc/self/maps` has one line per mapping).
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .count()
}

#[test]
fn the_first_spawn_starts_may_without_filling_its_pool() {
    common::init();
    common::on_thread(common::LIMIT, || {
        let before = mappings();
        zmq::spawn(|| ()).join().unwrap();
        let added = mappings() - before;
        // Workers, their malloc arenas, may's timer thread and one coroutine or two: a few
        // dozen. A pool of 1000 stacks: over 2000.
        assert!(
            added < 200,
            "starting may added {added} mappings: its pool was filled ahead of use"
        );
        assert_eq!(
            zmq::may::config().get_pool_capacity(),
            zmq::POOLED_COROUTINES,
            "finished coroutines are kept for reuse"
        );
    });
}
