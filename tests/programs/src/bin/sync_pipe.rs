//! CPython `_TestConnection` (`test_connection`, `test_duplex_false`, `test_spawn_close`), in
//! our words: an echo child on a duplex pipe, typed and raw messages, `poll`, a large
//! message, end-of-file once the other end is gone, one-way pipes, and a closed connection.

use programs::show;
use std::time::Duration;
use wasmproc_guest::{Connection, Process, pipe, targets};

const LONG: Duration = Duration::from_secs(30);

/// Echoes raw messages until it receives an empty one, then closes its end.
fn echo(conn: Connection) {
    loop {
        let msg = conn.recv_bytes().unwrap();
        if msg.is_empty() {
            break;
        }
        conn.send_bytes(&msg).unwrap();
    }
    conn.close();
}

targets![echo];

fn test_connection() {
    println!("-- connection");
    let (conn, child_conn) = pipe(true).unwrap();
    let p = Process::builder("echo")
        .args(&child_conn)
        .unwrap()
        .daemon(true)
        .build()
        .unwrap();
    p.start().unwrap();

    show!("send typed", conn.send(&(1i32, 2.25f64, None::<String>)));
    show!("recv typed", conn.recv::<(i32, f64, Option<String>)>());
    show!("send a string", conn.send("hello"));
    show!("recv a string", conn.recv::<String>());
    show!("send_bytes", conn.send_bytes(b"hello world"));
    show!(
        "recv_bytes",
        conn.recv_bytes().map(|b| String::from_utf8(b).unwrap())
    );

    show!("poll(0)", conn.poll(Duration::ZERO));
    let start = std::time::Instant::now();
    show!("poll(0.1)", conn.poll(Duration::from_millis(100)));
    println!(
        "poll waited at least 0.05s: {}",
        start.elapsed() >= Duration::from_millis(50)
    );
    conn.send_bytes(b"ping").unwrap();
    show!("poll after the echo was sent", conn.poll(LONG));
    show!("poll(None) with a message waiting", conn.poll(None));
    show!(
        "recv_bytes",
        conn.recv_bytes().map(|b| String::from_utf8(b).unwrap())
    );

    let big = vec![b'X'; 1024 * 1024];
    show!("send_bytes 1 MiB", conn.send_bytes(&big));
    let back = conn.recv_bytes().unwrap();
    println!(
        "recv_bytes 1 MiB: length {} equal {}",
        back.len(),
        back == big
    );
    let numbers: Vec<u64> = (0..100_000).collect();
    show!("send 100000 numbers", conn.send(&numbers));
    show!("recv them", conn.recv::<Vec<u64>>().map(|v| v == numbers));

    // Tell the child to quit; once the child has closed its end and so has this process
    // (which created both ends), reading gives end-of-file.
    conn.send_bytes(b"").unwrap();
    child_conn.close();
    println!(
        "readable: {}, writable: {}",
        conn.readable(),
        conn.writable()
    );
    show!("recv after the other end closed", conn.recv::<i32>());
    show!("recv_bytes after the other end closed", conn.recv_bytes());
    show!("poll(0) at end-of-file", conn.poll(Duration::ZERO));
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn test_duplex_false() {
    println!("-- duplex false");
    let (reader, writer) = pipe(false).unwrap();
    show!("writer send", writer.send(&1i32));
    show!("reader recv", reader.recv::<i32>());
    println!(
        "reader readable: {}, writable: {}",
        reader.readable(),
        reader.writable()
    );
    println!(
        "writer readable: {}, writable: {}",
        writer.readable(),
        writer.writable()
    );
    show!("reader send", reader.send(&2i32));
    show!("reader send_bytes", reader.send_bytes(b"2"));
    show!("writer recv", writer.recv::<i32>());
    show!("writer recv_bytes", writer.recv_bytes());
    show!("writer poll", writer.poll(Duration::ZERO));
    show!("reader poll", reader.poll(Duration::ZERO));
}

fn test_spawn_close() {
    println!("-- spawn close");
    let (conn, child_conn) = pipe(true).unwrap();
    let p = Process::new("echo", &child_conn).unwrap();
    p.start().unwrap();
    // Closing right after the start: the child holds its own reference already.
    child_conn.close();
    show!("send_bytes", conn.send_bytes(b"hello"));
    show!(
        "recv_bytes",
        conn.recv_bytes().map(|b| String::from_utf8(b).unwrap())
    );
    conn.send_bytes(b"").unwrap();
    show!("recv_bytes after the child quit", conn.recv_bytes());
    conn.close();
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn test_closed() {
    println!("-- closed");
    let (a, b) = pipe(true).unwrap();
    println!("closed before close: {}", a.closed());
    a.close();
    println!("closed after close: {}", a.closed());
    show!("send", a.send(&1i32));
    show!("send_bytes", a.send_bytes(b"1"));
    show!("recv", a.recv::<i32>());
    show!("recv_bytes", a.recv_bytes());
    show!("poll", a.poll(Duration::ZERO));
    a.close();
    println!("closing twice: ok");
    show!("the other end's send", b.send(&1i32));
    show!("the other end's recv", b.recv::<i32>());
    show!("the other end's poll", b.poll(Duration::ZERO));
}

fn main() {
    test_connection();
    test_duplex_false();
    test_spawn_close();
    test_closed();
}
