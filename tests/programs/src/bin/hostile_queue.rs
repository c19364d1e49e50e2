//! A guest that tries to fill the host with queued data and objects: an item over the
//! `message` limit, a flood of puts until the run's `queued` bytes are used up, and objects
//! created until the `objects` limit. Each is refused with `limit-exceeded`; the host and a
//! sibling that uses a queue of its own carry on, and draining the flood makes room again.

use programs::show;
use wasmproc_guest::{Event, Process, Queue, targets};

/// Puts 64 KiB items until the host refuses one; reports how many went in.
fn flood(q: Queue<Vec<u8>>) {
    let item = vec![7u8; 64 << 10];
    let mut n = 0u32;
    let err = loop {
        match q.put(&item) {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    println!(
        "flood: {n} items in, then error {:?}: {}",
        err.kind(),
        err.message()
    );
}

/// Uses a queue of its own while the flood is refused.
fn sibling(q: Queue<u64>) {
    let sum: u64 = (0..100).map(|_| q.get().unwrap()).sum();
    println!("sibling sum: {sum}");
}

targets![flood, sibling];

fn main() {
    let q: Queue<Vec<u8>> = Queue::new().unwrap();
    show!("put of 2 MiB", q.put(&vec![0u8; 2 << 20]));

    let f = Process::new("flood", &q).unwrap();
    f.start().unwrap();
    f.join(None).unwrap();
    show!("flood exitcode", f.exitcode());

    let numbers: Queue<u64> = Queue::new().unwrap();
    let s = Process::new("sibling", &numbers).unwrap();
    s.start().unwrap();
    show!("a small item next to the flood", numbers.put(&1));
    let drained = (0..4).filter(|_| q.get().is_ok()).count();
    println!("drained {drained} items");
    for i in 1..100 {
        numbers.put(&i).unwrap();
    }
    s.join(None).unwrap();
    show!("sibling exitcode", s.exitcode());

    let mut held = Vec::new();
    let err = loop {
        match Event::new() {
            Ok(e) => held.push(e),
            Err(e) => break e,
        }
    };
    println!(
        "objects created: {}, then error {:?}: {}",
        held.len(),
        err.kind(),
        err.message()
    );
    held.clear();
    show!("an event after dropping them", Event::new().map(|_| ()));
}
