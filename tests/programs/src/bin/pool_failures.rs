//! Failing tasks (CPython `_TestPool.test_traceback` and `_TestPoolWorkerErrors`, in our
//! words): a task that panics, exits, or whose worker is killed fails with `TaskFailed`
//! carrying the panic message or exit code; the other tasks' results are unaffected and
//! the pool keeps working with a replacement worker.

use std::time::Duration;
use wasmproc_guest::{Error, Pool, pool_fn, targets};

const LONG: Duration = Duration::from_secs(60);

fn sqr_unless_13(x: i64) -> i64 {
    if x == 13 {
        panic!("unlucky {x}");
    }
    x * x
}

fn exit_with(code: i32) -> i64 {
    wasmproc_guest::exit(code)
}

fn times_ten_unless_3(x: i64) -> i64 {
    if x == 3 {
        wasmproc_guest::exit(3)
    }
    10 * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

targets![; pool: sqr_unless_13, exit_with, times_ten_unless_3, sleep_ms];

/// The message with worker names and source positions made stable: `Process-3` and
/// `Process-1:2` become `Process-N`, `file.rs:10:5` becomes `file.rs:L:C`.
fn stable(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("Process-") {
            let n = numbers_len(after);
            if n > 0 {
                out.push_str("Process-N");
                rest = &after[n..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix(".rs:") {
            let n = numbers_len(after);
            if n > 0 {
                out.push_str(".rs:L:C");
                rest = &after[n..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The length of the prefix of `s` made of numbers separated by single colons (`3`,
/// `1:2`, `10:5`), not counting a colon after the last number.
fn numbers_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut end = 0;
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return end;
        }
        end = i;
        if i < b.len() && b[i] == b':' {
            i += 1;
        } else {
            return end;
        }
    }
}

fn show<T: std::fmt::Debug>(label: &str, r: Result<T, Error>) {
    match r {
        Ok(v) => println!("{label}: {v:?}"),
        Err(e) => println!(
            "{label}: error {:?}: {}",
            e.kind(),
            stable(e.message()).replace('\n', "\\n")
        ),
    }
}

fn main() {
    let pool = Pool::new(2).unwrap();
    let f = pool_fn!(sqr_unless_13);

    println!("-- a panicking task");
    show("map with 13", pool.map(f, [1, 2, 3, 13, 5]));
    show("apply 4 afterwards", pool.apply(f, 4));
    show("apply 13", pool.apply(f, 13));
    match pool.imap(f, [1, 2, 13, 4], 1) {
        Ok(it) => {
            for (i, r) in it.enumerate() {
                show(&format!("imap item {i}"), r);
            }
        }
        Err(e) => show::<()>("imap", Err(e)),
    }
    match pool.imap_unordered(f, [13, 1, 2, 3, 4, 5, 13, 6], 2) {
        Ok(it) => {
            let (mut ok, mut failed) = (Vec::new(), 0);
            for r in it {
                match r {
                    Ok(v) => ok.push(v),
                    Err(_) => failed += 1,
                }
            }
            ok.sort();
            println!("imap_unordered: values {ok:?}, failed {failed}");
        }
        Err(e) => show::<()>("imap_unordered", Err(e)),
    }
    let results: Vec<_> = [5, 13, 6]
        .iter()
        .map(|&x| pool.apply_async(f, x).unwrap())
        .collect();
    for (x, r) in [5, 13, 6].iter().zip(&results) {
        show(&format!("apply_async {x}"), r.get(LONG));
        show("  successful", r.successful());
    }
    show("map afterwards", pool.map(f, 0..5));

    println!("-- a task that exits");
    show("apply exit_with 7", pool.apply(pool_fn!(exit_with), 7));
    show("apply exit_with 0", pool.apply(pool_fn!(exit_with), 0));
    show("apply 3 afterwards", pool.apply(f, 3));

    println!("-- tasks given with one that exits");
    // A pool's only worker takes its whole inbox in one batch: the tasks it took behind the
    // one that exits were not started, and run on its replacement.
    let one = Pool::new(1).unwrap();
    show("warm-up", one.map(f, 20..120).map(|v| v.len()));
    match one.imap(pool_fn!(times_ten_unless_3), [1, 2, 3, 4, 5], 1) {
        Ok(it) => {
            for (i, r) in it.enumerate() {
                show(&format!("imap item {i}"), r);
            }
        }
        Err(e) => show::<()>("imap", Err(e)),
    }
    drop(one);

    println!("-- a long task does not hold up the tasks given after it");
    let two = Pool::new(2).unwrap();
    let long = two.apply_async(pool_fn!(sleep_ms), 3_000).unwrap();
    show(
        "map of 20 while it runs",
        two.map(f, 20..40).map(|v| v.len()),
    );
    println!("  the long task still running: {}", !long.ready());
    show("the long task", long.get(LONG));
    // The same with warm workers, each waiting for tasks, and the long task given to one
    // of them in the same `put_many` as quick ones: it must leave those to the other worker
    // (in completion order, the long task's result comes last). A worker that took its
    // whole inbox at once ran them after the long one, every time.
    show("warm-up", two.map(f, 20..220).map(|v| v.len()));
    let mut items = vec![3_000u64];
    items.extend([0; 20]);
    match two.imap_unordered(pool_fn!(sleep_ms), items, 1) {
        Ok(it) => {
            let first: Vec<u64> = it.take(20).map(|r| r.unwrap_or(u64::MAX)).collect();
            println!(
                "  the first 20 results are the quick tasks': {}",
                first.iter().all(|&ms| ms == 0)
            );
        }
        Err(e) => show::<()>("imap_unordered", Err(e)),
    }
    drop(two);

    for signal in ["kill", "terminate"] {
        println!("-- the worker is sent {signal} mid-task");
        let pool = Pool::new(1).unwrap();
        show("apply 1 (the worker is up)", pool.apply(f, 1));
        let worker = pool.processes().remove(0);
        let old_pid = worker.pid().unwrap();
        let r = pool.apply_async(pool_fn!(sleep_ms), 30_000).unwrap();
        // A margin for the idle worker to pick the task up.
        std::thread::sleep(Duration::from_millis(1000));
        match signal {
            "kill" => worker.kill().unwrap(),
            _ => worker.terminate().unwrap(),
        }
        show("the task", r.get(LONG));
        show("apply 5 afterwards", pool.apply(f, 5));
        let now = pool.processes();
        println!(
            "workers: {}, replaced: {}",
            now.len(),
            now.iter().all(|p| p.pid().unwrap() != old_pid)
        );
        show("close", pool.close());
        show("join", pool.join());
    }
}
