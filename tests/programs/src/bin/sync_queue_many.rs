//! Many producers and consumers on one queue: 4 producers put 1000 items each, 3 consumers
//! take them until each sees a stop marker. Every item arrives exactly once, and each
//! consumer sees the items of one producer in the order they were put (the queue is FIFO).
//! Run with argument `bounded` the queue holds at most 8 items, so producers block often.

use programs::show;
use std::collections::BTreeMap;
use wasmproc_guest::{Process, Queue, targets};

const PRODUCERS: u32 = 4;
const ITEMS: u32 = 1000;
const CONSUMERS: u32 = 3;

type Item = Option<(u32, u32)>;

fn producer((q, id): (Queue<Item>, u32)) {
    for seq in 0..ITEMS {
        q.put(&Some((id, seq))).unwrap();
    }
}

fn consumer((q, results): (Queue<Item>, Queue<Vec<(u32, u32)>>)) {
    let mut got = Vec::new();
    while let Some(item) = q.get().unwrap() {
        got.push(item);
    }
    // FIFO per producer: the sequence numbers of each producer only grow.
    let mut last: BTreeMap<u32, u32> = BTreeMap::new();
    let fifo = got.iter().all(|&(id, seq)| match last.insert(id, seq) {
        Some(prev) => prev < seq,
        None => true,
    });
    println!("fifo per producer: {fifo}");
    results.put(&got).unwrap();
}

targets![producer, consumer];

fn main() {
    let bounded = std::env::args().nth(1).as_deref() == Some("bounded");
    let q = if bounded {
        Queue::<Item>::bounded(8).unwrap()
    } else {
        Queue::<Item>::new().unwrap()
    };
    let results = Queue::<Vec<(u32, u32)>>::new().unwrap();
    let consumers: Vec<Process> = (0..CONSUMERS)
        .map(|i| {
            let p = Process::builder("consumer")
                .name(&format!("consumer-{i}"))
                .args(&(q.clone(), results.clone()))
                .unwrap()
                .build()
                .unwrap();
            p.start().unwrap();
            p
        })
        .collect();
    let producers: Vec<Process> = (0..PRODUCERS)
        .map(|id| {
            let p = Process::builder("producer")
                .name(&format!("producer-{id}"))
                .args(&(q.clone(), id))
                .unwrap()
                .build()
                .unwrap();
            p.start().unwrap();
            p
        })
        .collect();
    for p in &producers {
        p.join(None).unwrap();
    }
    for _ in 0..CONSUMERS {
        q.put(&None).unwrap();
    }
    let mut all = Vec::new();
    for _ in 0..CONSUMERS {
        all.extend(results.get().unwrap());
    }
    for p in consumers.iter().chain(&producers) {
        p.join(None).unwrap();
    }
    let exitcodes: Vec<Option<i32>> = consumers
        .iter()
        .chain(&producers)
        .map(|p| p.exitcode().unwrap())
        .collect();
    println!("exitcodes: {exitcodes:?}");
    println!("items received: {}", all.len());
    all.sort();
    all.dedup();
    println!("distinct items: {}", all.len());
    let expected: Vec<(u32, u32)> = (0..PRODUCERS)
        .flat_map(|id| (0..ITEMS).map(move |seq| (id, seq)))
        .collect();
    println!("every item exactly once: {}", all == expected);
    show!("queue left empty", q.empty());
}
