//! The facts the design relies on (`docs/*.md`) that do not depend on timing, checked against
//! the versions this workspace builds (`zmqloop_fixtures::facts`; `cargo run --example facts`
//! checks the timed ones too). One test: the checks share may's one scheduler and must run in
//! order, before anything else in the process starts may.

use zmqloop_fixtures::facts::{self, Kind};

#[test]
fn the_facts_the_design_relies_on_hold() {
    let findings = facts::check(&[Kind::Exact], |finding| println!("{finding}"));
    let differ: Vec<String> = findings
        .iter()
        .filter(|finding| !finding.holds())
        .map(ToString::to_string)
        .collect();
    assert!(
        differ.is_empty(),
        "facts that differ:\n{}",
        differ.join("\n")
    );
}
