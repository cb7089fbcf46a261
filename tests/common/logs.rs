//! A `log::Log` that keeps every record at `Info` or above in memory, with the thread that
//! logged it, so tests can check that a log line was emitted (and how often). Install it once
//! per test binary with [`capture`]; tests of one binary run in parallel, so look for lines that
//! name what the test made (a unique task name) or that its own thread logged ([`here`]).

use std::sync::{Mutex, Once};
use std::thread::{self, ThreadId};

/// One captured log line.
struct Line {
    thread: ThreadId,
    level: log::Level,
    message: String,
}

static LINES: Mutex<Vec<Line>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            lines().push(Line {
                thread: thread::current().id(),
                level: record.level(),
                message: record.args().to_string(),
            });
        }
    }

    fn flush(&self) {}
}

fn lines() -> std::sync::MutexGuard<'static, Vec<Line>> {
    LINES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the capturing logger (once per test binary; later calls do nothing).
pub fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// The captured lines at `level`, from any thread, whose message contains `needle`.
pub fn matching(level: log::Level, needle: &str) -> Vec<String> {
    lines()
        .iter()
        .filter(|line| line.level == level && line.message.contains(needle))
        .map(|line| line.message.clone())
        .collect()
}

/// The warnings and errors logged on the calling thread so far, as `"LEVEL: message"`.
pub fn here() -> Vec<String> {
    let me = thread::current().id();
    lines()
        .iter()
        .filter(|line| line.thread == me && line.level <= log::Level::Warn)
        .map(|line| format!("{}: {}", line.level, line.message))
        .collect()
}
