//! IOLoop handlers: a socket handler (`Rc<Socket>`) and a plain-fd handler get their events,
//! refuse a second registration (EBUSY), pause with empty events and stop when removed.

use std::os::fd::AsRawFd;
use std::rc::Rc;

use zmqloop::eventloop::IOLoop;
use zmqloop::green as zmq;

use crate::{
    common, frames, ms, pipe, read_available, recv_within, seen, stop_after, within, write_byte,
    Seen, LIMIT,
};

#[test]
fn socket_handler_gets_events_pauses_and_stops_when_removed() {
    within(LIMIT, || {
        let ctx = zmq::Context::new();
        let (pull, push) = common::socket_pair(&ctx, "ev-socket-handler", zmq::PULL, zmq::PUSH);
        let pull = Rc::new(pull);

        let ioloop = IOLoop::new().unwrap();
        let got: Seen<(String, zmq::PollEvents)> = seen();
        let handler = {
            let (pull, got, stopper) = (pull.clone(), got.clone(), ioloop.clone());
            move |events: zmq::PollEvents| {
                let message = pull.recv_string(zmq::DONTWAIT).unwrap().unwrap();
                got.borrow_mut().push((message, events));
                stopper.stop();
            }
        };
        ioloop
            .add_handler(pull.clone(), zmq::POLLIN, handler)
            .unwrap();
        assert_eq!(
            ioloop.add_handler(pull.clone(), zmq::POLLIN, |_| {}),
            Err(zmq::Error::EBUSY),
            "a second handler for the same socket must be refused"
        );

        push.send("a", 0).unwrap();
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 1);
        assert_eq!(got.borrow()[0].0, "a");
        assert!(got.borrow()[0].1.contains(zmq::POLLIN));

        // Empty events pause the handler: the message stays in the socket.
        ioloop
            .update_handler(&pull, zmq::PollEvents::empty())
            .unwrap();
        push.send("b", 0).unwrap();
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 1, "a paused handler was called");

        // Resumed: it gets the message that waited.
        ioloop.update_handler(&pull, zmq::POLLIN).unwrap();
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 2);
        assert_eq!(got.borrow()[1].0, "b");

        // Removed: the loop hands its reference back and never calls the handler again.
        let returned = ioloop.remove_handler(&pull).unwrap();
        assert!(Rc::ptr_eq(&returned, &pull));
        drop(returned);
        assert_eq!(
            Rc::strong_count(&pull),
            1,
            "the loop (or the removed handler) still holds the socket"
        );
        push.send("c", 0).unwrap();
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 2, "a removed handler was called");
        assert_eq!(recv_within(&pull, ms(1000)), frames(&["c"]));

        assert_eq!(ioloop.remove_handler(&pull).err(), Some(zmq::Error::ENOENT));
        assert_eq!(
            ioloop.update_handler(&pull, zmq::POLLIN),
            Err(zmq::Error::ENOENT)
        );
    });
}

#[test]
fn fd_handler_gets_events_pauses_and_stops_when_removed() {
    within(LIMIT, || {
        let (reader, writer) = pipe();
        let fd = reader.as_raw_fd();
        let ioloop = IOLoop::new().unwrap();
        let got: Seen<(Vec<u8>, zmq::PollEvents)> = seen();
        let handler = {
            let (got, stopper) = (got.clone(), ioloop.clone());
            move |events: zmq::PollEvents| {
                got.borrow_mut().push((read_available(fd), events));
                stopper.stop();
            }
        };
        ioloop.add_fd_handler(fd, zmq::POLLIN, handler).unwrap();
        assert_eq!(
            ioloop.add_fd_handler(fd, zmq::POLLIN, |_| {}),
            Err(zmq::Error::EBUSY),
            "a second handler for the same fd must be refused"
        );

        write_byte(&writer, 1);
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 1);
        assert_eq!(got.borrow()[0].0, vec![1]);
        assert!(got.borrow()[0].1.contains(zmq::POLLIN));

        ioloop
            .update_fd_handler(fd, zmq::PollEvents::empty())
            .unwrap();
        write_byte(&writer, 2);
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 1, "a paused fd handler was called");

        ioloop.update_fd_handler(fd, zmq::POLLIN).unwrap();
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 2);
        assert_eq!(got.borrow()[1].0, vec![2]);

        ioloop.remove_fd_handler(fd).unwrap();
        write_byte(&writer, 3);
        stop_after(&ioloop, ms(50));
        ioloop.start().unwrap();
        assert_eq!(got.borrow().len(), 2, "a removed fd handler was called");
        assert_eq!(read_available(fd), vec![3]);

        assert_eq!(ioloop.remove_fd_handler(fd), Err(zmq::Error::ENOENT));
        assert_eq!(
            ioloop.update_fd_handler(fd, zmq::POLLIN),
            Err(zmq::Error::ENOENT)
        );

        // POLLOUT on the write end: ready at once.
        let out = seen();
        let (record, stopper) = (out.clone(), ioloop.clone());
        ioloop
            .add_fd_handler(writer.as_raw_fd(), zmq::POLLOUT, move |events| {
                record.borrow_mut().push(events);
                stopper.stop();
            })
            .unwrap();
        ioloop.start().unwrap();
        assert_eq!(out.borrow().len(), 1);
        assert!(out.borrow()[0].contains(zmq::POLLOUT));
        ioloop.remove_fd_handler(writer.as_raw_fd()).unwrap();
    });
}
