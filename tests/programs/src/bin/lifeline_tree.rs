//! A process tree that sleeps: main → child → grandchild. Used to check that no process of
//! a run outlives its host, even when the host is killed with SIGKILL.

use wasmproc_guest::{Process, targets};

fn child() {
    let g = Process::new("grandchild", &()).unwrap();
    g.start().unwrap();
    println!("grandchild pid: {}", g.pid().unwrap().unwrap());
    programs::sleep_forever();
}

fn grandchild() {
    programs::sleep_forever();
}

targets![child, grandchild];

fn main() {
    let p = Process::new("child", &()).unwrap();
    p.start().unwrap();
    println!("child pid: {}", p.pid().unwrap().unwrap());
    programs::sleep_forever();
}
