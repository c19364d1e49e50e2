//! CPython `_TestContainers` (Lib/test/_test_multiprocessing.py: test_list, test_dict,
//! test_dict_iter, test_list_proxy_in_list's simple parts), in our words, over the host's
//! shared dictionary and list: what a child changes, the parent sees; keys keep their
//! order; and the errors of bad indexes, missing keys and unpassable values.

use programs::fmt;
use wasmproc_guest::{DictProxy, ListProxy, Lock, Manager, Process, Queue, targets};

/// Adds to the dictionary and the list, and counts in "hits" under the lock.
fn child((d, l, lock): (DictProxy<String, i64>, ListProxy<String>, Lock)) {
    d.set(&"child".to_string(), &7).unwrap();
    l.append(&"from the child".to_string()).unwrap();
    for _ in 0..50 {
        let _held = lock.lock().unwrap();
        let hits = d.get(&"hits".to_string()).unwrap().unwrap_or(0);
        d.set(&"hits".to_string(), &(hits + 1)).unwrap();
    }
}

targets![child];

fn main() {
    let m = Manager::new();

    println!("-- list");
    let l = m.list::<String>().unwrap();
    println!("empty: {}, len: {}", fmt(&l.is_empty()), fmt(&l.len()));
    for s in ["a", "b", "c"] {
        l.append(&s.to_string()).unwrap();
    }
    println!("after 3 appends: {}", fmt(&l.to_vec()));
    println!("l[1]: {}", fmt(&l.get(1)));
    println!("l[1] = B: {}", fmt(&l.set(1, &"B".to_string())));
    println!("insert(0, z): {}", fmt(&l.insert(0, &"z".to_string())));
    println!(
        "insert(99, end): {}",
        fmt(&l.insert(99, &"end".to_string()))
    );
    println!("now: {}", fmt(&l.to_vec()));
    println!("pop(): {}", fmt(&l.pop(None)));
    println!("pop(0): {}", fmt(&l.pop(Some(0))));
    println!("now: {}", fmt(&l.to_vec()));
    println!("l[3]: {}", fmt(&l.get(3)));
    println!("l[3] = x: {}", fmt(&l.set(3, &"x".to_string())));
    println!("pop(3): {}", fmt(&l.pop(Some(3))));
    let empty = m.list::<u8>().unwrap();
    println!("pop() of an empty list: {}", fmt(&empty.pop(None)));

    println!("-- dict");
    let d = m.dict::<String, i64>().unwrap();
    for (k, v) in [("one", 1), ("two", 2), ("three", 3)] {
        d.set(&k.to_string(), &v).unwrap();
    }
    println!("items: {}", fmt(&d.items()));
    println!("keys: {}", fmt(&d.keys()));
    println!("values: {}", fmt(&d.values()));
    println!("len: {}", fmt(&d.len()));
    println!("d[two]: {}", fmt(&d.index(&"two".to_string())));
    println!("get(four): {}", fmt(&d.get(&"four".to_string())));
    println!("d[four]: {}", fmt(&d.index(&"four".to_string())));
    println!("one in d: {}", fmt(&d.contains_key(&"one".to_string())));
    println!(
        "d[one] = 10 (keeps its place): {}",
        fmt(&d.set(&"one".to_string(), &10))
    );
    println!("pop(two): {}", fmt(&d.remove(&"two".to_string())));
    println!("pop(two) again: {}", fmt(&d.remove(&"two".to_string())));
    println!(
        "d[two] = 20 (goes last): {}",
        fmt(&d.set(&"two".to_string(), &20))
    );
    println!("items: {}", fmt(&d.items()));
    println!("clear: {}", fmt(&d.clear()));
    println!("items: {}, empty: {}", fmt(&d.items()), fmt(&d.is_empty()));

    println!("-- shared with two children");
    let lock = Lock::new().unwrap();
    let l = m.list::<String>().unwrap();
    let procs: Vec<Process> = (0..2)
        .map(|_| Process::new("child", &(d.clone(), l.clone(), lock.clone())).unwrap())
        .collect();
    for p in &procs {
        p.start().unwrap();
    }
    for p in &procs {
        p.join(None).unwrap();
        println!("child exitcode: {}", fmt(&p.exitcode()));
    }
    println!(
        "child: {}, hits: {}",
        fmt(&d.get(&"child".to_string())),
        fmt(&d.get(&"hits".to_string()))
    );
    println!("list: {}", fmt(&l.to_vec()));

    println!("-- values that cannot go in");
    let q = Queue::<u8>::new().unwrap();
    let queues = m.dict::<u8, Queue<u8>>().unwrap();
    println!("a Queue as a value: {}", fmt(&queues.set(&1, &q)));
    let big = m.list::<Vec<u8>>().unwrap();
    println!("a 65 MiB item: {}", fmt(&big.append(&vec![0u8; 65 << 20])));
}
