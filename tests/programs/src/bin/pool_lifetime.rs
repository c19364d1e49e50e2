//! CPython `_TestPoolWorkerLifetime` (`test_pool_worker_lifetime`,
//! `test_pool_worker_lifetime_early_close`), in our words: with `maxtasksperchild` a worker
//! exits after that many tasks and is replaced by a new process, and closing such a pool
//! early still finishes every task.

use programs::show;
use std::collections::BTreeSet;
use std::time::Duration;
use wasmproc_guest::{Pool, current_process, pool_fn, targets};

/// The pid of the worker that ran the task.
fn worker_pid(_task: u32) -> u64 {
    current_process().pid().unwrap().unwrap()
}

fn slow_sqr(x: i64, ms: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(ms));
    x * x
}

targets![; pool: worker_pid, slow_sqr];

fn distinct_pids(pool: &Pool, tasks: u32) -> Result<usize, wasmproc_guest::Error> {
    let results: Vec<_> = (0..tasks)
        .map(|i| pool.apply_async(pool_fn!(worker_pid), i))
        .collect::<Result<_, _>>()?;
    let mut pids = BTreeSet::new();
    for r in results {
        pids.insert(r.get(None)?);
    }
    Ok(pids.len())
}

fn main() {
    println!("-- maxtasksperchild=1");
    let pool = Pool::builder()
        .processes(2)
        .maxtasksperchild(1)
        .build()
        .unwrap();
    println!("workers: {}", pool.processes().len());
    show!("distinct pids of 10 tasks", distinct_pids(&pool, 10));
    show!(
        "starmap after the replacements",
        pool.starmap(pool_fn!(slow_sqr), vec![(3, 0), (4, 0)])
    );
    pool.close().unwrap();
    pool.join().unwrap();

    println!("-- maxtasksperchild=10");
    let pool = Pool::builder()
        .processes(3)
        .maxtasksperchild(10)
        .build()
        .unwrap();
    let before: BTreeSet<Option<u64>> = pool.processes().iter().map(|p| p.pid().unwrap()).collect();
    println!(
        "initial workers have pids: {}",
        before.len() == 3 && !before.contains(&None)
    );
    let results: Vec<_> = (0..100)
        .map(|i| pool.apply_async(pool_fn!(slow_sqr), (i, 0)).unwrap())
        .collect();
    let correct = results
        .iter()
        .enumerate()
        .all(|(i, r)| r.get(None) == Ok((i * i) as i64));
    println!("100 results correct: {correct}");
    // Each worker runs at most 10 tasks, so 100 tasks need at least 10 workers.
    match distinct_pids(&pool, 100) {
        Ok(n) => println!("100 more tasks ran in at least 10 workers: {}", n >= 10),
        Err(e) => println!("distinct pids: error {:?}: {}", e.kind(), e.message()),
    }
    pool.close().unwrap();
    pool.join().unwrap();

    println!("-- maxtasksperchild=1, closed early");
    show!(
        "maxtasksperchild(0)",
        Pool::builder().maxtasksperchild(0).build().map(|_| ())
    );
    let pool = Pool::builder()
        .processes(3)
        .maxtasksperchild(1)
        .build()
        .unwrap();
    let results: Vec<_> = (0..6)
        .map(|i| pool.apply_async(pool_fn!(slow_sqr), (i, 300)).unwrap())
        .collect();
    show!("close", pool.close());
    show!("join", pool.join());
    let values: Vec<String> = results
        .iter()
        .map(|r| programs::fmt(&r.get(Duration::ZERO)))
        .collect();
    println!("results: {}", values.join(" "));
}
