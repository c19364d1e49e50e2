//! The end of a pipe: once no process holds the other end (closed by `close()` in another
//! process, or that process ended by returning, `exit`, or `kill`), `recv` first returns
//! what was sent and then fails with end-of-file, and `send` fails with a broken pipe.

use programs::{show, sleep_forever};
use std::time::Duration;
use wasmproc_guest::{Connection, Event, Process, pipe, targets};

const LONG: Duration = Duration::from_secs(30);

/// Sends two messages, closes its end, then stays alive until told to go.
fn send_then_close((conn, may_exit): (Connection, Event)) {
    conn.send("one").unwrap();
    conn.send("two").unwrap();
    conn.close();
    may_exit.wait(LONG).unwrap();
}

/// Sends a message and returns without closing.
fn send_then_return(conn: Connection) {
    conn.send("bye").unwrap();
}

/// Sends a message and exits with 3.
fn send_then_exit(conn: Connection) {
    conn.send("exiting").unwrap();
    wasmproc_guest::exit(3);
}

/// Holds its end and sleeps until killed.
fn hold_and_sleep((conn, ready): (Connection, Event)) {
    conn.send("holding").unwrap();
    ready.set().unwrap();
    sleep_forever();
}

/// Holds the reading end of a one-way pipe and returns.
fn hold_reader(conn: Connection) {
    println!("reader readable: {}", conn.readable());
}

targets![
    send_then_close,
    send_then_return,
    send_then_exit,
    hold_and_sleep,
    hold_reader
];

fn closed_by_the_other_process() {
    println!("-- the other process closes its end");
    let (conn, theirs) = pipe(true).unwrap();
    let may_exit = Event::new().unwrap();
    let p = Process::new("send_then_close", &(theirs.clone(), may_exit.clone())).unwrap();
    p.start().unwrap();
    theirs.close();
    show!("recv", conn.recv::<String>());
    show!("recv", conn.recv::<String>());
    show!("recv at end-of-file", conn.recv::<String>());
    show!("recv_bytes at end-of-file", conn.recv_bytes());
    show!("poll(0) at end-of-file", conn.poll(Duration::ZERO));
    show!("send to the closed end", conn.send("anyone?"));
    show!("send_bytes to the closed end", conn.send_bytes(b"anyone?"));
    show!("the child is still alive", p.is_alive());
    may_exit.set().unwrap();
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn ended(target: &str) {
    println!("-- the other process ends: {target}");
    let (conn, theirs) = pipe(true).unwrap();
    let p = Process::new(target, &theirs).unwrap();
    p.start().unwrap();
    theirs.close();
    show!("recv", conn.recv::<String>());
    // Blocks until the child has ended.
    show!("recv at end-of-file", conn.recv::<String>());
    show!("send to the ended process", conn.send("anyone?"));
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn killed() {
    println!("-- the other process is killed");
    let (conn, theirs) = pipe(true).unwrap();
    let ready = Event::new().unwrap();
    let p = Process::new("hold_and_sleep", &(theirs.clone(), ready.clone())).unwrap();
    p.start().unwrap();
    theirs.close();
    show!("child ready", ready.wait(LONG));
    show!("recv", conn.recv::<String>());
    show!(
        "poll(0) while the child holds its end",
        conn.poll(Duration::ZERO)
    );
    show!(
        "send while the child holds its end",
        conn.send("still there?")
    );
    p.kill().unwrap();
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
    show!("recv after the kill", conn.recv::<String>());
    show!("send after the kill", conn.send("anyone?"));
}

fn one_way() {
    println!("-- one-way pipes");
    let (reader, writer) = pipe(false).unwrap();
    let p = Process::new("send_then_return", &writer).unwrap();
    p.start().unwrap();
    writer.close();
    show!("reader recv", reader.recv::<String>());
    show!("reader recv at end-of-file", reader.recv::<String>());
    p.join(None).unwrap();

    let (reader, writer) = pipe(false).unwrap();
    let p = Process::new("hold_reader", &reader).unwrap();
    p.start().unwrap();
    reader.close();
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
    show!(
        "writer send once the reader is gone",
        writer.send("anyone?")
    );
}

fn same_process() {
    println!("-- both ends in one process");
    let (a, b) = pipe(true).unwrap();
    a.send(&1u8).unwrap();
    a.send(&2u8).unwrap();
    a.close();
    show!("recv", b.recv::<u8>());
    show!("recv", b.recv::<u8>());
    show!("recv at end-of-file", b.recv::<u8>());
    show!("send", b.send(&3u8));
}

fn main() {
    closed_by_the_other_process();
    ended("send_then_return");
    ended("send_then_exit");
    killed();
    one_way();
    same_process();
}
