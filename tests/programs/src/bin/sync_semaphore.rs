//! CPython `_TestSemaphore` (`test_semaphore`, `test_bounded_semaphore`, `test_timeout`), in
//! our words, plus a semaphore used across processes. A semaphore has no owner: a process
//! killed while it holds a unit does not give the unit back.

use programs::{show, sleep_forever};
use std::time::{Duration, Instant};
use wasmproc_guest::{BoundedSemaphore, Event, Process, Semaphore, targets};

const LONG: Duration = Duration::from_secs(30);

/// Releases the semaphore three times.
fn release_three(sem: Semaphore) {
    for _ in 0..3 {
        sem.release().unwrap();
    }
}

/// Takes one unit, reports that, and sleeps until killed.
fn take_and_sleep((sem, took): (Semaphore, Event)) {
    show!("child acquire", sem.acquire());
    took.set().unwrap();
    sleep_forever();
}

targets![release_three, take_and_sleep];

macro_rules! two_units {
    ($sem:expr) => {{
        let sem = $sem;
        show!("get_value", sem.get_value());
        show!("acquire", sem.acquire());
        show!("get_value", sem.get_value());
        show!("acquire", sem.acquire());
        show!("get_value", sem.get_value());
        show!("try_acquire", sem.try_acquire());
        show!("get_value", sem.get_value());
        show!("release", sem.release());
        show!("get_value", sem.get_value());
        show!("release", sem.release());
        show!("get_value", sem.get_value());
        sem
    }};
}

fn main() {
    println!("-- semaphore");
    let sem = two_units!(Semaphore::new(2).unwrap());
    show!("release", sem.release());
    show!("get_value", sem.get_value());
    show!("release", sem.release());
    show!("get_value", sem.get_value());

    println!("-- bounded semaphore");
    let bounded = two_units!(BoundedSemaphore::new(2).unwrap());
    show!("release above the initial value", bounded.release());
    show!("get_value", bounded.get_value());

    println!("-- timeout");
    let sem = Semaphore::new(0).unwrap();
    show!("try_acquire", sem.try_acquire());
    show!("acquire_timeout(0)", sem.acquire_timeout(Duration::ZERO));
    let start = Instant::now();
    show!(
        "acquire_timeout(0.1)",
        sem.acquire_timeout(Duration::from_millis(100))
    );
    show!(
        "acquire_timeout(0.3)",
        sem.acquire_timeout(Duration::from_millis(300))
    );
    println!(
        "waited at least 0.3s: {}",
        start.elapsed() >= Duration::from_millis(300)
    );
    let mut guard_taken = false;
    if let Ok(g) = Semaphore::new(1).unwrap().lock() {
        guard_taken = true;
        drop(g);
    }
    println!("guard of a semaphore: {guard_taken}");

    println!("-- released by a child");
    let sem = Semaphore::new(0).unwrap();
    let p = Process::new("release_three", &sem).unwrap();
    p.start().unwrap();
    for _ in 0..3 {
        show!("acquire", sem.acquire_timeout(LONG));
    }
    show!("get_value", sem.get_value());
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());

    println!("-- no owner");
    let sem = Semaphore::new(1).unwrap();
    let took = Event::new().unwrap();
    let p = Process::new("take_and_sleep", &(sem.clone(), took.clone())).unwrap();
    p.start().unwrap();
    show!("child took a unit", took.wait(LONG));
    p.kill().unwrap();
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
    show!("get_value after the kill", sem.get_value());
    show!("try_acquire after the kill", sem.try_acquire());
    show!("release", sem.release());
    show!("try_acquire", sem.try_acquire());
}
