//! Checks the facts about libzmq, may, corosensei and the `zmq` crate that zmqloop's design
//! relies on (`docs/*.md`), against the versions this workspace builds, and prints one line per
//! fact: `ok` with what it saw, or `DIFFERS:` with what it found instead. Exits with status 1
//! if any fact differs. A few seconds.
//!
//! `cargo run --example facts` (`cargo test --test facts` checks those that do not depend on
//! timing).

use zmqloop_fixtures::facts::{self, Kind};

fn main() {
    let findings = facts::check(&[Kind::Exact, Kind::Timed], |finding| println!("{finding}"));
    if findings.iter().any(|finding| !finding.holds()) {
        std::process::exit(1);
    }
}
