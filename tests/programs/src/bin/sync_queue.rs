//! CPython `_TestQueue` (`test_put`, `test_get`, `test_fork`, `test_qsize`, `test_timeout`,
//! `test_closed_queue_put_get_exceptions`), in our words, plus typed values and raw bytes
//! carried through a child.

use programs::show;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use wasmproc_guest::{Event, Process, Queue, targets};

const LONG: Duration = Duration::from_secs(30);

/// The raw items `test_typed` sends through a child: around the 16 bytes of the small-item
/// fast path and the 46 the host keeps inline.
const BYTE_LENGTHS: [usize; 9] = [0, 3, 8, 15, 16, 17, 46, 47, 65536];
const SHORT: Duration = Duration::from_millis(100);

/// `test_put`'s child: once allowed, takes the six items off the full queue.
fn drain_six((q, may_start, done): (Queue<i32>, Event, Event)) {
    may_start.wait(None).unwrap();
    let got: Vec<i32> = (0..6).map(|_| q.get().unwrap()).collect();
    println!("child got {got:?}");
    done.set().unwrap();
}

/// `test_get`'s child: once allowed, puts 1..=5.
fn put_five((q, may_start, done): (Queue<i32>, Event, Event)) {
    may_start.wait(None).unwrap();
    for i in 1..=5 {
        q.put(&i).unwrap();
    }
    done.set().unwrap();
}

/// `test_fork`'s child: adds 10..20 behind what the parent put.
fn put_ten_more(q: Queue<i32>) {
    for i in 10..20 {
        q.put(&i).unwrap();
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum Shape {
    Circle { r: f64 },
    Square(u32),
    Nothing,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    name: String,
    tags: Vec<String>,
    score: Option<i64>,
    shape: Shape,
    raw: Vec<u8>,
}

/// `echo_typed`'s queues: records in and out, raw bytes in and out.
type EchoQueues = (Queue<Record>, Queue<Record>, Queue<Vec<u8>>, Queue<Vec<u8>>);

/// Sends every record back unchanged, then every raw bytes item.
fn echo_typed((input, output, bytes_in, bytes_out): EchoQueues) {
    for _ in 0..3 {
        output.put(&input.get().unwrap()).unwrap();
    }
    for _ in BYTE_LENGTHS {
        let b = bytes_in.get_bytes().unwrap();
        bytes_out.put_bytes(&b).unwrap();
    }
}

targets![drain_six, put_five, put_ten_more, echo_typed];

fn test_put() {
    println!("-- put");
    let q = Queue::<i32>::bounded(6).unwrap();
    let (may_start, done) = (Event::new().unwrap(), Event::new().unwrap());
    let p = Process::new("drain_six", &(q.clone(), may_start.clone(), done.clone())).unwrap();
    p.start().unwrap();
    show!("empty", q.empty());
    show!("full", q.full());
    show!("put 1", q.put(&1));
    show!("put 2", q.put(&2));
    show!("put_timeout 3", q.put_timeout(&3, LONG));
    show!("put_nowait 4", q.put_nowait(&4));
    show!("put_nowait 5", q.put_nowait(&5));
    show!("put_nowait 6", q.put_nowait(&6));
    show!("empty", q.empty());
    show!("full", q.full());
    show!("qsize", q.qsize());
    show!("put_nowait 7", q.put_nowait(&7));
    show!("put_timeout 7 (0.1s)", q.put_timeout(&7, SHORT));
    show!("put_timeout 7 (0)", q.put_timeout(&7, Duration::ZERO));
    show!("qsize", q.qsize());
    may_start.set().unwrap();
    show!("wait for the child", done.wait(LONG));
    show!("empty", q.empty());
    show!("full", q.full());
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn test_get() {
    println!("-- get");
    let q = Queue::<i32>::new().unwrap();
    let (may_start, done) = (Event::new().unwrap(), Event::new().unwrap());
    let p = Process::new("put_five", &(q.clone(), may_start.clone(), done.clone())).unwrap();
    p.start().unwrap();
    show!("empty", q.empty());
    show!("get_nowait on empty", q.get_nowait());
    may_start.set().unwrap();
    show!("wait for the child", done.wait(LONG));
    show!("empty", q.empty());
    show!("full (unbounded)", q.full());
    show!("get_nowait", q.get_nowait());
    show!("get", q.get());
    show!("get_timeout", q.get_timeout(LONG));
    show!("get", q.get());
    show!("get", q.get());
    show!("empty", q.empty());
    show!("get_nowait", q.get_nowait());
    show!("get_timeout (0.1s)", q.get_timeout(SHORT));
    show!(
        "get_timeout (0.3s)",
        q.get_timeout(Duration::from_millis(300))
    );
    show!("get_timeout (0)", q.get_timeout(Duration::ZERO));
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn test_fork() {
    println!("-- fork");
    let q = Queue::<i32>::new().unwrap();
    for i in 0..10 {
        q.put(&i).unwrap();
    }
    let p = Process::new("put_ten_more", &q).unwrap();
    p.start().unwrap();
    let got: Result<Vec<i32>, _> = (0..20).map(|_| q.get_timeout(LONG)).collect();
    show!("got", got);
    show!("then get_nowait", q.get_nowait());
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn test_qsize() {
    println!("-- qsize");
    let q = Queue::<i32>::new().unwrap();
    show!("qsize", q.qsize());
    q.put(&1).unwrap();
    show!("qsize", q.qsize());
    q.put(&5).unwrap();
    show!("qsize", q.qsize());
    show!("get", q.get());
    show!("qsize", q.qsize());
    show!("get", q.get());
    show!("qsize", q.qsize());
}

fn test_timeout() {
    println!("-- timeout");
    let q = Queue::<i32>::new().unwrap();
    let start = std::time::Instant::now();
    show!(
        "get_timeout (0.2s)",
        q.get_timeout(Duration::from_millis(200))
    );
    // CPython tolerates 100 ms of clock resolution; so do we.
    println!(
        "waited at least 0.1s: {}",
        start.elapsed() >= Duration::from_millis(100)
    );
    let full = Queue::<i32>::bounded(1).unwrap();
    full.put(&1).unwrap();
    let start = std::time::Instant::now();
    show!(
        "put_timeout on full (0.2s)",
        full.put_timeout(&2, Duration::from_millis(200))
    );
    println!(
        "waited at least 0.1s: {}",
        start.elapsed() >= Duration::from_millis(100)
    );
}

fn test_closed() {
    println!("-- closed");
    let q = Queue::<i32>::new().unwrap();
    q.put(&1).unwrap();
    q.close();
    show!("put after close", q.put(&2));
    show!("put_nowait after close", q.put_nowait(&2));
    show!("get after close", q.get());
    show!("get_nowait after close", q.get_nowait());
    show!("get_timeout after close", q.get_timeout(SHORT));
    show!("qsize after close", q.qsize());
    show!("empty after close", q.empty());
    show!("put_bytes after close", q.put_bytes(b"x"));
    show!("get_bytes after close", q.get_bytes());
    let clone = q.clone();
    show!("a clone's get after close", clone.get_nowait());
    q.close();
    println!("closing twice: ok");
    let never_used = Queue::<i32>::new().unwrap();
    never_used.close();
    show!("put on a closed unused queue", never_used.put(&1));
}

fn test_typed() {
    println!("-- typed");
    let input = Queue::<Record>::new().unwrap();
    let output = Queue::<Record>::new().unwrap();
    let bytes_in = Queue::<Vec<u8>>::new().unwrap();
    let bytes_out = Queue::<Vec<u8>>::new().unwrap();
    let p = Process::new(
        "echo_typed",
        &(
            input.clone(),
            output.clone(),
            bytes_in.clone(),
            bytes_out.clone(),
        ),
    )
    .unwrap();
    p.start().unwrap();
    let records = [
        Record {
            name: "ünïcödé ✓".into(),
            tags: vec!["a".into(), "".into(), "c".into()],
            score: Some(-7),
            shape: Shape::Circle { r: 2.5 },
            raw: vec![0, 255, 10],
        },
        Record {
            name: String::new(),
            tags: vec![],
            score: None,
            shape: Shape::Square(u32::MAX),
            raw: vec![],
        },
        Record {
            name: "last".into(),
            tags: vec!["x".repeat(1000)],
            score: Some(i64::MIN),
            shape: Shape::Nothing,
            raw: (0..=255).collect(),
        },
    ];
    for r in &records {
        input.put(r).unwrap();
    }
    for _ in 0..3 {
        match output.get_timeout(LONG) {
            Ok(r) if r.tags.len() == 1 => println!(
                "record: {:?} tags[0].len()={} score={:?} shape={:?} raw.len()={}",
                r.name,
                r.tags[0].len(),
                r.score,
                r.shape,
                r.raw.len()
            ),
            other => show!("record", other),
        }
    }
    let items: Vec<Vec<u8>> = BYTE_LENGTHS
        .iter()
        .map(|&len| (0..len).map(|i| (i * 7 + len) as u8 ^ 0xa5).collect())
        .collect();
    for b in &items {
        bytes_in.put_bytes(b).unwrap();
    }
    for expected in &items {
        let got = bytes_out.get_bytes().unwrap();
        println!(
            "bytes of length {} round trip: {}",
            got.len(),
            &got == expected
        );
    }
    p.join(None).unwrap();
    show!("child exitcode", p.exitcode());
}

fn main() {
    test_put();
    test_get();
    test_fork();
    test_qsize();
    test_timeout();
    test_closed();
    test_typed();
}
