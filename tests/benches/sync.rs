//! The queue and pool benchmarks (issue 4): throughput of wasmproc's `Queue` and of
//! `Pool::map` with chunksize 1, on both backends, next to CPython's `multiprocessing`
//! measured in the same run. Run it with `scripts/bench.sh queue pool` (or plain
//! `scripts/bench.sh`, which also runs the spawn benchmark of `process.rs`); the script first
//! builds `target/release/wasmproc`, the executable of the native backend.
//!
//! 1. `queue`: a child puts N `u64`s into an unbounded `Queue<u64>`, the main process gets
//!    them (`tests/programs/src/bin/bench_queue.rs`); items/s from the main process's first
//!    get to its last. CPython: the same with `multiprocessing.Queue`
//!    (`scripts/bench_cpython_sync.py`). Selecting `queue` also runs `post`: the same with
//!    the child's `Queue::post` (a native child does not wait for the host's answer), next
//!    to the same CPython figure (whose `put` hands the item to a feeder thread).
//! 2. `pool`: `Pool::map_chunked(f, 0..N, 1)` of a trivial `f` with W workers
//!    (`tests/programs/src/bin/bench_pool.rs`), timed alone on a warmed-up pool; CPython:
//!    `multiprocessing.Pool(W).map(f, range(N), chunksize=1)`, likewise.
//!
//! The backends: `wasm` (the default configuration: every process a tokio task/fiber of
//! the host) and `native` (every process an OS process, `target/release/wasmproc`
//! re-executed, found next to this bench's directory; skipped, saying why, when it is
//! missing). Each measurement runs in rounds that alternate wasm, native and CPython, so
//! that a passing load on the machine does not favour one of them; the figures are the
//! median over the rounds, with each round's figure printed too.
//!
//! It prints figures and targets (MET / NOT MET) only; nothing here fails on speed.
//!
//! Environment (for quick runs):
//! - `WASMPROC_BENCH`: the benchmarks to run, comma-separated, of `queue,pool` (default:
//!   both; other names, as `spawn`, are for `process.rs` and ignored here),
//! - `WASMPROC_BENCH_BACKENDS`: `wasm,native` (default both),
//! - `WASMPROC_BENCH_SYNC_ROUNDS`: rounds (default 3),
//! - items per round, chosen for about a second each on a quiet 2-CPU machine:
//!   `WASMPROC_BENCH_QUEUE_N` (wasm, default 3,000,000), `WASMPROC_BENCH_QUEUE_NATIVE_N`
//!   (default 50,000: every native get and put crosses to the host process),
//!   `WASMPROC_BENCH_POST_NATIVE_N` (the native child posting, default 1,000,000),
//!   `WASMPROC_BENCH_QUEUE_PY_N` (CPython, default 300,000),
//! - tasks per round: `WASMPROC_BENCH_POOL_N` (wasm, default 100,000),
//!   `WASMPROC_BENCH_POOL_NATIVE_N` (default 20,000), `WASMPROC_BENCH_POOL_PY_N` (CPython,
//!   default 40,000); `WASMPROC_BENCH_POOL_WORKERS` (default: the number of CPUs).
//!
//! Throughput is items (tasks) per second, so the different N per configuration compare
//! directly; each is printed next to its figures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use wasmproc::{BackendKind, Config, ExitStatus, Host, Limits, OutputMode, Program};
use wasmproc_tests::{BENCH_POOL, BENCH_QUEUE};

/// Targets of issue 4.
const QUEUE_MIN_ITEMS_PER_S: f64 = 2_000_000.0;
const QUEUE_MIN_RATIO: f64 = 16.0;
const POOL_MIN_RATIO: f64 = 10.0;

/// Most wall time a guest process of one measurement may take: a hang ends as a failure.
const WALL_MS: u64 = 300_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn num(kv: &BTreeMap<String, String>, k: &str) -> Result<f64, String> {
    kv.get(k)
        .ok_or_else(|| format!("no `{k}` printed"))?
        .parse()
        .map_err(|e| format!("`{k}` is not a number: {e}"))
}

/// One backend: its host and programs, or why it is skipped.
struct Backend {
    label: &'static str,
    what: String,
    setup: Result<(Host, Program, Program), String>,
}

fn backend(label: &'static str) -> Backend {
    let native = label == "native";
    let exe = if native {
        Some(wasmproc_tests::native_exe())
    } else {
        None
    };
    let what = match &exe {
        None => "a tokio task/fiber per process (the default configuration)".to_string(),
        Some(Ok(exe)) => format!("every process an OS process: {}", exe.display()),
        Some(Err(_)) => "every process an OS process".to_string(),
    };
    let setup = (|| {
        let base = Config {
            output: OutputMode::Capture,
            ..Config::default()
        };
        let config = match exe {
            None => base,
            Some(exe) => Config {
                backend: BackendKind::Native,
                native_exe: Some(exe?),
                ..base
            },
        };
        let config = Config {
            limits: Limits {
                wall_ms: Some(WALL_MS),
                ..config.limits
            },
            ..config
        };
        let host = Host::new(config).map_err(|e| format!("cannot create a host: {e}"))?;
        let load = |p: &str| host.load(p).map_err(|e| format!("cannot load {p}: {e}"));
        let queue = load(BENCH_QUEUE)?;
        let pool = load(BENCH_POOL)?;
        Ok((host, queue, pool))
    })();
    Backend { label, what, setup }
}

/// Runs `program`'s main process with `args`; its `key value` lines, or why not.
fn run(
    host: &Host,
    program: &Program,
    args: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let run = host
        .run_main(program, args)
        .map_err(|e| format!("run_main: {e}"))?;
    let main = run
        .process("MainProcess")
        .ok_or("the run captured no output of MainProcess")?;
    let kv = wasmproc_tests::key_values(&String::from_utf8_lossy(&main.stdout()));
    if run.status == ExitStatus::SUCCESS && !kv.is_empty() {
        return Ok(kv);
    }
    let stderr: Vec<String> = run
        .processes
        .iter()
        .filter_map(|c| {
            let e = String::from_utf8_lossy(&c.stderr()).trim().to_string();
            (!e.is_empty()).then(|| format!("{}: {e:?}", c.name()))
        })
        .collect();
    Err(format!(
        "ended with {:?}; stdout {:?}; stderr {}",
        run.status,
        String::from_utf8_lossy(&main.stdout()),
        if stderr.is_empty() {
            "empty".into()
        } else {
            stderr.join("; ")
        }
    ))
}

/// Runs `scripts/bench_cpython_sync.py` with `args`; its `key value` lines, or why not.
fn python(root: &Path, args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let script = root.join("scripts/bench_cpython_sync.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "python3 is not on PATH".to_string(),
            _ => format!("cannot run python3: {e}"),
        })?;
    if !out.status.success() {
        return Err(format!(
            "python3 {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(wasmproc_tests::key_values(&String::from_utf8_lossy(
        &out.stdout,
    )))
}

/// One measured configuration (a backend or CPython) of one benchmark, over the rounds.
#[derive(Default)]
struct Series {
    /// Items per second of each round (the headline figure).
    rates: Vec<f64>,
    /// The other figures of each round, for the detail line.
    notes: Vec<String>,
    error: Option<String>,
    skipped: Option<String>,
}

impl Series {
    fn add(&mut self, r: Result<(f64, String), String>) {
        match r {
            Ok((rate, note)) => {
                self.rates.push(rate);
                self.notes.push(note);
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    fn median(&self) -> Option<f64> {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        (!r.is_empty()).then(|| {
            let m = r.len() / 2;
            if r.len() % 2 == 1 {
                r[m]
            } else {
                (r[m - 1] + r[m]) / 2.0
            }
        })
    }

    fn best(&self) -> Option<f64> {
        self.rates.iter().copied().reduce(f64::max)
    }

    /// As [`status`](Self::status), but one word for a skip or a failure (the section
    /// above says why).
    fn short_status(&self) -> String {
        match (&self.skipped, &self.error) {
            (Some(_), _) => "skipped (see above)".into(),
            (None, Some(_)) if self.rates.is_empty() => "FAILED (see above)".into(),
            _ => self.status(),
        }
    }

    fn status(&self) -> String {
        match (&self.skipped, self.median(), &self.error) {
            (Some(_), _, _) => "SKIPPED (the backend line at the top says why)".into(),
            (None, Some(m), None) => format!(
                "median {} /s   best {} /s   rounds: {}",
                rate(m),
                rate(self.best().unwrap_or(m)),
                self.rates
                    .iter()
                    .map(|r| rate(*r))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            (None, Some(m), Some(e)) => {
                format!(
                    "median {} /s of the rounds that worked; FAILED once: {e}",
                    rate(m)
                )
            }
            (None, None, Some(e)) => format!("FAILED: {e}"),
            (None, None, None) => "no figures".into(),
        }
    }
}

/// Items per second, with thousands separators.
fn rate(r: f64) -> String {
    let s = format!("{:.0}", r);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio, with decimals when it is small.
fn times(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.2}x")
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "MET" } else { "NOT MET" }
}

/// What one benchmark measures, per round, for a backend and for CPython.
struct Bench {
    name: &'static str,
    title: String,
    /// Items of a round: wasm, native, CPython.
    n: [usize; 3],
    workers: usize,
}

impl Bench {
    fn guest_args(&self, n: usize) -> Vec<String> {
        match self.name {
            "queue" => vec![n.to_string()],
            "post" => vec![n.to_string(), "post".into()],
            _ => vec![n.to_string(), self.workers.to_string()],
        }
    }

    fn python_args(&self) -> Vec<String> {
        let n = self.n[2].to_string();
        match self.name {
            "queue" | "post" => vec!["queue".into(), n],
            _ => vec!["pool".into(), n, self.workers.to_string()],
        }
    }

    /// Items/s and a detail note from a guest's figures.
    fn guest_rate(&self, kv: &BTreeMap<String, String>) -> Result<(f64, String), String> {
        let items = num(kv, "items")?;
        match self.name {
            "queue" | "post" => {
                let steady = num(kv, "steady_s")?;
                let total = num(kv, "total_s")?;
                let producer = num(kv, "producer_s")?;
                Ok((
                    (items - 1.0) / steady,
                    format!(
                        "{items} items: steady {steady:.3} s, with start+join {total:.3} s ({} /s), \
                         producer's puts {producer:.3} s ({} /s)",
                        rate(items / total),
                        rate(items / producer)
                    ),
                ))
            }
            _ => {
                let map = num(kv, "map_s")?;
                let total = num(kv, "total_s")?;
                Ok((
                    items / map,
                    format!(
                        "{items} tasks, {} workers: map {map:.3} s, pool create+warm-up+map+\
                         close+join {total:.3} s",
                        kv.get("workers").map_or("?", String::as_str)
                    ),
                ))
            }
        }
    }

    fn python_rate(&self, kv: &BTreeMap<String, String>) -> Result<(f64, String), String> {
        // The post benchmark's CPython figure is the queue's.
        let name = if self.name == "post" {
            "queue"
        } else {
            self.name
        };
        if let Some(e) = kv.get(&format!("{name}_error")) {
            return Err(e.clone());
        }
        let items = num(kv, &format!("{name}_items"))?;
        match self.name {
            "queue" | "post" => {
                let steady = num(kv, "queue_steady_s")?;
                let total = num(kv, "queue_total_s")?;
                Ok((
                    (items - 1.0) / steady,
                    format!(
                        "{items} items: steady {steady:.3} s, with start+join {total:.3} s ({} /s)",
                        rate(items / total)
                    ),
                ))
            }
            _ => {
                let map = num(kv, "pool_map_s")?;
                let total = num(kv, "pool_total_s")?;
                Ok((
                    items / map,
                    format!(
                        "{items} tasks, {} workers: map {map:.3} s, Pool()+warm-up+map+close+join \
                         {total:.3} s",
                        kv.get("pool_workers").map_or("?", String::as_str)
                    ),
                ))
            }
        }
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let selected = env_list("WASMPROC_BENCH", "queue,pool");
    let labels = env_list("WASMPROC_BENCH_BACKENDS", "wasm,native");
    let rounds = env_usize("WASMPROC_BENCH_SYNC_ROUNDS", 3).max(1);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = env_usize("WASMPROC_BENCH_POOL_WORKERS", cpus).max(1);
    let mut benches = Vec::new();
    if selected.iter().any(|s| s == "queue") {
        benches.push(Bench {
            name: "queue",
            title: "Queue throughput: a child puts u64s, the main process gets them".into(),
            n: [
                env_usize("WASMPROC_BENCH_QUEUE_N", 3_000_000).max(2),
                env_usize("WASMPROC_BENCH_QUEUE_NATIVE_N", 50_000).max(2),
                env_usize("WASMPROC_BENCH_QUEUE_PY_N", 300_000).max(2),
            ],
            workers,
        });
        benches.push(Bench {
            name: "post",
            title: "Queue throughput, the child posting (Queue::post, which a native child \
                    does not wait for); CPython's put is the same as above"
                .into(),
            n: [
                env_usize("WASMPROC_BENCH_QUEUE_N", 3_000_000).max(2),
                env_usize("WASMPROC_BENCH_POST_NATIVE_N", 1_000_000).max(2),
                env_usize("WASMPROC_BENCH_QUEUE_PY_N", 300_000).max(2),
            ],
            workers,
        });
    }
    if selected.iter().any(|s| s == "pool") {
        benches.push(Bench {
            name: "pool",
            title: format!("Pool({workers}).map of a trivial function, chunksize=1"),
            n: [
                env_usize("WASMPROC_BENCH_POOL_N", 100_000).max(1),
                env_usize("WASMPROC_BENCH_POOL_NATIVE_N", 100_000).max(1),
                env_usize("WASMPROC_BENCH_POOL_PY_N", 40_000).max(1),
            ],
            workers,
        });
    }
    if benches.is_empty() {
        println!(
            "queue/pool benchmark: nothing selected (WASMPROC_BENCH={})",
            selected.join(",")
        );
        return;
    }

    let total = Instant::now();
    println!(
        "wasmproc queue/pool benchmark ({cpus} CPUs available; {rounds} rounds alternating \
         the backends and CPython)"
    );
    println!("programs: {BENCH_QUEUE}, {BENCH_POOL}");
    wasmproc_tests::print_load_at_start(cpus);
    let backends: Vec<Backend> = ["wasm", "native"]
        .into_iter()
        .filter(|l| labels.iter().any(|s| s == l))
        .map(backend)
        .collect();
    for b in &backends {
        match &b.setup {
            Ok(_) => println!("backend {}: {}", b.label, b.what),
            Err(e) => println!("backend {}: SKIPPED: {e}", b.label),
        }
    }
    let mut py_version = None;

    // results[bench][0..backends.len()] are the backends, the last CPython.
    let mut results: Vec<Vec<Series>> = benches
        .iter()
        .map(|_| {
            backends
                .iter()
                .map(|b| Series {
                    skipped: b.setup.as_ref().err().cloned(),
                    ..Series::default()
                })
                .chain([Series::default()])
                .collect()
        })
        .collect();
    for round in 0..rounds {
        for (bench, series) in benches.iter().zip(&mut results) {
            for (b, s) in backends.iter().zip(series.iter_mut()) {
                let Ok((host, queue, pool)) = &b.setup else {
                    continue;
                };
                let program = if bench.name == "pool" { pool } else { queue };
                let n = bench.n[usize::from(b.label == "native")];
                let r =
                    run(host, program, &bench.guest_args(n)).and_then(|kv| bench.guest_rate(&kv));
                eprintln!(
                    "round {}/{rounds} {} {}: {}",
                    round + 1,
                    bench.name,
                    b.label,
                    r.as_ref().map_or_else(
                        |e| format!("FAILED: {e}"),
                        |(v, _)| format!("{} /s", rate(*v))
                    )
                );
                s.add(r);
            }
            let r = python(&root, &bench.python_args()).and_then(|kv| {
                if let Some(v) = kv.get("python_version") {
                    py_version = Some(format!(
                        "{v}, start method {}",
                        kv.get("start_method").map_or("?", String::as_str)
                    ));
                }
                bench.python_rate(&kv)
            });
            eprintln!(
                "round {}/{rounds} {} CPython: {}",
                round + 1,
                bench.name,
                r.as_ref().map_or_else(
                    |e| format!("FAILED: {e}"),
                    |(v, _)| format!("{} /s", rate(*v))
                )
            );
            series.last_mut().expect("CPython's series").add(r);
        }
    }

    if let Some(v) = &py_version {
        println!("CPython {v}");
    }
    for (bench, series) in benches.iter().zip(&results) {
        println!("\n== {} ==", bench.title);
        let labels = backends
            .iter()
            .map(|b| format!("wasmproc {}", b.label))
            .chain(["CPython multiprocessing".to_string()]);
        for ((label, s), i) in labels.zip(series).zip(0..) {
            println!("  {label:<24} {}", s.status());
            if let Some(note) = s.notes.last() {
                let n = if i < backends.len() {
                    bench.n[usize::from(backends[i].label == "native")]
                } else {
                    bench.n[2]
                };
                println!("  {:<24} (N={n} per round; last round: {note})", "");
            }
        }
    }

    println!("\n== summary (items/s, median of {rounds} rounds; ratio: wasmproc / CPython) ==");
    for (bench, series) in benches.iter().zip(&results) {
        let py = series.last().and_then(Series::median);
        for (b, s) in backends.iter().zip(series) {
            let line = match (s.median(), py) {
                (Some(w), Some(c)) => {
                    format!("{} /s vs CPython {} /s: {}", rate(w), rate(c), times(w / c))
                }
                (Some(w), None) => format!("{} /s (no CPython figure)", rate(w)),
                (None, _) => s.short_status(),
            };
            println!("  {:<6} {:<7} {line}", bench.name, b.label);
        }
    }
    println!("\ntargets (issue 4):");
    for (bench, series) in benches.iter().zip(&results) {
        let py = series.last().and_then(Series::median);
        for (b, s) in backends.iter().zip(series) {
            let Some(w) = s.median() else {
                println!(
                    "  {:<5} {:<6}: not measured ({})",
                    bench.name,
                    b.label,
                    s.short_status()
                );
                continue;
            };
            let ratio = |min: f64| match py {
                Some(c) => format!(
                    ">= {min:.0}x CPython: {} ({})",
                    met(w / c >= min),
                    times(w / c)
                ),
                None => format!(">= {min:.0}x CPython: unknown (no CPython figure)"),
            };
            match bench.name {
                "queue" if b.label == "wasm" => println!(
                    "  queue {:<6}: >= {} items/s: {} ({} /s); {}",
                    b.label,
                    rate(QUEUE_MIN_ITEMS_PER_S),
                    met(w >= QUEUE_MIN_ITEMS_PER_S),
                    rate(w),
                    ratio(QUEUE_MIN_RATIO)
                ),
                "post" => println!(
                    "  post  {:<6}: no target (Queue::post is not in the issue); {} /s{}",
                    b.label,
                    rate(w),
                    py.map_or(String::new(), |c| format!(", {} CPython", times(w / c)))
                ),
                "queue" => println!(
                    "  queue {:<6}: no target (the queue targets are the wasm backend's); {} /s{}",
                    b.label,
                    rate(w),
                    py.map_or(String::new(), |c| format!(", {} CPython", times(w / c)))
                ),
                _ => println!("  pool  {:<6}: {}", b.label, ratio(POOL_MIN_RATIO)),
            }
        }
    }
    println!(
        "\nqueue/pool benchmark took {:.1} s; load average at the end: {}",
        total.elapsed().as_secs_f64(),
        wasmproc_tests::load_average().unwrap_or_else(|| "?".into())
    );
}
