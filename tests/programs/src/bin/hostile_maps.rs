//! Sleepers until the host refuses: main starts a worker, then children that sleep until it
//! is refused one more (or has started as many as its first argument asks for), and prints
//! the refusal; the worker then does its work all the same, and the run ends cleanly.
//!
//! With `hold` as its second argument main waits (an hour) once its sleepers are started,
//! so that the host's kernel mappings can be counted from outside (see BENCHMARKS.md).

use std::io::Write;
use wasmproc_guest::{Process, Queue, targets};

fn sleeper() {
    programs::sleep_forever();
}

/// Sums `1..=n` for the `n` it is given.
fn worker((tasks, results): (Queue<u64>, Queue<u64>)) {
    let n = tasks.get().unwrap();
    results.put(&(1..=n).sum::<u64>()).unwrap();
}

targets![sleeper, worker];

fn main() {
    let mut args = std::env::args().skip(1);
    let most: usize = args
        .next()
        .map_or(usize::MAX, |a| a.parse().expect("a count"));
    let hold = args.next().as_deref() == Some("hold");

    let (tasks, results): (Queue<u64>, Queue<u64>) = (Queue::new().unwrap(), Queue::new().unwrap());
    let worker = Process::new("worker", &(tasks.clone(), results.clone())).unwrap();
    worker.start().unwrap();

    let mut sleepers = Vec::new();
    while sleepers.len() < most {
        let p = Process::new("sleeper", &()).unwrap();
        match p.start() {
            Ok(()) => sleepers.push(p),
            Err(e) => {
                println!(
                    "refused after {} sleepers: {:?}: {}",
                    sleepers.len(),
                    e.kind(),
                    e.message()
                );
                break;
            }
        }
    }
    if hold {
        println!("holding {} sleepers", sleepers.len());
        std::io::stdout().flush().unwrap();
        programs::sleep_forever();
    }

    tasks.put(&1000).unwrap();
    println!("worker: {}", results.get().unwrap());
    worker.join(None).unwrap();
    for p in &sleepers {
        p.kill().unwrap();
    }
    for p in &sleepers {
        p.join(None).unwrap();
    }
    println!(
        "main survived, worker exitcode {:?}",
        worker.exitcode().unwrap()
    );
}
