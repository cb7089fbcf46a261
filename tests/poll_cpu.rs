//! No busy loop: a green poll parked for a second costs (almost) no CPU, on idle sockets and
//! with a plain fd that stays readable while nothing zmq was asked about is ready. Alone in its
//! test binary so that process CPU time measures this test only.

mod common;
use std::os::unix::io::RawFd;
use std::time::{Duration, Instant};

use common::{inproc, run, zmq};
use zmqloop_fixtures::measure::cpu_time;

/// CPU allowed for one second of parked polling: 5% of a core. A busy loop burns ~100%, twenty
/// times the budget; an idle second measures 11-14 ms here in a debug
/// build (may's 10 ms worker tick and the fallback timer, for the whole process), 22 ms while
/// another build ran (the budget was 20 ms, and failed once in 4 suite runs).
const BUDGET: Duration = Duration::from_millis(50);

#[test]
fn a_parked_poll_costs_no_cpu_even_with_a_stuck_readable_fd() {
    run(|| {
        let ctx = zmq::Context::new();
        let sockets: Vec<_> = (0..50)
            .map(|_| {
                let s = ctx.socket(zmq::PULL).unwrap();
                s.bind(&inproc("cpu")).unwrap();
                s
            })
            .collect();

        // 1. Idle sockets only.
        let mut poller = zmq::Poller::new();
        for socket in &sockets {
            poller.register(socket, zmq::POLLIN).unwrap();
        }
        let (cpu, waited) = measure(|| assert_eq!(poller.poll(1000).unwrap(), 0));
        assert!(waited >= Duration::from_millis(1000));
        assert!(cpu < BUDGET, "idle poll used {cpu:?} of CPU in {waited:?}");

        // 2. Plus a pipe that stays readable although only POLLOUT is asked of it (a read
        //    end is never writable): its fd is ready, yet the poll must report nothing.
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` has room for the two fds pipe() writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: writes one byte from a valid buffer to the pipe we own.
        assert_eq!(unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) }, 1);
        poller.register_fd(fds[0], zmq::POLLOUT).unwrap();
        let mut items: Vec<_> = sockets
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        items.push(zmq::PollItem::from_fd(fds[0], zmq::POLLOUT));
        let (cpu, waited) = measure(|| assert_eq!(poller.poll(1000).unwrap(), 0));
        assert!(waited >= Duration::from_millis(1000), "returned early");
        assert!(
            cpu < BUDGET,
            "Poller with a stuck fd used {cpu:?} in {waited:?}"
        );
        let (cpu, waited) = measure(|| assert_eq!(zmq::poll(&mut items, 1000).unwrap(), 0));
        assert!(waited >= Duration::from_millis(1000), "returned early");
        assert!(
            cpu < BUDGET,
            "poll with a stuck fd used {cpu:?} in {waited:?}"
        );
        eprintln!("measured: a 1 s parked poll used {cpu:?} of CPU");
        // SAFETY: closes the pipe this test owns, once.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
    });
}

fn measure(f: impl FnOnce()) -> (Duration, Duration) {
    let cpu = cpu_time();
    let start = Instant::now();
    f();
    (cpu_time() - cpu, start.elapsed())
}
