//! `Queue::get_many` and `Queue::post` (no CPython counterpart): a batch taken in one call,
//! waiting only for its first item; posted puts that keep their order with other calls and
//! are delivered when the posting process ends, however it ends; a post's own failure
//! (a native child learns of it at its next call).
//! Run with `message = 1KiB`.

use programs::show;
use std::time::Duration;
use wasmproc_guest::{Process, Queue, targets};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(100);

/// Posts `0..n`, then returns (`how` 0), exits with 4 (1) or panics (2).
fn poster((q, n, how): (Queue<u32>, u32, u8)) {
    for i in 0..n {
        q.post(&i).unwrap();
    }
    match how {
        0 => {}
        1 => wasmproc_guest::exit(4),
        _ => panic!("after posting {n}"),
    }
}

/// Puts `x` after `ms` milliseconds.
fn put_later((q, x, ms): (Queue<u32>, u32, u64)) {
    std::thread::sleep(Duration::from_millis(ms));
    q.put(&x).unwrap();
}

/// Posts an item above the host's `message` limit, then makes two calls.
fn bad_post(b: Queue<Vec<u8>>) {
    show!("post of 2048 bytes", b.post_bytes(&[0; 2048]));
    show!("the next call", b.qsize());
    show!("the call after", b.qsize());
}

/// Waits for a batch and tells how many items it took.
fn take_batch(q: Queue<u32>) {
    let got = q.get_many(10, LONG).unwrap();
    println!("child took {got:?} in one call");
}

/// Posts to two queues in turn, then puts on the second.
fn post_to_two((a, b): (Queue<u32>, Queue<u32>)) {
    a.post(&1).unwrap();
    b.post(&2).unwrap();
    a.post(&3).unwrap();
    a.post(&5).unwrap();
    b.put(&4).unwrap();
}

targets![poster, put_later, bad_post, take_batch, post_to_two];

fn main() {
    println!("-- get_many");
    let q = Queue::<u32>::new().unwrap();
    for i in 0..5 {
        q.put(&i).unwrap();
    }
    show!("get_many 3", q.get_many(3, None));
    show!("get_many 10", q.get_many(10, None));
    show!("get_many on empty (0.1s)", q.get_many(10, SHORT));
    show!("get_many on empty (0)", q.get_many(10, Duration::ZERO));
    q.put(&9).unwrap();
    show!("get_many 0", q.get_many(0, None));
    show!("the item is still there", q.get_many(10, Duration::ZERO));
    let p = Process::new("put_later", &(q.clone(), 7u32, 200u64)).unwrap();
    p.start().unwrap();
    show!("get_many waits for the first", q.get_many(10, LONG));
    p.join(LONG).unwrap();
    q.put_bytes(&[1, 2]).unwrap();
    show!("get_many_bytes", q.get_many_bytes(10, None));

    println!("-- put_many");
    // A `u32` below 128 is one byte, itself, in the queue's encoding (a postcard varint).
    let items = |xs: &[u8]| -> Vec<Vec<u8>> { xs.iter().map(|&x| vec![x]).collect() };
    show!(
        "put_many_bytes of 3",
        q.put_many_bytes(&items(&[10, 11, 12]))
    );
    show!("then", q.get_many(10, None));
    show!("put_many_bytes of none", q.put_many_bytes(&[]));
    let bounded = Queue::<u32>::bounded(2).unwrap();
    show!(
        "put_many_bytes of 3 on maxsize 2",
        bounded.put_many_bytes(&items(&[1, 2, 3]))
    );
    show!(
        "put_many_bytes on the full queue",
        bounded.put_many_bytes(&items(&[4]))
    );
    show!("then", bounded.get_many(10, None));
    show!(
        "put_many_bytes of a first item too large",
        q.put_many_bytes(&[vec![0; 2048], vec![1]])
    );
    show!(
        "put_many_bytes of a later item too large",
        q.put_many_bytes(&[vec![1], vec![0; 2048], vec![2]])
    );
    show!("then", q.get_many_bytes(10, None));
    let p = Process::new("take_batch", &q).unwrap();
    p.start().unwrap();
    // Time for the child to be waiting (it takes them all either way).
    std::thread::sleep(Duration::from_millis(300));
    show!(
        "put_many_bytes of 5 to a waiting child",
        q.put_many_bytes(&items(&[1, 2, 3, 4, 5]))
    );
    p.join(LONG).unwrap();

    println!("-- post");
    q.post(&1).unwrap();
    q.put(&2).unwrap();
    q.post(&3).unwrap();
    show!("posts and puts in order", q.get_many(10, None));
    for (how, label) in [(0u8, "returns"), (1, "exits with 4"), (2, "panics")] {
        let n = 1000u32;
        let p = Process::new("poster", &(q.clone(), n, how)).unwrap();
        p.start().unwrap();
        p.join(LONG).unwrap();
        let got = q
            .get_many(2 * n as usize, Duration::ZERO)
            .unwrap_or_default();
        println!(
            "a child that posts {n} and {label}: exitcode {:?}, {} items, in order: {}",
            p.exitcode().unwrap(),
            got.len(),
            got.iter().copied().eq(0..n)
        );
    }

    let (a, b) = (Queue::<u32>::new().unwrap(), Queue::<u32>::new().unwrap());
    let p = Process::new("post_to_two", &(a.clone(), b.clone())).unwrap();
    p.start().unwrap();
    show!("two queues: the second's first", b.get());
    show!("two queues: the second's put", b.get());
    show!(
        "two queues: then the first has",
        a.get_many(10, Duration::ZERO)
    );
    p.join(LONG).unwrap();

    println!("-- a post that fails");
    let b = Queue::<Vec<u8>>::new().unwrap();
    show!("here: post of 2048 bytes", b.post_bytes(&[0; 2048]));
    show!("here: the next call", b.qsize());
    let p = Process::new("bad_post", &b).unwrap();
    p.start().unwrap();
    p.join(LONG).unwrap();
    show!("in a child: exitcode", p.exitcode());
}
