//! Sync objects cross process boundaries only by being passed in a child's start arguments:
//! a child that learns another object's handle number through plain data cannot use it
//! (checked through the raw WIT calls, below the SDK), and guessing finds nothing. An
//! object lives while any process holds it: a queue outlives its creator.

use programs::{show, sleep_forever};
use std::time::Duration;
use wasmproc_guest::__private::bindings::wasmproc::process::sync as raw;
use wasmproc_guest::{
    Error, Event, Lock, Process, Queue, Sentinel, parent_process, pipe, targets, wait,
};

const LONG: Duration = Duration::from_secs(30);

/// Formats a raw WIT result as `show!` does, with the handle numbers in `handles` written
/// as `<name>` (their values differ between runs).
fn raw_fmt<T: std::fmt::Debug, E: Into<Error>>(r: Result<T, E>, handles: &[(u64, &str)]) -> String {
    let mut s = programs::fmt(&r.map_err(Into::into));
    for (h, name) in handles {
        s = s.replace(&h.to_string(), &format!("<{name}>"));
        s = s.replace(&format!("{h:#x}"), &format!("<{name}>"));
    }
    s
}

/// Given one queue properly and the numbers of other objects as plain data.
fn probe((shared, numbers): (Queue<u32>, Vec<(u64, String)>)) {
    let names: Vec<(u64, &str)> = numbers.iter().map(|(h, n)| (*h, n.as_str())).collect();
    let h = |name: &str| names.iter().find(|(_, n)| *n == name).unwrap().0;
    let q = h("private queue");
    println!(
        "queue-qsize of the private queue: {}",
        raw_fmt(raw::queue_qsize(q), &names)
    );
    println!(
        "queue-put to the private queue: {}",
        raw_fmt(raw::queue_put(q, &[1], false, None), &names)
    );
    println!(
        "queue-get from the private queue: {}",
        raw_fmt(raw::queue_get(q, false, None), &names)
    );
    // The fast calls answer a bad handle as the others do, wherever the objects are served.
    println!(
        "queue-try-put to the private queue: {}",
        raw_fmt(raw::queue_try_put(q, &[1]), &names)
    );
    println!(
        "queue-try-get from the private queue: {}",
        raw_fmt(raw::queue_try_get(q), &names)
    );
    let one = raw::SmallItem {
        len: 1,
        lo: 1,
        hi: 0,
    };
    println!(
        "queue-try-put-small to the private queue: {}",
        raw_fmt(raw::queue_try_put_small(q, one), &names)
    );
    println!(
        "queue-try-get-small from the private queue: {}",
        raw_fmt(raw::queue_try_get_small(q), &names)
    );
    println!(
        "queue-try-put-small of 17 bytes: {}",
        raw_fmt(
            raw::queue_try_put_small(
                shared.handle(),
                raw::SmallItem {
                    len: 17,
                    lo: 0,
                    hi: 0
                }
            ),
            &names
        )
    );
    println!(
        "event-set of the private event: {}",
        raw_fmt(raw::event_set(h("private event")), &names)
    );
    println!(
        "lock-acquire of the private lock: {}",
        raw_fmt(raw::lock_acquire(h("private lock"), false, None), &names)
    );
    println!(
        "lock-release of the private lock: {}",
        raw_fmt(raw::lock_release(h("private lock")), &names)
    );
    println!(
        "conn-send on the private pipe: {}",
        raw_fmt(raw::conn_send(h("private pipe"), &[1]), &names)
    );
    println!(
        "conn-recv on the private pipe: {}",
        raw_fmt(raw::conn_recv(h("private pipe")), &names)
    );
    let s = h("shared queue");
    println!(
        "queue-qsize of the shared queue: {}",
        raw_fmt(raw::queue_qsize(s), &names)
    );
    println!(
        "the shared queue as a lock: {}",
        raw_fmt(raw::lock_value(s), &names)
    );
    println!(
        "the shared queue as an event: {}",
        raw_fmt(raw::event_is_set(s), &names)
    );
    println!(
        "the shared queue as a connection: {}",
        raw_fmt(raw::conn_poll(s, Some(0)), &names)
    );
    let r = wait(&[Sentinel::from_raw(q)], Duration::ZERO).map(|v| v.len());
    println!("wait on the private queue: {}", raw_fmt(r, &names));
    show!("put on the shared queue", shared.put(&1));
    let mut usable = 0;
    for n in 0..4096u64 {
        if raw::queue_qsize(1 << 63 | n).is_ok() || raw::lock_value(1 << 63 | n).is_ok() {
            usable += 1;
        }
    }
    println!("guessed handles usable: {usable}");
    raw::close(q);
    raw::close(h("private lock"));
    // A queue of its own, closed: no longer one of its queues, for the fast calls too.
    let own = raw::queue_new(0).unwrap();
    println!(
        "queue-try-get-small from its own empty queue: {}",
        raw_fmt(raw::queue_try_get_small(own), &[(own, "own queue")])
    );
    raw::close(own);
    println!(
        "queue-try-get from its own closed queue: {}",
        raw_fmt(raw::queue_try_get(own), &[(own, "own queue")])
    );
    println!(
        "queue-try-put-small to its own closed queue: {}",
        raw_fmt(raw::queue_try_put_small(own, one), &[(own, "own queue")])
    );
    let g = Process::builder("grandchild")
        .name("grandchild")
        .args(&shared)
        .unwrap()
        .build()
        .unwrap();
    g.start().unwrap();
    g.join(None).unwrap();
    show!("grandchild exitcode", g.exitcode());
}

/// Got the queue from its parent, which got it from the main process.
fn grandchild(q: Queue<u32>) {
    show!("grandchild put", q.put(&2));
}

/// Creates a queue, hands it to a reader, fills it, closes its own handle, then sleeps
/// until terminated.
fn creator((ready, done): (Event, Event)) {
    let q = Queue::<String>::new().unwrap();
    let reader = Process::builder("reader")
        .name("reader")
        .args(&(q.clone(), done))
        .unwrap()
        .build()
        .unwrap();
    reader.start().unwrap();
    for s in ["a", "b", "c"] {
        q.put(&s.to_string()).unwrap();
    }
    q.close();
    ready.set().unwrap();
    sleep_forever();
}

/// Reads the queue once its creator has ended.
fn reader((q, done): (Queue<String>, Event)) {
    let parent = parent_process().unwrap();
    parent.join(LONG).unwrap();
    println!("creator alive: {}", parent.is_alive().unwrap());
    for _ in 0..3 {
        show!("get", q.get_timeout(LONG));
    }
    show!("get_nowait", q.get_nowait());
    show!("put", q.put(&"d".to_string()));
    show!("get", q.get_nowait());
    done.set().unwrap();
}

targets![probe, grandchild, creator, reader];

fn main() {
    println!("-- handles given as plain data");
    let shared = Queue::<u32>::new().unwrap();
    let private = Queue::<u32>::new().unwrap();
    let event = Event::new().unwrap();
    let lock = Lock::new().unwrap();
    let (conn, _other) = pipe(true).unwrap();
    let numbers: Vec<(u64, String)> = vec![
        (private.handle(), "private queue".into()),
        (event.handle(), "private event".into()),
        (lock.handle(), "private lock".into()),
        (conn.handle(), "private pipe".into()),
        (shared.handle(), "shared queue".into()),
    ];
    let names: Vec<(u64, &str)> = numbers.iter().map(|(h, n)| (*h, n.as_str())).collect();
    let p = Process::builder("probe")
        .name("probe")
        .args(&(shared.clone(), numbers.clone()))
        .unwrap()
        .build()
        .unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    show!("probe exitcode", p.exitcode());
    show!("the private queue is untouched", private.qsize());
    show!("the private lock is free", lock.try_acquire());
    show!("the private event is clear", event.is_set());
    show!("get", shared.get_nowait());
    show!("get", shared.get_nowait());

    println!("-- a closed object is no longer held");
    let h = private.handle();
    private.close();
    println!(
        "queue-qsize after close: {}",
        raw_fmt(raw::queue_qsize(h), &names)
    );
    show!(
        "passing a closed queue to a child",
        Process::new("grandchild", &private).map(|_| ())
    );

    println!("-- serialising an object into a queue item or a pipe message");
    let nested = Queue::<Queue<u32>>::new().unwrap();
    show!("put a queue into a queue", nested.put(&shared));
    show!("send an event through a pipe", conn.send(&event));

    println!("-- an object outlives its creator");
    let (ready, done) = (Event::new().unwrap(), Event::new().unwrap());
    let creator = Process::builder("creator")
        .name("creator")
        .args(&(ready.clone(), done.clone()))
        .unwrap()
        .build()
        .unwrap();
    creator.start().unwrap();
    show!("creator ready", ready.wait(LONG));
    creator.terminate().unwrap();
    creator.join(None).unwrap();
    show!("creator exitcode", creator.exitcode());
    show!("reader done", done.wait(LONG));
}
