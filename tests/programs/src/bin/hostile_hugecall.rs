//! Host calls that pass the host 64, 127, 128 and 200 MiB: start arguments, a queue item,
//! a pipe message and a name. Each is answered by the host's own check (the `args` and
//! `message` limits, the rule on names), never by a trap, whatever its size; a sibling that
//! uses a queue meanwhile finishes its work.

use programs::show;
use wasmproc_guest::{Process, Queue, current_process, pipe, targets};

const MIB: usize = 1 << 20;

fn take(bytes: Vec<u8>) {
    println!("took {} bytes", bytes.len());
}

/// Makes each call with each size, from one buffer of the largest.
fn caller() {
    let mut buf = vec![b'x'; 200 * MIB];
    let q = Queue::<Vec<u8>>::new().unwrap();
    let (a, b) = pipe(true).unwrap();
    for mib in [64, 127, 128, 200] {
        let n = mib * MIB;
        let bytes = &buf[..n];
        let created = Process::builder("take").raw_args(bytes.to_vec()).build();
        show!(format!("{mib} MiB create"), created.map(|_| ()));
        let put = q.put_bytes(bytes);
        if put.is_ok() {
            assert_eq!(q.get_bytes().unwrap().len(), n);
        }
        show!(format!("{mib} MiB put"), put);
        let sent = a.send_bytes(bytes);
        if sent.is_ok() {
            assert_eq!(b.recv_bytes().unwrap().len(), n);
        }
        show!(format!("{mib} MiB send"), sent);
        // A name the host refuses only once it has looked at its last byte.
        buf[n - 1] = b'\n';
        let name = std::str::from_utf8(&buf[..n]).unwrap();
        show!(
            format!("{mib} MiB set_name"),
            current_process().set_name(name)
        );
        buf[n - 1] = b'x';
    }
}

fn sibling(q: Queue<u64>) {
    let sum: u64 = (0..100).map(|_| q.get().unwrap()).sum();
    println!("sibling sum: {sum}");
}

targets![take, caller, sibling];

fn main() {
    let numbers: Queue<u64> = Queue::new().unwrap();
    let c = Process::new("caller", &()).unwrap();
    let s = Process::new("sibling", &numbers).unwrap();
    c.start().unwrap();
    s.start().unwrap();
    for i in 1..=100 {
        numbers.put(&i).unwrap();
    }
    c.join(None).unwrap();
    s.join(None).unwrap();
    show!("caller exitcode", c.exitcode());
    show!("sibling exitcode", s.exitcode());
}
