//! The compute benchmark's guest side (run by `tests/benches/compute.rs`): work that is
//! mostly loads and stores in linear memory, so that the cost of the compiled code's bounds
//! checks shows. It fills a vector of N `u32`s from a xorshift generator, sorts it, then
//! gathers from it at pseudo-random places, and prints machine-readable lines:
//! - `compute_s X`: the time of that work,
//! - `checksum X`: a sum over the results, the same for the same N on every run.
//!
//! Usage: `bench_compute [N]` (default 4,000,000).

use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4_000_000)
        .max(1);
    let t = Instant::now();
    let mut state = 0x9e37_79b9_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut values: Vec<u32> = (0..n).map(|_| next()).collect();
    values.sort_unstable();
    let mut sum = 0u64;
    let mut at = 0usize;
    for _ in 0..n {
        at = (at + values[at] as usize) % n;
        sum = sum.wrapping_add(u64::from(values[at]));
    }
    let took = t.elapsed().as_secs_f64();
    println!("compute_s {took:.6}");
    println!("checksum {sum}");
}
