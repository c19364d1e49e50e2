//! CPython `test_sentinel`, in our words: a sentinel is ready exactly when its process has
//! ended; `wait` returns the ready ones.

use programs::{show, sleep_forever};
use std::time::Duration;
use wasmproc_guest::{Process, Sentinel, targets, wait};

fn sleeper() {
    sleep_forever();
}

fn quick() {}

targets![sleeper, quick];

fn main() {
    let p = Process::new("sleeper", &()).unwrap();
    show!("sentinel before start", p.sentinel());
    p.start().unwrap();
    let s = p.sentinel().unwrap();
    show!("wait(0)", wait(&[s], Duration::ZERO).map(|r| r.len()));
    show!(
        "wait(0.05)",
        wait(&[s], Duration::from_millis(50)).map(|r| r.len())
    );
    p.terminate().unwrap();
    show!(
        "wait(None) after terminate",
        wait(&[s], None).map(|r| r == vec![s])
    );
    show!("exitcode", p.exitcode());

    // Two sentinels: only the finished one is returned, in the order given.
    let a = Process::new("sleeper", &()).unwrap();
    let b = Process::new("quick", &()).unwrap();
    a.start().unwrap();
    b.start().unwrap();
    let (sa, sb) = (a.sentinel().unwrap(), b.sentinel().unwrap());
    let ready = wait(&[sa, sb], None).unwrap();
    println!("ready of [sleeper, quick]: {}", describe(&ready, sa, sb));
    a.kill().unwrap();
    a.join(None).unwrap();
    let ready = wait(&[sa, sb], None).unwrap();
    println!("ready after kill: {}", describe(&ready, sa, sb));
    show!(
        "wait on nothing (0.01)",
        wait(&[], Duration::from_millis(10)).map(|r| r.len())
    );
    show!(
        "wait on a bogus sentinel",
        wait(&[Sentinel::from_raw(987654321)], None)
    );
}

fn describe(ready: &[Sentinel], sa: Sentinel, sb: Sentinel) -> String {
    let names: Vec<&str> = ready
        .iter()
        .map(|s| {
            if *s == sa {
                "sleeper"
            } else if *s == sb {
                "quick"
            } else {
                "?"
            }
        })
        .collect();
    format!("{names:?}")
}
