//! Messaging patterns between coroutines on one may worker: REQ/REP, PAIR, PUB/SUB with topics,
//! ROUTER/DEALER multipart envelopes. With one worker, every exchange between two coroutines
//! proves that a parked call left the thread to its peer.

mod common;
use common::{bind_tcp, join, run, socket_pair, zmq};

#[test]
fn req_rep_over_tcp_between_coroutines() {
    run(|| {
        let ctx = zmq::Context::new();
        let rep = ctx.socket(zmq::REP).unwrap();
        let endpoint = bind_tcp(&rep);
        let server = zmq::spawn(move || {
            for _ in 0..100 {
                let request = rep.recv_string(0).unwrap().unwrap();
                rep.send(&format!("re: {request}"), 0).unwrap();
            }
        });
        let req = ctx.socket(zmq::REQ).unwrap();
        req.connect(&endpoint).unwrap();
        for i in 0..100 {
            req.send(&format!("q{i}"), 0).unwrap();
            assert_eq!(req.recv_string(0).unwrap().unwrap(), format!("re: q{i}"));
        }
        join(server);
    });
}

#[test]
fn pair_over_inproc_both_directions() {
    run(|| {
        let ctx = zmq::Context::new();
        let (a, b) = socket_pair(&ctx, "pair", zmq::PAIR, zmq::PAIR);
        let peer = zmq::spawn(move || {
            for i in 0u32..50 {
                let got = b.recv_bytes(0).unwrap();
                assert_eq!(got, i.to_be_bytes());
                b.send(&(i * 2).to_be_bytes()[..], 0).unwrap();
            }
        });
        for i in 0u32..50 {
            a.send(&i.to_be_bytes()[..], 0).unwrap();
            let mut buf = [0u8; 4];
            assert_eq!(a.recv_into(&mut buf, 0).unwrap(), 4);
            assert_eq!(u32::from_be_bytes(buf), i * 2);
        }
        join(peer);
    });
}

#[test]
fn pub_sub_delivers_only_subscribed_topics() {
    run(|| {
        let ctx = zmq::Context::new();
        let (publisher, subscriber) = socket_pair(&ctx, "pubsub", zmq::PUB, zmq::SUB);
        subscriber.set_subscribe(b"weather.").unwrap();
        subscriber.set_subscribe(b"END").unwrap();
        // Subscriptions travel asynchronously; over inproc they are in place once the
        // subscriber has connected before the publisher sends (libzmq processes them on send).
        let reader = zmq::spawn(move || {
            let mut got = Vec::new();
            loop {
                let parts = subscriber.recv_multipart(0).unwrap();
                if parts[0] == b"END" {
                    return got;
                }
                got.push(String::from_utf8(parts[1].clone()).unwrap());
            }
        });
        for i in 0..10 {
            publisher
                .send_multipart(["sports.".as_bytes(), format!("s{i}").as_bytes()], 0)
                .unwrap();
            publisher
                .send_multipart(["weather.".as_bytes(), format!("w{i}").as_bytes()], 0)
                .unwrap();
        }
        publisher.send("END", 0).unwrap();
        let got = join(reader);
        let expected: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
        assert_eq!(got, expected);
    });
}

#[test]
fn router_dealer_keeps_multipart_envelopes() {
    run(|| {
        let ctx = zmq::Context::new();
        let router = ctx.socket(zmq::ROUTER).unwrap();
        let endpoint = bind_tcp(&router);
        let mut clients = Vec::new();
        for id in 0..5 {
            let dealer = ctx.socket(zmq::DEALER).unwrap();
            dealer
                .set_identity(format!("client-{id}").as_bytes())
                .unwrap();
            dealer.connect(&endpoint).unwrap();
            clients.push(zmq::spawn(move || {
                for n in 0..20 {
                    dealer
                        .send_multipart(["", &format!("{id}:{n}"), "tail"], 0)
                        .unwrap();
                    let reply = dealer.recv_multipart(0).unwrap();
                    assert_eq!(
                        reply,
                        vec![b"".to_vec(), format!("ok {id}:{n}").into_bytes()]
                    );
                }
            }));
        }
        for _ in 0..5 * 20 {
            let frames = router.recv_multipart(0).unwrap();
            assert_eq!(
                frames.len(),
                4,
                "identity, empty delimiter, body, tail: {frames:?}"
            );
            let identity = String::from_utf8(frames[0].clone()).unwrap();
            let body = String::from_utf8(frames[2].clone()).unwrap();
            assert_eq!(
                identity,
                format!("client-{}", body.split(':').next().unwrap())
            );
            assert_eq!(frames[3], b"tail");
            router
                .send_multipart(
                    [
                        frames[0].clone(),
                        Vec::new(),
                        format!("ok {body}").into_bytes(),
                    ],
                    0,
                )
                .unwrap();
        }
        for client in clients {
            join(client);
        }
    });
}
