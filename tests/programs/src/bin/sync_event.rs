//! CPython `_TestEvent.test_event`, in our words, plus several processes waiting for one
//! event and a wait that times out in a child.

use programs::show;
use std::time::{Duration, Instant};
use wasmproc_guest::{Event, Process, Queue, targets};

const LONG: Duration = Duration::from_secs(30);

/// Sleeps a little, then sets the event.
fn set_later(event: Event) {
    std::thread::sleep(Duration::from_millis(100));
    event.set().unwrap();
}

/// Waits for the event, then reports its number.
fn waiter((event, done, n): (Event, Queue<u32>, u32)) {
    if event.wait(LONG).unwrap() {
        done.put(&n).unwrap();
    }
}

/// Waits 0.1 s for an event nobody sets.
fn wait_in_vain(event: Event) {
    let start = Instant::now();
    show!("child wait(0.1)", event.wait(Duration::from_millis(100)));
    println!(
        "child waited at least 0.05s: {}",
        start.elapsed() >= Duration::from_millis(50)
    );
    show!("child is_set", event.is_set());
}

targets![set_later, waiter, wait_in_vain];

fn main() {
    let event = Event::new().unwrap();
    show!("is_set", event.is_set());
    show!("wait(0)", event.wait(Duration::ZERO));
    let start = Instant::now();
    show!("wait(0.1)", event.wait(Duration::from_millis(100)));
    println!(
        "waited at least 0.05s: {}",
        start.elapsed() >= Duration::from_millis(50)
    );
    show!("set", event.set());
    show!("is_set", event.is_set());
    show!("wait(None)", event.wait(None));
    show!("wait(0.1)", event.wait(Duration::from_millis(100)));
    show!("set again", event.set());
    show!("is_set", event.is_set());
    show!("clear", event.clear());
    show!("is_set", event.is_set());
    show!("clear again", event.clear());

    let p = Process::new("set_later", &event).unwrap();
    p.start().unwrap();
    show!("wait(None) for the child", event.wait(None));
    show!("is_set", event.is_set());
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());

    println!("-- many waiters");
    let go = Event::new().unwrap();
    let done = Queue::<u32>::new().unwrap();
    let waiters: Vec<Process> = (0..3u32)
        .map(|n| {
            let p = Process::new("waiter", &(go.clone(), done.clone(), n)).unwrap();
            p.start().unwrap();
            p
        })
        .collect();
    show!(
        "nobody done before set",
        done.get_timeout(Duration::from_millis(100))
    );
    go.set().unwrap();
    let mut woken: Vec<u32> = (0..3).map(|_| done.get_timeout(LONG).unwrap()).collect();
    woken.sort();
    println!("woken: {woken:?}");
    for p in &waiters {
        p.join(None).unwrap();
    }

    println!("-- a child's wait times out");
    let unset = Event::new().unwrap();
    let p = Process::new("wait_in_vain", &unset).unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}
