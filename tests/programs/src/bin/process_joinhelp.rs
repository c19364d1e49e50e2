//! A child that its parent joins before it has run is run by the join itself (see
//! `host/src/sched.rs`); these cases check that nothing a program sees depends on it: a join
//! that times out leaves the child running, a parent terminated while it joins leaves its
//! child running as an orphan, a child started and never joined runs anyway, and children
//! of joined children get their names and run.

use std::time::Duration;
use wasmproc_guest::{Event, Process, Queue, current_process, parent_process, targets};

const LONG: Duration = Duration::from_secs(30);

fn nap() {
    std::thread::sleep(Duration::from_millis(300));
    println!("nap done");
}

fn middle(done: Queue<String>) {
    let leaf = Process::new("leaf", &done).unwrap();
    leaf.start().unwrap();
    // Joined at once: the leaf runs inside this join, until this process is terminated.
    leaf.join(None).unwrap();
    println!("middle: not reached");
}

fn leaf(done: Queue<String>) {
    std::thread::sleep(Duration::from_millis(600));
    let parent = parent_process().unwrap();
    let report = format!(
        "{} ran on; parent {} alive: {}",
        current_process().name().unwrap(),
        parent.name().unwrap(),
        parent.is_alive().unwrap()
    );
    done.put(&report).unwrap();
}

fn setter(e: Event) {
    e.set().unwrap();
}

fn outer() {
    let inner = Process::new("inner", &()).unwrap();
    inner.start().unwrap();
    inner.join(None).unwrap();
    println!("outer: inner exitcode {:?}", inner.exitcode().unwrap());
}

fn inner() {
    println!("inner is {}", current_process().name().unwrap());
}

targets![nap, middle, leaf, setter, outer, inner];

fn main() {
    println!("-- a join that times out");
    let p = Process::new("nap", &()).unwrap();
    p.start().unwrap();
    p.join(Duration::from_millis(50)).unwrap();
    println!(
        "after join(0.05): alive {} exitcode {:?}",
        p.is_alive().unwrap(),
        p.exitcode().unwrap()
    );
    p.join(LONG).unwrap();
    println!(
        "after join(30): alive {} exitcode {:?}",
        p.is_alive().unwrap(),
        p.exitcode().unwrap()
    );

    println!("-- a parent terminated while it joins");
    let done = Queue::<String>::new().unwrap();
    let m = Process::new("middle", &done).unwrap();
    m.start().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    m.terminate().unwrap();
    m.join(LONG).unwrap();
    println!("middle exitcode {:?}", m.exitcode().unwrap());
    println!("{}", done.get_timeout(LONG).unwrap());

    println!("-- a child never joined");
    let e = Event::new().unwrap();
    let s = Process::new("setter", &e).unwrap();
    s.start().unwrap();
    println!("event set: {}", e.wait(Some(LONG)).unwrap());
    s.join(LONG).unwrap();
    println!("setter exitcode {:?}", s.exitcode().unwrap());

    println!("-- children of joined children");
    let o = Process::new("outer", &()).unwrap();
    o.start().unwrap();
    o.join(None).unwrap();
    println!("outer exitcode {:?}", o.exitcode().unwrap());
}
