//! Every process gets randomness of its own: children started one after another (under
//! `native`, forked from one fork server) must not share a random stream. Each child reports
//! a value derived from WASI's random source (std's `RandomState` keys come from it).

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;
use wasmproc_guest::{Process, Queue, targets};

fn report(q: Queue<u64>) {
    q.put(&RandomState::new().hash_one(42u64)).unwrap();
}

targets![report];

fn main() {
    const N: usize = 8;
    let q = Queue::<u64>::new().unwrap();
    for _ in 0..N {
        let p = Process::new("report", &q).unwrap();
        p.start().unwrap();
        p.join(None).unwrap();
    }
    let mine = RandomState::new().hash_one(42u64);
    let mut seen: BTreeSet<u64> = (0..N)
        .map(|_| q.get_timeout(Duration::from_secs(30)).unwrap())
        .collect();
    seen.insert(mine);
    println!("distinct values from {} processes: {}", N + 1, seen.len());
}
