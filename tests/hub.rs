//! The single-threaded hub: green sockets parking hub tasks (REQ/REP, PUB/SUB, ROUTER/DEALER,
//! HWM with exact counts, timeouts, ETERM, poll, 1000 tasks), determinism, `Rc` state, panics,
//! cancellation, cross-thread spawn. Every hub runs on its own thread under a time limit: a
//! blocked hub thread fails the test with "hung" instead of stalling CI.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

mod common;
use common::zmq;
use zmqloop::green::hub::{self, Hub};

const LIMIT: Duration = Duration::from_secs(60);

/// Creates a hub on a fresh thread, runs `body` with it, and returns the result (under
/// [`LIMIT`]).
fn on_hub<T, F>(body: F) -> T
where
    F: FnOnce(&Hub) -> T + Send + 'static,
    T: Send + 'static,
{
    common::on_thread(LIMIT, move || body(&Hub::new().unwrap()))
}

fn inproc(name: &str) -> String {
    common::inproc(&format!("hub-{name}"))
}

/// The result of a finished task, its panic (a failed assertion inside it) raised again here.
fn finished<T>(task: hub::JoinHandle<T>) -> T {
    task.join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[test]
fn req_rep_over_tcp_between_hub_tasks() {
    on_hub(|hub| {
        let ctx = zmq::Context::new();
        let rep = ctx.socket(zmq::REP).unwrap();
        let endpoint = common::bind_tcp(&rep);
        let server = hub.spawn(move || {
            for _ in 0..200 {
                let msg = rep.recv_msg(0).unwrap();
                rep.send(msg, 0).unwrap();
            }
        });
        let req = ctx.socket(zmq::REQ).unwrap();
        req.connect(&endpoint).unwrap();
        hub.block_on(move || {
            for i in 0..200 {
                req.send(&format!("{i}"), 0).unwrap();
                assert_eq!(req.recv_string(0).unwrap().unwrap(), format!("{i}"));
            }
        });
        hub.run();
        finished(server);
    });
}

#[test]
fn pub_sub_and_router_dealer_on_the_hub() {
    on_hub(|hub| {
        let ctx = zmq::Context::new();
        let (publisher, subscriber) = common::socket_pair(&ctx, "hub-pubsub", zmq::PUB, zmq::SUB);
        subscriber.set_subscribe(b"a.").unwrap();
        let reader = hub.spawn(move || {
            (0..5)
                .map(|_| subscriber.recv_multipart(0).unwrap()[1].clone())
                .collect::<Vec<_>>()
        });
        let writer = hub.spawn(move || {
            for i in 0..5u8 {
                publisher.send_multipart([&b"b."[..], &[i][..]], 0).unwrap();
                publisher.send_multipart([&b"a."[..], &[i][..]], 0).unwrap();
            }
        });
        hub.run();
        finished(writer);
        let got = finished(reader);
        assert_eq!(got, (0..5u8).map(|i| vec![i]).collect::<Vec<_>>());

        let router = ctx.socket(zmq::ROUTER).unwrap();
        let endpoint = inproc("router");
        router.bind(&endpoint).unwrap();
        let mut dealers = Vec::new();
        for id in 0..3 {
            let dealer = ctx.socket(zmq::DEALER).unwrap();
            dealer.set_identity(format!("d{id}").as_bytes()).unwrap();
            dealer.connect(&endpoint).unwrap();
            dealers.push(hub.spawn(move || {
                dealer.send_multipart(["", "hello"], 0).unwrap();
                assert_eq!(
                    dealer.recv_multipart(0).unwrap(),
                    vec![b"".to_vec(), format!("hi d{id}").into_bytes()]
                );
            }));
        }
        hub.block_on(move || {
            for _ in 0..3 {
                let frames = router.recv_multipart(0).unwrap();
                assert_eq!(frames.len(), 3);
                let reply = format!("hi {}", String::from_utf8_lossy(&frames[0]));
                router
                    .send_multipart([frames[0].clone(), vec![], reply.into_bytes()], 0)
                    .unwrap();
            }
        });
        hub.run();
        dealers.into_iter().for_each(finished);
        assert_eq!(hub.tasks(), 0);
    });
}

#[test]
fn hwm_back_pressure_on_the_hub_loses_nothing() {
    on_hub(|hub| {
        let ctx = zmq::Context::new();
        let endpoint = inproc("hwm");
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.set_rcvhwm(5).unwrap();
        pull.bind(&endpoint).unwrap();
        let mut producers = Vec::new();
        for p in 0..3u32 {
            let push = ctx.socket(zmq::PUSH).unwrap();
            push.set_sndhwm(5).unwrap();
            push.connect(&endpoint).unwrap();
            producers.push(hub.spawn(move || {
                for n in 0..3000u32 {
                    push.send_multipart([&p.to_be_bytes()[..], &n.to_be_bytes()[..]], 0)
                        .unwrap();
                }
            }));
        }
        hub.block_on(move || {
            let mut next = [0u32; 3];
            for _ in 0..9000 {
                let parts = pull.recv_multipart(0).unwrap();
                let p = u32::from_be_bytes(parts[0][..].try_into().unwrap()) as usize;
                assert_eq!(
                    u32::from_be_bytes(parts[1][..].try_into().unwrap()),
                    next[p]
                );
                next[p] += 1;
            }
            assert_eq!(next, [3000; 3]);
            pull.set_rcvtimeo(20).unwrap();
            assert_eq!(pull.recv_bytes(0), Err(zmq::Error::EAGAIN));
        });
        hub.run();
        producers.into_iter().for_each(finished);
    });
}

#[test]
fn timeouts_on_the_hub_let_other_tasks_run() {
    on_hub(|hub| {
        let ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("rcvtimeo")).unwrap();
        pull.set_rcvtimeo(100).unwrap();
        let ticks = Rc::new(Cell::new(0));
        let ticker_ticks = ticks.clone();
        let stop = Rc::new(Cell::new(false));
        let ticker_stop = stop.clone();
        let ticker = hub.spawn(move || {
            while !ticker_stop.get() {
                ticker_ticks.set(ticker_ticks.get() + 1);
                hub::sleep(Duration::from_millis(5));
            }
        });
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.set_sndhwm(1).unwrap();
        push.set_sndtimeo(50).unwrap();
        push.bind(&inproc("sndtimeo")).unwrap(); // no peer: sends cannot go anywhere
        hub.block_on(move || {
            let start = Instant::now();
            assert_eq!(pull.recv_bytes(0), Err(zmq::Error::EAGAIN));
            assert!(start.elapsed() >= Duration::from_millis(100));
            let start = Instant::now();
            assert_eq!(push.send("nowhere", 0), Err(zmq::Error::EAGAIN));
            assert!(start.elapsed() >= Duration::from_millis(50));
            stop.set(true);
            assert!(ticks.get() >= 5, "the ticker barely ran: {}", ticks.get());
        });
        hub.run();
        finished(ticker);
    });
}

#[test]
fn context_termination_reaches_parked_hub_tasks_with_eterm() {
    on_hub(|hub| {
        let mut ctx = zmq::Context::new();
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let pull = ctx.socket(zmq::PULL).unwrap();
                pull.bind(&inproc("eterm")).unwrap();
                hub.spawn(move || pull.recv_bytes(0).err())
            })
            .collect();
        hub.block_on(move || {
            hub::yield_now(); // let every receiver park first
            ctx.destroy().unwrap(); // parks this task only
        });
        hub.run();
        for handle in handles {
            assert_eq!(handle.try_join().unwrap().unwrap(), Some(zmq::Error::ETERM));
        }
    });
}

#[test]
fn a_thousand_tasks_against_one_router() {
    on_hub(|hub| {
        let ctx = zmq::Context::new();
        ctx.set_max_sockets(4096).unwrap();
        let router = ctx.socket(zmq::ROUTER).unwrap();
        let endpoint = inproc("thousand");
        router.bind(&endpoint).unwrap();
        let served = hub.spawn(move || {
            for _ in 0..1000 * 5 {
                let frames = router.recv_multipart(0).unwrap();
                router.send_multipart(frames, 0).unwrap();
            }
        });
        let mut clients = Vec::new();
        for id in 0..1000 {
            let dealer = ctx.socket(zmq::DEALER).unwrap();
            dealer.connect(&endpoint).unwrap();
            clients.push(hub.spawn(move || {
                for n in 0..5 {
                    let body = format!("{id}/{n}");
                    dealer.send(body.as_str(), 0).unwrap();
                    assert_eq!(dealer.recv_string(0).unwrap().unwrap(), body);
                }
            }));
        }
        hub.run();
        clients.into_iter().for_each(finished);
        finished(served);
        assert_eq!(hub.tasks(), 0);
    });
}

/// A small program with yields, sleeps and messages; returns the order things happened in.
fn interleaving() -> Vec<String> {
    on_hub(|hub| {
        let log = Rc::new(RefCell::new(Vec::new()));
        let ctx = zmq::Context::new();
        let endpoint = inproc("determinism");
        let mut tasks = Vec::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&endpoint).unwrap();
        for t in 0..3 {
            let log = log.clone();
            let push = ctx.socket(zmq::PUSH).unwrap();
            push.connect(&endpoint).unwrap();
            tasks.push(hub.spawn(move || {
                for step in 0..3 {
                    log.borrow_mut().push(format!("task {t} step {step}"));
                    push.send(&format!("{t}.{step}"), 0).unwrap();
                    hub::yield_now();
                }
            }));
        }
        let reader_log = log.clone();
        tasks.push(hub.spawn(move || {
            for _ in 0..9 {
                let msg = pull.recv_string(0).unwrap().unwrap();
                reader_log.borrow_mut().push(format!("got {msg}"));
            }
        }));
        hub.run();
        tasks.into_iter().for_each(finished);
        let out = log.borrow().clone();
        out
    })
}

#[test]
fn the_same_program_gives_the_same_interleaving() {
    let first = interleaving();
    assert_eq!(first.len(), 18);
    for _ in 0..3 {
        assert_eq!(interleaving(), first);
    }
}

#[test]
fn a_panicking_task_is_contained_and_reported() {
    on_hub(|hub| {
        let survivor_ran = Rc::new(Cell::new(false));
        let flag = survivor_ran.clone();
        let bad = hub.spawn(|| -> u32 { panic!("task failure on purpose") });
        let good = hub.spawn(move || {
            hub::yield_now();
            flag.set(true);
            7
        });
        hub.run();
        let panic = bad.try_join().unwrap().unwrap_err();
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"task failure on purpose")
        );
        assert_eq!(good.try_join().unwrap().unwrap(), 7);
        assert!(survivor_ran.get());
    });
}

#[test]
fn cancelling_a_parked_task_unwinds_it_and_closes_its_socket() {
    on_hub(|hub| {
        let mut ctx = zmq::Context::new();
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&inproc("cancel")).unwrap();
        struct Dropped(Rc<Cell<bool>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let guard = Dropped(dropped.clone());
        let victim = Rc::new(hub.spawn(move || {
            let _guard = guard;
            pull.recv_bytes(0)
        }));
        let canceller = victim.clone();
        hub.block_on(move || {
            hub::yield_now(); // the victim parks in recv
            canceller.cancel();
            hub::yield_now();
        });
        hub.run();
        assert!(dropped.get(), "the cancelled task's stack did not unwind");
        let victim = Rc::try_unwrap(victim).ok().unwrap();
        let panic = victim.try_join().unwrap().unwrap_err();
        assert!(panic.downcast_ref::<hub::Cancelled>().is_some());
        // Its socket was closed: terminating the context (which waits for every socket) ends.
        hub.block_on(move || ctx.destroy().unwrap());
    });
}

#[test]
fn a_handle_spawns_from_another_thread() {
    on_hub(|hub| {
        let ctx = zmq::Context::new();
        let endpoint = inproc("remote");
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&endpoint).unwrap();
        let handle = hub.handle();
        let remote_ctx = ctx.clone();
        let thread = std::thread::spawn(move || {
            handle.spawn(move || {
                let push = remote_ctx.socket(zmq::PUSH).unwrap();
                push.connect(&endpoint).unwrap();
                push.send("from another thread", 0).unwrap();
            });
        });
        let got = hub.block_on(move || pull.recv_string(0).unwrap().unwrap());
        assert_eq!(got, "from another thread");
        thread.join().unwrap();
    });
}

#[test]
fn green_poll_and_join_inside_the_hub() {
    on_hub(|hub| {
        let ctx = zmq::Context::new();
        let endpoint = inproc("poll");
        let pull = ctx.socket(zmq::PULL).unwrap();
        pull.bind(&endpoint).unwrap();
        let push = ctx.socket(zmq::PUSH).unwrap();
        push.connect(&endpoint).unwrap();
        hub.block_on(move || {
            let sender = hub::spawn(move || {
                hub::sleep(Duration::from_millis(20));
                push.send("polled", 0).unwrap();
                "sent"
            });
            assert_eq!(pull.poll(zmq::POLLIN, 5_000).unwrap(), 1);
            assert_eq!(pull.recv_string(0).unwrap().unwrap(), "polled");
            assert_eq!(sender.join().unwrap(), "sent");
            assert_eq!(pull.poll(zmq::POLLIN, 30).unwrap(), 0);
        });
    });
}

#[test]
fn dropping_a_hub_cancels_its_parked_tasks_and_closes_their_sockets() {
    on_hub(|_| {
        let mut ctx = zmq::Context::new();
        let hub = Hub::new().unwrap();
        for _ in 0..10 {
            let pull = ctx.socket(zmq::PULL).unwrap();
            pull.bind(&inproc("drop-hub")).unwrap();
            hub.spawn(move || pull.recv_bytes(0));
        }
        // Start them so that they park in recv, then stop and drop the hub.
        hub.block_on(hub::yield_now);
        assert_eq!(hub.tasks(), 10);
        drop(hub);
        // Every socket was closed by the unwinding: termination (which waits for them) ends.
        ctx.destroy().unwrap();
    });
}

#[test]
#[should_panic(expected = "cannot be run from inside a hub task")]
fn running_a_hub_from_inside_a_task_is_refused() {
    common::on_thread(LIMIT, || {
        let hub = Rc::new(Hub::new().unwrap());
        let inner = hub.clone();
        hub.block_on(move || inner.run()); // without the check this would wait forever
    });
}

#[test]
fn two_tasks_waiting_on_one_shared_socket_get_ebusy_not_a_panic() {
    on_hub(|hub| {
        let ctx = zmq::Context::new();
        let pull = Rc::new(ctx.socket(zmq::PULL).unwrap());
        pull.bind(&inproc("shared")).unwrap();
        pull.set_rcvtimeo(50).unwrap();
        let first = {
            let pull = pull.clone();
            hub.spawn(move || pull.recv_bytes(0))
        };
        // Runs after `first` has parked in its receive (tasks run in spawn order).
        let second = hub.spawn(move || pull.recv_bytes(0));
        hub.run();
        assert_eq!(finished(second), Err(zmq::Error::EBUSY));
        assert_eq!(
            finished(first),
            Err(zmq::Error::EAGAIN),
            "the first wait was disturbed"
        );
    });
}
