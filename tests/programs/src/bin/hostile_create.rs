//! Processes created and never started, each holding 60 MiB of start arguments in the host:
//! the `held` limit refuses the create that would take the host past it, a sibling started
//! then (its record is small) finishes its work, and dropping the records gives the bytes
//! back.

use programs::show;
use wasmproc_guest::{Process, Queue, targets};

const ARGS: usize = 60 << 20;

/// Reads the first byte of its raw arguments.
fn take(first: u8) {
    println!("first byte: {first}");
}

fn sibling(q: Queue<u64>) {
    let sum: u64 = (0..100).map(|_| q.get().unwrap()).sum();
    println!("sibling sum: {sum}");
}

targets![take, sibling];

fn main() {
    let numbers: Queue<u64> = Queue::new().unwrap();
    let mut created = Vec::new();
    for i in 1..=80 {
        match Process::builder("take").raw_args(vec![7u8; ARGS]).build() {
            Ok(p) => created.push(p),
            Err(e) => {
                show!(format!("create {i}"), Err::<(), _>(e));
                break;
            }
        }
    }
    println!("created {}", created.len());
    // Near the limit, a small record still fits.
    let s = Process::new("sibling", &numbers).unwrap();
    s.start().unwrap();
    // A rename is a record charge too: a long name within the bound still fits.
    show!("rename", created[0].set_name(&"n".repeat(4096)));
    show!("rename too long", created[0].set_name(&"n".repeat(4097)));
    for i in 1..=100 {
        numbers.put(&i).unwrap();
    }
    drop(created);
    let again = Process::builder("take")
        .raw_args(vec![7u8; ARGS])
        .build()
        .unwrap();
    again.start().unwrap();
    again.join(None).unwrap();
    show!(
        "after dropping, a child took its arguments",
        again.exitcode()
    );
    s.join(None).unwrap();
    show!("sibling exitcode", s.exitcode());
}
