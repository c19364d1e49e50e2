//! The queue benchmark's guest side (run by `tests/benches/sync.rs`): a child process puts
//! N small items (`u64`s 0..N) into an unbounded `Queue<u64>`, the main process gets them and
//! checks their order, and prints machine-readable lines:
//! - `items N`,
//! - `steady_s X`: from the main process's first `get` returning to its last (N-1 items),
//! - `total_s X`: from before the child's start to after its join (N items, the child's
//!   start and end included),
//! - `producer_s X`: the child's own time for its N `put`s (from its stdout, via the queue).
//!
//! Usage: `bench_queue [N] [put|post]` (defaults 2,000,000 and `put`): the child appends
//! with `Queue::put`, or with `Queue::post` (which a native child does not wait for).

use std::time::Instant;
use wasmproc_guest::{Process, Queue, targets};

/// Puts 0..n, then its own time for that (in nanoseconds) on `done`.
fn producer((items, done, n, post): (Queue<u64>, Queue<u64>, u64, bool)) {
    let t = Instant::now();
    for i in 0..n {
        if post {
            items.post(&i).expect("bench_queue producer: post");
        } else {
            items.put(&i).expect("bench_queue producer: put");
        }
    }
    let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
    done.put(&ns)
        .expect("bench_queue producer: put of its time");
}

targets![producer];

fn main() -> Result<(), wasmproc_guest::Error> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000)
        .max(2);
    let post = match std::env::args().nth(2).as_deref() {
        None | Some("put") => false,
        Some("post") => true,
        Some(other) => {
            eprintln!("bench_queue: the second argument is put or post, not {other:?}");
            wasmproc_guest::exit(2)
        }
    };
    let items: Queue<u64> = Queue::new()?;
    let done: Queue<u64> = Queue::new()?;
    let t0 = Instant::now();
    let p = Process::new("producer", &(items.clone(), done.clone(), n, post))?;
    p.start()?;
    let first = items.get()?;
    let t1 = Instant::now();
    assert_eq!(first, 0, "bench_queue: first item");
    for i in 1..n {
        let x = items.get()?;
        if x != i {
            eprintln!("bench_queue: got item {x}, expected {i}");
            wasmproc_guest::exit(1);
        }
    }
    let t2 = Instant::now();
    let producer_ns = done.get()?;
    p.join(None)?;
    let t3 = Instant::now();
    if p.exitcode()? != Some(0) {
        eprintln!("bench_queue: the producer ended with {:?}", p.exitcode()?);
        wasmproc_guest::exit(1);
    }
    println!("items {n}");
    println!("steady_s {:.6}", (t2 - t1).as_secs_f64());
    println!("total_s {:.6}", (t3 - t0).as_secs_f64());
    println!("producer_s {:.6}", producer_ns as f64 / 1e9);
    Ok(())
}
