//! Scale and mixing on one may worker: 1000 coroutine clients against one server, and a green
//! socket used from a plain thread talking to one in a coroutine; the scale benchmark's green
//! sides (`zmqloop_fixtures::scale`) answering every request. (Socket churn without fd
//! leaks is `socket_churn.rs`, alone in its binary because it counts the process's fds.)

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
    common::on_thread(
        common::LIMIT,
        plain_thread_client_against_a_coroutine_server,
    );
}

fn plain_thread_client_against_a_coroutine_server() {
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

#[test]
fn the_scale_benchmark_s_green_sides_answer_every_request() {
    use zmqloop_fixtures::scale::{self, Config, Side, Transport};
    common::init();
    common::on_thread(common::LIMIT, || {
        for transport in [Transport::Inproc, Transport::Tcp] {
            // may keeps the one worker of this binary (`common::init`); two hubs on the hubs side.
            for (side, workers) in [(Side::May, 1), (Side::Hub, 1), (Side::Hubs, 2)] {
                let config = Config {
                    clients: 200,
                    requests: 5,
                    transport,
                    workers,
                    io_threads: 1,
                    teardown: true,
                };
                // Each client asserts every echo, and a client's panic (or a missing reply,
                // which makes the run hang past the limit) fails the run: it returns only
                // once every client has had all its replies.
                scale::run(side, &config);
            }
        }
    });
}
