//! CPython `_TestPool` (`test_async`, `test_async_timeout`, `test_terminate`,
//! `test_context`, `test_enter`), in our words: `apply_async` and its `AsyncResult`
//! (`get` with a timeout, `wait`, `ready`, `successful`), `close`/`join`, `terminate`, and a
//! dropped pool.

use programs::show;
use std::time::Duration;
use wasmproc_guest::{Pool, pool_fn, targets};

const LONG: Duration = Duration::from_secs(60);

fn sqr(x: i64) -> i64 {
    x * x
}

/// Sleeps `ms` milliseconds, then squares `x`.
fn slow_sqr(x: i64, ms: u64) -> i64 {
    std::thread::sleep(Duration::from_millis(ms));
    x * x
}

fn fails(x: i64) -> i64 {
    panic!("cannot square {x}");
}

targets![; pool: sqr, slow_sqr, fails];

fn main() {
    let pool = Pool::new(3).unwrap();

    println!("-- apply_async");
    let r = pool.apply_async(pool_fn!(slow_sqr), (7, 100)).unwrap();
    show!("get(None)", r.get(None));
    println!("ready: {}", r.ready());
    show!("successful", r.successful());
    show!("get again", r.get(None));

    println!("-- a slow task");
    let r = pool.apply_async(pool_fn!(slow_sqr), (6, 2000)).unwrap();
    show!("get(0.2)", r.get(Duration::from_millis(200)));
    println!("ready: {}", r.ready());
    show!("successful before ready", r.successful());
    show!("wait(0.1)", r.wait(Duration::from_millis(100)));
    println!("ready after wait(0.1): {}", r.ready());
    show!("get(60)", r.get(LONG));
    println!("ready: {}", r.ready());
    show!("successful", r.successful());

    println!("-- wait, then get");
    let r = pool.apply_async(pool_fn!(sqr), 9).unwrap();
    show!("wait(None)", r.wait(None));
    println!("ready: {}", r.ready());
    show!("get(0)", r.get(Duration::ZERO));

    println!("-- a failing task");
    let r = pool.apply_async(pool_fn!(fails), 5).unwrap();
    show!("wait(60)", r.wait(LONG));
    println!("ready: {}", r.ready());
    show!("successful", r.successful());
    match r.get(None) {
        Ok(v) => println!("get: {v:?}"),
        Err(e) => println!(
            "get: error {:?}, mentions the panic: {}",
            e.kind(),
            e.message().contains("cannot square 5")
        ),
    }

    println!("-- many at once");
    let results: Vec<_> = (0..20)
        .map(|i| pool.apply_async(pool_fn!(sqr), i).unwrap())
        .collect();
    let values: Vec<String> = results
        .iter()
        .map(|r| programs::fmt(&r.get(LONG)))
        .collect();
    println!("values: {}", values.join(" "));

    println!("-- join before close");
    show!("join", pool.join());

    println!("-- close, then join");
    let pending: Vec<_> = (0..6)
        .map(|i| pool.apply_async(pool_fn!(slow_sqr), (i, 100)).unwrap())
        .collect();
    show!("close", pool.close());
    show!("close again", pool.close());
    show!(
        "apply_async after close",
        pool.apply_async(pool_fn!(sqr), 1).map(|_| ())
    );
    show!("apply after close", pool.apply(pool_fn!(sqr), 1));
    show!("map after close", pool.map(pool_fn!(sqr), 0..2));
    show!("join", pool.join());
    let values: Vec<String> = pending
        .iter()
        .map(|r| programs::fmt(&r.get(Duration::ZERO)))
        .collect();
    println!(
        "tasks submitted before close finished: {}",
        values.join(" ")
    );

    println!("-- terminate");
    let pool = Pool::new(3).unwrap();
    let workers = pool.processes();
    let stuck: Vec<_> = (0..10)
        .map(|i| {
            pool.apply_async(pool_fn!(slow_sqr), (i, 3_600_000))
                .unwrap()
        })
        .collect();
    show!("terminate", pool.terminate());
    show!("join", pool.join());
    let ended = workers.iter().all(|w| w.is_alive().ok() == Some(false));
    println!("workers ended: {ended}");
    println!(
        "stuck tasks ready: {}",
        stuck
            .iter()
            .any(|r| r.ready() && r.successful() == Ok(true))
    );
    show!("apply after terminate", pool.apply(pool_fn!(sqr), 1));
    show!("terminate again", pool.terminate());

    println!("-- a dropped pool terminates its workers");
    let pool = Pool::new(2).unwrap();
    let workers = pool.processes();
    let _stuck = pool
        .apply_async(pool_fn!(slow_sqr), (1, 3_600_000))
        .unwrap();
    drop(pool);
    for w in &workers {
        w.join(LONG).unwrap();
    }
    let ended = workers.iter().all(|w| w.is_alive().ok() == Some(false));
    println!("workers ended: {ended}");
}
