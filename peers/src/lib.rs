//! Internal to the zmqloop workspace (not published, not built by `cargo test`): zmqloop
//! measured side by side with other Rust ZeroMQ crates in the same process run.
//!
//! - [`tmq_side`]: the scale scenario of `zmqloop_fixtures::scale` with tmq 0.5 on tokio.
//! - `examples/scale.rs`: runs every side of the scale scenario in child processes (so that
//!   each has its own peak memory), alternating their order round by round, and prints the
//!   medians with their ratios; `examples/scale_chart.rs` draws its CSV output.

pub mod tmq_side;
