//! An echo server written with `ZmqStream` on an `IOLoop`, measured side by side against a
//! plain blocking echo loop (same process, same client, alternating rounds). Four sides: the
//! blocking loop copying each frame into a `Vec<u8>` (`recv_multipart`, the baseline), the
//! blocking loop passing libzmq's messages on (`recv_msg`, zero-copy), the stream with byte
//! frames (`on_recv_stream` + `send_multipart`) and the stream with zero-copy messages
//! (`on_recv_stream_msgs` + `send_msgs`). Each side's throughput is reported as its ratio to the
//! baseline's, with the CPU time its server thread spent per message (which depends less than
//! the throughput on how the client and server threads happen to share the cores). The fixture
//! (client, the echo servers) is `zmqloop_fixtures::echo`, shared with the `eventloop` bench.
//!
//! `cargo run --release --example stream_echo [messages] [rounds] [only]` (default 200,000
//! round trips over inproc with a window of 100 messages in flight, 3 rounds; the medians are
//! reported). `only` keeps the baseline and the sides whose names contain it (`zero-copy`,
//! `ZmqStream`...), to profile one side.

use std::time::Duration;

use zmqloop_fixtures::echo::{run_measured, SIDES};

/// One round of one side: round trips per second, and server CPU microseconds per message.
fn measure(name: &str, count: usize, serve: fn(zmqloop::green::Socket, usize)) -> (f64, f64) {
    let measured = run_measured(name, count, serve);
    (
        count as f64 / measured.elapsed.as_secs_f64(),
        measured.server_cpu.as_secs_f64() * 1e6 / count as f64,
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args
        .next()
        .map_or(200_000, |a| a.parse().expect("messages: a number"));
    let rounds: usize = args
        .next()
        .map_or(3, |a| a.parse().expect("rounds: a number"));
    let only = args.next().unwrap_or_default();
    let sides: Vec<_> = SIDES
        .iter()
        .enumerate()
        .filter(|&(i, (name, _))| i == 0 || name.contains(only.as_str()))
        .map(|(_, side)| side)
        .collect();
    let (mut rates, mut cpus) = (vec![Vec::new(); sides.len()], vec![Vec::new(); sides.len()]);
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (i, (name, serve)) in sides.iter().enumerate() {
            let (rate, cpu) = measure(name, count, *serve);
            rates[i].push(rate);
            cpus[i].push(cpu);
            line += &format!(" {name} {:.0}k", rate / 1e3);
        }
        println!("{line} msg/s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rates: Vec<f64> = rates.into_iter().map(median).collect();
    let cpus: Vec<f64> = cpus.into_iter().map(median).collect();
    println!("median of {rounds} rounds, ratio to {}:", sides[0].0);
    for (i, (name, _)) in sides.iter().enumerate() {
        println!(
            "  {name:<20} {:>5.0} k msg/s  {:.2}x   server CPU {:.2} us/msg",
            rates[i] / 1e3,
            rates[i] / rates[0],
            cpus[i]
        );
    }
}
