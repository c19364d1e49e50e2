//! Producers and consumers of one queue killed (SIGKILL) at arbitrary points of their puts
//! and gets, round after round: every item is whole, none arrives twice, and the queue
//! works on afterwards. `sync_queue_kill [ROUNDS]` (default 10).
//!
//! Each item is `(producer, seq, payload)`, the payload a pattern of its own `(producer,
//! seq)` and of a length that varies, so that a torn item cannot pass for a whole one.
//! Consumers forward what they got to `seen`; an item is either still in the queue, or
//! forwarded, or taken by a consumer killed before it could forward it: never two of these.

use std::collections::HashSet;
use std::time::Duration;
use wasmproc_guest::{Event, Process, Queue, targets};

type Item = (u32, u32, Vec<u8>);

const PRODUCERS: u32 = 3;
const CONSUMERS: u32 = 2;

fn payload(producer: u32, seq: u32) -> Vec<u8> {
    let len = ((seq as usize * 37) + producer as usize * 11) % 3000 + 1;
    (0..len)
        .map(|i| (i as u32 ^ seq.wrapping_mul(31) ^ producer) as u8)
        .collect()
}

fn whole(item: &Item) -> bool {
    item.2 == payload(item.0, item.1)
}

/// Puts items forever; sets `going` after the first.
fn produce((q, id, going): (Queue<Item>, u32, Event)) {
    for seq in 0.. {
        q.put(&(id, seq, payload(id, seq))).unwrap();
        if seq == 0 {
            going.set().unwrap();
        }
    }
}

/// Gets items forever, checks each and forwards `(producer, seq)` to `seen`; sets `going`
/// after the first.
fn consume((q, seen, going): (Queue<Item>, Queue<(u32, u32)>, Event)) {
    let mut first = true;
    loop {
        let item = q.get().unwrap();
        assert!(whole(&item), "a torn item: {} {}", item.0, item.1);
        seen.put(&(item.0, item.1)).unwrap();
        if first {
            going.set().unwrap();
            first = false;
        }
    }
}

targets![produce, consume];

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let q = Queue::<Item>::new().unwrap();
    let seen = Queue::<(u32, u32)>::new().unwrap();
    let mut got = HashSet::new();
    let mut total = 0u64;
    for round in 0..rounds {
        let mut procs = Vec::new();
        for id in 0..PRODUCERS {
            let going = Event::new().unwrap();
            let p = Process::new(
                "produce",
                &(q.clone(), round * PRODUCERS + id, going.clone()),
            )
            .unwrap();
            p.start().unwrap();
            procs.push((p, going));
        }
        for _ in 0..CONSUMERS {
            let going = Event::new().unwrap();
            let p = Process::new("consume", &(q.clone(), seen.clone(), going.clone())).unwrap();
            p.start().unwrap();
            procs.push((p, going));
        }
        for (_, going) in &procs {
            assert!(
                going.wait(Duration::from_secs(30)).unwrap(),
                "a process never went"
            );
        }
        // A different moment of their loops in each round.
        std::thread::sleep(Duration::from_micros(200 * u64::from(round % 11)));
        for (p, _) in &procs {
            p.kill().unwrap();
        }
        for (p, _) in &procs {
            p.join(None).unwrap();
            assert_eq!(p.exitcode().unwrap(), Some(-9), "killed, not failed");
        }
        // What was forwarded, then what is left: each item at most once, each whole.
        while let Ok(pair) = seen.get_nowait() {
            assert!(got.insert(pair), "{pair:?} arrived twice");
            total += 1;
        }
        while let Ok(item) = q.get_nowait() {
            assert!(whole(&item), "a torn item left in the queue");
            assert!(
                got.insert((item.0, item.1)),
                "{:?} arrived twice",
                (item.0, item.1)
            );
            total += 1;
        }
    }
    // Afterwards the queue is as good as new.
    q.put(&(u32::MAX, 7, payload(u32::MAX, 7))).unwrap();
    let item = q.get_timeout(Duration::from_secs(10)).unwrap();
    assert!(whole(&item) && item.0 == u32::MAX);
    assert!(
        total >= u64::from(rounds * PRODUCERS),
        "every producer put one"
    );
    println!("{rounds} rounds: every item whole, none twice, the queue works on");
}
