//! CPython `_TestPool` (`test_apply`, `test_map`, `test_starmap`, `test_imap`,
//! `test_imap_unordered`, `test_empty_iterable`, `test_make_pool`, `test_context`), in our
//! words: results come back in order (`imap_unordered`: the same multiset), whatever the
//! chunk size.

use programs::show;
use wasmproc_guest::{Pool, cpu_count, pool_fn, targets};

fn sqr(x: i64) -> i64 {
    x * x
}

fn mul(x: i64, y: i64) -> i64 {
    x * y
}

fn fma(a: i64, b: i64, c: i64) -> i64 {
    a * b + c
}

fn shout(s: String) -> String {
    s.to_uppercase()
}

fn four(a: u8, b: u16, c: u32, d: u64) -> u64 {
    a as u64 + b as u64 + c as u64 + d
}

targets![; pool: sqr, mul, fma, shout, four];

fn squares(n: i64) -> Vec<i64> {
    (0..n).map(sqr).collect()
}

fn main() {
    let pool = Pool::new(4).unwrap();
    println!("workers: {}", pool.processes().len());
    let sqr = pool_fn!(sqr);
    let mul = pool_fn!(mul);

    println!("-- apply");
    show!("apply sqr 5", pool.apply(sqr, 5));
    show!("apply mul (3, 4)", pool.apply(mul, (3, 4)));
    show!("apply fma (2, 3, 4)", pool.apply(pool_fn!(fma), (2, 3, 4)));
    show!(
        "apply shout",
        pool.apply(pool_fn!(shout), "hello".to_string())
    );
    show!("apply four", pool.apply(pool_fn!(four), (1, 2, 3, 4)));

    println!("-- map");
    show!("map sqr 0..10", pool.map(sqr, 0..10));
    show!(
        "map sqr 0..100 == squares",
        pool.map(sqr, 0..100).map(|v| v == squares(100))
    );
    for chunksize in [1, 7, 20, 100, 1000] {
        show!(
            format!("map_chunked sqr 0..100 chunksize {chunksize} == squares"),
            pool.map_chunked(sqr, 0..100, chunksize)
                .map(|v| v == squares(100))
        );
    }
    show!(
        "map shout",
        pool.map(pool_fn!(shout), ["a", "bc", "ünï"].map(String::from))
    );

    println!("-- starmap");
    let tuples: Vec<(i64, i64)> = (0..10).zip((0..10).rev()).collect();
    show!("starmap mul", pool.starmap(mul, tuples));
    let tuples: Vec<(i64, i64)> = (0..100).zip((0..100).rev()).collect();
    let expected: Vec<i64> = tuples.iter().map(|&(a, b)| a * b).collect();
    show!(
        "starmap mul 100 == expected",
        pool.starmap(mul, tuples).map(|v| v == expected)
    );
    show!(
        "starmap fma",
        pool.starmap(pool_fn!(fma), vec![(1, 2, 3), (4, 5, 6)])
    );

    println!("-- imap");
    show!(
        "imap sqr 0..10",
        pool.imap(sqr, 0..10, 1)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
    );
    match pool.imap(sqr, 0..10, 3) {
        Ok(mut it) => {
            let firsts: Vec<_> = (0..10)
                .map(|_| it.next().map(|r| programs::fmt(&r)))
                .collect();
            println!("imap sqr 0..10 chunksize 3, one by one: {firsts:?}");
            println!(
                "imap after the end: {:?}",
                it.next().map(|r| programs::fmt(&r))
            );
        }
        Err(e) => println!("imap: {e:?}"),
    }
    show!(
        "imap sqr 0..1000 chunksize 100 == squares",
        pool.imap(sqr, 0..1000, 100)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map(|v| v == squares(1000))
    );

    println!("-- imap_unordered");
    for (n, chunksize) in [(10, 1), (1000, 100), (1000, 7)] {
        show!(
            format!("imap_unordered sqr 0..{n} chunksize {chunksize}, sorted == squares"),
            pool.imap_unordered(sqr, 0..n, chunksize)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map(|mut v| {
                    v.sort();
                    v == squares(n)
                })
        );
    }

    println!("-- empty iterables");
    show!("map", pool.map(sqr, Vec::<i64>::new()));
    show!("map_chunked", pool.map_chunked(sqr, Vec::<i64>::new(), 1));
    show!("starmap", pool.starmap(mul, Vec::<(i64, i64)>::new()));
    show!(
        "imap",
        pool.imap(sqr, Vec::<i64>::new(), 1).map(|it| it.count())
    );
    show!(
        "imap_unordered",
        pool.imap_unordered(sqr, Vec::<i64>::new(), 1)
            .map(|it| it.count())
    );
    show!(
        "map_chunked with chunksize 0",
        pool.map_chunked(sqr, 0..3, 0)
    );

    println!("-- close and join");
    show!("close", pool.close());
    show!("map after close", pool.map(sqr, 0..3));
    show!("apply after close", pool.apply(sqr, 3));
    show!("join", pool.join());
    let ended = pool
        .processes()
        .iter()
        .all(|p| !p.is_alive().unwrap_or(true));
    println!("workers ended: {ended}");

    println!("-- pool sizes");
    let p3 = Pool::new(3).unwrap();
    println!("Pool::new(3) workers: {}", p3.processes().len());
    show!("map on it", p3.map(sqr, 0..5));
    drop(p3);
    let p0 = Pool::new(0).unwrap();
    println!(
        "Pool::new(0) workers == cpu_count: {}",
        p0.processes().len() == cpu_count()
    );
    let p2 = Pool::builder().processes(2).build().unwrap();
    println!("builder processes(2) workers: {}", p2.processes().len());
}
