//! The scale scenario with tmq 0.5 on a multi-threaded tokio runtime: a tokio task per
//! client, one for the echo, the same libzmq build and the same phases as the zmqloop sides.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use tmq::FromZmqSocket;
use zmqloop_fixtures::scale::{self, Config, Phases, RawContext, Report, REQUEST};

/// Runs the scale scenario on tokio with `config.workers` worker threads.
///
/// # Panics
/// If the runtime or a socket cannot be made, or a reply is wrong.
pub fn run(config: &Config) -> Report {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut phases = Phases::start(config.clients);
    let ctx = RawContext::new(config.clients + 64, config.io_threads);
    let router = ctx.socket(zmq::ROUTER);
    router.set_linger(0).expect("linger");
    router.set_backlog(10_000).expect("backlog");
    router
        .bind(&scale::endpoint(config.transport))
        .expect("bind");
    let endpoint = router
        .get_last_endpoint()
        .expect("endpoint")
        .expect("utf-8");
    phases.router_ready();
    let dealers: Vec<zmq::Socket> = (0..config.clients)
        .map(|_| {
            let dealer = ctx.socket(zmq::DEALER);
            dealer.set_linger(0).expect("linger");
            dealer.connect(&endpoint).expect("connect");
            dealer
        })
        .collect();
    phases.sockets_ready();
    let report = runtime.block_on(serve(config, router, dealers, phases));
    config.end(runtime); // closes the sockets its tasks still hold, before the context
    config.end(ctx);
    report
}

async fn serve(
    config: &Config,
    router: zmq::Socket,
    dealers: Vec<zmq::Socket>,
    mut phases: Phases,
) -> Report {
    let parked = Arc::new(AtomicUsize::new(0));
    let requests = config.requests;
    let clients: Vec<_> = dealers
        .into_iter()
        .map(|dealer| {
            let dealer = tmq::dealer::Dealer::from_zmq_socket(dealer).expect("tmq dealer");
            tokio::spawn(client(dealer, requests, parked.clone()))
        })
        .collect();
    // On the thread that runs `block_on`, not a worker: the clients run meanwhile.
    scale::wait_for(&parked, config.clients);
    phases.clients_parked();
    let total = config.total_requests();
    phases.run_starts();
    let router = tmq::router::Router::from_zmq_socket(router).expect("tmq router");
    let server = tokio::spawn(echo(router, total));
    for client in clients {
        client.await.expect("client");
    }
    let report = phases.finish(total as u64);
    server.await.expect("echo");
    report
}

async fn client(mut dealer: tmq::dealer::Dealer, requests: usize, parked: Arc<AtomicUsize>) {
    dealer.send(request()).await.expect("send");
    parked.fetch_add(1, Ordering::SeqCst);
    for sent in 1..=requests {
        let reply = dealer.next().await.expect("a reply").expect("recv");
        assert_eq!(reply.len(), 1);
        assert_eq!(&reply[0][..], &REQUEST[..], "the echo of a request");
        if sent < requests {
            dealer.send(request()).await.expect("send");
        }
    }
}

/// A request: one frame made from [`REQUEST`], as the zmqloop sides make it.
fn request() -> tmq::Multipart {
    tmq::Multipart::from(vec![zmq::Message::from(&REQUEST[..])])
}

async fn echo(router: tmq::router::Router, total: usize) {
    let (mut sink, mut stream) = router.split();
    for _ in 0..total {
        let request = stream.next().await.expect("a request").expect("recv");
        sink.send(request).await.expect("send");
    }
}
