//! Targets that use the queues and pipe ends a Rust program passes them (the library's
//! `Host::queue` and `Host::pipe`).

use wasmproc_guest::{Connection, ErrorKind, Queue, targets};

/// Doubles the numbers on `jobs` onto `results` until a 0 comes.
fn doubler((jobs, results): (Queue<u32>, Queue<u64>)) {
    loop {
        let n = jobs.get().unwrap();
        if n == 0 {
            break;
        }
        results.put(&(u64::from(n) * 2)).unwrap();
    }
}

/// Sends back each message upper-cased, until end-of-file; then exits with how many.
fn echo(conn: Connection) {
    let mut n = 0;
    loop {
        match conn.recv::<String>() {
            Ok(text) => conn.send(&text.to_uppercase()).unwrap(),
            Err(e) if e.kind() == ErrorKind::Eof => break,
            Err(e) => panic!("{e}"),
        }
        n += 1;
    }
    wasmproc_guest::exit(n);
}

targets![doubler, echo];

fn main() {}
