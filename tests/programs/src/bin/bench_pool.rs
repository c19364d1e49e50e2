//! The pool benchmark's guest side (run by `tests/benches/sync.rs`): `Pool::map_chunked` of
//! a trivial function over N items with chunksize 1 (Python's
//! `Pool(W).map(f, range(N), chunksize=1)`), checking the results, and prints
//! machine-readable lines:
//! - `items N`, `workers W`,
//! - `map_s X`: the timed map alone, on a pool that has already run a warm-up map (every
//!   worker up),
//! - `total_s X`: pool creation + warm-up map + map + close + join.
//!
//! Usage: `bench_pool [N] [W]` (defaults 20,000 and 0: `cpu_count()` workers).

use std::time::Instant;
use wasmproc_guest::{Pool, pool_fn, targets};

fn f(x: u64) -> u64 {
    2 * x + 1
}

fn noop() {}

targets![noop; pool: f];

fn main() -> Result<(), wasmproc_guest::Error> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let workers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let workers = if workers == 0 {
        wasmproc_guest::cpu_count()
    } else {
        workers
    };
    let t0 = Instant::now();
    let pool = Pool::new(workers)?;
    let warm = pool.map_chunked(pool_fn!(f), 0..4 * workers as u64, 1)?;
    assert_eq!(warm.len(), 4 * workers, "bench_pool: warm-up results");
    let t1 = Instant::now();
    let out = pool.map_chunked(pool_fn!(f), 0..n, 1)?;
    let t2 = Instant::now();
    pool.close()?;
    pool.join()?;
    let t3 = Instant::now();
    let wrong = out.iter().enumerate().position(|(i, &y)| y != f(i as u64));
    if out.len() as u64 != n || wrong.is_some() {
        eprintln!(
            "bench_pool: wrong results ({} of {n}; first wrong at {wrong:?})",
            out.len()
        );
        wasmproc_guest::exit(1);
    }
    println!("items {n}");
    println!("workers {workers}");
    println!("map_s {:.6}", (t2 - t1).as_secs_f64());
    println!("total_s {:.6}", (t3 - t0).as_secs_f64());
    Ok(())
}
