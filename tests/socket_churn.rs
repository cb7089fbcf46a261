//! 10,000 sockets created, parked on and dropped in a loop on one may worker, without leaking
//! fds or tripping over reused fd numbers. Alone in its test binary: it counts the open fds of
//! the whole process, which tests running beside it would change.

mod common;

use common::{inproc, join, run, zmq};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_sockets_created_parked_on_and_dropped() {
    const ROUNDS: usize = 10_000;
    run(|| {
        let mut ctx = zmq::Context::new();
        ctx.set_max_sockets(4096).unwrap();
        let fds_before = open_fds();
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
        for round in 0..ROUNDS {
            let endpoint = inproc("churn");
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.bind(&endpoint).unwrap();
            let push = ctx.socket(zmq::PUSH).unwrap();
            push.connect(&endpoint).unwrap();
            go_tx.send(push).unwrap();
            let got = pull.recv_bytes(0);
            assert_eq!(got.as_deref(), Ok(&b"ping"[..]), "round {round}");
            drop(back_rx.recv().unwrap());
            drop(pull);
        }
        drop(go_tx);
        join(helper);
        ctx.destroy().unwrap(); // waits until libzmq's reaper closed every socket
        let fds_after = open_fds();
        assert!(
            fds_after <= fds_before + 2,
            "fd leak: {fds_before} open before, {fds_after} after {ROUNDS} rounds"
        );
    });
}
