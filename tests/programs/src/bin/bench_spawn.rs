//! The spawn benchmark's guest side (run by `tests/benches/process.rs`): the main process
//! starts a child running the no-op target and joins it, N times after a warm-up, timing
//! each start+join inside the guest, and prints machine-readable lines:
//! `iterations N`, `median_us X`, `p10_us X`, `p90_us X`, `mean_us X`, `min_us X`, `max_us X`
//! and `samples_us X X ...` (every sample, sorted).
//!
//! Usage: `bench_spawn [N] [WARMUP]` (defaults 2000 and 200).
//! The `sleeper` target is what the host side starts by the thousand to measure how many
//! sleeping processes one host holds.

use std::time::{Duration, Instant};
use wasmproc_guest::{Process, targets};

fn noop() {}

/// The square of its argument, returned to the parent (the typed start+join+result).
fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn sleeper() {
    std::thread::sleep(Duration::from_secs(3600));
}

targets![noop, square, sleeper];

/// One start+join of a no-op child, in microseconds.
fn once() -> Result<f64, wasmproc_guest::Error> {
    let t = Instant::now();
    let p = Process::new("noop", &())?;
    p.start()?;
    p.join(None)?;
    let us = t.elapsed().as_secs_f64() * 1e6;
    if p.exitcode()? != Some(0) {
        eprintln!("bench_spawn: noop child ended with {:?}", p.exitcode()?);
        wasmproc_guest::exit(1);
    }
    Ok(us)
}

/// The `q` quantile (0..=1) of sorted samples, by nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn main() -> Result<(), wasmproc_guest::Error> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000)
        .max(1);
    let warmup: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    for _ in 0..warmup {
        once()?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(once()?);
    }
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / n as f64;
    println!("iterations {n}");
    println!("median_us {:.1}", quantile(&samples, 0.5));
    println!("p10_us {:.1}", quantile(&samples, 0.1));
    println!("p90_us {:.1}", quantile(&samples, 0.9));
    println!("mean_us {mean:.1}");
    println!("min_us {:.1}", samples[0]);
    println!("max_us {:.1}", samples[n - 1]);
    // Every sample (sorted), for a caller pooling several runs.
    let all: Vec<String> = samples.iter().map(|s| format!("{s:.1}")).collect();
    println!("samples_us {}", all.join(" "));
    Ok(())
}
