//! The fallback timer policy: how long a parked green call may sleep before it re-checks the
//! socket on its own, and how often that re-check found a wake-up that never came.
//!
//! libzmq's notification fd is edge-like and the scheduler's wake-up could be lost, so a parked
//! green call never relies on that wake-up alone: every [`fallback_interval`] the backend
//! checks the parked socket's fd, and if it is readable although the call was not woken, wakes
//! the call, which re-reads `ZMQ_EVENTS`. Such a rescue that finds the socket ready is a
//! *missed edge*: it is counted ([`missed_edges`]) and logged at debug level. With a correct
//! reactor this count stays at zero; a growing count means a bug (or the fault injection of the
//! `fault-injection` feature).
//!
//! A missed edge costs at most one interval of delay. The checks wake nobody while nothing
//! happens, so a short interval is cheap even with many idle sockets: under may one `poll(2)`
//! covers all the fds due in the same 33 ms granule (the hub still polls each due fd on its
//! own). Measured with `cargo run --release --example idle_cost` (10,000 sockets parked in
//! `recv` for 20 s, 2 may workers): 0.77-0.91% of one core for the whole process at the default
//! 2 s interval, of which the checks are 0.16% and the rest may's own idle tick.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The default [`fallback_interval`].
pub const DEFAULT_FALLBACK_INTERVAL: Duration = Duration::from_secs(2);

static INTERVAL_MICROS: AtomicU64 = AtomicU64::new(DEFAULT_FALLBACK_INTERVAL.as_micros() as u64);
static MISSED_EDGES: AtomicU64 = AtomicU64::new(0);

/// How often a parked green call's socket is checked for a missed wake-up.
pub fn fallback_interval() -> Duration {
    Duration::from_micros(INTERVAL_MICROS.load(Ordering::Relaxed))
}

/// Sets the [`fallback_interval`] for waits that start from now on (process-wide).
///
/// # Panics
/// If `interval` is shorter than one millisecond (that would turn the checks into a busy
/// loop).
pub fn set_fallback_interval(interval: Duration) {
    assert!(
        interval >= Duration::from_millis(1),
        "zmqloop: the fallback interval must be at least 1 ms, got {interval:?}"
    );
    let micros = u64::try_from(interval.as_micros()).unwrap_or(u64::MAX);
    INTERVAL_MICROS.store(micros, Ordering::Relaxed);
}

/// How many fallback wake-ups found their socket ready although its fd never signalled
/// (process-wide, since start).
pub fn missed_edges() -> u64 {
    MISSED_EDGES.load(Ordering::Relaxed)
}

pub(crate) fn record_missed_edge(fd: std::os::unix::io::RawFd) {
    let total = MISSED_EDGES.fetch_add(1, Ordering::Relaxed) + 1;
    log::debug!("zmqloop: missed edge on notification fd {fd}: the fallback timer found it ready ({total} so far)");
}

/// Fault injection for tests: simulate fd wake-ups that never arrive.
#[cfg(feature = "fault-injection")]
pub mod fault {
    use std::sync::atomic::{AtomicU64, Ordering};

    static DROP_FD_WAKEUPS: AtomicU64 = AtomicU64::new(0);

    /// Makes the next `count` fd wake-ups of parked green calls (process-wide) be ignored, as if
    /// the edge had been lost: the call parks again without looking, and only the fallback timer
    /// can rescue it.
    pub fn drop_fd_wakeups(count: u64) {
        DROP_FD_WAKEUPS.store(count, Ordering::SeqCst);
    }

    /// How many of the requested drops have not happened yet.
    pub fn pending_drops() -> u64 {
        DROP_FD_WAKEUPS.load(Ordering::SeqCst)
    }

    pub(crate) fn take_drop() -> bool {
        DROP_FD_WAKEUPS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}
