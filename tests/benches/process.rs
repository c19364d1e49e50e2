//! The spawn benchmark: how fast wasmproc starts and joins a process, compared with CPython's
//! `multiprocessing` on the same machine in the same run, and how many sleeping processes
//! one host holds at what memory cost. Run it with `scripts/bench.sh spawn` (which first
//! builds `target/release/wasmproc`, the executable of the native design, then runs
//! `cargo bench -p wasmproc-tests --bench process`; plain `scripts/bench.sh` also runs the
//! queue and pool benchmarks of `sync.rs`).
//!
//! It measures four designs (see [`DESIGNS`]): the `wasm` backend with a tokio task/fiber
//! per process (the default, `task`), with an OS thread per process (`thread`,
//! `Config { thread_per_process: true, .. }`), with the pooling allocator (`pooled`,
//! `Config { pooling: Some(slots), .. }`), and the `native` backend (`native`, every child
//! a real OS process: `target/release/wasmproc` re-executed, found next to this bench's
//! directory; skipped, saying why, when it is missing):
//! 1. start+join of a no-op child timed inside a guest (`tests/programs/src/bin/bench_spawn.rs`),
//! 2. the same from Rust through the library (`host.process(..).start()` + `join(None)`),
//!    and a child `square(x)` started with a typed argument whose typed result is read
//!    (`arg(&x)`, `result::<u64>()`), joined with `join` and with `join_async`;
//!    (1) and (2) run in rounds that alternate between the designs, and print the pooled
//!    median, p10 and p90 and each round's median (the figures are noisy on a small VM);
//!    the native design runs fewer iterations (a start+join costs milliseconds),
//! 3. `scripts/bench_cpython.py`: the same with CPython's fork, spawn and forkserver,
//! 4. 10,000 sleeping children started from Rust (300 for the native design, each an OS
//!    process; its memory figures are the host's only): RSS, peak RSS, threads, memory
//!    mappings, start time; each design in a fresh copy of this binary, so that the figures
//!    of one do not leak into another. It stops short of `vm.max_map_count` (at the limit
//!    the host may abort: Rust's thread start panics when it cannot map a guard page) and
//!    on the first failure, and reports how many it held.
//!
//! The pooled design reserves its slots when its host is made (about 2 kernel mappings per
//! slot), so at most one pooled host exists per OS process at a time: in this process only
//! during its own turns of (1)-(2) (alive, it would also slow down every fork of this
//! process, and so the native design's starts), and one in its hold child for (4).
//!
//! It prints figures only; nothing here fails on speed.
//!
//! Environment overrides (for quick runs): `WASMPROC_BENCH_N` (timed iterations, default
//! 2000), `WASMPROC_BENCH_WARMUP` (default 200), `WASMPROC_BENCH_NATIVE_N` and
//! `WASMPROC_BENCH_NATIVE_WARMUP` (the same for the native design, default 300 and 30),
//! `WASMPROC_BENCH_ROUNDS` (the latency measurements alternate between the designs in this
//! many rounds, default 4), `WASMPROC_BENCH_HOLD` (sleepers, default 10000; the pooled
//! design gets 100 slots more), `WASMPROC_BENCH_HOLD_NATIVE` (native sleepers, default 300),
//! `WASMPROC_BENCH_HOLD_TO_LIMIT` (set: go on to the real failure at `vm.max_map_count`,
//! which may abort the hold child), `WASMPROC_BENCH_PY` (CPython iterations
//! `fork,spawn,forkserver`, default `200,50,200`), `WASMPROC_BENCH_DESIGNS` (the designs to
//! measure, comma-separated, default `task,thread,pooled,native`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use wasmproc::{BackendKind, Config, Host, Limits, OutputMode, Program};
use wasmproc_tests::BENCH_SPAWN;

/// The most time the hold test spends starting sleepers before it stops and reports.
const HOLD_BUDGET: Duration = Duration::from_secs(60);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The designs measured: label, and what it is.
const DESIGNS: [(&str, &str); 4] = [
    (
        "task",
        "wasm backend, a tokio task/fiber per process (the default)",
    ),
    ("thread", "wasm backend, thread_per_process: true"),
    ("pooled", "wasm backend, pooling allocator"),
    ("native", "native backend, every child an OS process"),
];

/// The pooled design's slots: enough for the hold test's sleepers, its warm-up and the
/// main process of a latency run.
fn pool_slots(hold: usize) -> u32 {
    u32::try_from(hold.max(10_000) + 100).unwrap_or(u32::MAX)
}

/// The configuration of design `label`; `hold` sizes the pooled design's slots.
fn config(label: &str, output: OutputMode, hold: usize) -> Result<Config, String> {
    let base = Config {
        output,
        ..Config::default()
    };
    Ok(match label {
        "task" => base,
        "thread" => Config {
            thread_per_process: true,
            ..base
        },
        "pooled" => Config {
            pooling: Some(pool_slots(hold)),
            ..base
        },
        "native" => Config {
            backend: BackendKind::Native,
            native_exe: Some(wasmproc_tests::native_exe()?),
            ..base
        },
        other => return Err(format!("unknown design '{other}'")),
    })
}

/// One design of a run: how many iterations and sleepers it gets, or why it is skipped.
struct Design {
    label: &'static str,
    what: String,
    n: usize,
    warmup: usize,
    hold: usize,
    skip: Option<String>,
}

/// Median, p10 and p90 of some samples, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Stats {
    n: usize,
    median: f64,
    p10: f64,
    p90: f64,
}

impl Stats {
    fn of(mut samples: Vec<f64>) -> Stats {
        samples.sort_by(f64::total_cmp);
        let q = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats {
            n: samples.len(),
            median: q(0.5),
            p10: q(0.1),
            p90: q(0.9),
        }
    }

    /// From `<prefix>median_us`-style lines.
    fn parse(kv: &BTreeMap<String, String>, prefix: &str) -> Option<Stats> {
        let get = |k: &str| kv.get(&format!("{prefix}{k}"))?.parse::<f64>().ok();
        Some(Stats {
            n: kv.get(&format!("{prefix}iterations"))?.parse().ok()?,
            median: get("median_us")?,
            p10: get("p10_us")?,
            p90: get("p90_us")?,
        })
    }

    fn line(&self) -> String {
        format!(
            "median {:>9.1} µs   p10 {:>9.1} µs   p90 {:>9.1} µs   (n={})",
            self.median, self.p10, self.p90, self.n
        )
    }
}

/// (1): start+join timed inside the guest; every sample, in microseconds.
fn guest_side(host: &Host, program: &Program, n: usize, warmup: usize) -> Result<Vec<f64>, String> {
    let run = host
        .run_main(program, &[n.to_string(), warmup.to_string()])
        .map_err(|e| format!("run_main: {e}"))?;
    let main = run
        .process("MainProcess")
        .ok_or("the run captured no output of MainProcess")?;
    let stdout = String::from_utf8_lossy(&main.stdout()).into_owned();
    let stderr = String::from_utf8_lossy(&main.stderr()).into_owned();
    let samples: Option<Vec<f64>> = wasmproc_tests::key_values(&stdout)
        .get("samples_us")
        .and_then(|v| v.split(' ').map(|x| x.parse().ok()).collect());
    samples.filter(|s| s.len() == n).ok_or_else(|| {
        format!(
            "bench_spawn ended with {:?} without figures; stdout: {stdout:?}; stderr: {stderr:?}",
            run.status
        )
    })
}

/// (2): start+join timed from Rust through the library; every sample, in microseconds.
/// Typed: the child is `square(x)`, started with a typed argument, and its typed result
/// is read within the time; async: joined with `join_async`.
#[derive(Clone, Copy, PartialEq)]
enum HostMode {
    NoOp,
    Typed,
    TypedAsync,
}

fn host_side(
    host: &Host,
    program: &Program,
    n: usize,
    warmup: usize,
    mode: HostMode,
) -> Result<Vec<f64>, String> {
    let typed = mode != HostMode::NoOp;
    let mut samples = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let x = i as u64;
        let t = Instant::now();
        let builder = if typed {
            host.process(program, "square").arg(&x)
        } else {
            host.process(program, "noop")
        };
        let p = builder.start().map_err(|e| format!("start: {e}"))?;
        if mode == HostMode::TypedAsync {
            futures::executor::block_on(p.join_async(None))
        } else {
            p.join(None)
        }
        .map_err(|e| format!("join: {e}"))?;
        let result = if typed {
            p.result::<u64>().map_err(|e| format!("result: {e}"))?
        } else {
            None
        };
        let us = t.elapsed().as_secs_f64() * 1e6;
        match p.exitcode() {
            Ok(Some(0)) => {}
            other => return Err(format!("the child ended with {other:?}")),
        }
        if typed && result != Some(x.wrapping_mul(x)) {
            return Err(format!("square({x}) returned {result:?}"));
        }
        if i >= warmup {
            samples.push(us);
        }
    }
    Ok(samples)
}

/// The samples of one measurement, pooled over the rounds, and each round's median.
#[derive(Default)]
struct Pool {
    samples: Vec<f64>,
    round_medians: Vec<f64>,
    error: Option<String>,
}

impl Pool {
    fn add(&mut self, round: Result<Vec<f64>, String>) {
        match round {
            Ok(s) if !s.is_empty() => {
                self.round_medians.push(Stats::of(s.clone()).median);
                self.samples.extend(s);
            }
            Ok(_) => {}
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    fn stats(&self) -> Result<Stats, String> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None if self.samples.is_empty() => Err("no samples".into()),
            None => Ok(Stats::of(self.samples.clone())),
        }
    }

    fn best(&self) -> Option<f64> {
        self.round_medians.iter().copied().reduce(f64::min)
    }

    fn rounds(&self) -> String {
        let r: Vec<String> = self
            .round_medians
            .iter()
            .map(|m| format!("{m:.1}"))
            .collect();
        r.join(" ")
    }
}

/// Latency figures of one design.
struct Latency {
    guest: Result<Stats, String>,
    host: Result<Stats, String>,
    /// Host-side, with a typed argument and a typed result; the same joined async.
    typed: Result<Stats, String>,
    typed_async: Result<Stats, String>,
    guest_rounds: String,
    host_rounds: String,
    /// The lowest round median: the figure least disturbed by other work.
    guest_best: Option<f64>,
    host_best: Option<f64>,
}

/// (1)-(2) for every design, in `rounds` rounds that alternate between the designs, so
/// that a passing load on the machine does not favour one of them. Each design has one
/// host for all its rounds, except the pooled design: its host is made for its turn in
/// each round and dropped after it, so that it never lives while another design is
/// measured (its reserved slots, tens of thousands of mappings, make every fork of this
/// process, and so every native start, several times slower) nor beside another pooled
/// host.
fn latency(designs: &[Design], rounds: usize) -> Vec<Latency> {
    type Setup = Result<(Host, Program), String>;
    let make = |d: &Design| -> Setup {
        if let Some(why) = &d.skip {
            return Err(format!("skipped: {why}"));
        }
        let config = config(d.label, OutputMode::Capture, d.hold)?;
        let host = Host::new(config).map_err(|e| format!("cannot create a host: {e}"))?;
        let program = host
            .load(BENCH_SPAWN)
            .map_err(|e| format!("cannot load {BENCH_SPAWN}: {e}"))?;
        Ok((host, program))
    };
    let per_turn = |d: &Design| d.label == "pooled" && d.skip.is_none();
    let setups: Vec<Option<Setup>> = designs
        .iter()
        .map(|d| (!per_turn(d)).then(|| make(d)))
        .collect();
    let mut pools: Vec<[Pool; 4]> = designs.iter().map(|_| Default::default()).collect();
    for _ in 0..rounds {
        for ((d, setup), [guest, host_pool, typed, typed_async]) in
            designs.iter().zip(&setups).zip(&mut pools)
        {
            let per_round = d.n.div_ceil(rounds);
            let warm = d.warmup.div_ceil(rounds);
            // A host made for this turn only is dropped at the end of it.
            let fresh;
            let setup = match setup {
                Some(s) => s,
                None => {
                    fresh = make(d);
                    &fresh
                }
            };
            match setup {
                Ok((host, program)) => {
                    guest.add(guest_side(host, program, per_round, warm));
                    host_pool.add(host_side(host, program, per_round, warm, HostMode::NoOp));
                    typed.add(host_side(host, program, per_round, warm, HostMode::Typed));
                    let mode = HostMode::TypedAsync;
                    typed_async.add(host_side(host, program, per_round, warm, mode));
                }
                Err(e) => {
                    for pool in [guest, host_pool, typed, typed_async] {
                        pool.add(Err(e.clone()));
                    }
                }
            }
        }
    }
    pools
        .into_iter()
        .map(|[guest, host, typed, typed_async]| Latency {
            guest: guest.stats(),
            host: host.stats(),
            typed: typed.stats(),
            typed_async: typed_async.stats(),
            guest_rounds: guest.rounds(),
            host_rounds: host.rounds(),
            guest_best: guest.best(),
            host_best: host.best(),
        })
        .collect()
}

/// (3): CPython's medians per start method, or why there are none.
struct CPython {
    version: String,
    methods: Vec<(&'static str, Result<Stats, String>)>,
}

fn cpython(root: &Path) -> Result<CPython, String> {
    let counts = std::env::var("WASMPROC_BENCH_PY").unwrap_or_else(|_| "200,50,200".into());
    let script = root.join("scripts/bench_cpython.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(counts.split(',').map(str::trim))
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "python3 is not on PATH".to_string(),
            _ => format!("cannot run python3: {e}"),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "python3 {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let kv = wasmproc_tests::key_values(&stdout);
    let methods = ["fork", "spawn", "forkserver"]
        .into_iter()
        .map(|m| {
            let r = Stats::parse(&kv, &format!("{m}_")).ok_or_else(|| {
                kv.get(&format!("{m}_skipped"))
                    .cloned()
                    .unwrap_or_else(|| "no figures printed".into())
            });
            (m, r)
        })
        .collect();
    Ok(CPython {
        version: kv.get("python_version").cloned().unwrap_or_default(),
        methods,
    })
}

/// Fields of `/proc/self/status`, in KiB (memory) or units (threads).
fn proc_status() -> BTreeMap<String, u64> {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k.to_string(), n))
        })
        .collect()
}

/// The number of memory mappings (`vm.max_map_count` limits it); none if unreadable.
fn map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/self/maps")
        .ok()
        .map(|m| m.lines().count())
}

/// (4), in a child copy of this binary: start up to `target` sleepers, measure, kill and
/// join them all; print `key value` lines.
fn hold_child(label: &str, target: usize) {
    // The default limits on live processes and children are below the count tried: raise
    // them, this measures what the machine allows.
    let mut config = config(label, OutputMode::Inherit, target).expect("configuration");
    let room = target as u64 + 64;
    config.limits = Limits {
        processes: Some(config.limits.processes_for(config.backend).max(room)),
        children: config.limits.children.max(room),
        ..config.limits
    };
    println!(
        "limits processes={} children={}",
        config.limits.processes_for(config.backend),
        config.limits.children
    );
    // What the host costs before any process (the pooled design reserves its slots here).
    let no_host_maps = map_count();
    let host = Host::new(config).expect("host");
    let host_maps = map_count();
    let program = host.load(BENCH_SPAWN).expect("load bench_spawn");
    // Warm up so that one-time costs (runtime threads, first instantiation) are not counted
    // per process.
    for _ in 0..20 {
        let p = host
            .process(&program, "sleeper")
            .start()
            .expect("warm-up start");
        p.kill().expect("warm-up kill");
        p.join(None).expect("warm-up join");
    }
    let before = proc_status();
    let before_maps = map_count();
    // At `vm.max_map_count` the host may abort (std's thread start panics when it cannot
    // map a guard page), so stop short of it unless asked to go on to the real failure.
    let map_limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());
    let to_limit = std::env::var_os("WASMPROC_BENCH_HOLD_TO_LIMIT").is_some();
    let mut procs = Vec::with_capacity(target);
    let mut error = None;
    let mut checked = 0;
    let mut batch = 64;
    let mut next_map_check = 0;
    // Time spent inside `start` only, without the checks below.
    let mut in_start = Duration::ZERO;
    let t = Instant::now();
    while procs.len() < target {
        if t.elapsed() > HOLD_BUDGET {
            error = Some(format!(
                "stopped after the {} s time budget",
                HOLD_BUDGET.as_secs()
            ));
            break;
        }
        let t_start = Instant::now();
        let started = host.process(&program, "sleeper").start();
        in_start += t_start.elapsed();
        match started {
            Ok(p) => procs.push(p),
            Err(e) => {
                error = Some(format!("start #{} failed: {e}", procs.len() + 1));
                break;
            }
        }
        if procs.len() % batch != 0 && procs.len() != target {
            continue;
        }
        // A process instantiates asynchronously: a limit hit then (memory mappings, say)
        // ends the process instead of failing `start`. A sleeper that has ended is such a
        // failure: stop there.
        if let Some(i) =
            (checked..procs.len()).find(|&i| procs[i].exitcode().ok().flatten().is_some())
        {
            let status = procs[i].status().ok().flatten();
            error = Some(format!(
                "sleeper #{} ended by itself ({}) after {} starts; its stderr says why",
                i + 1,
                status.map_or("?".to_string(), |s| s.to_string()),
                procs.len()
            ));
            break;
        }
        checked = procs.len();
        println!(
            "progress {} {}",
            procs.len(),
            proc_status().get("VmRSS").copied().unwrap_or(0)
        );
        let _ = std::io::stdout().flush();
        if procs.len() < next_map_check || to_limit {
            continue;
        }
        if let (Some(limit), Some(maps)) = (map_limit, map_count()) {
            // Reading the mappings is slow when there are many: do it often only near
            // the limit.
            next_map_check = procs.len() + if maps + 8000 < limit { 512 } else { 0 };
            if maps + 4000 > limit && batch > 16 {
                // Close to the limit: smaller steps, and let instantiation catch up.
                batch = 16;
            }
            if batch == 16 {
                std::thread::sleep(Duration::from_millis(20));
                let maps = map_count().unwrap_or(maps);
                if maps + 600 > limit {
                    error = Some(format!(
                        "stopped before the memory-mapping limit: {maps} mappings of \
                         vm.max_map_count {limit} (the next starts would fail with ENOMEM \
                         or EAGAIN; set WASMPROC_BENCH_HOLD_TO_LIMIT=1 to go on)"
                    ));
                    break;
                }
            }
        }
    }
    let start_time = t.elapsed();
    // Let the children reach their sleep (each must have instantiated and entered the
    // target), then count those still alive: the processes held.
    std::thread::sleep(Duration::from_millis(500));
    let alive = procs
        .iter()
        .filter(|p| p.is_alive().unwrap_or(false))
        .count();
    let after = proc_status();
    let after_maps = map_count();
    let t = Instant::now();
    for p in &procs {
        let _ = p.kill();
    }
    let mut killed = 0;
    let deadline = t + Duration::from_secs(30);
    for p in &procs {
        let left = deadline.saturating_duration_since(Instant::now());
        if p.join(Some(left)).is_ok() && p.exitcode().ok().flatten() == Some(-9) {
            killed += 1;
        }
    }
    let stop_time = t.elapsed();
    let end = proc_status();
    std::thread::sleep(Duration::from_secs(1));
    let settled = proc_status();
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    println!("started {}", procs.len());
    println!("held {alive}");
    println!("killed_joined {killed}");
    println!("start_ms {:.1}", start_time.as_secs_f64() * 1e3);
    println!("in_start_ms {:.1}", in_start.as_secs_f64() * 1e3);
    println!("stop_ms {:.1}", stop_time.as_secs_f64() * 1e3);
    println!("rss_before_kib {}", get(&before, "VmRSS"));
    println!("rss_after_kib {}", get(&after, "VmRSS"));
    println!("hwm_after_kib {}", get(&after, "VmHWM"));
    println!("rss_end_kib {}", get(&end, "VmRSS"));
    println!("threads_before {}", get(&before, "Threads"));
    println!("threads_after {}", get(&after, "Threads"));
    println!("threads_end {}", get(&end, "Threads"));
    println!("rss_settled_kib {}", get(&settled, "VmRSS"));
    println!("threads_settled {}", get(&settled, "Threads"));
    let maps = |m: Option<usize>| m.map_or("?".into(), |n| n.to_string());
    println!("maps_no_host {}", maps(no_host_maps));
    println!("maps_host {}", maps(host_maps));
    println!("maps_before {}", maps(before_maps));
    println!(
        "maps_after {}",
        after_maps.map_or("? (/proc/self/maps unreadable)".into(), |n| n.to_string())
    );
    if let Some(e) = error {
        println!("error {}", e.replace('\n', " "));
    }
}

/// Figures of the hold test of one design, as the child printed them.
struct Hold {
    kv: BTreeMap<String, String>,
    /// The distinct lines the failed sleepers wrote to stderr, with counts.
    stderr: Vec<(usize, String)>,
}

impl Hold {
    fn num(&self, k: &str) -> f64 {
        self.kv
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    fn host_maps(&self) -> f64 {
        self.num("maps_host") - self.num("maps_no_host")
    }

    fn maps_per_process(&self) -> f64 {
        (self.num("maps_after") - self.num("maps_before")) / self.num("held")
    }

    fn per_process_kib(&self) -> f64 {
        (self.num("rss_after_kib") - self.num("rss_before_kib")) / self.num("held")
    }
}

fn hold(label: &str, target: usize) -> Result<Hold, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let out = Command::new(exe)
        .args(["--hold-child", label, &target.to_string()])
        .output()
        .map_err(|e| format!("cannot run the hold child: {e}"))?;
    let kv = wasmproc_tests::key_values(&String::from_utf8_lossy(&out.stdout));
    // The host writes `Process <name>:` and then the reason to stderr for each sleeper
    // that failed; keep the distinct reasons (and the lines of a crash).
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let line = line.trim();
        let header = line.starts_with("Process ") && line.ends_with(':');
        if !line.is_empty() && !header {
            *reasons.entry(line.to_string()).or_default() += 1;
        }
    }
    let mut stderr: Vec<(usize, String)> = reasons.into_iter().map(|(l, n)| (n, l)).collect();
    stderr.sort_by_key(|r| std::cmp::Reverse(r.0));
    if !out.status.success() || !kv.contains_key("held") {
        let progress = kv.get("progress").map_or("none".into(), |p| {
            let mut p = p.split(' ');
            format!(
                "{} started, VmRSS {} KiB",
                p.next().unwrap_or("?"),
                p.next().unwrap_or("?")
            )
        });
        let reasons: Vec<String> = stderr
            .iter()
            .take(4)
            .map(|(n, l)| format!("{n}x {l:?}"))
            .collect();
        return Err(format!(
            "the hold child (design {label}) failed ({}); \
             last progress: {progress}; its stderr: {}",
            out.status,
            reasons.join(", ")
        ));
    }
    Ok(Hold { kv, stderr })
}

fn show(r: &Result<Stats, String>) -> String {
    match r {
        Ok(s) => s.line(),
        Err(e) if e.starts_with("skipped: ") => format!("SKIPPED{}", &e[7..]),
        Err(e) => format!("FAILED: {e}"),
    }
}

fn median(r: &Result<Stats, String>) -> Option<f64> {
    r.as_ref().ok().map(|s| s.median)
}

fn cell(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// A ratio, with decimals when it is small.
fn times(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.2}x")
    }
}

/// One target line: the guest-side median of `l` against `max_us`, and CPython fork's
/// median over it against `min_ratio` (1: merely faster).
fn target_line(title: &str, l: &Latency, max_us: f64, fork: Option<f64>, min_ratio: f64) {
    let limit = if max_us >= 1000.0 {
        format!("{:.1} ms", max_us / 1000.0)
    } else {
        format!("{max_us:.0} µs")
    };
    let faster = if min_ratio > 1.0 {
        format!(">= {min_ratio:.0}x faster than CPython fork")
    } else {
        "faster than CPython fork".to_string()
    };
    let w = match &l.guest {
        Ok(s) => s.median,
        Err(e) if e.starts_with("skipped: ") => {
            println!("  {title}: not measured (the design was skipped, see above)");
            return;
        }
        Err(e) => {
            println!("  {title}: unknown (FAILED: {e})");
            return;
        }
    };
    let ratio_met = |r: f64| {
        if min_ratio > 1.0 {
            r >= min_ratio
        } else {
            r > 1.0
        }
    };
    println!(
        "  {title}: <= {limit}: {} ({w:.1} µs); {faster}: {}",
        if w <= max_us { "met" } else { "NOT met" },
        match fork {
            Some(f) if ratio_met(f / w) => format!("met ({})", times(f / w)),
            Some(f) => format!("NOT met ({})", times(f / w)),
            None => "unknown (no CPython fork figure)".into(),
        }
    );
    let mut notes = Vec::new();
    if let Some(b) = l.guest_best {
        notes.push(format!(
            "best round {b:.1} µs{}",
            fork.map_or(String::new(), |f| format!(
                ", {} CPython fork",
                times(f / b)
            ))
        ));
    }
    if let Some(h) = median(&l.host) {
        notes.push(format!(
            "host-side median {h:.1} µs{}",
            fork.map_or(String::new(), |f| format!(
                ", {} CPython fork",
                times(f / h)
            ))
        ));
    }
    if !notes.is_empty() {
        println!("    ({})", notes.join("; "));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--hold-child") {
        let label = args.get(i + 1).map(String::as_str).unwrap_or("task");
        let n = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        hold_child(label, n);
        return;
    }

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf();
    let n = env_usize("WASMPROC_BENCH_N", 2000).max(1);
    let warmup = env_usize("WASMPROC_BENCH_WARMUP", 200);
    let native_n = env_usize("WASMPROC_BENCH_NATIVE_N", 300).max(1);
    let native_warmup = env_usize("WASMPROC_BENCH_NATIVE_WARMUP", 30);
    let rounds = env_usize("WASMPROC_BENCH_ROUNDS", 4).clamp(1, n.min(native_n));
    let hold_n = env_usize("WASMPROC_BENCH_HOLD", 10_000).max(1);
    let native_hold = env_usize("WASMPROC_BENCH_HOLD_NATIVE", 300).clamp(1, hold_n);
    let native = wasmproc_tests::native_exe();
    let only = std::env::var("WASMPROC_BENCH_DESIGNS").ok();
    let designs: Vec<Design> = DESIGNS
        .iter()
        .filter(|(label, _)| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|l| l.trim() == *label))
        })
        .map(|&(label, what)| {
            let is_native = label == "native";
            let what = match (label, &native) {
                ("pooled", _) => format!("{what}, pooling: Some({})", pool_slots(hold_n)),
                ("native", Ok(exe)) => format!("{what}: {}", exe.display()),
                _ => what.to_string(),
            };
            Design {
                label,
                what,
                n: if is_native { native_n } else { n },
                warmup: if is_native { native_warmup } else { warmup },
                hold: if is_native { native_hold } else { hold_n },
                skip: if is_native {
                    native.as_ref().err().cloned()
                } else {
                    None
                },
            }
        })
        .collect();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let total = Instant::now();
    println!(
        "wasmproc spawn benchmark ({cpus} CPUs available; {n} timed iterations after {warmup} \
         warm-up ({native_n} after {native_warmup} for the native design), in {rounds} rounds \
         alternating the designs)"
    );
    println!("program: {BENCH_SPAWN}");
    if let Err(why) = &native {
        println!("the native design is SKIPPED: {why}");
    }
    // Other work on the machine skews every figure below: say how busy it was.
    wasmproc_tests::print_load_at_start(cpus);

    // (1)-(2): start+join of a no-op child, every design, guest side and host side.
    let lat = latency(&designs, rounds);
    for (d, l) in designs.iter().zip(&lat) {
        println!(
            "\n== start+join of a no-op child, design '{}' ({}) ==",
            d.label, d.what
        );
        if let Some(why) = &d.skip {
            println!("  SKIPPED: {why}");
            continue;
        }
        println!("  guest-side (Instant in the guest)   {}", show(&l.guest));
        println!("  host-side  (Rust library)           {}", show(&l.host));
        println!("  host-side, typed argument + result  {}", show(&l.typed));
        println!(
            "  the same, joined with join_async    {}",
            show(&l.typed_async)
        );
        println!(
            "  medians of the {rounds} rounds: guest-side {}; host-side {}",
            l.guest_rounds, l.host_rounds
        );
    }

    // (3): CPython.
    println!("\n== CPython multiprocessing: start+join of a no-op Process ==");
    let py = cpython(&root);
    match &py {
        Ok(py) => {
            println!("  python {}", py.version);
            for (m, r) in &py.methods {
                println!("  {m:<11}{}", show(r));
            }
        }
        Err(e) => println!("  CPython baseline SKIPPED: {e}"),
    }

    // (4): sleeping processes held by one host, each design in a child of its own.
    let mut holds = Vec::new();
    for d in &designs {
        println!(
            "\n== {} sleeping children started from Rust, design '{}' ({}) ==",
            d.hold, d.label, d.what
        );
        if let Some(why) = &d.skip {
            println!("  SKIPPED: {why}");
            holds.push(Err(format!("skipped: {why}")));
            continue;
        }
        if d.label == "native" {
            println!(
                "  (capped at {} sleepers: each is an OS process of its own; the RSS, threads \
                 and mappings below are the host's only, not its children's)",
                d.hold
            );
        }
        let h = hold(d.label, d.hold);
        match &h {
            Ok(h) => {
                let kv = |k: &str| h.kv.get(k).map_or("?", String::as_str);
                println!("  host limits set to: {}", kv("limits"));
                println!(
                    "  started {} in {} ms wall ({} ms inside start(), {:.1} µs per start); \
                     held {} (alive 0.5 s later)",
                    kv("started"),
                    kv("start_ms"),
                    kv("in_start_ms"),
                    h.num("in_start_ms") * 1e3 / h.num("started"),
                    kv("held")
                );
                println!(
                    "  VmRSS before {} KiB, after {} KiB (VmHWM {} KiB); {:.1} KiB per process",
                    kv("rss_before_kib"),
                    kv("rss_after_kib"),
                    kv("hwm_after_kib"),
                    h.per_process_kib()
                );
                println!(
                    "  memory mappings: {} before the host was made, {} once it was ({:+} for \
                     the host itself)",
                    kv("maps_no_host"),
                    kv("maps_host"),
                    h.host_maps()
                );
                println!(
                    "  threads before {}, after {}; memory mappings before {}, after {} \
                     ({:.1} per process)",
                    kv("threads_before"),
                    kv("threads_after"),
                    kv("maps_before"),
                    kv("maps_after"),
                    h.maps_per_process()
                );
                println!(
                    "  killed and joined {} in {} ms; then VmRSS {} KiB, threads {} \
                     (1 s later: {} KiB, {} threads)",
                    kv("killed_joined"),
                    kv("stop_ms"),
                    kv("rss_end_kib"),
                    kv("threads_end"),
                    kv("rss_settled_kib"),
                    kv("threads_settled")
                );
                if let Some(e) = h.kv.get("error") {
                    println!("  stopped early: {e}");
                }
                for (n, line) in h.stderr.iter().take(3) {
                    println!("  stderr of failed sleepers ({n}x): {line}");
                }
            }
            Err(e) => println!("  FAILED: {e}"),
        }
        holds.push(h);
    }

    // Summary.
    println!("\n== summary ==");
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>12} {:>12} {:>16}",
        "start+join no-op (median µs)",
        "guest-side",
        "host-side",
        "host typed",
        "typed async",
        "p90 guest",
        "best round g/h"
    );
    for (d, l) in designs.iter().zip(&lat) {
        if d.skip.is_some() {
            println!("{:<34} {:>12}", format!("wasmproc {}", d.label), "skipped");
            continue;
        }
        println!(
            "{:<34} {:>12} {:>12} {:>12} {:>12} {:>12} {:>16}",
            format!("wasmproc {}", d.label),
            cell(median(&l.guest)),
            cell(median(&l.host)),
            cell(median(&l.typed)),
            cell(median(&l.typed_async)),
            cell(l.guest.as_ref().ok().map(|s| s.p90)),
            format!("{}/{}", cell(l.guest_best), cell(l.host_best)),
        );
    }
    match &py {
        Ok(py) => {
            for (m, r) in &py.methods {
                println!(
                    "{:<34} {:>12} {:>12} {:>12}",
                    format!("CPython {m}"),
                    cell(median(r)),
                    "",
                    cell(r.as_ref().ok().map(|s| s.p90)),
                );
            }
            println!(
                "\nratios CPython / wasmproc (median start+join; above 1x: wasmproc is faster):"
            );
            for (m, r) in &py.methods {
                let mut parts = Vec::new();
                for (d, l) in designs.iter().zip(&lat) {
                    for (side, s) in [("guest", &l.guest), ("host", &l.host)] {
                        if let (Some(c), Some(w)) = (median(r), median(s)) {
                            parts.push(format!("{}/{side} {}", d.label, times(c / w)));
                        }
                    }
                }
                println!("  CPython {m:<11} / wasmproc: {}", parts.join(", "));
            }
        }
        Err(e) => println!("CPython baseline skipped: {e}"),
    }
    let fork = py.as_ref().ok().and_then(|py| {
        py.methods
            .iter()
            .find(|(m, _)| *m == "fork")
            .and_then(|(_, r)| median(r))
    });
    println!("\ntargets (guest-side median):");
    for (d, l) in designs.iter().zip(&lat) {
        match d.label {
            "task" => target_line("issue 2, wasm default design 'task'", l, 50.0, fork, 40.0),
            "pooled" => target_line("issue 2's targets, design 'pooled'", l, 50.0, fork, 40.0),
            "native" => target_line("issue 3, design 'native'", l, 1500.0, fork, 1.0),
            _ => {}
        }
    }
    println!(
        "\n{:<28} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
        "sleeping processes held",
        "held",
        "µs/start",
        "RSS MiB",
        "KiB/proc",
        "HWM MiB",
        "threads",
        "host maps",
        "maps",
        "maps/proc"
    );
    for (d, h) in designs.iter().zip(&holds) {
        let label = if d.label == "native" {
            "wasmproc native (host only)".to_string()
        } else {
            format!("wasmproc {}", d.label)
        };
        match h {
            Ok(h) => {
                println!(
                    "{:<28} {:>6} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>9} {:>8} {:>9.1}",
                    label,
                    h.num("held"),
                    h.num("in_start_ms") * 1e3 / h.num("started"),
                    h.num("rss_after_kib") / 1024.0,
                    h.per_process_kib(),
                    h.num("hwm_after_kib") / 1024.0,
                    h.num("threads_after"),
                    h.host_maps(),
                    h.num("maps_after"),
                    h.maps_per_process(),
                );
                if let Some(e) = h.kv.get("error") {
                    println!("{:<28} stopped early: {e}", "");
                }
            }
            Err(e) if e.starts_with("skipped: ") => println!("{label:<28} skipped"),
            Err(_) => println!("{label:<28} failed (see above)"),
        }
    }
    println!(
        "(host maps: the mappings the host took when it was made, before any process; \
         maps/proc: per sleeper after that. native: the host's RSS, threads and mappings \
         only, {} sleepers at most)",
        native_hold
    );
    println!(
        "\nbenchmark took {:.1} s; load average at the end: {}",
        total.elapsed().as_secs_f64(),
        wasmproc_tests::load_average().unwrap_or_else(|| "?".into())
    );
}
