//! CPython `test_many_processes`, in our words: 100 children that return, then 100 that
//! are terminated while asleep.

use programs::sleep_forever;
use std::collections::BTreeMap;
use wasmproc_guest::{Process, targets};

fn quick() {}

fn sleeper() {
    sleep_forever();
}

targets![quick, sleeper];

fn tally(procs: &[Process]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for p in procs {
        *counts
            .entry(format!("{:?}", p.exitcode().unwrap()))
            .or_insert(0) += 1;
    }
    counts
}

fn main() {
    const N: usize = 100;
    let procs: Vec<Process> = (0..N)
        .map(|_| Process::new("quick", &()).unwrap())
        .collect();
    for p in &procs {
        p.start().unwrap();
    }
    for p in &procs {
        p.join(None).unwrap();
    }
    println!("returned: {:?}", tally(&procs));
    let pids: std::collections::BTreeSet<u64> =
        procs.iter().map(|p| p.pid().unwrap().unwrap()).collect();
    println!("distinct pids: {}", pids.len());

    let procs: Vec<Process> = (0..N)
        .map(|_| Process::new("sleeper", &()).unwrap())
        .collect();
    for p in &procs {
        p.start().unwrap();
    }
    println!(
        "alive before terminate: {}",
        procs.iter().filter(|p| p.is_alive().unwrap()).count()
    );
    for p in &procs {
        p.terminate().unwrap();
    }
    for p in &procs {
        p.join(None).unwrap();
    }
    println!("terminated: {:?}", tally(&procs));
    println!("last name: {}", procs[N - 1].name().unwrap());
}
