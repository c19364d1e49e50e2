//! CPython `test_active_children`, in our words: only started, running children are
//! active; finished ones are reaped.

use programs::{active_names, sleep_forever};
use wasmproc_guest::{Process, targets};

fn sleeper() {
    sleep_forever();
}

fn quick() {}

targets![sleeper, quick];

fn main() {
    let p1 = Process::new("sleeper", &()).unwrap();
    let p2 = Process::new("sleeper", &()).unwrap();
    let p3 = Process::new("quick", &()).unwrap();
    println!("before start: {:?}", active_names());
    p1.start().unwrap();
    p2.start().unwrap();
    p3.start().unwrap();
    p3.join(None).unwrap();
    println!("after start, quick joined: {:?}", active_names());
    p1.terminate().unwrap();
    p1.join(None).unwrap();
    println!("after terminating Process-1: {:?}", active_names());
    // Dropping our object of a running child keeps it active, as in Python.
    drop(p2);
    println!("after dropping Process-2: {:?}", active_names());
    for p in wasmproc_guest::active_children() {
        p.kill().unwrap();
        p.join(None).unwrap();
        println!("killed {}: {:?}", p.name().unwrap(), p.exitcode().unwrap());
    }
    println!("at the end: {:?}", active_names());
}
