//! The compute benchmark: what the `wasm` backend's linear-memory layout costs compiled
//! code. A memory reserves as much address space as the `memory` limit allows (1 GiB by
//! default), so the compiled code checks each access against that bound; with a 4 GiB
//! reservation (`memory = 4 GiB`) wasmtime leaves the checks out and relies on the guard
//! region instead. Run with `scripts/bench.sh compute`.
//!
//! The guest, `tests/programs/src/bin/bench_compute.rs`, fills, sorts and gathers from a
//! vector of N `u32`s and prints its own time for it. Each round runs it once on a host with
//! the default `memory` limit and once on a host with `memory = 4 GiB`, alternating which goes
//! first; the figures are the medians over the rounds and their ratio. It prints figures
//! only; nothing here fails on speed.
//!
//! Environment: `WASMPROC_BENCH_COMPUTE_N` (default 4,000,000), `WASMPROC_BENCH_COMPUTE_ROUNDS`
//! (default 9).

use wasmproc::{Config, ExitStatus, Host, Limits, OutputMode, Program};
use wasmproc_tests::BENCH_COMPUTE;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A host whose processes have at most `memory` bytes of linear memory, and the guest.
fn host(memory: u64) -> (Host, Program) {
    let config = Config {
        output: OutputMode::Capture,
        ..Config::default()
    };
    let config = Config {
        limits: Limits {
            memory,
            ..config.limits
        },
        ..config
    };
    let host = Host::new(config).expect("a host");
    let program = host.load(BENCH_COMPUTE).expect("the compute guest");
    (host, program)
}

/// One run of the guest: its own time for the work, and its checksum.
fn run(host: &Host, program: &Program, n: usize) -> (f64, String) {
    let run = host.run_main(program, &[n.to_string()]).expect("run_main");
    let main = run
        .process("MainProcess")
        .expect("the main process's output");
    let out = String::from_utf8_lossy(&main.stdout()).into_owned();
    assert_eq!(run.status, ExitStatus::SUCCESS, "bench_compute: {out}");
    let kv = wasmproc_tests::key_values(&out);
    let secs = kv
        .get("compute_s")
        .and_then(|s| s.parse().ok())
        .expect("a compute_s line");
    (secs, kv.get("checksum").cloned().unwrap_or_default())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_usize("WASMPROC_BENCH_COMPUTE_N", 4_000_000);
    let rounds = env_usize("WASMPROC_BENCH_COMPUTE_ROUNDS", 9).max(1);
    wasmproc_tests::print_load_at_start(2);
    let checked = host(Config::default().limits.memory);
    let unchecked = host(4 << 30);
    // One run each first, to warm both up (the first touches fresh memory).
    let (_, sum) = run(&checked.0, &checked.1, n);
    let (_, sum4) = run(&unchecked.0, &unchecked.1, n);
    assert_eq!(sum, sum4, "the two layouts computed different checksums");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (x, y) = if round % 2 == 0 {
            let x = run(&checked.0, &checked.1, n).0;
            (x, run(&unchecked.0, &unchecked.1, n).0)
        } else {
            let y = run(&unchecked.0, &unchecked.1, n).0;
            (run(&checked.0, &checked.1, n).0, y)
        };
        println!(
            "round {}: memory = 1 GiB {:.1} ms, memory = 4 GiB {:.1} ms",
            round + 1,
            x * 1e3,
            y * 1e3
        );
        a.push(x);
        b.push(y);
    }
    let (ma, mb) = (median(&mut a), median(&mut b));
    println!(
        "compute (fill, sort, gather {n} u32s; checksum {sum}), median of {rounds} rounds: \
         bounds-checked (memory = 1 GiB, the default) {:.1} ms, unchecked (memory = 4 GiB) \
         {:.1} ms: {:.3}x",
        ma * 1e3,
        mb * 1e3,
        ma / mb
    );
}
