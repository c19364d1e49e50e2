//! CPython `_TestProcess.test_process`, in our words: a child's state before start, while
//! running and after join; its arguments arrive.

use programs::{is_active, show};
use std::time::Duration;
use wasmproc_guest::{Process, current_process, targets};

fn child(args: (u32, String)) {
    println!(
        "child {}: args=({}, {:?})",
        current_process().name().unwrap(),
        args.0,
        args.1
    );
    // Long enough that main sees it alive after start, even on a loaded machine.
    std::thread::sleep(Duration::from_millis(1000));
}

targets![child];

fn main() {
    let p = Process::new("child", &(7u32, "seven".to_string())).unwrap();
    show!("name", p.name());
    show!("pid before start", p.pid());
    show!("is_alive before start", p.is_alive());
    show!("exitcode before start", p.exitcode());
    show!("daemon", p.daemon());
    println!("active before start: {}", is_active(&p));
    show!("join before start", p.join(None));
    show!("sentinel before start", p.sentinel());
    show!("start", p.start());
    show!("is_alive after start", p.is_alive());
    show!("exitcode after start", p.exitcode());
    show!("pid after start is some", p.pid().map(|pid| pid.is_some()));
    println!("active after start: {}", is_active(&p));
    show!("start again", p.start());
    show!("join", p.join(None));
    show!("exitcode after join", p.exitcode());
    show!("is_alive after join", p.is_alive());
    println!("active after join: {}", is_active(&p));
    show!("join again", p.join(Duration::from_millis(1)));
}
