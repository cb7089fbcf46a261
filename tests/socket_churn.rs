//! 10,000 sockets created, parked on and dropped in a loop on one may worker, without leaking
//! fds or tripping over reused fd numbers. Alone in its test binary: it counts the open fds of
//! the whole process, which tests running beside it would change.
//!
//! libzmq closes a dropped socket later, on its reaper thread, and a context refuses a new
//! socket (EMFILE) once `ZMQ_MAX_SOCKETS` of them are open: a loop on one core can create
//! sockets faster than the reaper closes them (thousands behind within a second here), so the
//! rounds run in batches, each on a context of its own, whose `destroy` waits for the reaper.
//! Every batch after the first reuses the fd numbers the previous one closed.

mod common;

use common::{inproc, join, run, zmq};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_sockets_created_parked_on_and_dropped() {
    const BATCHES: usize = 10;
    const ROUNDS_PER_BATCH: usize = 1_000;
    run(|| {
        let fds_before = open_fds();
        for batch in 0..BATCHES {
            let mut ctx = zmq::Context::new();
            ctx.set_max_sockets(4096).unwrap(); // a batch's 2000 sockets, all unreaped at worst
            churn(&ctx, batch, ROUNDS_PER_BATCH);
            ctx.destroy().unwrap(); // waits until libzmq's reaper closed every socket
        }
        let fds_after = open_fds();
        assert!(
            fds_after <= fds_before + 2,
            "fd leak: {fds_before} open before, {fds_after} after {} rounds",
            BATCHES * ROUNDS_PER_BATCH
        );
    });
}

/// `rounds` times: a PULL bound and a PUSH connected on `ctx`, the PULL's receive parked until
/// a helper coroutine sends on the PUSH, then both dropped.
fn churn(ctx: &zmq::Context, batch: usize, rounds: usize) {
    let (go_tx, go_rx) = may::sync::mpsc::channel::<zmq::Socket>();
    let (back_tx, back_rx) = may::sync::mpsc::channel::<zmq::Socket>();
    // The helper only runs when the main coroutine parks (one worker), so every recv
    // below really parks and registers its socket's fd before the message comes.
    let helper = zmq::spawn(move || {
        while let Ok(push) = go_rx.recv() {
            push.send("ping", 0).unwrap();
            back_tx.send(push).unwrap();
        }
    });
    for round in 0..rounds {
        let endpoint = inproc("churn");
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&endpoint).unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        go_tx.send(push).unwrap();
        let got = pull.recv_bytes(0);
        assert_eq!(
            got.as_deref(),
            Ok(&b"ping"[..]),
            "batch {batch}, round {round}"
        );
        drop(back_rx.recv().unwrap());
        drop(pull);
    }
    drop(go_tx);
    join(helper);
}
