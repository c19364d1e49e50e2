//! CPython `test_terminate` and `test_kill`, in our words: a child busy in a loop, asleep,
//! blocked in `join` or blocked in `wait` is stopped at once, with exit code -15 (terminate)
//! or -9 (kill). The first argument chooses `terminate` or `kill`.

use programs::{show, sleep_forever};
use std::time::{Duration, Instant};
use wasmproc_guest::{Process, targets, wait};

fn sleeper() {
    sleep_forever();
}

fn busy() {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

fn joiner() {
    let p = Process::new("sleeper", &()).unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
}

fn waiter() {
    let p = Process::new("sleeper", &()).unwrap();
    p.start().unwrap();
    wait(&[p.sentinel().unwrap()], None).unwrap();
}

targets![sleeper, busy, joiner, waiter];

fn main() {
    let mode = std::env::args()
        .nth(1)
        .expect("usage: process_signals terminate|kill");
    for target in ["sleeper", "busy", "joiner", "waiter"] {
        let p = Process::new(target, &()).unwrap();
        show!(format!("{target} signal before start"), signal(&mode, &p));
        p.start().unwrap();
        let t = Instant::now();
        show!(
            format!("{target} join(0.1)"),
            p.join(Duration::from_millis(100))
        );
        println!(
            "{target} join waited: {}",
            t.elapsed() >= Duration::from_millis(100)
        );
        show!(format!("{target} exitcode"), p.exitcode());
        show!(format!("{target} is_alive"), p.is_alive());
        show!(format!("{target} {mode}"), signal(&mode, &p));
        show!(format!("{target} join"), p.join(None));
        show!(format!("{target} exitcode"), p.exitcode());
        show!(format!("{target} is_alive"), p.is_alive());
        show!(format!("{target} {mode} again"), signal(&mode, &p));
        show!(format!("{target} exitcode"), p.exitcode());
    }
}

fn signal(mode: &str, p: &Process) -> Result<(), wasmproc_guest::Error> {
    match mode {
        "terminate" => p.terminate(),
        "kill" => p.kill(),
        other => panic!("unknown mode {other}"),
    }
}
