//! Narrows may's epoll registration of a notification fd to "readable".
//!
//! may registers every fd for `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET` and offers no public
//! way to change that (its `mod_socket` is crate-private). libzmq's notification fd is an
//! eventfd, and an eventfd reports `EPOLLOUT` each time it is *read*: every receive that drains
//! the fd queues a wake-up that says "writable". By the time the worker's `epoll_wait`
//! collects it the coroutine has usually parked again, so it is resumed for nothing (the park
//! loop in `mod.rs` sees no readable flag and parks again): one more `epoll_wait` return, two
//! context switches and a re-subscription per park, about half of all wake-ups of a
//! request-reply client.
//!
//! So after may has registered the fd, this module does what may's own `split()` of a socket
//! does for its reader: an `EPOLL_CTL_MOD` to `EPOLLIN | EPOLLRDHUP | EPOLLET`, on may's epoll
//! set, with may's own event data. may does not say which epoll set that is; the set is found
//! once, by reading the kernel's description of each epoll fd of the process
//! (`/proc/self/fdinfo`, a line `tfd: <fd> events: <mask> data: <data>` per watched fd) and
//! taking the one that watches this fd with exactly may's data. Found sets are remembered, so
//! later registrations cost one `epoll_ctl`.
//!
//! # Why the `EPOLL_CTL_MOD` cannot corrupt may's state
//! may's data for a watched fd is the address of the fd's `EventData` (may 0.3, `add_fd`);
//! this module passes that same address, read from the `CoIo` it just registered, so it changes
//! the event mask and nothing else. It only ever touches sets it has seen holding one of our
//! fds with may's data, that is may's selectors, which live as long as the process. An
//! `EPOLL_CTL_MOD` on a set that does not watch the fd fails with `ENOENT` and changes nothing;
//! one fd is watched by one may set at a time (may puts fd `n` in set `n % workers`, and a
//! second registration of the fd fails with `EEXIST`, `docs/may.md`). When anything differs from this picture (no `/proc`, another may layout)
//! the registration simply stays as may made it, and the park loop drops the extra wake-ups as
//! before: narrowing is an optimisation, never a condition.

use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::Mutex;

use may::io::{AsIoData, CoIo};

/// What is known of may's epoll sets.
struct MaySets {
    /// The sets found to be may's selectors, in the order they were found: one per may worker
    /// at most, never closed by may, so an fd number here stays the set it was found to be.
    found: Vec<RawFd>,
    /// Set when a search of `/proc` failed to find the set that watches a fd may had just
    /// registered: this process does not look as this module expects (no `/proc`, another
    /// may), so no registration searches again (a search reads every fd's link, which at
    /// 20,000 fds costs milliseconds).
    search_failed: bool,
}

static MAY_SETS: Mutex<MaySets> = Mutex::new(MaySets {
    found: Vec::new(),
    search_failed: false,
});

/// Changes may's registration of `io` (just made by `CoIo::new`) to report only readability,
/// errors and hang-ups. Returns whether it did; when it did not, the registration is as may
/// made it.
pub(super) fn narrow_to_readable<T: AsRawFd>(io: &CoIo<T>) -> bool {
    let fd = io.as_raw_fd();
    let data = may_event_data(io);
    let mut sets = MAY_SETS.lock().unwrap_or_else(|poison| poison.into_inner());
    if sets.found.iter().any(|&set| modify(set, fd, data)) {
        return true;
    }
    if sets.search_failed {
        return false;
    }
    match find_set_watching(fd, data) {
        Ok(Some(set)) if modify(set, fd, data) => {
            log::debug!("zmqloop: may's epoll set {set} found (it watches fd {fd})");
            sets.found.push(set);
            true
        }
        Err(err) => {
            // Out of fds, most likely: the next registration searches again.
            log::debug!("zmqloop: cannot search /proc for may's epoll set now: {err}");
            false
        }
        _ => {
            log::warn!(
                "zmqloop: may's epoll set for fd {fd} not found; may's registrations stay \
                 readable-and-writable (each receive then costs a wasted wake-up)"
            );
            sets.search_failed = true;
            false
        }
    }
}

/// The data may gave the kernel for `io`'s fd: the address of its `EventData`.
fn may_event_data<T: AsRawFd>(io: &CoIo<T>) -> u64 {
    // `IoData` derefs to the `Arc` of may's (unnameable) `EventData`.
    let event_data = &**io.as_io_data();
    std::sync::Arc::as_ptr(event_data).cast::<()>() as u64
}

/// `EPOLL_CTL_MOD` of `fd` in `set` to readable-only, keeping `data`. False if `set` does not
/// watch `fd` (or is not an epoll set).
fn modify(set: RawFd, fd: RawFd, data: u64) -> bool {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
        u64: data,
    };
    // SAFETY: `event` is a valid epoll_event for the duration of the call; the kernel only
    // reads it. An fd that is not an epoll set, or a set not watching `fd`, makes the call
    // fail without effect.
    unsafe { libc::epoll_ctl(set, libc::EPOLL_CTL_MOD, fd, &mut event) == 0 }
}

/// The epoll fd of this process that watches `fd` with `data`, from `/proc/self/fdinfo`.
/// An error means the search could not be made (no fd left to read `/proc` with...), not
/// that no set watches `fd`.
fn find_set_watching(fd: RawFd, data: u64) -> std::io::Result<Option<RawFd>> {
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let name = entry?.file_name();
        let Some(candidate) = name.to_str().and_then(|name| name.parse::<RawFd>().ok()) else {
            continue;
        };
        if is_epoll(candidate) && watches(candidate, fd, data)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

fn is_epoll(fd: RawFd) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .is_ok_and(|target| target.as_os_str() == "anon_inode:[eventpoll]")
}

/// Whether epoll set `set` watches `fd` with `data` (its fdinfo has such a `tfd:` line).
fn watches(set: RawFd, fd: RawFd, data: u64) -> std::io::Result<bool> {
    match std::fs::read_to_string(format!("/proc/self/fdinfo/{set}")) {
        Ok(info) => Ok(watched_events(&info, fd, data).is_some()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false), // closed since
        Err(err) => Err(err),
    }
}

/// The event mask with which the set described by `fdinfo` watches `fd` with `data`.
fn watched_events(fdinfo: &str, fd: RawFd, data: u64) -> Option<u32> {
    fdinfo
        .lines()
        .filter_map(watched_line)
        .find(|watched| watched.fd == fd && watched.data == data)
        .map(|watched| watched.events)
}

/// One watched fd of an epoll set, as its fdinfo describes it.
#[derive(Debug, PartialEq, Eq)]
struct Watched {
    fd: RawFd,
    events: u32,
    data: u64,
}

/// Parses `tfd: <fd> events: <hex> data: <hex> ...` (the kernel's `ep_show_fdinfo`).
fn watched_line(line: &str) -> Option<Watched> {
    let mut words = line.split_whitespace();
    let mut field = |name: &str| {
        (words.next()? == name).then_some(())?;
        words.next()
    };
    let fd = field("tfd:")?.parse().ok()?;
    let events = u32::from_str_radix(field("events:")?, 16).ok()?;
    let data = u64::from_str_radix(field("data:")?, 16).ok()?;
    Some(Watched { fd, events, data })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use may::io::WaitIo;

    use super::super::FdRef;
    use super::*;

    #[test]
    fn fdinfo_lines_give_fd_events_and_data() {
        let line = "tfd:       12 events:   80002019 data:     7f3a2c001230  pos:0 ino:7 sdev:f";
        let watched = Watched {
            fd: 12,
            events: 0x8000_2019,
            data: 0x7f3a_2c00_1230,
        };
        assert_eq!(watched_line(line), Some(watched));
        assert_eq!(watched_line("pos:\t0"), None);
        assert_eq!(watched_line("tfd: x events: 1 data: 2"), None);
    }

    /// The flag of may's `WaitIoWaker`: the guard ended the wait.
    const WAKER: usize = 0x8000_0000;

    /// `wait_io` with a waker that ends the wait after `guard` if nothing else does first.
    fn wait_guarded(io: &CoIo<FdRef>, guard: Duration) -> usize {
        let waker = io.waker();
        let (done, done_rx) = mpsc::channel::<()>();
        let guard = std::thread::spawn(move || {
            if done_rx.recv_timeout(guard).is_err() {
                waker.wakeup();
            }
        });
        let flags = io.wait_io();
        let _ = done.send(());
        guard.join().expect("guard thread");
        flags
    }

    /// Without the narrowing, the read at the end reports `EPOLLOUT` and the last wait returns
    /// at once with it.
    #[test]
    fn a_narrowed_eventfd_wakes_its_coroutine_when_written_and_not_when_read() {
        let steps = crate::spawn(|| {
            // SAFETY: plain syscall; the fd is checked and closed below.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            assert!(fd >= 0, "eventfd");
            let io = CoIo::new(FdRef(fd)).expect("register with may");
            assert!(narrow_to_readable(&io), "may's epoll set not found");
            // The registration's own edge (an eventfd is writable) may have been collected
            // before the narrowing: wait until nothing is pending.
            for stale in 0.. {
                assert!(stale < 10, "wake-ups keep coming on an idle eventfd");
                if wait_guarded(&io, Duration::from_millis(50)) == WAKER {
                    break;
                }
            }
            let data = may_event_data(&io);
            let set = find_set_watching(fd, data).unwrap().expect("still watched");
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{set}")).unwrap();
            let mask = watched_events(&info, fd, data).expect("watched");
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to the eventfd made above.
            assert_eq!(unsafe { libc::write(fd, one.as_ptr().cast(), 8) }, 8);
            let written = wait_guarded(&io, Duration::from_secs(5));
            let mut buf = [0u8; 8];
            // SAFETY: reads 8 bytes into a live buffer from the eventfd made above.
            assert_eq!(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 8) }, 8);
            let read = wait_guarded(&io, Duration::from_millis(200));
            drop(io);
            // SAFETY: `fd` is ours and unregistered (the CoIo is dropped).
            unsafe { libc::close(fd) };
            (mask, written, read)
        })
        .join()
        .expect("the test coroutine");
        let (mask, written, read) = steps;
        assert_ne!(
            written & libc::EPOLLIN as usize,
            0,
            "a write wakes: {written:#x}"
        );
        assert_eq!(
            read, 0x8000_0000,
            "a read must not wake, only the guard: {read:#x}"
        );
        // The kernel adds EPOLLERR and EPOLLHUP to every mask.
        let (readable, writable) = (libc::EPOLLIN as u32, libc::EPOLLOUT as u32);
        assert_eq!(
            mask & (readable | writable),
            readable,
            "event mask {mask:#x}"
        );
    }
}
