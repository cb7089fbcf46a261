//! What security costs, side by side in one run: connections per second (connect, one
//! REQ/REP round trip, close) and PUSH/PULL throughput over tcp, with NULL, PLAIN and CURVE,
//! with and without the authenticator. Ratios are against NULL in the same run.
//!
//! ```sh
//! cargo run --release --example curve_cost [connections] [messages]   # default 300 100000
//! ```

use std::time::Instant;

use zmqloop::auth::{Authenticator, CurveAuth};
use zmqloop::green as zmq;

/// How a pair of sockets secures itself.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Security {
    Null,
    Plain,
    Curve,
}

struct Keys {
    server: zmq::CurveKeyPair,
    client: zmq::CurveKeyPair,
}

fn secure_server(socket: &zmq::Socket, security: Security, keys: &Keys) -> zmq::Result<()> {
    match security {
        Security::Null => Ok(()),
        Security::Plain => socket.set_plain_server(true),
        Security::Curve => {
            socket.set_curve_server(true)?;
            socket.set_curve_secretkey(&keys.server.secret_key)
        }
    }
}

fn secure_client(socket: &zmq::Socket, security: Security, keys: &Keys) -> zmq::Result<()> {
    match security {
        Security::Null => Ok(()),
        Security::Plain => {
            socket.set_plain_username(Some("admin"))?;
            socket.set_plain_password(Some("secret"))
        }
        Security::Curve => {
            socket.set_curve_serverkey(&keys.server.public_key)?;
            socket.set_curve_publickey(&keys.client.public_key)?;
            socket.set_curve_secretkey(&keys.client.secret_key)
        }
    }
}

/// Connections per second: each connects, makes one round trip, and closes.
fn connections(ctx: &zmq::Context, security: Security, keys: &Keys, n: usize) -> f64 {
    let server = ctx.socket(zmq::REP).unwrap();
    secure_server(&server, security, keys).unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = server.get_last_endpoint().unwrap().unwrap();
    let echo = std::thread::spawn(move || {
        for _ in 0..n {
            let msg = server.recv_msg(0).unwrap();
            server.send(msg, 0).unwrap();
        }
    });
    let start = Instant::now();
    for _ in 0..n {
        let client = ctx.socket(zmq::REQ).unwrap();
        client.set_linger(0).unwrap();
        secure_client(&client, security, keys).unwrap();
        client.connect(&endpoint).unwrap();
        client.send("x", 0).unwrap();
        client.recv_msg(0).unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    echo.join().unwrap();
    rate
}

/// Messages per second, PUSH to PULL over one connection.
fn throughput(ctx: &zmq::Context, security: Security, keys: &Keys, n: usize) -> f64 {
    let pull = ctx.socket(zmq::PULL).unwrap();
    secure_server(&pull, security, keys).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let push = ctx.socket(zmq::PUSH).unwrap();
    secure_client(&push, security, keys).unwrap();
    push.connect(&endpoint).unwrap();
    push.send("warm-up", 0).unwrap();
    pull.recv_msg(0).unwrap();
    let payload = vec![7u8; 1024];
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        for _ in 0..n {
            push.send(&payload[..], 0).unwrap();
        }
        push
    });
    for _ in 0..n {
        pull.recv_msg(0).unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(sender.join().unwrap());
    rate
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().unwrap());
    let conns = args.next().unwrap_or(300);
    let messages = args.next().unwrap_or(100_000);
    println!(
        "CURVE backed by {}",
        zmqloop::auth::require_curve().unwrap()
    );
    let keys = Keys {
        server: zmq::CurveKeyPair::new().unwrap(),
        client: zmq::CurveKeyPair::new().unwrap(),
    };
    let plain_ctx = zmq::Context::new();
    let auth_ctx = zmq::Context::new();
    let mut auth = Authenticator::new(&auth_ctx);
    auth.configure_plain("*", [("admin", "secret")]);
    auth.configure_curve("*", CurveAuth::AllowAny).unwrap();
    auth.start().unwrap();

    let cases = [
        ("NULL", Security::Null, &plain_ctx),
        ("PLAIN + authenticator", Security::Plain, &auth_ctx),
        ("CURVE, no authenticator", Security::Curve, &plain_ctx),
        ("CURVE + authenticator", Security::Curve, &auth_ctx),
    ];
    let base_conn = connections(&plain_ctx, Security::Null, &keys, conns);
    let base_tput = throughput(&plain_ctx, Security::Null, &keys, messages);
    println!("| security | connections/s | vs NULL | 1 KiB msg/s | vs NULL |");
    println!("|---|---|---|---|---|");
    for (name, security, ctx) in cases {
        let (conn, tput) = if security == Security::Null {
            (base_conn, base_tput)
        } else {
            let conn = connections(ctx, security, &keys, conns);
            (conn, throughput(ctx, security, &keys, messages))
        };
        println!(
            "| {name} | {conn:.0} | {:.2} | {:.0} | {:.2} |",
            conn / base_conn,
            tput,
            tput / base_tput
        );
    }
    let stats = auth.statistics();
    println!(
        "authenticator: {} requests, {} accepted",
        stats.requests, stats.accepted
    );
    auth.stop().unwrap();
}
