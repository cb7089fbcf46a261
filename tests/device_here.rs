//! A device forwards on the scheduler of the code that starts it: a task of the same hub when
//! started in a hub task (no may thread involved), its own thread when started from plain
//! code, a may coroutine when started in one.

mod common;
use common::{inproc, zmq, LIMIT};
use zmqloop::green::device::Device;
use zmqloop::green::hub::Hub;
use zmqloop::green::task::RunsOn;

/// Starts a streamer between two fresh endpoints, sends one message through it and stops it;
/// returns where it ran.
fn stream_one_message(ctx: &zmq::Context) -> RunsOn {
    let (input, output) = (inproc("device-here-in"), inproc("device-here-out"));
    let device = Device::streamer()
        .bind_in(&input)
        .bind_out(&output)
        .start(ctx)
        .unwrap();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.connect(&input).unwrap();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.connect(&output).unwrap();
    push.send("through", 0).unwrap();
    assert_eq!(pull.recv_string(0).unwrap().unwrap(), "through");
    let runs_on = device.runs_on();
    device.stop().unwrap();
    runs_on
}

#[test]
fn a_device_started_in_a_hub_task_is_a_task_of_that_hub() {
    let runs_on = common::on_thread(LIMIT, || {
        let hub = Hub::new().unwrap();
        let ctx = zmq::Context::new();
        hub.block_on(move || stream_one_message(&ctx))
    });
    assert_eq!(runs_on, RunsOn::HubTask);
}

#[test]
fn a_device_started_from_plain_code_has_a_thread_of_its_own() {
    let runs_on = common::on_thread(LIMIT, || stream_one_message(&zmq::Context::new()));
    assert_eq!(runs_on, RunsOn::Thread);
}

#[test]
fn a_device_started_in_a_coroutine_is_a_coroutine() {
    let runs_on = common::run(|| stream_one_message(&zmq::Context::new()));
    assert_eq!(runs_on, RunsOn::MayCoroutine);
}
