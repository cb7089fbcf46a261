//! Scale and mixing on one may worker: 1000 coroutine clients against one server, a green
//! socket used from a plain thread talking to one in a coroutine, and 10,000 sockets created,
//! parked on and dropped in a loop without leaking fds or tripping over reused fd numbers.

mod common;
use std::collections::HashSet;

use common::{bind_tcp, inproc, join, run, zmq};

#[test]
fn a_thousand_coroutine_clients_against_one_router() {
    const CLIENTS: usize = 1000;
    const REQUESTS: usize = 10;
    run(|| {
        let ctx = zmq::Context::new();
        ctx.set_max_sockets(4096).unwrap();
        let router = ctx.socket(zmq::ROUTER).unwrap();
        let endpoint = bind_tcp(&router);
        let server = zmq::spawn(move || {
            let mut seen = HashSet::new();
            for _ in 0..CLIENTS * REQUESTS {
                let frames = router.recv_multipart(0).unwrap();
                seen.insert(frames[0].clone());
                router.send_multipart(frames, 0).unwrap();
            }
            seen.len()
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let dealer = ctx.socket(zmq::DEALER).unwrap();
                dealer.connect(&endpoint).unwrap();
                zmq::spawn(move || {
                    for n in 0..REQUESTS {
                        let body = format!("{id}/{n}");
                        dealer.send(&body, 0).unwrap();
                        assert_eq!(dealer.recv_string(0).unwrap().unwrap(), body);
                    }
                })
            })
            .collect();
        for client in clients {
            join(client);
        }
        assert_eq!(join(server), CLIENTS, "every client must have been served");
    });
}

#[test]
fn green_socket_on_a_plain_thread_talks_to_one_in_a_coroutine() {
    common::init();
    let ctx = zmq::Context::new();
    let endpoint = inproc("mixed");
    let rep = ctx.socket(zmq::REP).unwrap();
    rep.bind(&endpoint).unwrap();
    let server = zmq::spawn(move || {
        for _ in 0..50 {
            let n: u32 = rep.recv_string(0).unwrap().unwrap().parse().unwrap();
            rep.send(&(n + 1).to_string(), 0).unwrap();
        }
    });
    // This thread is no coroutine: the green calls block it like plain zmq would.
    let req = ctx.socket(zmq::REQ).unwrap();
    req.set_rcvtimeo(30_000).unwrap(); // a hang fails instead of stalling CI
    req.connect(&endpoint).unwrap();
    for n in 0..50u32 {
        req.send(&n.to_string(), 0).unwrap();
        assert_eq!(req.recv_string(0).unwrap().unwrap(), (n + 1).to_string());
    }
    join(server);
}

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
